"""The `homeport` command: run the server, and talk to its API.

main.py         the parser and the exit codes
client.py       the API client, errors and table printing every command shares
processes.py    up, serve, worker, doctor (they run homeport itself)
apps.py         apps, apps destroy, source
deploys.py      jobs, releases, rollback, config
runtime.py      logs, run, ps, cron
hooks.py        rollback hooks for monitors
credentials.py  credentials for private repositories
"""

from __future__ import annotations

from homeport.cli.main import main

__all__ = ["main"]

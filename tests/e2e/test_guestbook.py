"""examples/guestbook on the test cluster: a volume, a migrating release command, a worker
and a cron entry, through git push, `homeport run` and `homeport cron`."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.cli import run_cli as _cli
from tests.support.cluster import Kube, service_proxy_get
from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
LOCAL_BASE = '[build]\nargs = { BASE = "homeport-base:busybox" }\n'
APP = "guestbook"


def _guestbook(path: Path) -> WorkTree:
    """The example as a user copies it, built on the local base."""
    work = WorkTree(path, dockerfile=None)
    shutil.copytree(ROOT / "examples" / "guestbook", path, dirs_exist_ok=True)
    manifest = (path / "homeport.toml").read_text()
    (path / "homeport.toml").write_text(LOCAL_BASE + manifest)
    return work


def _page(kube: Kube, namespace: str) -> str:
    status, body = service_proxy_get(kube, namespace, APP, "cgi-bin/guestbook")
    return body if status == 200 else ""


def _run(hp: Homeport, script: str) -> str:
    ran = _cli(hp, "run", APP, "--", "sh", "-c", script)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_guestbook_keeps_migrates_files_and_compacts_its_entries(
    homeport: Homeport, tmp_path: Path, kube: Kube, apps_namespace: str
) -> None:
    """Entries signed on the web are filed by the worker, kept through a deploy whose release
    command migrates format-1 data, and compacted by the cron entry run now."""
    work = _guestbook(tmp_path / "guestbook")
    work.commit("guestbook")
    first = work.push(homeport.remote(APP))
    assert first.returncode == 0, first.stderr
    assert "migrated 0 entries from format 1 to format 2" in first.stderr
    assert f"-----> {APP} v1 is live" in first.stderr

    # Signing runs the web's own CGI script in the live image, on the app's volume.
    body = "name=ann&message=hello+there"
    sign = f"printf '{body}' | CONTENT_LENGTH={len(body)} REQUEST_METHOD=POST /www/cgi-bin/sign"
    assert "303 See Other" in _run(homeport, sign)
    wait_until(
        lambda: "<b>ann</b>: hello there" in _page(kube, apps_namespace),
        timeout=60,
        what="the worker to file the entry",
    )

    # Data from before this format: the next release's command migrates it before web moves.
    _run(
        homeport,
        "rm /data/entries.v2 && printf 'old|from v1\\n' > /data/entries.txt"
        " && echo 1 > /data/format",
    )
    work.write("www/about.html", "<p>about</p>\n")
    work.commit("about page")
    second = work.push(homeport.remote(APP))
    assert second.returncode == 0, second.stderr
    assert "migrated 1 entries from format 1 to format 2" in second.stderr
    assert "<b>old</b>: from v1" in _page(kube, apps_namespace)

    # Twice the same entry; the nightly compaction, started now, keeps one.
    for _ in range(2):
        _run(homeport, sign)
    wait_until(
        lambda: _page(kube, apps_namespace).count("hello there") == 2,
        timeout=60,
        what="both entries filed",
    )
    started = _cli(homeport, "cron", "run", APP, "compact")
    assert started.returncode == 0, started.stderr

    def compacted() -> bool:
        listed = _cli(homeport, "cron", APP).stdout
        return " succeeded " in listed

    wait_until(compacted, timeout=120, what="the compaction run to succeed")
    page = _page(kube, apps_namespace)
    assert page.count("hello there") == 1 and "<b>old</b>: from v1" in page

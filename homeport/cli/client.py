"""What every CLI command shares: the API client, errors, and how answers are printed."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from homeport.cli import profile
from homeport.errors import (
    ConfigError,
    Conflict,
    HomeportError,
    InvalidInput,
    NotFound,
    TooLarge,
    Unavailable,
)
from homeport.settings import Settings
from homeport.terminal import printable_bytes

if TYPE_CHECKING:
    import urllib.request


def say(line: str) -> None:
    print(line, flush=True)


def old_spelling(old: str, new: Sequence[str]) -> None:
    """One line on stderr: `old` still works, and the command line to type from now on."""
    print(f"homeport: {old} is an old spelling; use: {shlex.join(new)}", file=sys.stderr)


class UsageError(HomeportError):
    """The command line itself is wrong (exit code 2, like argparse's own errors)."""


# Where a user finds the token, for every message about a missing or refused token.
FINDING_IT = (
    "the token is in the file `homeport up` prints on the box (DATA_DIR/token), or, for"
    " homeport in the cluster, `kubectl -n homeport exec deploy/homeport -- cat /data/token`"
)

# The API's status codes back into the error kinds, so the CLI speaks like the API.
_BY_STATUS: dict[int, type[HomeportError]] = {
    400: InvalidInput,
    401: InvalidInput,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    429: InvalidInput,
    503: Unavailable,
}


class ApiClient:
    """A small client of the HTTP API (stdlib only, so the CLI starts fast)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base.rstrip("/")
        self.token = token

    @classmethod
    def of(cls, settings: Settings) -> ApiClient:
        """The client of the server the user means: HOMEPORT_URL and HOMEPORT_TOKEN, else the
        login of `homeport login`, else the homeport started on this machine."""
        if settings.url and settings.token:
            return cls(settings.url, settings.token)
        stored = profile.load()
        base = settings.url or (stored.url if stored else settings.local_url)
        if settings.token:
            return cls(base, settings.token)
        if stored is not None and stored.url.rstrip("/") == base.rstrip("/"):
            return cls(base, stored.token)
        # `homeport up` on this machine keeps its token in the data dir. It is only ever sent
        # to this machine's homeport, never to a URL named elsewhere.
        local = settings.stored_token() if not settings.url and stored is None else None
        if local:
            return cls(base, local)
        raise ConfigError(
            f"no token for homeport at {base}; log in with `homeport login {base}`; {FINDING_IT}"
        )

    def _open(self, req: urllib.request.Request, timeout: float | None) -> Any:
        # Loaded with the first request, as in _request.
        import urllib.error
        import urllib.request

        req.add_header("Authorization", f"Bearer {self.token}")
        try:
            # HOMEPORT_URL is the user's own server, http(s) by construction.
            return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace").strip()
            try:
                detail = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                pass
            if exc.code == 401:
                detail += f"; log in again with `homeport login {self.base}`; {FINDING_IT}"
            kind = _BY_STATUS.get(exc.code, HomeportError)
            raise kind(detail or f"homeport answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unavailable(
                f"cannot reach homeport at {self.base} ({reason}); start it with `homeport up`"
                " or set HOMEPORT_URL"
            ) from None

    def request(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = _request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with self._open(req, timeout) as resp:
            raw = resp.read()
            ctype = resp.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            return json.loads(raw)
        return raw.decode("utf-8", "replace")

    def stream(self, path: str, timeout: float | None = 3600, *, echo: bool = True) -> None:
        """Copy a text stream to stdout as it arrives, ending on a newline (echo=False: read
        it to its end, printing nothing)."""
        req = _request(self.base + path)
        last = b"\n"
        terminal = sys.stdout.isatty()
        with self._open(req, timeout) as resp:
            while True:
                try:
                    line = resp.readline()
                except OSError as exc:
                    raise Unavailable(
                        f"lost the connection to homeport at {self.base}: {exc}"
                    ) from None
                if not line:
                    break
                if not echo:
                    continue
                # A terminal gets no control characters from builds and pods; a file or a
                # pipe gets the bytes as sent.
                if terminal:
                    line = printable_bytes(line)
                # A closed stdout (`homeport logs blog | head`) raises BrokenPipeError here,
                # which main() ends quietly.
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
                last = line[-1:]
        if last != b"\n":
            sys.stdout.write("\n")

    def follow_job(self, app: str, job: str, *, echo: bool = True) -> dict[str, Any]:
        """Stream a job's output until it ends (echo=False: only wait); the job as it ended."""
        self.stream(f"/api/apps/{app}/jobs/{job}/log?follow=1", echo=echo)
        ended: dict[str, Any] = self.request("GET", f"/api/apps/{app}/jobs/{job}")
        if ended["status"] in ("queued", "running"):
            # The stream ended first: homeport stopped, or the wait passed the job timeout.
            print(
                f"homeport: job {job} of {app} is still {ended['status']}; follow it again with"
                f" homeport jobs {app} {job} -f",
                file=sys.stderr,
            )
        return ended


def job_exit_code(job: dict[str, Any]) -> int:
    """0 for a job that succeeded; 1 for one that failed, was superseded or has not ended."""
    return 0 if job["status"] == "succeeded" else 1


def _request(url: str, data: bytes | None = None, method: str | None = None) -> Any:
    # urllib.request (with http.client and email) takes ~30 ms to import: `--help`, usage
    # errors and `login`'s prompts come without it.
    import urllib.request

    # HOMEPORT_URL is the user's own server, http(s) by construction.
    return urllib.request.Request(url, data=data, method=method)  # noqa: S310


@dataclass
class Context:
    """What a command runs with: the settings, and the API client made on first use."""

    settings: Settings

    @cached_property
    def client(self) -> ApiClient:
        return ApiClient.of(self.settings)


# Every command's handler: argparse hands it over through set_defaults(func=...).
Handler = Callable[[argparse.Namespace, Context], int]


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[str(r.get(c, "") if r.get(c) is not None else "") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def show(as_json: bool, data: Any, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    """The API's JSON, or a table of the rows."""
    say(json.dumps(data, indent=2) if as_json else table(rows, columns))


def show_json(data: Any) -> None:
    say(json.dumps(data, indent=2))

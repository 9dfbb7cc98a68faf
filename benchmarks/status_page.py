"""Status page server time with 50 apps x 20 releases, against the JSON /api/apps baseline.

Records are seeded straight into a temporary data dir. Server time is measured in-process
around the ASGI app, from the request entering it to the last byte of the answer leaving it
(auth, routing, the records read, rendering), so that neither the client nor a socket
counts. "First load" is the first request a freshly started receiver answers (no database
connection of the request thread open yet; templates are compiled at start-up), each in a
process of its own; "warm" is the same request repeated.

Baseline in the same run: GET /api/apps on the same data. Target: first load <= 50 ms.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import ROOT, scratch

from tests.support.records import seed_app
from tests.support.servers import TOKEN

APPS = 50
RELEASES = 20
COLD_ROUNDS = 7
WARM_ROUNDS = 200
PATHS = ("/", "/api/apps", "/apps/app-00")


async def _measure(data_dir: Path, path: str, rounds: int) -> list[float]:
    """Seconds from the request entering the ASGI app to the last byte of its answer."""
    import httpx
    import redis

    from homeport.receiver.app import create_app
    from homeport.settings import Settings

    settings = Settings(data_dir=data_dir, kubeconfig=str(data_dir / "no-kubeconfig"))
    app = create_app(settings, TOKEN, conn=redis.Redis(unix_socket_path=str(data_dir / "none")))
    spans: list[float] = []

    async def timed(scope: Any, receive: Any, send: Any) -> None:
        start = time.perf_counter()

        async def sending(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                spans.append(time.perf_counter() - start)

        await app(scope, receive, sending)

    transport = httpx.ASGITransport(app=timed)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(rounds):
            answer = await client.get(path, headers=headers)
            # The app page answers 503 here: its config needs a cluster this run has not.
            if answer.status_code not in (200, 503) or len(answer.content) < 100:
                raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:200]}")
    return spans


def _cold(data_dir: Path, path: str) -> float:
    """The first request of a fresh process, in ms."""
    out = subprocess.run(
        [sys.executable, __file__, "--first", str(data_dir), path],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip())


def main() -> None:
    if sys.argv[1:2] == ["--first"]:
        times = asyncio.run(_measure(Path(sys.argv[2]), sys.argv[3], 1))
        print(times[0] * 1000)
        return
    data_dir = scratch("status-page") / "data"
    for n in range(APPS):
        seed_app(data_dir, f"app-{n:02d}", RELEASES, host=f"app-{n:02d}.home.lan", failed_every=7)
    results = {}
    for path in PATHS:
        cold = [_cold(data_dir, path) for _ in range(COLD_ROUNDS)]
        warm = [t * 1000 for t in asyncio.run(_measure(data_dir, path, WARM_ROUNDS))]
        warm.sort()
        results[path] = {
            "first_load_ms_median": round(statistics.median(cold), 1),
            "first_load_ms_max": round(max(cold), 1),
            "warm_ms_p50": round(statistics.median(warm), 2),
            "warm_ms_p95": round(warm[int(len(warm) * 0.95) - 1], 2),
        }
    print(json.dumps({"apps": APPS, "releases_per_app": RELEASES, "results": results}, indent=2))
    page, api = results["/"], results["/api/apps"]
    print(
        f"status page: first load {page['first_load_ms_median']} ms (target <= 50), warm p50 "
        f"{page['warm_ms_p50']} ms; baseline /api/apps: first {api['first_load_ms_median']} ms, "
        f"warm p50 {api['warm_ms_p50']} ms"
    )


if __name__ == "__main__":
    main()

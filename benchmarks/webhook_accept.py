"""Webhook accept rate: cap + HMAC + dedup + enqueue, on loopback, measured with wrk.

Baseline in the same run: GET /healthz on the same server (the floor set by uvicorn and
starlette on this machine). Target: >= 1,500 req/s with p99 <= 25 ms on 2 cores.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import sys

from common import Homeport, need, scratch, start_redis

DURATION = "10s"
CONNECTIONS = "8"

LUA = """
counter = 0
request = function()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-GitHub-Event"] = "push"
  headers["X-Hub-Signature-256"] = "%(signature)s"
  headers["X-GitHub-Delivery"] = string.format("bench-%%d-%%d", math.random(1, 1000000000), counter)
  return wrk.format("POST", "/hooks/github", headers, '%(body)s')
end
"""


def wrk(url: str, script: str | None) -> tuple[float, float]:
    cmd = [need("wrk", "wrk"), "-t1", "-c" + CONNECTIONS, "-d" + DURATION, "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    value = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        sys.exit(f"{non2xx.group(1)} requests were refused:\n{out}")
    return rate, value


def main() -> None:
    work = scratch("webhook")
    redis = start_redis(work / "redis")
    hp = Homeport(data_dir=work / "data", redis_url=redis.url).start(workers=0)
    try:
        payload = {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": "a" * 40,
            "repository": {"name": "blog", "clone_url": "http://127.0.0.1:9/blog.git"},
        }
        body = json.dumps(payload)
        secret = hp.env()["HOMEPORT_WEBHOOK_SECRET"].encode()
        signature = "sha256=" + hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        script = work / "push.lua"
        script.write_text(LUA % {"signature": signature, "body": body})
        base_rate, base_p99 = wrk(hp.url + "/healthz", None)
        rate, p99 = wrk(hp.url + "/hooks/github", str(script))
        jobs = hp.api("GET", "/api/apps/blog/jobs").json()["jobs"]
        assert jobs, "no job was queued"
    finally:
        hp.stop()
        redis.stop()
    print(f"baseline GET /healthz:     {base_rate:8.0f} req/s  p99 {base_p99:6.2f} ms")
    print(f"webhook accept (enqueue):  {rate:8.0f} req/s  p99 {p99:6.2f} ms")
    print(f"ratio webhook/healthz:     {rate / base_rate:8.2f}")
    verdict = "met" if rate >= 1500 and p99 <= 25 else "NOT met"
    print(f"target: >= 1500 req/s, p99 <= 25 ms -> {verdict}")


if __name__ == "__main__":
    main()

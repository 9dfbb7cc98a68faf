"""Signed webhook deliveries and signed rollbacks, as providers and monitors send them."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import httpx

from tests.support.servers import WEBHOOK_SECRET, Homeport

ZERO = "0" * 40


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """GitHub's X-Hub-Signature-256 value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(
    clone_url: str,
    after: str,
    ref: str = "refs/heads/main",
    name: str = "blog",
    owner: str = "me",
    ssh_url: str | None = None,
) -> dict[str, Any]:
    """A GitHub/Gitea push event."""
    repository = {"name": name, "full_name": f"{owner}/{name}", "clone_url": clone_url}
    if ssh_url is not None:
        repository["ssh_url"] = ssh_url
    return {"ref": ref, "before": ZERO, "after": after, "repository": repository}


def github(
    hp: Homeport,
    body: bytes,
    *,
    delivery: str | None = "d-1",
    event: str = "push",
    signature: str | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {
        "X-GitHub-Event": event,
        "X-Hub-Signature-256": signature if signature is not None else sign(body),
        "Content-Type": "application/json",
        **(headers or {}),
    }
    if delivery:
        sent["X-GitHub-Delivery"] = delivery
    return httpx.post(hp.url + "/hooks/github" + query, content=body, headers=sent, timeout=30)


def jobs_of(hp: Homeport, app: str = "blog") -> list[dict[str, Any]]:
    response = hp.api("GET", f"/api/apps/{app}/jobs")
    if response.status_code == 404:
        return []
    jobs: list[dict[str, Any]] = response.json()["jobs"]
    return jobs


def rollback_headers(
    path: str,
    body: bytes,
    *,
    stamp: int | None = None,
    method: str = "POST",
    secret: str = WEBHOOK_SECRET,
) -> dict[str, str]:
    """X-Homeport-Timestamp and X-Homeport-Signature-256 for a signed rollback."""
    ts = str(int(time.time()) if stamp is None else stamp)
    message = f"{ts}\n{method}\n{path}\n".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {"X-Homeport-Timestamp": ts, "X-Homeport-Signature-256": f"sha256={digest}"}

"""Rollback hooks: a monitor's POST rolls back once, only while the release is young, and
never for a resolved alert."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest
import requests

from homeport import apps
from homeport.records import db, releases
from tests.support.registry import REGISTRY, delete_repository
from tests.support.servers import TOKEN, Homeport
from tests.support.webhooks import jobs_of

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

ALERTMANAGER_FIRING = {"version": "4", "status": "firing", "alerts": [{"status": "firing"}]}
ALERTMANAGER_RESOLVED = {"version": "4", "status": "resolved", "alerts": [{"status": "resolved"}]}
GRAFANA_RESOLVED = {"status": "resolved", "state": "alerting", "alerts": []}
GRAFANA_LEGACY_OK = {"state": "ok", "ruleName": "blog down"}
KUMA_UP = {"heartbeat": {"status": 1, "msg": "200 - OK"}, "monitor": {"name": "blog"}}
KUMA_TEST = {"heartbeat": None, "monitor": None, "msg": "Uptime Kuma test"}
KUMA_DOWN = {"heartbeat": {"status": 0, "msg": "timeout"}, "monitor": {"name": "blog"}}


def _push_manifest(repository: str) -> str:
    """Push a tiny image (a config blob, no layers) straight to the registry; its reference."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"test": uuid.uuid4().hex}},
        }
    ).encode()
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    base = f"http://{REGISTRY}/v2/{repository}"
    start = requests.post(f"{base}/blobs/uploads/", timeout=10)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    sep = "&" if "?" in location else "?"
    put = requests.put(f"{location}{sep}digest={digest}", data=config, timeout=10)
    assert put.status_code == 201, put.text
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": digest,
            },
            "layers": [],
        }
    ).encode()
    tag = uuid.uuid4().hex[:12]
    pushed = requests.put(
        f"{base}/manifests/{tag}", data=manifest, headers={"Content-Type": MANIFEST}, timeout=10
    )
    assert pushed.status_code == 201, pushed.text
    return f"{REGISTRY}/{repository}@{pushed.headers['Docker-Content-Digest']}"


@pytest.fixture
def app_name() -> Iterator[str]:
    name = f"hook-{uuid.uuid4().hex[:8]}"
    yield name
    delete_repository(name)


def _two_releases(hp: Homeport, app: str) -> None:
    """v1 was live, v2 is live now, each with its own image in the registry."""
    apps.create_repo(hp.data_dir, app, "main")
    for commit in ("a" * 40, "b" * 40):
        release = releases.create(
            hp.data_dir, app=app, commit=commit, image=_push_manifest(app), config={}
        )
        releases.mark_live(hp.data_dir, app, release.version)


def _cli(hp: Homeport, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_URL=hp.url, HOMEPORT_TOKEN=TOKEN, HOMEPORT_DATA_DIR=str(hp.data_dir))
    return subprocess.run(
        [sys.executable, "-m", "homeport", *args], env=env, capture_output=True, text=True
    )


def _create(hp: Homeport, app: str, within: str = "1h") -> str:
    made = _cli(hp, "hooks", "create", app, "--rollback", "--within", within)
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip().splitlines()[-1]
    assert url.startswith(f"{hp.url}/hooks/rollback/")
    return url


def _post(url: str, payload: object) -> httpx.Response:
    return httpx.post(url, json=payload, timeout=30)


def test_a_hook_rolls_back_once_and_ignores_resolved_alerts(
    receiver: Homeport, app_name: str
) -> None:
    """Resolved and test payloads do nothing; an alert rolls back to v1; a second does not."""
    _two_releases(receiver, app_name)
    url = _create(receiver, app_name)
    for payload in (
        ALERTMANAGER_RESOLVED,
        GRAFANA_RESOLVED,
        GRAFANA_LEGACY_OK,
        KUMA_UP,
        KUMA_TEST,
    ):
        answer = _post(url, payload)
        assert answer.status_code == 200, answer.text
        assert answer.json()["rolled_back"] is False
        assert "nothing done" in answer.json()["reason"]
    assert jobs_of(receiver, app_name) == []

    fired = _post(url, ALERTMANAGER_FIRING)
    assert fired.status_code == 202, fired.text
    assert (fired.json()["rolled_back"], fired.json()["target"]) == (True, 1)
    listed = jobs_of(receiver, app_name)
    assert [(j["id"], j["kind"], j["source"]) for j in listed] == [
        (fired.json()["job"], "rollback", "hook")
    ]

    again = _post(url, KUMA_DOWN)
    assert again.status_code == 200
    assert "rolled back by a hook already" in again.json()["reason"]
    assert len(jobs_of(receiver, app_name)) == 1


def test_a_hook_refuses_an_old_release_and_a_rollback(receiver: Homeport, app_name: str) -> None:
    """Past --within, or when the live release is itself a rollback, nothing is done."""
    _two_releases(receiver, app_name)
    url = _create(receiver, app_name, within="30m")
    with db.connect(receiver.data_dir) as conn:
        conn.execute(
            "UPDATE releases SET updated_at = updated_at - 7200 WHERE app = ? AND version = 2",
            (app_name,),
        )
    stale = _post(url, ALERTMANAGER_FIRING)
    assert stale.status_code == 200
    assert "has been live for 2h, longer than this hook's 30m" in stale.json()["reason"]

    rolled = releases.create(
        receiver.data_dir,
        app=app_name,
        commit="a" * 40,
        image=releases.get(receiver.data_dir, app_name, 1).image,
        config={},
        rollback_of=1,
    )
    releases.mark_live(receiver.data_dir, app_name, rolled.version, replaced="rolled_back")
    again = _post(url, ALERTMANAGER_FIRING)
    assert again.status_code == 200
    assert "is itself a rollback to v1" in again.json()["reason"]
    assert jobs_of(receiver, app_name) == []


def test_hook_urls_are_secret_and_do_not_shadow_webhooks(receiver: Homeport, app_name: str) -> None:
    """A wrong secret or id is 404; only a hash is stored; list and rm work; /hooks/github
    is untouched."""
    _two_releases(receiver, app_name)
    url = _create(receiver, app_name)
    hook_id, secret = url.rsplit("/", 2)[-2:]
    base = f"{receiver.url}/hooks/rollback"
    assert _post(f"{base}/{hook_id}/{'x' * len(secret)}", {}).status_code == 404
    assert _post(f"{base}/{'0' * 12}/{secret}", {}).status_code == 404
    assert _post(f"{base}/{hook_id}", {}).status_code == 404
    github = httpx.post(
        f"{receiver.url}/hooks/github", content=b"{}", headers={"X-Hub-Signature-256": "bad"}
    )
    assert github.status_code == 401

    stored = (
        sqlite3.connect(db.path_in(receiver.data_dir))
        .execute("SELECT * FROM rollback_hooks")
        .fetchall()
    )
    assert stored and secret not in repr(stored)

    listed = _cli(receiver, "hooks", "list", app_name, "--json")
    assert listed.returncode == 0, listed.stderr
    hooks = json.loads(listed.stdout)["hooks"]
    assert [h["id"] for h in hooks] == [hook_id] and secret not in listed.stdout
    removed = _cli(receiver, "hooks", "rm", hook_id)
    assert removed.returncode == 0, removed.stderr
    assert _post(url, ALERTMANAGER_FIRING).status_code == 404
    assert _cli(receiver, "hooks", "rm", hook_id).returncode == 1


def test_hook_requests_with_bad_input_get_clear_errors(receiver: Homeport, app_name: str) -> None:
    """A bad --within, an unknown app or a hook of no kind get 4xx saying what to send."""
    _two_releases(receiver, app_name)
    path = f"/api/apps/{app_name}/hooks"
    bad_within = receiver.api("POST", path, json={"rollback": True, "within": "forever"})
    assert (
        bad_within.status_code == 400 and "within must be a duration" in bad_within.json()["error"]
    )
    no_kind = receiver.api("POST", path, json={"within": "1h"})
    assert no_kind.status_code == 400 and "rollback" in no_kind.json()["error"]
    assert (
        receiver.api("POST", "/api/apps/nope-none/hooks", json={"rollback": True}).status_code
        == 404
    )
    assert httpx.get(receiver.url + path).status_code == 401

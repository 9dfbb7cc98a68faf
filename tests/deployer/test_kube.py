"""The Kubernetes adapter against a scripted fake API server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from homeport.deployer import kube as kube_module
from homeport.deployer.errors import RolloutError
from homeport.deployer.kube import Kube
from homeport.settings import Settings

Reply = tuple[int, Any]


class FakeApi:
    """Answers each request with the next scripted reply for its method, in order."""

    def __init__(self) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.seen: list[tuple[str, str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                fake.seen.append((self.command, self.path, self.headers.get("Content-Type", "")))
                replies = fake.script.get(self.command) or [(404, {"message": "unscripted"})]
                status, body = replies.pop(0) if len(replies) > 1 else replies[0]
                data = (
                    b"".join(json.dumps(e).encode() + b"\n" for e in body)
                    if isinstance(body, list)
                    else json.dumps(body).encode()
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[FakeApi, Settings]]:
    api = FakeApi()
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
                "users": [{"name": "u", "user": {"token": "t0ken"}}],
                "contexts": [{"name": "c", "context": {"cluster": "fake", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    yield api, Settings(namespace="apps", data_dir=tmp_path, kubeconfig=str(config))
    api.server.shutdown()
    api.server.server_close()


def test_server_errors_are_retried_until_the_server_answers(
    fake: tuple[FakeApi, Settings],
) -> None:
    """An API server restarting (503s) mid-rollout is waited for, not reported."""
    api, settings = fake
    api.script["GET"] = [(503, {}), (503, {}), (200, {"metadata": {"name": "web"}})]
    with Kube(settings) as kube:
        assert kube.get("deployments", "web") == {"metadata": {"name": "web"}}
    assert len(api.seen) == 3


def test_an_unreachable_server_is_named_with_what_to_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No API server at all: the error names the server and the kubeconfig to check."""
    monkeypatch.setattr(kube_module, "RETRY_FOR", 0.5)
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: x, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: x, user: u}}]\ncurrent-context: c\n"
    )
    settings = Settings(namespace="apps", data_dir=tmp_path, kubeconfig=str(config))
    with Kube(settings) as kube, pytest.raises(RolloutError) as failure:
        kube.get("deployments", "web")
    message = str(failure.value)
    assert "cannot reach the Kubernetes API server at http://127.0.0.1:9" in message
    assert f"HOMEPORT_KUBECONFIG={config}" in message


def test_forbidden_says_which_permission_to_grant(fake: tuple[FakeApi, Settings]) -> None:
    """A 403 points at deploy/rbac.yaml and the namespace."""
    api, settings = fake
    api.script["PATCH"] = [(403, {"message": 'deployments "web" is forbidden'})]
    with Kube(settings) as kube, pytest.raises(RolloutError, match=r"deploy/rbac\.yaml") as failure:
        kube.apply({"kind": "Deployment", "metadata": {"name": "web"}})
    assert "namespace 'apps'" in str(failure.value)


def test_apply_is_server_side_with_the_homeport_field_manager(
    fake: tuple[FakeApi, Settings],
) -> None:
    """apply() sends an apply patch as field manager homeport and re-applies after a 409."""
    api, settings = fake
    api.script["PATCH"] = [(409, {"message": "conflict"}), (200, {"kind": "Service"})]
    with Kube(settings) as kube:
        assert kube.apply({"kind": "Service", "metadata": {"name": "web"}}) == {"kind": "Service"}
    method, path, content_type = api.seen[-1]
    assert (method, content_type) == ("PATCH", "application/apply-patch+yaml")
    assert path.startswith("/api/v1/namespaces/apps/services/web?")
    assert "fieldManager=homeport" in path and "force=true" in path
    assert len(api.seen) == 2


def test_forbidden_namespace_create_is_tolerated(fake: tuple[FakeApi, Settings]) -> None:
    """A service account that may not create namespaces carries on in an existing one."""
    api, settings = fake
    api.script["POST"] = [(403, {"message": "forbidden"})]
    with Kube(settings) as kube:
        kube.ensure_namespace()


def test_expired_watch_is_listed_again(fake: tuple[FakeApi, Settings]) -> None:
    """A 410 Gone on a watch re-lists, then watches from the new resourceVersion."""
    api, settings = fake
    pod = {"metadata": {"name": "web-1", "resourceVersion": "12"}}
    api.script["GET"] = [
        (200, {"metadata": {"resourceVersion": "5"}, "items": []}),
        (200, [{"type": "ERROR", "object": {"kind": "Status", "code": 410}}]),
        (200, {"metadata": {"resourceVersion": "11"}, "items": [pod]}),
        (200, [{"type": "MODIFIED", "object": pod}]),
    ]
    stop = threading.Event()
    seen: list[str] = []
    with Kube(settings) as kube:
        for event in kube.watch("pods", stop, selector="app=web"):
            seen.append(event.type)
            if event.type == "MODIFIED":
                stop.set()
                break
    assert seen == ["SYNC", "SYNC", "MODIFIED"]
    watches = [path for _, path, _ in api.seen if "watch=1" in path]
    assert "resourceVersion=5" in watches[0]
    assert "resourceVersion=11" in watches[1]

"""An app deploys only from the repository it is bound to; the token holder can change it."""

from __future__ import annotations

import json

import httpx

from tests.support.servers import TOKEN, Homeport
from tests.support.webhooks import github, jobs_of, payload, sign


def _body(owner: str, name: str = "blog", after: str = "a" * 40) -> bytes:
    return json.dumps(
        payload("http://127.0.0.1:9/blog.git", after, name=name, owner=owner)
    ).encode()


def test_first_webhook_binds_the_app_to_its_repository(receiver: Homeport) -> None:
    """Another repository's webhook for a bound app is 403 naming both, by name or ?app=."""
    assert github(receiver, _body("me"), delivery="d-1").status_code == 202
    assert receiver.api("GET", "/api/apps/blog/source").json() == {
        "app": "blog",
        "repository": "github:me/blog",
    }
    by_name = github(receiver, _body("eve"), delivery="d-2")
    assert by_name.status_code == 403
    assert by_name.json()["error"] == (
        "app 'blog' is bound to github:me/blog, not github:eve/blog; "
        "change it with homeport source set blog github:eve/blog"
    )
    by_query = github(receiver, _body("eve", "site"), delivery="d-3", query="?app=blog")
    assert by_query.status_code == 403
    assert "bound to github:me/blog, not github:eve/site" in by_query.json()["error"]
    # The same repository deploys again; owner and name compare without case, as GitHub does.
    again = github(receiver, _body("Me", after="b" * 40), delivery="d-4")
    assert again.status_code == 202, again.text
    assert len(jobs_of(receiver)) == 2
    # The eve/site delivery did not create or bind an app of its own.
    assert receiver.api("GET", "/api/apps/site/source").status_code == 404


def test_another_provider_with_the_same_name_is_another_repository(receiver: Homeport) -> None:
    """gitea:me/blog cannot deploy an app bound to github:me/blog."""
    assert github(receiver, _body("me"), delivery="d-1").status_code == 202
    body = _body("me", after="c" * 40)
    response = httpx.post(
        receiver.url + "/hooks/gitea",
        content=body,
        headers={
            "X-Gitea-Event": "push",
            "X-Gitea-Delivery": "g-1",
            "X-Gitea-Signature": sign(body)[7:],
        },
    )
    assert response.status_code == 403
    assert "not gitea:me/blog" in response.json()["error"]


def test_token_holder_sets_and_clears_the_binding(receiver: Homeport) -> None:
    """PUT rebinds, DELETE unbinds so that the next deploying webhook binds again."""
    assert github(receiver, _body("me"), delivery="d-1").status_code == 202
    moved = receiver.api("PUT", "/api/apps/blog/source", json={"repository": "github:eve/blog"})
    assert moved.json() == {"app": "blog", "repository": "github:eve/blog"}
    assert github(receiver, _body("me", after="b" * 40), delivery="d-2").status_code == 403
    assert github(receiver, _body("eve", after="c" * 40), delivery="d-3").status_code == 202
    cleared = receiver.api("DELETE", "/api/apps/blog/source")
    assert cleared.json() == {"app": "blog", "repository": None}
    assert github(receiver, _body("other", after="d" * 40), delivery="d-4").status_code == 202
    bound = receiver.api("GET", "/api/apps/blog/source").json()["repository"]
    assert bound == "github:other/blog"


def test_a_name_can_be_bound_before_its_first_webhook(receiver: Homeport) -> None:
    """Binding a new name first keeps other repositories from creating that app."""
    put = receiver.api(
        "PUT", "/api/apps/notes/source", json={"repository": "gitlab:group/sub/notes"}
    )
    assert put.status_code == 200, put.text
    refused = github(receiver, _body("me", "notes"), delivery="d-1")
    assert refused.status_code == 403
    assert "bound to gitlab:group/sub/notes" in refused.json()["error"]
    assert jobs_of(receiver, "notes") == []


def test_source_api_refuses_bad_input(receiver: Homeport) -> None:
    """Malformed repositories and bodies are 400, unknown apps 404, and the token is needed."""
    for body in (
        {"repository": "me/blog"},
        {"repository": "bitbucket:me/blog"},
        {"repository": "github:blog"},
        {"repository": "github:me/../blog"},
        {"repository": "github:me/blog\n"},
        {"repository": 7},
        {},
    ):
        response = receiver.api("PUT", "/api/apps/blog/source", json=body)
        assert response.status_code == 400, body
        assert "github:me/blog" in response.json()["error"]
    bad_json = receiver.api("PUT", "/api/apps/blog/source", content=b"{nope")
    assert bad_json.status_code == 400
    assert receiver.api("GET", "/api/apps/nope/source").status_code == 404
    assert receiver.api("DELETE", "/api/apps/nope/source").status_code == 404
    assert receiver.api("GET", "/api/apps/No.Pe/source").status_code == 400
    assert httpx.get(receiver.url + "/api/apps/blog/source").status_code == 401
    assert (
        httpx.put(
            receiver.url + "/api/apps/blog/source",
            json={"repository": "github:eve/blog"},
            headers={"Authorization": "Bearer " + TOKEN[:-1]},
        ).status_code
        == 401
    )


def test_payload_without_full_name_is_refused(receiver: Homeport) -> None:
    """Without repository.full_name homeport cannot tell repositories apart: 400."""
    data = payload("http://127.0.0.1:9/blog.git", "a" * 40)
    del data["repository"]["full_name"]
    response = github(receiver, json.dumps(data).encode())
    assert response.status_code == 400
    assert "repository.full_name" in response.json()["error"]
    assert jobs_of(receiver) == []

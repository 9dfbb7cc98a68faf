"""DELETE /api/apps/{app}: the refusals, answered before anything is removed."""

from __future__ import annotations

from homeport import apps
from homeport.lifecycle import removal
from homeport.records import db, jobs
from tests.support.gitwork import WorkTree
from tests.support.records import queued_job
from tests.support.servers import Homeport


def test_bad_requests_remove_nothing(receiver: Homeport) -> None:
    """Unknown app 404, a wrong or missing confirmation 400, an oversized body 413."""
    apps.create_repo(receiver.data_dir, "blog", "main")
    assert receiver.api("DELETE", "/api/apps/nosuch", json={"confirm": "nosuch"}).status_code == 404
    assert receiver.api("DELETE", "/api/apps/No.Pe", json={"confirm": "No.Pe"}).status_code == 400
    for body in ({"confirm": "blg"}, {}, {"confirm": ["blog"]}, [], "blog"):
        answer = receiver.api("DELETE", "/api/apps/blog", json=body)
        assert answer.status_code == 400, body
        assert 'send {"confirm": "blog"}' in answer.json()["error"]
    answer = receiver.api("DELETE", "/api/apps/blog", content=b"{not json")
    assert answer.status_code == 400
    answer = receiver.api("DELETE", "/api/apps/blog", json={"confirm": "blog", "volumes": "yes"})
    assert (answer.status_code, answer.json()) == (400, {"error": "volumes must be true or false"})
    big = receiver.api("DELETE", "/api/apps/blog", content=b"{" + b" " * 5000 + b"}")
    assert big.status_code == 413
    assert apps.exists(receiver.data_dir, "blog")


def test_an_app_with_a_job_waiting_is_not_removed(receiver: Homeport) -> None:
    """409 while a job of the app is queued or running, naming it; the app stays."""
    apps.create_repo(receiver.data_dir, "blog", "main")
    job = queued_job(receiver.data_dir, "blog", source="api")
    answer = receiver.api("DELETE", "/api/apps/blog", json={"confirm": "blog"})
    assert answer.status_code == 409
    assert f"has a job queued ({job.id}); wait for it to end" in answer.json()["error"]
    assert apps.exists(receiver.data_dir, "blog")
    assert jobs.get(receiver.data_dir, job.id).status == "queued"


def test_no_job_starts_while_an_app_is_being_removed(receiver: Homeport, work: WorkTree) -> None:
    """A push to an app being removed is refused with the reason; afterwards it is accepted."""
    with db.connect(receiver.data_dir) as tx:
        removal.begin(tx, "blog")
    work.commit("first", **{"a.txt": "a"})
    pushed = work.push(receiver.remote("blog"))
    assert pushed.returncode != 0
    assert "app 'blog' is being removed (homeport apps destroy)" in pushed.stderr
    with db.connect(receiver.data_dir) as tx:
        removal.end(tx, "blog")
    assert queued_job(receiver.data_dir, "blog", source="api").status == "queued"

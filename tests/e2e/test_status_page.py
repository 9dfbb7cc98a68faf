"""The status page in a real browser: log in, watch a push go live, follow it, roll back."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from homeport.records import db
from tests.support.browser import DESKTOP, PHONE
from tests.support.cluster import build_and_push
from tests.support.gitwork import WorkTree
from tests.support.records import seed_app
from tests.support.servers import TOKEN, Homeport, start_redis
from tests.support.waiting import wait_until

# Slow to become ready, so that the job page is open while the rollout goes on.
SLOW_START = """FROM homeport-base:busybox
COPY . /www
CMD ["sh", "-c", "sleep 8; exec httpd -f -p 8080 -h /www"]
"""
MANIFEST = '[ingress]\nhost = "{app}.home.lan"\n'


def _by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def _text(driver: Any, element_id: str) -> str:
    from selenium.common.exceptions import NoSuchElementException

    try:
        return str(_by_id(driver, element_id).text)
    except NoSuchElementException:
        return ""


def _log_in(driver: Any, hp: Homeport, token: str) -> None:
    driver.get(hp.url + "/")
    wait_until(lambda: "/login" in driver.current_url, timeout=10, what="the login form")
    field = _by_id(driver, "token")
    field.clear()
    field.send_keys(token)
    _by_id(driver, "login").click()


def _job_id(hp: Homeport, app: str, kind: str, count: int) -> str:
    def found() -> str | None:
        answer = hp.api("GET", f"/api/apps/{app}/jobs")
        listed = answer.json().get("jobs", []) if answer.status_code == 200 else []
        ours = [j for j in listed if j["kind"] == kind]
        return str(ours[0]["id"]) if len(ours) >= count else None

    job: str = wait_until(found, timeout=120, what=f"{kind} job {count} of {app}", interval=0.1)
    return job


def _follow_job_page(driver: Any, hp: Homeport, app: str, job: str) -> str:
    """Open the job's page while it runs; return the output the page streamed in place."""
    driver.get(f"{hp.url}/apps/{app}/jobs/{job}")
    first = _text(driver, "log")
    assert "is live" not in first, "the job ended before its page opened"
    # Lost if the page reloads: the output below must arrive in this very page.
    driver.execute_script("window.homeportTestMark = 'still here';")

    def ended() -> bool:
        return _text(driver, "log-state") == "Ended."

    wait_until(ended, timeout=180, what=f"the page of job {job} to show it ended", interval=0.2)
    assert driver.execute_script("return window.homeportTestMark;") == "still here"
    return _text(driver, "log")


def _shoot(driver: Any, url: str, name: str, folder: Path) -> None:
    for label, (width, height) in (("phone", PHONE), ("desktop", DESKTOP)):
        driver.set_window_size(width, height)
        driver.get(url)
        full = driver.execute_script("return document.documentElement.scrollHeight;")
        driver.set_window_size(width, max(height, min(int(full) + 140, 2400)))
        driver.save_screenshot(str(folder / f"{name}-{label}.png"))
    driver.set_window_size(*DESKTOP)


def test_log_in_watch_a_push_go_live_follow_it_and_roll_back(
    homeport: Homeport, work: WorkTree, chrome: Any, tmp_path: Path
) -> None:
    """A browser logs in, sees a pushed app go live, follows its jobs and rolls it back."""
    driver = chrome
    app = f"blog-{uuid.uuid4().hex[:4]}"

    # A wrong token is refused; the right one opens the status page.
    _log_in(driver, homeport, "wrong-token-0123456789")
    wait_until(
        lambda: "That token is not right" in _text(driver, "login-error"),
        timeout=10,
        what="the login form to refuse a wrong token",
    )
    _log_in(driver, homeport, TOKEN)
    wait_until(
        lambda: driver.current_url.rstrip("/") == homeport.url,
        timeout=10,
        what="the status page after logging in",
    )
    assert "No apps yet" in driver.page_source

    # A real push; its job page follows the output as it is written.
    work.write("Dockerfile", SLOW_START)
    work.write("homeport.toml", MANIFEST.format(app=app))
    first = work.commit("first", **{"index.html": "<h1>first</h1>"})
    push = work.push_async(homeport.remote(app))
    try:
        job = _job_id(homeport, app, "deploy", 1)
        streamed = _follow_job_page(driver, homeport, app, job)
    finally:
        push.communicate(timeout=300)
    assert push.returncode == 0
    assert f"-----> Building {app}@{first[:7]}" in streamed
    assert f"-----> {app} v1 is live" in streamed
    assert "succeeded" in _text(driver, "job-status")

    # The status page shows the app live, with its commit and host.
    driver.get(homeport.url + "/")
    row = _text(driver, f"app-{app}")
    assert "v1" in row and first[:12] in row and "succeeded" in row
    assert f"{app}.home.lan" in row

    # A second release, then a rollback to v1 from the app page, through its confirmation.
    work.commit("second", **{"index.html": "<h1>second</h1>"})
    assert work.push(homeport.remote(app)).returncode == 0
    driver.get(f"{homeport.url}/apps/{app}")
    assert "live" in _text(driver, "release-2")
    assert " push " in _text(driver, "release-2")
    _by_id(driver, "rollback-1").click()
    wait_until(
        lambda: "roll back to v1" in _text(driver, "confirm"), timeout=10, what="the confirmation"
    )
    assert "/rollback?version=1" in driver.current_url
    assert homeport.api("GET", f"/api/apps/{app}/releases").json()["releases"][0]["version"] == 2
    _by_id(driver, "confirm").click()
    wait_until(lambda: "/jobs/" in driver.current_url, timeout=30, what="the rollback's job page")
    wait_until(
        lambda: _text(driver, "log-state") == "Ended.",
        timeout=180,
        what="the rollback job to end on its page",
        interval=0.2,
    )
    assert f"-----> Rolling back {app} to v1 as v3" in _text(driver, "log")
    assert "succeeded" in _text(driver, "job-status")
    listed = homeport.api("GET", f"/api/apps/{app}/releases").json()["releases"]
    assert [(r["version"], r["status"], r["rollback_of"]) for r in listed][:2] == [
        (3, "live", 1),
        (2, "rolled_back", None),
    ]
    assert listed[0]["commit"] == first
    (rollback_job,) = [
        j
        for j in homeport.api("GET", f"/api/apps/{app}/jobs").json()["jobs"]
        if j["kind"] == "rollback"
    ]
    assert rollback_job["source"] == "page"
    # Config keys show, masked; their values never reach the page.
    secret = "s3cr3t-" + uuid.uuid4().hex
    configured = homeport.api(
        "POST",
        f"/api/apps/{app}/config",
        json={"set": {"API_KEY": secret, "MODE": "prod"}, "deploy": False},
    )
    assert configured.status_code == 200, configured.text
    driver.get(f"{homeport.url}/apps/{app}")
    assert "rollback (page)" in _text(driver, "release-3")
    assert _text(driver, "config").split() == ["API_KEY", "********", "MODE", "********"]
    assert secret not in driver.page_source and "prod" not in _text(driver, "config")

    # Screenshots of both pages at phone and desktop widths.
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    _shoot(driver, homeport.url + "/", "status-page", folder)
    _shoot(driver, f"{homeport.url}/apps/{app}", "app-page", folder)
    assert all(
        (folder / f"{n}-{w}.png").stat().st_size > 5000
        for n in ("status-page", "app-page")
        for w in ("phone", "desktop")
    )


def test_a_rollback_while_redis_is_down_is_a_503_page_naming_it(
    tmp_path: Path, start_receiver: Callable[..., Homeport], docker_services: str
) -> None:
    """The image is in the registry but the queue is down: the page says Redis, with 503."""
    dead = start_redis(tmp_path / "dead-redis")
    dead.stop()
    hp = start_receiver(HOMEPORT_REDIS_URL=dead.url)
    app = f"down-{uuid.uuid4().hex[:6]}"
    seed_app(hp.data_dir, app, 2)
    image = build_and_push(app, {"www/index.html": "v1"})
    with db.connect(hp.data_dir) as conn:  # v1 restorable: its image really is in the registry
        conn.execute("UPDATE releases SET image = ? WHERE app = ? AND version = 1", (image, app))
    answer = httpx.post(
        f"{hp.url}/apps/{app}/rollback",
        headers={"Authorization": f"Bearer {TOKEN}"},
        data={"version": "1"},
        timeout=60,
    )
    assert answer.status_code == 503, answer.text[:500]
    assert "Redis is unavailable" in answer.text and "cannot reach Redis" in answer.text
    assert answer.headers["retry-after"] == "5"

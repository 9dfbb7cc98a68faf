"""Release commands: a Job from the new image before any web pod changes, on the test cluster."""

from __future__ import annotations

from dataclasses import replace

import pytest

from homeport import lifecycle
from homeport.deployer import objects, release_command
from homeport.deployer.kube import Kube
from homeport.lifecycle import ReleaseFailed
from homeport.records import releases
from homeport.settings import Settings
from homeport.spec import RunSpec
from tests.deployer import images
from tests.deployer.conftest import Apps
from tests.deployer.test_deploy import APP, HEALTHY, _deploy, _get, _page_poller, _rollback
from tests.support.cluster import build_and_push


def _command(*args: str, timeout: int = 60, rerun: bool = False) -> RunSpec:
    return replace(
        HEALTHY,
        release_command=("sh", "-c", *args),
        release_timeout=timeout,
        release_rerun_on_rollback=rerun,
    )


def _generation(settings: Settings) -> tuple[int, int | None]:
    """The web Deployment's generation and the release its pods run."""
    with Kube(settings) as kube:
        found = kube.get("deployments", APP)
    assert found is not None
    return int(found["metadata"]["generation"]), objects.template_release(found)


def _jobs(settings: Settings) -> list[str]:
    with Kube(settings) as kube:
        listed = kube.list("jobs", selector=objects.selector(APP))
    return sorted(item["metadata"]["name"] for item in listed.get("items") or [])


def test_job_body_runs_once_within_the_timeout_and_takes_no_traffic() -> None:
    """The Job runs once, for at most the timeout, and its pod carries no app label."""
    spec = replace(HEALTHY, release_command=("/app/migrate", "--up"), release_timeout=42)
    body = release_command.job("blog", 7, "r/blog@sha256:" + "a" * 64, spec, "blog-v7")
    assert body["metadata"]["name"] == "blog-release-v7"
    assert body["spec"]["backoffLimit"] == 0
    assert body["spec"]["activeDeadlineSeconds"] == 42
    pod = body["spec"]["template"]
    assert objects.NAME_LABEL not in pod["metadata"]["labels"]  # the Service never routes to it
    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["/app/migrate", "--up"]
    assert "command" not in container  # the image's ENTRYPOINT stays
    assert container["envFrom"] == [{"secretRef": {"name": "blog-v7"}}]
    assert pod["spec"]["restartPolicy"] == "Never"


@pytest.mark.cluster
def test_release_command_runs_with_the_new_env_and_its_output_is_followed(
    settings: Settings, apps: Apps
) -> None:
    """The command's output arrives line by line, with the release's env, before the rollout."""
    lines: list[str] = []
    spec = _command('echo "migrating for $GREETING"; echo step two', rerun=False)
    release = _deploy(settings, apps.one, spec, lines)
    assert release.status == "live"
    assert release.cause == "push"
    start = next(i for i, line in enumerate(lines) if line.startswith("-----> Running the"))
    assert lines[start] == (
        "-----> Running the release command of web v1:"
        " sh -c 'echo \"migrating for $GREETING\"; echo step two'"
    )
    assert lines[start + 1 : start + 3] == ["       migrating for hello", "       step two"]
    assert lines[start + 3].startswith("       release command finished in ")
    assert lines[start + 4].startswith("-----> Rolling out web v1")
    assert _get(settings) == (200, "release one")
    assert _jobs(settings) == ["web-release-v1"]


@pytest.mark.cluster
def test_failing_release_command_leaves_the_old_release_serving(
    settings: Settings, apps: Apps
) -> None:
    """Exit 3 fails the release with its last line; the web Deployment is never changed."""
    _deploy(settings, apps.one)
    before = _generation(settings)
    lines: list[str] = []
    with _page_poller(settings) as poller:
        with pytest.raises(ReleaseFailed) as failure:
            _deploy(
                settings,
                apps.two,
                _command("echo starting; sleep 2; echo 'no table users' >&2; exit 3"),
                lines,
            )
    assert str(failure.value) == (
        "web v2 failed: release command exited with 3: no table users; v1 is still live"
    )
    assert lines[1:4] == ["       starting", "       no table users"], lines
    assert not any(line.startswith("-----> Rolling out web v2") for line in lines)
    assert _generation(settings) == before
    assert len(poller.answers) > 5
    assert {answer for answer in poller.answers} == {(200, "release one")}
    failed = releases.get(settings.data_dir, APP, 2)
    assert (failed.status, failed.reason) == (
        "failed",
        "release command exited with 3: no table users",
    )
    assert releases.live(settings.data_dir, APP).version == 1  # type: ignore[union-attr]


@pytest.mark.cluster
def test_hanging_release_command_times_out_and_the_old_release_keeps_serving(
    settings: Settings, apps: Apps
) -> None:
    """A command past its timeout fails the release; the old pods served throughout."""
    _deploy(settings, apps.one)
    before = _generation(settings)
    with _page_poller(settings) as poller:
        with pytest.raises(ReleaseFailed) as failure:
            _deploy(settings, apps.two, _command("echo waiting forever; sleep 600", timeout=4))
    assert str(failure.value) == (
        "web v2 failed: release command timed out after 4 s; v1 is still live"
    )
    assert _generation(settings) == before
    assert len(poller.answers) > 5
    assert {answer for answer in poller.answers} == {(200, "release one")}
    with Kube(settings) as kube:
        pods = kube.list("pods", selector=f"{release_command.JOB_LABEL}=web-release-v2")["items"]
    # The Job controller is stopping the command (its pod has its grace period to end).
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    assert [p for p in running if not p["metadata"].get("deletionTimestamp")] == []


@pytest.mark.cluster
def test_a_failing_first_release_command_says_nothing_was_rolled_out(
    settings: Settings, apps: Apps
) -> None:
    """Without an earlier release the failure says nothing was rolled out, and nothing was."""
    with pytest.raises(ReleaseFailed, match=r"exited with 1 \(no output\); nothing was rolled"):
        _deploy(settings, apps.one, _command("exit 1"))
    with Kube(settings) as kube:
        assert kube.get("deployments", APP) is None


@pytest.mark.cluster
def test_rollback_skips_the_release_command_unless_asked_and_retention_drops_jobs(
    settings: Settings, apps: Apps
) -> None:
    """A rollback says it skips the command; with rerun_on_rollback it runs it again."""
    _deploy(settings, apps.one, _command("echo migrate one"))
    _deploy(settings, apps.two, _command("echo migrate two", rerun=True))
    _deploy(settings, apps.three)
    lines: list[str] = []
    rolled = _rollback(settings, 1, lines)
    assert rolled.cause == "rollback"
    assert (
        "       the release command is not run for a rollback"
        " (set [release] rerun_on_rollback = true to run it)"
    ) in lines
    assert "       migrate one" not in lines
    assert _get(settings) == (200, "release one")
    lines.clear()
    rolled = _rollback(settings, 2, lines)
    assert "       the release command runs again: [release] rerun_on_rollback = true" in lines
    assert "       migrate two" in lines
    assert _get(settings) == (200, "release two")
    assert _jobs(settings) == ["web-release-v1", "web-release-v2", "web-release-v5"]
    # Retention of one image keeps v2 and v5 (the live image): v1's Job goes with v1.
    lifecycle.keep_releases(replace(settings, keep_releases=1), APP, print)
    assert _jobs(settings) == ["web-release-v2", "web-release-v5"]


@pytest.mark.cluster
def test_release_command_keeps_the_images_entrypoint(settings: Settings) -> None:
    """As processes, cron and runs do: the command replaces CMD and runs through ENTRYPOINT."""
    image = build_and_push(
        "hp-web-entrypoint",
        {"www/index.html": "through the entrypoint\n", "www/healthz": "ok\n"},
        [images.SERVE],
        entrypoint=["sh", "-c"],
    )
    spec = replace(HEALTHY, release_command=("echo migrated by $0",), release_timeout=60)
    lines: list[str] = []
    release = _deploy(settings, image, spec, lines)
    assert release.status == "live"
    assert "       migrated by sh" in lines
    assert _get(settings) == (200, "through the entrypoint")

"""A second rollout of an app is refused while one runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeport import releases
from homeport.config import Settings
from homeport.deployer import deploy
from homeport.deployer.errors import RolloutError
from homeport.deployer.spec import RunSpec

IMAGE = "127.0.0.1:5000/blog@sha256:" + "1f" * 32


def test_deploy_and_rollback_wait_for_a_running_rollout(tmp_path: Path) -> None:
    """While v1 is deploying, neither a deploy nor a rollback of the app may start."""
    settings = Settings(data_dir=tmp_path, kubeconfig=str(tmp_path / "unused"))
    releases.create(
        tmp_path, app="blog", commit="c", image=IMAGE, config=deploy.snapshot(RunSpec(), {})
    )
    with pytest.raises(RolloutError, match="blog v1 is still rolling out"):
        deploy.deploy(
            settings,
            app="blog",
            commit="d",
            image_ref=IMAGE,
            spec=RunSpec(),
            secret_env={},
            job_id=None,
            emit=print,
        )
    with pytest.raises(RolloutError, match="blog v1 is still rolling out"):
        deploy.rollback(settings, app="blog", version=None, job_id=None, emit=print)
    assert len(releases.history(tmp_path, "blog")) == 1


def test_snapshot_keeps_env_names_not_values() -> None:
    """The release record keeps the env's names only; values stay in the Secret."""
    spec = RunSpec(env={"GREETING": "hi"})
    snap = deploy.snapshot(spec, {"GREETING": "hi", "TOKEN": "s3cret"})
    assert snap["env_keys"] == ["GREETING", "TOKEN"]
    assert "s3cret" not in repr(snap) and "hi" not in repr(snap["spec"])


def test_short_image_shortens_the_digest_for_people() -> None:
    """Progress lines show a 12-character digest prefix."""
    assert deploy.short_image(IMAGE) == "127.0.0.1:5000/blog@sha256:1f1f1f1f1f1f…"

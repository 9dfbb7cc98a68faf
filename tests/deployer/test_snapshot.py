"""What a release record keeps, and how images are shown."""

from __future__ import annotations

from homeport.deployer import deploy
from homeport.spec import RunSpec

IMAGE = "127.0.0.1:5000/blog@sha256:" + "1f" * 32


def test_snapshot_keeps_env_names_not_values() -> None:
    """The release record keeps the env's names only; values stay in the Secret."""
    spec = RunSpec(env={"GREETING": "hi"})
    snap = deploy.snapshot(spec, {"GREETING": "hi", "TOKEN": "s3cret"})
    assert snap["env_keys"] == ["GREETING", "TOKEN"]
    assert "s3cret" not in repr(snap) and "hi" not in repr(snap["spec"])


def test_short_image_shortens_the_digest_for_people() -> None:
    """Progress lines show a 12-character digest prefix."""
    assert deploy.short_image(IMAGE) == "127.0.0.1:5000/blog@sha256:1f1f1f1f1f1f…"

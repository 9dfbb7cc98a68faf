"""Settings from HOMEPORT_* variables."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from homeport.config import Settings, parse_size
from homeport.errors import ConfigError


def test_defaults() -> None:
    """With nothing set, the documented defaults apply."""
    s = Settings.from_env({})
    assert (s.listen, s.registry, s.namespace, s.deploy_branch) == (
        "127.0.0.1:8080",
        "127.0.0.1:5000",
        "homeport-apps",
        "main",
    )
    assert s.redis_url is None and s.queue_url.startswith("unix://")
    assert s.max_webhook_bytes == 1024 * 1024
    assert s.max_log_bytes == 10 * 1024 * 1024
    assert s.job_wait == 1800 + 180  # the job timeout plus a margin


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOMEPORT_LISTEN", "8080"),
        ("HOMEPORT_LISTEN", "host:99999"),
        ("HOMEPORT_WORKERS", "0"),
        ("HOMEPORT_WORKERS", "many"),
        ("HOMEPORT_MAX_PUSH_BYTES", "lots"),
        ("HOMEPORT_MAX_LOG_BYTES", "1k"),
        ("HOMEPORT_ALLOW_FILE_URLS", "maybe"),
        ("HOMEPORT_NAMESPACE", "Apps"),
        ("HOMEPORT_DEPLOY_BRANCH", "../x"),
        ("HOMEPORT_DEPLOY_BRANCH", "main\n"),
        ("HOMEPORT_NAMESPACE", "apps\n"),
        ("HOMEPORT_LISTEN", "127.0.0.1:\uff18\uff10"),  # full-width digits
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    """A bad value fails at start-up with the variable's name in the message."""
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_sizes() -> None:
    """Sizes take plain bytes or k/m/g suffixes."""
    assert parse_size("512") == 512
    assert parse_size("64k") == 65536
    assert parse_size("1GiB") == 1024**3


def test_token_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    """Without HOMEPORT_TOKEN a token is generated, stored 0600 and reused."""
    s = Settings.from_env({"HOMEPORT_DATA_DIR": str(tmp_path)})
    token = s.resolve_token()
    assert len(token) >= 32
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert s.resolve_token() == token
    assert Settings.from_env({"HOMEPORT_TOKEN": "given"}).resolve_token() == "given"

"""Settings from HOMEPORT_* variables."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from homeport.errors import ConfigError
from homeport.settings import Settings, parse_size, show_size


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
    assert (s.max_blob_bytes, s.max_context_bytes) == (256 * 1024**2, 1024**3)
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
        ("HOMEPORT_MAX_BLOB_BYTES", "big"),
        ("HOMEPORT_MAX_CONTEXT_BYTES", "-1"),
        ("HOMEPORT_ALLOW_FILE_URLS", "maybe"),
        ("HOMEPORT_NAMESPACE", "Apps"),
        ("HOMEPORT_DEPLOY_BRANCH", "../x"),
        ("HOMEPORT_TOKEN", "a" * 15),
        ("HOMEPORT_WEBHOOK_SECRET", "short"),
        ("HOMEPORT_GITLAB_TOKEN", "x"),
        ("HOMEPORT_MAX_LOG_BYTES", "1k"),
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
    assert Settings.from_env({"HOMEPORT_MAX_BLOB_BYTES": "300m"}).max_blob_bytes == 300 * 1024**2


def test_sizes_are_shown_in_the_units_they_are_set_in() -> None:
    """Messages show sizes as MB/KB, with one decimal only when needed."""
    assert show_size(300 * 1024**2) == "300 MB"
    assert show_size(256 * 1024**2 + 100 * 1024) == "256.1 MB"
    assert show_size(2 * 1024**3) == "2 GB"
    assert show_size(64 * 1024) == "64 KB"
    assert show_size(100) == "100 bytes"


def test_token_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    """Without HOMEPORT_TOKEN a token is generated, stored 0600 and reused."""
    s = Settings.from_env({"HOMEPORT_DATA_DIR": str(tmp_path)})
    token = s.resolve_token()
    # token_urlsafe(32): 32 random bytes, 43 characters.
    assert len(token) == 43
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert s.resolve_token() == token
    given = "given-token-of-16"
    assert Settings.from_env({"HOMEPORT_TOKEN": given}).resolve_token() == given


def test_secrets_of_16_characters_are_accepted() -> None:
    """16 characters is the minimum for the token, the webhook secret and the GitLab token."""
    s = Settings.from_env(
        {
            "HOMEPORT_TOKEN": "t" * 16,
            "HOMEPORT_WEBHOOK_SECRET": "w" * 16,
            "HOMEPORT_GITLAB_TOKEN": "g" * 16,
        }
    )
    assert (s.token, s.webhook_secret, s.gitlab_token) == ("t" * 16, "w" * 16, "g" * 16)
    assert set(s.secrets()) == {"t" * 16, "w" * 16, "g" * 16}


def test_gitlab_token_must_differ_from_the_webhook_secret() -> None:
    """GitLab sends its token in plain text: reusing the webhook secret is refused."""
    with pytest.raises(ConfigError, match="HOMEPORT_GITLAB_TOKEN: must differ"):
        Settings.from_env({"HOMEPORT_WEBHOOK_SECRET": "s" * 20, "HOMEPORT_GITLAB_TOKEN": "s" * 20})


def test_a_short_stored_token_is_refused(tmp_path: Path) -> None:
    """A token file edited down to a short value stops start-up, naming the file."""
    (tmp_path / "token").write_text("short\n")
    s = Settings.from_env({"HOMEPORT_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="token"):
        s.resolve_token()


def test_serve_refuses_a_short_token_without_showing_it(tmp_path: Path) -> None:
    """`homeport serve` exits 1 naming HOMEPORT_TOKEN; the value is not printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(
        HOMEPORT_DATA_DIR=str(tmp_path),
        HOMEPORT_REDIS_URL="redis://127.0.0.1:9",
        HOMEPORT_TOKEN="hunter2-secret",
    )
    result = subprocess.run(
        [sys.executable, "-m", "homeport", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "HOMEPORT_TOKEN: is 14 characters long; use at least 16" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "http://:s3cret-pw@127.0.0.1:6379/0",
        "redis://:s3cret-pw@127.0.0.1:port/0",
        "s3cret-pw",
        "redis://:s3cret-pw@",
    ],
)
def test_bad_redis_url_never_shows_its_password(url: str) -> None:
    """A Redis URL homeport cannot use is named, and its value (maybe a password) is not shown."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"HOMEPORT_REDIS_URL": url})
    assert str(caught.value).startswith("HOMEPORT_REDIS_URL: is not a Redis URL")
    assert "s3cret-pw" not in str(caught.value)


def test_redis_password_is_a_secret() -> None:
    """The password in HOMEPORT_REDIS_URL is masked in output and hidden in messages."""
    s = Settings.from_env({"HOMEPORT_REDIS_URL": "redis://:p%40ss%2Fword@10.0.0.5:6379/0"})
    assert s.redis_password == "p@ss/word"
    assert {"p@ss/word", "p%40ss%2Fword"} <= set(s.secrets())
    assert s.queue_shown == "redis://:***@10.0.0.5:6379/0"
    plain = Settings.from_env({"HOMEPORT_REDIS_URL": "redis://10.0.0.5:6379/0"})
    assert plain.redis_password is None and plain.queue_shown == "redis://10.0.0.5:6379/0"
    assert Settings.from_env({"HOMEPORT_REDIS_URL": "unix:///run/redis.sock"}).secrets() == []


def test_urls_for_a_wildcard_listen_use_this_machines_name_and_loopback() -> None:
    """0.0.0.0 is nobody's address: printed URLs name this machine, the CLI uses loopback."""
    s = Settings.from_env({"HOMEPORT_LISTEN": "0.0.0.0:8080"})
    assert s.public_url == f"http://{socket.gethostname()}:8080"
    assert s.local_url == "http://127.0.0.1:8080"
    told = Settings.from_env({"HOMEPORT_LISTEN": "0.0.0.0:8080", "HOMEPORT_URL": "http://b.lan/"})
    assert told.public_url == told.local_url == "http://b.lan"


@pytest.mark.parametrize("url", ["box.lan:8080", "http://u:p@box.lan", "http://box.lan/?x=1"])
def test_a_url_homeport_cannot_print_is_refused_at_start(url: str) -> None:
    """HOMEPORT_URL must be an http(s) URL of scheme, host, port and path."""
    with pytest.raises(ConfigError, match="HOMEPORT_URL"):
        Settings.from_env({"HOMEPORT_URL": url})

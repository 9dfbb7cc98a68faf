"""The lifecycle's import surface: every name resolves, typed, and loads only what it needs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from homeport import lifecycle

INIT = Path(lifecycle.__file__)


def _typed_names() -> set[str]:
    """Names the package declares for mypy (its `if TYPE_CHECKING:` imports)."""
    tree = ast.parse(INIT.read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If))
    return {
        alias.asname or alias.name
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_every_name_is_typed_and_loaded_from_its_module() -> None:
    """The names mypy sees are the names the package hands out, each from its own module."""
    homes = lifecycle._HOME_OF
    assert _typed_names() == set(homes)
    for name, module in homes.items():
        value = getattr(lifecycle, name)
        assert value is getattr(sys.modules[f"homeport.lifecycle.{module}"], name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    """A name the package does not have fails as any module attribute would."""
    with pytest.raises(AttributeError, match="no attribute 'deploy_everything'"):
        _ = lifecycle.deploy_everything  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "module",
    ["homeport.lifecycle", "homeport.receiver.app", "homeport.cli", "homeport.lifecycle.rollout"],
)
def test_importing_loads_no_client_library(module: str) -> None:
    """The Kubernetes client and the Docker SDK load when first used, not on import."""
    code = (
        f"import sys, {module}\n"
        "print(sorted(m for m in ('kubernetes', 'docker') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"

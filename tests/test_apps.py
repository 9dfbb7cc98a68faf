"""Apps: their names and their repositories in the data dir."""

from __future__ import annotations

import pytest

from homeport.apps import AppNameError, check_app_name


@pytest.mark.parametrize("name", ["blog", "a", "my-app-2", "x" * 40])
def test_dns_labels_are_app_names(name: str) -> None:
    """Lower-case DNS labels up to 40 characters are accepted as they are."""
    assert check_app_name(name) == name


@pytest.mark.parametrize(
    "name", ["evil\n", "blog\n", "\nblog", "blog\r", "Blog", "-blog", "blog-", "a.b", "", "x" * 41]
)
def test_anything_else_is_refused(name: str) -> None:
    """The whole name must match: a trailing newline is refused like any other character."""
    with pytest.raises(AppNameError, match="is not allowed"):
        check_app_name(name)

""".dockerignore matching with Docker's semantics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeport.builder import BuildError
from homeport.builder.dockerignore import DockerIgnore


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        ("secret.txt", "secret.txt", True),
        ("secret.txt", "sub/secret.txt", False),
        ("/secret.txt", "secret.txt", True),
        ("*.log", "a.log", True),
        ("*.log", "logs/a.log", False),
        ("*/*.log", "logs/a.log", True),
        ("**/*.log", "a.log", True),
        ("**/*.log", "x/y/z/a.log", True),
        ("logs", "logs/deep/a.log", True),
        ("logs/", "logs/a.log", True),
        ("src/**", "src/a/b.py", True),
        ("src/**", "srcx/a.py", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[ab].txt", "b.txt", True),
        ("[^ab].txt", "c.txt", True),
        ("[^ab].txt", "a.txt", False),
        ("[a-c]x", "bx", True),
        ("[!ab].txt", "!.txt", True),
        ("a.b", "axb", False),
        ("a+(b)", "a+(b)", True),
        ("src**", "srcx/a.py", True),
        ("./build/../dist", "dist/x", True),
        ("# comment", "# comment", False),
        ("logs\n!logs/keep.log", "logs/keep.log", False),
        ("logs\n!logs/keep.log", "logs/other.log", True),
        ("*.md\n!README.md", "README.md", False),
        ("!README.md\n*.md", "README.md", True),
        ("*\n!src\nsrc/*.tmp", "src/a.tmp", True),
        ("*\n!src\nsrc/*.tmp", "src/a.py", False),
        ("\\*star", "*star", True),
        ("\\*star", "xstar", False),
        ("", "anything", False),
    ],
)
def test_patterns_match_like_docker(patterns: str, path: str, ignored: bool) -> None:
    """Each pattern ignores exactly what Docker's .dockerignore would."""
    assert DockerIgnore(patterns).ignored(path) is ignored


def test_dockerfile_and_dockerignore_are_always_kept() -> None:
    """Ignoring everything still sends the Dockerfile in use and .dockerignore, as the CLI does."""
    ignore = DockerIgnore("*\n", always_keep=("deploy/Dockerfile", ".dockerignore"))
    assert not ignore.ignored("deploy/Dockerfile")
    assert not ignore.ignored(".dockerignore")
    assert ignore.ignored("Dockerfile")
    assert ignore.ignored("deploy/other")


def test_long_patterns_are_cut_not_failed() -> None:
    """A very long line is read up to the limit, never raised."""
    ignore = DockerIgnore("x" * 100_000)
    assert not ignore.ignored("x")


@pytest.mark.parametrize("line", ["[abc", "trailing\\", "a]b["])
def test_bad_pattern_fails_naming_the_line(line: str) -> None:
    """A pattern Docker would reject fails the build naming the line."""
    with pytest.raises(BuildError, match=r"\.dockerignore line 2: .* is not a valid pattern"):
        DockerIgnore("ok\n" + line)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="ab/*?[]!^\\-.#\n ", max_size=60),
    st.lists(st.text(alphabet="ab.[]!*", min_size=1, max_size=4), min_size=1, max_size=4),
)
def test_any_dockerignore_raises_only_build_error(text: str, parts: list[str]) -> None:
    """Whatever a pushed .dockerignore holds, it is compiled or refused with BuildError."""
    try:
        ignore = DockerIgnore(text)
    except BuildError:
        return
    assert isinstance(ignore.ignored("/".join(parts)), bool)

""".dockerignore matching with Docker's semantics."""

from __future__ import annotations

import posixpath
import re
import time

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


def _moby_pattern_matches(pattern: str, path: str) -> bool:
    """moby's Pattern.compile and match, ported line by line onto Python's re.

    A backtracking engine is fine here: the inputs hypothesis draws are tiny.
    """
    regex, kind = "^", "exact"
    i = 0
    while i < len(pattern):
        first = i == 0
        ch = pattern[i]
        i += 1
        if ch == "*" and i < len(pattern) and pattern[i] == "*":
            i += 1
            if i < len(pattern) and pattern[i] == "/":
                i += 1
            if i >= len(pattern):
                if kind == "exact":
                    kind = "prefix"
                else:
                    regex, kind = regex + ".*", "regexp"
            else:
                regex, kind = regex + "(.*/)?", "regexp"
            if first:
                kind = "suffix"
        elif ch == "*":
            regex, kind = regex + "[^/]*", "regexp"
        elif ch == "?":
            regex, kind = regex + "[^/]", "regexp"
        elif ch in ".+()|{}$":
            regex += "\\" + ch
        elif ch == "\\":
            regex, kind = regex + "\\" + pattern[i], "regexp"
            i += 1
        elif ch in "[]":
            regex, kind = regex + ch, "regexp"
        else:
            regex += ch
    if kind == "exact":
        return path == pattern
    if kind == "prefix":
        return path.startswith(pattern[:-2])
    if kind == "suffix":
        suffix = pattern[2:]
        return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
    # Go's `$` is the end of the text; Python's would also match before a final newline.
    return re.match(regex + r"\Z", path) is not None


def _moby_ignored(lines: list[str], path: str) -> bool:
    """moby's MatchesOrParentMatches over the .dockerignore lines (the reference)."""
    matched = False
    parents = path.split("/")[:-1]
    for line in lines:
        exclusion = line.startswith("!")
        pattern = posixpath.normpath(line.removeprefix("!")).lstrip("/")
        if pattern in ("", "."):
            continue
        if exclusion != matched:
            continue
        hit = _moby_pattern_matches(pattern, path) or any(
            _moby_pattern_matches(pattern, "/".join(parents[: i + 1])) for i in range(len(parents))
        )
        if hit:
            matched = not exclusion
    return matched


_ATOMS = ["a", "b", ".", "/", "*", "?", "**", "**/", "[ab]", "[^a]", "[a-b]", "[^b]", "\\*"]
_ATOMS += ["\\[", "$", "+"]
_LINES = st.tuples(
    st.sampled_from(["", "!", "/"]), st.lists(st.sampled_from(_ATOMS), min_size=1, max_size=6)
).map(lambda t: t[0] + "".join(t[1]))
_SEGMENTS = st.text(alphabet="ab.*?[]$\n", min_size=1, max_size=4).filter(
    lambda s: s not in (".", "..")
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_LINES, min_size=1, max_size=3), st.lists(_SEGMENTS, min_size=1, max_size=4))
def test_matches_like_mobys_regular_expressions(lines: list[str], segments: list[str]) -> None:
    """On small inputs the automaton agrees with moby's own regex-based matcher."""
    path = "/".join(segments)
    assert DockerIgnore("\n".join(lines)).ignored(path) is _moby_ignored(lines, path), (
        lines,
        path,
    )


@pytest.mark.parametrize(
    ("patterns", "path"),
    [
        ("**/" * 14 + "x", "/".join(["d"] * 30) + "/y"),
        ("*a" * 200 + "b", "a" * 4000),
        ("**a" * 100 + "b", "/".join(["a" * 30] * 100)),
        ("[ab]*" * 300 + "c\n" + "?*" * 500 + "/z", "/".join(["ab" * 20] * 60)),
    ],
)
def test_hostile_patterns_match_in_linear_time(patterns: str, path: str) -> None:
    """Patterns that make a backtracking regex run for hours answer within a second."""
    ignore = DockerIgnore(patterns)
    started = time.perf_counter()
    assert ignore.ignored(path) is False
    assert time.perf_counter() - started < 1.0


def test_newline_is_not_crossed_by_double_star() -> None:
    """`**` spans directories but, as Go's `.` in moby, not a newline in a file name."""
    assert DockerIgnore("a**/b").ignored("ax/y/b")
    assert not DockerIgnore("a**/b").ignored("a\nx/b")
    assert DockerIgnore("a*b").ignored("a\nb")


def test_double_star_then_text_matches_any_suffix_like_moby() -> None:
    """`**name` matches any path ending in `name`, moby's suffix shortcut."""
    assert DockerIgnore("**.pyc").ignored("src/mod.pyc")
    assert DockerIgnore("**/cache").ignored("cache")
    assert DockerIgnore("**/cache").ignored("a/b/cache/x")
    assert not DockerIgnore("**/cache").ignored("a/bcache")

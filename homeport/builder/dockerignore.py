""".dockerignore patterns with Docker's semantics.

Follows moby's patternmatcher: one pattern a line, `#` comments, `!` exceptions, the last
matching pattern wins, `*`/`?` stop at `/`, `**` spans directories, and a pattern matching a
directory matches everything under it. As the docker CLI does, the Dockerfile and
.dockerignore themselves are always sent.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from homeport.builder.errors import BuildError

# A pushed .dockerignore is compiled to regular expressions: bound how much of it we compile.
MAX_PATTERNS = 1000
MAX_PATTERN_CHARS = 4096


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool


def _clean(pattern: str) -> str:
    cleaned = posixpath.normpath(pattern)
    # Docker strips a leading slash: patterns are relative to the context root anyway.
    cleaned = cleaned.lstrip("/")
    return "" if cleaned == "." else cleaned


def _compile(pattern: str) -> re.Pattern[str]:
    """Translate one pattern to a regular expression the way moby's patternmatcher does."""
    out = ["^"]
    in_class = False
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*" and not in_class:
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?" and not in_class:
            out.append("[^/]")
        elif ch == "\\":
            i += 1
            if i >= n:
                raise re.error("trailing backslash")  # a bad pattern in Docker too
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            # Classes pass through as in Go's regexp: [^a] negates, [a-z] is a range.
            out.append("\\[" if in_class else "[")
            in_class = True
        elif ch == "]":
            out.append("]")
            in_class = False
        elif in_class and ch in "^-":
            # A doubled '-' would read as Python's future set difference; escape the second.
            out.append("\\-" if ch == "-" and pattern[i - 1] == "-" else ch)
        else:
            out.append(re.escape(ch))
        i += 1
    out.append(r"\Z")
    return re.compile("".join(out), re.DOTALL)


class DockerIgnore:
    """Decides which context paths a .dockerignore leaves out."""

    def __init__(self, text: str, *, always_keep: tuple[str, ...] = ()) -> None:
        patterns: list[_Pattern] = []
        for number, raw in enumerate(text.splitlines()[:MAX_PATTERNS], start=1):
            line = raw.strip()[:MAX_PATTERN_CHARS]
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
            cleaned = _clean(line)
            if not cleaned:
                continue
            try:
                patterns.append(_Pattern(_compile(cleaned), exclusion))
            except re.error as exc:
                raise BuildError(
                    f".dockerignore line {number}: {raw.strip()[:80]!r} is not a valid pattern "
                    f"({exc.msg}); fix it and push again"
                ) from None
        for path in always_keep:
            patterns.append(_Pattern(re.compile(re.escape(path) + r"\Z"), True))
        self._patterns = tuple(patterns)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def ignored(self, path: str) -> bool:
        """Whether a slash-separated path relative to the context root is left out."""
        parents = path.split("/")[:-1]
        matched = False
        for pattern in self._patterns:
            # Only a pattern that can change the verdict needs evaluating.
            if pattern.exclusion != matched:
                continue
            hit = pattern.regex.match(path) is not None
            if not hit:
                hit = any(
                    pattern.regex.match("/".join(parents[: i + 1])) for i in range(len(parents))
                )
            if hit:
                matched = not pattern.exclusion
        return matched

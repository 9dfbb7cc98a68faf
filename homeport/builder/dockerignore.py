""".dockerignore patterns with Docker's semantics, matched in linear time.

Follows moby's patternmatcher: one pattern a line, `#` comments, `!` exceptions, the last
matching pattern wins, `*`/`?` stop at `/`, `**` spans directories, and a pattern matching a
directory matches everything under it. As the docker CLI does, the Dockerfile and
.dockerignore themselves are always sent.

moby turns a pattern into a regular expression; run by a backtracking engine such as
Python's `re`, `**/**/…/x` against a deep path takes exponential time, and a pushed
.dockerignore would pin a worker's CPU. Here a pattern is a small automaton instead, run a
character at a time over the path with its set of live states as an integer bit mask
(Thompson's construction), so matching costs at most the path's length times the pattern's.
Patterns that are plain text, text then `**`, or `**` then text are compared as strings, as
moby does.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from homeport.builder.errors import BuildError

# A pushed .dockerignore is untrusted: bound how much of it becomes automata.
MAX_PATTERNS = 1000
MAX_PATTERN_CHARS = 4096
# Each pattern remembers this many (states, character) steps; past it the memory restarts,
# so a hostile path costs time linear in its length either way, never memory without bound.
_MEMO_STEPS = 8192

# How moby decides to match a pattern (its matchType).
_EXACT, _PREFIX, _SUFFIX, _AUTOMATON = range(4)
# Automaton positions: what each one consumes and where it goes.
_LIT = 0  # one given character, then the next position
_ANY = 1  # `?`: one character but '/'
_CLASS = 2  # `[...]`: one character in (or, negated, not in) the class
_STAR = 3  # `*`: any run of characters but '/'; may be skipped
_DIRS_HEAD = 4  # `**` before more pattern: nothing, or text ending in '/'
_DIRS_BODY = 5  # inside that text, until a '/' ends it
_REST = 6  # `**` at the end of a longer pattern: anything


class _Invalid(ValueError):
    """A pattern Docker refuses (its filepath.Match or regexp reports an error)."""


@dataclass(frozen=True)
class _Position:
    kind: int
    char: str = ""
    ranges: tuple[tuple[str, str], ...] = ()
    negated: bool = False

    def consumes(self, ch: str) -> bool:
        if self.kind == _LIT:
            return ch == self.char
        if self.kind in (_ANY, _STAR):
            return ch != "/"
        if self.kind == _CLASS:
            return any(lo <= ch <= hi for lo, hi in self.ranges) != self.negated
        # moby's `.` is Go's, which stops at a newline.
        return ch != "\n"


def _escaped(pattern: str, i: int) -> tuple[str, int]:
    """The character at i, a backslash escaping the next one; and the index after it."""
    if pattern[i] == "\\":
        if i + 1 >= len(pattern):
            raise _Invalid("trailing backslash")
        return pattern[i + 1], i + 2
    return pattern[i], i + 1


def _class(pattern: str, i: int) -> tuple[_Position, int]:
    """Parse `[...]` from just after its '['; Docker's rules: `^` negates, `a-z` is a range,
    and a bare `-` or `]` where a character is due is an error (filepath.Match)."""
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        i += 1
    ranges: list[tuple[str, str]] = []
    while True:
        if i >= len(pattern):
            raise _Invalid("missing closing ]")
        if pattern[i] == "]" and ranges:
            return _Position(_CLASS, ranges=tuple(ranges), negated=negated), i + 1
        if pattern[i] in "-]":
            raise _Invalid(f"unexpected {pattern[i]!r} in a character class")
        lo, i = _escaped(pattern, i)
        hi = lo
        if i < len(pattern) and pattern[i] == "-":
            if i + 1 >= len(pattern) or pattern[i + 1] in "-]":
                raise _Invalid("unfinished range in a character class")
            hi, i = _escaped(pattern, i + 1)
            if hi < lo:
                raise _Invalid(f"invalid character class range {lo}-{hi}")
        ranges.append((lo, hi))


def _parse(pattern: str) -> tuple[int, list[_Position]]:
    """moby's compile: how to match the pattern, and its automaton positions."""
    kind = _EXACT
    positions: list[_Position] = []
    i, n = 0, len(pattern)
    while i < n:
        first = i == 0
        ch = pattern[i]
        i += 1
        if ch == "*" and i < n and pattern[i] == "*":
            i += 1
            if i < n and pattern[i] == "/":
                i += 1
            last = positions[-1].kind if positions else None
            if i >= n:
                if kind == _EXACT:
                    kind = _PREFIX
                else:
                    kind = _AUTOMATON
                    # `(.*/)?.*` is `.*`: keep epsilon chains short.
                    if last == _DIRS_BODY:
                        del positions[-2:]
                    positions.append(_Position(_REST))
            else:
                kind = _AUTOMATON
                if last != _DIRS_BODY:  # `(.*/)?(.*/)?` is `(.*/)?`
                    positions += [_Position(_DIRS_HEAD), _Position(_DIRS_BODY)]
            if first:
                kind = _SUFFIX
        elif ch == "*":
            positions.append(_Position(_STAR))
            kind = _AUTOMATON
        elif ch == "?":
            positions.append(_Position(_ANY))
            kind = _AUTOMATON
        elif ch == "\\":
            literal, i = _escaped(pattern, i - 1)
            positions.append(_Position(_LIT, literal))
            kind = _AUTOMATON
        elif ch == "[":
            position, i = _class(pattern, i)
            positions.append(position)
            kind = _AUTOMATON
        elif ch == "]":
            positions.append(_Position(_LIT, ch))
            kind = _AUTOMATON
        else:
            positions.append(_Position(_LIT, ch))
    return kind, positions


@dataclass
class _Pattern:
    text: str
    exclusion: bool
    kind: int
    positions: list[_Position]
    _memo: dict[tuple[int, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        skip_one = skip_two = 0
        for j, position in enumerate(self.positions):
            if position.kind in (_STAR, _REST):
                skip_one |= 1 << j
            elif position.kind == _DIRS_HEAD:
                skip_two |= 1 << j
        self._skip_one, self._skip_two = skip_one, skip_two
        self._accept = 1 << len(self.positions)
        self._start = self._closure(1)

    def _closure(self, states: int) -> int:
        """Add the states reachable without consuming a character (skippable parts)."""
        while True:
            more = states | ((states & self._skip_one) << 1) | ((states & self._skip_two) << 2)
            if more == states:
                return states
            states = more

    def _step(self, states: int, ch: str) -> int:
        key = (states, ch)
        found = self._memo.get(key)
        if found is not None:
            return found
        moved = 0
        live = states & (self._accept - 1)
        while live:
            low = live & -live
            live ^= low
            j = low.bit_length() - 1
            position = self.positions[j]
            if not position.consumes(ch):
                continue
            kind = position.kind
            if kind in (_STAR, _REST, _DIRS_BODY):
                moved |= 1 << j  # stays on itself
                if kind == _DIRS_BODY and ch == "/":
                    moved |= 1 << (j + 1)
            elif kind == _DIRS_HEAD:
                moved |= 1 << (j + 1)
                if ch == "/":
                    moved |= 1 << (j + 2)
            else:
                moved |= 1 << (j + 1)
        moved = self._closure(moved)
        if len(self._memo) >= _MEMO_STEPS:
            self._memo.clear()
        self._memo[key] = moved
        return moved

    def _automaton_matches(self, path: str) -> bool:
        states = self._start
        for ch in path:
            # A parent directory the pattern matches covers the path too.
            if ch == "/" and states & self._accept:
                return True
            states = self._step(states, ch)
            if not states:
                return False
        return bool(states & self._accept)

    def matches(self, path: str) -> bool:
        """Whether the pattern matches the path or one of its parent directories."""
        text = self.text
        if self.kind == _EXACT:
            return path == text or path.startswith(text + "/")
        if self.kind == _PREFIX:
            return path.startswith(text[:-2])
        if self.kind == _SUFFIX:
            suffix = text[2:]
            candidate = path
            while True:
                if candidate.endswith(suffix) or (
                    suffix.startswith("/") and candidate == suffix[1:]
                ):
                    return True
                if "/" not in candidate:
                    return False
                candidate = candidate.rpartition("/")[0]
        return self._automaton_matches(path)


def _clean(pattern: str) -> str:
    cleaned = posixpath.normpath(pattern)
    # Docker strips a leading slash: patterns are relative to the context root anyway.
    cleaned = cleaned.lstrip("/")
    return "" if cleaned == "." else cleaned


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
                kind, positions = _parse(cleaned)
            except _Invalid as exc:
                raise BuildError(
                    f".dockerignore line {number}: {raw.strip()[:80]!r} is not a valid pattern "
                    f"({exc}); fix it and push again"
                ) from None
            patterns.append(_Pattern(cleaned, exclusion, kind, positions))
        for path in always_keep:
            # Names, not patterns: a Dockerfile called `a[1]` is kept as it is.
            patterns.append(_Pattern(path, True, _EXACT, []))
        self._patterns = tuple(patterns)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def ignored(self, path: str) -> bool:
        """Whether a slash-separated path relative to the context root is left out."""
        matched = False
        for pattern in self._patterns:
            # Only a pattern that can change the verdict needs evaluating.
            if pattern.exclusion != matched:
                continue
            if pattern.matches(path):
                matched = not pattern.exclusion
        return matched

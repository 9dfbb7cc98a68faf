"""The docs say what the code does: settings, homeport.toml tables and keys, links.

Files under homeport/ are read as text (modules may move); only homeport.manifest, which
stays where it is, is imported.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from homeport import manifest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "homeport"
DOCS = ROOT / "docs"
SETTINGS_PAGE = DOCS / "settings.md"
MANIFEST_PAGE = DOCS / "homeport-toml.md"

SETTING = re.compile(r"HOMEPORT_[A-Z0-9_]+")
# The settings object maps each field to HOMEPORT_<FIELD> at run time, as "HOMEPORT_" + name.
FIELD_TO_VARIABLE = re.compile(r"""["']HOMEPORT_["']\s*\+|f["']HOMEPORT_\{""")


def _source() -> dict[Path, str]:
    return {path: path.read_text() for path in sorted(PACKAGE.glob("**/*.py"))}


def _settings_fields(source: dict[Path, str]) -> set[str]:
    """HOMEPORT_* names of the fields of the one class named Settings, wherever it lives.

    Most setting names never appear in the source as written: the class declares fields
    such as `data_dir`, and HOMEPORT_DATA_DIR is made from the field's name when the
    environment is read. So the fields are read from the class with ast, in the file that
    also holds that "HOMEPORT_" + name construction.
    """
    found: list[tuple[Path, list[str]]] = []
    for path, text in source.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.name == "Settings":
                fields = [
                    stmt.target.id
                    for stmt in node.body
                    if isinstance(stmt, ast.AnnAssign)
                    and isinstance(stmt.target, ast.Name)
                    and "ClassVar" not in ast.unparse(stmt.annotation)
                ]
                found.append((path, fields))
    assert len(found) == 1, f"expected one class Settings under homeport/, found {len(found)}"
    path, fields = found[0]
    assert FIELD_TO_VARIABLE.search(source[path]), (
        f"{path.relative_to(ROOT)} no longer makes HOMEPORT_<FIELD> names from the fields of"
        " Settings; tell this test how setting names are made now"
    )
    return {"HOMEPORT_" + name.upper() for name in fields}


def _source_settings() -> set[str]:
    source = _source()
    written = {name for text in source.values() for name in SETTING.findall(text)}
    return written | _settings_fields(source)


def test_every_setting_in_the_source_is_documented() -> None:
    """Each HOMEPORT_* name the package reads or sets appears in docs/settings.md."""
    documented = set(SETTING.findall(SETTINGS_PAGE.read_text()))
    missing = sorted(_source_settings() - documented)
    assert not missing, f"docs/settings.md does not name {', '.join(missing)}"


def test_every_documented_setting_is_in_the_source() -> None:
    """Each HOMEPORT_* name in docs/settings.md is one the package reads or sets."""
    documented = set(SETTING.findall(SETTINGS_PAGE.read_text()))
    unknown = sorted(documented - _source_settings())
    assert not unknown, f"docs/settings.md names {', '.join(unknown)}, which homeport/ never uses"


def _code_tables() -> dict[str, set[str]]:
    """homeport.toml's tables and the keys each takes, as homeport.manifest declares them.

    They are not in one structure: _TABLES names every table, _KEYS holds the keys of the
    plain tables ([build], [run], ...), and each per-name table ([volumes.NAME],
    [processes.NAME], [cron.NAME]) has a dict of its own. [env] takes any variable name.
    """
    per_name = {
        "volumes": manifest._VOLUME_KEYS,
        "processes": manifest._PROCESS_KEYS,
        "cron": manifest._CRON_KEYS,
    }
    any_name = {"env"}
    tables: dict[str, set[str]] = {}
    for table in manifest._TABLES:
        if table in manifest._KEYS:
            tables[table] = set(manifest._KEYS[table])
        elif table in per_name:
            tables[table] = set(per_name[table])
        elif table in any_name:
            tables[table] = set()
        else:
            raise AssertionError(f"[{table}] is new: tell this test where its keys are declared")
    assert set(manifest._KEYS) <= set(tables), "a table in _KEYS is missing from _TABLES"
    return tables


# docs/homeport-toml.md: one "## [table]" or "## [table.NAME]" heading per table, followed
# by a table of its keys whose first column is the key in backquotes.
_TABLE_HEADING = re.compile(r"^## \[([a-z_]+)(?:\.NAME)?\]\s*$")
_KEY_ROW = re.compile(r"^\| `([a-z_]+)` \|")


def _documented_tables() -> dict[str, set[str]]:
    tables: dict[str, set[str]] = {}
    current: str | None = None
    for line in MANIFEST_PAGE.read_text().splitlines():
        if line.startswith("## "):
            heading = _TABLE_HEADING.match(line)
            current = heading.group(1) if heading else None
            if current is not None:
                assert current not in tables, f"docs/homeport-toml.md has [{current}] twice"
                tables[current] = set()
        elif current is not None and (row := _KEY_ROW.match(line)):
            tables[current].add(row.group(1))
    return tables


def test_every_manifest_table_and_key_is_documented() -> None:
    """Each table and key homeport.manifest accepts has its place in docs/homeport-toml.md."""
    documented = _documented_tables()
    for table, keys in _code_tables().items():
        assert table in documented, f"docs/homeport-toml.md has no section ## [{table}]"
        missing = sorted(keys - documented[table])
        assert not missing, f"docs/homeport-toml.md: [{table}] lacks {', '.join(missing)}"


def test_every_documented_table_and_key_is_accepted() -> None:
    """Each table and key in docs/homeport-toml.md is one homeport.manifest accepts."""
    code = _code_tables()
    for table, keys in _documented_tables().items():
        assert table in code, f"docs/homeport-toml.md documents [{table}], which is not parsed"
        unknown = sorted(keys - code[table])
        assert not unknown, f"docs/homeport-toml.md: [{table}] {', '.join(unknown)} not parsed"


def test_manifest_limits_are_documented() -> None:
    """The limits homeport.manifest enforces are stated in docs/homeport-toml.md."""
    text = MANIFEST_PAGE.read_text().lower()
    for phrase in (
        f"at most {manifest.MAX_MANIFEST_BYTES // 1024} kib",
        f"at most {manifest.MAX_PARTS} processes",
        f"at most {manifest.MAX_PARTS} entries",
        f"at most {manifest.MAX_VOLUMES} volumes",
        f"at most {manifest.MAX_VOLUME_NAME} characters",
        f"at most {manifest.MAX_PART_NAME} characters",
        f"at most {manifest.MAX_CRONJOB_NAME} characters",
        f"at most {manifest.MAX_ENTRIES}",
        f"at most {manifest.MAX_ARGS} items",
        f"at most {manifest.MAX_VALUE_CHARS // 1024} kib",
    ):
        assert phrase in " ".join(text.split()), f"docs/homeport-toml.md does not say {phrase!r}"


def _pages() -> list[Path]:
    return [
        ROOT / "README.md",
        *sorted(DOCS.glob("*.md")),
        ROOT / "deploy" / "README.md",
        *sorted((ROOT / "examples").glob("**/README.md")),
    ]


_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _links(page: Path) -> list[str]:
    """Targets of the page's inline links and images, outside code."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", page.read_text()))
    return _LINK.findall(text)


def _is_relative(target: str) -> bool:
    return not re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)


def test_relative_links_point_at_files() -> None:
    """Each relative link in README.md and docs/ names a file or directory that exists."""
    broken = []
    for page in _pages():
        for target in filter(_is_relative, _links(page)):
            path = target.split("#", 1)[0]
            if path and not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings."""
    text = _FENCE.sub("", page.read_text())
    anchors: set[str] = set()
    for line in text.splitlines():
        heading = re.match(r"#{1,6} (.+)", line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_link_anchors_name_headings() -> None:
    """Each #anchor of a relative link names a heading of the Markdown page it points at."""
    broken = []
    for page in _pages():
        for target in filter(_is_relative, _links(page)):
            path, sep, anchor = target.partition("#")
            destination = page if not path else (page.parent / path)
            if sep and destination.suffix == ".md" and destination.is_file():
                if anchor not in _anchors(destination):
                    broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "links to missing headings:\n" + "\n".join(broken)

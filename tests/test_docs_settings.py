"""The documentation lists every setting (with its default) and every system check id.

Parsed from the .rst sources Sphinx builds, compared with ``openhumans.conf.DEFAULTS`` and
with the ids ``openhumans/checks.py`` emits, so a setting or a check added to the app
without being documented (or a stale one left in the docs) fails the suite.
"""

from __future__ import annotations

import ast
import operator
import re
from pathlib import Path

import pytest

import openhumans.checks
from openhumans.conf import DEFAULTS, REQUIRED, SETTINGS

DOCS = Path(__file__).resolve().parents[1] / "docs"
CONFIGURATION = DOCS / "configuration.rst"
SETTING = re.compile(r"OPENHUMANS_[A-Z0-9_]+")
CHECK_ID = re.compile(r"openhumans\.[EW]\d{3}")


def rst_sources() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.rst"))}


def config_text() -> str:
    return CONFIGURATION.read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    """The body of the section titled ``title`` (underlined with '-'), up to the next one."""
    match = re.search(
        rf"^{re.escape(title)}\n-+\n(.*?)(?=^[^\n]+\n-{{3,}}\n|\Z)", text, re.M | re.S
    )
    assert match, f"no section {title!r} in {CONFIGURATION.name}"
    return match.group(1)


def settings_table(text: str) -> list[tuple[str, str]]:
    """(setting, documented default) rows of the list-table of the 'All settings' section."""
    body = section(text, "All settings")
    match = re.search(r"^\.\. list-table::.*?\n((?:[ \t]+.*\n|\n)+)", body, re.M)
    assert match, "no list-table in 'All settings'"
    rows = re.findall(r"^\s*\* - (.+)\n\s+- (.+)$", match.group(1), re.M)
    assert rows[0] == ("Setting", "Default"), rows[0]
    table = []
    for name_cell, default_cell in rows[1:]:
        names = SETTING.findall(name_cell)
        assert names and len(set(names)) == 1, f"one setting per row: {name_cell!r}"
        table.append((names[0], default_cell.strip()))
    return table


_OPS = {ast.Mult: operator.mul, ast.Pow: operator.pow, ast.Add: operator.add}


def literal(source: str):
    """Evaluate a documented default: a Python literal, or constants joined by * ** +."""

    def value(node: ast.AST):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        raise ValueError(f"not a literal default: {source!r}")

    return value(ast.parse(source, mode="eval").body)


def documented_default(cell: str):
    """``"required"`` for a required setting, else the value of the ``literal`` cell."""
    if cell == "required":
        return cell
    match = re.fullmatch(r"``(.+)``", cell)
    assert match, f"a default is written as ``literal``: {cell!r}"
    return literal(match.group(1))


def emitted_check_ids() -> set[str]:
    """Every ``id="openhumans.X000"`` keyword in checks.py, and the ids of the settings table."""
    tree = ast.parse(Path(openhumans.checks.__file__).read_text(encoding="utf-8"))
    ids = {
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "id" and isinstance(kw.value, ast.Constant)
    }
    assert ids, "checks.py emits no check ids?"
    # The validators' ids (E002, E003) live beside the settings they check, in conf.SETTINGS.
    return ids | {s.check_id for s in SETTINGS.values() if s.check_id}


def test_the_settings_table_lists_exactly_the_defaults_table_in_order():
    assert [name for name, _ in settings_table(config_text())] == list(DEFAULTS)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_each_documented_default_matches_conf(name):
    cell = dict(settings_table(config_text()))[name]
    if name in REQUIRED:
        assert cell == "required"
        assert DEFAULTS[name] is None
        return
    documented = documented_default(cell)
    expected = DEFAULTS[name]
    assert documented == expected and type(documented) is type(expected), (name, cell)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_each_setting_has_its_own_section(name):
    text = config_text()
    heading = rf"^\.\. _{name}:\n\n``{name}``( \(required\))?\n~+\n"
    end = r"(?=^\.\. _|^[^\n]+\n-{3,}\n|\Z)"
    match = re.search(heading + r"(.*?)" + end, text, re.M | re.S)
    assert match, f"{name} has no '.. _{name}:' section in {CONFIGURATION.name}"
    required, body = match.group(1), match.group(2)
    assert bool(required) == (name in REQUIRED), name
    if name not in REQUIRED:
        default = re.search(r"^Default: ``(.+?)``", body, re.M)
        assert default, f"{name}'s section gives no 'Default: ``...``'"
        assert literal(default.group(1)) == DEFAULTS[name], name


def test_the_docs_name_no_setting_the_app_does_not_know():
    # A misspelt or removed setting in any page would send readers to a W003 warning.
    unknown = {
        (page, name)
        for page, text in rst_sources().items()
        for name in SETTING.findall(text)
        if name not in DEFAULTS
    }
    assert not unknown


def test_every_check_id_emitted_is_documented_in_the_checks_list():
    body = section(config_text(), "System checks")
    listed = re.findall(r"^``(openhumans\.[EW]\d{3})`` \((error|warning)\)\n    \S", body, re.M)
    ids = [check_id for check_id, _ in listed]
    assert len(ids) == len(set(ids)), "a check id is listed twice"
    assert set(ids) == emitted_check_ids()
    for check_id, kind in listed:
        assert kind == {"E": "error", "W": "warning"}[check_id[11]], check_id


def test_no_page_mentions_a_check_id_the_app_does_not_emit():
    emitted = emitted_check_ids()
    stale = {
        (page, check_id)
        for page, text in rst_sources().items()
        for check_id in CHECK_ID.findall(text)
        if check_id not in emitted
    }
    assert not stale


def test_the_checks_module_docstring_agrees_with_its_code():
    documented = set(CHECK_ID.findall(openhumans.checks.__doc__ or ""))
    assert documented == emitted_check_ids()


def test_the_parsers_notice_an_undocumented_setting():
    # The table parser is what guards the docs: a row removed must show as missing.
    text = config_text()
    row = "   * - :ref:`OPENHUMANS_TIMEOUT <OPENHUMANS_TIMEOUT>`\n     - ``10.0``\n"
    assert row in text
    names = [name for name, _ in settings_table(text.replace(row, ""))]
    assert "OPENHUMANS_TIMEOUT" not in names
    assert names != list(DEFAULTS)

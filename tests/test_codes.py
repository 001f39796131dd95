"""The finding-code catalogue: every code the project can emit is in it, with its texts."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from grader.codes import ALIASES, CODES, canonical, lookup
from grader.findings import Finding, error

PACKAGE = Path(__file__).resolve().parents[1] / "grader"
CODE_SHAPE = re.compile(r"[a-z_]+\.[a-z_]+")
# Calls whose first argument is a finding code (or, for the grid, its last part).
EMITTERS = {"error", "warning", "info", "add", "archive", "note"}
GRID_EMITTERS = {"error", "warning"}  # say.error("layout", ...) -> grid.layout


def _emitted_codes() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
            if owner == "say" and name in GRID_EMITTERS:
                found.add(f"grid.{first.value}")
            elif name in EMITTERS and CODE_SHAPE.fullmatch(first.value):
                found.add(first.value)
        for node in ast.walk(tree):  # Finding(code="...") and dict tables keyed by code
            if isinstance(node, ast.keyword) and node.arg == "code":
                value = node.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.add(value.value)
    return found


def test_every_code_the_package_emits_is_catalogued():
    emitted = _emitted_codes()
    assert len(emitted) > 60  # the scan found the checks' codes
    missing = sorted(c for c in emitted if canonical(c) not in CODES)
    assert not missing, f"codes used but not in grader/codes.py: {missing}"


def test_zip_message_table_codes_are_catalogued():
    from grader.intake.zip_messages import _ENTRY_PROBLEMS

    assert set(_ENTRY_PROBLEMS) <= set(CODES)


def test_every_entry_has_severity_explanation_and_hint():
    for code, entry in CODES.items():
        assert CODE_SHAPE.fullmatch(code), code
        assert entry.severity in ("error", "warning", "info"), code
        assert len(entry.explanation) > 20 and len(entry.hint) > 5, code


def test_an_uncatalogued_code_is_refused():
    with pytest.raises(KeyError, match="not in grader/codes.py"):
        error("images.typo", "a finding nobody catalogued")


def test_renamed_codes_keep_working():
    old = next(iter(ALIASES)).replace("*", "fid")
    assert Finding(code=old, message="m").code == canonical(old) in CODES
    # A stored record with the old code still loads.
    stored = Finding(code="images.count", message="m").model_dump_json().replace("images.count", old)
    assert Finding.model_validate_json(stored).code == "metric.warning"
    assert lookup(old).code == "metric.warning"

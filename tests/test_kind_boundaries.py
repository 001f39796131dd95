"""A metric kind is one module: no module outside grader/metrics/kinds/ (and the registry there)
imports a kind's module or model, compares a `kind` with a kind's name or looks a kind up by
name, and no page template outside the kinds' own names one. Read from the source (AST)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from grader.metrics.kinds import KINDS

PACKAGE = Path(__file__).resolve().parents[1] / "grader"
KINDS_DIR = PACKAGE / "metrics" / "kinds"
SHARED = {"base", "table"}  # grader.metrics.kinds modules every stage may use: the shapes, the columns
NAMES = set(KINDS)
MODELS = {h.model.__name__ for h in KINDS.values()} | {type(h).__name__ for h in KINDS.values()}
KIND_MODULES = {Path(inspect.getfile(type(h))).stem for h in KINDS.values()}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if KINDS_DIR not in path.parents:
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def _is_kind_expr(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "kind") or (
        isinstance(node, ast.Name) and node.id == "kind"
    )


def _kind_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in NAMES


def _registry(node: ast.AST) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "kind" in name.lower()


def violations() -> list[str]:
    found = []
    for path, tree in modules():
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[:3] == ["grader", "metrics", "kinds"] and len(parts) > 3 and parts[3] not in SHARED:
                    found.append(f"{where}:{node.lineno} imports the kind module {node.module}")
                for alias in node.names:
                    if alias.name in MODELS:
                        found.append(f"{where}:{node.lineno} imports {alias.name}")
            elif isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(map(_is_kind_expr, sides)) and any(map(_kind_name, sides)):
                    found.append(f"{where}:{node.lineno} compares a kind with a kind's name")
            elif isinstance(node, ast.Subscript) and _kind_name(node.slice) and _registry(node.value):
                found.append(f"{where}:{node.lineno} looks up {node.slice.value!r} by name")
            elif isinstance(node, ast.Name) and node.id in MODELS:
                found.append(f"{where}:{node.lineno} uses {node.id}")
    return found


def test_no_module_outside_the_kinds_names_a_kind():
    assert violations() == []


def test_page_templates_leave_each_kind_to_its_own_template():
    pattern = re.compile(r"\{[{%](.*?)[%}]\}", re.DOTALL)
    found = []
    for template in sorted((PACKAGE / "report" / "templates").glob("*.j2")):
        for expression in pattern.findall(template.read_text(encoding="utf-8")):
            words = set(re.findall(r"[a-z_]+", expression))
            found += [f"{template.name}: {expression.strip()}" for _ in words & (NAMES | {"collapse", "shared_sets"})]
    assert found == []


def test_the_checker_sees_what_it_forbids():
    code = 'from grader.metrics.kinds.fid import FidMetric\nif m.kind == "fid": KINDS["kid"]\n'
    tree = ast.parse(code)
    compare = next(n for n in ast.walk(tree) if isinstance(n, ast.Compare))
    subscript = next(n for n in ast.walk(tree) if isinstance(n, ast.Subscript))
    assert _is_kind_expr(compare.left) and _kind_name(compare.comparators[0])
    assert _kind_name(subscript.slice) and _registry(subscript.value)
    assert "fid" in KIND_MODULES and "FidMetric" in MODELS

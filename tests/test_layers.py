"""The package's layers, read from the source: every runtime import (module level or inside a
function; `if TYPE_CHECKING:` blocks are type hints, not dependencies) goes to the same layer or
a lower one, so there is no import cycle between the package's parts."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "grader"

# Lowest first. A part is a top-level module or sub-package of grader (metrics.kinds apart from
# the metrics engines it drives).
LAYERS = [
    # facts and records every stage shares
    {"__init__", "errors", "files", "atomic", "findings", "codes", "schema", "results", "layout",
     "lock", "datasets", "scratch", "image_files", "grid_synth", "rubrics"},
    # engines: reading submissions, pure checks, metric engines, integrity, earlier hand-ins
    {"intake", "checks", "metrics", "integrity", "prerequisites"},
    # the kinds and the sandbox that the rubric is made of
    {"artifacts", "metrics.kinds", "sandbox", "platforms"},
    # the rubric and what reads it: file assignment, scoring, console wording, the shipped ones
    {"rubric", "rubric_catalog", "assign", "scoring", "console"},
    # stages and front ends
    {"gradebook", "store", "pipeline", "executors", "report", "export", "junit", "batch",
     "baseline", "examples", "autograder", "cli", "__main__"},
]
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    parts = module.split(".")[1:]
    if parts[:2] == ["metrics", "kinds"]:
        return "metrics.kinds"
    return parts[0] if parts else "__init__"


def imports() -> list[tuple[str, str]]:
    """(importing module, imported module) for every runtime import of grader by grader."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for sub in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = ([f"grader.{a.name}" for a in node.names] if node.module == "grader"
                           else [node.module])
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found += [(module, t) for t in targets if t == "grader" or t.startswith("grader.")]
    return found


def test_every_part_has_a_layer():
    parts = {part_of(m) for pair in imports() for m in pair if part_of(m) != "__version__"}
    parts |= {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
              if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert sorted(parts - set(LAYER) - {"__version__"}) == []


def test_no_import_goes_up_a_layer():
    upward = [
        f"{a} -> {b}"
        for a, b in imports()
        if part_of(b) in LAYER and part_of(a) in LAYER and LAYER[part_of(b)] > LAYER[part_of(a)]
    ]
    assert upward == []


def test_no_import_cycle_between_parts():
    graph: dict[str, set[str]] = {}
    for a, b in imports():
        if part_of(a) != part_of(b) and "__version__" not in (part_of(a), part_of(b)):
            graph.setdefault(part_of(a), set()).add(part_of(b))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    assert sorted(part for part in graph if reaches(part, part, set())) == []


def test_every_name_imported_from_grader_exists():
    """An import inside a function runs only when that function does: a name that moved or
    went away must fail here, not on a platform's first upload."""
    import importlib

    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    and (node.module == "grader" or node.module.startswith("grader."))):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        missing.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                                       f"from {node.module} import {alias.name}")
    assert missing == []

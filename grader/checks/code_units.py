"""A source zip's Python code as syntax trees, read with ``ast`` and never executed.

Every ``.py`` file is one unit; every code cell of a notebook is one unit (IPython magics and
shell lines are blanked first, keeping line numbers). Code that does not parse is reported
by where it stops, so the checks that read the trees (imports.py, pretrained.py) never pass
it silently. The names of the student's own modules (files, folders holding code, modules
a notebook writes with ``%%writefile``) come with the units: importing them is always fine.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# A file this large is data, not code the student wrote; it is reported, not parsed (parsing
# costs ~20x its size in memory).
MAX_PARSE_BYTES = 5 * 1024**2

# Cell magics whose body is Python: the magic line is blanked and the body parsed.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "writefile"})
# `x = !ls`, `files = %sx ls`: an IPython assignment from a shell or magic command.
_MAGIC_ASSIGNMENT = re.compile(r"^(\s*)([\w.\[\], ]+?)\s*=\s*[!%]")
# `torch.nn.Conv2d?`, `??model`: IPython's help.
_HELP = re.compile(r"\s*\?{0,2}[\w.]+\?{0,2}\s*")
_PYTHON = f"Python {sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class CodeUnit:
    """One parsed piece of code: a .py file, or one cell of a notebook."""

    path: str  # relative to the archive root, '/'-separated
    tree: ast.Module
    cell: int | None = None  # 1-based position among the notebook's cells

    def where(self, line: int) -> str:
        """'train.py line 3' or 'hw.ipynb cell 4 line 2', as a student finds it."""
        return f"{self.path} line {line}" if self.cell is None else f"{self.path} cell {self.cell} line {line}"


@dataclass
class Unparsed:
    path: str
    reason: str  # 'line 3: invalid syntax', 'cell 2 line 1: ...', 'not a notebook (...)'


@dataclass
class ParsedCode:
    units: list[CodeUnit] = field(default_factory=list)
    unparsed: list[Unparsed] = field(default_factory=list)
    local_modules: set[str] = field(default_factory=set)  # top-level names the student's code defines
    python: str = _PYTHON  # the grammar the code was parsed with


def _syntax_reason(exc: Exception, line_offset: int = 0) -> str:
    if isinstance(exc, SyntaxError):
        where = f"line {(exc.lineno or 0) + line_offset}: " if exc.lineno else ""
        return f"{where}{exc.msg}"
    if isinstance(exc, RecursionError):
        return "nested too deeply to parse"
    return str(exc)  # ValueError: null bytes in the source


def _parse(source: str | bytes, filename: str) -> ast.Module:
    return ast.parse(source, filename=filename)


def _blank_magics(lines: list[str]) -> list[str]:
    """IPython-only lines replaced by Python of the same line count (imports are unaffected)."""
    out = []
    for line in lines:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith(("%", "!")) or ("?" in stripped and _HELP.fullmatch(line)):
            out.append(f"{indent}pass")
        elif match := _MAGIC_ASSIGNMENT.match(line):
            out.append(f"{match.group(1)}{match.group(2)} = None")
        else:
            out.append(line)
    return out


def _cell_source(cell: dict) -> str:
    source = cell.get("source", cell.get("input", ""))
    return "".join(source) if isinstance(source, list) else str(source)


class NotANotebook(Exception):
    pass


def _notebook_cells(data: bytes) -> list[dict]:
    try:
        notebook = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise NotANotebook(f"not a notebook (invalid JSON: {exc})") from None
    if not isinstance(notebook, dict):
        raise NotANotebook("not a notebook (the JSON is not an object)")
    if "cells" in notebook:  # nbformat 4
        cells = notebook["cells"]
    else:  # nbformat 3: cells inside worksheets
        sheets = notebook.get("worksheets")
        sheets = sheets if isinstance(sheets, list) else []
        cells = [c for s in sheets if isinstance(s, dict) for c in s.get("cells") or []]
    if not isinstance(cells, list):
        raise NotANotebook("not a notebook (no list of cells)")
    return [c for c in cells if isinstance(c, dict)]


def _parse_cell(code: str, label: str) -> tuple[ast.Module | None, str | None, str | None]:
    """(tree, module written by %%writefile, why it does not parse) for one cell's code."""
    lines = code.splitlines()
    written = None
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        words = first[2:].split()
        magic = words[0] if words else ""
        if magic not in PYTHON_CELL_MAGICS:
            return None, None, None  # %%bash, %%html ...: not Python
        if magic == "writefile":
            target = next((w for w in words[1:] if not w.startswith("-")), "")
            if not target.endswith(".py"):
                return None, None, None
            written = PurePosixPath(target).stem
        lines[0] = ""
    try:
        return _parse("\n".join(lines), label), written, None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    try:  # only now: a line starting with % may be a modulo continuing the line above
        return _parse("\n".join(_blank_magics(lines)), label), written, None
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return None, written, _syntax_reason(exc)


def _read_notebook(path: Path, rel: str, parsed: ParsedCode) -> None:
    try:
        cells = _notebook_cells(path.read_bytes())
    except NotANotebook as exc:
        parsed.unparsed.append(Unparsed(rel, str(exc)))
        return
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type", "code") != "code":
            continue
        tree, written, problem = _parse_cell(_cell_source(cell), f"{rel} cell {number}")
        if written:
            parsed.local_modules.add(written)
        if problem is not None:
            parsed.unparsed.append(Unparsed(rel, f"cell {number} {problem}"))
        elif tree is not None:
            parsed.units.append(CodeUnit(rel, tree, number))


def _module_names(rel: str) -> set[str]:
    """Names importable from this file's place in the tree: its stem and each folder above it
    (a student runs `python src/train.py` as often as `python -m src.train`)."""
    parts = PurePosixPath(rel).parts
    return {PurePosixPath(rel).stem, *parts[:-1]}


def parse_code(root: Path, files: list[str]) -> ParsedCode:
    """Parse every .py file and notebook among `files` (paths relative to `root`)."""
    parsed = ParsedCode()
    for rel in sorted(files):
        suffix = PurePosixPath(rel).suffix.lower()
        if suffix not in (".py", ".ipynb"):
            continue
        path = root / rel
        if suffix == ".py":
            parsed.local_modules |= _module_names(rel)
        if path.stat().st_size > MAX_PARSE_BYTES:
            parsed.unparsed.append(Unparsed(rel, f"larger than {MAX_PARSE_BYTES // 1024**2} MiB; not read as code"))
            continue
        if suffix == ".ipynb":
            _read_notebook(path, rel, parsed)
            continue
        try:
            parsed.units.append(CodeUnit(rel, _parse(path.read_bytes(), rel)))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            parsed.unparsed.append(Unparsed(rel, _syntax_reason(exc)))
    return parsed

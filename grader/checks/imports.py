"""Which packages a student's code imports, against the assignment's list of allowed packages.

Read from the syntax trees of code_units.py. Always allowed: the Python standard library and
the student's own modules (files and folders of the zip, relative imports). An import inside
``try: ... except ImportError:`` is optional (the code runs without the package) and is not
counted; ``importlib.import_module("name")`` and ``__import__("name")`` with a literal name
are counted like an import statement.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping

from grader.checks.code_units import ParsedCode
from grader.findings import Finding, compact_list, error

# The standard library of the running Python, plus modules that only other Python 3 versions
# from 3.8 on have (added later or removed since), so the answer does not depend on which
# Python the grader runs on.
STDLIB = frozenset(sys.stdlib_module_names) | {
    "tomllib", "distutils", "imp", "asynchat", "asyncore", "smtpd", "cgi", "cgitb", "crypt",
    "imghdr", "mailcap", "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd",
    "sunau", "telnetlib", "uu", "xdrlib", "lib2to3", "binhex", "formatter", "parser", "symbol",
    "_dummy_thread", "dummy_threading", "__main__",
}

_OPTIONAL_GUARDS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
_DYNAMIC = {"import_module", "__import__"}


def _guards_imports(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for t in types:
            name = t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else None
            if name in _OPTIONAL_GUARDS:
                return True
    return False


class _Imports(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[str, int]] = []  # (top-level module, line)
        self._optional = 0

    def _add(self, module: str, line: int) -> None:
        top = module.split(".")[0]
        if top and not self._optional:
            self.found.append((top, line))

    def visit_Try(self, node: ast.Try) -> None:
        guarded = _guards_imports(node)
        self._optional += guarded
        for stmt in node.body:
            self.visit(stmt)
        self._optional -= guarded
        for stmt in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(stmt)

    visit_TryStar = visit_Try

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:  # relative imports are the student's own modules
            self._add(node.module, node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in _DYNAMIC and node.args:
            first = node.args[0]
            literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
            if literal and not first.value.startswith("."):
                self._add(first.value, node.lineno)
        self.generic_visit(node)


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    """(top-level module, line) of every non-optional absolute import in `tree`."""
    visitor = _Imports()
    visitor.visit(tree)
    return visitor.found


def import_names(allowed: Mapping[str, Iterable[str]]) -> set[str]:
    return {name for names in allowed.values() for name in names}


def check_imports(
    parsed: ParsedCode, allowed: Mapping[str, list[str]], *, artifact: str | None = None
) -> list[Finding]:
    """One finding per package imported that is neither allowed, standard nor the student's."""
    ok = STDLIB | parsed.local_modules | import_names(allowed)
    places: dict[str, list[tuple[str, str]]] = {}  # module -> [(file, 'train.py line 3')]
    for unit in parsed.units:
        for module, line in imported_modules(unit.tree):
            if module not in ok:
                places.setdefault(module, []).append((unit.path, unit.where(line)))
    allowed_list = ", ".join(allowed)
    findings = []
    for module, where in sorted(places.items()):
        findings.append(
            error(
                "source.forbidden_import",
                f"'{module}' is imported ({compact_list([w for _, w in where], 3)}) but is not one of "
                "the packages this assignment allows",
                artifact=artifact,
                path=where[0][0],
                hint=(
                    f"use only the allowed packages ({allowed_list}), the Python standard library "
                    f"and your own modules; remove '{module}' or rewrite that part with an allowed "
                    "package"
                ),
            )
        )
    return findings

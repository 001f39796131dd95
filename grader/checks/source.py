"""Checks of a source-code artifact: a readme, some code, no weights or data sets, a size cap;
and, when the rubric asks, notebooks, the packages the code imports and published weights."""

from __future__ import annotations

import fnmatch
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from grader.files import format_bytes
from grader.findings import Finding, compact_list, error, warning

if TYPE_CHECKING:
    from grader.artifacts import SourceArtifact


def _matches(rel: str, patterns: list[str]) -> bool:
    name = PurePosixPath(rel).name.lower()
    return any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns)


def _convert_hint(notebook: str) -> str:
    name = PurePosixPath(notebook).name
    script = PurePosixPath(name).with_suffix(".py").name
    return (
        f"convert each notebook to a Python file (jupyter nbconvert --to script \"{name}\" writes "
        f"{script}), check that it runs, and zip the .py files instead of the notebooks"
    )


def check_loose_notebook(shown: str, *, artifact: str | None = None) -> list[Finding]:
    """A notebook handed in where a zip of .py files is asked for."""
    return [
        error(
            "source.notebook",
            f"{shown} is a Jupyter notebook; this assignment asks for the code as .py files in a zip",
            artifact=artifact,
            path=shown,
            hint=_convert_hint(shown),
        )
    ]


def _code_findings(root: Path, files: list[str], spec: SourceArtifact, artifact: str | None) -> list[Finding]:
    """What reading the code finds: unparsable files, imports off the list, published weights."""
    from grader.checks.code_units import parse_code
    from grader.checks.imports import check_imports
    from grader.checks.pretrained import check_pretrained

    parsed = parse_code(root, files)
    findings = [
        warning(
            "source.unparsable",
            f"{u.path} could not be read as {parsed.python} code ({u.reason}); "
            "what it imports and loads was not checked",
            artifact=artifact,
            path=u.path,
        )
        for u in parsed.unparsed
    ]
    if spec.allowed_imports is not None:
        findings += check_imports(parsed, spec.allowed_imports, artifact=artifact)
    if spec.forbid_pretrained:
        findings += check_pretrained(parsed, artifact=artifact)
    return findings


def check_source(root: Path, files: list[str], spec: SourceArtifact, *, artifact: str | None = None) -> list[Finding]:
    findings: list[Finding] = []
    if not files:
        return [error("source.empty", "the source code archive holds no files", artifact=artifact)]
    notebooks = [f for f in files if PurePosixPath(f).suffix.lower() == ".ipynb"]
    if spec.notebooks == "forbid" and notebooks:
        findings.append(
            error(
                "source.notebook",
                f"{len(notebooks)} Jupyter notebook(s): {compact_list(notebooks)}; this assignment "
                "asks for .py files",
                artifact=artifact,
                path=notebooks[0],
                hint=_convert_hint(notebooks[0]),
            )
        )
    readmes = [f for f in files if _matches(f, spec.readme)]
    if spec.readme and not readmes:
        findings.append(
            error(
                "source.no_readme",
                "no readme found (looked for " + ", ".join(spec.readme) + ")",
                artifact=artifact,
                hint="add a readme (.md, .txt or .pdf) saying how to create the environment and run the code",
            )
        )
    # Notebooks instead of .py files are one problem, said once (source.notebook).
    if spec.code and not any(_matches(f, spec.code) for f in files) and not (
        spec.notebooks == "forbid" and notebooks
    ):
        findings.append(
            error("source.no_code", f"no source files found ({', '.join(spec.code)})", artifact=artifact)
        )
    forbidden = [f for f in files if _matches(f, spec.forbid)]
    if forbidden:
        findings.append(
            error(
                "source.forbidden_file",
                f"{len(forbidden)} file(s) that look like weights or data sets: {compact_list(forbidden)}",
                artifact=artifact,
                path=forbidden[0],
                hint="the source zip must not contain model weights or the data set; remove them",
            )
        )
    if spec.max_bytes is not None:
        total = sum((root / f).stat().st_size for f in files)
        if total > spec.max_bytes:
            findings.append(
                error(
                    "source.too_large",
                    f"the source code is {format_bytes(total)}; the limit is {format_bytes(spec.max_bytes)}",
                    artifact=artifact,
                )
            )
    if spec.allowed_imports is not None or spec.forbid_pretrained:
        findings += _code_findings(root, files, spec, artifact)
    return findings

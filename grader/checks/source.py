"""Checks of a source-code artifact: a readme, some code, no weights or data sets, a size cap."""

from __future__ import annotations

import fnmatch
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from grader.files import format_bytes
from grader.findings import Finding, compact_list, error

if TYPE_CHECKING:
    from grader.artifacts import SourceArtifact


def _matches(rel: str, patterns: list[str]) -> bool:
    name = PurePosixPath(rel).name.lower()
    return any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns)


def check_source(root: Path, files: list[str], spec: SourceArtifact, *, artifact: str | None = None) -> list[Finding]:
    findings: list[Finding] = []
    if not files:
        return [error("source.empty", "the source code archive holds no files", artifact=artifact)]
    readmes = [f for f in files if _matches(f, spec.readme)]
    if not readmes:
        findings.append(
            error(
                "source.no_readme",
                "no readme found (looked for " + ", ".join(spec.readme) + ")",
                artifact=artifact,
                hint="add a readme (.md, .txt or .pdf) saying how to create the environment and run the code",
            )
        )
    if spec.code and not any(_matches(f, spec.code) for f in files):
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
    return findings

"""Decide which submitted file or folder is which rubric artifact.

Names alone are not enough: HW3's images zip and source zip are both named by student id.
Each item is sniffed once (a zip's member list, a folder's listing) and classified by what
it holds; an artifact takes the best-fitting item whose name matches one of its globs.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from grader.artifacts import handler_for
from grader.findings import Finding, error, info, warning
from grader.intake.sniff import Contents, sniff
from grader.rubric import Rubric


def _fits(spec, item: Path, contents: Contents) -> float:
    """0 when the item cannot be this artifact; higher is a better fit."""
    if spec.container == "zip" and not contents.is_zip:
        return 0
    if spec.container == "folder" and not contents.is_dir:
        return 0
    if spec.container == "file" and contents.is_bundle:
        return 0
    return handler_for(spec).fit(item, contents)


def _name_matches(name: str, patterns: list[str]) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


@dataclass
class Assignment:
    artifacts: dict[str, Path]  # artifact name -> item
    unassigned: list[Path]
    findings: list[Finding]


def assign(
    items: list[Path],
    rubric: Rubric,
    *,
    display_names: dict[Path, str] | None = None,
    partial: bool = False,
) -> Assignment:
    """Match items to artifacts. partial=True (a student checking one file): absent artifacts
    are 'not given' (info), not missing (error)."""
    display_names = display_names or {}
    contents = {item: sniff(item) for item in items}
    candidates: list[tuple[float, str, Path]] = []
    for name, spec in rubric.artifacts.items():
        for item in items:
            shown = display_names.get(item, item.name)
            if not _name_matches(shown, spec.match):
                continue
            # A name-only match (e.g. a .zip that is not a zip) still goes to its artifact, last,
            # so the artifact's own check says precisely what is wrong with it.
            fit = _fits(spec, item, contents[item]) or 0.01
            candidates.append((fit, name, item))
    # Greedy by fit: each item serves one artifact, each artifact takes one item.
    chosen: dict[str, Path] = {}
    used: set[Path] = set()
    for fit, name, item in sorted(candidates, key=lambda c: (-c[0], c[1], str(c[2]))):
        if name not in chosen and item not in used:
            chosen[name], used = item, used | {item}
    findings: list[Finding] = []
    for name, spec in rubric.artifacts.items():
        if name in chosen:
            continue
        title = spec.title or name
        wanted = " or ".join(spec.match)
        if partial:
            findings.append(
                info("submission.not_given", f"{title}: not given to this check", artifact=name)
            )
        elif spec.required:
            findings.append(
                error(
                    "submission.missing_artifact",
                    f"{title} is missing: no submitted file matches {wanted} ({spec.kind.replace('_', ' ')})",
                    artifact=name,
                    hint=spec.description or None,
                )
            )
        else:
            findings.append(
                info(
                    "submission.optional_absent",
                    f"{title} (optional) was not submitted",
                    artifact=name,
                )
            )
    unassigned = [item for item in items if item not in used]
    # Checking one file that is nothing the rubric asks for is a failure; an extra file
    # beside a complete submission is only worth a warning.
    extra = error if partial else warning
    for item in unassigned:
        shown = display_names.get(item, item.name)
        findings.append(
            extra(
                "submission.unexpected_file",
                f"{shown!r} does not match any artifact of this assignment; it was not graded",
                path=shown,
                hint="artifacts: "
                + "; ".join(
                    f"{s.title or n} ({', '.join(s.match)})" for n, s in rubric.artifacts.items()
                ),
            )
        )
    return Assignment(artifacts=chosen, unassigned=unassigned, findings=findings)


def expand_bundle(items: list[Path], rubric: Rubric) -> bool:
    """True when a lone zip is a bundle of the artifacts (a zip holding zips/PNGs), not one artifact."""
    if len(items) != 1 or len(rubric.artifacts) < 2:
        return False
    contents = sniff(items[0])
    if not contents.is_zip:
        return False
    top = {n.split("/")[0] for n in contents.names if "/" not in n.rstrip("/")}
    return any(n.lower().endswith(".zip") for n in top) and contents.images < 0.5 * len(
        contents.names
    )

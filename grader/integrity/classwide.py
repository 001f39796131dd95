"""The class-wide stage of the integrity checks: which students handed in the same images.

Runs after every student of a run is graded, over the signatures the integrity metric kept
for each (pixel digests, pHashes, thumbnails). A flagged pair gives both students an
``integrity.shared_set`` finding that never names the other student; the pairs themselves
go to the TA's class page only.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from grader import findings
from grader.integrity.shared import Signature, shared_pairs
from grader.metrics.kinds.integrity import IntegrityMetric
from grader.results import StudentResult

CODE = "integrity.shared_set"


def screen_class(results: list[StudentResult], rubric, cache_root: Path) -> list[dict]:
    """Shared-image pairs among `results` for each integrity metric of the rubric, as plain
    data (metric, a, b, identical, phash_matches, verified, shared, examples)."""
    pairs: list[dict] = []
    for name, spec in rubric.metrics.items():
        if not isinstance(spec, IntegrityMetric):
            continue
        folder = Path(cache_root) / "integrity" / "signatures"
        signatures = {}
        for result in results:
            metric = result.metric(name)
            sig = metric.details.get("signature") if metric and metric.value is not None else None
            if sig and (folder / sig).is_file():
                signatures[result.student_id] = Signature.load(folder / sig)
        for pair in shared_pairs(signatures, min_shared=spec.min_shared, ratio=spec.ratio):
            pairs.append({"metric": name, **asdict(pair), "shared": pair.shared})
    return pairs


def shared_findings(student_id: str, pairs: list[dict], rubric) -> list[findings.Finding]:
    """The student's own view of the pairs: how many of their images another submission
    shares, never with whom."""
    out = []
    for pair in pairs:
        if student_id not in (pair["a"], pair["b"]):
            continue
        spec = rubric.metrics[pair["metric"]]
        make = findings.warning if spec.action == "flag" else findings.error
        out.append(
            make(
                CODE,
                f"{pair['shared']:,} of your images also appear (identical or re-encoded) in another "
                f"student's submission; a TA will compare the two",
                artifact=spec.artifact,
            )
        )
    return out


def with_shared_findings(result: StudentResult, found: list[findings.Finding]) -> bool:
    """Replace the record's class-wide findings with `found`; True when they changed."""
    kept = [f for f in result.findings if f.code != CODE]
    if kept + found == result.findings:
        return False
    result.findings = kept + found
    result.update_status()
    return True

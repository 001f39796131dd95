"""The class-wide stage of the integrity checks: which students handed in the same images.

Runs after every student of a run is graded, over the signatures the integrity metric kept
for each (pixel digests, pHashes, thumbnails). The pairs go to the TA's class page only; the
integrity kind turns them into findings that never name the other student.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from grader.integrity.shared import Signature, shared_pairs
from grader.results import StudentResult


def signature_folder(cache_root: Path) -> Path:
    return Path(cache_root) / "integrity" / "signatures"


def screen_class(
    name: str, results: list[StudentResult], cache_root: Path, *, min_shared: int, ratio: float
) -> list[dict]:
    """Pairs of students among `results` whose sets (metric `name`) share images, as plain
    data (metric, a, b, identical, phash_matches, verified, shared, examples)."""
    folder = signature_folder(cache_root)
    signatures = {}
    for result in results:
        metric = result.metric(name)
        sig = metric.details.get("signature") if metric and metric.value is not None else None
        if sig and (folder / sig).is_file():
            signatures[result.student_id] = Signature.load(folder / sig)
    return [
        {"metric": name, **asdict(pair), "shared": pair.shared}
        for pair in shared_pairs(signatures, min_shared=min_shared, ratio=ratio)
    ]

"""What a stored grade is made of beyond the checks: why it changed, and the rubric it was
computed with (kept in the store, so `grader override` re-scores exactly as the batch did; both
go through scoring.regrade).
"""

from __future__ import annotations

import yaml

from grader.results import StudentResult
from grader.rubric import Rubric, parse_rubric
from grader.scoring import regrade
from grader.store import ResultStore


def key_parts(submission_hash: str, rubric: Rubric, grading_key: str, submitted_at: str) -> dict:
    """The pieces of a record's keys, kept so a later change can be named."""
    return {"submission": submission_hash, "checks": rubric.check_hash, "scoring": rubric.score_hash,
            "time": submitted_at, "grading_key": grading_key}


def why_changed(old: dict, new: dict, *, force: bool = False, stored: bool = True) -> str:
    """The reason logged in the history when a stored grade changes."""
    if not stored:
        return "first grading"
    if force:
        return "regrade (--force)"
    if not old:
        return "regraded"
    reasons = []
    if old.get("submission") != new.get("submission"):
        reasons.append("new submission")
    if old.get("checks") != new.get("checks") or old.get("scoring") != new.get("scoring"):
        reasons.append("rubric edit")
    if old.get("time") != new.get("time"):
        reasons.append("submission time change")
    if not reasons and old.get("grading_key") != new.get("grading_key"):
        reasons.append("TA files or grading options changed")
    return ", ".join(reasons) or "regraded"


def rubric_text(rubric: Rubric) -> str:
    """The rubric's source text (kept in the store by content hash, for overrides)."""
    if rubric.path is not None and rubric.path.is_file():
        return rubric.path.read_text(encoding="utf-8")
    return yaml.safe_dump(rubric.model_dump(mode="json"), sort_keys=False)


def stored_rubric(store: ResultStore, result: StudentResult) -> Rubric | None:
    text = store.rubric_text(result.rubric_hash) if result.rubric_hash else None
    return parse_rubric(text, source=f"rubric {result.rubric_hash[:12]} (from the store)") if text else None


def run_rubric(store: ResultStore, run) -> Rubric | None:
    """The rubric a run graded with (kept in the store), or None for stores without it."""
    text = store.rubric_text(run.rubric_hash) if run and run.rubric_hash else None
    return parse_rubric(text, source=f"rubric {run.rubric_hash[:12]} (from the store)") if text else None


def rescore_with_overrides(store: ResultStore, result: StudentResult) -> StudentResult:
    """A stored record's grade computed again with its rubric (kept in the store) and the
    current overrides; nothing is re-checked."""
    if result.grade is None:
        return result.model_copy(deep=True)
    rubric = stored_rubric(store, result)
    if rubric is None:
        raise LookupError("the rubric this grade was computed with is not in the store "
                          "(stores written before overrides existed): run `grader run` once more first")
    return regrade(result, rubric, store.overrides(result.student_id))

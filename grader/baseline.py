"""Calibrate a rubric with a reference model: sample a course-format submission from a
checkpoint, grade it with the rubric, and record its metrics and grade as a calibration point."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from grader.files import sha256_file
from grader.intake.discover import Submission
from grader.pipeline import GradingContext, grade_submission
from grader.results import StudentResult


def run_baseline(checkpoint: Path, ctx: GradingContext, out_dir: Path, *, num: int, seed: int,
                 device: str = "auto", student_id: str = "reference") -> tuple[StudentResult, Path]:
    from reference.baseline import write_hw3_submission

    files = write_hw3_submission(checkpoint, out_dir / "submission", student_id, num, seed, device=device,
                                 progress=ctx.progress)
    submission = Submission(student_id=student_id, items=[files["images"], files["process"], files["source"]])
    result = grade_submission(submission, ctx)
    record = {
        "rubric": ctx.rubric.name,
        "rubric_sha256": ctx.rubric.content_hash,
        "checkpoint": checkpoint.name,
        "checkpoint_sha256": sha256_file(checkpoint) if checkpoint.is_file() else None,
        "num": num,
        "seed": seed,
        "metrics": {m.name: {"value": m.value, "provenance": m.provenance, "skipped": m.skipped}
                    for m in result.metrics},
        "grade": result.grade.final if result.grade else None,
        "max_points": result.grade.max_points if result.grade else None,
        "findings": [f.code for f in result.findings if f.severity.fails],
        "at": datetime.now(timezone.utc).isoformat(),
    }
    path = out_dir / "calibration.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return result, path

"""A rubric with a `sample:` section: the student's sampler re-runs in the sandbox inside
`grader check`/`grade_submission`, its output goes through the same image checks, and the
provenance audit compares it with the upload."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import TEST_IMAGE

from grader.examples import drawn_digits, write_hw3_submission
from grader.intake.discover import Submission
from grader.pipeline import GradingContext, grade_submission
from grader.rubric import load_rubric

ROOT = Path(__file__).resolve().parents[1]
N = 16


def sampler_rubric(tmp_path: Path, backend: str, replace: bool) -> Path:
    data = yaml.safe_load((ROOT / "rubrics" / "hw3.yaml").read_text())
    data["artifacts"]["images"]["count"] = N
    data.pop("late")
    data["sample"] = {
        "source": "source", "produces": "images", "num": N, "seed": 3, "backend": backend,
        "command": "python3 sample.py --output {output} --num {num} --seed {seed}",
        "image": TEST_IMAGE, "timeout_s": 60, "memory_bytes": 512 * 1024**2,
        "replace_submitted": replace, "audit": {"count": 4, "mode": "exact", "tolerance": 0.5},
    }
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def grade(tmp_path, backend, replace):
    rubric = load_rubric(sampler_rubric(tmp_path, backend, replace))
    digits = drawn_digits(N + 8)
    sub_dir = tmp_path / "A0000001"
    items = write_hw3_submission(sub_dir, "A0000001", digits[:N], digits[N:])
    ctx = GradingContext(rubric=rubric, work_root=tmp_path / "work", compute_metrics=False, sandbox_backend=backend)
    return grade_submission(Submission(student_id="A0000001", items=items), ctx)


def test_sampler_runs_and_the_audit_catches_images_it_did_not_make(backend, tmp_path):
    result = grade(tmp_path, backend, replace=False)
    assert result.sandbox is not None and result.sandbox.exit_code == 0, result.sandbox
    assert "wrote 4 images" in result.sandbox.log  # the audit run: audit.count images only
    codes = {f.code for f in result.findings}
    # The uploaded digits are MNIST-like drawings made elsewhere, not this sampler's output.
    assert "sandbox.audit_mismatch" in codes, codes
    assert not any(c.startswith("images") for c in codes), codes


def test_regenerated_set_replaces_the_upload(backend, tmp_path):
    result = grade(tmp_path, backend, replace=True)
    assert result.sandbox.exit_code == 0 and f"wrote {N} images" in result.sandbox.log
    assert not any(f.artifact == "images (regenerated)" for f in result.findings), result.findings

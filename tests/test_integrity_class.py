"""The integrity checks across a class through `grader run`: training copies, a pair of
students sharing a (reordered, JPEG re-encoded) set, honest students left alone; the TA's class
page lists the pair, a student's own page never names the other student."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from grader.examples import write_hw3_submission
from grader.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
N = 60  # images per student: the checks are pixel-space, no InceptionV3 is run
HONEST, COPIER, SHARER_A, SHARER_B = "1000001", "1000002", "1000003", "1000004"


def _jpeg(digits: np.ndarray, quality: int = 75) -> np.ndarray:
    out = []
    for d in digits:
        buf = io.BytesIO()
        Image.fromarray(d).save(buf, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(buf).convert("L")))
    return np.stack(out)


def grader(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def graded(tmp_path_factory, mnist_dir, mnist_train, mnist_test):
    root = tmp_path_factory.mktemp("integrity-class")
    test_digits, train_digits = mnist_test[0], mnist_train[0]
    grid = test_digits[-8:]
    own = {
        HONEST: test_digits[:N],
        COPIER: np.concatenate(
            [test_digits[N : 2 * N - 20], train_digits[:20]]
        ),  # 20 training copies
        SHARER_A: test_digits[2 * N : 3 * N],
        SHARER_B: _jpeg(test_digits[2 * N : 3 * N][::-1]),  # A's set, reordered and re-encoded
    }
    for sid, digits in own.items():
        write_hw3_submission(root / "submissions" / sid, sid, digits, grid)
    data = yaml.safe_load((ROOT / "rubrics" / "hw3.yaml").read_text())
    data["artifacts"]["images"]["count"] = N
    data["metrics"] = {
        "integrity": {
            "kind": "integrity",
            "artifact": "images",
            "training": str(mnist_dir),
            "min_flagged": 10,
            "min_shared": 10,
            "action": "deduct",
            "points": 30,
        }
    }
    data["scoring"].pop("bands", None)
    data.pop("late", None)
    (root / "rubric.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**os.environ, "GRADER_CACHE_DIR": str(root / "cache"), "NO_COLOR": "1"}
    res = grader(
        "run",
        root / "submissions",
        "--rubric",
        root / "rubric.yaml",
        "--out",
        root / "out",
        "-q",
        env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return root, env


def test_copies_and_shared_sets_are_found_and_scored(graded):
    root, env = graded
    with ResultStore(root / "out") as store:
        records = {r.student_id: r for r in store.all()}
        run = store.last_run()
    codes = {
        sid: sorted({f.code for f in r.findings if f.code.startswith("integrity.")})
        for sid, r in records.items()
    }
    assert codes == {
        HONEST: [],
        COPIER: ["integrity.training_copies"],
        SHARER_A: ["integrity.shared_set"],
        SHARER_B: ["integrity.shared_set"],
    }
    assert records[COPIER].metric("integrity").value == 20
    ((pair),) = run.class_views["integrity"]
    assert (pair["a"], pair["b"]) == (SHARER_A, SHARER_B) and pair["verified"] == N
    rows = {
        r["student_id"]: r
        for r in csv.DictReader(
            io.StringIO(grader("export", root / "out", "--format", "csv", env=env).stdout)
        )
    }
    # action: deduct, 30 points per integrity finding; the honest student keeps everything.
    assert {sid: float(rows[sid]["final"]) for sid in rows} == {
        HONEST: 100.0,
        COPIER: 70.0,
        SHARER_A: 70.0,
        SHARER_B: 70.0,
    }


def test_pages_name_the_pair_only_to_the_ta(graded):
    root, _ = graded
    from grader.layout import student_dir

    klass = (root / "out" / "index.html").read_text(encoding="utf-8")
    assert 'id="shared-sets-integrity"' in klass and SHARER_A in klass and SHARER_B in klass
    page_a = (student_dir(root / "out", SHARER_A) / "index.html").read_text(encoding="utf-8")
    assert "another student&#39;s submission" in page_a and SHARER_B not in page_a
    page_b = (student_dir(root / "out", SHARER_B) / "index.html").read_text(encoding="utf-8")
    assert SHARER_A not in page_b
    honest = (student_dir(root / "out", HONEST) / "index.html").read_text(encoding="utf-8")
    assert "Classes of the images" in honest  # the class-mix chart of the integrity metric


def test_a_ta_override_clears_a_false_flag(graded):
    root, env = graded
    res = grader(
        "override",
        root / "out",
        SHARER_A,
        "--clear",
        "integrity.shared_set",
        "--reason",
        "checked: the two students are the same team",
        env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    rows = {
        r["student_id"]: r
        for r in csv.DictReader(
            io.StringIO(grader("export", root / "out", "--format", "csv", env=env).stdout)
        )
    }
    assert float(rows[SHARER_A]["final"]) == 100.0 and float(rows[SHARER_B]["final"]) == 70.0

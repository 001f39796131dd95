"""The results store (atomic, resumable records) and the grade exports."""

import csv
import io
import json

from grader.export import canvas_csv, generic_csv, gradescope_results
from grader.findings import error, info
from grader.results import Grade, GradeLine, MetricResult, RunInfo, StudentResult
from grader.store import ResultStore


def result(sid, final, fid=None, findings=(), late_days=0):
    r = StudentResult(
        student_id=sid,
        findings=list(findings),
        metrics=[MetricResult(name="fid", kind="fid", artifact="images", value=fid)],
        grade=Grade(
            max_points=100,
            raw=final + 10 * late_days,
            late_days=late_days,
            late_deduction=10 * late_days,
            final=final,
            lines=[GradeLine(label="FID score", points=final, max_points=100, detail="fid = ...")],
        ),
    )
    r.update_status()
    return r


def test_store_round_trip_and_resume_keys(tmp_path):
    with ResultStore(tmp_path) as store:
        run_id = store.start_run(RunInfo(rubric_name="hw3", rubric_hash="h"))
        store.put(result("A1", 90, 30.5), "key1", "s1", run_id)
        store.put(
            result("A1", 80, 45.0), "key2", "s1", run_id
        )  # regrade replaces, never duplicates
        store.put(result("B2", 0, None, [error("images.count", "x")]), "key3", "s1", run_id)
        store.put(
            result("B2", 5, None, [error("images.count", "x")]), "key3", "s2", run_id, graded=False
        )
    with ResultStore(tmp_path) as store:
        assert [r.student_id for r in store.all()] == ["A1", "B2"]
        assert store.keys("A1") == ("key2", "s1") and store.get("A1").grade.final == 80
        assert store.keys("B2") == ("key3", "s2") and store.get("B2").grade.final == 5
        assert store.get("B2").status == "problems"
        assert [g[1] for g in store.gradings()] == ["A1", "A1", "B2"]
        # A student missing from a run keeps the record, marked; only prune deletes it.
        assert store.mark_presence({"A1"}) == (["B2"], []) and store.get("B2").present is False
        assert store.absent() == ["B2"] and store.get("B2").grade.final == 5
        assert store.prune({"A1"}) == ["B2"] and store.get("B2") is None
        assert [(h.why, h.old_final, h.new_final) for h in store.history("A1")] == [
            ("first grading", None, 90),
            ("regraded", 90, 80),
        ]
        assert store.history("B2")[-1].new_status == "removed"
        assert store.last_run().rubric_name == "hw3"


def test_generic_csv():
    rows = list(
        csv.DictReader(
            io.StringIO(
                generic_csv(
                    [
                        result("A1", 75.0, 55.0),
                        result("B2", 40.0, 20.0, late_days=6),
                        result(
                            "C3",
                            0,
                            None,
                            [error("zip.corrupt", "x"), info("submission.not_given", "j")],
                        ),
                    ]
                )
            )
        )
    )
    assert rows[0] == {
        "student_id": "A1",
        "raw_points": "75.00",
        "late_days": "0",
        "late_deduction": "0.00",
        "final": "75.00",
        "max_points": "100.00",
        "fid": "55.0000",
        "findings": "0",
        "status": "clean",
        "grade_status": "complete",
        "incomplete_reason": "",
        "present": "yes",
        "ta_override": "",
    }
    assert rows[1]["late_days"] == "6" and rows[1]["late_deduction"] == "60.00"
    assert rows[2]["fid"] == "" and rows[2]["findings"] == "1" and rows[2]["status"] == "problems"


def test_canvas_export_joins_roster_and_lists_mismatches(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,HW3 (1)\n"
        "    Points Possible,,,,,100\n"
        '"Lovelace, Ada",4321,0812345,ada,Sec 1,\n'
        '"Turing, Alan",5555,0899999,alan,Sec 1,\n'
        '"Twin, One",6001,0700000,t1,Sec 2,\n'
        '"Twin, Two",6002,0700000,t2,Sec 2,\n'
    )
    out = canvas_csv(
        [result("0812345", 88.5, 30), result("0700000", 50, 70), result("0111111", 10, 90)],
        roster,
        "HW3 (1)",
        100,
    )
    rows = list(csv.reader(io.StringIO(out.csv_text)))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "HW3 (1)"]
    assert rows[1][0] == "Points Possible" and rows[1][-1] == "100"
    assert rows[2] == ["Lovelace, Ada", "4321", "0812345", "ada", "Sec 1", "88.50"]
    assert rows[3][-1] == ""  # Turing: no result
    assert out.unmatched_results == ["0111111"] and out.ambiguous == ["0700000"]
    assert "0899999" in out.ungraded_students


def test_gradescope_results_shape():
    data = gradescope_results(
        result(
            "A1", 70, 52.0, [error("images.mode", "412 images are grayscale", hint="save as RGB")]
        )
    )
    assert data["score"] == 70 and set(data) >= {"score", "output", "tests"}
    for test in data["tests"]:
        assert set(test) >= {"name", "score", "output", "visibility"}
    assert data["tests"][0]["max_score"] == 100
    assert any("save as RGB" in t["output"] for t in data["tests"])
    json.dumps(data)

"""Submission discovery across LMS layouts and submission-time sources."""

from datetime import datetime, timezone

import pytest

from grader.errors import GraderError
from grader.intake.discover import apply_submission_times, discover, read_times_csv

ID = r"(?P<id>[A-Za-z]?\d{5,12})"


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_plain_folders_and_loose_files(tmp_path):
    touch(tmp_path / "A1234567" / "A1234567.zip")
    touch(tmp_path / "A1234567" / "process.png")
    touch(tmp_path / "B7654321.zip")
    touch(tmp_path / "B7654321_process.png")
    touch(tmp_path / ".DS_Store")
    subs = discover(tmp_path, ID)
    assert [s.student_id for s in subs] == ["A1234567", "B7654321"]
    assert sorted(p.name for p in subs[0].items) == ["A1234567.zip", "process.png"]
    assert sorted(p.name for p in subs[1].items) == ["B7654321.zip", "B7654321_process.png"]


def test_moodle_layout(tmp_path):
    touch(tmp_path / "Ada Lovelace_12345_assignsubmission_file_" / "0812345.zip")
    touch(tmp_path / "Ada Lovelace_12345_assignsubmission_file_" / "grid.png")
    touch(tmp_path / "Alan Turing_22222_assignsubmission_file_" / "notes.png")
    subs = {s.student_id: s for s in discover(tmp_path, ID)}
    assert set(subs) == {"0812345", "22222"}  # id from the files, else Moodle's participant id
    assert subs["0812345"].layout == "moodle" and subs["0812345"].name == "Ada Lovelace"
    assert len(subs["0812345"].items) == 2


def test_canvas_layout_with_late_flag_and_resubmission_suffix(tmp_path):
    touch(tmp_path / "lovelaceada_4321_998877_0812345-1.zip")
    touch(tmp_path / "lovelaceada_4321_998878_process.png")
    touch(tmp_path / "turingalan_late_5555_998879_0899999.zip")
    subs = {s.student_id: s for s in discover(tmp_path, ID)}
    assert set(subs) == {"0812345", "0899999"}
    ada = subs["0812345"]
    assert ada.lms_id == "4321" and len(ada.items) == 2 and not ada.flagged_late
    assert sorted(ada.item_names.values()) == ["0812345.zip", "process.png"]
    assert subs["0899999"].flagged_late


def test_gradescope_layout_with_times(tmp_path):
    touch(tmp_path / "submission_111" / "images.zip")
    touch(tmp_path / "submission_222" / "images.zip")
    (tmp_path / "submission_metadata.yml").write_text(
        "submission_111:\n"
        "  :submitters:\n  - :name: Ada Lovelace\n    :sid: '0812345'\n    :email: ada@example.edu\n"
        "  :created_at: 2026-10-08 01:02:03.000000000 +08:00\n"
        "submission_222:\n"
        "  :submitters:\n  - :name: Alan Turing\n    :sid: '0899999'\n"
        "  :created_at: 2026-10-06 10:00:00.000000000 -07:00\n"
    )
    subs = {s.student_id: s for s in discover(tmp_path, ID)}
    assert set(subs) == {"0812345", "0899999"}
    assert subs["0812345"].submitted_at == datetime(2026, 10, 7, 17, 2, 3, tzinfo=timezone.utc)
    assert subs["0812345"].submitted_at_source == "Gradescope metadata"


def test_submission_time_sources(tmp_path):
    touch(tmp_path / "subs" / "A1234567.zip")
    touch(tmp_path / "subs" / "B7654321.zip")
    csv = tmp_path / "times.csv"
    csv.write_text("student_id,submitted_at\nA1234567,2026-10-07T23:00:00+08:00\n")
    subs = discover(tmp_path / "subs", ID)
    apply_submission_times(subs, read_times_csv(csv))
    by_id = {s.student_id: s for s in subs}
    assert by_id["A1234567"].submitted_at_source == "TA times CSV"
    assert by_id["B7654321"].submitted_at_source == "file modification times"


def test_bad_inputs_are_configuration_errors(tmp_path):
    with pytest.raises(GraderError, match="not found"):
        discover(tmp_path / "nope", ID)
    bad = tmp_path / "times.csv"
    bad.write_text("id,time\nA1,2026\n")
    with pytest.raises(GraderError, match="missing column"):
        read_times_csv(bad)
    bad.write_text("student_id,submitted_at\nA1,yesterday\n")
    with pytest.raises(GraderError, match=":2: cannot read time"):
        read_times_csv(bad)

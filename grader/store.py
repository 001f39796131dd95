"""The results store: one SQLite file per results folder, one row per student.

Each student's record is written in its own transaction, so a kill at any moment leaves
either the old record or the new one, never half of one. A record is reused on the next
run when its grading key (submission content + rubric + TA files + options) is unchanged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from grader.results import RunInfo, StudentResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    student_id   TEXT PRIMARY KEY,
    grading_key  TEXT NOT NULL,  -- submission + rubric check sections + TA files
    score_key    TEXT NOT NULL,  -- rubric scoring sections + submission time
    status       TEXT NOT NULL,
    final        REAL,
    record       TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    info         TEXT NOT NULL
);
-- One line per actual grading (not per reuse): how a resumed run proves nobody was graded twice.
CREATE TABLE IF NOT EXISTS gradings (
    run_id       INTEGER NOT NULL,
    student_id   TEXT NOT NULL,
    grading_key  TEXT NOT NULL,
    at           TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class ResultStore:
    FILENAME = "grader.db"

    def __init__(self, results_dir: Path | str):
        self.path = Path(results_dir) / self.FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: explicit transactions only; check_same_thread off because the
        # batch runner writes from the main thread after worker threads finish a student.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:  # noqa: PYI034 (typing.Self needs 3.11)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    # ---------------------------------------------------------------- runs

    def start_run(self, info: RunInfo) -> int:
        with self._transaction() as db:
            cur = db.execute("INSERT INTO runs (started_at, info) VALUES (?, ?)", (_now(), info.model_dump_json()))
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, info: RunInfo) -> None:
        with self._transaction() as db:
            db.execute("UPDATE runs SET finished_at = ?, info = ? WHERE run_id = ?", (_now(), info.model_dump_json(), run_id))

    def last_run(self) -> RunInfo | None:
        row = self._db.execute("SELECT info FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
        return RunInfo.model_validate_json(row[0]) if row else None

    # ---------------------------------------------------------------- results

    def keys(self, student_id: str) -> tuple[str, str] | None:
        """(grading_key, score_key) of the stored record, or None."""
        row = self._db.execute("SELECT grading_key, score_key FROM results WHERE student_id = ?",
                               (student_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def put(self, result: StudentResult, grading_key: str, score_key: str = "", run_id: int | None = None,
            *, graded: bool = True) -> None:
        """Store a record atomically; `graded` False for a re-score (logged as no grading)."""
        final = result.grade.final if result.grade else None
        with self._transaction() as db:
            db.execute(
                "INSERT INTO results (student_id, grading_key, score_key, status, final, record, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(student_id) DO UPDATE SET "
                "grading_key = excluded.grading_key, score_key = excluded.score_key, status = excluded.status, "
                "final = excluded.final, record = excluded.record, updated_at = excluded.updated_at",
                (result.student_id, grading_key, score_key, result.status, final, result.model_dump_json(), _now()),
            )
            if run_id is not None and graded:
                db.execute(
                    "INSERT INTO gradings (run_id, student_id, grading_key, at) VALUES (?, ?, ?, ?)",
                    (run_id, result.student_id, grading_key, _now()),
                )

    def get(self, student_id: str) -> StudentResult | None:
        row = self._db.execute("SELECT record FROM results WHERE student_id = ?", (student_id,)).fetchone()
        return StudentResult.model_validate_json(row[0]) if row else None

    def all(self) -> list[StudentResult]:
        rows = self._db.execute("SELECT record FROM results ORDER BY student_id").fetchall()
        return [StudentResult.model_validate_json(r[0]) for r in rows]

    def remove_except(self, student_ids: set[str]) -> list[str]:
        """Drop records of students no longer in the submissions folder."""
        gone = [r[0] for r in self._db.execute("SELECT student_id FROM results") if r[0] not in student_ids]
        with self._transaction() as db:
            db.executemany("DELETE FROM results WHERE student_id = ?", [(s,) for s in gone])
        return gone

    def gradings(self) -> list[tuple[int, str, str]]:
        return [tuple(r) for r in self._db.execute("SELECT run_id, student_id, grading_key FROM gradings ORDER BY rowid")]


def dump_json(results: list[StudentResult]) -> str:
    return json.dumps([json.loads(r.model_dump_json()) for r in results], indent=2)

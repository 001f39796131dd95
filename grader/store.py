"""The results store: one SQLite file per results folder, one row per student.

Each student's record is written in its own transaction, so a kill at any moment leaves
either the old record or the new one, never half of one. A record is reused on the next
run when its grading key (submission content + rubric + TA files + options) is unchanged.

Nothing is deleted without being asked: a student missing from a run keeps the record
(marked not present) until `grader run --prune`. Every change of a stored grade is a row
of `history`, written in the same transaction as the change; TA overrides live in
`overrides` and are applied again whenever the grade is computed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from grader.results import HistoryEntry, Override, RunInfo, StudentResult

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
-- Every change of a stored grade (final or status), and of a record's presence.
CREATE TABLE IF NOT EXISTS history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    student_id   TEXT NOT NULL,
    at           TEXT NOT NULL,
    run_id       INTEGER,
    why          TEXT NOT NULL,
    old_final    REAL,
    new_final    REAL,
    old_status   TEXT,
    new_status   TEXT,
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS history_student ON history (student_id);
CREATE TABLE IF NOT EXISTS overrides (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    student_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,  -- points / adjust / clear
    points       REAL,
    code         TEXT,
    reason       TEXT NOT NULL,
    at           TEXT NOT NULL,
    removed_at   TEXT
);
-- The rubric texts grades were computed with (by content hash): an override re-scores with them.
CREATE TABLE IF NOT EXISTS rubrics (
    content_hash TEXT PRIMARY KEY,
    text         TEXT NOT NULL
);
"""

# Columns added after the first release; added in place to older stores.
ADDED_COLUMNS = {
    "results": [
        ("present", "INTEGER NOT NULL DEFAULT 1"),
        ("absent_since", "TEXT"),
        ("key_parts", "TEXT NOT NULL DEFAULT '{}'"),
    ],
}


def _grade_of(record: StudentResult | None) -> tuple[float | None, str]:
    if record is None:
        return None, "none"
    return (record.grade.final if record.grade else None), record.grade_status


def _same(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-9)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class ResultStore:
    FILENAME = "grader.db"

    def __init__(self, results_dir: Path | str):
        self.path = Path(results_dir) / self.FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: explicit transactions only; check_same_thread off because the
        # batch runner writes from the main thread after worker threads finish a student.
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns:
                if name not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

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
            cur = db.execute(
                "INSERT INTO runs (started_at, info) VALUES (?, ?)",
                (_now(), info.model_dump_json()),
            )
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, info: RunInfo) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, info = ? WHERE run_id = ?",
                (_now(), info.model_dump_json(), run_id),
            )

    def last_run(self) -> RunInfo | None:
        row = self._db.execute("SELECT info FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
        return RunInfo.model_validate_json(row[0]) if row else None

    # ---------------------------------------------------------------- results

    def keys(self, student_id: str) -> tuple[str, str] | None:
        """(grading_key, score_key) of the stored record, or None."""
        row = self._db.execute(
            "SELECT grading_key, score_key FROM results WHERE student_id = ?", (student_id,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def key_parts(self, student_id: str) -> dict:
        """What the stored keys were made of (submission, rubric sections, time): tells why a
        grade changed."""
        row = self._db.execute(
            "SELECT key_parts FROM results WHERE student_id = ?", (student_id,)
        ).fetchone()
        return json.loads(row[0] or "{}") if row else {}

    def put(
        self,
        result: StudentResult,
        grading_key: str,
        score_key: str = "",
        run_id: int | None = None,
        *,
        graded: bool = True,
        why: str = "",
        key_parts: dict | None = None,
        always_log: bool = False,
        detail: str = "",
    ) -> None:
        """Store a record atomically; `graded` False for a re-score (logged as no grading).

        A change of the grade (final or status) is logged in `history` with `why`, in the same
        transaction; `always_log` logs the write even when the grade is unchanged (overrides).
        """
        final = result.grade.final if result.grade else None
        with self._transaction() as db:
            row = db.execute(
                "SELECT record, key_parts FROM results WHERE student_id = ?", (result.student_id,)
            ).fetchone()
            old_final, old_status = _grade_of(
                StudentResult.model_validate_json(row[0]) if row else None
            )
            parts = json.dumps(
                key_parts if key_parts is not None else json.loads(row[1] or "{}") if row else {},
                sort_keys=True,
            )
            db.execute(
                "INSERT INTO results (student_id, grading_key, score_key, status, final, record, updated_at, "
                "present, absent_since, key_parts) VALUES (?, ?, ?, ?, ?, ?, ?, 1, NULL, ?) "
                "ON CONFLICT(student_id) DO UPDATE SET "
                "grading_key = excluded.grading_key, score_key = excluded.score_key, status = excluded.status, "
                "final = excluded.final, record = excluded.record, updated_at = excluded.updated_at, "
                "present = 1, absent_since = NULL, key_parts = excluded.key_parts",
                (
                    result.student_id,
                    grading_key,
                    score_key,
                    result.status,
                    final,
                    result.model_dump_json(),
                    _now(),
                    parts,
                ),
            )
            if run_id is not None and graded:
                db.execute(
                    "INSERT INTO gradings (run_id, student_id, grading_key, at) VALUES (?, ?, ?, ?)",
                    (run_id, result.student_id, grading_key, _now()),
                )
            new_status = result.grade_status
            if always_log or row is None or not _same(old_final, final) or old_status != new_status:
                self._log(
                    db,
                    result.student_id,
                    run_id,
                    why or ("first grading" if row is None else "regraded"),
                    old_final,
                    final,
                    old_status,
                    new_status,
                    detail,
                )

    @staticmethod
    def _log(
        db: sqlite3.Connection,
        student_id: str,
        run_id: int | None,
        why: str,
        old_final: float | None,
        new_final: float | None,
        old_status: str | None,
        new_status: str | None,
        detail: str = "",
    ) -> None:
        db.execute(
            "INSERT INTO history (student_id, at, run_id, why, old_final, new_final, old_status, new_status, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (student_id, _now(), run_id, why, old_final, new_final, old_status, new_status, detail),
        )

    def _row_result(self, record: str, present: int) -> StudentResult:
        result = StudentResult.model_validate_json(record)
        result.present = bool(present)
        return result

    def get(self, student_id: str) -> StudentResult | None:
        row = self._db.execute(
            "SELECT record, present FROM results WHERE student_id = ?", (student_id,)
        ).fetchone()
        return self._row_result(*row) if row else None

    def all(self) -> list[StudentResult]:
        rows = self._db.execute(
            "SELECT record, present FROM results ORDER BY student_id"
        ).fetchall()
        return [self._row_result(*r) for r in rows]

    # ---------------------------------------------------------------- presence

    def mark_presence(
        self, student_ids: set[str], run_id: int | None = None
    ) -> tuple[list[str], list[str]]:
        """Records of students not in `student_ids` are kept and marked not present; returns
        (newly absent, present again)."""
        with self._transaction() as db:
            rows = db.execute("SELECT student_id, present, final, record FROM results").fetchall()
            gone, back = [], []
            for sid, present, final, record in rows:
                status = StudentResult.model_validate_json(record).grade_status
                if present and sid not in student_ids:
                    gone.append(sid)
                    db.execute(
                        "UPDATE results SET present = 0, absent_since = ? WHERE student_id = ?",
                        (_now(), sid),
                    )
                    self._log(
                        db,
                        sid,
                        run_id,
                        "not in the submissions folder (record kept)",
                        final,
                        final,
                        status,
                        status,
                    )
                elif not present and sid in student_ids:
                    back.append(sid)
                    db.execute(
                        "UPDATE results SET present = 1, absent_since = NULL WHERE student_id = ?",
                        (sid,),
                    )
                    self._log(
                        db,
                        sid,
                        run_id,
                        "back in the submissions folder",
                        final,
                        final,
                        status,
                        status,
                    )
        return gone, back

    def absent(self) -> list[str]:
        return [
            r[0]
            for r in self._db.execute(
                "SELECT student_id FROM results WHERE present = 0 ORDER BY student_id"
            )
        ]

    def prune(self, student_ids: set[str], run_id: int | None = None) -> list[str]:
        """Delete the records of students not in `student_ids` (`grader run --prune`); their
        history stays, ending with the removal."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT student_id, final, record FROM results ORDER BY student_id"
            ).fetchall()
            gone = []
            for sid, final, record in rows:
                if sid in student_ids:
                    continue
                gone.append(sid)
                status = StudentResult.model_validate_json(record).grade_status
                self._log(db, sid, run_id, "removed (--prune)", final, None, status, "removed")
                db.execute("DELETE FROM results WHERE student_id = ?", (sid,))
        return gone

    # ---------------------------------------------------------------- history and overrides

    def history(self, student_id: str | None = None) -> list[HistoryEntry]:
        where, args = (
            ("WHERE student_id = ?", (student_id,)) if student_id is not None else ("", ())
        )
        rows = self._db.execute(
            "SELECT student_id, at, run_id, why, old_final, new_final, old_status, new_status, detail "
            f"FROM history {where} ORDER BY id",
            args,
        ).fetchall()
        keys = (
            "student_id",
            "at",
            "run_id",
            "why",
            "old_final",
            "new_final",
            "old_status",
            "new_status",
            "detail",
        )
        return [HistoryEntry(**dict(zip(keys, r))) for r in rows]

    def overrides(self, student_id: str) -> list[Override]:
        rows = self._db.execute(
            "SELECT kind, points, code, reason, at FROM overrides WHERE student_id = ? AND removed_at IS NULL "
            "ORDER BY id",
            (student_id,),
        ).fetchall()
        return [Override(kind=k, points=p, code=c, reason=r, at=a) for k, p, c, r, a in rows]

    def add_override(self, student_id: str, override: Override) -> None:
        """A new override replaces the student's previous one of the same kind (same code for
        clears); the replaced one stays in the table, marked removed."""
        with self._transaction() as db:
            same = (
                "kind = ? AND code IS ?"
                if override.kind == "clear"
                else "kind IN ('points', 'adjust')"
            )
            args = (override.kind, override.code) if override.kind == "clear" else ()
            db.execute(
                f"UPDATE overrides SET removed_at = ? WHERE student_id = ? AND removed_at IS NULL AND {same}",
                (_now(), student_id, *args),
            )
            db.execute(
                "INSERT INTO overrides (student_id, kind, points, code, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    student_id,
                    override.kind,
                    override.points,
                    override.code,
                    override.reason,
                    _now(),
                ),
            )

    def remove_overrides(self, student_id: str, code: str | None = None) -> int:
        """Take back the student's overrides: the clear of `code`, or (no code) all of them."""
        cond, args = ("AND kind = 'clear' AND code = ?", (code,)) if code is not None else ("", ())
        with self._transaction() as db:
            cur = db.execute(
                f"UPDATE overrides SET removed_at = ? WHERE student_id = ? AND removed_at IS NULL {cond}",
                (_now(), student_id, *args),
            )
            return cur.rowcount

    def save_rubric(self, content_hash: str, text: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO rubrics (content_hash, text) VALUES (?, ?)",
                (content_hash, text),
            )

    def rubric_text(self, content_hash: str) -> str | None:
        row = self._db.execute(
            "SELECT text FROM rubrics WHERE content_hash = ?", (content_hash,)
        ).fetchone()
        return row[0] if row else None

    def gradings(self) -> list[tuple[int, str, str]]:
        return [
            tuple(r)
            for r in self._db.execute(
                "SELECT run_id, student_id, grading_key FROM gradings ORDER BY rowid"
            )
        ]


def dump_json(results: list[StudentResult]) -> str:
    return json.dumps([json.loads(r.model_dump_json()) for r in results], indent=2)

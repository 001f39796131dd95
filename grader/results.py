"""The durable record of one graded student: what the store keeps and reports render.

Everything here is plain, serialisable data (one JSON document per student), so a
student can be graded in any process or machine and the record moved around freely.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field

from grader.findings import Finding, has_failures

ArtifactStatus = Literal["ok", "problems", "missing", "not_given"]


class ArtifactResult(BaseModel):
    name: str
    title: str = ""
    kind: str
    status: ArtifactStatus
    submitted_as: str | None = None  # the file or folder name the student gave
    count: int | None = None  # images in a set
    # Images for reports, as paths relative to the student's work folder in the results dir.
    previews: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)  # e.g. grid noise estimates


class MetricResult(BaseModel):
    name: str
    kind: str
    title: str = ""
    artifact: str
    value: float | None = None
    components: dict[str, float] = Field(default_factory=dict)  # named values besides `value`
    provenance: dict[str, Any] = Field(default_factory=dict)  # backend, version, sha256s, N, device
    warnings: list[str] = Field(default_factory=list)
    skipped: str | None = None  # why it was not computed
    # Whose side a skip is on. "submission": the student's work (no readable images, too few,
    # not matching the label file): the band's `missing:` points may stand in. "not_here": a
    # file the grader needs is not on this machine (a student's `grader check` without the
    # TA's files): the TA computes it. "grading": metrics turned off, a crash. For the last
    # two the line is incomplete, never `missing:` points. None: computed, or an older record.
    skipped_cause: Literal["submission", "not_here", "grading"] | None = None
    details: dict[str, Any] = Field(default_factory=dict)  # report data (histograms, flagged names)


class GradeLine(BaseModel):
    label: str
    points: float  # signed: + for earned, - for deducted (0 on an incomplete line)
    max_points: float | None = None  # for earned lines: the most this line can give
    detail: str = ""
    incomplete: bool = False  # its points could not be computed (detail says why)
    metric: str | None = None  # a band's line: the metric it scores
    override: bool = False  # a TA's manual decision (detail gives the reason)


GradeStatus = Literal["complete", "incomplete"]


class Grade(BaseModel):
    max_points: float
    raw: float | None  # before late policy; None when incomplete
    late_days: int = 0
    late_deduction: float = 0.0
    final: float | None  # None when incomplete: never a guessed number
    lines: list[GradeLine] = Field(default_factory=list)
    submitted_at: datetime | None = None
    submitted_at_source: str | None = None  # "gradescope metadata", "TA csv", "file times"
    status: GradeStatus = "complete"
    incomplete: list[str] = Field(default_factory=list)  # "line: why", one per missing line
    computed: float | None = None  # the final before TA overrides (set when there are any)


class Override(BaseModel):
    """A TA's decision on one student's grade, kept in the store and applied on every scoring."""

    kind: Literal["points", "adjust", "clear"]  # final set to / final moved by / finding ignored
    points: float | None = None
    code: str | None = None  # for "clear": a finding code or glob
    reason: str
    at: datetime | None = None


class HistoryEntry(BaseModel):
    """One change of a stored grade."""

    student_id: str
    at: datetime
    run_id: int | None = None
    why: str
    old_final: float | None = None
    new_final: float | None = None
    old_status: str | None = None  # complete / incomplete / none / removed
    new_status: str | None = None
    detail: str = ""


class SandboxRun(BaseModel):
    backend: str
    command: str
    exit_code: int | None = None
    timed_out: bool = False
    seconds: float = 0.0
    log: str = ""  # stdout+stderr, truncated
    log_truncated: bool = False


class StudentResult(BaseModel):
    student_id: str
    status: Literal["clean", "problems", "error"] = "clean"
    submission: str = ""  # path of the submission as discovered, relative to the submissions dir
    # What the stored checks depend on (submission content, rubric check sections, TA files,
    # options); records written before the rename carry it as input_hash.
    grading_key: str = Field("", validation_alias=AliasChoices("grading_key", "input_hash"))
    rubric_hash: str = ""
    findings: list[Finding] = Field(default_factory=list)
    artifacts: list[ArtifactResult] = Field(default_factory=list)
    metrics: list[MetricResult] = Field(default_factory=list)
    grade: Grade | None = None
    sandbox: SandboxRun | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    traceback: str | None = None
    # Kept by the store, not by grading: False when the student was missing from the
    # submissions folder in the latest run (the record is kept; `grader run --prune` drops it).
    present: bool = True

    @property
    def grade_status(self) -> str:
        """complete / incomplete: a record without a grade (a crash) is incomplete too."""
        return self.grade.status if self.grade is not None else "incomplete"

    @property
    def incomplete_reason(self) -> str:
        if self.grade is None:
            return "grading crashed; see the report" if self.traceback else "not graded"
        return "; ".join(self.grade.incomplete)

    def metric(self, name: str) -> MetricResult | None:
        return next((m for m in self.metrics if m.name == name), None)

    def replace_findings(self, codes: tuple[str, ...], found: list[Finding]) -> bool:
        """Replace the record's findings of `codes` (a class-wide stage's) by `found`; True
        when they changed."""
        kept = [f for f in self.findings if f.code not in codes]
        if kept + found == self.findings:
            return False
        self.findings = kept + found
        self.update_status()
        return True

    def update_status(self) -> None:
        if self.traceback:
            self.status = "error"
        else:
            self.status = "problems" if has_failures(self.findings) else "clean"


class RunInfo(BaseModel):
    """Provenance of one `grader run` (or `grader check`): shown on the class page."""

    rubric_name: str
    rubric_hash: str
    rubric_path: str = ""
    max_points: float = 100.0
    command: str = ""
    versions: dict[str, str] = Field(default_factory=dict)  # grader, torch, backends, python
    machine: dict[str, str] = Field(default_factory=dict)  # hostname-free: platform, cpu count, device
    started_at: datetime | None = None
    finished_at: datetime | None = None
    students: int = 0
    # What the metric kinds' stages across the class found, by metric name: plain data for
    # the TA's class page (e.g. students whose image sets share images).
    class_views: dict[str, Any] = Field(default_factory=dict)

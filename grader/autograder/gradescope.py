"""A Gradescope autograder built from a rubric, and what it runs for every submission.

The zip holds `setup.sh` and `run_autograder` at its root (Gradescope unpacks it to
/autograder/source) beside the bundle (bundle.py). `setup.sh` runs once, with network, when
Gradescope builds the image: a venv with the CPU builds of torch and torchvision from
PyTorch's CPU wheel index, grader's pinned dependencies, and the Inception weights checked by
sha256 (fetched from the official release when the zip does not carry them). `run_autograder`
grades /autograder/submission with the same pipeline as `grader check` and `grader run`,
offline, and writes /autograder/results/results.json from export.gradescope_results, adding
what only the platform has: execution time, per-line visibility, a leaderboard, late days from
/autograder/submission_metadata.json. It always writes a results.json: a configuration
problem becomes an output without a score, never a missing file.
"""

from __future__ import annotations

import fnmatch
import json
import time
from pathlib import Path

from grader import atomic
from grader.autograder.bundle import base_bundle, read_config, torch_pins
from grader.errors import GraderError
from grader.findings import Severity
from grader.intake.discover import JUNK_NAMES, Submission, _as_aware
from grader.metrics.kinds import handler_of
from grader.platforms import BASE_LINE, LATE_LINE
from grader.results import StudentResult
from grader.rubric import Rubric

CPU_INDEX = "https://download.pytorch.org/whl/cpu"

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, with network, when it builds the autograder image (Ubuntu 22.04,
# Python 3.10, no GPU). Grading itself never downloads anything.
#   AUTOGRADER_ROOT      default /autograder (the zip is unpacked to $AUTOGRADER_ROOT/source)
#   GRADER_TORCH_INDEX   where the CPU builds of torch and torchvision come from (default
#                        PyTorch's CPU wheel index; empty: pip's own configured index)
#   GRADER_PYTHON        the interpreter the venv is made from (default python3)
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
PYTHON="${GRADER_PYTHON:-python3}"
TORCH_INDEX="${GRADER_TORCH_INDEX-__CPU_INDEX__}"
started=$(date +%s)

if ! "$PYTHON" -c "import venv, ensurepip" 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
fi
"$PYTHON" -m venv "$ROOT/venv"
PIP=("$ROOT/venv/bin/python" -m pip install -q --no-input)
if [[ -n "$TORCH_INDEX" ]]; then
    "${PIP[@]}" --index-url "$TORCH_INDEX" __TORCH_PINS__
else
    "${PIP[@]}" __TORCH_PINS__
fi
"${PIP[@]}" -r "$SOURCE/requirements.txt"

WEIGHTS="__WEIGHTS__"
if [[ -n "$WEIGHTS" ]]; then
    if [[ ! -f "$SOURCE/$WEIGHTS" ]]; then
        mkdir -p "$(dirname "$SOURCE/$WEIGHTS")"
        "$ROOT/venv/bin/python" - "$SOURCE/$WEIGHTS" <<'PY'
import sys, urllib.request
urllib.request.urlretrieve("__WEIGHTS_URL__", sys.argv[1])
PY
    fi
    echo "__WEIGHTS_SHA256__  $SOURCE/$WEIGHTS" | sha256sum --check --quiet \
        || { echo "the Inception weights do not have the sha256 the autograder was built with" >&2; exit 1; }
fi

# Fails here, at build time, rather than on the first student's submission.
PYTHONPATH="$SOURCE/python" "$ROOT/venv/bin/python" -m grader --version
echo "setup.sh: ready in $(( $(date +%s) - started )) s"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission: it grades $ROOT/submission and writes
# $ROOT/results/results.json (always; exit 0 unless even that was impossible).
ROOT="${AUTOGRADER_ROOT:-/autograder}"
export PYTHONPATH="$ROOT/source/python" GRADER_OFFLINE=1
export GRADER_CACHE_DIR="${GRADER_CACHE_DIR:-$ROOT/source/cache}"  # holds what the zip precomputed
exec "${GRADER_PYTHON:-$ROOT/venv/bin/python}" -m grader autograder grade gradescope --root "$ROOT"
"""


def build_gradescope(rubric: Rubric, out: Path, *, stats_overrides: dict[str, Path], weights: Path | None,
                     checks_only: bool, fetch_weights: bool) -> dict:
    """Write the autograder zip; return its autograder.json."""
    from grader.metrics.inception import WEIGHTS_URL

    bundle, config = base_bundle(rubric, stats_overrides, weights, checks_only=checks_only,
                                 fetch_weights=fetch_weights, platform="gradescope")
    setup = (SETUP_SH.replace("__CPU_INDEX__", CPU_INDEX).replace("__TORCH_PINS__", " ".join(torch_pins()))
             .replace("__WEIGHTS_URL__", WEIGHTS_URL).replace("__WEIGHTS_SHA256__", config.get("weights_sha256") or "")
             .replace("__WEIGHTS__", config["weights"] or ""))
    bundle.texts["setup.sh"] = setup
    bundle.texts["run_autograder"] = RUN_AUTOGRADER
    bundle.executables |= {"setup.sh", "run_autograder"}
    bundle.write_zip(out)
    return config


# ---------------------------------------------------------------- grading one submission


def read_metadata(root: Path) -> dict:
    try:
        data = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def submission_from(root: Path, metadata: dict) -> Submission:
    """What the student uploaded (files, folders or a zip) with their id and upload time."""
    folder = root / "submission"
    items = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name.lower() not in JUNK_NAMES) \
        if folder.is_dir() else []
    if len(items) == 1 and items[0].is_dir() and 0 < len(list(items[0].iterdir())) <= 50:
        items = sorted(p for p in items[0].iterdir() if not p.name.startswith(".")
                       and p.name.lower() not in JUNK_NAMES)  # a folder zipped whole, unpacked
    users = metadata.get("users") or [{}]
    first = users[0] if isinstance(users[0], dict) else {}
    sid = str(first.get("sid") or first.get("email") or first.get("id") or "student").strip()
    when = _as_aware(metadata.get("created_at"))
    return Submission(student_id=sid, items=items, layout="gradescope", name=str(first.get("name") or ""),
                      submitted_at=when, submitted_at_source="Gradescope submission metadata" if when else None)


def line_key(label: str, rubric: Rubric) -> str | None:
    """The rubric line (a band's metric, a deduction's code, base, late) a grade line came from."""
    for band in rubric.scoring.bands:
        if label == (band.title or band.metric):
            return band.metric
    for rule in rubric.scoring.deductions:
        if label == rule.title or (not rule.title and fnmatch.fnmatchcase(label, rule.code)):
            return rule.code
    if label == "Base points":
        return BASE_LINE
    if label.startswith("Late"):
        return LATE_LINE
    return None


def finding_line(code: str, rubric: Rubric) -> str | None:
    return next((rule.code for rule in rubric.scoring.deductions if fnmatch.fnmatchcase(code, rule.code)), None)


def _leaderboard(result: StudentResult, rubric: Rubric) -> list[dict]:
    board = []
    for name in rubric.platforms.gradescope.leaderboard:
        metric = result.metric(name)
        if metric is None or metric.value is None:
            continue
        band = next((b for b in rubric.scoring.bands if b.metric == name), None)
        lower_better = (band.points[0][1] > band.points[-1][1] if band and len(band.points) > 1
                        else handler_of(metric.kind).lower_is_better)
        board.append({"name": metric.title or name, "value": round(metric.value, 4),
                      "order": "asc" if lower_better else "desc"})
    return board


def _summary(result: StudentResult, checks_only: bool) -> str:
    lines = []
    for m in result.metrics:
        if m.value is not None:
            p = m.provenance
            lines.append(f"- **{m.title or m.name}**: {m.value:.4f} ({p.get('backend', m.kind)} "
                         f"{p.get('backend_version', '')}, N={p.get('n', '?')})")
        elif not checks_only:
            lines.append(f"- **{m.title or m.name}**: not computed: {m.skipped}")
    failing = sum(f.severity is Severity.ERROR for f in result.findings)
    lines.append(f"- {failing} problem{'s' if failing != 1 else ''} found in the submission" if failing
                 else "- no problems found in the submission's format")
    if checks_only:
        lines.append("- format checks only: the metrics and the grade come from the teaching team's run")
    return "\n".join(lines)


def decorate(results: dict, result: StudentResult, rubric: Rubric, *, checks_only: bool) -> dict:
    """Gradescope's platform fields on export.gradescope_results' output."""
    options = rubric.platforms.gradescope
    lines = {line.label: line for line in (result.grade.lines if result.grade else [])}
    for test in results.get("tests", []):
        name = test.get("name", "")
        key = line_key(name, rubric) if name in lines else None
        if key is None and name.startswith("["):
            key = finding_line(name.split("] ", 1)[-1].split(" ", 1)[0], rubric)
        test["visibility"] = options.lines.get(key, options.visibility) if key else options.visibility
        test.setdefault("output_format", "text")
        if "score" in test:
            line = lines.get(name)
            failed = test["score"] < 0 or (line is not None and line.max_points is not None
                                            and test["score"] < test.get("max_score", 0))
            test["status"] = "failed" if failed or name.startswith("[error]") else "passed"
    if checks_only:
        results.pop("score", None)
        for test in results.get("tests", []):
            test.pop("score", None)
            test.pop("max_score", None)
            test.pop("status", None)
    head = results.get("output", "")
    if checks_only:
        head = "Format checks of your upload (the grade comes later, from the teaching team)."
    results["output"] = f"{head}\n\n{_summary(result, checks_only)}"
    results["output_format"] = "md"
    results["visibility"] = options.visibility
    results["stdout_visibility"] = options.stdout_visibility
    board = [] if checks_only else _leaderboard(result, rubric)
    if board:
        results["leaderboard"] = board
    if result.grade is not None and rubric.late is not None and result.grade.submitted_at is not None:
        results.setdefault("extra_data", {})["late_days"] = result.grade.late_days
    return results


def grade_gradescope(root: Path) -> dict:
    """results.json for the submission under root (Gradescope's /autograder layout)."""
    from grader.export import gradescope_results
    from grader.metrics.features import available_cpus
    from grader.pipeline import GradingContext, grade_submission
    from grader.rubric import load_rubric
    from grader.scratch import scratch_dir

    source = root / "source"
    config = read_config(source)
    rubric = load_rubric(source / config["rubric"])
    checks_only = bool(config.get("checks_only"))
    metadata = read_metadata(root)
    sub = submission_from(root, metadata)
    with scratch_dir(rubric.limits.max_total_bytes, prefix="grader-gradescope-") as tmp:
        ctx = GradingContext(
            rubric=rubric, work_root=Path(tmp) / "work",
            weights=source / config["weights"] if config.get("weights") else None,
            device="cpu", compute_metrics=not checks_only, run_sampler=False, progress=False,
        )
        ctx.preflight()  # a TA file missing from the autograder: said in the results, no score
        result = grade_submission(sub, ctx)
    print(f"graded {sub.student_id} on {available_cpus()} CPU(s): {result.status}, grade "
          f"{result.grade.final if result.grade else None}", flush=True)
    if result.traceback:
        print(result.traceback, flush=True)  # stdout: the teaching team's, not the student's
    return decorate(gradescope_results(result), result, rubric, checks_only=checks_only)


def run_gradescope(root: Path) -> int:
    """Grade and write root/results/results.json; a problem of the autograder itself is
    written there too (no score), so the student sees a sentence, not "failed to execute"."""
    started = time.monotonic()
    try:
        results = grade_gradescope(root)
    except GraderError as exc:
        print(f"autograder configuration problem: {exc}", flush=True)
        results = {"output": "The autograder could not grade this submission: the teaching team has been "
                             f"shown why and will grade it.\n\n{exc}", "output_format": "text", "tests": [],
                   "visibility": "visible"}
    except Exception as exc:  # noqa: BLE001 -- a results.json without a score beats none at all
        import traceback

        traceback.print_exc()
        results = {"output": f"The autograder failed ({type(exc).__name__}); the teaching team will grade "
                             "this submission.", "output_format": "text", "tests": [], "visibility": "visible"}
    results["execution_time"] = max(1, round(time.monotonic() - started))
    atomic.write_text(root / "results" / "results.json", json.dumps(results, indent=2) + "\n")
    return 0

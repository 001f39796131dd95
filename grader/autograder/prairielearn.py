"""A PrairieLearn externally graded question built from a rubric, and its entrypoint.

The question folder holds info.json (externalGradingOptions: the image, the entrypoint, a
timeout of at most 600 s, no network), question.html (one file upload: the submission zip),
tests/ (mounted at /grade/tests: the rubric, its TA files, the entrypoint) and image/ (the
recipe of the grading image: FROM prairielearn/grader-python, grader and its pinned
dependencies installed in its /venv). The entrypoint grades /grade/student with the same
pipeline as `grader run` and writes /grade/results/results.json: score in 0..1, one test per
rubric line, the grids as images; `gradable: false` with `format_errors` when there is no grade
to give (nothing gradable uploaded, or a line that cannot be computed: never a guessed score).
It always exits 0, since PrairieLearn discards the results of a non-zero exit.
"""

from __future__ import annotations

import base64
import io
import json
import time
from html import escape
from pathlib import Path

from grader import atomic
from grader.autograder.bundle import Bundle, base_bundle, read_config, torch_pins
from grader.autograder.gradescope import CPU_INDEX, finding_line, line_key
from grader.errors import GraderError
from grader.findings import Severity
from grader.intake.discover import JUNK_NAMES, Submission
from grader.results import StudentResult
from grader.rubric import Rubric

BASE_IMAGE = "prairielearn/grader-python"
UPLOAD = "submission.zip"
RESULTS_LIMIT = 1_000_000  # PrairieLearn rejects larger results
IMAGE_BUDGET = 700_000  # bytes of data URIs, leaving room for the rest
ENTRYPOINT = "/grade/tests/run_grader"

RUN_GRADER = r"""#!/bin/bash
# PrairieLearn runs this in the grading container: grade /grade/student, write
# /grade/results/results.json, exit 0.
exec "${GRADER_PYTHON:-/venv/bin/python}" -m grader autograder grade prairielearn --root "${GRADER_PL_ROOT:-/grade}"
"""

DOCKERFILE = """# The grading image of this question: PrairieLearn's Python grader image with grader installed.
#   docker build --platform linux/amd64 -t {image} .   (then push it where PrairieLearn pulls from)
FROM {base}
USER root
COPY requirements.txt /grader/requirements.txt
RUN /venv/bin/pip install --no-cache-dir --index-url {index} {torch} \\
 && /venv/bin/pip install --no-cache-dir -r /grader/requirements.txt
COPY python /grader/python
{weights}{cache}ENV PYTHONPATH=/grader/python GRADER_OFFLINE=1 GRADER_CACHE_DIR=/tmp/grader-cache
"""

QUESTION_HTML = """<pl-question-panel>
  <p>{title}</p>
  <p>Upload one zip, <code>{upload}</code>, holding every part of the hand-in:</p>
  <ul>
{parts}
  </ul>
  <p>Check it first on your machine: <code>grader check {upload} --rubric {rubric_name}</code>.</p>
</pl-question-panel>

<pl-file-upload file-names="{upload}"></pl-file-upload>

<pl-submission-panel>
  <pl-external-grader-results></pl-external-grader-results>
  <pl-file-preview></pl-file-preview>
</pl-submission-panel>
"""


def build_prairielearn(rubric: Rubric, out: Path, *, stats_overrides: dict[str, Path], weights: Path | None,
                       checks_only: bool) -> dict:
    """Write the question folder; return its tests/autograder.json."""
    import uuid

    bundle, config = base_bundle(rubric, stats_overrides, weights, checks_only=checks_only,
                                 fetch_weights=False, platform="prairielearn")
    options = rubric.platforms.prairielearn
    question = Bundle()
    image = Bundle()
    for name, source in bundle.files.items():
        if name.startswith(("python/", "weights/")):
            image.files[name] = source
        else:
            question.files[f"tests/{name}"] = source
    for name, text in bundle.texts.items():
        (image.texts if name == "requirements.txt" else question.texts)[
            name if name == "requirements.txt" else f"tests/{name}"] = text
    image.blobs.update(bundle.blobs)  # the precomputed cache, baked where GRADER_CACHE_DIR points
    question.texts["tests/run_grader"] = RUN_GRADER
    question.executables.add("tests/run_grader")
    weights_line = ""
    if config.get("weights"):
        config["weights"] = f"/grader/{config['weights']}"  # baked into the image, not copied per job
        question.texts["tests/autograder.json"] = json.dumps(config, indent=2) + "\n"
        weights_line = "COPY weights /grader/weights\n"
    image.texts["Dockerfile"] = DOCKERFILE.format(image=options.image, base=BASE_IMAGE, index=CPU_INDEX,
                                                  torch=" ".join(torch_pins()), weights=weights_line,
                                                  cache="COPY cache /tmp/grader-cache\n" if bundle.blobs else "")
    info = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"grader:{rubric.name}")),
        "title": rubric.name,
        "topic": rubric.course or rubric.name,
        "tags": ["grader"],
        "type": "v3",
        "singleVariant": True,
        "gradingMethod": "External",
        "externalGradingOptions": {
            "enabled": True,
            "image": options.image,
            "entrypoint": ENTRYPOINT,
            "timeout": options.timeout_s,
            "enableNetworking": False,
        },
    }
    question.texts["info.json"] = json.dumps(info, indent=2) + "\n"
    parts = "\n".join(f"    <li>{escape(spec.title or name)}: {escape(spec.description or '')}</li>"
                      for name, spec in rubric.artifacts.items())
    question.texts["question.html"] = QUESTION_HTML.format(title=escape(rubric.name), upload=UPLOAD, parts=parts,
                                                           rubric_name=rubric.shipped_name or "rubric.yaml")
    question.write_folder(out)
    image.write_folder(out / "image")
    return config


# ---------------------------------------------------------------- grading one upload


def _submission(root: Path, rubric: Rubric, scratch: Path) -> tuple[Submission, list]:
    """The upload as a submission: the zip unpacked (by the hardened reader, its findings kept)."""
    from grader.intake.unpack import unpack_zip

    folder = root / "student"
    items = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name.lower() not in JUNK_NAMES) \
        if folder.is_dir() else []
    findings = []
    if len(items) == 1 and items[0].suffix.lower() == ".zip":
        unpacked = unpack_zip(items[0], scratch, rubric.limits, flat=False, forbid_junk=False)
        findings = [f for f in unpacked.findings if f.code != "zip.nested_zip"]
        items = sorted({unpacked.root / name.split("/")[0] for name in unpacked.files})
    return Submission(student_id="student", items=items, layout="prairielearn"), findings


def _data_uri(path: Path, budget: int) -> str | None:
    """The image as a PNG data URI within `budget` bytes (scaled down if it has to be)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        for _ in range(6):
            buf = io.BytesIO()
            im.save(buf, format="PNG", optimize=True)
            uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
            if len(uri) <= budget:
                return uri
            im = im.resize((max(1, im.width // 2), max(1, im.height // 2)))
    return None


def _images(result: StudentResult, student_assets: Path) -> list[dict]:
    """The submitted single images (Lab6: both grids), as PrairieLearn shows them; previews are
    named relative to the student's folder of assets."""
    shown = [a for a in result.artifacts if a.kind == "image" and a.previews]
    out = []
    for artifact in shown:
        path = student_assets / artifact.previews[0]
        if not path.is_file():
            continue
        uri = _data_uri(path, IMAGE_BUDGET // max(1, len(shown)))
        if uri:
            out.append({"label": artifact.title or artifact.name, "url": uri})
    return out


def _finding_text(f) -> str:
    return f"{f.message}\nHow to fix: {f.fix}"


def pl_results(result: StudentResult, rubric: Rubric, images: list[dict], *, checks_only: bool) -> dict:
    g = result.grade
    failing = [f for f in result.findings if f.severity is Severity.ERROR]
    by_line: dict[str | None, list] = {}
    for f in failing:
        by_line.setdefault(finding_line(f.code, rubric), []).append(f)
    tests = []
    for line in g.lines if g else []:
        key = line_key(line.label, rubric)
        notes = [_finding_text(f) for f in by_line.pop(key, [])] if key else []
        entry = {"name": line.label, "description": line.detail,
                 "message": "not computed: " + line.detail if line.incomplete else line.detail,
                 "output": "\n\n".join(notes)}
        if not line.incomplete and not checks_only:
            entry["points"] = round(line.points, 4)
            entry["max_points"] = round(line.max_points if line.max_points is not None else 0.0, 4)
        tests.append(entry)
    others = [_finding_text(f) for fs in by_line.values() for f in fs]
    warnings = [f"{f.message}" for f in result.findings if f.severity is Severity.WARNING]
    output = "\n\n".join(others + warnings)
    metrics = "; ".join(f"{m.title or m.name} = {m.value:.4f}" for m in result.metrics if m.value is not None)
    found = [a for a in result.artifacts if a.status != "missing"]
    errors: list[str] = []
    if not found:
        errors.append(f"nothing gradable was uploaded: upload {UPLOAD} holding the hand-in's parts")
    elif checks_only:
        errors.append("format checks only: the grade comes from the teaching team's run")
        errors += [_finding_text(f) for f in failing]
    elif result.grade_status == "incomplete":
        errors.append(f"the grade cannot be computed yet: {result.incomplete_reason}")
        errors += [_finding_text(f) for f in failing]
    if errors:
        return {"gradable": False, "format_errors": errors, "message": metrics, "output": output,
                "tests": tests, "images": images}
    return {"gradable": True, "score": round(max(0.0, min(1.0, g.final / g.max_points)), 6),
            "message": f"{g.final:.2f} / {g.max_points:g}" + (f" ({metrics})" if metrics else ""),
            "output": output, "tests": tests, "images": images}


def grade_prairielearn(root: Path) -> dict:
    from grader.layout import STUDENTS_DIR, student_dir_name
    from grader.pipeline import GradingContext, grade_submission
    from grader.rubric import load_rubric
    from grader.scoring import regrade
    from grader.scratch import scratch_dir

    source = root / "tests"
    config = read_config(source)
    rubric = load_rubric(source / config["rubric"])
    checks_only = bool(config.get("checks_only"))
    weights = config.get("weights")
    with scratch_dir(rubric.limits.max_total_bytes, prefix="grader-prairielearn-") as tmp:
        assets = Path(tmp) / STUDENTS_DIR
        ctx = GradingContext(rubric=rubric, work_root=Path(tmp) / "work", assets_root=assets,
                             weights=(source / weights) if weights else None, device="cpu",
                             compute_metrics=not checks_only, run_sampler=False, progress=False)
        ctx.preflight()
        sub, upload_findings = _submission(root, rubric, Path(tmp) / "upload")
        result = grade_submission(sub, ctx)
        if upload_findings:  # the zip's own problems count as they do in `grader run`
            result.findings = upload_findings + result.findings
            result = regrade(result, rubric, [])  # the grade's own submission time is kept
            result.update_status()
        images = _images(result, assets / student_dir_name(result.student_id))
    if result.traceback:
        print(result.traceback, flush=True)
    return pl_results(result, rubric, images, checks_only=checks_only)


def _fit(results: dict) -> str:
    """The JSON text under PrairieLearn's 1 MB: images go first, then long outputs are cut."""
    text = json.dumps(results)
    while len(text.encode()) >= RESULTS_LIMIT and results.get("images"):
        results["images"].pop()
        text = json.dumps(results)
    if len(text.encode()) >= RESULTS_LIMIT:
        results["output"] = results.get("output", "")[:20_000] + "\n[cut: too long]"
        for test in results.get("tests", []):
            test["output"] = test.get("output", "")[:5_000]
        text = json.dumps(results)
    return text


def run_prairielearn(root: Path) -> int:
    started = time.monotonic()
    try:
        results = grade_prairielearn(root)
    except GraderError as exc:  # the question's own configuration: no penalty, a sentence
        print(f"autograder configuration problem: {exc}", flush=True)
        results = {"gradable": False, "format_errors": [(f"the autograder could not grade this upload "
                                                        f"(the course staff have been shown why): {exc}")]}
    except Exception as exc:  # noqa: BLE001 -- results are read only after exit 0
        import traceback

        traceback.print_exc()
        results = {"gradable": False, "format_errors": [f"the autograder failed: {type(exc).__name__}: {exc}"]}
    print(f"graded in {time.monotonic() - started:.1f} s", flush=True)
    try:
        atomic.write_text(root / "results" / "results.json", _fit(results) + "\n")
    except OSError as exc:
        print(f"cannot write results: {exc}", flush=True)
    return 0

"""Rubric validation: the shipped rubrics load; every bad value is named by its YAML path."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.errors import RubricError
from grader.rubric import load_rubric, parse_rubric

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["hw3", "hw9", "lab6"])
def test_shipped_rubrics_load(name):
    rubric = load_rubric(ROOT / "rubrics" / f"{name}.yaml")
    assert rubric.artifacts and len(rubric.content_hash) == 64


def test_hw3_rules_match_the_course():
    r = load_rubric(ROOT / "rubrics" / "hw3.yaml")
    images = r.artifacts["images"]
    assert images.count == 10_000 and images.size == (28, 28) and images.modes == ["RGB"]
    names = images.expected_names()
    assert names[0] == "00001.png" and names[-1] == "10000.png" and len(names) == 10_000
    assert images.flat and images.forbid_junk and images.container == "zip"
    assert r.metrics["fid"].backend == "pytorch-gan-metrics"
    assert r.scoring.bands[0].points == [(40, 100), (100, 0)]
    assert r.late.hard
    assert r.resolve(r.metrics["fid"].stats) == ROOT / "rubrics" / "mnist.npz"
    # Integrity on by default, against the TA's MNIST folder beside the rubric; flags only.
    integrity = r.metrics["integrity"]
    assert integrity.artifact == "images" and integrity.action == "flag"
    assert r.resolve(integrity.training) == ROOT / "rubrics" / "mnist"
    # The handout's package white list and no pretrained weights.
    source = r.artifacts["source"]
    assert source.forbid_pretrained and source.allowed_imports["opencv-python"] == ["cv2"]
    assert source.allowed_imports["scikit-learn"] == ["sklearn"] and source.allowed_imports["tqdm"] == ["tqdm"]


def test_hw9_rules_match_the_course():
    r = load_rubric(ROOT / "rubrics" / "hw9.yaml")
    sets = [a for a in r.artifacts.values() if a.kind == "image_set"]
    assert len(sets) == 3 and all(a.count == 1024 and a.size == (64, 64) and a.names is None for a in sets)
    assert {m.backend for m in r.metrics.values() if m.kind == "fid"} == {"pytorch-fid"}
    assert r.late.per_day == 10 and r.late.max_days == 5
    # A PDF report, code as .py files (no notebooks), integrity on each image set.
    assert r.artifacts["report"].kind == "document" and r.artifacts["report"].formats == ["pdf"]
    assert r.artifacts["source"].notebooks == "forbid" and r.artifacts["source"].code == ["*.py"]
    integrity = {m.artifact for m in r.metrics.values() if m.kind == "integrity"}
    assert integrity == {"gan", "diffusion", "finetuned"}


def _errors(text: str) -> str:
    with pytest.raises(RubricError) as info:
        parse_rubric(text, source="bad.yaml")
    return str(info.value)


def test_errors_name_the_yaml_path_and_value():
    msg = _errors(
        "name: x\nartifacts:\n  images:\n    kind: image_set\n    count: -3\n    sise: [1, 2]\n"
        "    names: 'img.png'\n"
    )
    assert "artifacts.images.count" in msg and "-3" in msg
    assert "artifacts.images.sise" in msg and "Extra inputs" in msg
    assert "artifacts.images.names" in msg and "{index" in msg


def test_unknown_references_are_named():
    msg = _errors(
        "name: x\nartifacts:\n  images: {kind: image_set}\nmetrics:\n"
        "  fid: {kind: fid, artifact: imgs, stats: a.npz}\n"
    )
    assert "metrics.fid.artifact" in msg and "imgs" in msg


def test_bands_must_increase_and_due_needs_a_zone():
    msg = _errors(
        "name: x\nartifacts:\n  a: {kind: image_set}\nmetrics:\n  fid: {kind: fid, artifact: a, stats: s.npz}\n"
        "scoring:\n  bands:\n    - {metric: fid, points: [[40, 100], [30, 0]]}\nlate:\n  due: 2026-01-01T00:00:00\n"
    )
    assert "scoring.bands.0.points" in msg and "late.due" in msg and "time zone" in msg


def test_not_yaml_and_not_a_mapping():
    assert "not valid YAML" in _errors("name: [unclosed\n")
    assert "must be a YAML mapping" in _errors("- a\n- b\n")


def test_cli_validate_exit_codes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nartifacts:\n  images: {kind: image_set, count: zero}\n")
    runner = CliRunner()
    ok = runner.invoke(main, ["rubric", "validate", str(ROOT / "rubrics" / "hw3.yaml")])
    assert ok.exit_code == 0 and "ok" in ok.output
    res = runner.invoke(main, ["rubric", "validate", str(bad)])
    assert res.exit_code == 2 and "artifacts.images.count" in res.output and "'zero'" in res.output
    missing = runner.invoke(main, ["rubric", "validate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "not found" in missing.output


CODE_RULES = "name: x\nartifacts:\n  images: {kind: image_set}\n"
DEDUCT = "scoring:\n  deductions:\n    - {code: 'BAD', points: 5}\n"
ZERO_IF = "scoring:\n  zero_if: [zip.junk, BAD]\n"


@pytest.mark.parametrize(
    ("section", "path", "bad", "suggested"),
    [
        (DEDUCT, "scoring.deductions.0.code", "images.cuont", "images.count"),
        (DEDUCT, "scoring.deductions.0.code", "no.such.code", None),
        (ZERO_IF, "scoring.zero_if.1", "submission.missing_artefact", "submission.missing_artifact"),
        (DEDUCT, "scoring.deductions.0.code", "imgaes.*", "images.*"),
        ("severity:\n  BAD: warning\n", "severity.grid.layuot", "grid.layuot", "grid.layout"),
        ("severity:\n  'BAD': info\n", "severity.images.nothing*", "images.nothing*", None),
    ],
)
def test_rules_on_uncatalogued_codes_are_refused(tmp_path, section, path, bad, suggested):
    """A rule naming a code the catalogue lacks would silently never apply: exit 2 with the YAML
    path, the value and the nearest catalogued codes."""
    rubric = tmp_path / "typo.yaml"
    rubric.write_text(CODE_RULES + section.replace("BAD", bad))
    res = CliRunner().invoke(main, ["rubric", "validate", str(rubric)])
    assert res.exit_code == 2, res.output
    assert f"{path}: " in res.output and repr(bad) in res.output
    if suggested:
        assert f"did you mean {suggested}" in res.output
    assert "ok (" not in res.output


def test_catalogued_codes_globs_and_aliases_are_accepted():
    rubric = parse_rubric(
        CODE_RULES + "scoring:\n  deductions:\n    - {code: 'zip.*', points: 1}\n"
        "    - {code: evaluator.count, points: 1}\n  zero_if: ['metric.fid.warning']\n"
        "severity:\n  'images.*': warning\n  integrity.shared_set: error\n"
    )
    # A renamed code is kept under its current name, the one findings carry.
    assert rubric.scoring.zero_if == ["metric.warning"]
    assert [d.code for d in rubric.scoring.deductions] == ["zip.*", "evaluator.count"]
    assert set(rubric.severity) == {"images.*", "integrity.shared_set"}


def test_override_clear_refuses_an_uncatalogued_code(tmp_path):
    res = CliRunner().invoke(
        main, ["override", str(tmp_path), "A1", "--clear", "zip.jnuk", "--reason", "allowed"]
    )
    assert res.exit_code == 2 and "--clear zip.jnuk" in res.output and "did you mean zip.junk" in res.output


def test_each_kind_states_its_configured_rules():
    from grader.artifacts import describe

    hw3, hw9, lab6 = (load_rubric(ROOT / "rubrics" / f"{n}.yaml") for n in ("hw3", "hw9", "lab6"))
    assert describe(hw3.artifacts["process"]).startswith(
        "one PNG image; 8 rows x 8 snapshots of 28x28 pixels; 224x224 with padding 0 or 242x242 with "
        "padding 2; each row from pure noise (left) to the final image (right); the final images are digits"
    )
    assert "no weights or data (*.pt, *.pth" in describe(hw3.artifacts["source"])
    gan = describe(hw9.artifacts["gan"])
    assert gan.startswith("1,024 images (any names); each PNG or JPEG, 64x64 pixels, mode RGB; in a zip or folder")
    assert "subfolders" not in gan and "named like gan, gan.zip" in gan
    hw9_code = describe(hw9.artifacts["source"])
    assert "no notebooks (.ipynb)" in hw9_code and "readme" not in hw9_code and "optional" not in hw9_code
    hw3_code = describe(hw3.artifacts["source"])
    assert "imports only from JAX, Keras" in hw3_code and "no pretrained weights" in hw3_code
    assert describe(hw9.artifacts["report"]).startswith("one PDF that opens")
    assert describe(lab6.artifacts["test_images"]).startswith("32 images named 0.png ... 31.png")
    assert describe(lab6.artifacts["test_grid"]).startswith("one PNG image; at least 256x128 pixels")
    assert "1 row x 8 snapshots of 64x64 pixels; 512x64 with padding 0" in describe(lab6.artifacts["process"])

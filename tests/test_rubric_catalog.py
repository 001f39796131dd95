"""Shipped rubrics by name from any folder; a path wins; TA files beside a path, or by --ta-dir."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.errors import RubricError
from grader.rubric import load_rubric
from grader.rubric_catalog import TA_DIR_ENV, find_rubric, shipped_rubrics

ROOT = Path(__file__).resolve().parents[1]


def grader(*args, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADER_OFFLINE": "1"}
    env.pop(TA_DIR_ENV, None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_every_course_rubric_is_shipped():
    assert set(shipped_rubrics()) == {p.stem for p in (ROOT / "rubrics").glob("*.yaml")} >= {"hw3", "hw9", "lab6"}


def test_rubric_list_outside_the_repository(tmp_path):
    proc = grader("rubric", "list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("hw3", "hw9", "lab6"):
        assert any(line.startswith(name + " ") for line in proc.stdout.splitlines()), proc.stdout


def test_a_path_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "rubrics" / "hw3.yaml").read_text().replace("name: HW3 Diffusion generative model",
                                                              "name: my own hw3")
    (tmp_path / "hw3").write_text(text)
    assert load_rubric("hw3").name == "my own hw3"
    (tmp_path / "hw3").unlink()
    assert load_rubric("hw3").name == "HW3 Diffusion generative model"
    assert load_rubric("hw3.yaml").shipped_name == "hw3"


def test_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RubricError, match=r"rubric not found: hw10 .*hw3, hw9, lab6"):
        find_rubric("hw10")
    with pytest.raises(RubricError, match="rubric not found: sub/hw3.yaml"):
        find_rubric("sub/hw3.yaml")  # a path that is not there is not a name


def test_ta_files_beside_a_path_and_in_the_ta_dir_of_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(TA_DIR_ENV, raising=False)
    by_path = load_rubric(ROOT / "rubrics" / "hw3.yaml")
    assert by_path.resolve("mnist.npz") == ROOT / "rubrics" / "mnist.npz"
    assert load_rubric("hw3").resolve("mnist.npz") == tmp_path / "mnist.npz"
    assert load_rubric("hw3", ta_dir=tmp_path / "ta").resolve("mnist.npz") == tmp_path / "ta" / "mnist.npz"
    monkeypatch.setenv(TA_DIR_ENV, str(tmp_path / "env"))
    assert load_rubric("hw3").resolve("mnist.npz") == tmp_path / "env" / "mnist.npz"


def _small_images_zip(path: Path, n: int = 5) -> Path:
    from grader.examples import drawn_digits, png_bytes

    digits = drawn_digits(n)
    with zipfile.ZipFile(path, "w") as zf:
        for i, d in enumerate(digits, start=1):
            zf.writestr(f"{i:05d}.png", png_bytes(d))
    return path


def test_check_with_a_named_rubric_outside_the_repository(tmp_path):
    zip_path = _small_images_zip(tmp_path / "A0123456.zip")
    proc = grader("check", zip_path, "--rubric", "hw3", cwd=tmp_path,
                  env_extra={"GRADER_INCEPTION_WEIGHTS": str(tmp_path / "none.pth")})
    assert proc.returncode == 1, proc.stderr  # the zip has 5 images, not 10,000: a problem, not an error
    assert "found 5" in proc.stdout or "5 images" in proc.stdout, proc.stdout
    # The FID says why it was not computed (the TA's statistics, by name) and how to give them.
    assert "the TA's mnist.npz is not on this machine" in proc.stdout, proc.stdout
    assert "--stats fid=PATH" in proc.stdout, proc.stdout


def test_run_with_a_named_rubric_names_the_missing_ta_file_and_where(tmp_path):
    (tmp_path / "subs").mkdir()
    _small_images_zip(tmp_path / "subs" / "A0123456.zip")
    proc = grader("run", "subs", "--rubric", "hw3", "--ta-dir", tmp_path / "ta", "--out", "res", cwd=tmp_path)
    assert proc.returncode == 2
    assert str(tmp_path / "ta" / "mnist.npz") in proc.stderr, proc.stderr
    assert "shipped rubric 'hw3' are looked for in" in proc.stderr and "--ta-dir" in proc.stderr


def test_example_class_outside_the_repository(tmp_path):
    proc = grader("example", "class", "out", "--images", "12", cwd=tmp_path,
                  env_extra={"GRADER_MNIST_DIR": ""})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "rubric.yaml").is_file()
    assert load_rubric(tmp_path / "out" / "rubric.yaml").artifacts["images"].count == 12


def test_the_wheel_ships_the_rubrics(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("grader-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"grader/rubrics/{n}.yaml" for n in ("hw3", "hw9", "lab6")} <= set(names)

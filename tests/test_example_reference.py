"""`grader example class --reference-samples`: the perfect student hands in what a reference
DDPM sampled (a tiny one, trained for seconds), process grid included; without the option the
class is what it always was."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from reference.baseline import write_hw3_submission
from reference.ddpm import train_ddpm

IMAGES = 12


@pytest.fixture(scope="module")
def reference_folder(mnist_dir, tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("reference")
    train_ddpm(mnist_dir, root / "ckpt", steps=4, width=8, blocks=1, batch_size=16, limit=256,
               save_every=4, preset="cpu", device="cpu", progress=False)
    write_hw3_submission(root / "ckpt", root / "hw3", "0123456", num=IMAGES + 3, seed=0,
                         device="cpu", progress=False)
    return root / "hw3"


def grader(*args, env=None, check=True):
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], capture_output=True,
                          text=True, check=check, env=env)


def _zip_digits(path):
    with zipfile.ZipFile(path) as archive:
        return [np.asarray(Image.open(io.BytesIO(archive.read(n))).convert("L"))
                for n in sorted(archive.namelist())]


def test_perfect_student_hands_in_reference_samples(reference_folder, mnist_dir, tmp_path):
    plain, modelled = tmp_path / "plain", tmp_path / "modelled"
    grader("example", "class", plain, "--images", IMAGES, "--mnist", mnist_dir)
    grader("example", "class", modelled, "--images", IMAGES, "--mnist", mnist_dir,
           "--reference-samples", reference_folder)

    perfect = modelled / "submissions" / "A0000001"
    digits = _zip_digits(perfect / "A0000001.zip")
    samples = sorted((reference_folder / "images").glob("*.png"))[:IMAGES]
    assert len(digits) == IMAGES
    for digit, sample in zip(digits, samples, strict=True):
        assert np.array_equal(digit, np.asarray(Image.open(sample).convert("L")))
    grid = (reference_folder / "0123456_process.png").read_bytes()
    assert (perfect / "A0000001_process.png").read_bytes() == grid
    assert "reference DDPM samples" in (modelled / "README.md").read_text()

    # the rest of the class, and the whole class without the option, are unchanged
    for sid in ("A0000002", "A0000005", "A0000007"):
        for path in sorted((plain / "submissions" / sid).iterdir()):
            assert path.read_bytes() == (modelled / "submissions" / sid / path.name).read_bytes()
    assert _zip_digits(plain / "submissions" / "A0000001" / "A0000001.zip")[0].shape == (28, 28)
    assert (plain / "submissions" / "A0000001" / "A0000001_process.png").read_bytes() != grid


def test_too_few_reference_samples_is_a_clear_error(reference_folder, tmp_path):
    result = grader("example", "class", tmp_path / "out", "--images", IMAGES + 10,
                    "--reference-samples", reference_folder, check=False)
    assert result.returncode != 0
    assert f"{IMAGES + 3} reference samples; the example needs {IMAGES + 10}" in result.stderr

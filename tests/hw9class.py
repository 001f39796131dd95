"""HW9 hand-ins written from code: three image sets with free file names, a loss plot, the code.

Faces are real CelebA crops (64x64) given by the caller; what differs between students is the
layout (folders or zips, file names), what is missing, and when it was handed in.
"""

from __future__ import annotations

import csv
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFilter

DUE = datetime.fromisoformat("2026-12-18T23:59:00+08:00")


def blurred(images: np.ndarray, radius: float) -> np.ndarray:
    """A GAN's soft faces: each image Gaussian-blurred."""
    return np.stack(
        [np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(radius))) for a in images]
    )


def write_set(target: Path, images: np.ndarray, name: str, *, as_zip: bool) -> Path:
    """images as `name.format(i)` PNGs, in a folder or in a zip named target(.zip)."""
    if as_zip:
        target = target.with_suffix(".zip")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w") as zf:
            for i, a in enumerate(images):
                path = target.parent / f".{target.stem}_{i}.png"
                Image.fromarray(a).save(path)
                zf.write(path, name.format(i))
                path.unlink()
        return target
    target.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images):
        Image.fromarray(a).save(target / name.format(i))
    return target


def write_loss_plot(path: Path) -> Path:
    """Generator and discriminator losses in one figure (400x300)."""
    im = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(im)
    steps = np.arange(100)
    g = 2.5 - 1.2 * np.log1p(steps / 10) / np.log(11) + 0.1 * np.sin(steps)
    d = 0.6 + 0.4 * np.exp(-steps / 30)
    for values, colour in ((g, "red"), (d, "blue")):
        draw.line(
            [(30 + 3.5 * s, 280 - 90 * v) for s, v in zip(steps, values)], fill=colour, width=2
        )
    draw.text((300, 20), "G loss", fill="red")
    draw.text((300, 35), "D loss", fill="blue")
    im.save(path)
    return path


def write_code_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("README.md", "# HW9\nTrain the DCGAN: python dcgan.py\n")
        zf.writestr("dcgan.py", "import torch.nn as nn\nloss = nn.BCELoss()\n")
    return path


def write_hw9_submission(
    folder: Path, sets: dict[str, np.ndarray], *, zips: bool = False, loss_plot: bool = True
) -> Path:
    """One student's HW9 folder: gan, diffusion and finetuned sets named freely."""
    names = {
        "gan": "fake_image_{:02d}.png",
        "diffusion": "generated_image_{:04d}.png",
        "finetuned": "ft_{:03d}.png",
    }
    for key, images in sets.items():
        write_set(folder / key, images, names[key], as_zip=zips)
    if loss_plot:
        write_loss_plot(folder / "loss_curves.png")
    write_code_zip(folder / "code.zip")
    return folder


def write_times(path: Path, late_days: dict[str, float]) -> Path:
    """student_id,submitted_at: `late_days[id]` days after the due time (negative: early)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "submitted_at"])
        for sid, days in late_days.items():
            w.writerow([sid, (DUE + timedelta(days=days)).isoformat()])
    return path


def write_test_rubric(
    base: Path, out: Path, *, count: int, stats: Path, handed_in: Path, band: list[list[float]]
) -> Path:
    """rubrics/hw9.yaml with small image counts, these statistics and this progress-report list."""
    rubric = yaml.safe_load(base.read_text())
    for key in ("gan", "diffusion", "finetuned"):
        rubric["artifacts"][key]["count"] = count
    for metric in rubric["metrics"].values():
        metric["stats" if "stats" in metric else "reference"] = str(stats)
    for b in rubric["scoring"]["bands"]:
        b["points"] = band
    rubric["requires"][0]["handed_in"] = str(handed_in)
    rubric["late"]["due"] = DUE.isoformat()
    out.write_text(yaml.safe_dump(rubric, sort_keys=False))
    return out

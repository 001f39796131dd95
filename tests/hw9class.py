"""HW9 hand-ins written from code: three image sets with free file names, a loss plot, the code
(a zip of .py files, or of a notebook), and the PDF report with the 4x4 grids.

Faces are real CelebA crops (64x64) given by the caller; what differs between students is the
layout (folders or zips, file names), what is missing, and when it was handed in.
"""

from __future__ import annotations

import csv
import json
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


DCGAN_PY = "import torch.nn as nn\nloss = nn.BCELoss()\n"


def write_code_zip(path: Path, *, notebook: bool = False) -> Path:
    """The code as .py files, or (`notebook`) as the notebook the handout says not to hand in."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("README.md", "# HW9\nTrain the DCGAN: python dcgan.py\n")
        if notebook:
            cell = {"cell_type": "code", "source": DCGAN_PY.splitlines(keepends=True), "metadata": {},
                    "outputs": [], "execution_count": 1}
            zf.writestr("hw9.ipynb", json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4,
                                                  "nbformat_minor": 5}))
        else:
            zf.writestr("dcgan.py", DCGAN_PY)
    return path


def grid_4x4(images: np.ndarray) -> Image.Image:
    """The report's 4x4 grid of the first 16 images (fewer are tiled as they come)."""
    size = images.shape[1]
    grid = Image.new("RGB", (4 * size, 4 * size), "white")
    for i, a in enumerate(images[:16]):
        grid.paste(Image.fromarray(a), ((i % 4) * size, (i // 4) * size))
    return grid


def write_report(path: Path, sets: dict[str, np.ndarray]) -> Path:
    """The report as a real PDF (Pillow writes it): one page per set with its 4x4 grid."""
    pages = [grid_4x4(images).resize((512, 512)) for images in sets.values()]
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=72.0)
    return path


def write_hw9_submission(
    folder: Path,
    sets: dict[str, np.ndarray],
    *,
    zips: bool = False,
    loss_plot: bool = True,
    report: bool = True,
    notebook: bool = False,
) -> Path:
    """One student's HW9 folder: gan, diffusion and finetuned sets named freely, the loss plot,
    the code zip (a notebook inside with `notebook`) and the PDF report (unless not `report`)."""
    names = {
        "gan": "fake_image_{:02d}.png",
        "diffusion": "generated_image_{:04d}.png",
        "finetuned": "ft_{:03d}.png",
    }
    for key, images in sets.items():
        write_set(folder / key, images, names[key], as_zip=zips)
    if loss_plot:
        write_loss_plot(folder / "loss_curves.png")
    write_code_zip(folder / "code.zip", notebook=notebook)
    if report:
        write_report(folder / "hw9_report.pdf", sets)
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
    base: Path,
    out: Path,
    *,
    count: int,
    stats: Path,
    handed_in: Path,
    band: list[list[float]],
    training: Path,
) -> Path:
    """rubrics/hw9.yaml with small image counts, these statistics, this progress-report list
    and these training faces (a folder or zip) for the integrity metrics."""
    rubric = yaml.safe_load(base.read_text())
    for key in ("gan", "diffusion", "finetuned"):
        rubric["artifacts"][key]["count"] = count
    for metric in rubric["metrics"].values():
        if metric["kind"] == "integrity":
            metric["training"] = str(training)
        else:
            metric["stats" if "stats" in metric else "reference"] = str(stats)
    for b in rubric["scoring"]["bands"]:
        b["points"] = band
    rubric["requires"][0]["handed_in"] = str(handed_in)
    rubric["late"]["due"] = DUE.isoformat()
    out.write_text(yaml.safe_dump(rubric, sort_keys=False))
    return out

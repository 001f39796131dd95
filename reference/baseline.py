"""A complete HW3 submission made by the reference DDPM: what a good student uploads.

Files (keys match the artifact names of rubrics/hw3.yaml):
  images   <id>.zip          10,000 RGB 28x28 PNGs 00001.png..., flat, no junk entries
  process  <id>_process.png  the 8x8 diffusion process grid (242x242, make_grid padding 2)
  source   <id>_source.zip   this reference code plus a readme; no data, no weights
The PNGs also stay in ``images_dir`` (out_dir/images) for FID tools that read a folder.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from grader.examples import write_zip_entry
from reference.ddpm import sample_ddpm

REFERENCE_DIR = Path(__file__).resolve().parent
GRADER_DIR = REFERENCE_DIR.parent / "grader"
# Modules of the grader package the reference code imports (MNIST/zip readers, errors).
GRADER_MODULES = ("__init__.py", "datasets.py", "errors.py")

SOURCE_README = """\
# Reference DDPM for HW3 (MNIST, 28x28)

## Environment

    python -m venv .venv && . .venv/bin/activate
    pip install torch torchvision numpy pillow click tqdm matplotlib

## Run (from this folder; MNIST IDX files in a local folder, nothing is downloaded)

    python -m reference ddpm train --data MNIST_DIR --out checkpoints/ddpm --preset gpu \\
        --device cuda        # or --preset cpu: a smaller U-Net that trains in hours on a CPU
    python -m reference ddpm sample --checkpoint checkpoints/ddpm --output images --num 10000 \\
        --seed 0 --grid process.png

`sample` writes 00001.png ... 10000.png (RGB, 28x28; 1,000 ancestral steps for a `gpu`
checkpoint, 50 DDIM steps for a `cpu` one) and the 8x8 process grid of the 1,000-step chain
(rows: 8 samples; columns: x_t at t = 1000, 858, 716, 574, 432, 290, 148, 0).
"""


def zip_images(images_dir: Path, target: Path) -> Path:
    """Flat zip of the folder's PNGs in name order (no folder entries, no junk)."""
    with zipfile.ZipFile(target, "w") as archive:
        for png in sorted(images_dir.glob("*.png")):
            write_zip_entry(archive, png.name, png.read_bytes())
    return target


def zip_source(target: Path) -> Path:
    """The reference package's Python code and readme, plus the grader modules it imports."""
    with zipfile.ZipFile(target, "w") as archive:
        write_zip_entry(archive, "README.md", SOURCE_README.encode())
        for path in sorted(REFERENCE_DIR.glob("*.py")):
            write_zip_entry(archive, f"reference/{path.name}", path.read_bytes())
        for name in GRADER_MODULES:
            write_zip_entry(archive, f"grader/{name}", (GRADER_DIR / name).read_bytes())
    return target


def write_hw3_submission(
    checkpoint: Path | str,
    out_dir: Path | str,
    student_id: str,
    num: int = 10000,
    seed: int = 0,
    *,
    sampler: str | None = None,
    ddim_steps: int | None = None,
    eta: float | None = None,
    preset: str | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Path]:
    """Sample ``num`` images and the process grid from a DDPM checkpoint, write the three
    HW3 files into ``out_dir``; returns {"images", "process", "source", "images_dir"}.
    The sampler settings are those of ``reference.ddpm.sample_ddpm`` (by default the
    checkpoint's preset's); the process grid always shows the 1,000 ancestral steps."""
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    if images_dir.exists():
        for stale in images_dir.glob("*.png"):
            stale.unlink()
    process = out_dir / f"{student_id}_process.png"
    sample_ddpm(
        checkpoint, images_dir, num, seed, grid=process, sampler=sampler, ddim_steps=ddim_steps,
        eta=eta, preset=preset, device=device, progress=progress,
    )
    return {
        "images": zip_images(images_dir, out_dir / f"{student_id}.zip"),
        "process": process,
        "source": zip_source(out_dir / f"{student_id}_source.zip"),
        "images_dir": images_dir,
    }

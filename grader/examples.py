"""Example HW3 submissions written from code: no binary fixtures anywhere.

Digits come from real MNIST when a folder of IDX files is given (the test digits, so the
example's FID against MNIST-train statistics is realistic); otherwise they are drawn with
Pillow's built-in font, which keeps the example runnable on a machine without the data. The
training digits the integrity metric compares with are written beside the example's rubric
the same way: the first MNIST training digits. Drawn digits are near-copies of one another
whatever their seed, so without MNIST the example's rubric has no integrity metric.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from grader.datasets import load_mnist
from grader.errors import GraderError

ZIP_TIME = (2026, 1, 1, 0, 0, 0)  # fixed entry times: the same example gives the same bytes


def drawn_digits(n: int, seed: int = 0) -> np.ndarray:
    """n 28x28 uint8 digits drawn with Pillow's font, randomly shifted and rotated."""
    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=22)
    out = np.empty((n, 28, 28), np.uint8)
    for i in range(n):
        im = Image.new("L", (28, 28), 0)
        ImageDraw.Draw(im).text((14 + rng.integers(-2, 3), 14 + rng.integers(-2, 3)), str(i % 10),
                                fill=255, font=font, anchor="mm", stroke_width=int(rng.integers(0, 2)), stroke_fill=255)
        out[i] = np.asarray(im.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR))
    return out


def example_digits(n: int, mnist_dir: Path | None, seed: int = 0) -> np.ndarray:
    if mnist_dir is not None:
        images, _ = load_mnist(mnist_dir, "test")
        idx = np.random.default_rng(seed).permutation(len(images))
        return images[np.resize(idx, n)]
    return drawn_digits(n, seed)


# Training digits written beside the example rubric for its integrity metric: a subset of
# MNIST's 60,000 keeps the example quick (the students' digits are MNIST test digits anyway).
EXAMPLE_TRAINING_DIGITS = 10000
MNIST_TEST_DIGITS = 10000


def write_idx(path: Path, array: np.ndarray) -> Path:
    """A uint8 IDX file as MNIST ships them, gzipped (fixed header time: same array, same bytes)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(header + array.tobytes())
    return path


def write_training_digits(folder: Path, mnist_dir: Path, n: int = EXAMPLE_TRAINING_DIGITS) -> Path:
    """An MNIST training folder (train-images/labels IDX) of the first `n` training digits."""
    images, labels = load_mnist(mnist_dir, "train")
    write_idx(folder / "train-images-idx3-ubyte.gz", images[:n])
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels[:n])
    return folder


def png_bytes(array: np.ndarray, mode: str = "RGB") -> bytes:
    im = Image.fromarray(array)
    im = im.convert(mode) if im.mode != mode else im
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write_zip_entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """One deflated entry with a fixed time and mode: the same content gives the same zip bytes."""
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def write_images_zip(path: Path, digits: np.ndarray, *, folder: str = "", junk: bool = False,
                     corrupt: int | None = None, drop: int | None = None) -> Path:
    """The HW3 images zip: 00001.png ... as 28x28 RGB, flat unless `folder` is given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for i, digit in enumerate(digits, start=1):
            if drop is not None and i == drop:
                continue
            data = png_bytes(np.stack([digit] * 3, axis=-1))
            if corrupt is not None and i == corrupt:
                data = data[: len(data) // 2]  # a truncated PNG, as from an interrupted copy
            write_zip_entry(zf, f"{folder}{i:05d}.png", data)
        if junk:
            write_zip_entry(zf, ".DS_Store", b"\0\0\0\1Bud1" + bytes(64))
            write_zip_entry(zf, "__MACOSX/._00001.png", b"\0\5\26\7" + bytes(60))
    return path


SAMPLER_SOURCE = '''"""Sample digits (example submission): image i depends only on (seed, i)."""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def digit(seed, index):
    rng = np.random.default_rng([seed, index])
    small = Image.new("L", (14, 14), 0)
    ImageDraw.Draw(small).text((4, 1), str(index % 10), fill=255, font=ImageFont.load_default())
    im = small.resize((28, 28), Image.BILINEAR).rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    return im.convert("RGB")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    parser.add_argument("--num", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.output, exist_ok=True)
    for i in range(1, args.num + 1):
        digit(args.seed, i).save(os.path.join(args.output, f"{i:05d}.png"))
    print(f"wrote {args.num} images to {args.output}")


if __name__ == "__main__":
    main()
'''

README_TEXT = """# HW3 diffusion model

Environment: `python -m venv .venv && . .venv/bin/activate && pip install torch torchvision tqdm`
Train: `python train.py`   Sample: `python sample.py --output images --num 10000`
"""


def write_source_zip(path: Path, *, with_weights: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        write_zip_entry(zf, "README.md", README_TEXT.encode())
        write_zip_entry(zf, "sample.py", SAMPLER_SOURCE.encode())
        write_zip_entry(zf, "train.py", b"# training loop (omitted in the example)\n")
        if with_weights:
            write_zip_entry(zf, "model.pth", bytes(4096))
    return path


def write_process_grid(path: Path, digits: np.ndarray, *, padding: int = 2, seed: int = 0) -> Path:
    from grader.grid_synth import make_forward_diffusion_grid

    path.parent.mkdir(parents=True, exist_ok=True)
    make_forward_diffusion_grid(digits[:8], padding=padding, seed=seed).save(path)
    return path


def write_hw3_submission(out_dir: Path, student_id: str, digits: np.ndarray, grid_digits: np.ndarray,
                         **variant) -> list[Path]:
    """A complete HW3 submission in out_dir; `variant` breaks it on purpose (see VARIANTS)."""
    paths = []
    images = digits
    if variant.get("weak"):
        blurred = [np.asarray(Image.fromarray(d).filter(ImageFilter.GaussianBlur(1.6))) for d in digits]
        noise = np.random.default_rng(1).normal(0, 40, digits.shape)
        images = np.clip(np.stack(blurred) + noise, 0, 255).astype(np.uint8)
    # Small example sets still lose (or corrupt) an image that exists.
    drop = min(variant["drop"], len(images)) if variant.get("drop") else None
    corrupt = min(variant["corrupt"], len(images)) if variant.get("corrupt") else None
    paths.append(write_images_zip(out_dir / f"{student_id}.zip", images, folder=variant.get("folder", ""),
                                  junk=variant.get("junk", False), corrupt=corrupt, drop=drop))
    paths.append(write_source_zip(out_dir / f"{student_id}_code.zip", with_weights=variant.get("weights", False)))
    if not variant.get("no_grid"):
        paths.append(write_process_grid(out_dir / f"{student_id}_process.png", grid_digits))
    return paths


# Ways to break a submission on purpose: name -> keyword arguments of write_hw3_submission.
VARIANTS = {
    "weak": {"weak": True},
    "count": {"drop": 17},
    "junk": {"junk": True},
    "nested": {"folder": "images/"},
    "corrupt": {"corrupt": 5},
    "no-grid": {"no_grid": True},
    "weights": {"weights": True},
}


@dataclass(frozen=True)
class ExampleStudent:
    student_id: str
    story: str
    variant: dict
    days_late: int = 0


CLASS = [
    ExampleStudent("A0000001", "perfect submission", {}),
    ExampleStudent("A0000002", "blurry, noisy digits: a higher FID", VARIANTS["weak"]),
    ExampleStudent("A0000003", "one image missing (wrong count, a gap in the names)", VARIANTS["count"]),
    ExampleStudent("A0000004", "macOS junk (__MACOSX/, .DS_Store) in the images zip", VARIANTS["junk"]),
    ExampleStudent("A0000005", "images inside a folder in the zip", VARIANTS["nested"]),
    ExampleStudent("A0000006", "one truncated PNG", VARIANTS["corrupt"]),
    ExampleStudent("A0000007", "perfect, but two days late", {}, days_late=2),
    ExampleStudent("A0000008", "the diffusion-process image is missing", VARIANTS["no-grid"]),
]

EXAMPLE_DUE = datetime.fromisoformat("2026-11-30T23:59:00+08:00")

REFERENCE_SAMPLES_ENV = "GRADER_REFERENCE_SAMPLES"


def reference_samples(folder: Path, n: int) -> tuple[np.ndarray, Path | None]:
    """The first n digits (uint8 [n, 28, 28]) a reference DDPM sampled, and its process grid.

    ``folder`` is what ``python -m reference ddpm hw3-submission --out FOLDER`` writes (PNGs
    in images/, the grid as *_process.png), or a folder of PNGs 00001.png ... (no grid then).
    """
    folder = Path(folder)
    images = folder / "images" if (folder / "images").is_dir() else folder
    pngs = sorted(images.glob("*.png"))
    pngs = [p for p in pngs if not p.name.endswith("_process.png")]
    if len(pngs) < n:
        raise GraderError(f"{images}: {len(pngs)} reference samples; the example needs {n}")
    digits = np.stack([np.asarray(Image.open(p).convert("L")) for p in pngs[:n]])
    if digits.shape[1:] != (28, 28):
        raise GraderError(f"{images}: reference samples are {digits.shape[2]}x{digits.shape[1]}, not 28x28")
    grids = sorted(folder.glob("*_process.png"))
    return digits, grids[0] if grids else None


def write_example_rubric(base_rubric: Path, out: Path, images: int, *, training: bool = True) -> Path:
    """The course rubric, scaled to `images` per student for a quick demo, stats and training
    digits beside it (`training` False: no training digits, so no integrity metric)."""
    data = yaml.safe_load(base_rubric.read_text(encoding="utf-8"))
    data["name"] = f"{data['name']} (example class, {images:,} images per student)"
    data["artifacts"]["images"]["count"] = images
    metrics = data.get("metrics", {})
    for name, metric in list(metrics.items()):
        if "stats" in metric:  # metrics that read reference statistics: the ones built beside it
            metric["stats"] = "mnist.npz"
        if "training" in metric:  # the integrity metric: the training digits written beside it
            if training:
                metric["training"] = "mnist"
            else:
                del metrics[name]
    data.setdefault("late", {})["due"] = EXAMPLE_DUE.isoformat()
    out.write_text(
        f"# Written by `grader example class` from {base_rubric.name}; edit freely.\n"
        + yaml.safe_dump(data, sort_keys=False),
        encoding="utf-8",
    )
    return out


def write_example_class(out_dir: Path, *, images: int, mnist_dir: Path | None, base_rubric: Path,
                        reference: Path | None = None) -> dict[str, Path]:
    """A small class covering the common problems, a times CSV and a rubric for it.

    With ``reference`` (see reference_samples), the perfect student hands in a reference
    DDPM's samples and process grid instead of real digits: a model's FID, not the data's."""
    subs = out_dir / "submissions"
    # Each student has digits of their own while the 10,000 MNIST test digits last, so that the
    # integrity metric's class-wide screen finds no shared sets; otherwise rolled copies of one set.
    each = images + 8
    distinct = mnist_dir is not None and each * len(CLASS) <= MNIST_TEST_DIGITS
    digits = example_digits(each * len(CLASS) if distinct else images + 16, mnist_dir)
    model_digits, model_grid = reference_samples(reference, images) if reference else (None, None)
    lines = ["student_id,submitted_at"]
    stories = []
    for i, student in enumerate(CLASS):
        own = digits[i * each : (i + 1) * each] if distinct else np.roll(digits, -i * 7, axis=0)
        modelled = i == 0 and model_digits is not None
        folder = subs / student.student_id
        write_hw3_submission(folder, student.student_id, model_digits if modelled else own[:images],
                             own[images : images + 8], **student.variant)
        if modelled and model_grid is not None:  # the sampler's own process grid
            (folder / f"{student.student_id}_process.png").write_bytes(model_grid.read_bytes())
        when = EXAMPLE_DUE - timedelta(hours=5) + timedelta(days=student.days_late)
        lines.append(f"{student.student_id},{when.isoformat()}")
        stories.append(f"- {student.student_id}: {student.story}"
                       + (" (reference DDPM samples)" if modelled else ""))
    (out_dir / "times.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rubric = write_example_rubric(base_rubric, out_dir / "rubric.yaml", images, training=mnist_dir is not None)
    if mnist_dir is not None:
        write_training_digits(out_dir / "mnist", mnist_dir)
    stories = "\n".join(stories)
    (out_dir / "README.md").write_text(f"# Example class\n\n{stories}\n", encoding="utf-8")
    return {"submissions": subs, "times": out_dir / "times.csv", "rubric": rubric}

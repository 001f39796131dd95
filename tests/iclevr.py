"""A small i-CLEVR-like world for Lab6 tests: 1-3 coloured objects on a grey 64x64 background.

8 colours x 3 shapes = 24 classes in the course's ``objects.json`` order (shape-major:
``gray cube`` 0 ... ``yellow cube`` 7, ``gray sphere`` 8 ..., ``yellow cylinder`` 23). Scenes
are drawn with Pillow; label files are lists of lists of object names, as the course's
``test.json`` and ``new_test.json``. Everything is a function of a seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# CLEVR's own colour values.
COLOURS = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SHAPES = ("cube", "sphere", "cylinder")
OBJECTS = {
    f"{c} {s}": i * len(COLOURS) + j for i, s in enumerate(SHAPES) for j, c in enumerate(COLOURS)
}
BACKGROUND = (185, 185, 185)
SIZE = 64
RADIUS = (9.0, 13.0)  # object half-widths in pixels


def label_sets(n: int, seed: int) -> list[list[str]]:
    """n scenes, each 1-3 distinct object names."""
    rng = np.random.default_rng(seed)
    names = list(OBJECTS)
    return [
        [names[i] for i in rng.choice(24, size=int(rng.integers(1, 4)), replace=False)]
        for _ in range(n)
    ]


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(v * factor)))) for v in rgb)


def _draw(draw: ImageDraw.ImageDraw, name: str, cx: float, cy: float, r: float) -> None:
    colour, shape = name.split(" ")
    rgb = COLOURS[colour]
    if shape == "cube":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=rgb, outline=_shade(rgb, 0.6))
        draw.polygon(
            [
                (cx - r, cy - r),
                (cx - r + r / 2, cy - r - r / 2),
                (cx + r + r / 2, cy - r - r / 2),
                (cx + r, cy - r),
            ],
            fill=_shade(rgb, 1.3),
        )
    elif shape == "sphere":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb)
        draw.ellipse([cx - r / 2, cy - r / 2, cx, cy], fill=_shade(rgb, 1.35))
    else:  # cylinder: narrower and taller than a cube, a body between two ellipses, the top one lit
        w, h = 0.7 * r, r / 3
        draw.ellipse([cx - w, cy + r - h, cx + w, cy + r + h], fill=_shade(rgb, 0.8))
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=_shade(rgb, 0.8))
        draw.ellipse([cx - w, cy - r - h, cx + w, cy - r + h], fill=_shade(rgb, 1.3))


def render(objects: list[str], seed: int) -> np.ndarray:
    """uint8 [64, 64, 3]: the objects at random, non-overlapping places and sizes."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    draw = ImageDraw.Draw(image)
    placed: list[tuple[float, float, float]] = []
    for name in objects:
        for _ in range(200):
            r = float(rng.uniform(*RADIUS))
            cx, cy = (float(v) for v in rng.uniform(r + 2, SIZE - r - 6, size=2) + (2, 6))
            if all((cx - x) ** 2 + (cy - y) ** 2 > (r + q + 3) ** 2 for x, y, q in placed):
                break
        placed.append((cx, cy, r))
        _draw(draw, name, cx, cy, r)
    return np.asarray(image)


def render_all(sets: list[list[str]], seed: int) -> np.ndarray:
    return np.stack([render(objs, seed * 100_003 + i) for i, objs in enumerate(sets)])


def onehot(sets: list[list[str]]) -> np.ndarray:
    out = np.zeros((len(sets), len(OBJECTS)), np.float32)
    for i, objs in enumerate(sets):
        out[i, [OBJECTS[o] for o in objs]] = 1
    return out


def wrong_objects(sets: list[list[str]], fraction: float, seed: int) -> list[list[str]]:
    """The scenes with about `fraction` of their objects swapped for objects not in the scene."""
    rng = np.random.default_rng(seed)
    names = list(OBJECTS)
    out = []
    for objs in sets:
        new = list(objs)
        for i in range(len(new)):
            if rng.random() < fraction:
                new[i] = str(rng.choice([n for n in names if n not in new and n not in objs]))
        out.append(new)
    return out


def write_label_files(folder: Path, *, n: int = 32, seed: int = 0) -> dict[str, list[list[str]]]:
    """objects.json, test.json and new_test.json as the course hands them out."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "objects.json").write_text(json.dumps(OBJECTS))
    files = {"test": label_sets(n, seed), "new_test": label_sets(n, seed + 1)}
    for stem, sets in files.items():
        (folder / f"{stem}.json").write_text(json.dumps(sets))
    return files


def write_pngs(folder: Path, images: np.ndarray, *, names: list[str] | None = None) -> Path:
    """0.png ... N-1.png (or the given names), RGB, in folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / (names[i] if names else f"{i}.png"))
    return folder


def noise_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, SIZE, SIZE, 3), dtype=np.uint8)


def course_network():
    """The course's evaluator network: resnet18 without weights, fc -> Linear(512, 24) + Sigmoid."""
    import torch
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    net.fc = torch.nn.Sequential(torch.nn.Linear(512, len(OBJECTS)), torch.nn.Sigmoid())
    return net


def to_input(images: np.ndarray):
    """uint8 [N, 64, 64, 3] -> ToTensor + Normalize((0.5,)*3, (0.5,)*3), float32 [N, 3, 64, 64]."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255)
    return (x - 0.5) / 0.5


def train_evaluator(
    path: Path,
    *,
    scenes: int = 3000,
    epochs: int = 8,
    seed: int = 0,
    batch: int = 64,
    lr: float = 2e-3,
) -> Path:
    """Train the course's evaluator network on rendered scenes; save {'model': state_dict}."""
    import torch

    torch.manual_seed(seed)
    sets = label_sets(scenes, seed + 1000)
    x, y = to_input(render_all(sets, seed + 1000)), torch.from_numpy(onehot(sets))
    net = course_network()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    # Cosine decay to zero: 8 epochs reach 0.98 held-out top-k accuracy (4 at a constant rate: 0.82).
    steps = epochs * ((scenes + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    loss_fn = torch.nn.BCELoss()
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(scenes, generator=gen).split(batch):
            opt.zero_grad()
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
            schedule.step()
    net.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.state_dict()}, path)
    return path


# ---- The trained evaluator depends on nothing below this line (see cached_path).
TRAINING_ENDS = "# ---- The trained evaluator depends on nothing below"


def cached_path(cache_dir: Path) -> Path:
    """Where cached_evaluator keeps the weights: keyed by what they depend on (this module down
    to the marker above, and torch's version)."""
    import hashlib

    import torch

    text = Path(__file__).read_text(encoding="utf-8")
    trained_by = text[: text.index(TRAINING_ENDS)]
    key = hashlib.sha256(trained_by.encode() + torch.__version__.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"iclevr-evaluator-{key}.pth"


def cached_evaluator(cache_dir: Path) -> Path:
    """The trained evaluator, trained once per content of the code it depends on, kept in cache_dir."""
    import fcntl
    import os

    path = cached_path(cache_dir)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one pytest-xdist worker trains; the others wait, then load it
        if not path.is_file():
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            train_evaluator(tmp)
            tmp.replace(path)
    return path


def course_hits(checkpoint: Path, images: list[Path], sets: list[list[str]]) -> list[tuple[int, int]]:
    """(hits, k) per image by the course's evaluator.py, written out plainly: one batch,
    ToTensor + Normalize, top-k."""
    import torch
    from torchvision import transforms

    net = course_network()
    net.load_state_dict(torch.load(checkpoint, map_location="cpu")["model"])
    net.eval()
    tf = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    )
    x = torch.stack([tf(Image.open(p).convert("RGB")) for p in images])
    labels = torch.from_numpy(onehot(sets))
    with torch.no_grad():
        out = net(x)
    rows = []
    for i in range(len(out)):
        k = int(labels[i].sum().item())
        _, outi = out[i].topk(k)
        _, li = labels[i].topk(k)
        rows.append((sum(1 for j in outi if j in li), k))
    return rows


def course_accuracy(checkpoint: Path, images: list[Path], sets: list[list[str]]) -> float:
    """The course's accuracy: hits over objects, summed over the images."""
    rows = course_hits(checkpoint, images, sets)
    return sum(h for h, _ in rows) / sum(k for _, k in rows)


def save_grid(path: Path, images: np.ndarray) -> Path:
    """A student's save_image(make_grid(images, nrow=8)) of uint8 [N, 64, 64, 3] images."""
    import torch
    from torchvision.utils import save_image

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255)
    save_image(x, path, nrow=8)
    return path


def write_lab6_submission(
    folder: Path, test: np.ndarray, new_test: np.ndarray, *, seed: int, grids: bool = True
) -> Path:
    """One student's Lab6 hand-in: test/ and new_test/ (0.png ...), both grids, the denoising
    process of one scene (the real forward diffusion, 8 snapshots) and a code zip."""
    import zipfile

    from grader.grid_synth import forward_diffusion_tiles, tiles_to_grid

    folder.mkdir(parents=True, exist_ok=True)
    write_pngs(folder / "test", test)
    write_pngs(folder / "new_test", new_test)
    if grids:
        save_grid(folder / "test_grid.png", test)
        save_grid(folder / "new_test_grid.png", new_test)
    tiles_to_grid(forward_diffusion_tiles(test[:1], seed=seed), padding=2).save(
        folder / "process.png"
    )
    with zipfile.ZipFile(folder / "lab6_code.zip", "w") as zf:
        zf.writestr("README.md", "# Lab6\nTrain: python train.py\n")
        zf.writestr("train.py", "print('train a conditional DDPM')\n")
    return folder

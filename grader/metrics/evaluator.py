"""Lab6's evaluator: a TA's multi-label classifier scores generated images against their labels.

The course's recipe (its TAs hand out ``evaluator.py`` and ``checkpoint.pth`` each year):
torchvision ``resnet18`` without pretrained weights, ``fc`` replaced by
``Sequential(Linear(512, 24), Sigmoid())``, weights under the checkpoint key ``model``; images
64x64 RGB through ``ToTensor`` and ``Normalize((0.5,)*3, (0.5,)*3)``; for each image with k true
objects the top-k outputs are taken and the hits counted; accuracy = hits / sum of k. The
network is data (the metric kind's `Architecture`, read here as a `NetworkSpec`), so next year's
variant is a rubric edit. TorchScript files are accepted too. Labels are lists of object-name
lists (``test.json``) mapped to class indices by ``objects.json``; image i of a label file is
``i.png``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from grader.errors import GraderError
from grader.files import sha256_file
from grader.findings import Finding, compact_list, compact_ranges, error, warning
from grader.metrics.inception import resolve_device

TOOL = "grader evaluator_accuracy"


class NetworkSpec(Protocol):
    """The evaluator network and its input (the rubric's `architecture:` block)."""

    backbone: str  # a torchvision.models name, built with weights=None
    head: str  # the Linear layer replaced by Linear(in, num_classes) + activation
    num_classes: int
    activation: str  # sigmoid, softmax or none
    input_size: tuple[int, int]  # (width, height)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    state_key: str | None

    def model_dump(self, *, mode: str) -> dict: ...


class EvaluatorError(GraderError):
    """The TA's evaluator files (weights, labels, objects) cannot be used."""


def build_network(arch: NetworkSpec) -> torch.nn.Module:
    import torchvision

    try:
        net = torchvision.models.get_model(arch.backbone, weights=None)
    except ValueError as exc:
        raise EvaluatorError(
            f"evaluator backbone {arch.backbone!r}: not a torchvision model ({exc})"
        ) from None
    old = getattr(net, arch.head, None)
    if not isinstance(old, torch.nn.Linear):
        raise EvaluatorError(
            f"evaluator head {arch.head!r}: {arch.backbone} has no Linear layer by that name"
        )
    layers: list[torch.nn.Module] = [torch.nn.Linear(old.in_features, arch.num_classes)]
    if arch.activation == "sigmoid":
        layers.append(torch.nn.Sigmoid())
    elif arch.activation == "softmax":
        layers.append(torch.nn.Softmax(dim=1))
    setattr(net, arch.head, torch.nn.Sequential(*layers))
    return net


@dataclass
class LoadedEvaluator:
    model: torch.nn.Module
    arch: NetworkSpec
    format: str  # "state_dict" or "torchscript"
    sha256: str
    device: torch.device


def _is_torchscript(path: Path) -> bool:
    # A TorchScript archive holds compiled code and constants.pkl; a torch.save file holds data.pkl only.
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in zf.namelist())


def _state_dict(checkpoint: Any, arch: NetworkSpec, path: Path) -> dict:
    if isinstance(checkpoint, dict) and arch.state_key is not None and arch.state_key in checkpoint:
        checkpoint = checkpoint[arch.state_key]
    if (
        isinstance(checkpoint, dict)
        and checkpoint
        and all(isinstance(v, torch.Tensor) for v in checkpoint.values())
    ):
        return checkpoint
    keys = (
        compact_list(map(str, checkpoint))
        if isinstance(checkpoint, dict)
        else type(checkpoint).__name__
    )
    raise EvaluatorError(
        f"evaluator weights {path}: no state dict under the key {arch.state_key!r} (found {keys}); "
        "set architecture.state_key in the rubric"
    )


def load_evaluator(path: Path, arch: NetworkSpec, device: str | None = None) -> LoadedEvaluator:
    """The evaluator in eval mode on the device; EvaluatorError names what does not fit."""
    path = Path(path)
    if not path.is_file():
        raise EvaluatorError(
            f"evaluator weights not found: {path} (the TA's checkpoint; put it there)"
        )
    dev = resolve_device(device)
    sha = sha256_file(path)
    if _is_torchscript(path):
        try:
            model = torch.jit.load(str(path), map_location=dev)
        except (RuntimeError, ValueError) as exc:
            raise EvaluatorError(
                f"evaluator weights {path}: not a loadable TorchScript file ({exc})"
            ) from None
        fmt = "torchscript"
    else:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 -- unpickling errors come in many types
            raise EvaluatorError(
                f"evaluator weights {path}: not a torch checkpoint or TorchScript file "
                f"({type(exc).__name__}: {str(exc)[:300]})"
            ) from None
        model = build_network(arch)
        try:
            model.load_state_dict(_state_dict(checkpoint, arch, path))
        except RuntimeError as exc:
            raise EvaluatorError(
                f"evaluator weights {path} do not fit {arch.backbone} with {arch.num_classes} classes: "
                f"{str(exc)[:500]}"
            ) from None
        model = model.to(dev)
        fmt = "state_dict"
    model.eval()
    w, h = arch.input_size
    try:
        with torch.inference_mode():
            out = model(torch.zeros(1, 3, h, w, device=dev))
    except Exception as exc:  # noqa: BLE001 -- whatever the TA's network raises, it cannot grade
        raise EvaluatorError(f"evaluator {path} fails on a {w}x{h} RGB input: {exc}") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, arch.num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise EvaluatorError(
            f"evaluator {path} outputs {shape} for one image; expected (1, {arch.num_classes})"
        )
    return LoadedEvaluator(model=model, arch=arch, format=fmt, sha256=sha, device=dev)


# ---------------------------------------------------------------- labels


@dataclass(frozen=True)
class Labels:
    sets: list[list[str]]  # object names per image, as in the label file
    onehot: np.ndarray  # float32 [N, num_classes]
    sha256: str
    objects_sha256: str
    names: dict[int, str] = field(default_factory=dict)  # class index -> object name


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvaluatorError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluatorError(f"{what} {path}: not readable JSON ({exc})") from None


def load_labels(labels: Path, objects: Path, num_classes: int) -> Labels:
    """A label file (list of lists of object names) as one-hot rows; EvaluatorError if malformed."""
    names = _read_json(objects, "objects file")
    if not isinstance(names, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and 0 <= v < num_classes for k, v in names.items()
    ):
        raise EvaluatorError(
            f"objects file {objects}: expected a mapping of object names to indices 0..{num_classes - 1}"
        )
    sets = _read_json(labels, "label file")
    if (
        not isinstance(sets, list)
        or not sets
        or not all(isinstance(s, list) and s and all(isinstance(o, str) for o in s) for s in sets)
    ):
        raise EvaluatorError(
            f"label file {labels}: expected a non-empty list of non-empty lists of object names"
        )
    unknown = sorted({o for s in sets for o in s if o not in names})
    if unknown:
        raise EvaluatorError(
            f"label file {labels}: objects not in {objects.name}: {compact_list(unknown)}"
        )
    onehot = np.zeros((len(sets), num_classes), np.float32)
    for i, s in enumerate(sets):
        onehot[i, [names[o] for o in s]] = 1
    return Labels(
        sets=sets,
        onehot=onehot,
        sha256=sha256_file(Path(labels)),
        objects_sha256=sha256_file(Path(objects)),
        names={index: name for name, index in names.items()},
    )


# ---------------------------------------------------------------- scoring rule


def topk_hits(
    scores: torch.Tensor, onehot: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """(hits, k, top) per image: k = number of true objects, top = the k highest outputs' class
    indices (highest first), hits = true objects among them."""
    ks = onehot.sum(dim=1).round().long()
    hits = np.zeros(len(scores), np.int64)
    tops = []
    for i in range(len(scores)):
        top = scores[i].topk(int(ks[i])).indices
        hits[i] = int(onehot[i, top].sum().round())
        tops.append([int(j) for j in top])
    return hits, ks.numpy(), tops


# ---------------------------------------------------------------- images


def match_images(
    images: Sequence[Path],
    count: int,
    *,
    artifact: str | None,
    label_name: str,
) -> tuple[list[Path] | None, list[Finding]]:
    """Image i of the label file is ``i.png``: the images in label order, or None and why not."""
    by_name: dict[str, list[Path]] = {}
    for p in images:
        by_name.setdefault(p.name.lower(), []).append(p)
    expected = [f"{i}.png" for i in range(count)]
    findings: list[Finding] = []
    hint = f"save image i of {label_name} as i.png: 0.png ... {count - 1}.png"
    if len(images) != count:
        findings.append(
            error(
                "evaluator.count",
                f"{len(images)} images for {label_name}, which has {count} label sets",
                artifact=artifact,
                hint=hint,
            )
        )
    missing = [i for i, n in enumerate(expected) if n not in by_name]
    extra = sorted(n for n in by_name if n not in set(expected))
    if missing or extra:
        parts = ([f"missing {compact_ranges(missing, '{}.png')}"] if missing else []) + (
            [f"not named for a label: {compact_list(extra)}"] if extra else []
        )
        findings.append(
            error(
                "evaluator.names",
                f"images for {label_name}: {'; '.join(parts)}",
                artifact=artifact,
                hint=hint,
            )
        )
    twice = sorted(n for n, ps in by_name.items() if len(ps) > 1 and n in set(expected))
    if twice:
        findings.append(
            error(
                "evaluator.ambiguous",
                f"more than one image named {compact_list(twice)} (in different folders)",
                artifact=artifact,
                hint=hint,
            )
        )
    if findings:
        return None, findings
    return [by_name[n][0] for n in expected], findings


def check_headers(
    paths: Sequence[Path],
    arch: NetworkSpec,
    *,
    artifact: str | None,
) -> tuple[bool, list[Finding]]:
    """Sizes and modes from the headers: (usable, findings). A wrong size cannot be evaluated."""
    sizes: dict[tuple[int, int], list[str]] = {}
    modes: dict[str, list[str]] = {}
    unreadable: list[str] = []
    for p in paths:
        try:
            with Image.open(p) as im:
                size, mode = im.size, im.mode
        except (OSError, ValueError, Image.DecompressionBombError):
            unreadable.append(p.name)
            continue
        if tuple(size) != tuple(arch.input_size):
            sizes.setdefault(size, []).append(p.name)
        if mode != "RGB":
            modes.setdefault(mode, []).append(p.name)
    w, h = arch.input_size
    findings = [
        error(
            "evaluator.size",
            f"{len(names)} image(s) are {s[0]}x{s[1]}, the evaluator takes {w}x{h}: "
            f"{compact_list(names)}",
            artifact=artifact,
            hint=f"save the images at {w}x{h} pixels",
        )
        for s, names in sorted(sizes.items())
    ]
    findings += [
        warning(
            "evaluator.mode",
            f"{len(names)} image(s) are {m}, not RGB; evaluated after conversion "
            f"to RGB: {compact_list(names)}",
            artifact=artifact,
            hint="save the images as RGB",
        )
        for m, names in sorted(modes.items())
    ]
    if unreadable:
        findings.append(
            error(
                "evaluator.unreadable",
                f"images that cannot be read: {compact_list(unreadable)}",
                artifact=artifact,
                hint="save these images again and check that they open",
            )
        )
    return not sizes and not unreadable, findings


def input_batches(
    paths: Sequence[Path], arch: NetworkSpec, batch_size: int
) -> Iterator[torch.Tensor]:
    """float32 [B, 3, H, W], exactly ToTensor then Normalize(mean, std); one batch in memory."""
    mean = torch.tensor(arch.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(arch.std, dtype=torch.float32).view(-1, 1, 1)
    for start in range(0, len(paths), batch_size):
        arrays = []
        for p in paths[start : start + batch_size]:
            with Image.open(p) as im:
                arrays.append(np.asarray(im.convert("RGB")))
        x = (
            torch.from_numpy(np.stack(arrays))
            .permute(0, 3, 1, 2)
            .contiguous()
            .to(torch.float32)
            .div(255)
        )
        yield x.sub_(mean).div_(std)


@dataclass
class AccuracyOutcome:
    value: float | None
    skipped: str | None = None
    findings: list[Finding] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    images: list[Path] = field(default_factory=list)  # image i of the label file, in order


def evaluator_accuracy(
    images: Sequence[Path],
    evaluator: LoadedEvaluator,
    labels: Labels,
    *,
    artifact: str | None = None,
    label_name: str = "the label file",
    batch_size: int = 64,
) -> AccuracyOutcome:
    """Accuracy of the evaluator on the images of one label file; findings for bad input."""
    arch = evaluator.arch
    provenance = {
        "tool": TOOL,
        "torch": torch.__version__,
        "evaluator_format": evaluator.format,
        "architecture": arch.model_dump(mode="json"),
        "weights_sha256": evaluator.sha256,
        "labels_sha256": labels.sha256,
        "objects_sha256": labels.objects_sha256,
        "n": len(labels.sets),
        "device": str(evaluator.device),
    }
    ordered, findings = match_images(
        images, len(labels.sets), artifact=artifact, label_name=label_name
    )
    if ordered is None:
        return AccuracyOutcome(
            None,
            f"the images do not match {label_name} one to one (see the findings)",
            findings,
            provenance,
        )
    usable, more = check_headers(ordered, arch, artifact=artifact)
    findings += more
    if not usable:
        return AccuracyOutcome(
            None,
            "some images cannot be given to the evaluator (see the findings)",
            findings,
            provenance,
        )
    scores = torch.empty(len(ordered), arch.num_classes, dtype=torch.float32)
    start = 0
    with torch.inference_mode():
        for x in input_batches(ordered, arch, batch_size):
            out = evaluator.model(x.to(evaluator.device))
            scores[start : start + len(x)] = out.float().cpu()
            start += len(x)
    hits, ks, tops = topk_hits(scores, torch.from_numpy(labels.onehot))
    value = float(hits.sum()) / float(ks.sum())
    details = {
        "hits": int(hits.sum()),
        "objects": int(ks.sum()),
        # One row per label set: the wanted objects, the evaluator's top-k (highest first), hits.
        "per_image": [
            {"image": f"{i}.png", "true": s, "predicted": [labels.names.get(j, str(j)) for j in top],
             "hits": int(h)}
            for i, (s, h, top) in enumerate(zip(labels.sets, hits, tops))
        ],
    }
    return AccuracyOutcome(value, None, findings, provenance, details, ordered)

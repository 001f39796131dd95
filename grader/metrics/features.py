"""Batched Inception features: decode in worker processes, run the model, keep float64.

The data path is ours (parallel decode, uint8 batches, one division on the device); the
numbers are the official tools': the same decode (PIL convert('RGB')), the same float32
x / 255, the same model with its own resize and normalisation.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from grader.metrics.images import ImageRef, UnreadableImageError, load_rgb
from grader.metrics.inception import FEATURE_DIMS


def configure_determinism() -> None:
    """Full fp32 for metrics: no TF32 anywhere, no cuDNN autotuning."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.set_float32_matmul_precision("highest")


def default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(8, cpus - 1))


@dataclass(frozen=True)
class _Failed:
    ref: ImageRef
    reason: str


class _DecodedImages(torch.utils.data.Dataset):
    def __init__(self, refs: Sequence[ImageRef]):
        self.refs = list(refs)

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int):
        try:
            return load_rgb(self.refs[index])
        except UnreadableImageError as exc:  # re-raised in the main process, unwrapped
            return _Failed(exc.ref, exc.reason)


def _collate(items: list) -> list[torch.Tensor] | _Failed:
    """uint8 [B, H, W, 3] tensors, one per run of equally sized images, in order."""
    groups: list[list[np.ndarray]] = []
    for item in items:
        if isinstance(item, _Failed):
            return item
        if groups and groups[-1][0].shape == item.shape:
            groups[-1].append(item)
        else:
            groups.append([item])
    return [torch.from_numpy(np.stack(group)) for group in groups]


def image_batches(
    refs: Sequence[ImageRef], batch_size: int, workers: int, pin_memory: bool = False
) -> Iterator[list[torch.Tensor]]:
    """Decoded uint8 batches; at most 2 * workers batches wait in memory at any time."""
    loader = torch.utils.data.DataLoader(
        _DecodedImages(refs),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=pin_memory,
        prefetch_factor=2 if workers > 0 else None,
    )
    for groups in loader:
        if isinstance(groups, _Failed):
            raise UnreadableImageError(groups.ref, groups.reason)
        yield groups


def array_batches(images: np.ndarray, batch_size: int) -> Iterator[list[torch.Tensor]]:
    """uint8 [N, H, W, 3] pixels (already decoded) in batches."""
    for start in range(0, len(images), batch_size):
        yield [torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))]


def to_model_input(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float32 [B, 3, H, W] in [0, 1], exactly as ToTensor makes it."""
    batch = batch.to(device, non_blocking=True)
    return batch.permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)


def extract_features(
    model: torch.nn.Module,
    batches: Iterable[list[torch.Tensor]],
    total: int,
    device: torch.device,
    progress: bool = False,
) -> np.ndarray:
    """pool3 features float64 [total, 2048] of the batches, in order."""
    features = np.empty((total, FEATURE_DIMS), dtype=np.float64)
    start = 0
    bar = tqdm(total=total, disable=not progress, desc="Inception features", unit="img",
               dynamic_ncols=True, leave=False)
    with bar, torch.inference_mode():
        for groups in batches:
            for batch in groups:
                (pool,) = model(to_model_input(batch, device))
                end = start + len(batch)
                # float32 -> float64 on assignment, as both official tools do.
                features[start:end] = pool.reshape(len(batch), FEATURE_DIMS).cpu().numpy()
                start = end
                bar.update(len(batch))
    if start != total:
        raise RuntimeError(f"expected {total} images, got {start}")
    return features

"""Batched Inception features: decode, run the model (data parallel on a CPU), keep float64.

The data path is ours (decoding overlapped with the forward, uint8 batches, one division
and the resize on the device, channels_last); the numbers are the official tools': the
same decode (PIL convert('RGB')), the same float32 x / 255, the same model with its own
resize and normalisation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from grader.image_files import ImageRef, UnreadableImageError, load_rgb
from grader.metrics.inception import FEATURE_DIMS


def configure_determinism() -> None:
    """Full fp32 for metrics: no TF32 anywhere, no cuDNN autotuning."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.set_float32_matmul_precision("highest")


def available_cpus() -> int:
    """CPUs this process may use: its affinity, fewer under a container's CPU quota."""
    from grader.metrics.resources import available_cpus as cpus

    return cpus()


def default_workers(device: torch.device) -> int:
    """Decoding processes: none on a CPU (the forward threads decode between batches; a
    PNG decodes in ~0.1 ms against ~150 ms of Inception per image per core), CPUs - 1 (at
    most 8) feeding a GPU."""
    if device.type == "cpu":
        return 0
    return max(0, min(8, available_cpus() - 1))


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
    """uint8 [B, H, W, 3] -> float32 [B, 3, H, W] in [0, 1], exactly as ToTensor makes it.

    The uint8 pixels travel (4x fewer bytes than float32); the division, and the model's own
    resize and normalisation, run on the device. The result is channels_last: the same
    numbers (oneDNN and cuDNN compute the same sums in either layout; checked bit for bit on
    the CPU), without the layout reorders around every convolution and pooling.
    """
    batch = batch.to(device, non_blocking=True)
    return (
        batch.permute(0, 3, 1, 2)
        .to(torch.float32)
        .div(255)
        .contiguous(memory_format=torch.channels_last)
    )


def _forward(model, batch: torch.Tensor, device: torch.device) -> np.ndarray:
    (pool,) = model(to_model_input(batch, device))
    # float32 -> float64 on assignment, as both official tools do.
    return pool.reshape(len(batch), FEATURE_DIMS).cpu().numpy()


def extract_features(
    model: torch.nn.Module,
    batches: Iterable[list[torch.Tensor]],
    total: int,
    device: torch.device,
    progress: bool = False,
    threads: int = 1,
    dtype: type = np.float64,
) -> np.ndarray:
    """pool3 features [total, 2048] of the batches, in order: float64 as the official tools
    keep them, or float32 (the network's own values, so exact in either; half the memory).

    With threads > 1 (CPU), that many threads each take the next batch (decoding it, when
    `batches` decodes lazily) and run it through the model with one intra-op thread: data
    parallel across cores. On a 2-core machine this did ~1.6x the images/s of one forward
    with 2 intra-op threads when the machine is shared (no thread waits at the barrier of
    each operator for a descheduled sibling), and overlaps decoding with the forward.
    """
    features = np.empty((total, FEATURE_DIMS), dtype=dtype)
    bar = tqdm(
        total=total,
        disable=not progress,
        desc="Inception features",
        unit="img",
        dynamic_ncols=True,
        leave=False,
    )
    source = iter(batches)
    lock = threading.Lock()
    next_start = 0
    done = 0
    errors: list[Exception] = []

    def take() -> tuple[int, torch.Tensor] | None:
        nonlocal next_start
        with lock:  # decoding happens here, one batch at a time, in whichever thread is free
            if errors:
                return None
            for groups in source:
                start = next_start
                next_start += sum(len(batch) for batch in groups)
                return start, groups
            return None

    def work(intra_threads: int | None) -> None:
        nonlocal done
        if intra_threads is not None:
            torch.set_num_threads(intra_threads)
        try:
            with torch.inference_mode():
                while (item := take()) is not None:
                    start, groups = item
                    for batch in groups:
                        end = start + len(batch)
                        if end > total:
                            raise RuntimeError(f"expected {total} images, got more")
                        features[start:end] = _forward(model, batch, device)
                        start = end
                        with lock:
                            done += len(batch)
                            bar.update(len(batch))
        except Exception as exc:  # noqa: BLE001 - re-raised in the calling thread below
            with lock:
                errors.append(exc)

    with bar:
        if threads <= 1 or device.type != "cpu":
            work(None)
        else:
            intra = torch.get_num_threads()
            pool = [threading.Thread(target=work, args=(1,), daemon=True) for _ in range(threads)]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            torch.set_num_threads(intra)
    if errors:
        raise errors[0]
    if done != total:
        raise RuntimeError(f"expected {total} images, got {done}")
    return features

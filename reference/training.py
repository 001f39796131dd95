"""What every reference trainer shares: device choice, a resumable batch order, and
checkpoints that carry model, optimizer, step, loss history and RNG state."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import torch

from grader.errors import GraderError

CHECKPOINT_PATTERN = re.compile(r"^ckpt_(\d+)\.pt$")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GraderError(f"--device {name}: CUDA is not available on this machine")
    return device


class BatchOrder:
    """Which examples make up the batch of a given step.

    Each epoch is a permutation drawn from a generator seeded by (seed, epoch), so the batch
    of step s depends on s alone: a resumed run sees exactly the batches a straight run sees.
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int):
        if num_examples < batch_size:
            raise GraderError(f"batch size {batch_size} exceeds the {num_examples} training images")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = num_examples // batch_size
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.num_examples, generator=generator)
            self._epoch = epoch
        start = position * self.batch_size
        return self._perm[start : start + self.batch_size]


def checkpoint_path(out: Path, step: int) -> Path:
    return out / f"ckpt_{step:07d}.pt"


def latest_checkpoint(out: Path | str) -> Path | None:
    """The checkpoint with the highest step in a folder, or None."""
    out = Path(out)
    if not out.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in out.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))]
    return max(found)[1] if found else None


def resolve_checkpoint(path: Path | str) -> Path:
    """A checkpoint file, or the latest checkpoint of a training folder."""
    path = Path(path)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise GraderError(f"no checkpoint (ckpt_NNNNNNN.pt) in {path}")
        return latest
    if not path.is_file():
        raise GraderError(f"checkpoint not found: {path}")
    return path


def load_checkpoint(path: Path | str, kind: str | None = None) -> dict:
    """Load a checkpoint dict on CPU; ``kind`` guards against e.g. a DCGAN one given to DDPM."""
    path = resolve_checkpoint(path)
    # weights_only: checkpoints hold tensors and plain containers; never unpickle code.
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "config" not in state:
        raise GraderError(f"{path}: not a reference checkpoint (no 'config' entry)")
    if kind is not None and state.get("kind") != kind:
        raise GraderError(f"{path}: a {state.get('kind')!r} checkpoint, expected {kind!r}")
    return state


def save_checkpoint(out: Path, step: int, state: dict, keep: int = 2) -> Path:
    """Write ckpt_<step>.pt atomically (temp file + rename); keep the newest ``keep``."""
    out.mkdir(parents=True, exist_ok=True)
    target = checkpoint_path(out, step)
    temp = target.with_suffix(".pt.tmp")
    torch.save(state, temp)
    os.replace(temp, target)
    older = sorted(
        (int(m.group(1)), p) for p in out.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))
    )
    for _, stale in older[:-keep]:
        stale.unlink()
    return target


def rng_state(generator: torch.Generator) -> dict:
    """The trainer's own noise generator and torch's global RNG (dropout), for resuming."""
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, generator: torch.Generator) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_same_config(saved: dict, wanted: dict, path: Path) -> None:
    """Refuse to resume with a different architecture or schedule than the checkpoint's."""
    differing = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
    if differing:
        detail = ", ".join(
            f"{k}: checkpoint {a!r} vs requested {b!r}" for k, (a, b) in differing.items()
        )
        raise GraderError(f"cannot resume from {path}: {detail}; use a new --out folder")


class TrainingClock:
    """Wall-clock and CPU seconds (this process, all threads) spent training, carried across
    resumes in the checkpoints: a checkpoint's clock is the cost of reaching its step, not
    counting work lost after the last save of an interrupted run."""

    def __init__(self) -> None:
        self.restart({})

    def restart(self, saved: dict) -> None:
        self._wall, self._cpu = saved.get("wall_s", 0.0), saved.get("cpu_s", 0.0)
        self._wall_start, self._cpu_start = time.perf_counter(), time.process_time()

    def state(self) -> dict:
        return {"wall_s": self._wall + time.perf_counter() - self._wall_start,
                "cpu_s": self._cpu + time.process_time() - self._cpu_start}


def resume_training(out: Path | str, kind: str, config: dict, parts: dict, generator: torch.Generator,
                    losses, clock: TrainingClock | None = None, defaults: dict | None = None):
    """Load the newest checkpoint in `out` into `parts` (modules and optimizers by name) and
    the RNG (and `clock`); returns (step, losses) to continue from, or (0, losses) for a fresh
    start. `defaults` are the values of config keys that older checkpoints do not record."""
    resume = latest_checkpoint(out)
    if resume is None:
        if clock is not None:
            clock.restart({})
        return 0, losses
    state = load_checkpoint(resume, kind)
    check_same_config({**(defaults or {}), **state["config"]}, config, resume)
    for name, part in parts.items():
        part.load_state_dict(state[name])
    restore_rng(state["rng"], generator)
    if clock is not None:
        clock.restart(state.get("clock", {}))
    return state["step"], state["losses"]


def training_state(kind: str, config: dict, step: int, losses, parts: dict, generator: torch.Generator,
                   clock: TrainingClock | None = None) -> dict:
    """Everything a resumed run needs, as saved by save_checkpoint."""
    state = {"kind": kind, "config": config, "step": step, "losses": losses,
             **{name: part.state_dict() for name, part in parts.items()}, "rng": rng_state(generator)}
    if clock is not None:
        state["clock"] = clock.state()
    return state

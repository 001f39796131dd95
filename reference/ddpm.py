"""DDPM on MNIST (Ho et al. 2020): linear beta schedule 1e-4..0.02, T = 1000, eps-prediction.

Timesteps follow the paper: t = 1..T, x_T is pure noise, x_0 the generated image, and
abar_t = prod_{s<=t} (1 - beta_s). Tensors are indexed with t - 1.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from grader.errors import GraderError
from reference.data import load_training_images, to_unit_range
from reference.images import save_grid, to_uint8, write_pngs
from reference.plots import plot_losses
from reference.presets import ddpm_sampling
from reference.training import (
    BatchOrder,
    TrainingClock,
    latest_checkpoint,
    load_checkpoint,
    resolve_device,
    resume_training,
    save_checkpoint,
    training_state,
)
from reference.unet import UNet

KIND = "ddpm"
GRID_SAMPLES = 8
GRID_COLUMNS = 8


class LinearSchedule:
    """beta_t linear in t from beta_start (t=1) to beta_end (t=T), computed in float64."""

    def __init__(self, timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        self.timesteps = timesteps
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        alpha_bars = torch.cumprod(1.0 - betas, dim=0)
        previous = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        self.betas = betas.float()
        self.alpha_bars = alpha_bars.float()
        self.alpha_bars64 = alpha_bars  # DDIM's coefficients, computed as Python floats
        # From float64: 1 - abar_t in float32 would lose ~2e-4 relative precision at small t.
        self.sqrt_alpha_bars = alpha_bars.sqrt().float()
        self.sqrt_one_minus_alpha_bars = (1 - alpha_bars).sqrt().float()
        # Posterior q(x_{t-1} | x_t, x_0): mean = c0 * x_0 + ct * x_t, variance beta~_t.
        self.posterior_c0 = (betas * previous.sqrt() / (1 - alpha_bars)).float()
        self.posterior_ct = ((1 - previous) * (1 - betas).sqrt() / (1 - alpha_bars)).float()
        self.posterior_std = (betas * (1 - previous) / (1 - alpha_bars)).sqrt().float()

    def to(self, device: torch.device | str) -> LinearSchedule:
        """Move every table to ``device`` (in place); returns self."""
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))
        return self

    def _at(self, values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return values[t - 1].view(-1, 1, 1, 1)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, for t in 1..T (one per image)."""
        return (
            self._at(self.sqrt_alpha_bars, t) * x0
            + self._at(self.sqrt_one_minus_alpha_bars, t) * noise
        )

    def p_step(
        self, model: nn.Module, x: torch.Tensor, t: int, noise: torch.Tensor
    ) -> torch.Tensor:
        """One reverse step x_t -> x_{t-1}; x_0 predictions are clipped to [-1, 1]."""
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = model(x, tt)
        x0 = (x - self._at(self.sqrt_one_minus_alpha_bars, tt) * eps) / self._at(
            self.sqrt_alpha_bars, tt
        )
        x0 = x0.clamp(-1, 1)
        mean = self._at(self.posterior_c0, tt) * x0 + self._at(self.posterior_ct, tt) * x
        if t == 1:
            return mean
        return mean + self._at(self.posterior_std, tt) * noise


def process_timesteps(timesteps: int, columns: int = GRID_COLUMNS) -> list[int]:
    """The t of each process-grid column, noise (left) to image (right).

    The T steps are split into ``columns - 1`` parts of T // (columns - 1) steps; the last part
    takes the remainder. For T = 1000 and 8 columns: [1000, 858, 716, 574, 432, 290, 148, 0]
    (x_1000 is the initial noise, x_0 the final image).
    """
    stride = timesteps // (columns - 1)
    return [timesteps - k * stride for k in range(columns - 1)] + [0]


@torch.no_grad()
def generate(
    model: nn.Module,
    schedule: LinearSchedule,
    num: int,
    generator: torch.Generator,
    device: torch.device,
    capture: list[int] | tuple[int, ...] = (),
    progress: bool = False,
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Run the reverse chain for ``num`` images; returns x_0 and {t: x_t} for t in capture.

    All noise is drawn on the CPU from ``generator``, so a seed means the same noise on
    every device.
    """
    shape = (num, 1, 28, 28)
    x = torch.randn(shape, generator=generator).to(device)
    snapshots = {}
    steps = range(schedule.timesteps, 0, -1)
    for t in tqdm(steps, desc="sampling", leave=False, disable=not progress):
        if t in capture:
            snapshots[t] = x.cpu()
        noise = torch.randn(shape, generator=generator).to(device)
        x = schedule.p_step(model, x, t, noise)
    if 0 in capture:
        snapshots[0] = x.cpu()
    return x.clamp(-1, 1).cpu(), snapshots


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """``steps`` timesteps from T down to 1, evenly spaced (rounded): the DDIM chain visits
    x_T, ..., x_1 and then x_0. For T = 1000 and 50 steps: 1000, 980, 960, ..., 21, 1."""
    if not 1 <= steps <= timesteps:
        raise GraderError(f"DDIM steps must be between 1 and T = {timesteps}, got {steps}")
    if steps == 1:
        return [timesteps]
    return sorted({round(timesteps - k * (timesteps - 1) / (steps - 1)) for k in range(steps)},
                  reverse=True)


@torch.no_grad()
def generate_ddim(
    model: nn.Module,
    schedule: LinearSchedule,
    num: int,
    generator: torch.Generator,
    device: torch.device,
    steps: int = 50,
    eta: float = 0.0,
    progress: bool = False,
) -> torch.Tensor:
    """DDIM (Song et al. 2021) on the trained DDPM: x_0 from ``steps`` network calls.

    Each step predicts x_0 from eps (clipped to [-1, 1]) and moves to the next visited
    timestep s < t: x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s - sigma^2) eps + sigma z, with
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s) and abar_0 = 1.
    eta = 0 is deterministic given x_T; eta = 1 draws fresh noise like the DDPM posterior.
    Noise is drawn on the CPU from ``generator``.
    """
    shape = (num, 1, 28, 28)
    x = torch.randn(shape, generator=generator).to(device)
    visited = ddim_timesteps(schedule.timesteps, steps)
    for t, s in tqdm(list(zip(visited, visited[1:] + [0])), desc="ddim", leave=False,
                     disable=not progress):
        eps = model(x, torch.full((num,), t, device=device, dtype=torch.long))
        abar_t = schedule.alpha_bars64[t - 1].item()
        abar_s = schedule.alpha_bars64[s - 1].item() if s > 0 else 1.0
        x0 = ((x - math.sqrt(1 - abar_t) * eps) / math.sqrt(abar_t)).clamp(-1, 1)
        sigma = eta * math.sqrt((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s))
        x = math.sqrt(abar_s) * x0 + math.sqrt(max(1 - abar_s - sigma**2, 0.0)) * eps
        if eta > 0 and s > 0:
            x = x + sigma * torch.randn(shape, generator=generator).to(device)
    return x.clamp(-1, 1).cpu()


def build_model(config: dict) -> UNet:
    # checkpoints made before the attention switch have no key: they had attention
    return UNet(width=config["width"], blocks=config["blocks"],
                attention=config.get("attention", True))


def schedule_of(config: dict) -> LinearSchedule:
    return LinearSchedule(config["timesteps"], config["beta_start"], config["beta_end"])


def learning_rate(step: int, base: float, warmup: int = 500) -> float:
    """Linear warm-up then constant; a function of the step alone (resume-safe)."""
    return base * min(1.0, (step + 1) / warmup)


def train_ddpm(
    data: Path | str,
    out: Path | str,
    *,
    steps: int = 30000,
    width: int = 64,
    blocks: int = 2,
    attention: bool = True,
    batch_size: int = 128,
    lr: float = 2e-4,
    timesteps: int = 1000,
    ema_decay: float = 0.9995,
    seed: int = 0,
    device: str = "auto",
    save_every: int = 1000,
    limit: int | None = None,
    preset: str | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume from the latest checkpoint in ``out``) up to ``steps`` steps.

    ``preset`` is recorded in the checkpoint (the name of the settings used, e.g. "cpu"):
    sampling then defaults to that preset's sampler."""
    out = Path(out)
    dev = resolve_device(device)
    images = load_training_images(data, limit)
    if tuple(images.shape[1:]) != (1, 28, 28):
        shape = "x".join(map(str, images.shape[1:]))
        raise GraderError(f"the reference DDPM trains on 1x28x28 MNIST digits; {data} has {shape}")
    config = {
        "width": width, "blocks": blocks, "attention": attention, "timesteps": timesteps,
        "beta_start": 1e-4, "beta_end": 0.02,
        "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay, "seed": seed,
        "num_images": len(images), "preset": preset,
    }
    schedule = schedule_of(config).to(dev)
    order = BatchOrder(len(images), batch_size, seed)

    torch.manual_seed(seed)
    model = build_model(config).to(dev)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    parts = {"model": model, "ema": ema, "optimizer": optimizer}
    clock = TrainingClock()
    step, losses = resume_training(out, KIND, config, parts, generator, [], clock,
                                   defaults={"attention": True, "preset": None})

    def snapshot() -> dict:
        return training_state(KIND, config, step, losses, parts, generator, clock)

    model.train()
    bar = tqdm(total=steps, initial=step, desc="ddpm", disable=not progress)
    while step < steps:
        x0 = to_unit_range(images[order.indices(step)])
        t = torch.randint(1, timesteps + 1, (batch_size,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        x0, t, noise = x0.to(dev), t.to(dev), noise.to(dev)
        loss = F.mse_loss(model(schedule.q_sample(x0, t, noise), t), noise)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, lr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        update_ema(ema, model, ema_decay, step)
        step += 1
        losses.append((step, loss.item()))
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % save_every == 0 or step == steps:
            save_checkpoint(out, step, snapshot())
    bar.close()
    plot = plot_losses({"noise MSE": losses}, out / "loss.png", "DDPM training loss")
    return {"step": step, "checkpoint": str(latest_checkpoint(out)), "loss_plot": str(plot)}


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """EMA of the weights; the decay ramps up early so short runs still sample sensibly."""
    decay = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def load_sampler(checkpoint: Path | str, device: torch.device) -> tuple[nn.Module, LinearSchedule]:
    """The EMA network of a DDPM checkpoint (file or training folder) and its schedule."""
    model, schedule, _ = _load_sampler(checkpoint, device)
    return model, schedule


def _load_sampler(checkpoint: Path | str, device: torch.device):
    state = load_checkpoint(checkpoint, KIND)
    model = build_model(state["config"])
    model.load_state_dict(state["ema"])
    return model.to(device).eval(), schedule_of(state["config"]).to(device), state["config"]


SAMPLERS = ("ddpm", "ddim")


def sample_ddpm(
    checkpoint: Path | str,
    output: Path | str,
    num: int,
    seed: int = 0,
    *,
    grid: Path | str | None = None,
    grid_padding: int = 2,
    batch_size: int = 500,
    sampler: str | None = None,
    ddim_steps: int | None = None,
    eta: float | None = None,
    preset: str | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Write ``num`` RGB 28x28 PNGs 00001.png... to ``output``; optionally the process grid.

    ``sampler`` "ddpm" runs the T-step ancestral chain, "ddim" ``ddim_steps`` DDIM steps with
    ``eta``; what is not given comes from ``preset``, else from the preset the checkpoint was
    trained with (see reference.presets). The process grid always shows the ancestral chain.
    Batch b draws its noise from a generator seeded with (seed, b), so the same seed and
    batch size give the same images (byte-identical PNGs on the CPU).
    """
    dev = resolve_device(device)
    model, schedule, config = _load_sampler(checkpoint, dev)
    settings = ddpm_sampling(config.get("preset"), preset,
                             {"sampler": sampler, "ddim_steps": ddim_steps, "eta": eta})
    if settings["sampler"] not in SAMPLERS:
        raise GraderError(f"unknown sampler {settings['sampler']!r}; choose ddpm or ddim")
    if settings["sampler"] == "ddim":
        ddim_timesteps(schedule.timesteps, settings["ddim_steps"])  # validates the count
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    written = 0
    bar = tqdm(total=num, desc="images", disable=not progress)
    for batch_index, start in enumerate(range(0, num, batch_size)):
        count = min(batch_size, num - start)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + batch_index)
        if settings["sampler"] == "ddim":
            images = generate_ddim(model, schedule, count, generator, dev,
                                   settings["ddim_steps"], settings["eta"], progress=progress)
        else:
            images, _ = generate(model, schedule, count, generator, dev, progress=progress)
        write_pngs(to_uint8(images), output, first_index=start + 1)
        written += count
        bar.update(count)
    bar.close()
    result = {"images": str(output), "count": written,
              "sampler": describe_sampler(settings, schedule.timesteps)}
    if grid is not None:
        result["grid"] = str(write_process_grid(model, schedule, grid, seed, grid_padding, dev))
    return result


def describe_sampler(settings: dict, timesteps: int) -> str:
    if settings["sampler"] == "ddim":
        return f"ddim, {settings['ddim_steps']} steps, eta {settings['eta']:g}"
    return f"ddpm ancestral, {timesteps} steps"


def process_tiles(
    model: nn.Module, schedule: LinearSchedule, seed: int = 0, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """uint8 [64,3,28,28] tiles of the HW3 process image, row-major: tile 8*i + j is sample i
    at t = process_timesteps(T)[j]. Values are clipped to [-1, 1] before conversion."""
    columns = process_timesteps(schedule.timesteps, GRID_COLUMNS)
    generator = torch.Generator().manual_seed(seed)
    _, snapshots = generate(model, schedule, GRID_SAMPLES, generator, torch.device(device), columns)
    tiles = torch.stack([snapshots[t] for t in columns], dim=1).flatten(0, 1)
    return to_uint8(tiles.clamp(-1, 1))


def write_process_grid(
    model: nn.Module,
    schedule: LinearSchedule,
    path: Path | str,
    seed: int = 0,
    padding: int = 2,
    device: torch.device | str = "cpu",
) -> Path:
    """HW3 process image: 8 rows (samples) x 8 columns (x_t at ``process_timesteps``), laid
    out by torchvision's make_grid: 242x242 RGB with padding 2, 224x224 with padding 0."""
    tiles = process_tiles(model, schedule, seed, device)
    return save_grid(tiles, Path(path), nrow=GRID_COLUMNS, padding=padding)

"""DCGAN (Radford et al. 2016) with transpose-conv generator and nn.BCELoss.

64x64 RGB for the HW9 CelebA faces, 28x28 for MNIST digits (written as RGB PNGs).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from reference.data import load_training_images, to_unit_range
from reference.images import save_grid, to_uint8, write_pngs
from reference.plots import plot_losses
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

KIND = "dcgan"


def _up(cin: int, cout: int, kernel: int = 4, stride: int = 2, padding: int = 1) -> list[nn.Module]:
    return [
        nn.ConvTranspose2d(cin, cout, kernel, stride, padding, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    ]


def _down(cin: int, cout: int, norm: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return layers + [nn.LeakyReLU(0.2, True)]


class Generator(nn.Module):
    """z [N, nz, 1, 1] -> image [N, channels, size, size] in [-1, 1] (size 64 or 28)."""

    def __init__(self, nz: int = 100, width: int = 64, channels: int = 3, size: int = 64):
        super().__init__()
        w = width
        if size == 64:
            layers = _up(nz, 8 * w, 4, 1, 0) + _up(8 * w, 4 * w) + _up(4 * w, 2 * w) + _up(2 * w, w)
            layers += [nn.ConvTranspose2d(w, channels, 4, 2, 1, bias=False)]  # 4->8->16->32->64
        elif size == 28:
            layers = _up(nz, 4 * w, 7, 1, 0) + _up(4 * w, 2 * w)  # 7 -> 14
            layers += [nn.ConvTranspose2d(2 * w, channels, 4, 2, 1, bias=False)]  # -> 28
        else:
            raise ValueError(f"DCGAN image size must be 64 or 28, got {size}")
        self.net = nn.Sequential(*layers, nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """image -> probability of being real [N] (Sigmoid, for nn.BCELoss)."""

    def __init__(self, width: int = 64, channels: int = 3, size: int = 64):
        super().__init__()
        w = width
        if size == 64:
            layers = _down(channels, w, norm=False) + _down(w, 2 * w) + _down(2 * w, 4 * w)
            layers += _down(4 * w, 8 * w) + [nn.Conv2d(8 * w, 1, 4, 1, 0, bias=False)]
        elif size == 28:
            layers = _down(channels, w, norm=False) + _down(w, 2 * w)  # 28 -> 14 -> 7
            layers += [nn.Conv2d(2 * w, 1, 7, 1, 0, bias=False)]
        else:
            raise ValueError(f"DCGAN image size must be 64 or 28, got {size}")
        self.net = nn.Sequential(*layers, nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def init_weights(module: nn.Module) -> None:
    """DCGAN init: conv weights N(0, 0.02), batch-norm scale N(1, 0.02), shift 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_models(config: dict) -> tuple[Generator, Discriminator]:
    c, s, w = config["channels"], config["size"], config["width"]
    return Generator(config["nz"], w, c, s), Discriminator(w, c, s)


def train_dcgan(
    data: Path | str,
    out: Path | str,
    *,
    steps: int = 8000,
    width: int = 64,
    nz: int = 100,
    batch_size: int = 128,
    lr: float = 2e-4,
    seed: int = 0,
    device: str = "auto",
    save_every: int = 1000,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume from the latest checkpoint in ``out``); plots both losses in one figure."""
    out = Path(out)
    dev = resolve_device(device)
    images = load_training_images(data, limit)
    channels, size = images.shape[1], images.shape[2]
    config = {
        "width": width, "nz": nz, "channels": channels, "size": size, "batch_size": batch_size,
        "lr": lr, "seed": seed, "num_images": len(images),
    }
    order = BatchOrder(len(images), batch_size, seed)

    torch.manual_seed(seed)
    generator_net, discriminator = build_models(config)
    generator_net.apply(init_weights)
    discriminator.apply(init_weights)
    generator_net, discriminator = generator_net.to(dev), discriminator.to(dev)
    opt_g = torch.optim.Adam(generator_net.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(seed)
    parts = {"generator": generator_net, "discriminator": discriminator, "opt_g": opt_g, "opt_d": opt_d}
    clock = TrainingClock()
    step, curves = resume_training(out, KIND, config, parts, rng,
                                   {"generator": [], "discriminator": []}, clock)

    def snapshot() -> dict:
        return training_state(KIND, config, step, curves, parts, rng, clock)

    bce = nn.BCELoss()
    real_label = torch.ones(batch_size, device=dev)
    fake_label = torch.zeros(batch_size, device=dev)
    generator_net.train()
    discriminator.train()
    bar = tqdm(total=steps, initial=step, desc="dcgan", disable=not progress)
    while step < steps:
        real = to_unit_range(images[order.indices(step)]).to(dev)
        z = torch.randn(batch_size, nz, 1, 1, generator=rng).to(dev)
        fake = generator_net(z)

        loss_real = bce(discriminator(real), real_label)
        loss_d = loss_real + bce(discriminator(fake.detach()), fake_label)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        loss_g = bce(discriminator(fake), real_label)  # non-saturating generator loss
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

        step += 1
        curves["generator"].append((step, loss_g.item()))
        curves["discriminator"].append((step, loss_d.item()))
        bar.update(1)
        bar.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}")
        if step % save_every == 0 or step == steps:
            save_checkpoint(out, step, snapshot())
    bar.close()
    plot = plot_losses(curves, out / "loss.png", "DCGAN losses (BCE)")
    return {"step": step, "checkpoint": str(latest_checkpoint(out)), "loss_plot": str(plot)}


def load_generator(checkpoint: Path | str, device: torch.device) -> tuple[Generator, dict]:
    state = load_checkpoint(checkpoint, KIND)
    generator_net, _ = build_models(state["config"])
    generator_net.load_state_dict(state["generator"])
    return generator_net.to(device).eval(), state["config"]


@torch.no_grad()
def sample_dcgan(
    checkpoint: Path | str,
    output: Path | str,
    num: int,
    seed: int = 0,
    *,
    grid: Path | str | None = None,
    batch_size: int = 256,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Write ``num`` RGB PNGs 00001.png... (64x64 faces or 28x28 digits); optional 4x4 grid
    of the first 16. Batch b draws z from a generator seeded with (seed, b)."""
    dev = resolve_device(device)
    generator_net, config = load_generator(checkpoint, dev)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    first: list[torch.Tensor] = []
    for batch_index, start in enumerate(tqdm(range(0, num, batch_size), disable=not progress)):
        count = min(batch_size, num - start)
        rng = torch.Generator().manual_seed(seed * 1_000_003 + batch_index)
        z = torch.randn(count, config["nz"], 1, 1, generator=rng).to(dev)
        images = to_uint8(generator_net(z).clamp(-1, 1))
        write_pngs(images, output, first_index=start + 1)
        if sum(len(f) for f in first) < 16:
            first.append(images[:16])
    result = {"images": str(output), "count": num}
    if grid is not None and first:
        result["grid"] = str(save_grid(torch.cat(first)[:16], Path(grid), nrow=4, padding=2))
    return result

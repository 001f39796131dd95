"""The DDPM noise predictor: a small U-Net for 28x28 single-channel images (28 -> 14 -> 7)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    """At most 32 groups and at least 4 channels a group (when there are 4). One channel a
    group would be instance norm, which erases each image's mean brightness from the features:
    tiny widths then sample flat gray images."""
    groups = math.gcd(channels, 32)
    while groups > 1 and channels // groups < 4:
        groups //= 2
    return nn.GroupNorm(groups, channels)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps [N] -> [N, dim] (Transformer style)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb_dim: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb_dim, cout)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    """Single-head self-attention over pixels; used at the 7x7 level only."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2)[:, None], k.transpose(1, 2)[:, None], v.transpose(1, 2)[:, None]
        )
        return x + self.proj(out[:, 0].transpose(1, 2).reshape(n, c, h, w))


class Stage(nn.Module):
    """A residual block, optionally followed by self-attention."""

    def __init__(self, cin: int, cout: int, temb_dim: int, attention: bool):
        super().__init__()
        self.res = ResBlock(cin, cout, temb_dim)
        self.attn = SelfAttention(cout) if attention else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return self.attn(self.res(x, temb))


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """eps_theta(x_t, t): channel widths width * (1, 2, 2) at 28, 14 and 7 pixels,
    self-attention at 7x7 (unless ``attention`` is False), t given as the integer timestep
    1..T."""

    def __init__(self, width: int = 64, channels: int = 1, mults=(1, 2, 2), blocks: int = 2,
                 attention: bool = True):
        super().__init__()
        self.width = width
        temb_dim = 4 * width
        self.temb = nn.Sequential(
            nn.Linear(width, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim)
        )
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        last = len(mults) - 1

        self.down = nn.ModuleList()
        skips, ch = [width], width
        for level, mult in enumerate(mults):
            for _ in range(blocks):
                at_7x7 = attention and level == last
                self.down.append(Stage(ch, width * mult, temb_dim, attention=at_7x7))
                ch = width * mult
                skips.append(ch)
            if level != last:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)

        self.mid = nn.ModuleList(
            [Stage(ch, ch, temb_dim, attention), Stage(ch, ch, temb_dim, False)]
        )

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            for _ in range(blocks + 1):
                cin = ch + skips.pop()
                self.up.append(
                    Stage(cin, width * mult, temb_dim, attention=attention and level == last)
                )
                ch = width * mult
            if level != 0:
                self.up.append(Upsample(ch))

        self.head = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.temb(timestep_embedding(t, self.width))
        h = self.stem(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, temb) if isinstance(layer, Stage) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, temb)
        for layer in self.up:
            if isinstance(layer, Stage):
                h = layer(torch.cat([h, hs.pop()], dim=1), temb)
            else:
                h = layer(h)
        return self.head(h)

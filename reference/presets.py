"""Named settings for the reference models: ``gpu`` (the original recipe) and ``cpu`` (a
smaller recipe that reaches the course targets in hours on a 2-core CPU).

An option given on the command line overrides its preset value. A DDPM checkpoint records
the preset it was trained with, and sampling defaults to that preset's sampler: a ``cpu``
checkpoint samples its FID images with 50 deterministic DDIM steps, a ``gpu`` one with the
1,000 ancestral DDPM steps. The HW3 process grid always runs the 1,000 DDPM steps.
"""

from __future__ import annotations

from grader.errors import GraderError

DEFAULT = "gpu"

DDPM_TRAIN = {
    "gpu": {"steps": 30000, "width": 64, "blocks": 2, "attention": True, "batch_size": 128,
            "lr": 2e-4, "ema_decay": 0.9995, "save_every": 1000},
    "cpu": {"steps": 10000, "width": 16, "blocks": 1, "attention": True, "batch_size": 64,
            "lr": 1e-3, "ema_decay": 0.999, "save_every": 500},
}

# "ddpm": the T-step ancestral chain (ddim_steps and eta unused); "ddim": ddim_steps network
# calls, eta 0 deterministic.
DDPM_SAMPLE = {
    "gpu": {"sampler": "ddpm", "ddim_steps": 50, "eta": 0.0},
    "cpu": {"sampler": "ddim", "ddim_steps": 50, "eta": 0.0},
}

DCGAN_TRAIN = {
    "gpu": {"steps": 8000, "width": 64, "batch_size": 128, "lr": 2e-4, "save_every": 1000},
    "cpu": {"steps": 6000, "width": 32, "batch_size": 64, "lr": 2e-4, "save_every": 500},
}

NAMES = tuple(DDPM_TRAIN)


def _table(table: dict, name: str) -> dict:
    if name not in table:
        raise GraderError(f"unknown preset {name!r}; choose one of {', '.join(table)}")
    return table[name]


def resolve(table: dict, name: str | None, given: dict) -> dict:
    """The preset's settings with every option that was given (not None) in place of its
    value; ``name`` None means the default preset."""
    settings = dict(_table(table, name or DEFAULT))
    settings.update({key: value for key, value in given.items() if value is not None})
    return settings


def ddpm_sampling(checkpoint_preset: str | None, name: str | None, given: dict) -> dict:
    """Sampler settings: the named preset's, else the checkpoint's own preset's, else the
    default's; options given (not None) win."""
    chosen = name or (checkpoint_preset if checkpoint_preset in DDPM_SAMPLE else None)
    return resolve(DDPM_SAMPLE, chosen, given)

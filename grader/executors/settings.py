"""Executor options: an `[executor]` section of a TOML config file, overridden by the CLI."""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path
from typing import Literal

import click
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from grader.errors import GraderError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ExecutorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "slurm"] = "local"
    # local
    gpus: list[int] = []  # one worker per listed GPU
    # slurm
    partition: str | None = None
    time: str = "60"  # Slurm time: minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]
    gpus_per_task: int = 0
    cpus_per_task: int = 1
    mem: str | None = None  # Slurm --mem, e.g. 16G
    max_concurrent: int | None = None  # array tasks running at once (%N)
    sbatch_args: list[str] = []  # extra sbatch flags, e.g. ["--qos=high", "--account=cs101"]
    container_image: str | None = None  # pyxis/enroot image the tasks run in
    python: str | None = None  # how a task starts Python (default: this interpreter)
    retries: int = 1  # resubmissions of a task the scheduler stopped (not for timeouts/OOM)
    poll_seconds: float = 1.0

    @field_validator("gpus_per_task", "cpus_per_task", "retries")
    @classmethod
    def _not_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be 0 or more")
        return v

    @field_validator("max_concurrent")
    @classmethod
    def _positive(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError("must be 1 or more")
        return v

    @field_validator("time")
    @classmethod
    def _time(cls, v: str) -> str:
        time_minutes(str(v))
        return str(v)

    @property
    def time_minutes(self) -> int:
        return time_minutes(self.time)


def time_minutes(text: str) -> int:
    """Slurm's time formats in whole minutes, rounded up (Slurm's own granularity)."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a Slurm time (minutes, MM:SS, HH:MM:SS or D-HH:MM:SS)")
    days, a, b, c = (int(x) if x else None for x in m.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # HH:MM:SS
        seconds = a * 3600 + b * 60 + c
    elif b is not None:  # MM:SS
        seconds = a * 60 + b
    else:
        seconds = a * 60
    if seconds <= 0:
        raise ValueError("the time limit must be positive")
    return -(-seconds // 60)


def load_config(path: Path) -> dict:
    """The `[executor]` section of a TOML file (keys may use - or _)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GraderError(f"--config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise GraderError(f"--config {path}: not valid TOML: {exc}") from None
    section = data.get("executor", {})
    if not isinstance(section, dict):
        raise GraderError(f"--config {path}: [executor] must be a table")
    return {k.replace("-", "_"): v for k, v in section.items()}


def resolve_settings(config: Path | None, cli: dict) -> ExecutorSettings:
    """File values, then every CLI value that was given (not None / not empty)."""
    values = load_config(config) if config else {}
    values.update({k: v for k, v in cli.items() if v is not None and v != ()})
    try:
        return ExecutorSettings(**values)
    except ValidationError as exc:
        where = f" (from --config {config} or the command line)" if config else ""
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'executor'}: {e['msg']}" for e in exc.errors()
        )
        raise GraderError(f"executor options{where}: {problems}") from None


def _gpu_list(ctx, param, value):
    if value is None:
        return None
    try:
        return [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter("a comma-separated list of GPU indices, e.g. 0,1") from None


OPTIONS = [
    click.option(
        "--executor",
        "kind",
        type=click.Choice(["local", "slurm"]),
        default=None,
        help="Where students are graded: threads here (local, default) or Slurm tasks.",
    ),
    click.option(
        "--config",
        "executor_config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="TOML file with an [executor] section; command-line options override it.",
    ),
    click.option(
        "--gpus",
        default=None,
        callback=_gpu_list,
        metavar="0,1",
        help="local: one worker per listed GPU.",
    ),
    click.option("--partition", default=None, help="slurm: partition to submit to."),
    click.option(
        "--time", default=None, help="slurm: time limit per student (minutes or HH:MM:SS)."
    ),
    click.option("--gpus-per-task", type=int, default=None, help="slurm: GPUs per student task."),
    click.option("--cpus-per-task", type=int, default=None, help="slurm: CPUs per student task."),
    click.option("--mem", default=None, help="slurm: memory per student task (e.g. 16G)."),
    click.option(
        "--max-concurrent", type=int, default=None, help="slurm: array tasks running at once."
    ),
    click.option(
        "--sbatch-arg",
        "sbatch_args",
        multiple=True,
        metavar="FLAG",
        help="slurm: extra sbatch flag, e.g. --sbatch-arg=--qos=high (repeatable).",
    ),
    click.option(
        "--container-image",
        default=None,
        help="slurm: run tasks in this image via pyxis/enroot (--container-image).",
    ),
    click.option(
        "--retries",
        type=int,
        default=None,
        help="slurm: resubmissions of a task the scheduler stopped (default 1).",
    ),
]
NAMES = [
    "kind",
    "executor_config",
    "gpus",
    "partition",
    "time",
    "gpus_per_task",
    "cpus_per_task",
    "mem",
    "max_concurrent",
    "sbatch_args",
    "container_image",
    "retries",
]


def executor_options(f):
    """Adds the executor options; the command receives one `executor_settings` argument."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        raw = {name: kwargs.pop(name) for name in NAMES}
        config = raw.pop("executor_config")
        raw["sbatch_args"] = list(raw["sbatch_args"]) or None
        kwargs["executor_settings"] = resolve_settings(config, raw)
        return f(*args, **kwargs)

    for option in reversed(OPTIONS):
        wrapper = option(wrapper)
    return wrapper

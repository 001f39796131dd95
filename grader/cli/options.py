"""Options shared by the commands that grade (check, run, baseline)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from grader.errors import GraderError
from grader.metrics.kinds import handler_for as metric_handler


def parse_stats(values: tuple[str, ...]) -> dict[str, Path]:
    """--stats fid=ref.npz (or a bare path when the rubric has exactly one metric: resolved later)."""
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = "", value
        out[name] = Path(path)
    return out


def stats_for_rubric(values: tuple[str, ...], rubric) -> dict[str, Path]:
    stats = parse_stats(values)
    overridable = [n for n, m in rubric.metrics.items() if metric_handler(m).override_field]
    if "" in stats:
        if len(overridable) != 1:
            raise GraderError("--stats PATH without a name needs a rubric with exactly one metric that "
                              "reads reference statistics; use --stats NAME=PATH")
        stats[overridable[0]] = stats.pop("")
    for name, path in stats.items():
        if name not in overridable:
            raise GraderError(f"--stats {name}=...: the rubric has no metric {name!r} that reads reference "
                              f"statistics (it has: {', '.join(overridable) or 'none'})")
        if not path.is_file():
            raise GraderError(f"--stats {name}={path}: file not found")
    return stats


def _set_ta_dir(ctx, param, value):
    """--ta-dir reaches load_rubric through the environment (as $GRADER_TA_DIR would)."""
    if value is not None:
        from grader.rubric_catalog import TA_DIR_ENV

        os.environ[TA_DIR_ENV] = str(Path(value).resolve())
    return value


TA_DIR_OPTION = click.option(
    "--ta-dir", type=click.Path(file_okay=False), default=None, expose_value=False, callback=_set_ta_dir,
    help="Folder of the rubric's TA files (statistics, weights, labels) when they are not beside it; "
         "for a shipped rubric (--rubric hw3) the default is $GRADER_TA_DIR, else the current folder.")


def skipped_metrics(values: tuple[str, ...], rubric) -> frozenset[str]:
    """--skip-metric NAME ...: names the rubric has (a typo is a usage error, not a silent no-op)."""
    unknown = sorted(set(values) - set(rubric.metrics))
    if unknown:
        raise GraderError(f"--skip-metric {', '.join(unknown)}: the rubric has no such metric "
                          f"(it has: {', '.join(rubric.metrics) or 'none'})")
    return frozenset(values)


def grading_options(f):
    for decorator in reversed([
        click.option("--rubric", "rubric_path", required=True, type=click.Path(dir_okay=False),
                     help="Rubric YAML, or a shipped rubric's name (grader rubric list)."),
        TA_DIR_OPTION,
        click.option("--stats", "stats", multiple=True, metavar="NAME=PATH",
                     help="Reference statistics for a metric, overriding the rubric's path."),
        click.option("--inception-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="FID Inception weights (else $GRADER_INCEPTION_WEIGHTS, else the torch hub cache)."),
        click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present)."),
        click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Feature cache folder (default $GRADER_CACHE_DIR or ~/.cache/grader)."),
        click.option("--no-metrics", is_flag=True,
                     help="Format checks only; compute none of the rubric's metrics."),
        click.option("--skip-metric", "skip_metrics", multiple=True, metavar="NAME",
                     help="Do not compute this metric (repeatable); lines scored on it are incomplete."),
    ]):
        f = decorator(f)
    return f

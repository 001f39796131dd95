"""`grader fid IMAGES --stats REF` and `grader stats SOURCE -o REF`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from grader.errors import GraderError
from grader.metrics.inception import BACKEND_NAMES  # no torch import: the CLI starts fast

FEATURE_ORIGIN = {"hit": "from the feature cache", "miss": "computed, now cached",
                  "off": "computed (cache off)"}


def engine_options(command):
    """Options shared by every command that runs the FID Inception."""
    options = [
        click.option("--backend", type=click.Choice(BACKEND_NAMES), default=BACKEND_NAMES[0],
                     show_default=True, help="Course tool whose InceptionV3 is used."),
        click.option("--device", default=None, help="torch device [default: cuda if present]"),
        click.option("--batch-size", type=click.IntRange(min=1), default=None,
                     help="Images per forward pass [default: 16 per thread on a CPU, 500 on a "
                     "GPU]."),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="CPU: forward threads, each one core, decoding between batches "
                     "[default: $GRADER_FID_THREADS or the CPUs]."),
        click.option("--workers", type=click.IntRange(min=0), default=None,
                     help="Decoding processes [default: none on a CPU; CPUs - 1, at most 8, "
                     "feeding a GPU]."),
        click.option("--inception-weights", type=click.Path(dir_okay=False, path_type=Path),
                     default=None, help="FID Inception weights file (.pth)."),
        click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None, help="Feature cache [default: $GRADER_CACHE_DIR or "
                     "~/.cache/grader]."),
        click.option("--no-cache", is_flag=True, help="Neither read nor write cached features."),
        click.option("--fold-batchnorm/--no-fold-batchnorm", default=None,
                     help="Fold BatchNorm into the convolutions: ~8% faster on a CPU, FID equal "
                     "to ~1e-6 relative [default: on; off with --no-fold-batchnorm or "
                     "GRADER_FID_FOLD_BATCHNORM=0 for the course tool's network unchanged]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _engine(backend, device, batch_size, threads, workers, inception_weights, cache_dir,
            no_cache, fold_batchnorm, progress=True):
    from grader.metrics import FidEngine

    return FidEngine(backend, weights=inception_weights, device=device, cache_dir=cache_dir,
                     batch_size=batch_size, threads=threads, workers=workers, progress=progress,
                     use_cache=not no_cache, fold_batchnorm=fold_batchnorm)


def _unreadable(exc) -> None:
    click.secho(f"error: {exc}", fg="red", err=True)
    sys.exit(1)  # a problem of the image set (a submission), not of the configuration


@click.command("fid")
@click.argument("images", type=click.Path(exists=True, path_type=Path))
@click.option("--stats", "stats", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Reference statistics (.npz with mu/sigma, or a pickled dict).")
@engine_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def fid_command(images, stats, as_json, **engine_kwargs):
    """FID of the images in IMAGES (a folder or zip) against reference statistics."""
    from grader.metrics import UnreadableImageError, list_images

    refs = list_images(images)
    engine = _engine(**engine_kwargs)
    try:
        result = engine.fid(refs, stats)
    except UnreadableImageError as exc:
        _unreadable(exc)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    p = result.provenance
    click.echo(f"FID {result.fid:.6f}  ({result.n:,} images)")
    click.echo(f"  backend   {p['backend']} {p['backend_version']}")
    click.echo(f"  weights   {p['weights']}  sha256 {p['weights_sha256']}")
    click.echo(f"  stats     {p['stats']}  sha256 {p['stats_sha256']}")
    click.echo(f"  device    {p['device']}  ({p['precision']}, model {p['model']})")
    click.echo(f"  resize    {p['resize']}")
    click.echo(f"  features  {FEATURE_ORIGIN[p['feature_cache']]}")
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@click.command("stats")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the statistics (.npz with float64 mu, sigma).")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="MNIST split, when SOURCE is a folder of MNIST IDX files.")
@click.option("--limit", type=click.IntRange(min=2), default=None,
              help="Use only the first N images (in name order, or MNIST order).")
@click.option("--features", "keep_features", is_flag=True,
              help="Also keep the images' features (key 'features', float32) for metrics that "
              "compare samples (kid, precision_recall); the course tools still read mu/sigma.")
@click.option("--max-features", type=click.IntRange(min=2), default=None,
              help="With --features: keep at most N rows, a fixed random subset [default: 10,000, "
              "82 MB].")
@engine_options
def stats_command(source, output, split, limit, keep_features, max_features, **engine_kwargs):
    """Reference statistics of SOURCE: a folder or zip of images, or MNIST IDX files."""
    from grader.datasets import is_mnist_folder, load_mnist
    from grader.image_files import sort_key
    from grader.metrics import UnreadableImageError, gray_to_rgb, list_images, save_stats
    from grader.metrics.fid import small_n_warning
    from grader.metrics.frechet import feature_statistics
    from grader.metrics.reference_features import MAX_FEATURES, keep_rows

    engine = _engine(**engine_kwargs)
    try:
        if source.is_dir() and is_mnist_folder(source):
            digits, _labels = load_mnist(source, split)
            pixels = gray_to_rgb(digits[:limit])
            described = f"MNIST {split} digits"
            features = engine.array_features(pixels)
        else:
            refs = sorted(list_images(source)[:limit], key=sort_key)  # name order, as the tools
            described = "images"
            features = engine.features(refs)
    except UnreadableImageError as exc:
        _unreadable(exc)
    n = len(features)
    if n < 2:
        raise GraderError(f"statistics need at least 2 images; {source} has {n}")
    mu, sigma = feature_statistics(features)
    kept = keep_rows(features, max_features or MAX_FEATURES) if keep_features else None
    save_stats(output, mu, sigma, features=kept)
    extra = f", and features of {len(kept):,} of them" if kept is not None else ""
    click.echo(f"wrote {output}: mu/sigma of {n:,} {described}{extra} ({engine.backend.name} "
               f"{engine.backend_version}, weights sha256 {engine.weights_sha256[:12]}, "
               f"device {engine.device})")
    if note := small_n_warning(n):
        click.secho(f"warning: {note}", fg="yellow", err=True)


COMMANDS = [fid_command, stats_command]

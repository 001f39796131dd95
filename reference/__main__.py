"""``python -m reference``: train, sample and evaluate the reference models.

    python -m reference ddpm train --data MNIST_DIR --out CKPT_DIR [--preset cpu|gpu] [--steps N]
    python -m reference ddpm sample --checkpoint CKPT --output DIR --num N --seed S [--grid P]
    python -m reference ddpm hw3-submission --checkpoint CKPT --out DIR --student-id ID
    python -m reference dcgan train --data FACES.zip|FOLDER|MNIST_DIR --out CKPT_DIR [--preset cpu]
    python -m reference dcgan sample --checkpoint CKPT --output DIR --num N --seed S [--grid P]
    python -m reference classifier train --data MNIST_DIR --out CKPT_DIR [--export W.pt]
    python -m reference classifier eval --data MNIST_DIR [--weights W.pt]
    python -m reference real-pngs --data MNIST_DIR|FACES.zip --output DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import torch

from grader.errors import GraderError
from reference.presets import DCGAN_TRAIN, DDPM_TRAIN, DEFAULT, NAMES, resolve

PATH = click.Path(path_type=Path)
EXISTING = click.Path(exists=True, path_type=Path)


def _device_option(f):
    return click.option(
        "--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N"
    )(f)


def _quiet_option(f):
    return click.option("--quiet", is_flag=True, help="no progress bars")(f)


def _fast_gpu_training(device: str) -> None:
    """TF32 matmuls/convolutions for training speed on CUDA (this process only)."""
    if device != "cpu" and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def _print(result: dict) -> None:
    for key, value in result.items():
        click.echo(f"{key}: {value}")


class ReferenceGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GraderError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=ReferenceGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Reference DDPM, DCGAN and MNIST digit classifier: train, sample, evaluate."""


@main.group()
def ddpm() -> None:
    """DDPM on MNIST 28x28 (linear betas 1e-4..0.02, T=1000)."""


def _preset_option(f):
    return click.option(
        "--preset", type=click.Choice(NAMES), default=None,
        help=f"named settings (default {DEFAULT}); options given override them",
    )(f)


def _sampler_options(f):
    f = click.option("--eta", type=click.FloatRange(0, 1), default=None,
                     help="DDIM noise: 0 deterministic (preset: 0)")(f)
    f = click.option("--ddim-steps", type=click.IntRange(1), default=None,
                     help="DDIM network calls (preset: 50)")(f)
    return click.option(
        "--sampler", type=click.Choice(["ddpm", "ddim"]), default=None,
        help="ddpm: T ancestral steps; ddim: --ddim-steps steps [default: the preset's, else "
             "the checkpoint's preset's]",
    )(f)


@ddpm.command("train")
@click.option("--data", type=EXISTING, required=True, help="MNIST IDX folder")
@click.option("--out", type=PATH, required=True, help="checkpoint folder (resumes from it)")
@_preset_option
@click.option("--steps", type=int, default=None, help="total optimizer steps [gpu: 30000]")
@click.option("--width", type=int, default=None, help="U-Net base channels [gpu: 64]")
@click.option("--blocks", type=int, default=None, help="residual blocks per level [gpu: 2]")
@click.option("--attention/--no-attention", default=None,
              help="self-attention at 7x7 [gpu: on]")
@click.option("--batch-size", type=int, default=None, help="[gpu: 128]")
@click.option("--lr", type=float, default=None, help="[gpu: 2e-4]")
@click.option("--ema-decay", type=float, default=None, help="[gpu: 0.9995]")
@click.option("--timesteps", default=1000, show_default=True, help="diffusion steps T")
@click.option("--seed", default=0, show_default=True)
@click.option("--save-every", type=int, default=None, help="[gpu: 1000]")
@click.option("--limit", type=int, default=None, help="use only the first N training images")
@_device_option
@_quiet_option
def ddpm_train(data, out, preset, timesteps, seed, limit, device, quiet, **given):
    """Train the DDPM (resumes from the latest checkpoint in --out)."""
    from reference.ddpm import train_ddpm

    settings = resolve(DDPM_TRAIN, preset, given)
    _fast_gpu_training(device)
    _print(train_ddpm(
        data, out, **settings, timesteps=timesteps, seed=seed, device=device, limit=limit,
        preset=preset or DEFAULT, progress=not quiet,
    ))


@ddpm.command("sample")
@click.option("--checkpoint", type=EXISTING, required=True, help="checkpoint file or folder")
@click.option("--output", type=PATH, required=True, help="folder for 00001.png ...")
@click.option("--num", default=10000, show_default=True, help="number of images")
@click.option("--seed", default=0, show_default=True)
@click.option("--grid", type=PATH, default=None,
              help="also write the 8x8 process grid PNG (always T ancestral steps)")
@click.option("--grid-padding", type=click.IntRange(0), default=2, show_default=True)
@click.option("--batch-size", default=500, show_default=True)
@_preset_option
@_sampler_options
@_device_option
@_quiet_option
def ddpm_sample(checkpoint, output, num, seed, grid, grid_padding, batch_size, preset, sampler,
                ddim_steps, eta, device, quiet):
    """Write NUM RGB 28x28 PNGs (and optionally the process grid)."""
    from reference.ddpm import sample_ddpm

    _print(sample_ddpm(
        checkpoint, output, num, seed, grid=grid, grid_padding=grid_padding,
        batch_size=batch_size, sampler=sampler, ddim_steps=ddim_steps, eta=eta, preset=preset,
        device=device, progress=not quiet,
    ))


@ddpm.command("hw3-submission")
@click.option("--checkpoint", type=EXISTING, required=True)
@click.option("--out", type=PATH, required=True)
@click.option("--student-id", required=True)
@click.option("--num", default=10000, show_default=True)
@click.option("--seed", default=0, show_default=True)
@_preset_option
@_sampler_options
@_device_option
@_quiet_option
def ddpm_hw3_submission(checkpoint, out, student_id, num, seed, preset, sampler, ddim_steps, eta,
                        device, quiet):
    """Write a full HW3 submission: <id>.zip, <id>_process.png, <id>_source.zip."""
    from reference.baseline import write_hw3_submission

    _print(write_hw3_submission(
        checkpoint, out, student_id, num, seed, sampler=sampler, ddim_steps=ddim_steps, eta=eta,
        preset=preset, device=device, progress=not quiet,
    ))


@main.group()
def dcgan() -> None:
    """DCGAN: 64x64 RGB faces (zip or folder) or 28x28 MNIST digits, nn.BCELoss."""


@dcgan.command("train")
@click.option("--data", type=EXISTING, required=True, help="faces zip/folder or MNIST folder")
@click.option("--out", type=PATH, required=True, help="checkpoint folder (resumes from it)")
@_preset_option
@click.option("--steps", type=int, default=None, help="[gpu: 8000]")
@click.option("--width", type=int, default=None, help="ngf = ndf [gpu: 64]")
@click.option("--batch-size", type=int, default=None, help="[gpu: 128]")
@click.option("--lr", type=float, default=None, help="[gpu: 2e-4]")
@click.option("--seed", default=0, show_default=True)
@click.option("--save-every", type=int, default=None, help="[gpu: 1000]")
@click.option("--limit", type=int, default=None, help="use only the first N training images")
@_device_option
@_quiet_option
def dcgan_train(data, out, preset, seed, limit, device, quiet, **given):
    """Train the DCGAN; writes loss.png with both losses."""
    from reference.dcgan import train_dcgan

    settings = resolve(DCGAN_TRAIN, preset, given)
    _fast_gpu_training(device)
    _print(train_dcgan(
        data, out, **settings, seed=seed, device=device, limit=limit, progress=not quiet,
    ))


@dcgan.command("sample")
@click.option("--checkpoint", type=EXISTING, required=True)
@click.option("--output", type=PATH, required=True)
@click.option("--num", default=1024, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--grid", type=PATH, default=None, help="also write a 4x4 grid of the first 16")
@click.option("--batch-size", default=256, show_default=True)
@_device_option
@_quiet_option
def dcgan_sample(checkpoint, output, num, seed, grid, batch_size, device, quiet):
    """Write NUM RGB PNGs 00001.png ..."""
    from reference.dcgan import sample_dcgan

    _print(sample_dcgan(
        checkpoint, output, num, seed, grid=grid, batch_size=batch_size, device=device,
        progress=not quiet,
    ))


@main.group()
def classifier() -> None:
    """Small MNIST digit CNN (the committed weights/mnist_classifier.pt)."""


@classifier.command("train")
@click.option("--data", type=EXISTING, required=True, help="MNIST IDX folder")
@click.option("--out", type=PATH, required=True, help="checkpoint folder (resumes from it)")
@click.option("--epochs", default=3, show_default=True)
@click.option("--batch-size", default=128, show_default=True)
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--export", type=PATH, default=None, help="write the final state_dict here")
@_device_option
@_quiet_option
def classifier_train(data, out, epochs, batch_size, lr, seed, export, device, quiet):
    """Train the digit classifier and report its MNIST test accuracy."""
    from reference.classifier import train_classifier

    _print(train_classifier(
        data, out, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
        export=export, progress=not quiet,
    ))


@classifier.command("eval")
@click.option("--data", type=EXISTING, required=True, help="MNIST IDX folder")
@click.option("--weights", type=EXISTING, default=None, help="default: the committed weights")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
def classifier_eval(data, weights, split):
    """Accuracy on the real MNIST digits of a split."""
    from reference.classifier import evaluate_accuracy, load_digit_classifier

    accuracy = evaluate_accuracy(load_digit_classifier(weights), data, split)
    click.echo(f"{split} accuracy: {accuracy:.4f}")


@main.command("real-pngs")
@click.option("--data", type=EXISTING, required=True, help="MNIST folder, faces zip or folder")
@click.option("--output", type=PATH, required=True)
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="MNIST split")
@click.option("--limit", type=int, default=None, help="only the first N images")
def real_pngs(data, output, split, limit):
    """Write real images as RGB PNGs 00001.png ... for FID reference statistics: MNIST
    digits at 28x28, faces center-cropped to 64x64 (as the DCGAN trains on them)."""
    from grader.datasets import is_mnist_folder
    from reference.data import load_faces, load_mnist_digits
    from reference.images import write_pngs

    if data.is_dir() and is_mnist_folder(data):
        images = load_mnist_digits(data, split)[0][:limit].expand(-1, 3, -1, -1)
    else:
        images = load_faces(data, 64, limit)
    paths = write_pngs(images, output)
    click.echo(f"wrote {len(paths)} PNGs to {output}")


if __name__ == "__main__":
    main()

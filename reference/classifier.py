"""A small MNIST digit CNN: trained here on CPU, committed as weights/mnist_classifier.pt.

Grid checks and class-coverage metrics call ``classify_digits`` on generated digits.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from grader.errors import GraderError
from reference.data import load_mnist_digits
from reference.plots import plot_losses
from reference.training import (
    BatchOrder,
    resolve_device,
    resume_training,
    save_checkpoint,
    training_state,
)

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "mnist_classifier.pt"
KIND = "classifier"


def _conv(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class DigitCNN(nn.Module):
    """28x28 gray digit -> 10 logits. Input: float [N,1,28,28] in [-1,1].

    Only one cheap 5x5 conv runs at full resolution, so training a few epochs on two CPU
    cores takes minutes; 34k parameters (144 kB as a float32 state_dict).
    """

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv(1, w, 5), nn.MaxPool2d(2),  # 14x14
            _conv(w, 2 * w), _conv(2 * w, 2 * w), nn.MaxPool2d(2),  # 7x7
            _conv(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(4 * w, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def _inputs(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N,1,28,28] -> float [-1,1]."""
    return images.float().div(127.5).sub(1.0)


def learning_rate(step: int, steps_per_epoch: int, base: float) -> float:
    """Halved every epoch; depends on the step alone, so resuming changes nothing."""
    return base * 0.5 ** (step // steps_per_epoch)


def train_classifier(
    data: Path | str,
    out: Path | str,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 2e-3,
    width: int = 16,
    seed: int = 0,
    device: str = "auto",
    save_every: int = 500,
    export: Path | str | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume from the latest checkpoint in ``out``) and return a summary."""
    out = Path(out)
    dev = resolve_device(device)
    images, labels = load_mnist_digits(data, "train")
    order = BatchOrder(len(images), batch_size, seed)
    total_steps = epochs * order.steps_per_epoch
    config = {"width": width, "batch_size": batch_size, "lr": lr, "seed": seed}

    torch.manual_seed(seed)
    model = DigitCNN(width).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    parts = {"model": model, "optimizer": optimizer}
    step, losses = resume_training(out, KIND, config, parts, generator, [])

    def snapshot() -> dict:
        return training_state(KIND, config, step, losses, parts, generator)

    model.train()
    bar = tqdm(total=total_steps, initial=step, desc="classifier", disable=not progress)
    while step < total_steps:
        idx = order.indices(step)
        x, y = _inputs(images[idx]).to(dev), labels[idx].to(dev)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, order.steps_per_epoch, lr)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        losses.append((step, loss.item()))
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % save_every == 0 or step == total_steps:
            save_checkpoint(out, step, snapshot())
    bar.close()
    plot_losses({"cross-entropy": losses}, out / "loss.png", "MNIST digit classifier")
    model.eval()
    accuracy = evaluate_accuracy(model, data)
    summary = {"step": step, "test_accuracy": accuracy, "loss_plot": str(out / "loss.png")}
    if export is not None:
        summary["weights"] = str(export_weights(model, Path(export)))
    return summary


def export_weights(model: nn.Module, path: Path) -> Path:
    """Save a CPU float32 state_dict (the committed weights format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
    return path


def load_digit_classifier(
    weights: Path | str | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """The digit CNN in eval mode, from a state_dict file or a classifier checkpoint."""
    path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    if not path.exists():
        raise GraderError(f"digit classifier weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    width = 16
    if isinstance(state, dict) and "model" in state and "config" in state:
        width, state = state["config"]["width"], state["model"]
    model = DigitCNN(width)
    model.load_state_dict(state)
    return model.to(device).eval()


@functools.lru_cache(maxsize=1)
def _default_classifier() -> nn.Module:
    return load_digit_classifier()


@torch.no_grad()
def classify_digits(
    images: np.ndarray | torch.Tensor, model: nn.Module | None = None, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """(labels int64 [N], confidences float32 [N] = max softmax) for uint8 [N,28,28] digits.

    RGB input [N,28,28,3] is averaged to gray first.
    """
    images = torch.tensor(np.asarray(images))  # a copy: the input may be read-only
    if images.ndim == 4 and images.shape[-1] == 3:
        images = images.float().mean(dim=-1).round().to(torch.uint8)
    if images.ndim != 3 or tuple(images.shape[1:]) != (28, 28):
        raise ValueError(f"expected uint8 digits [N,28,28], got shape {tuple(images.shape)}")
    model = model if model is not None else _default_classifier()
    device = next(model.parameters()).device
    labels, confidences = [], []
    for start in range(0, len(images), batch_size):
        batch = _inputs(images[start : start + batch_size].unsqueeze(1)).to(device)
        probs = model(batch).softmax(dim=1)
        conf, label = probs.max(dim=1)
        labels.append(label.cpu())
        confidences.append(conf.cpu())
    if not labels:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    return (
        torch.cat(labels).numpy().astype(np.int64),
        torch.cat(confidences).numpy().astype(np.float32),
    )


def evaluate_accuracy(model: nn.Module, data: Path | str, split: str = "test") -> float:
    """Fraction of the real MNIST split classified correctly."""
    images, labels = load_mnist_digits(data, split)
    predicted, _ = classify_digits(images[:, 0].numpy(), model)
    return float((predicted == labels.numpy()).mean())

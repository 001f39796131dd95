"""Re-create weights/mnist_classifier.pt: train the digit CNN on MNIST train on CPU.

    python reference/weights/make_mnist_classifier.py --data ../shared/data/mnist

is the same as ``python -m reference classifier train`` with the arguments below. Prints the
test accuracy and the sha256 that reference/README.md records.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from reference.classifier import train_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="MNIST IDX folder")
    parser.add_argument("--out", default=str(REPO / "reference" / "checkpoints" / "classifier"))
    parser.add_argument("--export", default=str(Path(__file__).with_name("mnist_classifier.pt")))
    args = parser.parse_args()
    torch.set_num_threads(2)
    summary = train_classifier(
        args.data, args.out, epochs=4, batch_size=128, lr=2e-3, width=16, seed=0,
        device="cpu", export=args.export,
    )
    digest = hashlib.sha256(Path(args.export).read_bytes()).hexdigest()
    print(f"test accuracy {summary['test_accuracy']:.4f}")
    print(f"{args.export}: {Path(args.export).stat().st_size} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()

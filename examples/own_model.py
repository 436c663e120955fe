"""Your own model and data set, trained by sparsgd's loops in any of the three modes.

    python examples/own_model.py --workers 2                       # gTop-k S-SGD, 2 processes
    python examples/own_model.py --mode sim --workers 4            # simulated parameter server
    python examples/own_model.py --mode async --workers 2          # real server + 2 workers

The model (``DigitNet``) and the data set (``DigitsDataset``, scikit-learn's 8x8 digits) are
defined here; the only sparsgd line is the marked ``sparsgd.train`` call. The model is passed
as its class, a zero-argument callable defined at module level, so every worker process can
build the same network from the seed; the Datasets yield ``(x, y)`` pairs with integer labels.
The run folder (``--out``) holds config.json, log.jsonl and summary.json as for ``sparsgd train``.
"""

from __future__ import annotations

import argparse
import logging

import torch
from sklearn.datasets import load_digits
from torch import Tensor, nn
from torch.utils.data import Dataset

import sparsgd
from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.sync.config import SyncConfig

logger = logging.getLogger("own_model")
TEST_EVERY = 5  # every 5th image goes to the test set: 360 test, 1437 train


class DigitsDataset(Dataset):
    """8x8 digit images scaled to [0, 1] as (64,) float vectors, with their labels 0..9."""

    def __init__(self, train: bool) -> None:
        images, labels = load_digits(return_X_y=True)  # (1797, 64) pixels 0..16, (1797,)
        keep = [i for i in range(len(labels)) if (i % TEST_EVERY == 0) != train]
        self.x = torch.tensor(images[keep], dtype=torch.float32) / 16.0
        self.y = torch.tensor(labels[keep], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.x[i], self.y[i]


class DigitNet(nn.Module):
    """64 -> 32 -> 10 with a ReLU: small enough to train in seconds on a CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)  # (B, 10) logits


def config(args: argparse.Namespace) -> SyncConfig | AsyncConfig:
    if args.mode == "sync":
        return SyncConfig(
            out=args.out,
            workers=args.workers,
            method="gtopk",
            density=0.05,
            lr=0.1,
            batch_size=32,
            steps=args.steps,
            progress=False,
        )
    return AsyncConfig(mode=args.mode, workers=args.workers, steps=args.steps, lr=0.1, density=0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("sync", "sim", "async"), default="sync")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", default="runs/own-model")
    parser.add_argument("--overwrite", action="store_true", help="reuse a used --out folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = sparsgd.train(  # sparsgd
        config(args),
        model=DigitNet,
        train_set=DigitsDataset(train=True),
        test_set=DigitsDataset(train=False),
        out=args.out,
        overwrite=args.overwrite,
    )
    logger.info(
        "%s, %d workers, %d steps: test accuracy %.2f%%, %d bytes sent by worker 0; folder %s",
        args.mode,
        args.workers,
        summary["steps"],
        100 * summary["final_test_accuracy"],
        summary["bytes_sent_per_rank"][0],
        args.out,
    )


if __name__ == "__main__":
    main()

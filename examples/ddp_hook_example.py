"""Your own DDP training script, with gTop-k (or Top-k) S-SGD as its communication hook.

Under torchrun (one machine or several):

    torchrun --nproc-per-node 2 examples/ddp_hook_example.py --method gtopk --density 0.01

Without torchrun the script starts ``--workers`` processes itself (plain
``torch.multiprocessing`` + DDP on gloo):

    python examples/ddp_hook_example.py --workers 2 --steps 60

It trains a small MLP on a seeded synthetic classification problem, saves a checkpoint that
holds the model, the optimizer AND the hook's error-feedback residuals, loads it back into a
fresh model / optimizer / hook state, and checks that both continue identically.
The only sparsgd lines are the three marked ``# sparsgd``.
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import os
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from sparsgd.sync.ddp_hook import (  # sparsgd
    HOOK_METHODS,
    HOOK_SCOPES,
    SparseHookState,
    sparse_allreduce_hook,
)

logger = logging.getLogger("ddp_hook_example")
FEATURES, CLASSES, BATCH = 20, 4, 32


def make_model() -> nn.Module:
    torch.manual_seed(0)  # the same initial model on every rank
    return nn.Sequential(nn.Linear(FEATURES, 64), nn.ReLU(), nn.Linear(64, CLASSES))


def batch(step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch of a fixed linear teacher: each rank draws its own samples."""
    teacher = torch.randn(FEATURES, CLASSES, generator=torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(10_000 * rank + step)
    x = torch.randn(BATCH, FEATURES, generator=gen)
    return x, (x @ teacher).argmax(dim=1)


def build(
    args: argparse.Namespace,
) -> tuple[nn.Module, DDP, torch.optim.Optimizer, SparseHookState]:
    model = make_model()
    ddp = DDP(model)
    state = SparseHookState(  # sparsgd
        model, args.method, args.density, scope=args.scope, start_iter=args.start_iter
    )
    ddp.register_comm_hook(state, sparse_allreduce_hook)  # sparsgd
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    return model, ddp, optimizer, state


def train(ddp: DDP, optimizer: torch.optim.Optimizer, steps: range, rank: int) -> float:
    loss = torch.tensor(0.0)
    for step in steps:
        x, y = batch(step, rank)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(ddp(x), y)
        loss.backward()  # the hook runs here, once per DDP bucket
        optimizer.step()
        if rank == 0 and step % 20 == 0:
            logger.info("step %d  loss %.4f", step, loss.item())
    return loss.item()


def dense_bytes(model: nn.Module, steps: int) -> int:
    """What each rank sends in ``steps`` ring all-reduces of the float32 gradient."""
    world, d = dist.get_world_size(), sum(p.numel() for p in model.parameters())
    return steps * 2 * (world - 1) * math.ceil(d / world) * 4


def worker(rank: int, args: argparse.Namespace) -> None:
    if args.spawned:
        dist.init_process_group("gloo", init_method=args.init, rank=rank, world_size=args.workers)
    else:
        dist.init_process_group("gloo")  # torchrun's RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
        rank = dist.get_rank()
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format="%(message)s")
    half = args.steps // 2
    model, ddp, optimizer, state = build(args)
    train(ddp, optimizer, range(half), rank)
    saved = io.BytesIO()  # a file on disk in a real script
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "hook": state.state_dict(),  # the residuals: what each rank has not sent yet
    }
    torch.save(checkpoint, saved)
    final = train(ddp, optimizer, range(half, args.steps), rank)
    # a fresh model / optimizer / hook state loaded from the checkpoint continues identically
    saved.seek(0)
    checkpoint = torch.load(saved)
    model2, ddp2, optimizer2, state2 = build(args)
    model2.load_state_dict(checkpoint["model"])
    optimizer2.load_state_dict(checkpoint["optimizer"])
    state2.load_state_dict(checkpoint["hook"])
    final2 = train(ddp2, optimizer2, range(half, args.steps), rank)
    if rank == 0:
        logger.info(
            "final loss %.4f; resumed from the checkpoint: %.4f (%s); rank 0 sent %d bytes "
            "in %d steps (a dense ring all-reduce: %d)",
            final,
            final2,
            "identical" if final == final2 else "DIFFERENT",
            state.bytes_sent,
            args.steps,
            dense_bytes(model, args.steps),
        )
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=HOOK_METHODS, default="gtopk")
    parser.add_argument("--density", type=float, default=0.01)
    parser.add_argument("--scope", choices=HOOK_SCOPES, default="bucket")
    parser.add_argument("--start-iter", type=int, default=0, help="dense steps first")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="without torchrun only")
    args = parser.parse_args()
    args.spawned = "RANK" not in os.environ
    if not args.spawned:
        worker(-1, args)
        return
    with tempfile.TemporaryDirectory() as tmp:  # file:// rendezvous: no port to choose
        args.init = f"file://{tmp}/rendezvous"
        mp.spawn(worker, args=(args,), nprocs=args.workers, join=True)


if __name__ == "__main__":
    main()

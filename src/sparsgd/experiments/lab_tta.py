"""Time to accuracy on the network lab: sparsgd against dense and PyTorch's PowerSGD hook.

    python -m sparsgd.experiments.lab_tta --rate 100mbit --data-dir ../shared/data/mnist \
        --out docs/lab_results/tta-100mbit

One emulated cluster of P nodes (a network namespace each, every link shaped to --rate both
ways), FNN-3 on MNIST, the same seed, batch, learning rate and momentum for every method:

    sparsgd train      dense (ring all-reduce), topk (all-gather of top-k), gtopk (the tree)
    DDP comm hooks     allreduce (DDP's default), powersgd (torch's PowerSGD hook, rank R,
                       dense for its first START steps), sparse-gtopk (sparsgd's hook)

Each run (1) trains for --steps steps, keeping every EVAL steps a copy of the model, the
training seconds so far (time in the training loop only: the copies are taken with the clock
stopped) and the bytes this node's eth0 has sent (the kernel's counter: bytes on the wire,
headers included, whatever the method); (2) after the run, the copies are scored on the test
set; (3) one JSON file per method holds the curve, so an interrupted study resumes where it
stopped. For ``sparsgd train`` rows (1) comes from its own checkpoints (every EVAL steps) and
the time split of log.jsonl's step records (compute, compress, comm, apply per step); the
kernel's counter is read before and after the run only, and each point's share of the run's
wire bytes is the share of the bytes the algorithm counted by then (:func:`_prorate`).

:func:`measure` is (1)-(2) for one method, without files: the ``lab-tta`` study
(:mod:`sparsgd.experiments.lab_tta_study`) runs it once per (rate, method, seed).

The speed-up at a target accuracy is t_dense(target) / t_method(target), each the first
evaluation at or above the target. See docs/lab.md for the method and the measured results.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook
from torch.nn.parallel import DistributedDataParallel

from sparsgd.comm.launch import WorkerContext, launch
from sparsgd.data import load_dataset, shard
from sparsgd.experiments.datasets import data_dir_for
from sparsgd.lab.cluster import Cluster, Rate
from sparsgd.lab.placement import lab_options
from sparsgd.models import ModelSpec, build_model
from sparsgd.runs import RunDir, load_checkpoint
from sparsgd.sync.config import SyncConfig
from sparsgd.sync.ddp_hook import SparseHookState, sparse_allreduce_hook
from sparsgd.sync.train import train
from sparsgd.worker.batches import SampleBatches, sample_steps_per_epoch
from sparsgd.worker.seeds import generator_for

__all__ = ["DDP_METHODS", "TRAIN_METHODS", "Setup", "measure", "run_method", "run_study"]

log = logging.getLogger(__name__)

TRAIN_METHODS = ("dense", "topk", "gtopk")  # sparsgd train --method
DDP_METHODS = ("allreduce", "powersgd", "sparse-gtopk")  # DDP communication hooks
POWERSGD_RANK, POWERSGD_START = 2, 10  # torch's defaults are rank 1 and start 10
TIME_PARTS = ("compute", "compress", "comm", "apply")  # a sync step's time split (log.jsonl)


@dataclass(frozen=True)
class Setup:
    """What every method of one study shares."""

    workers: int = 4
    rate: str = "100mbit"
    model: str = "fnn3"
    dataset: str = "mnist"
    data_dir: str | None = None
    density: float = 0.01
    lr: float = 0.05
    momentum: float = 0.5
    batch_size: int = 32
    steps: int = 600
    eval_every: int = 50
    seed: int = 0


def _wire_bytes() -> int:
    """Bytes this node's eth0 has sent (read inside the node's namespace)."""
    return int(Path("/sys/class/net/eth0/statistics/tx_bytes").read_text())


def ddp_worker(ctx: WorkerContext, setup: Setup, method: str) -> list[dict[str, Any]]:
    """(1) for a DDP hook: snapshots every eval_every steps (rank 0's copies; bytes per rank)."""
    bundle = load_dataset(setup.dataset, data_dir_for(setup.dataset, setup.data_dir),
                          seed=setup.seed)  # fmt: skip
    spec = ModelSpec(input_shape=bundle.input_shape, num_classes=bundle.num_classes)
    model = build_model(setup.model, spec, seed=setup.seed)
    ddp = DistributedDataParallel(model)
    if method == "powersgd":
        state = powerSGD_hook.PowerSGDState(
            process_group=None,
            matrix_approximation_rank=POWERSGD_RANK,
            start_powerSGD_iter=POWERSGD_START,
        )
        ddp.register_comm_hook(state, powerSGD_hook.powerSGD_hook)
    elif method == "sparse-gtopk":
        hook_state = SparseHookState(model, method="gtopk", density=setup.density)
        ddp.register_comm_hook(hook_state, sparse_allreduce_hook)
    optimizer = torch.optim.SGD(model.parameters(), lr=setup.lr, momentum=setup.momentum)
    mine = shard(bundle.train, ctx.rank, ctx.world_size, setup.seed)
    per_epoch = sample_steps_per_epoch(len(mine), setup.batch_size)
    batches = SampleBatches(
        mine, setup.batch_size, per_epoch, generator_for(setup.seed, "batches", ctx.rank)
    )
    points, seconds, start_bytes = [], 0.0, _wire_bytes()
    for step in range(1, setup.steps + 1):
        t0 = time.perf_counter()
        if batches.position >= per_epoch:
            batches.start_epoch()
        x, y = batches.next_batch()
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(ddp(x), y).backward()  # the hooks communicate here
        optimizer.step()
        seconds += time.perf_counter() - t0
        if step % setup.eval_every == 0 or step == setup.steps:
            state = {k: v.clone() for k, v in model.state_dict().items()}
            points.append(
                {"step": step, "seconds": seconds, "wire_bytes": _wire_bytes() - start_bytes}
            )
            points[-1]["model"] = state if ctx.rank == 0 else None
    return points


def _train_config(setup: Setup, method: str, out: Path) -> SyncConfig:
    return SyncConfig(
        out=str(out), model=setup.model, dataset=setup.dataset,
        data_dir=data_dir_for(setup.dataset, setup.data_dir),
        method=method, density=setup.density, lr=setup.lr, momentum=setup.momentum,
        batch_size=setup.batch_size, steps=setup.steps, workers=setup.workers,
        log_every=setup.eval_every, checkpoint_every=setup.eval_every, progress=False,
        keep_checkpoints=setup.steps // setup.eval_every + 1,
        seed=setup.seed, timeout_s=600.0,
    )  # fmt: skip


def _train_points(setup: Setup, out: Path) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """(1) for sparsgd train: its checkpoints, the training seconds its step records give
    (steps of the window x mean compute + compress + comm + apply per step), each point's
    bytes counted by the algorithm so far (``counted``, per rank), and the mean time split of
    a step in ms."""
    run = RunDir(out, resume=True)
    seconds, last, clock, counted, parts = 0.0, 0, {}, {}, {p: 0.0 for p in TIME_PARTS}
    for r in run.read_log():
        if r["kind"] == "step":
            per_step = sum(r[f"time_{part}_s"] for part in TIME_PARTS)
            for part in TIME_PARTS:
                parts[part] += (r["step"] - last) * r[f"time_{part}_s"]
            seconds += (r["step"] - last) * per_step
            last, clock[r["step"]] = r["step"], seconds
            counted[r["step"]] = r["bytes_sent_total"]
    points = []
    for path in run.checkpoints():
        state = load_checkpoint(path)
        step = int(state["step"])
        if step in clock:
            points.append(
                {
                    "step": step,
                    "seconds": clock[step],
                    "counted": counted[step],
                    "model": state["shared"]["model"],
                }
            )
    split = {part: total / max(last, 1) * 1e3 for part, total in parts.items()}
    return points, split


def _prorate(points: list[dict[str, Any]], wire: list[int]) -> None:
    """A sparsgd train run's wire bytes at each point, in place: the run's total on the wire
    (``wire``, per rank) times the share of the run's counted bytes sent by then,

        wire_r(step) = wire_r * counted_r(step) / counted_r(last step)

    (the kernel's counter is read only before and after the run; headers and the start-up's
    own traffic are spread in proportion to the counted bytes)."""
    final = points[-1]["counted"] if points else []
    for point in points:
        share = [c / f if f else 0.0 for c, f in zip(point.pop("counted"), final, strict=True)]
        point["wire_bytes_per_rank"] = [round(w * s) for w, s in zip(wire, share, strict=True)]


def _score(setup: Setup, points: list[dict[str, Any]]) -> None:
    """(2) test accuracy of every snapshot, in place; the snapshots are dropped."""
    bundle = load_dataset(setup.dataset, data_dir_for(setup.dataset, setup.data_dir),
                          seed=setup.seed)  # fmt: skip
    spec = ModelSpec(input_shape=bundle.input_shape, num_classes=bundle.num_classes)
    model = build_model(setup.model, spec, seed=setup.seed)
    x, y = bundle.test.tensors
    for point in points:
        model.load_state_dict(point.pop("model"))
        model.eval()
        with torch.no_grad():
            point["accuracy"] = float((model(x).argmax(dim=1) == y).float().mean())


def measure(setup: Setup, method: str, workdir: Path) -> dict[str, Any]:
    """(1)-(2) for one method on a fresh lab: the curve (every point's step, training seconds,
    wire bytes per rank and test accuracy), the wire bytes per rank of the whole run and, for
    sparsgd train, the mean time split of a step (ms). ``workdir`` holds sparsgd train's run
    folder (``workdir/<method>``, checkpoints included)."""
    if method not in TRAIN_METHODS + DDP_METHODS:
        raise ValueError(f"method must be one of {TRAIN_METHODS + DDP_METHODS}; got {method!r}")
    rate = Rate.parse(setup.rate)
    with Cluster(setup.workers, rate) as cluster:
        options = lab_options(cluster, timeout_s=900.0)
        if method in TRAIN_METHODS:
            before = cluster.tx_bytes()
            summary = train(_train_config(setup, method, workdir / method), overwrite=True,
                            placement=options)  # fmt: skip
            wire = [b - a for a, b in zip(before, cluster.tx_bytes(), strict=True)]
            points, split = _train_points(setup, workdir / method)
            _prorate(points, wire)
            extra = {"bytes_sent_per_rank": summary["bytes_sent_per_rank"], "time_split_ms": split}
        else:
            per_rank = launch(ddp_worker, setup.workers, (setup, method), options)
            points = per_rank[0]
            for i, point in enumerate(points):
                point["wire_bytes_per_rank"] = [r[i]["wire_bytes"] for r in per_rank]
                del point["wire_bytes"]
            wire, extra = points[-1]["wire_bytes_per_rank"], {"time_split_ms": None}
    _score(setup, points)
    return {"method": method, "points": points, "wire_bytes": wire, **extra}


def run_method(setup: Setup, method: str, out: Path) -> dict[str, Any]:
    """One method on a fresh lab; its result file ``out/<method>.json`` is written and
    returned (with the setup), sparsgd train's run folder kept beside it."""
    result = {**measure(setup, method, out), "setup": asdict(setup)}
    (out / f"{method}.json").write_text(json.dumps(result, indent=1))
    return result


def run_study(setup: Setup, out: Path, methods: tuple[str, ...]) -> list[dict[str, Any]]:
    """(3) every method, skipping those whose result file exists (resumable)."""
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for method in methods:
        done = out / f"{method}.json"
        if done.exists():
            results.append(json.loads(done.read_text()))
            continue
        log.info("lab %s: %s", setup.rate, method)
        results.append(run_method(setup, method, out))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for field, default in asdict(Setup()).items():
        kind = type(default) if default is not None else str
        parser.add_argument(f"--{field.replace('_', '-')}", type=kind, default=default)
    parser.add_argument("--out", required=True)
    parser.add_argument("--methods", default=",".join(TRAIN_METHODS + DDP_METHODS))
    args = vars(parser.parse_args(argv))
    out, methods = Path(args.pop("out")), tuple(args.pop("methods").split(","))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for result in run_study(Setup(**args), out, methods):
        best = max(p["accuracy"] for p in result["points"])
        last = result["points"][-1]
        print(f"{result['method']:<13} best accuracy {best:.4f}  {last['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The five networks of the ICDCS 2019 scaling study: size, batch, computation per iteration.

For each network: d (parameters), the paper's batch B per worker, and the computation time of
one iteration on one worker, t_comp, from the first source that exists:

    (1) paper:    t_comp = B / X                       X = the paper's single-GPU throughput
                                                       (samples per second) at batch B
    (2) assumed:  t_comp = 3 * 2 * MACS * B / GPU_FLOPS
                  MACS = forward multiply-adds per sample (published counts), 3 = forward +
                  backward (about twice the forward), 2 FLOPs per multiply-add, GPU_FLOPS =
                  the sustained throughput we assume for a GPU of the paper's generation.
                  An assumption, not a measurement: it ignores per-layer launch costs, which
                  dominate a small network such as ResNet-20 on a GPU, so it is a lower bound.
    (3) cpu:      forward + backward of B samples with sparsgd.models on this machine, one
                  thread, median of a few repeats (only networks the project has)

Where each paper number comes from is written beside it in :data:`ZOO` (``PaperNumbers``):
the batch sizes are the authors' own (hclhkbu/gtopkssgd at commit 6f57343, read with git);
the single-GPU throughputs X and the per-network measured efficiency ratios were not found in
the stored public material (only the paper's abstract and introduction were reachable, and the
authors' repository holds no logs), so every t_comp is (2) until X is filled in.

d is counted with sparsgd.models where the project has the network, else the published count.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sparsgd.models import ModelSpec, build_model, count_parameters

__all__ = [
    "GPU_FLOPS",
    "ZOO",
    "PaperNumbers",
    "ZooModel",
    "count_zoo_params",
    "flop_seconds",
    "measure_cpu_seconds",
    "seconds_from_throughput",
]

GPU_FLOPS = 4e12  # assumed sustained FLOP/s: about 40 % of the ~11 TFLOP/s fp32 peak of a
# GTX 1080 Ti-class GPU (the paper: one GPU per machine, 32 machines, 1 Gbps Ethernet)
PTB_VOCAB = 10_000
PTB_BPTT = 35  # tokens per sequence of the LSTM (one sample = one sequence of 35 tokens)

REPO = "hclhkbu/gtopkssgd@6f57343"
ICDCS_RUNS = f"{REPO} scripts/icdcs2019/plot_loss.py, icdcs2019_convergence()"
NO_THROUGHPUT = (
    "not found: no single-GPU throughput of the paper was reachable (its text beyond the "
    "abstract and introduction, or logs in the authors' repository)"
)
NO_RATIOS = (
    "not found: the abstract gives only the range over its networks, 2.7x-12x over dense "
    "and 1.1x-1.7x over Top-k at 32 workers on 1 Gbps Ethernet"
)


@dataclass(frozen=True)
class PaperNumbers:
    """What the ICDCS 2019 paper (or its authors' code) says of one network, with sources."""

    batch: int  # B: samples per worker and iteration
    batch_from: str
    samples_per_s: float | None = None  # X: single-GPU training throughput at batch B
    samples_per_s_from: str = NO_THROUGHPUT
    over_dense: float | None = None  # measured e_gtopk / e_dense at 32 workers, 1 GbE
    over_topk: float | None = None  # measured e_gtopk / e_topk
    ratios_from: str = NO_RATIOS


@dataclass(frozen=True)
class ZooModel:
    """One row of the table (see the module docstring for the sources)."""

    label: str
    published_params: int  # the usual count for this network
    macs_per_sample: float  # forward multiply-adds per sample (published or computed)
    paper: PaperNumbers
    project_model: str | None  # sparsgd.models name, if the project has the network
    spec: ModelSpec | None = None

    @property
    def batch(self) -> int:
        return self.paper.batch

    def compute_seconds(self) -> tuple[float, str]:
        """(t_comp, source): (1) from the paper's throughput when known, else (2)."""
        if self.paper.samples_per_s is not None:
            return seconds_from_throughput(self.batch, self.paper.samples_per_s), "paper"
        return flop_seconds(self.macs_per_sample, self.batch), "assumed (FLOP model)"


def seconds_from_throughput(batch: int, samples_per_s: float) -> float:
    """(1) t_comp = B / X: seconds of one iteration of ``batch`` samples at X samples/s."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1; got {batch!r}")
    if not (math.isfinite(samples_per_s) and samples_per_s > 0):
        raise ValueError(f"samples_per_s must be a finite number > 0; got {samples_per_s}")
    return batch / samples_per_s


def flop_seconds(macs_per_sample: float, batch: int, flops: float = GPU_FLOPS) -> float:
    """(2) t_comp = 3 * 2 * MACS * B / FLOPS (forward + backward, 2 FLOPs per multiply-add)."""
    if not (math.isfinite(flops) and flops > 0):
        raise ValueError(f"flops must be a finite number > 0; got {flops}")
    return 3 * 2 * macs_per_sample * batch / flops


# forward multiply-adds: ResNet-20 and VGG-16 on 32x32 CIFAR-10 images, AlexNet and ResNet-50
# on 224x224 ImageNet images (the counts usually quoted for them); the LSTM per 35-token
# sequence: 2 layers x 4 gates x 1500 x (1500 + 1500) plus the 1500 x 10000 decoder, per token
# (the authors' models/lstm.py: 2 layers of 1500 units, 35 steps, batch 20).
ZOO: dict[str, ZooModel] = {
    "vgg16": ZooModel(
        "VGG-16 (CIFAR-10)",
        14_728_266,
        313e6,
        PaperNumbers(
            128,
            f"{ICDCS_RUNS}: dense and gTop-k runs at batch 128 "
            f"(exp_configs/vgg16.conf defaults to 32)",
        ),
        "vgg16",
        ModelSpec((3, 32, 32), 10),
    ),
    "resnet20": ZooModel(
        "ResNet-20 (CIFAR-10)",
        269_722,
        41e6,
        PaperNumbers(32, f"{REPO} exp_configs/resnet20.conf; {ICDCS_RUNS} at 32"),
        "resnet20",
        ModelSpec((3, 32, 32), 10),
    ),
    "alexnet": ZooModel(
        "AlexNet (ImageNet)",
        61_100_840,
        714e6,
        PaperNumbers(256, f"{REPO} exp_configs/alexnet.conf; {ICDCS_RUNS} at 256"),
        None,
    ),
    "resnet50": ZooModel(
        "ResNet-50 (ImageNet)",
        25_557_032,
        4.09e9,
        PaperNumbers(
            64,
            f"{REPO} exp_configs/resnet50.conf and the dense run of {ICDCS_RUNS} "
            "(its gTop-k run used 32)",
        ),
        None,
    ),
    "lstm": ZooModel(
        "LSTM 2x1500 (PTB)",
        66_034_000,
        PTB_BPTT * (2 * 4 * 1500 * 3000 + 1500 * PTB_VOCAB),
        PaperNumbers(20, f"{REPO} exp_configs/lstm.conf and models/lstm.py"),
        "lstm",
        ModelSpec(vocab_size=PTB_VOCAB),
    ),
}


def count_zoo_params(m: ZooModel) -> tuple[int, str]:
    """(d, source): counted with sparsgd.models when the project has the network."""
    if m.project_model is None or m.spec is None:
        return m.published_params, "published"
    model = build_model(m.project_model, m.spec, seed=0)
    return count_parameters(model), "counted (sparsgd.models)"


def _batch(m: ZooModel) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    if m.project_model == "lstm":
        tokens = torch.randint(PTB_VOCAB, (PTB_BPTT + 1, m.batch), generator=gen)
        return tokens[:-1], tokens[1:]
    assert m.spec is not None and m.spec.input_shape is not None
    x = torch.randn((m.batch, *m.spec.input_shape), generator=gen)
    return x, torch.randint(10, (m.batch,), generator=gen)


def measure_cpu_seconds(m: ZooModel, repeats: int) -> float | None:
    """(3) Median seconds of forward + backward of one batch on this CPU (None if not in
    the project)."""
    if m.project_model is None or m.spec is None:
        return None
    model = build_model(m.project_model, m.spec, seed=0)
    inputs, targets = _batch(m)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as one of P workers sharing the cores
    times = []
    try:
        for _ in range(repeats + 1):  # the first pass warms up and is not counted
            start = time.perf_counter()
            out = model(inputs)
            logits = out[0] if isinstance(out, tuple) else out  # the LSTM returns (logits, h)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            loss.backward()
            times.append(time.perf_counter() - start)
            model.zero_grad(set_to_none=True)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times[1:])

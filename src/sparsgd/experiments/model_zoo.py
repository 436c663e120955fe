"""The five networks of the ICDCS 2019 scaling table: size, and computation per iteration.

For each network: d (parameters), and the computation time of one iteration on one worker,
t_comp, from one of two stated sources:

    gpu (assumed):   t_comp = 3 * 2 * MACS * B / GPU_FLOPS
                     MACS = forward multiply-adds per sample (published counts), B = batch per
                     worker (our choice), 3 = forward + backward (about twice the forward),
                     2 FLOPs per multiply-add, GPU_FLOPS = sustained throughput we assume for
                     a GPU of the papers' generation. An assumption, not a measurement.
    cpu (measured):  forward + backward of B samples with sparsgd.models on this machine,
                     one thread, median of a few repeats; only for the networks the project
                     has (AlexNet and ResNet-50 are not in sparsgd.models).

d is counted with sparsgd.models where the project has the network, else the published count.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sparsgd.models import ModelSpec, build_model, count_parameters

__all__ = ["GPU_FLOPS", "ZOO", "ZooModel", "count_zoo_params", "measure_cpu_seconds"]

GPU_FLOPS = 4e12  # assumed sustained FLOP/s: about 40 % of the ~11 TFLOP/s fp32 peak of a
# GTX 1080 Ti-class GPU such as the papers' cluster used
PTB_VOCAB = 10_000
PTB_BPTT = 35  # tokens per sequence of the LSTM (one sample = one sequence of 35 tokens)


@dataclass(frozen=True)
class ZooModel:
    """One row of the table (see the module docstring for the sources)."""

    label: str
    published_params: int  # the usual count for this network
    macs_per_sample: float  # forward multiply-adds per sample (published or computed)
    batch: int  # samples per worker and iteration (assumed)
    project_model: str | None  # sparsgd.models name, if the project has the network
    spec: ModelSpec | None = None

    def gpu_seconds(self) -> float:
        return 3 * 2 * self.macs_per_sample * self.batch / GPU_FLOPS


# forward multiply-adds: ResNet-20 and VGG-16 on 32x32 CIFAR-10 images, AlexNet and ResNet-50
# on 224x224 ImageNet images (the counts usually quoted for them); the LSTM per 35-token
# sequence: 2 layers x 4 gates x 1500 x (1500 + 1500) plus the 1500 x 10000 decoder, per token
ZOO: dict[str, ZooModel] = {
    "vgg16": ZooModel(
        "VGG-16 (CIFAR-10)", 14_728_266, 313e6, 32, "vgg16", ModelSpec((3, 32, 32), 10)
    ),
    "resnet20": ZooModel(
        "ResNet-20 (CIFAR-10)", 269_722, 41e6, 32, "resnet20", ModelSpec((3, 32, 32), 10)
    ),
    "alexnet": ZooModel("AlexNet (ImageNet)", 61_100_840, 714e6, 32, None),
    "resnet50": ZooModel("ResNet-50 (ImageNet)", 25_557_032, 4.09e9, 32, None),
    "lstm": ZooModel(
        "LSTM 2x1500 (PTB)",
        66_034_000,
        PTB_BPTT * (2 * 4 * 1500 * 3000 + 1500 * PTB_VOCAB),
        20,
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
    """Median seconds of forward + backward of one batch on this CPU (None if not in project)."""
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

"""Every bad input raises the documented error type, naming the parameter and the value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from sparsgd.compress.base import residual_after
from sparsgd.compress.checks import NonFiniteError
from sparsgd.compress.layerwise import LayerwiseCompressor
from sparsgd.compress.memory import make_memory
from sparsgd.compress.registry import make_compressor
from sparsgd.compress.topk import topk_indices
from sparsgd.compress.topk_reference import topk_reference
from sparsgd.compress.warmup import DensitySchedule

from .cases import build

X = torch.randn(100)
NAN_X = torch.tensor([1.0, float("nan"), 2.0])
INF_X = torch.tensor([1.0, float("inf"), 2.0])


def _topk(x: Any, k: Any) -> Callable[[], Any]:
    return lambda: topk_indices(x, k)


# (id, call, error type, text the message must contain: the parameter and the bad value)
CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("k=0", _topk(X, 0), ValueError, "k must be in [1, numel=100]; got 0"),
    ("k>numel", _topk(X, 101), ValueError, "k must be in [1, numel=100]; got 101"),
    ("k float", _topk(X, 2.5), TypeError, "k must be an integer"),
    ("x 2-D", _topk(X.view(10, 10), 3), ValueError, "x must be flat (1-D); got shape (10, 10)"),
    ("x empty", _topk(torch.empty(0), 1), ValueError, "x must not be empty"),
    ("x int", _topk(torch.arange(5), 1), TypeError, "x must be a floating-point tensor"),
    ("x list", _topk([1.0, 2.0], 1), TypeError, "x must be a torch.Tensor"),
    ("x NaN", _topk(NAN_X, 1), NonFiniteError, "x must be finite; got 1 NaN and 0 Inf"),
    ("ref k=0", lambda: topk_reference(X, 0), ValueError, "k must be in [1, numel=100]"),
    ("unknown compressor", lambda: make_compressor("top-k"), ValueError, "valid names"),
    ("unknown setting", lambda: make_compressor("topk", k=5), ValueError, "unknown setting(s)"),
    ("missing setting", lambda: make_compressor("threshold"), ValueError, "['threshold']"),
    (
        "threshold<0",
        lambda: make_compressor("threshold", threshold=-1.0),
        ValueError,
        "threshold must be finite and > 0; got -1.0",
    ),
    (
        "value_dtype",
        lambda: make_compressor("topk", value_dtype=torch.float64),
        ValueError,
        "value_dtype must be one of",
    ),
    ("seed<0", lambda: make_compressor("randomk", seed=-1), ValueError, "seed must be"),
    ("scaled str", lambda: make_compressor("randomk", scaled="yes"), TypeError, "scaled must"),
    (
        "sample_fraction",
        lambda: make_compressor("sampled", sample_fraction=0.0),
        ValueError,
        "sample_fraction must be in (0, 1]; got 0.0",
    ),
    (
        "tolerance",
        lambda: make_compressor("sampled", tolerance=0.5),
        ValueError,
        "tolerance must be",
    ),
    (
        "layer sizes",
        lambda: LayerwiseCompressor(build("topk"), [50, 0]),
        ValueError,
        "sizes must be positive integers; got [0]",
    ),
    (
        "layer sum",
        lambda: LayerwiseCompressor(build("topk"), [50, 49]).compress(X, 0.1),
        ValueError,
        "x must have sum(sizes) = 99 entries",
    ),
    (
        "layer inner",
        lambda: LayerwiseCompressor("topk", [100]),
        TypeError,
        "inner must be a Compressor",
    ),
    (
        "residual shape",
        lambda: residual_after(X[:50], build("topk").compress(X, 0.1)),
        ValueError,
        "p must be flat with numel=100",
    ),
    ("unknown memory", lambda: make_memory("ef", 10), ValueError, "valid names"),
    (
        "memory numel",
        lambda: make_memory("residual", 0),
        ValueError,
        "numel must be a positive integer; got 0",
    ),
    (
        "momentum",
        lambda: make_memory("dgc", 10, momentum=1.0),
        ValueError,
        "momentum must be in [0, 1); got 1.0",
    ),
    (
        "memory setting",
        lambda: make_memory("none", 10, momentum=0.9),
        ValueError,
        "unknown setting(s) ['momentum']",
    ),
    (
        "g shape",
        lambda: make_memory("residual", 10).compensate(torch.zeros(11)),
        ValueError,
        "g must have numel=10 entries; got 11",
    ),
    (
        "g 2-D",
        lambda: make_memory("dgc", 10).compensate(torch.zeros(2, 5)),
        ValueError,
        "g must be flat",
    ),
    (
        "g NaN",
        lambda: make_memory("residual", 3).compensate(NAN_X),
        NonFiniteError,
        "gradient must be finite; got 1 NaN",
    ),
    (
        "g Inf",
        lambda: make_memory("dgc", 3).compensate(INF_X),
        NonFiniteError,
        "gradient must be finite; got 0 NaN and 1 Inf",
    ),
    (
        "residual numel",
        lambda: make_memory("residual", 3).update_(torch.zeros(4), torch.tensor([0])),
        ValueError,
        "residual must have numel=3",
    ),
    (
        "sent range",
        lambda: make_memory("residual", 3).update_(torch.zeros(3), torch.tensor([0, 3])),
        ValueError,
        "sent must lie in [0, numel=3); got range [0, 3]",
    ),
    (
        "sent float",
        lambda: make_memory("none", 3).update_(torch.zeros(3), torch.tensor([0.0])),
        TypeError,
        "sent must hold integer indices",
    ),
    (
        "state keys",
        lambda: make_memory("residual", 3).load_state_dict({"u": torch.zeros(3)}),
        ValueError,
        "state for memory 'residual' must have keys ['e']; got ['u']",
    ),
    (
        "state numel",
        lambda: make_memory("residual", 3).load_state_dict({"e": torch.zeros(4)}),
        ValueError,
        "state['e'] must have numel=3",
    ),
    (
        "compressor state",
        lambda: build("randomk").load_state_dict({}),
        ValueError,
        "state for compressor 'randomk' must have keys ['generator']",
    ),
    (
        "warmup target",
        lambda: DensitySchedule(target=0.0),
        ValueError,
        "target must be in (0, 1]; got 0.0",
    ),
    (
        "warmup epochs",
        lambda: DensitySchedule(target=0.1, warmup_epochs=-1),
        ValueError,
        "warmup_epochs must be finite and >= 0; got -1",
    ),
    (
        "warmup stages",
        lambda: DensitySchedule(target=0.1, stages=[0.1, 0.5]),
        ValueError,
        "stages must be non-increasing; got [0.1, 0.5]",
    ),
    (
        "warmup stage",
        lambda: DensitySchedule(target=0.1, stages=[2.0]),
        ValueError,
        "stages[i] must be in (0, 1]; got 2.0",
    ),
    (
        "epoch",
        lambda: DensitySchedule(target=0.1).density(-0.5),
        ValueError,
        "epoch must be finite and >= 0; got -0.5",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(call: Callable[[], Any], error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5, float("nan"), float("inf")])
def test_bad_density_for_every_compressor(label: str, density: float) -> None:
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\]; got"):
        build(label).compress(X, density)


def test_density_of_wrong_type(label: str) -> None:
    with pytest.raises(TypeError, match="density must be a number"):
        build(label).compress(X, "0.1")


@pytest.mark.parametrize(
    "x", [X.view(4, 25), torch.empty(0), torch.arange(3)], ids=["2-D", "empty", "int"]
)
def test_bad_tensor_for_every_compressor(label: str, x: torch.Tensor) -> None:
    with pytest.raises((ValueError, TypeError), match="x must"):
        build(label).compress(x, 0.1)


@pytest.mark.parametrize("x", [NAN_X, INF_X], ids=["NaN", "Inf"])
def test_non_finite_input_for_every_compressor(label: str, x: torch.Tensor) -> None:
    with pytest.raises(NonFiniteError, match="x must be finite"):
        build(label).compress(x, 0.5)

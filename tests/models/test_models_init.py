"""Deterministic construction: the same seed gives bit-identical parameters (what lets every
rank build the same model without a broadcast) and leaves the caller's random state alone."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from sparsgd.models import MODELS, ModelSpec, build_model

SPECS = {
    "logreg": ModelSpec(input_shape=(1, 8, 8), num_classes=10),
    "fnn3": ModelSpec(input_shape=(1, 8, 8), num_classes=10),
    "lenet5": ModelSpec(input_shape=(1, 8, 8), num_classes=10),
    "resnet20": ModelSpec(input_shape=(1, 8, 8), num_classes=10),
    "vgg16": ModelSpec(input_shape=(1, 8, 8), num_classes=10),
    "lstm": ModelSpec(vocab_size=50, reduced=True, hidden_size=16),
}


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_every_model_has_a_spec_here() -> None:
    assert set(SPECS) == set(MODELS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_same_seed_same_parameters_and_global_rng_untouched(name: str) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = build_model(name, SPECS[name], seed=7)
    assert torch.equal(torch.get_rng_state(), before), "build_model(seed=...) moved global RNG"
    torch.rand(10)  # move the global generator: the seeded build must not care
    second = build_model(name, SPECS[name], seed=7)
    other = build_model(name, SPECS[name], seed=8)
    assert _same(first, second)
    assert not _same(first, other)


def test_without_seed_the_global_generator_decides() -> None:
    torch.manual_seed(5)
    a = build_model("fnn3", SPECS["fnn3"])
    torch.manual_seed(5)
    b = build_model("fnn3", SPECS["fnn3"])
    assert _same(a, b)


def test_seed_must_be_an_int() -> None:
    with pytest.raises(TypeError, match=r"seed must be an int or None; got 1\.5"):
        build_model("logreg", SPECS["logreg"], seed=1.5)  # type: ignore[arg-type]


@dataclass
class FakeBundle:
    input_shape: tuple[int, ...] | None
    num_classes: int | None
    vocab_size: int | None


def test_spec_of_a_bundle() -> None:
    spec = ModelSpec.of(FakeBundle((1, 8, 8), 10, None))
    assert spec == ModelSpec(input_shape=(1, 8, 8), num_classes=10)
    lm = ModelSpec.of(FakeBundle(None, None, 100), reduced=True, tie_weights=True)
    assert lm.vocab_size == 100 and lm.reduced and lm.tie_weights

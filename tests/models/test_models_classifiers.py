"""Classifiers: output shapes, parameter counts, input-size handling, gradients reach every
parameter, and the registry's errors."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from sparsgd.models import MODELS, ModelSpec, build_model, count_parameters
from sparsgd.models.lenet5 import LeNet5

IMAGE_SHAPES = [(1, 28, 28), (3, 32, 32), (1, 8, 8)]  # MNIST, CIFAR-10, sklearn digits
CLASSIFIERS = ["logreg", "fnn3", "lenet5", "resnet20", "vgg16"]
NUM_CLASSES = 10
BATCH = 2  # >= 2 so that batch norm in training mode has a batch statistic
# Same float32 operations in a different order (padding module vs conv padding): a few ulps.
CONV_ATOL = 1e-6


def _dense_count(sizes: list[int]) -> int:
    """Weights and biases of a chain of linear layers of the given widths."""
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def _lenet5_count(channels: int) -> int:
    conv = (6 * channels * 25 + 6) + (16 * 6 * 25 + 16)
    return conv + _dense_count([400, 120, 84, NUM_CLASSES])


def expected_count(name: str, shape: tuple[int, ...]) -> int | None:
    """Exact count from the layer sizes where it is a short formula, else None."""
    features = 1
    for size in shape:
        features *= size
    formulas = {
        "logreg": lambda: _dense_count([features, NUM_CLASSES]),
        "fnn3": lambda: _dense_count([features, 200, 200, NUM_CLASSES]),
        "lenet5": lambda: _lenet5_count(shape[0]),
    }
    return formulas[name]() if name in formulas else None


# Published sizes: ResNet-20 "0.27M" (He et al. 2016, table 6); CIFAR VGG-16 with a single
# 512 -> 10 classifier has 14.7M (gTop-k papers). The ranges allow the input channel count.
COUNT_RANGES = {"resnet20": (260_000, 280_000), "vgg16": (14_500_000, 15_000_000)}


@pytest.mark.parametrize("shape", IMAGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_output_shape_count_and_gradients(name: str, shape: tuple[int, ...]) -> None:
    model = build_model(name, ModelSpec(input_shape=shape, num_classes=NUM_CLASSES), seed=0)
    x = torch.randn(BATCH, *shape, generator=torch.Generator().manual_seed(1))
    logits = model(x)
    assert logits.shape == (BATCH, NUM_CLASSES)
    assert torch.isfinite(logits).all()

    count = count_parameters(model)
    exact = expected_count(name, shape)
    if exact is not None:
        assert count == exact
    else:
        low, high = COUNT_RANGES[name]
        assert low <= count <= high

    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None, f"{name}: no gradient reached {pname}"


def test_paper_sizes() -> None:
    """The sizes quoted in the models' docstrings and the papers."""
    mnist = ModelSpec(input_shape=(1, 28, 28), num_classes=10)
    cifar = ModelSpec(input_shape=(3, 32, 32), num_classes=10)
    assert count_parameters(build_model("fnn3", mnist)) == 199_210
    assert count_parameters(build_model("lenet5", mnist)) == 61_706
    assert count_parameters(build_model("resnet20", cifar)) == 269_722
    assert count_parameters(build_model("vgg16", cifar)) == 14_728_266


def test_flat_features_for_linear_models() -> None:
    spec = ModelSpec(input_shape=(32,), num_classes=4)
    for name in ("logreg", "fnn3"):
        assert build_model(name, spec)(torch.randn(5, 32)).shape == (5, 4)


def test_lenet5_padding_is_the_classic_padding_2_on_mnist() -> None:
    """Centred zero padding 28 -> 32 then a valid conv == the conv with padding=2."""
    model = LeNet5(1, 28, 28, NUM_CLASSES)
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    conv = model.features[0]
    ours = conv(model.pad(x))
    classic = F.conv2d(x, conv.weight, conv.bias, padding=2)
    assert ours.shape == classic.shape == (3, 6, 28, 28)
    torch.testing.assert_close(ours, classic, atol=CONV_ATOL, rtol=0)


def test_larger_images_are_pooled() -> None:
    spec = ModelSpec(input_shape=(3, 40, 48), num_classes=NUM_CLASSES)
    for name in ("lenet5", "resnet20", "vgg16"):
        assert build_model(name, spec)(torch.randn(BATCH, 3, 40, 48)).shape == (BATCH, 10)


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "vgg16"])
def test_convolutional_models_refuse_flat_inputs(name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name} needs spec.input_shape = \(channels"):
        build_model(name, ModelSpec(input_shape=(64,), num_classes=10))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifiers_need_num_classes(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} needs spec.num_classes"):
        build_model(name, ModelSpec(input_shape=(1, 28, 28)))


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"model must be one of .*'lenet5'.*got 'lenet'"):
        build_model("lenet", ModelSpec(input_shape=(1, 28, 28), num_classes=10))
    assert set(CLASSIFIERS) | {"lstm"} == set(MODELS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes must be >= 2; got 1"),
        ({"input_shape": (1, 0, 28)}, "every entry of input_shape must be a positive integer"),
        ({"input_shape": [1, 28, 28]}, "input_shape must be a non-empty tuple"),
        ({"dropout": 1.5}, r"dropout must be in \[0, 1\); got 1.5"),
        ({"vocab_size": 0}, "vocab_size must be a positive integer; got 0"),
    ],
)
def test_spec_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelSpec(**kwargs)  # type: ignore[arg-type]

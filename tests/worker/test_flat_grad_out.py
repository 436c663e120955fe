"""flat_grad into a reused buffer and write_grad_ with a divisor: the same bits, no temporary."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsgd.worker.flat_model import flat_grad, write_grad_

DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def mixed_params(with_none: bool = True) -> list[nn.Parameter]:
    """Parameters of every dtype with gradients of many magnitudes; one without a gradient."""
    gen = torch.Generator().manual_seed(3)
    params = []
    for i, dtype in enumerate(DTYPES):
        p = nn.Parameter(torch.zeros(5 + i, 3, dtype=dtype))
        scale = 10.0 ** torch.randint(-6, 6, (5 + i, 3), generator=gen)
        p.grad = (torch.randn(5 + i, 3, generator=gen, dtype=torch.float64) * scale).to(dtype)
        params.append(p)
    if with_none:
        params.insert(2, nn.Parameter(torch.zeros(4)))  # took no part in the loss: grad None
    return params


def test_flat_grad_into_a_buffer_gives_the_bits_of_the_fresh_copy_and_reuses_it():
    params = mixed_params()
    want = flat_grad(params)
    buf = torch.full_like(want, float("nan"))  # stale content must not survive
    for _ in range(2):
        got = flat_grad(params, out=buf)
        assert got is buf
        assert torch.equal(got, want)
    assert want.dtype == torch.float32 and bool((want[33:37] == 0).all())  # the None slot


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (torch.zeros(10), r"out must be a \(\d+,\) float32 tensor; got \(10,\) torch.float32"),
        (torch.zeros(0), r"got \(0,\) torch.float32"),
        ("buffer", r"out must be a \(\d+,\) float32 tensor; got str"),
    ],
)
def test_flat_grad_refuses_a_buffer_of_the_wrong_size_or_kind(out, message):
    with pytest.raises(ValueError, match=message):
        flat_grad(mixed_params(), out=out)


def test_flat_grad_refuses_a_float64_or_strided_buffer():
    params = mixed_params()
    d = flat_grad(params).numel()
    with pytest.raises(ValueError, match=r"got \(\d+,\) torch.float64"):
        flat_grad(params, out=torch.zeros(d, dtype=torch.float64))
    with pytest.raises(ValueError, match="out must be contiguous"):
        flat_grad(params, out=torch.zeros(2 * d)[::2])


@pytest.mark.parametrize("divisor", [1, 3, 7])
def test_write_grad_with_a_divisor_gives_the_bits_of_dividing_first(divisor):
    source = mixed_params()
    flat = flat_grad(source) * 1.37  # (d,) float32, not a multiple of the gradients
    want, got = mixed_params(), mixed_params()
    write_grad_(want, flat / divisor)
    float32_grad = got[0].grad
    write_grad_(got, flat, divisor=divisor)
    for a, b in zip(want, got, strict=True):
        assert a.grad.dtype == b.grad.dtype == a.dtype
        assert torch.equal(a.grad, b.grad)
    assert got[0].grad is float32_grad  # written in place: no (d,) temporary
    assert got[2].grad is not None  # a gradient made where there was none


@pytest.mark.parametrize(
    ("divisor", "error", "message"),
    [(0, ValueError, "divisor must be >= 1; got 0"), (2.0, TypeError, "divisor must be an int")],
)
def test_write_grad_refuses_a_bad_divisor(divisor, error, message):
    params = mixed_params()
    with pytest.raises(error, match=message):
        write_grad_(params, flat_grad(params), divisor=divisor)

"""Fixtures for the compress tests: each compressor configuration, each value dtype, each
implementation of the exact selection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from sparsgd.compress import kernels

from .cases import SETTINGS


@pytest.fixture(params=sorted(SETTINGS))
def label(request: pytest.FixtureRequest) -> str:
    """Each compressor configuration by its label, e.g. ``randomk_scaled``."""
    return request.param


@pytest.fixture(params=[torch.float32, torch.float16], ids=["f32", "f16"])
def value_dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


@pytest.fixture(params=["compiled", "fallback"])
def selection_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each implementation of the exact selection: the compiled loops of
    sparsgd.compress.kernels (skipped where the install built none) and the numpy/torch path
    that runs without them. Both must give the same indices."""
    if request.param == "compiled" and kernels._select is None:
        pytest.skip("the compiled selection was not built (no C compiler at install time)")
    previous = kernels.set_enabled(request.param == "compiled")
    try:
        yield request.param
    finally:
        kernels.set_enabled(previous)


@pytest.fixture
def fallback() -> Iterator[None]:
    """The numpy/torch path only (the compiled loops switched off), for tests of its pieces."""
    previous = kernels.set_enabled(False)
    try:
        yield
    finally:
        kernels.set_enabled(previous)

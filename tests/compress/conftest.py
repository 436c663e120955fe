"""Fixtures for the compress tests: each compressor configuration, each value dtype."""

from __future__ import annotations

import pytest
import torch

from .cases import SETTINGS


@pytest.fixture(params=sorted(SETTINGS))
def label(request: pytest.FixtureRequest) -> str:
    """Each compressor configuration by its label, e.g. ``randomk_scaled``."""
    return request.param


@pytest.fixture(params=[torch.float32, torch.float16], ids=["f32", "f16"])
def value_dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param

"""Density warm-up schedule: DGC's stages, then the target."""

from __future__ import annotations

import itertools

import pytest

from sparsgd.compress.warmup import DGC_STAGES, DensitySchedule


def test_dgc_warmup_stages_then_target() -> None:
    schedule = DensitySchedule(target=0.001, warmup_epochs=4)
    got = [schedule.density(e) for e in (0, 0.5, 0.99, 1, 2.5, 3.999, 4, 4.01, 100)]
    s = DGC_STAGES
    assert got == [s[0], s[0], s[0], s[1], s[2], s[3], 0.001, 0.001, 0.001]


def test_warmup_never_sparser_than_target_and_never_increasing() -> None:
    schedule = DensitySchedule(target=0.01, warmup_epochs=2)
    epochs = [i / 10 for i in range(40)]
    densities = [schedule.density(e) for e in epochs]
    assert min(densities) == 0.01
    assert all(a >= b for a, b in itertools.pairwise(densities))
    assert schedule.density(1.6) == 0.01  # the 0.004 stage is below target: target instead


def test_no_warmup() -> None:
    assert DensitySchedule(target=0.05, warmup_epochs=0).density(0.0) == 0.05


def test_state_round_trip_restores_the_schedule() -> None:
    saved = DensitySchedule(target=0.002, warmup_epochs=3, stages=[0.5, 0.1]).state_dict()
    restored = DensitySchedule(target=0.1)
    restored.load_state_dict(saved)
    epochs = [0, 1, 1.4, 1.5, 2.9, 3, 7]
    assert [restored.density(e) for e in epochs] == [0.5, 0.5, 0.5, 0.1, 0.1, 0.002, 0.002]


def test_bad_state_is_refused() -> None:
    schedule = DensitySchedule(target=0.1)
    with pytest.raises(ValueError, match=r"state for DensitySchedule must have keys"):
        schedule.load_state_dict({"target": 0.1})
    bad = {**schedule.state_dict(), "target": 2.0}
    with pytest.raises(ValueError, match=r"target must be in \(0, 1\]; got 2.0"):
        schedule.load_state_dict(bad)
    assert schedule.target == 0.1  # unchanged by the refused load

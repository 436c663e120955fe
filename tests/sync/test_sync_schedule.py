"""Learning-rate warm-up (from a start fraction) and step decay, density warm-up kinds: by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sparsgd.compress import DensitySchedule
from sparsgd.sync.config import SyncConfig, check_config
from sparsgd.sync.schedule import DENSITY_WARMUPS, LrSchedule, warmup_start_fraction


def test_constant_without_warmup_or_decay():
    s = LrSchedule(0.1, steps_per_epoch=10)
    assert [s.lr(t) for t in (0, 5, 99)] == [0.1, 0.1, 0.1]


def test_linear_warmup_reaches_base_at_end_of_warmup():
    s = LrSchedule(0.8, steps_per_epoch=4, warmup_epochs=1)  # 4 warm-up steps
    assert [s.lr(t) for t in range(6)] == [0.2, 0.4, 0.6000000000000001, 0.8, 0.8, 0.8]


def test_step_decay_from_first_step_of_decay_epoch():
    s = LrSchedule(1.0, steps_per_epoch=10, decay_epochs=(2.0, 3.0), decay_factor=0.5)
    assert s.lr(19) == 1.0  # last step of epoch 1
    assert s.lr(20) == 0.5  # first step of epoch 2
    assert s.lr(29) == 0.5
    assert s.lr(30) == 0.25


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_lr": 0.0}, r"lr must be a finite number > 0; got 0.0"),
        ({"warmup_epochs": -1.0}, r"warmup_epochs must be a finite number >= 0; got -1.0"),
        ({"decay_epochs": (0.0,)}, r"lr_decay_epochs must be finite and > 0"),
        ({"decay_factor": 2.0}, r"lr_decay_factor must be in \(0, 1\]; got 2.0"),
        ({"steps_per_epoch": 0}, r"steps_per_epoch must be >= 1; got 0"),
    ],
)
def test_bad_schedule_refused(kwargs, message):
    args = {"base_lr": 0.1, "steps_per_epoch": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        LrSchedule(**args)


# float rounding of a few products and sums of numbers near 1: far below any warm-up increment
ROUNDING = 1e-12


def test_warmup_from_a_start_fraction_by_hand():
    # N = 4 warm-up steps, s = 0.25: warm(t) = 0.25 + 0.75 (t + 1) / 4
    s = LrSchedule(0.8, steps_per_epoch=4, warmup_epochs=1, warmup_start=0.25)
    expected = [0.8 * 0.4375, 0.8 * 0.625, 0.8 * 0.8125, 0.8, 0.8]  # 0.35, 0.5, 0.65, 0.8, 0.8
    assert [s.lr(t) for t in range(5)] == pytest.approx(expected, abs=ROUNDING)


def test_start_zero_is_the_warmup_without_a_start():
    with_start = LrSchedule(0.3, steps_per_epoch=7, warmup_epochs=1.5, warmup_start=0.0)
    without = LrSchedule(0.3, steps_per_epoch=7, warmup_epochs=1.5)
    assert [with_start.lr(t) for t in range(15)] == [without.lr(t) for t in range(15)]


def test_start_one_over_p_is_the_gtopk_authors_warmup_one_step_later():
    # dl_trainer.py: lr_i = lr/P + (lr - lr/P) * i / (10 * iters_per_epoch), i from 0
    lr, workers, spe, epochs = 0.1, 4, 5, 2.0
    start = warmup_start_fraction("1/P", workers)
    s = LrSchedule(lr, spe, warmup_epochs=epochs, warmup_start=start)
    n = int(epochs * spe)
    authors = [lr / workers + (lr - lr / workers) * i / n for i in range(n + 1)]
    assert [s.lr(t) for t in range(n)] == pytest.approx(authors[1:], abs=ROUNDING)
    assert s.lr(n) == lr and s.lr(5 * n) == lr  # warm-up over: the base rate


def test_warmup_start_with_decay():
    s = LrSchedule(1.0, 2, warmup_epochs=2, decay_epochs=(1.0,), decay_factor=0.5, warmup_start=0.5)
    # warm = 0.5 + 0.5 (t + 1) / 4; the decay halves from step 2 (epoch 1) on
    expected = [0.625, 0.75, 0.875 * 0.5, 1.0 * 0.5, 0.5]
    assert [s.lr(t) for t in range(5)] == pytest.approx(expected, abs=ROUNDING)


@pytest.mark.parametrize(
    ("text", "workers", "value"),
    [("1/P", 4, 0.25), ("1/p", 3, 1 / 3), ("1/P", 1, 1.0), ("0", 8, 0.0), ("0.125", 8, 0.125)],
)
def test_warmup_start_fraction(text, workers, value):
    assert warmup_start_fraction(text, workers) == value


@pytest.mark.parametrize(
    ("text", "workers", "message"),
    [
        ("2", 4, r"warmup_start must be a number in \[0, 1\] or '1/P' .*; got '2'"),
        ("-0.1", 4, r"warmup_start must be a number in \[0, 1\] .*; got '-0.1'"),
        ("nan", 4, r"warmup_start must be a number in \[0, 1\] .*; got 'nan'"),
        ("lr/P", 4, r"warmup_start must be a number in \[0, 1\] .*; got 'lr/P'"),
        (0.5, 4, r"warmup_start must be a string \(a number or '1/P'\); got 0.5"),
        ("1/P", 0, r"workers must be an integer >= 1; got 0"),
    ],
)
def test_bad_warmup_start_refused(text, workers, message):
    with pytest.raises(ValueError, match=message):
        warmup_start_fraction(text, workers)


def test_bad_resolved_start_refused():
    with pytest.raises(ValueError, match=r"warmup_start must be in \[0, 1\]; got 1.5"):
        LrSchedule(0.1, 10, warmup_epochs=1, warmup_start=1.5)


def test_gtopk_density_warmup_first_epochs_at_0_004_when_target_is_sparser():
    stages = DENSITY_WARMUPS["gtopk"]
    sparse = DensitySchedule(target=0.001, warmup_epochs=1, stages=stages)
    assert [sparse.density(e) for e in (0, 0.5, 0.99, 1.0, 7.5)] == [
        0.004,
        0.004,
        0.004,
        0.001,
        0.001,
    ]
    two = DensitySchedule(target=0.001, warmup_epochs=2, stages=stages)
    assert [two.density(e) for e in (1.5, 2.0)] == [0.004, 0.001]
    for target in (0.004, 0.01, 1.0):  # not sparser than 0.004: the warm-up changes nothing
        dense = DensitySchedule(target=target, warmup_epochs=1, stages=stages)
        assert [dense.density(e) for e in (0, 0.5, 1, 2)] == [target] * 4


def test_dgc_density_warmup_kind_is_dgcs_stages():
    schedule = DensitySchedule(0.001, 4, DENSITY_WARMUPS["dgc"])
    assert [schedule.density(e) for e in (0, 1, 2, 3, 4)] == [0.25, 0.0625, 0.0156, 0.004, 0.001]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"density_warmup_kind": "exp"}, r"density_warmup_kind must be one of \['dgc', 'gtopk'\]"),
        ({"density_warmup": -1.0}, r"density_warmup must be in \[0.0, inf\); got -1.0"),
        ({"warmup_start": "1.5"}, r"warmup_start must be a number in \[0, 1\] or '1/P'"),
        ({"warmup_start": "1/Q"}, r"warmup_start must be a number in \[0, 1\] or '1/P'"),
    ],
)
def test_config_refuses_bad_warmup_values(change, message):
    with pytest.raises(ValueError, match=message):
        check_config(replace(SyncConfig(out="unused"), **change))

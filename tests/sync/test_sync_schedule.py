"""Learning-rate warm-up and step decay, step by step."""

from __future__ import annotations

import pytest

from sparsgd.sync.schedule import LrSchedule


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

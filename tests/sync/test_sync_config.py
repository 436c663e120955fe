"""Config checks: every bad option named with its value and the reason, before any process."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sparsgd.data import load_dataset
from sparsgd.sync.build import MEMORY_SETTINGS, SELECTION_SETTINGS
from sparsgd.sync.config import (
    TOPK_SELECTIONS,
    SyncConfig,
    check_config,
    check_fits_data,
    config_from_dict,
)

BASE = SyncConfig(out="unused")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "resnet"}, r"model must be one of \[.*'lenet5'.*\]; got 'resnet'"),
        ({"dataset": "imagenet"}, r"dataset must be one of \[.*'digits'.*\]; got 'imagenet'"),
        ({"method": "gtop"}, r"method must be one of \['dense', 'gtopk', 'gtopk_exact', 'topk'\]"),
        ({"memory": "ef"}, r"memory must be one of \['dgc', 'none', 'residual'\]; got 'ef'"),
        ({"density": 1.5}, r"density must be in \(0.0, 1.0\]; got 1.5"),
        ({"density": 0.0}, r"density must be in \(0.0, 1.0\]; got 0.0"),
        ({"density": float("nan")}, r"density must be in \(0.0, 1.0\]; got nan"),
        ({"lr": -0.1}, r"lr must be in \(0.0, inf\); got -0.1"),
        ({"workers": 0}, r"workers must be an integer >= 1; got 0"),
        ({"batch_size": 2.5}, r"batch_size must be an integer >= 1; got 2.5"),
        ({"momentum": 1.0}, r"momentum must be in \[0.0, "),
        ({"steps": 0}, r"steps must be an integer >= 1; got 0"),
        ({"lr_decay_epochs": (3.0, -1.0)}, r"every entry of lr_decay_epochs must be in \(0.0"),
        ({"lr_decay_epochs": (3.0, 2.0)}, r"lr_decay_epochs must be strictly increasing"),
        ({"device": "tpu"}, r"device must be one of \['cpu', 'cuda'\]; got 'tpu'"),
        ({"compressor": "randomk"}, r"compressor picks topk's local selection.*method='gtopk'"),
        ({"method": "topk", "compressor": "dense"}, r"compressor must be one of \['randomk'"),
        ({"method": "topk", "compressor": "threshold"}, r"threshold is the fixed h"),
        ({"method": "dense", "memory": "dgc"}, r"memory 'dgc' .* needs a sparse method"),
        ({"memory": "dgc", "momentum": 0.0}, r"momentum must be > 0"),
        ({"model": "lstm"}, r"model 'lstm' is a language model; dataset must be ptb"),
        ({"dataset": "ptb"}, r"dataset 'ptb' is a token stream; model must be one of \['lstm'\]"),
    ],
)
def test_bad_config_is_refused_naming_option_and_value(change, message):
    with pytest.raises(ValueError, match=message):
        check_config(replace(BASE, **change))


def test_good_configs_pass():
    check_config(BASE)
    check_config(replace(BASE, method="topk", compressor="threshold", threshold=1e-3))
    check_config(replace(BASE, model="lstm", dataset="synthetic-lm", memory="dgc"))


def test_more_workers_than_samples_refused():
    bundle = load_dataset("synthetic", num_train=10, num_test=4)
    check_fits_data(replace(BASE, workers=10), bundle)
    with pytest.raises(
        ValueError,
        match=r"workers must be <= the number of training samples "
        r"\(10\).*got workers=11",
    ):
        check_fits_data(replace(BASE, workers=11), bundle)


def test_language_shard_too_short_for_batch_refused():
    bundle = load_dataset("synthetic-lm", num_train=100, num_test=50)
    config = replace(BASE, model="lstm", dataset="synthetic-lm", workers=2, batch_size=40)
    with pytest.raises(ValueError, match=r"50 training tokens cut into batch_size=40 columns"):
        check_fits_data(config, bundle)


def test_config_round_trips_through_json_dict():
    config = replace(BASE, lr_decay_epochs=(30.0, 60.0), clip=1.0)
    assert config_from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"unknown keys \['lrate'\]"):
        config_from_dict({**config.to_dict(), "lrate": 1})


def test_every_selection_and_memory_has_settings():
    assert sorted(SELECTION_SETTINGS) == sorted(TOPK_SELECTIONS)
    from sparsgd.compress import MEMORIES

    assert sorted(MEMORY_SETTINGS) == sorted(MEMORIES)

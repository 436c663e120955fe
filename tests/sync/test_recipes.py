"""Training recipes: each recipe's fields (vision and language models), the lr rescale, the
warm-up length a study passes, refusals; and a real 2-worker run of the authors' recipe whose
logged learning rate climbs from lr/P as the gTop-k authors' formula says."""

from __future__ import annotations

import dataclasses
import math

import pytest

from sparsgd.runs import RunDir
from sparsgd.sync.config import SyncConfig, check_config, config_from_dict
from sparsgd.sync.recipes import RECIPES, apply_recipe
from sparsgd.sync.train import train

VISION = SyncConfig(
    out="unused", model="lenet5", dataset="mnist", method="gtopk", density=0.00025, workers=4,
    lr=0.05, momentum=0.5, weight_decay=5e-4, memory="none", warmup_epochs=3.0,
    warmup_start="0.5", density_warmup=2.0, epochs=5.0, lr_decay_epochs=(4.0,), clip=2.0,
)  # fmt: skip
LANGUAGE = SyncConfig(
    out="unused", model="lstm", dataset="synthetic-lm", method="gtopk", density=0.001,
    workers=4, lr=20.0, momentum=0.5, weight_decay=1e-5, epochs=3.0,
)  # fmt: skip
# what each recipe sets on VISION and on LANGUAGE (from the gTop-k authors' and DGC's code)
EXPECTED = {
    ("plain", "vision"): {
        "warmup_epochs": 0.0, "warmup_start": "0", "density_warmup": 0.0,
        "density_warmup_kind": "dgc",
    },
    ("authors", "vision"): {
        "memory": "residual", "momentum": 0.9, "weight_decay": 1e-4, "warmup_epochs": 10.0,
        "warmup_start": "1/P", "density_warmup": 1.0, "density_warmup_kind": "gtopk",
    },
    ("authors", "language"): {
        "memory": "residual", "momentum": 0.0, "weight_decay": 0.0, "warmup_epochs": 0.0,
        "warmup_start": "1/P", "density_warmup": 1.0, "density_warmup_kind": "gtopk",
    },
    ("momentum-free", "vision"): {
        "memory": "residual", "momentum": 0.0, "weight_decay": 1e-4, "warmup_epochs": 10.0,
        "warmup_start": "1/P", "density_warmup": 1.0, "density_warmup_kind": "gtopk",
        "lr": 0.5,  # 0.05 x 1/(1 - 0.9)
    },
    ("momentum-free", "language"): {
        "memory": "residual", "momentum": 0.0, "weight_decay": 0.0, "warmup_epochs": 0.0,
        "warmup_start": "1/P", "density_warmup": 1.0, "density_warmup_kind": "gtopk",
        "lr": 20.0,  # the authors' LM has no momentum: nothing to rescale
    },
    ("dgc", "vision"): {
        "memory": "dgc", "momentum": 0.9, "weight_decay": 1e-4, "warmup_epochs": 5.0,
        "warmup_start": "1/P", "density_warmup": 4.0, "density_warmup_kind": "dgc",
    },
    ("dgc", "language"): {
        "memory": "dgc", "momentum": 0.9, "weight_decay": 0.0, "warmup_epochs": 5.0,
        "warmup_start": "1/P", "density_warmup": 4.0, "density_warmup_kind": "dgc",
    },
}  # fmt: skip
EXPECTED[("plain", "language")] = EXPECTED[("plain", "vision")]
BASES = {"vision": VISION, "language": LANGUAGE}


def changed_fields(before: SyncConfig, after: SyncConfig) -> dict:
    return {
        f.name: getattr(after, f.name)
        for f in dataclasses.fields(SyncConfig)
        if getattr(after, f.name) != getattr(before, f.name)
    }


def test_registry_names_and_texts():
    assert set(RECIPES) >= {"plain", "authors", "momentum-free", "dgc"}
    for key, recipe in RECIPES.items():
        assert recipe.name == key and recipe.summary and recipe.source
    assert "1/(1 - 0.9) = 10" in RECIPES["momentum-free"].summary  # the rescale, stated
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECIPES["plain"].name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(("name", "kind"), sorted(EXPECTED))
def test_each_recipe_sets_exactly_its_fields(name, kind):
    base = BASES[kind]
    config = apply_recipe(base, name)
    wanted = {**EXPECTED[(name, kind)], "recipe": name}
    # fields equal to the base's do not show as changed: compare the recipe's values in full
    assert {k: getattr(config, k) for k in wanted} == wanted
    assert set(changed_fields(base, config)) <= set(wanted)  # nothing else moved
    assert base.recipe is None  # the input is not modified
    check_config(config)


def test_study_passes_its_warmup_length():
    for name in ("authors", "momentum-free", "dgc"):
        assert apply_recipe(VISION, name, warmup_epochs=1).warmup_epochs == 1.0
        assert apply_recipe(VISION, name, warmup_epochs=0).warmup_epochs == 0.0
    # the authors' LSTM has no warm-up, but a study may still ask for one
    assert apply_recipe(LANGUAGE, "authors", warmup_epochs=0.5).warmup_epochs == 0.5


@pytest.mark.parametrize(
    ("name", "warmup", "message"),
    [
        ("plain", 1.0, r"recipe 'plain' has no learning-rate warm-up; got warmup_epochs=1.0"),
        ("authors", -1.0, r"warmup_epochs must be a finite number >= 0 .*; got -1.0"),
        ("authors", math.inf, r"warmup_epochs must be a finite number >= 0 .*; got inf"),
        ("dgc", True, r"warmup_epochs must be a finite number >= 0 .*; got True"),
    ],
)
def test_bad_warmup_length_refused(name, warmup, message):
    with pytest.raises(ValueError, match=message):
        apply_recipe(VISION, name, warmup_epochs=warmup)


def test_unknown_recipe_refused_listing_the_names():
    with pytest.raises(ValueError, match=r"recipe must be one of \['authors', 'dgc', .*'plain'"):
        apply_recipe(VISION, "goyal")


def test_second_recipe_refused():
    once = apply_recipe(VISION, "momentum-free")
    with pytest.raises(ValueError, match=r"config already follows recipe 'momentum-free'"):
        apply_recipe(once, "momentum-free")  # would rescale lr to 100x


def test_recipe_is_stored_in_config_json_form():
    config = apply_recipe(VISION, "authors", warmup_epochs=2)
    stored = config.to_dict()
    assert stored["recipe"] == "authors" and stored["warmup_start"] == "1/P"
    assert config_from_dict(stored) == config
    old = {k: v for k, v in stored.items() if k not in ("recipe", "warmup_start")}
    assert config_from_dict(old).recipe is None  # a config.json from before recipes loads


def test_dgc_recipe_on_dense_is_refused_by_the_config_check():
    with pytest.raises(ValueError, match=r"memory 'dgc' .* needs a sparse method"):
        check_config(apply_recipe(dataclasses.replace(VISION, method="dense"), "dgc"))


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
def test_authors_recipe_trains_with_lr_from_lr_over_p(tmp_path):
    """2 real workers on digits: every step's logged rate is the authors' warm-up formula
    (one step later, sync/schedule.py), the first epoch runs at density 0.004, and the
    test loss ends below ln 10, the loss of a uniform guess over the 10 classes."""
    base = SyncConfig(
        out=str(tmp_path / "run"), model="fnn3", hidden_size=32, dataset="digits", workers=2,
        method="gtopk", density=0.002, lr=0.1, batch_size=32, epochs=2.0, log_every=1,
        progress=False,
    )  # fmt: skip
    config = apply_recipe(base, "authors", warmup_epochs=1)
    summary = train(config)
    run = RunDir(config.out, resume=True)
    assert run.read_config()["recipe"] == "authors"
    records = run.read_log()
    steps = [r for r in records if r["kind"] == "step"]
    spe = 23  # ceil(718 samples per worker / 32)
    assert [r["step"] for r in steps] == list(range(1, 2 * spe + 1))
    lr, p, n = 0.1, 2, spe  # one warm-up epoch: n steps
    for r in steps:  # a record at step s carries the rate of step s - 1, i.e. iteration s
        i = r["step"]
        authors = lr / p + (lr - lr / p) * i / n if i < n else lr
        assert r["lr"] == pytest.approx(authors, abs=1e-12)
    assert steps[0]["lr"] == pytest.approx(lr / p + (lr - lr / p) / n, abs=1e-12)
    assert {r["density"] for r in steps if r["step"] <= spe} == {0.004}
    assert {r["density"] for r in steps if r["step"] > spe} == {0.002}
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["step"] for r in epochs] == [spe, 2 * spe]
    assert epochs[-1]["test_loss"] < math.log(10)
    assert summary["skipped_nonfinite_steps"] == 0

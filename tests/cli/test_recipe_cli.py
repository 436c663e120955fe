"""``sparsgd train --recipe``: explicit options beat the preset, --lr is what it rescales,
--help lists the recipes, other modes and --resume refuse it."""

from __future__ import annotations

import pytest

from sparsgd.cli.main import build_parser, main
from sparsgd.cli.options import given_options
from sparsgd.cli.train import _config
from sparsgd.sync.config import SyncConfig
from sparsgd.sync.recipes import RECIPES, apply_recipe


def config_of(*argv: str) -> SyncConfig:
    return _config(build_parser().parse_args(["train", "--out", "unused", *argv]))


def test_given_options_are_those_on_the_line_even_at_their_default():
    args = build_parser().parse_args(
        ["train", "--momentum", "0.5", "--no-progress", "--lr-decay-epochs", "3", "--reduced"]
    )
    assert given_options(args) == {"momentum", "progress", "lr_decay_epochs", "reduced"}
    assert args.momentum == 0.5 and args.progress is False and args.reduced is True
    assert given_options(build_parser().parse_args(["train"])) == frozenset()


def test_recipe_alone_equals_the_api():
    assert config_of("--recipe", "authors") == apply_recipe(SyncConfig(out="unused"), "authors")
    for name in RECIPES:
        assert config_of("--recipe", name).recipe == name


def test_explicit_options_win_over_the_recipe():
    config = config_of(
        "--recipe", "authors", "--momentum", "0.5", "--warmup-epochs", "2",
        "--density-warmup", "0", "--no-progress",
    )  # fmt: skip
    assert config.momentum == 0.5  # explicit, though 0.5 is also the option's default
    assert config.warmup_epochs == 2.0 and config.density_warmup == 0.0
    assert config.progress is False
    assert config.weight_decay == 1e-4 and config.warmup_start == "1/P"  # the recipe's
    assert config.recipe == "authors"


def test_lr_given_is_the_rate_the_recipe_rescales():
    assert config_of("--recipe", "momentum-free", "--lr", "0.05").lr == 0.5
    assert config_of("--recipe", "momentum-free").lr == 1.0  # the default 0.1, rescaled
    assert config_of("--recipe", "authors", "--lr", "0.05").lr == 0.05


def test_plain_with_an_explicit_warmup_keeps_it():
    config = config_of("--recipe", "plain", "--warmup-epochs", "1")
    assert config.warmup_epochs == 1.0 and config.warmup_start == "0"


def test_unknown_recipe_refused(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--recipe", "goyal"]) == 2
    assert "recipe must be one of ['authors', 'dgc', 'momentum-free', 'plain']" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("mode", ["async", "sim"])
def test_other_modes_refuse_recipe(tmp_path, capsys, mode):
    assert main(["train", "--mode", mode, "--out", str(tmp_path / "r"), "--recipe", "dgc"]) == 2
    assert f"--recipe applies to --mode sync only; got it with --mode {mode}" in (
        capsys.readouterr().err
    )


def test_resume_refuses_recipe(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--recipe", "authors"]) == 2
    assert "cannot change --recipe" in capsys.readouterr().err


def test_help_lists_every_recipe_with_its_summary(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # help wraps lines
    assert "--recipe NAME" in text
    for recipe in RECIPES.values():
        assert f"{recipe.name} {recipe.summary}" in text

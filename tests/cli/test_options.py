"""Options made from config fields: names, defaults and types round-trip; checks stay in configs."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.cli.options import add_options, comma_floats, flag_of, option_fields, option_values
from sparsgd.sync.config import SyncConfig, check_config


def _parser(cls: type) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_options(parser, cls)
    return parser


def test_every_sync_field_but_out_and_extra_is_an_option():
    names = {f.name for f in option_fields(SyncConfig)}
    assert names == {f.name for f in dataclasses.fields(SyncConfig)} - {"out", "extra"}


def test_no_options_give_the_config_defaults():
    values = option_values(_parser(SyncConfig).parse_args([]), SyncConfig)
    assert SyncConfig(out="x", **values) == SyncConfig(out="x")
    own = option_values(_parser(AsyncConfig).parse_args([]), AsyncConfig)
    assert AsyncConfig(**own) == AsyncConfig()


def test_flags_types_and_switches():
    argv = ["--timeout", "5", "--no-progress", "--lr-decay-epochs", "30,60", "--workers", "3",
            "--clip", "1.5", "--reduced"]  # fmt: skip
    args = _parser(SyncConfig).parse_args(argv)
    config = SyncConfig(out="x", **option_values(args, SyncConfig))
    assert config.timeout_s == 5.0 and config.progress is False and config.reduced is True
    assert config.lr_decay_epochs == (30.0, 60.0) and config.workers == 3 and config.clip == 1.5
    timeout = next(f for f in option_fields(SyncConfig) if f.name == "timeout_s")
    assert flag_of(timeout) == "--timeout"


def test_choices_are_listed_in_help_but_checked_by_the_config():
    parser = _parser(SyncConfig)
    assert "one of: none, residual, dgc" in parser.format_help()
    args = parser.parse_args(["--memory", "forgetful"])  # argparse lets it through
    with pytest.raises(ValueError, match=r"memory must be one of .*; got 'forgetful'"):
        check_config(SyncConfig(out="x", **option_values(args, SyncConfig)))


def test_comma_floats_and_refusals():
    assert comma_floats("") == ()
    assert comma_floats("1, 2.5") == (1.0, 2.5)
    with pytest.raises(argparse.ArgumentTypeError, match="got '1,x'"):
        comma_floats("1,x")
    with pytest.raises(TypeError, match="cls must be a dataclass"):
        option_fields(int)

    @dataclasses.dataclass
    class Odd:
        table: dict = dataclasses.field(default_factory=dict, metadata={"help": "a table"})

    with pytest.raises(TypeError, match="field table has a type no option can parse"):
        add_options(argparse.ArgumentParser(), Odd)

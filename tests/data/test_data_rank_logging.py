"""Only rank 0 says where it reads data from: the other ranks log that line at DEBUG."""

from __future__ import annotations

import logging

import pytest

from sparsgd.data import load_dataset
from sparsgd.data.rank import process_rank, talk_level

READING = "reading mnist from"


@pytest.fixture(autouse=True)
def propagate(monkeypatch):
    """caplog listens on the root logger; an in-process CLI test may have cut sparsgd off it."""
    monkeypatch.setattr(logging.getLogger("sparsgd"), "propagate", True)


def _reading_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(READING)]


@pytest.mark.parametrize(("rank", "level"), [("0", logging.INFO), ("3", logging.DEBUG)])
def test_the_reading_line_is_info_on_rank_0_only(mnist_folder, monkeypatch, caplog, rank, level):
    folder, _ = mnist_folder
    monkeypatch.setenv("RANK", rank)  # as torchrun sets it before any process group exists
    with caplog.at_level(logging.DEBUG, logger="sparsgd"):
        load_dataset("mnist", folder)
    (record,) = _reading_records(caplog)
    assert record.levelno == level and str(folder) in record.getMessage()


def test_rank_1_at_info_prints_nothing(mnist_folder, monkeypatch, caplog):
    """What a torchrun rank 1 shows with INFO logging configured: no reading line."""
    folder, _ = mnist_folder
    monkeypatch.setenv("RANK", "1")
    with caplog.at_level(logging.INFO, logger="sparsgd"):
        load_dataset("mnist", folder)
    assert _reading_records(caplog) == []


def test_rank_without_torchrun_is_0_and_a_bad_rank_is_named(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert process_rank() == 0 and talk_level() == logging.INFO
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="environment variable RANK must be an integer; got 'one'"):
        process_rank()

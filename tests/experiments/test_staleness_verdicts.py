"""The staleness study's choices (lr*, best counter-measure) and its per-cell verdicts."""

from __future__ import annotations

import math

import pytest

from sparsgd.experiments.staleness_report import interval
from sparsgd.experiments.staleness_verdicts import (
    CHANCE_FACTOR,
    MARGIN,
    best_counter,
    cell_verdicts,
    choose_lr,
)

LRS = (0.01, 0.1)
S = 8
T_975_2 = 4.3026527  # Student t quantile 0.975 with 2 degrees of freedom (tables)
TABLE_REL = 1e-7  # the table's 8 significant digits


def _runs(valid: list[float], test: list[float]) -> list[dict]:
    return [{"valid_accuracy": v, "test_accuracy": t} for v, t in zip(valid, test, strict=True)]


def test_lr_is_chosen_on_held_out_accuracy_never_on_test():
    runs = {
        (S, "vanilla", 0.01): _runs([0.90, 0.91, 0.92], [0.99, 0.99, 0.99]),
        (S, "vanilla", 0.1): _runs([0.95, 0.95, 0.95], [0.50, 0.50, 0.50]),
    }
    assert choose_lr(runs, S, "vanilla", LRS) == 0.1
    assert choose_lr(runs, S, "dc-asgd", LRS) is None  # never ran


def test_a_tie_goes_to_the_smaller_lr():
    runs = {(S, "vanilla", lr): _runs([0.9, 0.9], [0.9, 0.9]) for lr in LRS}
    assert choose_lr(runs, S, "vanilla", (0.1, 0.01)) == 0.01


def test_best_counter_measure_by_held_out_accuracy_at_its_own_lr():
    runs = {
        (S, "staleness-aware", 0.01): _runs([0.80, 0.80], [0.99, 0.99]),
        (S, "staleness-aware", 0.1): _runs([0.85, 0.85], [0.60, 0.60]),
        (S, "dampening", 0.01): _runs([0.70, 0.70], [0.70, 0.70]),
        (S, "dampening", 0.1): _runs([0.90, 0.90], [0.70, 0.70]),
    }
    assert best_counter(runs, S, LRS) == ("dampening", 0.1)


def _cell(sparse: list[float], vanilla: list[float], counter: list[float]) -> dict:
    """lr 0.1 is every method's lr*; at lr 0.01 the test scores are far off, so a verdict
    read at the wrong lr would differ."""
    held_out_best, held_out_worse = [0.9] * 3, [0.5] * 3
    runs = {}
    for method, test in (("topk-0.01", sparse), ("vanilla", vanilla), ("dc-asgd", counter)):
        runs[(S, method, 0.1)] = _runs(held_out_best, test)
        runs[(S, method, 0.01)] = _runs(held_out_worse, [0.99, 0.99, 0.99])
    return runs


def test_not_worse_holds_when_top_k_matches_vanilla():
    v = cell_verdicts(_cell([0.952, 0.949, 0.951], [0.950, 0.950, 0.950], [0.95] * 3), S, LRS, 10)
    assert (v.vanilla_lr, v.sparse_lr, v.counter) == (0.1, 0.1, ("dc-asgd", 0.1))
    assert v.later.word == "agrees"
    assert v.v1_vanilla.word == "inconclusive"  # neither better nor worse
    assert v.v1.word == "inconclusive"


def test_top_k_clearly_worse_disagrees_with_both_versions():
    loss = 5 * MARGIN
    vanilla = [0.95, 0.94, 0.96]
    sparse = [a - loss + d for a, d in zip(vanilla, (0.001, -0.001, 0.0), strict=True)]
    v = cell_verdicts(_cell(sparse, vanilla, [0.95] * 3), S, LRS, 10)
    assert v.later.word == "disagrees"
    assert v.v1.word == "disagrees"


def test_v1_needs_top_k_better_than_vanilla_and_than_the_counter_measure():
    vanilla = [0.90, 0.91, 0.89]
    sparse = [0.95, 0.951, 0.949]
    better_counter = [0.97, 0.971, 0.969]
    assert cell_verdicts(_cell(sparse, vanilla, [0.9] * 3), S, LRS, 10).v1.word == "agrees"
    v = cell_verdicts(_cell(sparse, vanilla, better_counter), S, LRS, 10)
    assert (v.v1_vanilla.word, v.v1_counter.word, v.v1.word) == ("agrees", "disagrees", "disagrees")


def test_a_cell_where_every_run_stayed_at_chance_is_inconclusive():
    at_chance = CHANCE_FACTOR / 10  # 10 classes
    v = cell_verdicts(_cell([0.10, 0.11, 0.10], [0.13, 0.14, at_chance], [0.12] * 3), S, LRS, 10)
    assert v.later.word == "inconclusive" and "chance" in v.later.text
    assert v.v1.word == "inconclusive"


def test_a_cell_without_vanilla_gives_no_verdict():
    runs = _cell([0.9] * 3, [0.9] * 3, [0.9] * 3)
    del runs[(S, "vanilla", 0.1)], runs[(S, "vanilla", 0.01)]
    assert cell_verdicts(runs, S, LRS, 10) is None


def test_interval_is_the_t_interval_of_the_mean():
    mean, half = interval([1.0, 2.0, 3.0])  # sample std 1
    assert mean == 2.0
    assert half == pytest.approx(T_975_2 / math.sqrt(3), rel=TABLE_REL)
    assert interval([0.5]) == (0.5, None)

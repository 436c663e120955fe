"""Argument types shared by the ``sparsgd bench`` commands: a bad value is refused by argparse
with the flag, the rule and the value (``argument --numel: must be an integer >= 1; got '0'``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["density", "integer", "positive_number"]


def _parsed(text: str, parse: Callable[[str], float], ok: Callable[[float], bool], rule: str):
    try:
        value = parse(text)
    except ValueError:
        value = math.nan
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{rule}; got {text!r}")
    return value


def integer(minimum: int) -> Callable[[str], int]:
    """An integer >= ``minimum``, also written like 1e7."""

    def parse(text: str) -> int:
        ok = lambda v: math.isfinite(v) and v == int(v) and v >= minimum  # noqa: E731
        return int(_parsed(text, float, ok, f"must be an integer >= {minimum}"))

    return parse


def positive_number(text: str) -> float:
    return _parsed(text, float, lambda v: math.isfinite(v) and v > 0, "must be a number > 0")


def density(text: str) -> float:
    return _parsed(text, float, lambda v: math.isfinite(v) and 0 < v <= 1, "must be in (0, 1]")

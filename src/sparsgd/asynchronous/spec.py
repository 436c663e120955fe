"""``NAME:ARG,ARG`` specification strings, parsed against an explicit table of kinds.

Distributions on the command line are written as a name and its parameters:

    constant:3                      ->  SpecKind "constant",  args (3.0,)
    shifted-exponential:0.01,0.02   ->  SpecKind "shifted-exponential", args (0.01, 0.02)
    vanilla                         ->  a kind without parameters

Every kind carries its syntax (``uniform:S``) so that an unknown name lists the valid ones
with the parameters they take. Parameters must be finite numbers >= 0 here; each kind's
constructor then checks its own stricter rules (an integer, a positive mean) and names the
parameter in its error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["SpecKind", "check_nonneg", "check_nonneg_int", "describe_kinds", "make_from_spec"]

T = TypeVar("T")


@dataclass(frozen=True)
class SpecKind(Generic[T]):
    """One entry of a spec table: ``build(*args)`` makes the object ``syntax`` describes."""

    syntax: str  # e.g. "uniform:S"
    params: tuple[str, ...]  # e.g. ("S",)
    summary: str  # one line for --help and error messages
    build: Callable[..., T]


def describe_kinds(kinds: Mapping[str, SpecKind[T]]) -> str:
    """``"constant:K (every update K stale), uniform:S (...)"`` for errors and --help."""
    return ", ".join(f"{kind.syntax} ({kind.summary})" for kind in kinds.values())


def _number(text: str, param: str, spec: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"{what} parameter {param} must be a number; got {text!r} in {spec!r}"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"{what} parameter {param} must be finite; got {text!r} in {spec!r}")
    if value < 0:
        raise ValueError(f"{what} parameter {param} must be >= 0; got {value} in {spec!r}")
    return value


def make_from_spec(spec: str, kinds: Mapping[str, SpecKind[T]], what: str) -> T:
    """Parse ``spec`` (``NAME`` or ``NAME:A,B``) and build it from ``kinds``.

    Raises ValueError naming ``what`` (e.g. "staleness distribution"), the bad text and the
    valid kinds with their syntax.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"{what} must be a string NAME[:ARGS]; got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    if name not in kinds:
        raise ValueError(f"unknown {what} {name!r}; valid: {describe_kinds(kinds)}")
    kind = kinds[name]
    texts = [t.strip() for t in rest.split(",")] if rest.strip() else []
    if len(texts) != len(kind.params):
        raise ValueError(
            f"{what} {name!r} takes {len(kind.params)} parameter(s), written {kind.syntax}; "
            f"got {spec!r}"
        )
    args = [_number(t, p, spec, what) for t, p in zip(texts, kind.params, strict=True)]
    return kind.build(*args)


def check_nonneg(value: float, name: str, *, positive: bool = False) -> float:
    """``value`` must be a finite number >= 0 (> 0 with ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number; got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be {bound}; got {value}")
    return float(value)


def check_nonneg_int(value: float, name: str) -> int:
    """``value`` must be a whole number >= 0 (3 and 3.0 pass, 2.5 and -1 do not)."""
    check_nonneg(value, name)
    if float(value) != math.floor(value):
        raise ValueError(f"{name} must be a whole number >= 0; got {value}")
    return int(value)

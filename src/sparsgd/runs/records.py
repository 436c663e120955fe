"""JSON records of a run, refused loudly when they hold a non-finite number.

A log line such as ``{"step": 10, "train_loss": NaN}`` is not valid JSON (``json`` would write
the bare word ``NaN``) and hides a diverged run inside a file that looks healthy. Every record
goes through :func:`check_record` first: it walks dicts and lists and raises
:class:`NonFiniteRecordError` naming the key path of the first NaN or infinity it meets.

Values allowed: ``None``, ``bool``, ``int``, finite ``float``, ``str``, and dicts (string keys) and
lists / tuples of those. Anything else (a tensor, a numpy scalar) is refused with its type, so
the caller converts it with ``float(...)`` or ``int(...)`` on purpose.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["NonFiniteRecordError", "check_record", "dumps_record"]


class NonFiniteRecordError(ValueError):
    """A record meant for the run folder holds NaN or an infinity."""


def check_record(record: Any, where: str = "record") -> None:
    """Raise if ``record`` holds a non-finite float or a value JSON cannot carry exactly."""
    if record is None or isinstance(record, (bool, int, str)):
        return
    if isinstance(record, float):
        if not math.isfinite(record):
            raise NonFiniteRecordError(
                f"{where} must be a finite number; got {record} "
                "(a diverged run: lower --lr, use --clip, or inspect the last log records)"
            )
        return
    if isinstance(record, dict):
        for key, value in record.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} keys must be strings; got {key!r}")
            check_record(value, f"{where}.{key}")
        return
    if isinstance(record, (list, tuple)):
        for i, value in enumerate(record):
            check_record(value, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} must hold only None, bool, int, float, str, dict or list; "
        f"got {type(record).__name__} - convert it with float() or int()"
    )


def dumps_record(record: dict[str, Any], indent: int | None = None) -> str:
    """``json.dumps`` of a checked record (keys in insertion order)."""
    check_record(record)
    return json.dumps(record, indent=indent, allow_nan=False)

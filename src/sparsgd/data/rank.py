"""Only rank 0 talks: the log level of the data loaders' progress lines.

Every rank of a run loads its data, so a line such as "reading mnist from DIR" would appear P
times, once per process. The loaders log such lines at :func:`talk_level`: INFO on rank 0 and
DEBUG on every other rank, whatever the entry point configured. The entry points also set the
``sparsgd`` logger to WARNING on ranks other than 0 (``sparsgd train``'s worker setup); this
module makes the data loaders quiet even where nobody did.

The rank is torch.distributed's when a process group is up, else ``$RANK`` (torchrun sets it
before any group exists, and data is loaded before the group is joined), else 0.
"""

from __future__ import annotations

import logging
import os

import torch.distributed as dist

__all__ = ["process_rank", "talk_level"]


def process_rank() -> int:
    """This process's rank in the run (0 when it runs alone)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    text = os.environ.get("RANK", "0")
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable RANK must be an integer; got {text!r}") from None


def talk_level() -> int:
    """``logging.INFO`` on rank 0, ``logging.DEBUG`` on the other ranks."""
    return logging.INFO if process_rank() == 0 else logging.DEBUG

"""Independent random streams derived from one run seed, the same in every process.

Every consumer of randomness, in the synchronous trainer and at the parameter server alike,
gets its own ``torch.Generator`` seeded from the run seed and a path of keys that names it,
e.g. ``("worker", 3, "batches")`` or ``("data-order", rank)``:

    seed(path) = first 8 bytes of SHA-256("<seed>/<key>/<key>/...")  mod 2^63

A hash rather than ``seed + worker`` so that no two paths (or two run seeds) share a stream,
and not Python's ``hash``, which differs between processes.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_seed", "generator_for"]


def derive_seed(seed: int, *keys: object) -> int:
    """A seed in [0, 2^63) for the stream named ``keys`` under the run seed ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer; got {seed!r}")
    text = "/".join(str(part) for part in (seed, *keys))
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") % (1 << 63)


def generator_for(seed: int, *keys: object) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` ``(seed, *keys)``."""
    return torch.Generator().manual_seed(derive_seed(seed, *keys))

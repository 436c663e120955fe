"""The compiled loops of the exact top-k (``_select.c``), called on tensors.

The install compiles ``src/sparsgd/compress/_select.c`` into ``sparsgd.compress._select``
when a C compiler is there (pyproject.toml marks the extension optional). Without it, or with
the environment variable ``SPARSGD_NO_KERNELS=1`` (read at import; :func:`set_enabled`
switches them in a running process), or for inputs it does not take (not on
CPU, not contiguous, not float32/float64), the callers use their numpy/torch paths, which give
the same indices. Five calls, each one pass of compiled code with the GIL released:

    candidates(x, t, scratch)      # (1) (indices, |x|) of every i with not(|x_i| < t)
    select(indices, mags, k)       # (2) exact top-k among candidates, ties to the lower index
    topk(x, k, plan, scratch)      # (3) exact top-k of x (sample, candidates, select, in
                                   #     one call); None if x holds NaN or Inf
    topk_message(x, k, plan, ...)  #     the same, straight into a float32 message with
                                   #     int32 indices (the whole compressor in one call)
    union_sum(ai, av, bi, bv)      # (4) union of two sparse sets, values summed (gTop-k's merge)
    complement(positions, n)       # (5) [0, n) without the given positions (what a merge drops)

Why compiled: the candidate pass of numpy (abs, compare, negate, nonzero: four passes over
each chunk, and two temporary arrays) costs about 6x one read of x at d = 1e7; the same test
in one loop, which skips a block of 32 entries with one vectorised compare when none is a
candidate, costs about one read (docs/compression.md has the measurements). On x86-64 CPUs
with AVX2 the float32 pass reads each block's candidates out as a bit mask with vector
compares (:func:`set_simd` switches that version off).
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from sparsgd.compress.message import SparseMessage
from sparsgd.compress.scratch import Scratch

try:  # built by the install when a C compiler was found
    from sparsgd.compress import _select
except ImportError:  # pragma: no cover - depends on the install
    _select = None

__all__ = [
    "built",
    "candidates",
    "compiled",
    "complement",
    "select",
    "set_enabled",
    "set_simd",
    "topk",
    "topk_message",
    "union_sum",
    "usable",
]

CODES = {torch.float32: 0, torch.float64: 1}
_INT32 = torch.empty(0, dtype=torch.int32)  # template of the messages' index tensors
DEFAULT_CAP = 1 << 14  # candidate slots on a first call; grown (one more pass) when short


_enabled = os.environ.get("SPARSGD_NO_KERNELS", "") in ("", "0")  # read once, at import


def built() -> bool:
    """Whether the compiled module was built and is switched on."""
    return _select is not None and _enabled


def compiled() -> bool:
    """Whether the compiled module was built, switched on or not (callers that keep buffers
    for it allocate them only then)."""
    return _select is not None


def set_enabled(on: bool) -> bool:
    """Switch the compiled loops on or off in this process (tests and ``bench select``
    compare both paths); returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(on)
    return previous


def set_simd(on: bool) -> bool:
    """Switch the AVX2 version of the float32 candidate pass on (where the CPU has AVX2) or
    off (the portable loop: the same candidates; tests run both); returns the previous
    setting. Needs the compiled module."""
    return bool(_select.set_simd(bool(on)))


def usable(x: Tensor) -> bool:
    """Whether the compiled loops take ``x``: built, CPU, contiguous, float32 or float64."""
    # built() written out, and is_cpu rather than device.type: this runs on every selection
    return _select is not None and _enabled and x.is_cpu and x.dtype in CODES and x.is_contiguous()


def candidates(x: Tensor, t: float, scratch: Scratch) -> tuple[Tensor, Tensor]:
    """(1) ``(indices, magnitudes)`` of every i with ``not (|x_i| < t)`` (NaN and Inf
    included), indices int64 ascending; fresh tensors. ``x`` must be :func:`usable`."""
    d, code = x.numel(), CODES[x.dtype]
    cap = max(scratch.capacity("kernel_idx"), DEFAULT_CAP)
    for _ in range(2):  # at most one rerun: the second has room for every candidate
        idx = scratch.take("kernel_idx", cap, torch.int64, x.device)
        mag = scratch.take("kernel_mag", cap, x.dtype, x.device)
        count = _select.candidates(x.data_ptr(), d, code, t, idx.data_ptr(), mag.data_ptr(), cap)
        if count <= cap:
            return idx[:count].clone(), mag[:count].clone()
        cap = count
    raise AssertionError("unreachable: the second pass had room for every candidate")


def select(indices: Tensor | None, magnitudes: Tensor, k: int) -> Tensor:
    """(2) ``(k,)`` int64: the entries of ``indices`` (0..m-1 when None) whose magnitudes are
    the k largest, ties to the earlier entry, in the order given. ``magnitudes``: finite,
    :func:`usable`; ``indices``: int64 contiguous of the same length; ``1 <= k <= m``."""
    m = magnitudes.numel()
    out = torch.empty(k, dtype=torch.int64)
    work = torch.empty(m, dtype=magnitudes.dtype)
    idx_ptr = 0 if indices is None else indices.data_ptr()
    code = CODES[magnitudes.dtype]
    _select.select(magnitudes.data_ptr(), idx_ptr, m, k, code, work.data_ptr(), out.data_ptr())
    return out


def topk(
    x: Tensor, k: int, plan: tuple[int, int, tuple[int, int, int]], scratch: Scratch
) -> Tensor | None:
    """(3) ``(k,)`` int64 ascending indices of the k largest ``|x_i|``, ties to the lower
    index; None if x holds NaN or Inf. ``plan = (start, stride, ranks)``: the sample
    ``x[start::stride]`` and its three ranks (stride 0: no sample, all of x at once).
    ``x`` must be :func:`usable`."""
    out = torch.empty(k, dtype=torch.int64)
    start, stride, (r1, r2, r3) = plan
    d = x.numel()
    work = scratch.address("magnitudes", d, x.dtype)  # the sample, or |x| (no sample)
    ptr, code, o_ptr = x.data_ptr(), CODES[x.dtype], out.data_ptr()
    status = _select.topk(ptr, d, k, code, start, stride, r1, r2, r3, work, o_ptr, 0, 0)
    if status == -2:
        raise MemoryError(f"top-k of {d} entries: no memory for the candidates")
    return out if status == 0 else None


def topk_message(
    x: Tensor, k: int, plan: tuple[int, int, tuple[int, int, int]], work: int
) -> SparseMessage | None:
    """(3) as a message: int32 indices and x's values there, written by the loop that chooses
    them; None if x holds NaN or Inf. ``x``: float32, :func:`usable`, under 2**31 entries;
    ``work``: the address of a float32 buffer of at least x.numel() entries, the caller's
    (a call of a few microseconds at small d: no buffer lookup of its own)."""
    # the call written out, not shared with topk: with a status helper bench select's ratio
    # to torch.topk at 100 entries fell from 1.12-1.13x to 1.05-1.06x (two runs each)
    indices = _INT32.new_empty(k)  # new_empty of a template: no dtype argument to parse
    values = x.new_empty(k)
    start, stride, (r1, r2, r3) = plan
    d, i_ptr, v_ptr = x.numel(), indices.data_ptr(), values.data_ptr()
    status = _select.topk(x.data_ptr(), d, k, 0, start, stride, r1, r2, r3, work, 0, i_ptr, v_ptr)
    if status == 0:
        return SparseMessage.unchecked(indices, values, d)
    if status == -2:
        raise MemoryError(f"top-k of {d} entries: no memory for the candidates")
    return None


def union_sum(a_idx: Tensor, a_val: Tensor, b_idx: Tensor, b_val: Tensor) -> tuple[Tensor, Tensor]:
    """(4) the union of two sparse sets (int64 ascending distinct indices, values of one dtype
    that :func:`usable` takes), ascending, values summed where both hold an index: the
    ``sort``, ``unique_consecutive`` and ``index_add_`` into zeros of the torch path, with the
    same bits, in one linear merge. Fresh tensors, as long as the union."""
    n = a_idx.numel() + b_idx.numel()
    out_idx = torch.empty(n, dtype=torch.int64)
    out_val = torch.empty(n, dtype=a_val.dtype)
    ptrs = (a_idx.data_ptr(), a_val.data_ptr(), a_idx.numel(), b_idx.data_ptr(), b_val.data_ptr())
    m = _select.union_sum(
        *ptrs, b_idx.numel(), CODES[a_val.dtype], out_idx.data_ptr(), out_val.data_ptr()
    )
    return out_idx[:m], out_val[:m]


def complement(positions: Tensor, n: int) -> Tensor:
    """(5) ``(n - k,)`` int64: the ascending integers of ``[0, n)`` not among ``positions``
    (``(k,)`` int64 ascending distinct, contiguous, within ``[0, n)``)."""
    out = torch.empty(n - positions.numel(), dtype=torch.int64)
    _select.complement(positions.data_ptr(), positions.numel(), n, out.data_ptr())
    return out

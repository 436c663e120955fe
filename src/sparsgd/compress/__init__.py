"""sparsgd.compress: pure tensor math of gradient sparsification (no torch.distributed).

    g -> memory.compensate(g) = p -> compressor.compress(p, density) = msg -> (comm) ->
      memory.update_(residual_after(p, msg), msg.indices)

Compressors (``dense``, ``topk``, ``randomk``, ``threshold``, ``sampled``) through
:func:`make_compressor`, layer-wise selection with :class:`LayerwiseCompressor`, memories
(``none``, ``residual``, ``dgc``) through :func:`make_memory`, density warm-up with
:class:`DensitySchedule`, the wire format in :mod:`sparsgd.compress.message`.
"""

from sparsgd.compress.base import Compressor, decompress, residual_after
from sparsgd.compress.checks import NonFiniteError, check_finite, k_from_density
from sparsgd.compress.layerwise import LayerwiseCompressor, layer_sizes
from sparsgd.compress.memory import MEMORIES, Memory, make_memory
from sparsgd.compress.message import SparseMessage, dense_bytes, message_bytes
from sparsgd.compress.registry import COMPRESSORS, make_compressor
from sparsgd.compress.topk import topk_indices
from sparsgd.compress.topk_reference import topk_reference
from sparsgd.compress.warmup import DensitySchedule

__all__ = [
    "COMPRESSORS",
    "MEMORIES",
    "Compressor",
    "DensitySchedule",
    "LayerwiseCompressor",
    "Memory",
    "NonFiniteError",
    "SparseMessage",
    "check_finite",
    "decompress",
    "dense_bytes",
    "k_from_density",
    "layer_sizes",
    "make_compressor",
    "make_memory",
    "message_bytes",
    "residual_after",
    "topk_indices",
    "topk_reference",
]

"""sparsgd: communication-efficient distributed SGD by gradient sparsification.

Packages, from the bottom layer up (docs/architecture.md, checked by import-linter):
``compress`` (pure tensor math), ``models``, ``data``, ``runs`` -> ``comm`` (collectives on
torch.distributed) -> ``sync`` / ``asynchronous`` / ``sim`` (training loops and their
one-process versions) -> ``bench`` -> ``report`` -> ``experiments`` -> ``cli``.

For one's own training loop, :class:`SparseAllreduce` wraps any optimizer (``sparsgd.optim``);
for one's own model and data in the library's loops, :func:`train` (``sparsgd.api``).
"""

from sparsgd.api import train
from sparsgd.optim import SparseAllreduce

__version__ = "0.1.0"

__all__ = ["SparseAllreduce", "__version__", "train"]

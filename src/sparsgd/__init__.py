"""sparsgd: communication-efficient distributed SGD by gradient sparsification.

Packages, in the direction data flows:
``compress`` (pure tensor math) -> ``comm`` (collectives on torch.distributed) ->
``sync`` / ``asynchronous`` (training loops) ; ``sim`` holds one-process versions of the
same interfaces; ``models`` and ``data`` feed the loops; ``experiments`` and ``cli`` sit on top.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

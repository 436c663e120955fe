"""sparsgd.bench: measuring code of the micro-benchmarks (``sparsgd bench ...`` prints it).

``comm``: the four collectives timed on P local processes; ``select``: the selection step of
the compressors against ``torch.topk``. Both return rows measured in one run; the command line
formats them and the comm-scaling experiment records them.
"""

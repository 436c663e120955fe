"""sparsgd.report: what experiments leave behind and the report made of it.

``results`` (the ``results.json`` record: tables, figures, findings), ``machine`` (the machine
a run used), ``plots`` (PNG figures), ``markdown`` and ``build`` (the report). The experiments
import this package to record and draw; this package never imports the experiments, so the
list of experiments a complete report should hold is passed in by ``sparsgd report``.
Import the submodules directly: this package file imports nothing.
"""

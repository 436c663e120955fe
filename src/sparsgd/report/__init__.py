"""sparsgd.report: PNG figures (``plots``), markdown (``markdown``) and the report (``build``).

The experiments draw their figures with :mod:`sparsgd.report.plots`; ``sparsgd report`` calls
:func:`sparsgd.report.build.build_report`. Import the submodules directly: this package file
imports nothing, so that the experiments and the report builder can import each other's parts
without a cycle.
"""

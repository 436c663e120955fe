"""Name -> experiment: the explicit table behind ``sparsgd experiment list`` and ``run``."""

from __future__ import annotations

from sparsgd.experiments import (
    async_real,
    comm_scaling,
    gtopk_convergence,
    gtopk_delta,
    gtopk_density,
    lab_tta_study,
    staleness,
)
from sparsgd.experiments.spec import Experiment

__all__ = ["EXPERIMENTS", "get_experiment"]

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        gtopk_convergence.EXPERIMENT,
        gtopk_density.EXPERIMENT,
        gtopk_delta.EXPERIMENT,
        comm_scaling.EXPERIMENT,
        staleness.EXPERIMENT,
        async_real.EXPERIMENT,
        lab_tta_study.EXPERIMENT,
    )
}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name raises ValueError listing the valid ones."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; valid names: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]

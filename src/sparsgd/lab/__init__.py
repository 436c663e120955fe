"""The network lab: an emulated cluster of shaped links on one Linux machine (docs/lab.md)."""

from sparsgd.lab.cluster import Cluster, LabUnavailable, Node, Rate, missing_requirements

__all__ = ["Cluster", "LabUnavailable", "Node", "Rate", "missing_requirements"]

"""Lab tests build real namespaces: they run only where the machine permits (root, iproute2).

Leak checks look only at this process's labs (their names carry its pid): with pytest-xdist,
other workers build and tear down labs of their own at the same time.
"""

from __future__ import annotations

import os

import pytest

from sparsgd.lab.cluster import NAME_PREFIX, lab_namespaces, missing_requirements


def _mine() -> set[str]:
    return {n for n in lab_namespaces() if n.startswith(f"{NAME_PREFIX}{os.getpid()}-")}


def _lab_or_skip():
    missing = missing_requirements()
    if missing:
        pytest.skip("network lab needs " + "; ".join(missing))
    before = _mine()
    yield
    leaked = _mine() - before
    assert not leaked, f"namespaces left behind: {sorted(leaked)}"


@pytest.fixture
def lab_machine():
    """Skip with the reason when no lab can be built; afterwards, no namespace of ours is left."""
    yield from _lab_or_skip()


@pytest.fixture(scope="module")
def lab_machine_module():
    """lab_machine for a module's shared lab."""
    yield from _lab_or_skip()

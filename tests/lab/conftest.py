"""Lab tests build real namespaces: they run only where the machine permits (root, iproute2)."""

from __future__ import annotations

import pytest

from sparsgd.lab.cluster import lab_namespaces, missing_requirements


@pytest.fixture
def lab_machine():
    """Skip with the reason when no lab can be built; afterwards, no namespace of ours is left."""
    missing = missing_requirements()
    if missing:
        pytest.skip("network lab needs " + "; ".join(missing))
    before = set(lab_namespaces())
    yield
    leaked = set(lab_namespaces()) - before
    assert not leaked, f"namespaces left behind: {sorted(leaked)}"


@pytest.fixture(scope="module")
def lab_machine_module():
    """lab_machine for a module's shared lab."""
    missing = missing_requirements()
    if missing:
        pytest.skip("network lab needs " + "; ".join(missing))
    before = set(lab_namespaces())
    yield
    leaked = set(lab_namespaces()) - before
    assert not leaked, f"namespaces left behind: {sorted(leaked)}"

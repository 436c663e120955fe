"""Where a C compiler is present the install must have built the compiled selection.

The extension is optional (an install without a compiler falls back to the numpy path), so a
C file that stopped compiling would otherwise only show as skipped tests. scripts/test.sh sets
SPARSGD_REQUIRE_KERNELS=1 when it finds a C compiler; then a missing module fails here.
"""

from __future__ import annotations

import os

import pytest

from sparsgd.compress import kernels


def test_compiled_loops_built_where_required() -> None:
    if os.environ.get("SPARSGD_REQUIRE_KERNELS") != "1":
        pytest.skip("SPARSGD_REQUIRE_KERNELS is not 1 (scripts/test.sh sets it if cc is found)")
    assert kernels._select is not None, (
        "sparsgd.compress._select is missing although a C compiler is present: the install "
        "did not build src/sparsgd/compress/_select.c (rerun scripts/setup.sh after deleting "
        ".venv/.sparsgd-installed and read pip's output)"
    )
    assert kernels.built(), "the compiled loops are switched off (SPARSGD_NO_KERNELS?)"

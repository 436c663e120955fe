"""What every smoke run must leave behind: results.json with tables, findings and PNGs."""

from __future__ import annotations

from pathlib import Path

from sparsgd.report.results import VERDICTS, Results, load_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_results_folder(folder: Path, name: str) -> Results:
    results = load_results(folder)
    assert results.experiment == name
    assert results.mode == "smoke"
    assert results.machine["cores"] >= 1
    assert results.wall_seconds > 0
    assert results.tables and all(t.rows for t in results.tables)
    assert results.figures
    for fig in results.figures:
        assert (folder / fig.file).read_bytes()[:8] == PNG_MAGIC
    assert results.findings
    assert all(f.verdict in VERDICTS and f.evidence for f in results.findings)
    return results

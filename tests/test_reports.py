"""Every committed report is what its committed sources rebuild to (``benchmarks/rebuild_reports.py``)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import rebuild_reports  # noqa: E402


def test_committed_reports_are_current():
    """A report made by an older rule, or a source regenerated without rebuilding, fails here."""
    assert rebuild_reports.check() == []


def test_every_report_names_existing_sources():
    for report in rebuild_reports.REPORTS.values():
        for s in report.sources:
            assert (rebuild_reports.RESULTS / s).is_file(), (report.path, s)


@pytest.fixture
def results_copy(tmp_path):
    """A scratch copy of the sources of three reports: a table, a summary, a full report."""
    names = ["quant-table.md", "run-default-amd-epyc-avx512/summary.md", "run-default-amd-epyc-avx512"]
    for name in names:
        rep = rebuild_reports.REPORTS[name]
        for rel in rep.sources:
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rebuild_reports.RESULTS / rel, tmp_path / rel)
        if Path(rep.path).suffix:  # a single file (or two) beside its sources
            for t in rep.text:
                rel = Path(rep.path).parent / t
                shutil.copyfile(rebuild_reports.RESULTS / rel, tmp_path / rel)
        else:  # a folder with figures
            shutil.copytree(rebuild_reports.RESULTS / rep.path, tmp_path / rep.path, dirs_exist_ok=True)
    return tmp_path, names


def test_a_changed_source_makes_its_report_stale_and_rebuild_mends_it(results_copy):
    root, names = results_copy
    assert rebuild_reports.check(root, names) == []
    doc = json.loads((root / "quant-table.json").read_text())
    doc["models"][0]["rows"][0]["pck20"] += 0.01  # a regenerated source
    (root / "quant-table.json").write_text(json.dumps(doc))
    problems = rebuild_reports.check(root, names)
    assert problems == ["quant-table.md: quant-table.md is stale (rebuild with python benchmarks/rebuild_reports.py)"]
    rebuild_reports.rebuild(root, ["quant-table.md"])
    assert rebuild_reports.check(root, names) == []
    assert f"{100 * doc['models'][0]['rows'][0]['pck20']:.2f}" in (root / "quant-table.md").read_text()


def test_a_hand_edited_report_or_a_missing_source_is_caught(results_copy):
    root, names = results_copy
    md = root / "run-default-amd-epyc-avx512" / "report.md"
    md.write_text(md.read_text().replace("ship **", "ship definitely **", 1))
    assert rebuild_reports.check(root, names) == [
        "run-default-amd-epyc-avx512: report.md is stale (rebuild with python benchmarks/rebuild_reports.py)"]
    (root / "quant-table.json").unlink()
    assert any("missing source" in p and "quant-table.json" in p for p in rebuild_reports.check(root, names))

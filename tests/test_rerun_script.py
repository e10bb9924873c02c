"""benchmarks/rerun_zoo_results.sh: the stage list is complete and names scripts that exist; a
wrong stage name is refused before anything runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "rerun_zoo_results.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_list_names_every_stage_and_only_existing_scripts():
    res = _run("--list")
    assert res.returncode == 0, res.stderr
    listed = re.findall(r"^== (\S+)$", res.stdout, flags=re.M)
    declared = re.search(r"STAGES=\(([^)]*)\)", SCRIPT.read_text()).group(1).split()
    assert listed == declared and len(listed) >= 15
    defined = re.findall(r"^stage_([\w-]+)\(\)", SCRIPT.read_text(), flags=re.M)
    assert sorted(defined) == sorted(declared)  # no stage function left out of the default order
    scripts = set(re.findall(r"benchmarks/(\w+\.py)", res.stdout))
    assert {"zoo_dataset.py", "interval_width.py", "quant_table.py", "reference_fx_baseline.py"} <= scripts
    missing = [s for s in scripts if not (ROOT / "benchmarks" / s).is_file()]
    assert not missing


def test_unknown_stage_is_refused_before_any_stage_runs(tmp_path):
    log = ROOT / "runs" / "rerun" / "log.tsv"
    before = log.read_text() if log.exists() else None
    res = _run("dataset", "no-such-stage")
    assert res.returncode == 2 and "unknown stage 'no-such-stage'" in res.stderr
    assert (log.read_text() if log.exists() else None) == before  # "dataset" did not run

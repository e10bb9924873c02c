"""benchmarks/rerun_zoo_results.sh: every stage is in the default order, its benchmark scripts exist
and take the options it passes, a failing command stops its stage and the script, and a wrong
stage name is refused before anything runs. Stubs stand in for python3 and edgepose, and the
script runs from a copy in a temporary folder, so nothing real is run or deleted."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "rerun_zoo_results.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _stubbed(tmp_path: Path, exit_code: int) -> tuple[Path, dict, Path]:
    """A copy of the script under tmp_path/benchmarks, and an environment whose python3 and
    edgepose append their arguments to calls.log and exit with ``exit_code``."""
    (tmp_path / "benchmarks").mkdir()
    script = tmp_path / "benchmarks" / SCRIPT.name
    shutil.copy(SCRIPT, script)
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in ("python3", "edgepose"):
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexit {exit_code}\n')
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "RERUN_LOG": str(tmp_path / "log.tsv")}
    return script, env, calls


def test_every_stage_is_in_the_default_order_and_its_scripts_take_the_options_given():
    text = SCRIPT.read_text()
    res = subprocess.run(["bash", str(SCRIPT), "--list"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    declared = re.search(r"STAGES=\(([^)]*)\)", text).group(1).split()
    defined = re.findall(r"^stage_([\w-]+)\(\)", text, flags=re.M)
    assert sorted(defined) == sorted(declared) and len(declared) >= 15
    commands = re.sub(r"\\\n\s*", " ", text)  # join continued lines
    checked = 0
    for script, args in re.findall(r"benchmarks/(\w+\.py)([^\n;|]*)", commands):
        source = ROOT / "benchmarks" / script
        assert source.is_file(), script
        code = source.read_text()
        if "variant_parser(" in code:  # the options the shared parser of the variant scripts declares
            shared = (ROOT / "benchmarks" / "int8_threads.py").read_text()
            code += re.search(r"def variant_parser\(.*?\n(?=def )", shared, flags=re.S).group(0)
        known = set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", code))
        options = re.findall(r"(?<![\w-])(--[a-z][\w-]*)", re.sub(r'"[^"]*"', "", args))  # not inside values
        unknown = [opt for opt in options if opt not in known]
        assert not unknown, f"{script} does not take {unknown}"
        checked += 1
    assert checked >= 12  # one per python invocation (the loops call theirs once in the text)


def test_a_failing_command_stops_its_stage_and_the_script(tmp_path):
    script, env, calls = _stubbed(tmp_path, exit_code=3)
    res = subprocess.run(["bash", str(script), "calibrators", "dataset"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert res.returncode == 3 and "stage calibrators failed (exit 3)" in res.stderr
    # the first export failed: no further export, no bench, and the next stage never started
    assert calls.read_text().splitlines() == [
        "edgepose export wiflow-half --precision int8 --recipe safe --calib minmax --range-search off --out runs/calib-v2"]
    logged = (tmp_path / "log.tsv").read_text().splitlines()
    assert len(logged) == 1 and logged[0].split("\t")[0] == "calibrators" and logged[0].split("\t")[3] == "3"


def test_stages_that_succeed_run_in_the_order_given(tmp_path):
    script, env, calls = _stubbed(tmp_path, exit_code=0)
    res = subprocess.run(["bash", str(script), "reproduce", "dataset"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert [c.split()[1] for c in calls.read_text().splitlines()] == ["benchmarks/zoo_reproduce.py",
                                                                        "benchmarks/zoo_dataset.py"]
    assert [line.split("\t")[0] for line in (tmp_path / "log.tsv").read_text().splitlines()] == ["reproduce", "dataset"]


def test_unknown_stage_is_refused_before_any_stage_runs(tmp_path):
    script, env, calls = _stubbed(tmp_path, exit_code=0)
    res = subprocess.run(["bash", str(script), "dataset", "no-such-stage"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert res.returncode == 2 and "unknown stage 'no-such-stage'" in res.stderr
    assert not calls.exists() and not (tmp_path / "log.tsv").exists()

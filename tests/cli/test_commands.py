"""The click layer: help texts, JSON output, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli.main import cli


@pytest.fixture()
def runner():
    return CliRunner()


@pytest.mark.parametrize("cmd", [["data", "synth"], ["data", "check"], ["train"], ["eval"], ["export"], ["bench"],
                                 ["report"], ["run"]])
def test_every_command_documents_an_example(runner, cmd):
    res = runner.invoke(cli, [*cmd, "--help"])
    assert res.exit_code == 0 and "Example" in res.output


def test_models_lists_counts(runner):
    res = runner.invoke(cli, ["models"])
    assert res.exit_code == 0 and "843,834" in res.output and "56,290" in res.output


def test_data_check_json(runner, tiny_data):
    res = runner.invoke(cli, ["data", "check", str(tiny_data), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["windows"] == 150 and rep["dtype"] == "float32"
    assert rep["corruption"]["windows"] == 6 and len(rep["corruption"]["files"]) == 3
    assert sum(rep["split"][s]["files"] for s in ("train", "val", "test")) == 10


def test_eval_json_matches_card(runner, tiny_run, tiny_data):
    res = runner.invoke(cli, ["eval", str(tiny_run / "best.safetensors"), "--data", str(tiny_data), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    card = json.loads((tiny_run / "best.json").read_text())
    assert out["test"]["clean"]["pck"]["0.2"] == pytest.approx(card["metrics"]["test"]["clean"]["pck"]["0.2"])
    assert out["test"]["mean_pose"]["n"] == out["test"]["clean"]["n"]


def test_errors_are_one_line_with_exit_code_2(runner, tmp_path, tiny_data):
    res = runner.invoke(cli, ["train", "--data", str(tiny_data), "--out", str(tmp_path / "r"), "--model", "nope"])
    assert res.exit_code == 2 and "error: unknown model 'nope'" in res.output
    assert "Traceback" not in res.output
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "csi_windows.npy", np.zeros((3, 540, 20), dtype=np.float32))
    res = runner.invoke(cli, ["data", "check", str(bad)])
    assert res.exit_code == 2 and "missing window_info.npz" in res.output
    res = runner.invoke(cli, ["eval", str(tmp_path / "none.safetensors"), "--data", str(tiny_data)])
    assert res.exit_code == 2 and "none.safetensors: no checkpoint (weights + .json card) found" in res.output

"""Accuracy guard (``--max-drop``): respects the budget, restores the destructive group, fails honestly.

The fixture is a small WiFlow-STD whose labels are its own fp32 predictions around a spread pose:
fp32 scores 100 % PCK@20, benign int8 noise stays far inside the threshold, and one group is
made destructive by corrupting its input's calibration range (as an outlier in the calibration
windows would), so the guard has exactly one thing to find.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgepose.errors import EdgeposeError
from edgepose.exporting import ExportRequest, export

from tests.quantization.teacher import DESTRUCTIVE, TOUCHING, corrupt_ranges, make_teacher


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return make_teacher(tmp_path_factory.mktemp("teacher"))


def _card(path: Path) -> dict:
    return json.loads(path.with_name(path.name + ".json").read_text())


def _req(ckpt, data, out, **kw) -> ExportRequest:
    return ExportRequest(checkpoint=ckpt, out=out, data=data, precision="int8", calib_count=24, parity_windows=8,
                         log=lambda s: None, **kw)


def test_guard_puts_the_destructive_group_back_and_respects_the_budget(tmp_path, teacher, monkeypatch):
    ckpt, data = teacher
    corrupt_ranges(monkeypatch)
    (path,) = export(_req(ckpt, data, tmp_path, max_drop=0.5))
    g = _card(path)["guard"]
    assert g["met"] and not g["best_effort"]
    assert g["validation"]["delta_pck20_pp"] >= -0.5
    assert g["steps"][0]["float_groups"] == [] and g["steps"][0]["delta_pck20_pp"] < -0.5  # all-int8 misses
    assert set(g["restore_order"][:2]) == TOUCHING and set(g["float_groups"]) == TOUCHING
    assert g["int8_groups"] and set(g["int8_groups"]).isdisjoint(g["float_groups"])
    assert "delta_pck20_pp" in g["test"] and g["test"]["windows"] > 0
    # the shipped graph is what the card says: the destructive conv reads a float input (the tensor both
    # restored groups would quantize), every int8 group's conv an int8 one (the quantizer keeps node
    # names, so convs are found by the fp32 graph's names)
    proto = onnx.load(str(path))
    q_inputs = {n.input[0] for n in proto.graph.node if n.op_type == "QuantizeLinear"}
    assert len(q_inputs) > 5
    node_of = _conv_node_names(ckpt, tmp_path)
    dq = {n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    conv_input = {n.name: n.input[0] for n in proto.graph.node if n.op_type == "Conv"}
    assert TOUCHING <= set(node_of)
    assert conv_input[node_of[DESTRUCTIVE]] not in dq
    int8_convs = [m for m in g["int8_groups"] if m in node_of]
    assert int8_convs and all(conv_input[node_of[m]] in dq for m in int8_convs)
    worst = {r["name"] for r in g["sensitivity"] if r["delta_pck20_pp"] < -0.5}
    assert worst == TOUCHING


def _conv_node_names(ckpt: Path, work: Path) -> dict[str, str]:
    """Module path → ONNX node name of every conv, from a fresh fp32 export of the checkpoint."""
    from edgepose.exporting.fold import fold_batchnorm
    from edgepose.exporting.onnx_fp32 import export_onnx
    from edgepose.quantization.recipes import conv_nodes_by_module
    from edgepose.training.checkpoint import load_checkpoint

    model, _ = load_checkpoint(ckpt)
    export_onnx(fold_batchnorm(model), work / "fp32-names.onnx", (model.cfg.in_channels, model.cfg.window))
    return conv_nodes_by_module(onnx.load(str(work / "fp32-names.onnx")))


def test_guard_without_corruption_keeps_everything_int8(tmp_path, teacher):
    ckpt, data = teacher
    (path,) = export(_req(ckpt, data, tmp_path, max_drop=0.5))
    g = _card(path)["guard"]
    assert g["met"] and g["float_groups"] == [] and len(g["steps"]) == 1


def every_graph_loses(monkeypatch, pp: float = -5.0):
    """Every int8 graph scores ``pp`` on validation (nothing can meet a 0.5 pp budget)."""
    import edgepose.quantization.probe as probe_mod

    monkeypatch.setattr(probe_mod.QuantProbe, "delta", lambda self, s: (pp, 0.01))


def test_guard_fails_honestly_when_nothing_meets_the_budget(tmp_path, teacher, monkeypatch):
    ckpt, data = teacher
    every_graph_loses(monkeypatch)
    out = tmp_path / "o"
    (path,) = export(_req(ckpt, data, out, max_drop=0.5, best_effort=True))
    g = _card(path)["guard"]
    assert not g["met"] and g["best_effort"] and "no configuration" in g["notes"][0]
    # every restore was tried (down to the last weighted int8 group), the closest is shipped
    assert len(g["steps"]) > 10 and g["validation"]["delta_pck20_pp"] == max(s["delta_pck20_pp"] for s in g["steps"])
    assert g["float_groups"] == [] and g["int8_groups"]  # ties: the most int8 graph


def test_guard_request_validation(tmp_path, teacher):
    ckpt, data = teacher
    with pytest.raises(EdgeposeError, match="int8"):
        export(ExportRequest(ckpt, tmp_path, precision="fp32", max_drop=0.5))
    with pytest.raises(EdgeposeError, match="≥ 0"):
        export(ExportRequest(ckpt, tmp_path, precision="int8", max_drop=-1.0))
    with pytest.raises(EdgeposeError, match="--max-drop"):
        export(ExportRequest(ckpt, tmp_path, precision="int8", best_effort=True))
    with pytest.raises(EdgeposeError, match="PTQ"):
        export(ExportRequest(ckpt, tmp_path, precision="int8", method="qat", max_drop=0.5, data=data,
                             log=lambda s: None))


def test_export_cli_guard_exit_code(tmp_path, teacher, monkeypatch):
    from click.testing import CliRunner

    from edgepose.cli.main import cli

    ckpt, data = teacher
    every_graph_loses(monkeypatch)
    res = CliRunner().invoke(cli, ["export", str(ckpt), "--precision", "int8", "--max-drop", "0.5", "--data",
                                   str(data), "--calib-count", "24", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "best-effort" in res.output and "nothing written" in res.output
    assert not any((tmp_path / "o").iterdir())


def test_lower_bound_criterion_is_at_least_as_strict_and_recorded(tmp_path, teacher, monkeypatch):
    ckpt, data = teacher
    corrupt_ranges(monkeypatch)
    (p_point,) = export(_req(ckpt, data, tmp_path / "point", max_drop=0.5))
    (p_lower,) = export(_req(ckpt, data, tmp_path / "lower", max_drop=0.5, guard_criterion="lower"))
    point, lower = _card(p_point)["guard"], _card(p_lower)["guard"]
    assert point["criterion"] == "point" and lower["criterion"] == "lower"
    assert lower["met"] and lower["validation"]["low_pp"] >= -0.5
    assert lower["validation"]["low_pp"] <= lower["validation"]["delta_pck20_pp"] <= lower["validation"]["high_pp"]
    assert len(lower["float_groups"]) >= len(point["float_groups"])
    with pytest.raises(EdgeposeError, match="guard criterion"):
        export(_req(ckpt, data, tmp_path / "bad", max_drop=0.5, guard_criterion="median"))


class _CostProbe:
    """A probe whose validation ΔPCK@20 is a fixed cost per int8 group (no model, no ONNX)."""

    def __init__(self, tmp_path, cost: dict[str, float], passengers: set[str] = frozenset()):
        self.group_names = list(cost)
        self.cost, self.passengers, self.tmp, self.builds = cost, set(passengers), tmp_path, []

    def build(self, int8, out=None):
        self.builds.append(list(int8))
        path = self.tmp / f"g{len(self.builds)}.onnx"
        path.write_text(",".join(int8))
        return path

    def score(self, path):
        return [g for g in path.read_text().split(",") if g]

    def delta(self, int8):
        return -sum(self.cost[g] for g in int8), 0.0

    def delta_interval(self, path):
        dp = self.delta(self.score(path))[0]
        return dp, dp - 0.3, dp + 0.3


def _records(cost: dict[str, float]):
    from edgepose.quantization.sensitivity import GroupRecord

    return [GroupRecord(g, "conv", ["Conv"], -c, 0.0, 30.0) for g, c in cost.items()]


@pytest.fixture
def weighted_ops_from_text(monkeypatch):
    from edgepose.quantization import guard

    def count(path):
        return sum(1 for g in path.read_text().split(",") if g and not g.startswith("pool"))

    monkeypatch.setattr(guard, "int8_weighted_ops", count)


@pytest.mark.parametrize("criterion", ["point", "lower"])
def test_bisection_finds_the_linear_prefix_with_far_fewer_graphs(tmp_path, weighted_ops_from_text, criterion):
    from edgepose.quantization.guard import guard_search

    rng = np.random.default_rng(3)
    cost = {f"conv{i}": float(c) for i, c in enumerate(rng.exponential(0.3, 60))}
    cost["pool"] = 0.0
    out = {}
    for strategy in ("linear", "bisect"):
        probe = _CostProbe(tmp_path, cost, {"pool"})
        out[strategy] = (guard_search(probe, _records(cost), 1.0, log=lambda s: None, criterion=criterion,
                                      strategy=strategy), len(probe.builds))
    (lin, n_lin), (bis, n_bis) = out["linear"], out["bisect"]
    assert lin.met and bis.met and bis.strategy == "bisect" and bis.to_dict()["strategy"] == "bisect"
    # costs add up, so restoring more never hurts: both walks stop at the same shortest prefix
    assert bis.float_groups == lin.float_groups and bis.restore_order == lin.restore_order
    assert len(lin.float_groups) > 20 and n_bis <= 10 < n_lin
    judged = bis.choice.low_pp if criterion == "lower" else bis.choice.delta_pck20_pp
    assert judged >= -1.0
    assert 0 in [len(s.float_groups) for s in bis.steps]  # the all-int8 graph is measured first


def test_bisection_when_nothing_meets_the_budget_reports_the_closest(tmp_path, weighted_ops_from_text):
    from edgepose.quantization.guard import guard_search

    cost = {"conv0": 2.0, "conv1": 3.0, "pool": 0.0}  # conv0 alone already costs 2 pp
    probe = _CostProbe(tmp_path, cost, {"pool"})
    res = guard_search(probe, _records(cost), 1.0, log=lambda s: None, strategy="bisect")
    assert not res.met and res.float_groups == ["conv1"] and res.choice.delta_pck20_pp == -2.0
    assert "closest: -2.00 pp" in res.notes[0]
    # restoring both convs would leave only the pool int8: built, found to be no int8 graph, never a step
    assert ["pool"] in probe.builds
    assert [s.float_groups for s in res.steps] == [[], ["conv1"]]


def test_unknown_guard_strategy_is_refused(tmp_path, teacher):
    ckpt, _ = teacher
    with pytest.raises(EdgeposeError, match="unknown guard strategy 'binary'"):
        export(ExportRequest(checkpoint=ckpt, out=tmp_path, precision="int8", max_drop=0.5,
                             guard_strategy="binary", log=lambda s: None))


@pytest.mark.parametrize("strategy", ["linear", "bisect"])
def test_a_guard_started_from_a_subset_keeps_the_other_groups_float_throughout(tmp_path, weighted_ops_from_text,
                                                                               strategy):
    from edgepose.quantization.guard import guard_search

    cost = {"attn": 5.0, "conv0": 0.1, "conv1": 0.8, "conv2": 0.3, "conv3": 0.05}
    probe = _CostProbe(tmp_path, cost)
    scanned = []

    def scan():
        scanned.append(True)
        return _records(cost)  # ranks every group, attn (the costliest) first

    start = ["conv0", "conv1", "conv2", "conv3"]
    res = guard_search(probe, scan, 0.5, log=lambda s: None, start=start, strategy=strategy)
    assert all("attn" not in b for b in probe.builds)  # never int8, never in the restore order
    assert res.met and res.restore_order == ["conv1"] and res.float_groups == ["conv1"]
    assert res.int8_groups == ["conv0", "conv2", "conv3"] and res.all_groups == start and scanned
    assert res.choice.delta_pck20_pp == pytest.approx(-0.45)
    with pytest.raises(ValueError, match="conv9"):
        guard_search(probe, scan, 0.5, log=lambda s: None, start=["conv0", "conv9"])


def test_a_start_within_budget_is_kept_without_a_scan(tmp_path, weighted_ops_from_text):
    from edgepose.quantization.guard import guard_search

    cost = {"attn": 5.0, "conv0": 0.1, "conv1": 0.2}
    probe = _CostProbe(tmp_path, cost)

    def scan():
        raise AssertionError("the start graph met the budget: nothing to rank")

    res = guard_search(probe, scan, 0.5, log=lambda s: None, start=["conv0", "conv1"])
    assert res.met and res.float_groups == [] and probe.builds == [["conv0", "conv1"]]

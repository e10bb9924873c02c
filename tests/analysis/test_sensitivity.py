"""``edgepose analyze``: groups for every shape and target, the ranked validation table and its files."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from edgepose.quantization.groups import leaf_module_paths, quant_groups

from tests.quantization.teacher import TOUCHING, corrupt_ranges, make_teacher


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return make_teacher(tmp_path_factory.mktemp("teacher-analyze"))


def _fp32_graph(ckpt: Path, work: Path) -> tuple[onnx.ModelProto, object]:
    from edgepose.exporting.fold import fold_batchnorm
    from edgepose.exporting.onnx_fp32 import export_onnx
    from edgepose.training import load_checkpoint

    model, _ = load_checkpoint(ckpt)
    proto = export_onnx(fold_batchnorm(model), work / "m.onnx", (model.cfg.in_channels, model.cfg.window))
    return proto, model


@pytest.mark.parametrize("target", ["ort-cpu", "tensorrt"])
def test_groups_partition_the_quantizable_nodes_on_the_mmfi_shape(tmp_path_factory, target):
    from edgepose.conformance import SHAPES, SIZES, make_checkpoint, write_dataset

    work = tmp_path_factory.mktemp(f"mmfi-{target}")
    data = write_dataset(work / "data", SHAPES["mmfi"], SIZES["small"])
    ckpt = make_checkpoint("wiflow-tiny", data, work / "ckpt" / "wiflow-tiny.safetensors")
    proto, model = _fp32_graph(ckpt, work)
    groups = quant_groups(proto, target, leaf_module_paths(model))
    names = [n for g in groups for n in g.nodes]
    assert len(names) == len(set(names))  # no node in two groups
    convs = {n.name for n in proto.graph.node if n.op_type == "Conv"}
    assert convs <= set(names)  # every conv is switchable
    assert sum(g.kind.startswith("head") for g in groups) == 1
    if target == "tensorrt":  # Q/DQ only where TensorRT runs int8: convolutions and matmuls
        assert {op for g in groups for op in g.ops} <= {"Conv", "MatMul", "Gemm"}
    else:  # SiLU and attention are switchable too
        kinds = {g.kind for g in groups}
        assert {"conv+silu", "attention", "residual+silu"} <= kinds


def test_analyze_ranks_the_destructive_group_first_and_writes_table_json_plot(tmp_path, teacher, monkeypatch):
    from edgepose.analysis import analyze, load_result

    ckpt, data = teacher
    corrupt_ranges(monkeypatch)
    res = analyze(ckpt, data=data, calib="minmax", calib_count=24, threads=1, log=lambda s: None)
    assert res.split == "val" and res.windows > 0 and res.fp32_pck20 == 1.0
    top = res.ranked()[:2]
    assert {g.name for g in top} == TOUCHING and all(g.delta_pck20_pp < -0.5 for g in top)
    assert all(g.int8_gain_us is None for g in res.groups)  # the speed column is optional
    benign = [g for g in res.groups if g.name not in TOUCHING]
    assert all(g.delta_pck20_pp > -0.5 for g in benign)
    assert min(g.sqnr_db for g in top) < min(g.sqnr_db for g in benign if g.kind.startswith("conv"))
    paths = res.write(tmp_path / "out")
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = paths["markdown"].read_text()
    assert "| 1 |" in md and "ΔPCK@20" in md
    back = load_result(paths["json"])
    assert back.restore_order() == res.restore_order()
    assert json.loads(paths["json"].read_text())["format"] == "edgepose-sensitivity"


def test_analyze_cli_help_and_bad_input(tmp_path):
    from click.testing import CliRunner

    from edgepose.cli.main import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["analyze", "--help"])
    assert res.exit_code == 0 and "Examples:" in res.output and "--val-windows" in res.output
    res = runner.invoke(cli, ["analyze", str(tmp_path / "missing.safetensors")])
    assert res.exit_code == 2

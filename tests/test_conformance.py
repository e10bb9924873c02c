"""The conformance matrix, fast subset: every axis (model, input shape, precision, calibrator, target,
data size) is covered at least once; ``benchmarks/conformance_matrix.py`` runs the whole table."""

from __future__ import annotations

import pytest

from edgepose.conformance import Cell, run_group


def _assert_all_pass(cells: list[Cell]) -> None:
    bad = [f"{c.model}/{c.shape}/{c.size}/{c.precision}: {c.reason}" for c in cells if not c.ok]
    assert not bad, "\n".join(bad)
    for c in cells:
        # the artifact answers its input: BN-re-estimated models must not give a constant pose
        assert c.details["output_spread"] > 1e-4, c
        assert c.details["output_shape"][1:] == [17 if c.shape == "mmfi" else 15, 2]


def test_every_precision_calibrator_and_target_on_wiflow(tmp_path):
    cells = run_group("wiflow-tiny", "wiflow", "small",
                      ["fp32", "fp16", "ptq-entropy-ort-cpu", "ptq-minmax-tensorrt", "qat-ort-cpu"], tmp_path)
    _assert_all_pass(cells)


@pytest.mark.parametrize("model", ["wiflow-quarter", "wiflow-full"])
def test_every_model_exports_int8(tmp_path, model):
    _assert_all_pass(run_group(model, "wiflow", "small", ["ptq-percentile-ort-cpu"], tmp_path, bench=False))
    # (wiflow-half shares wiflow-full's structure at other widths; the committed matrix covers it)


def test_mmfi_shape_17_joints_with_one_clean_training_window(tmp_path):
    _assert_all_pass(run_group("wiflow-tiny", "mmfi", "one-clean-train", ["fp32", "ptq-percentile-ort-cpu",
                                                                          "qat-global-ort-cpu", "ptq-auto-ort-cpu"],
                               tmp_path))


def test_custom_shape_with_counts_that_divide_nothing(tmp_path):
    _assert_all_pass(run_group("wiflow-tiny", "custom", "odd-counts", ["ptq-entropy-tensorrt", "ptq-auto-ort-cpu"],
                               tmp_path, bench=False))


@pytest.mark.parametrize("size,precision", [("one-train-file", "qat-tensorrt"),
                                            ("one-calib-window", "ptq-minmax-ort-cpu"),
                                            ("odd-counts", "ptq-percentile-ort-cpu")])
def test_tiny_data_sizes(tmp_path, size, precision):
    _assert_all_pass(run_group("wiflow-tiny", "wiflow", size, [precision], tmp_path, bench=False))

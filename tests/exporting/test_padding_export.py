"""``pad_channels``: int8 PTQ from the padded graph — same answers, the card says what was padded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgepose.errors import EdgeposeError
from edgepose.exporting import ExportRequest, export
from edgepose.exporting.parity import ort_predict, ort_session


@pytest.fixture(scope="module")
def quarter_run(tmp_path_factory, tiny_data):
    """wiflow-quarter (TCN widths 135/110/85/60: three need padding), one epoch on the tiny dataset."""
    from tests.conftest import one_epoch_run

    return one_epoch_run(tmp_path_factory.mktemp("run") / "quarter", tiny_data, "wiflow-quarter")


def _conv_widths(path: Path) -> set[int]:
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    widths = set()
    for node in model.graph.node:
        if node.op_type in ("Conv", "QLinearConv"):
            w = node.input[1] if node.op_type == "Conv" else node.input[3]
            if w in inits:
                widths.add(int(inits[w].dims[0]))
            else:  # QDQ: the weight comes through a DequantizeLinear of an int8 initializer
                src = next(n for n in model.graph.node if w in n.output)
                widths.add(int(inits[src.input[0]].dims[0]))
    return widths


def test_padded_int8_export_matches_the_unpadded_one(tmp_path, quarter_run, tiny_data):
    kw = dict(checkpoint=quarter_run, data=tiny_data, precision="int8", recipe="safe",
              calib_count=64, parity_windows=32, log=lambda s: None)
    (plain,) = export(ExportRequest(out=tmp_path / "plain", **kw))
    (padded,) = export(ExportRequest(out=tmp_path / "padded", pad_channels=True, **kw))
    card = json.loads(padded.with_name(padded.name + ".json").read_text())
    assert card["channel_padding"]["tcn_widths"] == [135, 110, 85, 60]
    assert card["channel_padding"]["tcn_padded_widths"] == [140, 120, 100, 60]
    assert card["channel_padding"]["applied"] is True
    assert "channel_padding" not in json.loads(plain.with_name(plain.name + ".json").read_text())
    assert {140, 120, 100} <= _conv_widths(padded)
    assert not {140, 120, 100} & _conv_widths(plain)
    # same interface and, as the ranges come from the unpadded graph (percentile is the default
    # calibrator: zero channels would shift it), the same int8 answers
    from edgepose.data import open_dataset

    ds = open_dataset(tiny_data)
    x, _ = ds.read(ds.indices("test", clean=True)[:37])
    a = ort_predict(ort_session(plain), x)
    b = ort_predict(ort_session(padded), x)
    assert a.shape == b.shape == (len(x), 15, 2)
    # integer arithmetic is exact whichever kernel runs it; only float ops may reorder additions
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kw, word", [
    (dict(precision="fp32"), "--precision int8"),
    (dict(precision="int8", method="qat"), "method ptq"),
    (dict(precision="int8", objective="latency"), "without --objective"),
    (dict(precision="int8", target="tensorrt"), "target ort-cpu"),
])
def test_pad_channels_is_refused_where_it_does_not_apply(tmp_path, kw, word):
    with pytest.raises(EdgeposeError, match=word):
        export(ExportRequest(checkpoint=Path("wiflow-tiny"), out=tmp_path, pad_channels=True, log=lambda s: None, **kw))
    assert not any(tmp_path.iterdir())


def test_the_default_auto_recipe_quantizes_the_padded_graph(tmp_path, quarter_run, tiny_data, monkeypatch):
    """``--recipe auto`` (the default) with ``pad_channels``: its candidates are built from the padded graph,
    timed against the unpadded fp32 one, and the shipped int8 graph and its card say so."""
    import edgepose.exporting.verified as verified

    timed: list[tuple[set[int], set[int]]] = []

    def fake(path, fp32, windows, batches, threads, seconds=verified.VERIFY_SECONDS, parallel="intra"):
        timed.append((_conv_widths(path), _conv_widths(fp32)))
        return {str(b): {"int8_ms": 1.0, "fp32_ms": 1.5, "speedup": 1.5} for b in batches}

    monkeypatch.setattr(verified, "time_against_fp32", fake)
    (path,) = export(ExportRequest(checkpoint=quarter_run, data=tiny_data, out=tmp_path, precision="int8",
                                   pad_channels=True, calib_count=64, parity_windows=16, batches=(1, 5),
                                   log=lambda s: None))
    card = json.loads(path.with_name(path.name + ".json").read_text())
    assert card["precision"] == "int8" and card["recipe"]["recipe"] == "auto"
    assert card["channel_padding"]["applied"] is True
    assert {140, 120, 100} <= _conv_widths(path)
    # the candidate timed was padded, the fp32 graph it was timed against was not
    int8_widths, fp32_widths = timed[0]
    assert {140, 120, 100} <= int8_widths and not {140, 120, 100} & fp32_widths


def test_a_model_without_widths_to_pad_exports_the_plain_graph_and_says_so(tmp_path, tiny_run, tiny_data):
    """wiflow-tiny's TCN is depthwise: ``pad_channels`` changes nothing, and its card records that."""
    kw = dict(checkpoint=tiny_run, data=tiny_data, precision="int8", recipe="safe", calib="minmax",
              calib_count=37, parity_windows=8, log=lambda s: None)
    (plain,) = export(ExportRequest(out=tmp_path / "plain", **kw))
    (asked,) = export(ExportRequest(out=tmp_path / "asked", pad_channels=True, **kw))
    record = json.loads(asked.with_name(asked.name + ".json").read_text())["channel_padding"]
    assert record["requested"] is True and record["applied"] is False and "tcn_padded_widths" not in record
    assert "depthwise" in record["why"]
    assert onnx.load(str(plain)).graph == onnx.load(str(asked)).graph


@pytest.mark.parametrize("name, overrides, applied, why", [
    ("wiflow-half", {}, True, None),
    ("wiflow-full", {}, False, "already a multiple of 4"),
    ("wiflow-half", {"tcn_channels": [270, 270]}, False, "identity residuals"),
    ("wiflow-half", {"tcn_input_groups": 4}, False, "depthwise or grouped"),
])
def test_the_card_says_what_padding_did_and_why(tmp_path, name, overrides, applied, why):
    from edgepose.exporting.context import ExportContext
    from edgepose.models import create

    req = ExportRequest(checkpoint=Path(name), out=tmp_path, precision="int8", pad_channels=True, log=lambda s: None)
    ctx = ExportContext(req, create(name, **overrides).eval(), {"model": name}, tmp_path)
    record = ctx.channel_padding()
    assert ctx.pads_channels is applied and record["applied"] is applied
    assert ("tcn_padded_widths" in record) is applied
    assert why is None or why in record["why"]
    # without the request nothing is recorded and the int8 source is the plain graph's path
    plain = ExportContext(ExportRequest(checkpoint=Path(name), out=tmp_path, precision="int8", log=lambda s: None),
                          create(name, **overrides).eval(), {"model": name}, tmp_path)
    assert plain.channel_padding() is None and plain.pads_channels is False and plain.stats_model() is None


def _padded_aware_runtime(name: str, padded_factor: float):
    """A spin runtime (tests/exporting/test_objective.py) that runs the TCN-padded graph ``padded_factor``
    times as long as the unpadded one: which layout pays is decided here, not by this machine."""
    import time
    from dataclasses import dataclass

    from tests.exporting.test_objective import SpinRuntime

    @dataclass(frozen=True)
    class PadSpin(SpinRuntime):
        factor: float = 1.0

        def load(self, model, threads, parallel="intra"):
            raw = model if isinstance(model, bytes) else open(model, "rb").read()
            widths = {int(i.dims[0]) for i in onnx.load_from_string(raw).graph.initializer if i.dims}
            inner = SpinRuntime.load(self, raw, threads, parallel)
            if not {140, 100} & widths:  # quarter's padded widths: 135 → 140, 85 → 100
                return inner

            def prepare(x):
                call = inner(x)
                t = time.perf_counter()
                call()  # the unpadded graph's time for this input, then spin for factor × that
                seconds = (time.perf_counter() - t) * self.factor

                def padded_call():
                    end = time.perf_counter() + seconds
                    while time.perf_counter() < end:
                        pass
                return padded_call
            return prepare

    return PadSpin(name=name, factor=padded_factor)


@pytest.mark.parametrize("factor, chosen", [(0.5, "tcn-padded"), (2.0, "unpadded")])
def test_the_latency_plan_times_the_padded_tcn_and_keeps_the_layout_that_pays(tmp_path, quarter_run, tiny_data,
                                                                             monkeypatch, factor, chosen):
    """The plan is searched in the padded layout and its set timed unpadded too; the padded graph ships only
    when it pays on the box, and the card says which and why."""
    from edgepose.timing import adapters

    runtime = _padded_aware_runtime("padspin", factor)
    monkeypatch.setitem(adapters.ADAPTERS, runtime.name, runtime)
    (path,) = export(ExportRequest(checkpoint=quarter_run, data=tiny_data, out=tmp_path, precision="int8",
                                   objective="latency", runtime=runtime.name, batches=(1,), timing_seconds=0.05,
                                   calib_count=37, parity_windows=8, profile_cache=False, max_drop=100.0,
                                   log=lambda s: None))
    card = json.loads(path.with_name(path.name + ".json").read_text())
    layout = card["plan"]["layout"]
    assert card["precision"] == "int8" and layout["tried"] == ["tcn-padded", "unpadded"]
    assert layout["searched_in"] == "tcn-padded"
    assert layout["chosen"] == chosen, layout
    assert layout["tcn_widths"] == [135, 110, 85, 60] and layout["tcn_padded_widths"] == [140, 120, 100, 60]
    speedup = layout["padded_vs_unpadded"]["1"]["speedup"]
    assert (speedup > 1.2) if chosen == "tcn-padded" else (speedup < 0.8)
    if chosen == "tcn-padded":
        assert {140, 120, 100} <= _conv_widths(path)
        assert card["channel_padding"] == {"requested": False, "applied": True,
                                           "chosen_by": "the plan's layout timing", "tcn_widths": [135, 110, 85, 60],
                                           "tcn_padded_widths": [140, 120, 100, 60], "exact": True}
        assert card["plan"]["end_to_end"]["1"]["speedup"] > 1.0
    else:
        assert not {140, 120, 100} & _conv_widths(path) and "channel_padding" not in card
        assert "did not pay" in layout["why"]
    # fp32, the plan's reference, is the exporter's unpadded graph in either layout: the spin runtime runs
    # it at float_us per conv, where a padded fp32 graph would take `factor` times as long
    convs = sum(n.op_type == "Conv" for n in onnx.load(str(path)).graph.node)
    expected_ms = runtime.float_us * 1e-3 * convs * (1 + 1 / 64)
    assert 0.8 < card["plan"]["end_to_end"]["1"]["fp32_ms"] / expected_ms < 1.3

"""The pretrained zoo: listing, name resolution, dataset regeneration and the fingerprint rules.

Everything runs on the session's tiny synthetic set (seconds); the committed default-set models
are re-evaluated by ``benchmarks/zoo_reproduce.py`` instead (the default set takes ~70 s).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgepose import zoo
from edgepose.data import SplitSpec, open_dataset
from edgepose.errors import EdgeposeError
from edgepose.evaluation import score_splits, torch_predictor
from edgepose.training import load_checkpoint, read_card


@pytest.fixture()
def zoo_dir(tmp_path, tiny_run, monkeypatch):
    """A zoo folder holding the tiny run's best checkpoint as ``wiflow-tiny``."""
    root = tmp_path / "models"
    root.mkdir()
    shutil.copy(tiny_run / "best.safetensors", root / "wiflow-tiny.safetensors")
    card = json.loads((tiny_run / "best.json").read_text())
    card["weights_file"] = "wiflow-tiny.safetensors"
    (root / "wiflow-tiny.json").write_text(json.dumps(card))
    (root / "notes.json").write_text("{}")  # not a card: skipped
    monkeypatch.setenv(zoo.MODELS_ENV, str(root))
    return root


def test_card_records_absolute_path_fingerprint_synth_config_and_hardware(tiny_run, tiny_data):
    card = read_card(tiny_run / "best.json")
    ds = card["dataset"]
    assert ds["path"] == str(tiny_data.resolve())
    assert ds["fingerprint"] == open_dataset(tiny_data).fingerprint
    assert ds["synth"]["config"]["seed"] == 3 and ds["synth"]["generator_version"] >= 1
    tr = card["training"]
    assert tr["epochs_run"] == 1 and tr["best_epoch"] == 1 and tr["train_seconds"] > 0
    assert tr["hardware"]["cpu_model"] and "avx2" in tr["hardware"]["cpu_flags"]
    assert card["recipe"]
    test = card["metrics"]["test"]
    assert {"clean", "full", "mean_pose"} <= set(test)
    assert "end_effectors_pck" in test["clean"]


def test_card_figures_reproduce_exactly(tiny_run, tiny_data):
    """Re-evaluating a checkpoint on its data gives the card's figures bit for bit."""
    model, card = load_checkpoint(tiny_run / "best.safetensors")
    spec = SplitSpec(card["split"]["seed"], tuple(card["split"]["fractions"]))
    ds = open_dataset(tiny_data)
    assert ds.split_fingerprint(spec) == card["split"]["fingerprint"]
    again = json.loads(json.dumps(score_splits(torch_predictor(model), ds, spec, splits=("test",))))
    for part in ("clean", "full", "mean_pose"):
        assert again["test"][part] == card["metrics"]["test"][part]


def test_list_and_resolve(zoo_dir, tmp_path, tiny_run, monkeypatch):
    entries = zoo.list_pretrained()
    assert [e.name for e in entries] == ["wiflow-tiny"]
    e = entries[0]
    assert e.params == 56_290 and e.model == "wiflow-tiny"
    assert e.path == (zoo_dir / "wiflow-tiny.safetensors")
    # the listed figures are what scoring the listed weights on their data gives (computed here)
    model, card = load_checkpoint(e.path)
    ds = open_dataset(card["dataset"]["path"])
    spec = SplitSpec(card["split"]["seed"], tuple(card["split"]["fractions"]))
    again = json.loads(json.dumps(score_splits(torch_predictor(model), ds, spec, splits=("test",))))["test"]
    assert e.pck20 == again["clean"]["pck"]["0.2"] and 0 <= e.pck20 <= 1
    assert e.mean_pose_pck20 == again["mean_pose"]["pck"]["0.2"] and 0 <= e.mean_pose_pck20 <= 1
    want = (zoo_dir / "wiflow-tiny.safetensors").resolve()
    assert zoo.resolve_checkpoint("wiflow-tiny") == want
    assert zoo.resolve_checkpoint(zoo_dir / "wiflow-tiny") == want
    assert zoo.resolve_checkpoint(zoo_dir / "wiflow-tiny.json") == want
    assert zoo.resolve_checkpoint(str(want)) == want
    monkeypatch.chdir(tmp_path)
    assert zoo.resolve_checkpoint("models/wiflow-tiny") == want
    assert zoo.resolve_checkpoint(tiny_run) == (tiny_run / "best.safetensors").resolve()
    with pytest.raises(EdgeposeError, match="wiflow-tiny"):  # names what is installed
        zoo.resolve_checkpoint("wiflow-huge")
    monkeypatch.setenv(zoo.MODELS_ENV, str(tmp_path / "nowhere"))
    assert zoo.list_pretrained() == []


def test_list_reads_the_card_on_disk_every_time(zoo_dir):
    """Planted figures, unlike any a real run gives, come back from the listing; a rewrite is seen at once."""
    path = zoo_dir / "wiflow-tiny.json"
    card = json.loads(path.read_text())

    def plant(clean: dict, mean_pose: dict) -> None:
        test = card["metrics"]["test"]
        test["clean"]["pck"], test["mean_pose"]["pck"] = clean, mean_pose
        test["full"]["pck"] = {k: 0.999 for k in clean}  # the full split is not what the listing shows
        path.write_text(json.dumps(card))

    thresholds = ("0.1", "0.2", "0.3", "0.4", "0.5")
    plant({t: 0.1 * i + 0.0123 for i, t in enumerate(thresholds)}, {t: 0.01 * i + 0.0045 for i, t in enumerate(thresholds)})
    (e,) = zoo.list_pretrained()
    assert e.pck20 == pytest.approx(0.1123) and e.mean_pose_pck20 == pytest.approx(0.0145)
    plant({t: 0.6543 for t in thresholds}, {t: 0.0321 for t in thresholds})  # rewritten after a listing
    (e,) = zoo.list_pretrained()
    assert (e.pck20, e.mean_pose_pck20) == (0.6543, 0.0321)
    assert e.card["metrics"]["test"]["clean"]["pck"]["0.2"] == 0.6543
    # a card without the figure lists as NaN rather than some other threshold's value
    plant({"0.1": 0.5, "0.3": 0.7}, {})
    (e,) = zoo.list_pretrained()
    assert np.isnan(e.pck20) and np.isnan(e.mean_pose_pck20)


def test_default_dataset_regenerates_and_checks_fingerprint(tiny_run, tiny_data, tmp_path):
    card = read_card(tiny_run / "best.json")
    out = zoo.default_dataset(card, cache_dir=tmp_path / "cache")
    assert out == tmp_path / "cache" / card["dataset"]["fingerprint"][:12]
    assert open_dataset(out).fingerprint == card["dataset"]["fingerprint"]
    assert zoo.default_dataset(card, cache_dir=tmp_path / "cache") == out  # cached: no regeneration
    bad = json.loads(json.dumps(card))
    bad["dataset"]["fingerprint"] = "0" * 64
    with pytest.raises(EdgeposeError, match=r"0{64}.*|" + card["dataset"]["fingerprint"]) as exc:
        zoo.default_dataset(bad, cache_dir=tmp_path / "cache2")
    assert card["dataset"]["fingerprint"] in str(exc.value) and "0" * 64 in str(exc.value)
    no_synth = json.loads(json.dumps(card))
    del no_synth["dataset"]["synth"]
    with pytest.raises(EdgeposeError, match="--data DIR"):
        zoo.default_dataset(no_synth, cache_dir=tmp_path / "cache3")


def test_default_dataset_honours_cache_env(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "envcache"))
    card = read_card(tiny_run / "best.json")
    assert zoo.default_dataset(card).parent == tmp_path / "envcache"


def test_resolve_dataset_rules(tiny_run, tiny_data, tmp_path, caplog):
    card = read_card(tiny_run / "best.json")
    # no --data: the recorded absolute path
    assert zoo.resolve_dataset(card, None, "scoring") == tiny_data.resolve()
    # matching --data
    assert zoo.resolve_dataset(card, tiny_data, "scoring") == tiny_data
    # other data: warning for calibration, refusal for scoring unless allowed
    from edgepose.data.synth import SynthConfig, synthesize

    other = tmp_path / "other"
    synthesize(other, SynthConfig(seed=4, subjects=1, activities=("walking", "waving", "jumping", "kicking", "turning"),
                                  takes=2, duration_s=1.0, stride=10, corrupt_windows_per_file=0))
    with caplog.at_level(logging.WARNING, logger="edgepose.zoo"):
        assert zoo.resolve_dataset(card, other, "calibration") == other
    assert "differs" in caplog.text
    with pytest.raises(EdgeposeError, match="--allow-other-data"):
        zoo.resolve_dataset(card, other, "scoring")
    assert zoo.resolve_dataset(card, other, "scoring", allow_other_data=True) == other
    # recorded path gone: regenerate the synthetic set
    moved = json.loads(json.dumps(card))
    moved["dataset"]["path"] = str(tmp_path / "gone")
    got = zoo.resolve_dataset(moved, None, "scoring", cache_dir=tmp_path / "cache")
    assert open_dataset(got).fingerprint == card["dataset"]["fingerprint"]
    # gone and not regenerable: the error names the fingerprint and asks for --data
    del moved["dataset"]["synth"]
    with pytest.raises(EdgeposeError) as exc:
        zoo.resolve_dataset(moved, None, "scoring")
    assert card["dataset"]["fingerprint"] in str(exc.value) and "--data DIR" in str(exc.value)


def test_models_command_lists_pretrained(zoo_dir):
    from click.testing import CliRunner

    from edgepose.cli.main import cli

    card = json.loads((zoo_dir / "wiflow-tiny.json").read_text())  # planted figures no real run gives
    card["metrics"]["test"]["clean"]["pck"]["0.2"] = 0.4567
    card["metrics"]["test"]["mean_pose"]["pck"]["0.2"] = 0.0123
    (zoo_dir / "wiflow-tiny.json").write_text(json.dumps(card))
    r = CliRunner().invoke(cli, ["models"])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.strip().startswith("wiflow-tiny ") and "PCK@20" in ln)
    assert "56,290 params" in line and "PCK@20  45.67%" in line and "(mean pose  1.23%)" in line, line
    r = CliRunner().invoke(cli, ["models", "--json"])
    data = json.loads(r.output)
    assert data["pretrained"][0]["name"] == "wiflow-tiny"
    assert data["pretrained"][0]["test_pck20"] == 0.4567 and data["pretrained"][0]["mean_pose_pck20"] == 0.0123
    assert {v["name"] for v in data["variants"]} >= {"wiflow-half", "wiflow-tiny"}


def test_committed_zoo_cards_are_complete(monkeypatch):
    """Every committed models/ entry: weights beside the card, hash matching, < 10 MB, full card."""
    from edgepose.io import sha256_file

    monkeypatch.delenv(zoo.MODELS_ENV, raising=False)
    entries = zoo.list_pretrained()
    # every committed card is listed (an empty listing is a bug, not a reason to skip)
    committed = {p.stem for p in (Path(__file__).resolve().parents[1] / "models").glob("*.json")}
    assert committed and [e.name for e in entries] == sorted(committed)
    for e in entries:
        c = e.card
        assert e.path.stat().st_size < 10 * 1024 * 1024
        assert sha256_file(e.path) == c["weights_sha256"]
        assert c["weights_bytes"] == e.path.stat().st_size
        assert c["model"] == e.name and c["param_count"] == e.params
        test = c["metrics"]["test"]
        assert set(test["clean"]["pck"]) == {"0.1", "0.2", "0.3", "0.4", "0.5"}
        assert "end_effectors_pck" in test["clean"] and "mpjpe" in test["clean"] and "mean_pose" in test
        assert c["dataset"]["fingerprint"] and c["split"]["fingerprint"]
        assert c["dataset"]["synth"]["config"]["seed"] == 0  # the embedded default
        assert c["training"]["hardware"]["cpu_model"] and c["training"]["train_seconds"] > 0
        assert c["recipe"] and c["history"]


def test_reproduce_scores_each_card_with_its_trainers_thread_count(tiny_run, monkeypatch):
    """zoo_reproduce.py compares float metrics exactly, so it takes the card's torch thread count."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import zoo_reproduce

    card = read_card(tiny_run / "best.json")
    assert zoo_reproduce.card_threads(card) == card["training"]["hardware"]["torch_threads"]
    assert zoo_reproduce.card_threads({"training": {"hardware": {"torch_threads": 2}}}) == 2
    assert zoo_reproduce.card_threads({"training": {}}) == 1
    assert zoo_reproduce.card_threads({"training": {"hardware": {"torch_threads": None}}}) == 1

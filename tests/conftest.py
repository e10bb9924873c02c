"""Shared fixtures: a tiny synthetic dataset (WiFlow layout) generated once per session."""

from __future__ import annotations

import pytest

from edgepose.data.synth import SynthConfig, synthesize

TINY = SynthConfig(seed=3, subjects=2, activities=("walking", "squatting", "waving", "jumping", "kicking"),
                   takes=1, duration_s=1.6, stride=10, corrupt_windows_per_file=2)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """10 files × 15 windows of [540, 20]; one corrupt-window file in each split."""
    out = tmp_path_factory.mktemp("data") / "tiny"
    synthesize(out, TINY)
    return out


def one_epoch_run(out, data, model: str):
    """Train ``model`` for one epoch on ``data`` into ``out`` (quietly, one thread); returns ``out``."""
    from edgepose.training import TrainConfig, fit

    fit(TrainConfig(model=model, epochs=1, batch_size=32, lr=1e-3, threads=1), data, out,
        progress=False, log=lambda s: None)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data):
    """A wiflow-tiny checkpoint trained for one epoch on the tiny dataset."""
    return one_epoch_run(tmp_path_factory.mktemp("run") / "tiny", tiny_data, "wiflow-tiny")

"""Shared fixtures: a tiny synthetic dataset (WiFlow layout) generated once per session; the range search's
default for the suite."""

from __future__ import annotations

import contextlib

import pytest

from edgepose.data.synth import SynthConfig, synthesize
from edgepose.exporting.request import RANGE_SEARCH_DEFAULT

#: The defaults as shipped, captured before the suite turns the module recipes' search off.
SHIPPED_RANGE_SEARCH = dict(RANGE_SEARCH_DEFAULT)


@pytest.fixture(scope="session", autouse=True)
def _module_recipes_unsearched():
    """The output-aware range search runs the int8 graph about 300 times per module-recipe export (seconds on the
    tiny model); tests that export a module recipe or run the guard for another reason do it without the search,
    which changes only scale and bias values (tests/quantization/test_range_search.py). Modules that test the shipped default
    (the range search's, the main job's) use :func:`shipped_range_search` or :func:`shipped_range_search_defaults`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(RANGE_SEARCH_DEFAULT, "recipe", "off")
        mp.setitem(RANGE_SEARCH_DEFAULT, "guard", "off")
        yield


@contextlib.contextmanager
def shipped_range_search_defaults():
    """The range search's shipped defaults while the block runs."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in SHIPPED_RANGE_SEARCH.items():
            mp.setitem(RANGE_SEARCH_DEFAULT, key, value)
        yield


@pytest.fixture
def shipped_range_search(_module_recipes_unsearched):
    """The range search's shipped defaults, for one test."""
    with shipped_range_search_defaults():
        yield

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

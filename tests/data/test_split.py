"""The file-level split reproduces the reference algorithm exactly."""

import math
import random

import pytest

from edgepose.data import split_files


def _reference(n, seed=42):
    random.seed(seed)
    idx = list(range(n))
    random.shuffle(idx)
    a, b = math.floor(0.7 * n), math.floor(0.15 * n)
    return idx[:a], idx[a : a + b], idx[a + b :]


@pytest.mark.parametrize("n", [0, 1, 7, 10, 70, 500])
def test_matches_reference_algorithm(n):
    assert split_files(n) == _reference(n)


def test_known_values_and_sizes():
    assert split_files(10) == ([7, 3, 2, 8, 5, 6, 9], [4], [0, 1])
    tr, va, te = split_files(500)
    assert (len(tr), len(va), len(te)) == (350, 75, 75)
    assert sorted(tr + va + te) == list(range(500))


def test_seed_and_fractions_are_parameters():
    assert split_files(20, seed=1) != split_files(20)
    tr, va, te = split_files(20, fractions=(0.5, 0.25, 0.25))
    assert (len(tr), len(va), len(te)) == (10, 5, 5)
    with pytest.raises(ValueError):
        split_files(10, fractions=(0.9, 0.2, 0.1))

"""The locked metric on hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from edgepose.metrics import PoseMeter, mpjpe, pck


def _sample(errors):
    """One sample: gt torso diagonal of length 2 (joint 2 at origin, joint 12 at (2, 0)); joint j
    of the prediction is displaced by errors[j] along y."""
    gt = np.zeros((1, 15, 2))
    gt[0, 12] = (2.0, 0.0)
    pred = gt.copy()
    pred[0, :, 1] += errors
    return pred, gt


def test_pck_hand_computed():
    # torso d = 2 → ratios = errors / 2
    errors = np.array([0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 0, 0, 0, 0, 0, 0, 0, 0, 0.2])
    pred, gt = _sample(errors)
    got = pck(pred, gt)
    # ratios: .05 .15 .25 .35 .45 .55 0×8 .1
    assert got[0.1] == pytest.approx(10 / 15)  # 8 zeros, .05, .1 (inclusive)
    assert got[0.2] == pytest.approx(11 / 15)
    assert got[0.3] == pytest.approx(12 / 15)
    assert got[0.4] == pytest.approx(13 / 15)
    assert got[0.5] == pytest.approx(14 / 15)
    assert mpjpe(pred, gt) == pytest.approx(errors.sum() / 15)


def test_torso_floor_and_custom_pair():
    gt = np.zeros((1, 15, 2))  # degenerate torso → d = 0.01
    pred = gt.copy()
    pred[0, 0] = (0.004, 0.0)  # ratio 0.4
    assert pck(pred, gt, thresholds=(0.3, 0.4))[0.3] == pytest.approx(14 / 15)
    assert pck(pred, gt, thresholds=(0.3, 0.4))[0.4] == 1.0
    gt2 = np.zeros((1, 17, 2))
    gt2[0, 4] = (1.0, 0.0)
    pred2 = gt2.copy()
    pred2[0, 0, 0] += 0.25
    assert pck(pred2, gt2, thresholds=(0.2,), torso=(14, 4))[0.2] == pytest.approx(16 / 17)


def test_non_finite_prediction_is_wrong():
    pred, gt = _sample(np.zeros(15))
    pred[0, 3, 0] = np.nan
    pred[0, 4, 1] = np.inf
    assert pck(pred, gt)[0.5] == pytest.approx(13 / 15)
    assert math.isinf(mpjpe(pred, gt))


def test_torch_and_numpy_agree():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 1, (32, 15, 2))
    pred = gt + rng.normal(0, 0.05, gt.shape)
    assert pck(torch.from_numpy(pred), torch.from_numpy(gt)) == pck(pred, gt)
    assert mpjpe(torch.from_numpy(pred).float(), torch.from_numpy(gt).float()) == pytest.approx(mpjpe(pred, gt), rel=1e-6)


def test_meter_is_a_global_mean_over_uneven_batches():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 1, (101, 15, 2))
    pred = gt + rng.normal(0, 0.08, gt.shape)
    meter = PoseMeter(subsets={"ends": (4, 7, 11, 14)})
    for start in (0, 64, 100):  # batches of 64, 36, 1
        end = {0: 64, 64: 100, 100: 101}[start]
        meter.update(pred[start:end], gt[start:end])
    out = meter.compute()
    assert out["n"] == 101
    assert out["pck"] == pytest.approx(pck(pred, gt))
    assert out["mpjpe"] == pytest.approx(mpjpe(pred, gt))
    assert out["ends_pck"] == pytest.approx(_ends_pck(pred, gt))


def _ends_pck(pred, gt):
    d = np.maximum(np.linalg.norm(gt[:, 2] - gt[:, 12], axis=-1), 0.01)
    r = np.linalg.norm(pred - gt, axis=-1)[:, [4, 7, 11, 14]] / d[:, None]
    return {t: float(np.mean(r <= t)) for t in (0.1, 0.2, 0.3, 0.4, 0.5)}


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        pck(np.zeros((2, 15, 2)), np.zeros((2, 14, 2)))


def test_non_finite_label_torso_counts_the_sample_wrong():
    """An infinite label used to make d = inf, so every finite-error joint of that sample counted
    as correct (``test_metric_any_input`` in tests/test_properties.py checks the rule at random)."""
    gt = np.zeros((2, 15, 2))
    gt[:, 12] = (1.0, 0.0)
    pred = gt.copy()
    gt[1, 2] = (np.inf, 0.0)
    assert pck(pred, gt, thresholds=(0.5,))[0.5] == pytest.approx(0.5)


def test_metric_input_errors_are_edgepose_errors_and_value_errors():
    from edgepose.errors import EdgeposeError
    from edgepose.metrics import MetricInputError

    for bad in (lambda: pck(np.zeros((1, 5, 2)), np.zeros((1, 5, 2))),          # torso joint 12 missing
                lambda: pck(np.zeros((1, 15, 2)), np.zeros((1, 14, 2))),
                lambda: mpjpe(np.array([["a", "b"]]), np.zeros((1, 2))),
                lambda: PoseMeter(subsets={"x": (40,)}).update(np.zeros((1, 15, 2)), np.zeros((1, 15, 2)))):
        with pytest.raises(MetricInputError) as err:
            bad()
        assert isinstance(err.value, EdgeposeError) and isinstance(err.value, ValueError)


def test_empty_batch_scores_nan_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(pck(np.zeros((0, 15, 2)), np.zeros((0, 15, 2)))[0.5])
        assert np.isnan(mpjpe(np.zeros((0, 15, 2)), np.zeros((0, 15, 2))))

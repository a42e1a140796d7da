"""The quality score as predicted IoU: features, calibrator, fit, and the ois backend's use of it."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ois.core.quality import (FEATURE_SIGNS, FEATURES, OIS_CALIBRATION, Calibration, fit_calibration,
                                     predicted_iou, quality_features)
from napari_ois.core.segmenter import Reference
from napari_ois.model.checkpoint import make_random_checkpoint
from napari_ois.model.segmenter import OISSegmenter


def _square(size=40, lo=10, hi=30) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[lo:hi, lo:hi] = True
    return mask


def test_features_of_a_crisp_unchanged_mask():
    mask = _square()
    features = quality_features(mask.astype(np.float32), mask, 0.7)
    assert features.shape == (len(FEATURES),)
    np.testing.assert_allclose(features, [0.7, 1.0, 0.0, 0.0])


def test_features_see_change_and_doubt():
    ref = _square()
    prob = np.where(_square(lo=10, hi=20), 0.6, 0.0).astype(np.float32)  # a quarter of the area, all doubtful
    confidence, ref_iou, area_change, uncertain = quality_features(prob, ref, 0.2)
    assert ref_iou == pytest.approx(0.25)
    assert area_change == pytest.approx(np.log2(401 / 101))
    assert uncertain == 1.0
    assert quality_features(prob, None, 0.2)[1] == 0.0


@pytest.mark.parametrize("feature", range(len(FEATURES)))
def test_packaged_calibration_moves_each_feature_its_way(feature):
    base = np.array([0.3, 0.9, 0.1, 0.6])
    grid = np.repeat(base[None], 21, 0)
    grid[:, feature] = np.linspace(0.0, 1.0, 21)
    scores = OIS_CALIBRATION(grid)
    steps = np.diff(scores) * FEATURE_SIGNS[feature]
    assert np.all(steps >= 0.0)
    if OIS_CALIBRATION.weights[feature]:
        assert scores[-1] != scores[0]


def test_packaged_calibration_is_monotone_in_its_main_feature():
    # The shipped fit is a map of the boundary confidence: more confidence, higher score.
    assert OIS_CALIBRATION.weights[FEATURES.index("confidence")] > 0
    x = np.linspace(0, 1, 50)
    up = OIS_CALIBRATION(np.stack([x, np.ones(50), np.zeros(50), np.full(50, 0.5)], 1))
    assert np.all(np.diff(up) > 0)


def test_scores_stay_in_unit_range():
    rng = np.random.default_rng(0)
    features = np.column_stack([rng.random(500), rng.random(500), rng.random(500) * 4, rng.random(500)])
    scores = OIS_CALIBRATION(features)
    assert scores.shape == (500,) and scores.min() >= 0.0 and scores.max() <= 1.0
    extreme = Calibration((1e6, 0.0, 0.0, -1e6), 0.0)
    assert 0.0 <= extreme(np.array([1.0, 0, 0, 0])) <= 1.0 and 0.0 <= extreme(np.array([0.0, 0, 0, 1])) <= 1.0


def test_stable_prediction_scores_high_and_empty_mask_scores_zero():
    mask = _square()
    assert predicted_iou(mask.astype(np.float32), mask, 1.0, OIS_CALIBRATION) > 0.9
    empty = np.zeros_like(mask, np.float32)
    assert predicted_iou(empty, mask, 0.0, OIS_CALIBRATION) == 0.0
    # A blurred, doubtful mask scores lower than the crisp one.
    blurred = np.where(mask, 0.55, 0.3).astype(np.float32)
    assert predicted_iou(blurred, mask, 0.1, OIS_CALIBRATION) < predicted_iou(mask.astype(np.float32), mask, 1.0,
                                                                               OIS_CALIBRATION)


def test_fit_recovers_a_known_calibration_and_enforces_signs():
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.random(4000), rng.random(4000), rng.random(4000), rng.random(4000)])
    truth = Calibration((2.0, 1.0, -1.5, -0.5), 0.3)
    fitted = fit_calibration(x, truth(x), ridge=0.0)
    np.testing.assert_allclose(fitted.weights, truth.weights, atol=1e-4)
    assert fitted.bias == pytest.approx(0.3, abs=1e-4)
    # A feature that raises the IoU where its sign says it may only lower it gets weight 0.
    wrong = Calibration((2.0, 1.0, 1.5, -0.5), 0.3)
    constrained = fit_calibration(x, wrong(x))
    assert constrained.weights[2] == 0.0
    assert constrained.weights[0] > 0 and constrained.weights[3] < 0


def test_ois_propagation_step_scores_predicted_iou_clicks_keep_raw(tmp_path):
    segmenter = OISSegmenter.from_checkpoint(str(make_random_checkpoint(tmp_path / "q.pt", "test")), "cpu")
    image = np.random.default_rng(2).random((40, 48, 3), dtype=np.float32)
    embedding = segmenter.encode(image)
    mask = np.zeros((40, 48), bool)
    mask[10:30, 12:36] = True
    reference = Reference(embedding, mask)
    calibrated = segmenter.predict(embedding, [], prev_prob=mask.astype(np.float32), reference=reference)
    segmenter.quality_calibration = None
    raw = segmenter.predict(embedding, [], prev_prob=mask.astype(np.float32), reference=reference)
    np.testing.assert_array_equal(calibrated.prob, raw.prob)
    assert 0.0 <= calibrated.score <= 1.0
    assert calibrated.score == pytest.approx(predicted_iou(raw.prob, mask, raw.score, OIS_CALIBRATION))

"""The quality score as predicted IoU: features, calibrator, fit, and the ois backend's use of it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import BrightComponentSegmenter
from napari_ois.core.frames import FrameStack
from napari_ois.core.quality import (FEATURE_SIGNS, FEATURES, OIS_CALIBRATION, OIS_TRACK_CALIBRATION, Calibration,
                                     colour_counts, colour_match, fit_calibration, predicted_iou, quality_features,
                                     track_score)
from napari_ois.core.segmenter import Prediction, Reference
from napari_ois.core.session import AnnotationSession
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


# ----------------------------------------------------------------- track stage
def test_colour_match_is_one_for_the_same_colours_and_zero_for_disjoint_ones():
    image = np.zeros((20, 20, 3), np.float32)
    image[:10] = (0.9, 0.9, 0.1)
    image[10:] = (0.1, 0.9, 0.9)
    top, bottom = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    top[:10], bottom[10:] = True, True
    half_top = top.copy()
    half_top[:, 10:] = False
    assert colour_match(colour_counts(image, half_top), colour_counts(image, top)) == pytest.approx(1.0)
    assert colour_match(colour_counts(image, top), colour_counts(image, bottom)) == 0.0
    both = colour_match(colour_counts(image, top | bottom), colour_counts(image, top))
    assert both == pytest.approx(np.sqrt(0.5))  # half the pixels keep the keyframe's colour
    assert colour_match(colour_counts(image, np.zeros((20, 20), bool)), colour_counts(image, top)) == 0.0


def test_track_score_moves_with_each_input_its_way_and_keeps_a_lost_object_at_zero():
    cal = OIS_TRACK_CALIBRATION
    assert cal.weights[0] > 0 and cal.weights[1] > 0 and cal.weights[2] < 0
    assert track_score(0.8, 0.6, 3, cal) < track_score(0.8, 0.95, 3, cal)
    assert track_score(0.6, 0.9, 3, cal) < track_score(0.8, 0.9, 3, cal)
    assert track_score(0.8, 0.9, 30, cal) < track_score(0.8, 0.9, 3, cal)
    assert track_score(0.0, 1.0, 1, cal) == 0.0
    assert 0.0 < track_score(1.0, 1.0, 1, cal) <= 1.0


class _CalibratedFake(BrightComponentSegmenter):
    """The bright-component double with a fixed step score and the ois track calibration."""

    quality_calibration = OIS_CALIBRATION
    track_calibration = OIS_TRACK_CALIBRATION

    def predict(self, embedding, clicks, prev_prob=None, reference=None):
        prediction = super().predict(embedding, clicks, prev_prob, reference)
        return Prediction(prediction.prob, 0.8 if prediction.prob.any() else 0.0)


def _recoloured_square(n_frames=10, change=6):
    """(T, Y, X, 3) uint8: one bright square, yellow up to frame ``change``, then cyan.

    The fake tracks it by brightness alone, so from ``change`` on its mask covers
    something that no longer looks like the annotated object.
    """
    video = np.zeros((n_frames, 32, 32, 3), np.uint8)
    video[:, 8:20, 8:20] = (230, 230, 40)
    video[change:, 8:20, 8:20] = (40, 230, 230)
    return video


@pytest.mark.parametrize("multi", [False, True])
def test_session_scores_frames_by_their_look_against_the_keyframe(multi):
    video = _recoloured_square()
    session = AnnotationSession(FrameStack(video, rgb=True), segmenter=_CalibratedFake())
    first = np.zeros((32, 32), bool)
    first[8:20, 8:20] = True
    session.set_keyframe_mask(1, 0, first)
    if multi:
        session.run_multi_propagation([1], direction="forward")
    else:
        session.run_propagation(1, "forward")
    scores = session.scores[1]
    assert sorted(scores) == list(range(1, 10))
    # Yellow and cyan share no colour bin: a match of 1 up to frame 5, then 0.
    for frame, match in [(f, 1.0) for f in range(1, 6)] + [(f, 0.0) for f in range(6, 10)]:
        assert scores[frame] == pytest.approx(track_score(0.8, match, frame, OIS_TRACK_CALIBRATION))
    assert max(scores[f] for f in range(6, 10)) < min(scores[f] for f in range(1, 6))
    assert session.worst_frame(1) in range(6, 10)
    # Without a track calibration the stored score is the step's own.
    plain = AnnotationSession(FrameStack(video, rgb=True), segmenter=BrightComponentSegmenter())
    plain.set_keyframe_mask(1, 0, first)
    plain.run_propagation(1, "forward")
    assert set(plain.scores[1].values()) == {1.0}

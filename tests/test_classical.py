"""Tests of the training-free classical backend on small synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ois.core.classical import ClassicalEmbedding, ClassicalSegmenter
from napari_ois.core.clicks import Click
from napari_ois.core.segmenter import Prediction, Reference, embedding_nbytes
from napari_ois.core.backends import get_segmenter


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def disk(shape, cy, cx, r) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def scene(shape=(120, 160), cy=60, cx=70, r=25, seed=0, colour=(0.9, 0.8, 0.2)):
    """(Y, X, 3) float32 image: a bright disk on a noisy dark background, and its mask."""
    rng = np.random.default_rng(seed)
    mask = disk(shape, cy, cx, r)
    image = np.full(shape + (3,), 0.15, np.float32) + rng.normal(0, 0.04, shape + (3,)).astype(np.float32)
    image[mask] = np.asarray(colour, np.float32) + rng.normal(0, 0.04, (mask.sum(), 3))
    return np.clip(image, 0, 1).astype(np.float32), mask


def pos(y, x):
    return Click(1, 0, y, x, True)


def neg(y, x):
    return Click(1, 0, y, x, False)


@pytest.fixture(scope="module")
def seg():
    return ClassicalSegmenter()


def check_prediction(pred: Prediction, shape) -> None:
    assert isinstance(pred, Prediction)
    assert pred.prob.shape == shape
    assert pred.prob.dtype == np.float32
    assert np.all(np.isfinite(pred.prob))
    assert pred.prob.min() >= 0.0 and pred.prob.max() <= 1.0
    assert 0.0 <= pred.score <= 1.0


def test_registered_as_default_backend():
    seg = get_segmenter("classical")
    assert isinstance(seg, ClassicalSegmenter)
    assert seg.name == "classical"


def test_encode_has_nbytes(seg):
    image, _ = scene()
    emb = seg.encode(image)
    assert isinstance(emb, ClassicalEmbedding)
    assert embedding_nbytes(emb) > 0
    assert emb.shape == image.shape[:2]


def test_one_positive_click_finds_disk(seg):
    image, mask = scene()
    pred = seg.predict(seg.encode(image), [pos(60, 70)])
    check_prediction(pred, mask.shape)
    assert iou(pred.mask(), mask) > 0.8
    assert pred.score > 0.5


def test_large_image_is_processed_at_reduced_resolution(seg):
    image, mask = scene(shape=(600, 900), cy=300, cx=420, r=120)
    emb = seg.encode(image)
    assert max(emb.work_shape) <= seg.work_size
    pred = seg.predict(emb, [pos(300, 420)])
    check_prediction(pred, mask.shape)
    assert iou(pred.mask(), mask) > 0.8


def test_negative_click_removes_wrongly_included_region(seg):
    # Two touching disks of the same colour: one click takes both, a negative click on
    # the second one must remove it while keeping the first.
    shape = (120, 180)
    image, first = scene(shape=shape, cy=60, cx=60, r=25)
    second = disk(shape, 60, 110, 25)
    rng = np.random.default_rng(1)
    image[second] = np.clip(np.float32([0.9, 0.8, 0.2]) + rng.normal(0, 0.04, (second.sum(), 3)), 0, 1)
    emb = seg.encode(image)
    clicks = [pos(60, 60)]
    before = seg.predict(emb, clicks)
    assert before.mask()[60, 110], "setup: the second disk is expected in the one-click result"
    clicks.append(neg(60, 115))
    after = seg.predict(emb, clicks, prev_prob=before.prob)
    check_prediction(after, shape)
    assert not after.mask()[60, 115]
    assert iou(after.mask(), first) > 0.7


def test_prev_prob_is_kept_without_contradiction(seg):
    image, mask = scene()
    emb = seg.encode(image)
    first = seg.predict(emb, [pos(60, 70)])
    again = seg.predict(emb, [pos(60, 70), pos(55, 75)], prev_prob=first.prob)
    assert iou(again.mask(), first.mask()) > 0.9


def test_propagation_follows_shifted_disk(seg):
    ref_image, ref_mask = scene(cy=60, cx=60, seed=0)
    image, mask = scene(cy=66, cx=74, seed=1)
    ref = Reference(seg.encode(ref_image), ref_mask)
    pred = seg.predict(seg.encode(image), [], reference=ref)
    check_prediction(pred, mask.shape)
    assert iou(pred.mask(), mask) > 0.85
    assert iou(pred.mask(), mask) > iou(ref_mask, mask) + 0.1


def test_motion_range_is_a_fraction_of_the_whole_frame_also_for_a_crop(seg):
    image, _ = scene(shape=(120, 300))  # within the 320-px working size: grid = pixels
    whole, crop = seg.encode(image), seg.encode(image[30:90, 100:180])
    assert whole.motion_range == 15 and crop.motion_range == 4  # 5 % of 300 and of 80 px
    crop.context_side = 300  # the crop of a 300-px frame: search as far as on the frame
    assert crop.motion_range == 15


def test_propagation_follows_a_shift_beyond_the_crop_sizes_range_with_context(seg):
    # A disk of radius 10 moved 9 px: 11 % of the 80-px crop it is segmented on.
    ref_image, ref_mask = scene(shape=(80, 80), cy=40, cx=34, r=10, seed=0)
    image, mask = scene(shape=(80, 80), cy=40, cx=43, r=10, seed=1)
    ious = {}
    for context in (None, 400):
        ref_emb, emb = seg.encode(ref_image), seg.encode(image)
        ref_emb.context_side = emb.context_side = context
        pred = seg.predict(emb, [], prev_prob=ref_mask.astype(np.float32), reference=Reference(ref_emb, ref_mask))
        ious[context] = iou(pred.mask(), mask)
    assert ious[400] > 0.85 and ious[400] > ious[None] + 0.1


def test_propagation_with_prev_prob_and_clicks(seg):
    ref_image, ref_mask = scene(cy=60, cx=60, seed=0)
    image, mask = scene(cy=62, cx=66, seed=1)
    emb = seg.encode(image)
    ref = Reference(seg.encode(ref_image), ref_mask)
    prop = seg.predict(emb, [], prev_prob=ref_mask.astype(np.float32), reference=ref)
    assert iou(prop.mask(), mask) > 0.8
    fixed = seg.predict(emb, [pos(62, 66)], prev_prob=prop.prob, reference=ref)
    check_prediction(fixed, mask.shape)
    assert iou(fixed.mask(), mask) > 0.8


def test_empty_reference_gives_empty_mask(seg):
    image, _ = scene()
    ref = Reference(seg.encode(image), np.zeros(image.shape[:2], bool))
    pred = seg.predict(seg.encode(image), [], reference=ref)
    check_prediction(pred, image.shape[:2])
    assert pred.prob.max() == 0.0 and pred.score == 0.0


def test_only_negative_clicks_give_empty_mask(seg):
    image, _ = scene()
    pred = seg.predict(seg.encode(image), [neg(10, 10)])
    check_prediction(pred, image.shape[:2])
    assert not pred.mask().any()


@pytest.mark.parametrize("y, x", [(0, 0), (119, 159), (0, 80), (60, 159), (119.9, 159.9)])
def test_clicks_on_the_border(seg, y, x):
    image, _ = scene()
    pred = seg.predict(seg.encode(image), [pos(y, x)])
    check_prediction(pred, image.shape[:2])
    assert pred.mask()[int(y), int(x)]


@pytest.mark.parametrize("shape", [(8, 8), (1, 1), (3, 50), (50, 2)])
def test_tiny_images(seg, shape):
    rng = np.random.default_rng(0)
    image = rng.random(shape + (3,)).astype(np.float32)
    emb = seg.encode(image)
    pred = seg.predict(emb, [pos(shape[0] // 2, shape[1] // 2), neg(0, 0)])
    check_prediction(pred, shape)
    ref = Reference(emb, np.ones(shape, bool))
    check_prediction(seg.predict(emb, [], reference=ref), shape)


def test_flat_image(seg):
    image = np.full((40, 60, 3), 0.5, np.float32)
    emb = seg.encode(image)
    pred = seg.predict(emb, [pos(20, 30)])
    check_prediction(pred, (40, 60))
    assert pred.mask()[20, 30]
    ref = Reference(emb, disk((40, 60), 20, 30, 8))
    check_prediction(seg.predict(emb, [], reference=ref), (40, 60))


def test_gray_microscopy_like_image(seg):
    image, mask = scene(colour=(0.7, 0.7, 0.7))
    gray = np.repeat(image.mean(-1, keepdims=True), 3, axis=-1)
    pred = seg.predict(seg.encode(gray), [pos(60, 70)])
    assert iou(pred.mask(), mask) > 0.8


def test_deterministic(seg):
    image, _ = scene()
    emb = seg.encode(image)
    a = seg.predict(emb, [pos(60, 70), neg(10, 10)])
    b = seg.predict(seg.encode(image), [pos(60, 70), neg(10, 10)])
    np.testing.assert_array_equal(a.prob, b.prob)
    assert a.score == b.score


def test_no_clicks_no_reference_is_empty(seg):
    image, _ = scene()
    pred = seg.predict(seg.encode(image), [])
    check_prediction(pred, image.shape[:2])
    assert not pred.mask().any()

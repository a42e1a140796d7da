"""Training data: samples, synthetic scenes, real-data loaders, click sampling, losses."""

import time

import numpy as np
import pytest
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image

from napari_ois.core.click_simulator import next_click
from napari_ois.train.click_sampler import (
    clicked_map, iterative_click, pack_clicks, sample_clicks, sample_initial_clicks,
)
from napari_ois.train.losses import normalized_focal_loss, ssi_depth_loss
from napari_ois.train.real_data import CocoObjects, CtcFrames, mixed_stream
from napari_ois.train.samples import (
    TrainingSample, fit_shape, longest_side_pad_image, longest_side_pad_mask, resize_image,
    resize_longest_and_pad, stack_samples, unpad_and_resize,
)
from napari_ois.train.synthetic import microscopy_scene, natural_scene, render_scene

SIZE = 96  # small scenes keep the suite fast; the generators do not depend on the size


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A tiny train/ layout: 3 COCO-style masks on 2 images, 3 CTC frames with 3 cells."""
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    (root / "coco_mval" / "img").mkdir(parents=True)
    (root / "coco_mval" / "gt").mkdir()
    image = (rng.random((90, 120, 3)) * 255).astype(np.uint8)
    for name, centre in [("dog00_000001", (40, 40)), ("cat01_000001", (50, 90)), ("cup02_000002", (45, 60))]:
        Image.fromarray(image).save(root / "coco_mval" / "img" / f"{name}.jpg")
        Image.fromarray((_disk((90, 120), centre, 18) * 255).astype(np.uint8)).save(root / "coco_mval" / "gt" / f"{name}.png")
    (root / "ctc_psc" / "02").mkdir(parents=True)
    (root / "ctc_psc" / "02_ST" / "SEG").mkdir(parents=True)
    for t in range(3):
        labels = np.zeros((80, 100), np.uint16)
        for cell, (cy, cx) in enumerate([(20, 20), (40, 60), (60, 30)], start=1):
            labels[_disk(labels.shape, (cy + 2 * t, cx + t), 7)] = cell
        frame = (60 + 120 * (labels > 0) + rng.integers(0, 20, labels.shape)).astype(np.uint8)
        tifffile.imwrite(root / "ctc_psc" / "02" / f"t{t:03d}.tif", frame)
        tifffile.imwrite(root / "ctc_psc" / "02_ST" / "SEG" / f"man_seg{t:03d}.tif", labels)
    return root


def _check(sample: TrainingSample, size=None):
    h, w = sample.shape
    if size is not None:
        assert (h, w) == (size, size)
    assert sample.image.shape == (h, w, 3) and sample.image.dtype == np.float32
    assert 0 <= sample.image.min() and sample.image.max() <= 1
    assert sample.mask.dtype == bool and sample.mask.any()
    for field in ("ignore", "ref_mask", "others"):
        value = getattr(sample, field)
        assert value is None or (value.shape == (h, w) and value.dtype == bool)
    assert sample.depth is None or (sample.depth.shape == (h, w) and sample.depth.dtype == np.float32)
    assert (sample.ref_image is None) == (sample.ref_mask is None)
    if sample.ref_image is not None:
        assert sample.ref_image.shape == (h, w, 3) and sample.ref_image.dtype == np.float32
        assert sample.kind.endswith("-pair")


# --- geometry ---------------------------------------------------------------

def test_resize_matches_torch_antialiased_bilinear():
    image = np.random.default_rng(0).random((70, 53, 3)).astype(np.float32)
    for out in [(35, 26), (140, 106), (23, 90)]:
        ref = F.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None], size=out, mode="bilinear",
                            antialias=True, align_corners=False)[0].permute(1, 2, 0).numpy()
        assert np.abs(resize_image(image, out) - ref).max() < 1e-4


def test_longest_side_pad_geometry_and_round_trip():
    shape = (60, 150)
    mask = np.zeros(shape, bool)
    mask[10:30, 50:100] = True
    image = np.repeat(resize_image(np.random.default_rng(1).random((6, 15)), shape)[..., None], 3, -1)
    assert fit_shape(shape, 100) == (40, 100)
    padded = longest_side_pad_image(image, 100)
    pm = longest_side_pad_mask(mask, 100)
    assert padded.shape == (100, 100, 3) and not padded[40:].any()
    ys, xs = np.nonzero(pm)  # the box scales by 100/150 about the top-left corner
    assert abs(ys.min() - 10 * 2 / 3) <= 1 and abs(ys.max() + 1 - 20) <= 1
    assert abs(xs.min() - 50 * 2 / 3) <= 1 and abs(xs.max() + 1 - 100 * 2 / 3) <= 1
    back = unpad_and_resize(padded, shape)
    assert back.shape == (60, 150, 3) and np.abs(back - image).mean() < 0.02
    s = resize_longest_and_pad(TrainingSample(image.astype(np.float32), mask, depth=np.ones(shape, np.float32)), 100)
    assert s.ignore[40:].all() and not s.ignore[:40].any() and (s.mask == pm).all()


def test_warp_backends_agree(monkeypatch):
    from napari_ois.train import augment

    rng = np.random.default_rng(0)
    image = augment.smooth_field(rng, (50, 60), 6)
    matrix = augment.translate(3.2, -1.5) @ augment.similarity(0.8, 0.3, (25, 30), True)
    flow = augment.elastic_flow(rng, (40, 45), 2.0)
    fast = [augment.warp(image, matrix, (40, 45)), augment.warp(image, matrix, (40, 45), flow)]
    monkeypatch.setattr(augment, "cv2", None)
    slow = [augment.warp(image, matrix, (40, 45)), augment.warp(image, matrix, (40, 45), flow)]
    for a, b in zip(fast, slow):  # OpenCV interpolates on a 1/32 px grid; scipy exactly
        inner = (slice(3, -3), slice(3, -3))
        assert np.abs(a[inner] - b[inner]).max() < 0.05


# --- synthetic scenes -------------------------------------------------------

def test_synthetic_is_deterministic_and_well_formed():
    for maker in (natural_scene, microscopy_scene):
        for pair in (False, True):
            a = maker(np.random.default_rng(7), SIZE, pair=pair, drop_ref_prob=0)
            b = maker(np.random.default_rng(7), SIZE, pair=pair, drop_ref_prob=0)
            _check(a, SIZE)
            assert a.kind == b.kind and (a.image == b.image).all() and (a.mask == b.mask).all()
            assert pair == (a.ref_mask is not None)
            assert (a.depth is not None) == (maker is natural_scene)


def test_depth_order_matches_occlusion():
    checked = 0
    for seed in range(6):
        for image, label, depth, coverage in render_scene(np.random.default_rng(seed), SIZE, frames=2):
            level = np.zeros(len(coverage))
            for i in range(len(coverage)):
                if (label == i + 1).any():
                    level[i] = np.median(depth[label == i + 1])
            for i in range(len(coverage)):
                for j in range(len(coverage)):
                    both = coverage[i] & coverage[j] & (label == i + 1)
                    if i != j and both.any() and level[j] > 0:  # i shown over j: i is closer
                        assert level[i] > level[j] and (depth[both] > level[j]).all()
                        checked += 1
            visible = label > 0
            assert (depth[visible] >= 0.3).all() and (depth[~visible] <= 0.25 + 1e-6).all()
            # No object is visible where it is not, and a visible pixel is covered.
            assert all(coverage[label[visible] - 1, *np.nonzero(visible)])
    assert checked > 0


def test_pairs_overlap_and_refs_can_drop():
    overlaps, dropped = [], 0
    for seed in range(12):
        for maker in (natural_scene, microscopy_scene):
            s = maker(np.random.default_rng(seed), SIZE, pair=True, drop_ref_prob=0.2)
            if s.ref_mask is None:
                dropped += 1
                continue
            overlaps.append((s.ref_mask & s.mask).any())
    assert np.mean(overlaps) >= 0.8 and dropped < 12


# --- real data --------------------------------------------------------------

def test_real_loaders(data_root):
    coco, ctc = CocoObjects(data_root / "coco_mval"), CtcFrames(data_root / "ctc_psc")
    image, mask, others = coco.read(0)
    assert mask.any() and others.any() and not (mask & others).any()  # sibling on the same image
    for pair in (False, True):
        for loader in (coco, ctc):
            s = loader.sample(np.random.default_rng(3), 64, pair=pair, drop_ref_prob=0, min_area=20)
            _check(s)
            assert max(s.shape) == 64 and s.depth is None and s.kind.endswith("pair" if pair else "still")
            if pair:
                assert (s.ref_mask & s.mask).any()


def test_mixed_stream_is_deterministic_and_resumable(data_root):
    kw = dict(size=64, data_root=data_root, weights={"synthetic": 1, "microscopy": 1, "coco": 1, "ctc": 1})
    first = [s for _, s in zip(range(8), mixed_stream(5, **kw))]
    again = [s for _, s in zip(range(8), mixed_stream(5, **kw))]
    resumed = next(mixed_stream(5, start=6, **kw))
    for a, b in zip(first, again):
        _check(a, 64)
        assert a.kind == b.kind and np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert np.array_equal(resumed.image, first[6].image)
    odd = next(mixed_stream(5, start=1, stride=2, **kw))
    assert np.array_equal(odd.image, first[1].image)
    batch = stack_samples(first)
    assert batch["image"].shape == (8, 64, 64, 3) and batch["has_ref"].dtype == bool


# --- clicks -----------------------------------------------------------------

def test_initial_clicks_inside_outside_and_counts():
    rng = np.random.default_rng(0)
    mask = _disk((80, 80), (40, 40), 18)
    others = _disk((80, 80), (10, 70), 8)
    ignore = np.zeros_like(mask)
    ignore[:, 75:] = True
    n_pos = []
    for _ in range(300):
        clicks = sample_clicks(mask, rng, others, ignore)
        pos, neg = clicks[clicks[:, 2] == 1], clicks[clicks[:, 2] == 0]
        assert mask[pos[:, 0], pos[:, 1]].all() and not mask[neg[:, 0], neg[:, 1]].any()
        assert not ignore[clicks[:, 0], clicks[:, 1]].any() and 1 <= len(pos) <= 24 and len(neg) <= 24
        assert len(np.unique(clicks[:, :2], axis=0)) == len(clicks)
        n_pos.append(len(pos))
    # 1 + k with P(k) ~ 0.8^k: P(1) ~ 0.2, mean ~ 4.9.
    assert 0.13 < np.mean(np.array(n_pos) == 1) < 0.28 and 4.0 < np.mean(n_pos) < 5.9
    ref = TrainingSample(np.zeros((80, 80, 3), np.float32), mask, ref_image=np.zeros((80, 80, 3), np.float32), ref_mask=mask)
    empty = [len(sample_initial_clicks(ref, rng, zero_click_prob=0.5)) == 0 for _ in range(200)]
    assert 0.35 < np.mean(empty) < 0.65
    assert all(len(sample_initial_clicks(TrainingSample(ref.image, mask), rng, zero_click_prob=1.0)) for _ in range(5))
    packed = pack_clicks([clicks, np.zeros((0, 3), np.int64)])
    assert packed.shape == (2, 48, 3) and (packed[1] == -1).all()


def test_iterative_click_lands_in_larger_error():
    truth = np.zeros((60, 60), bool)
    truth[10:50, 10:50] = True
    prob = np.zeros((60, 60), np.float32)
    prob[10:50, 10:25] = 0.9  # large miss on the right: a positive click there
    prob[0:3, 0:10] = 0.9  # small false positive
    rng = np.random.default_rng(0)
    for _ in range(20):
        y, x, positive = iterative_click(truth, prob, None, rng)
        assert positive == 1 and truth[y, x] and x >= 25
    prob = truth * 0.9 + 0.0
    prob[52:60, :] = 0.9  # false positive band only
    y, x, positive = iterative_click(truth, prob, None, rng)
    assert positive == 0 and 52 <= y
    assert iterative_click(truth, truth.astype(float), None, rng) is None
    # The deterministic protocol click is one of the candidates.
    first = next_click(truth, np.zeros_like(truth))
    clicked = clicked_map(np.array([[first.y, first.x, 1]]), truth.shape)
    y, x, _ = iterative_click(truth, np.zeros_like(prob), clicked, rng)
    assert (y, x) != (first.y, first.x)


# --- losses -----------------------------------------------------------------

def test_normalized_focal_loss():
    target = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    target[:, :, 8:24, 8:24] = True
    perfect = torch.where(target, 20.0, -20.0)
    worse = torch.where(target, 1.0, -1.0)
    assert normalized_focal_loss(perfect, target) < 1e-6
    assert normalized_focal_loss(worse, target) > normalized_focal_loss(torch.where(target, 3.0, -3.0), target)
    ignore = torch.zeros_like(target)
    ignore[:, :, :4] = True
    noisy = perfect.clone()
    noisy[:, :, :4] = 5.0  # wrong, but only on ignored pixels
    assert normalized_focal_loss(noisy, target, ignore) < 1e-6
    logits = worse.clone().requires_grad_(True)
    normalized_focal_loss(logits, target).backward()
    assert logits.grad.abs().sum() > 0 and logits.grad[target].mean() < 0  # push object logits up


def test_depth_loss():
    depth = torch.rand(3, 1, 16, 16)
    assert ssi_depth_loss(depth * 3 + 1, depth) < 1e-4  # invariant to scale and shift
    pred = torch.rand(3, 1, 16, 16, requires_grad=True)
    loss = ssi_depth_loss(pred, depth, has_depth=torch.tensor([True, False, True]))
    loss.backward()
    assert loss > 0.1 and pred.grad[1].abs().sum() == 0 and pred.grad[0].abs().sum() > 0
    none = ssi_depth_loss(pred, depth, has_depth=torch.zeros(3, dtype=torch.bool))
    assert none == 0 and none.requires_grad


def test_throughput_report(data_root):
    """Prints ms per sample on this machine (not asserted: shared CPUs vary)."""
    for name, make in [
        ("synthetic", lambda r: natural_scene(r, 256, pair=r.random() < 0.5)),
        ("microscopy", lambda r: microscopy_scene(r, 256, pair=r.random() < 0.5)),
    ]:
        rng = np.random.default_rng(0)
        start = time.process_time()
        for _ in range(5):
            make(rng)
        print(f"{name} 256 px: {(time.process_time() - start) / 5 * 1000:.1f} ms/sample (CPU time)")


def test_longer_synthetic_videos_keep_moving_the_same_objects():
    pair = render_scene(np.random.default_rng(4), SIZE, frames=2)
    video = render_scene(np.random.default_rng(4), SIZE, frames=5)
    assert len(video) == 5
    # The first two frames are the training pair of the same seed, drawn identically.
    for (a_image, a_label, *_), (b_image, b_label, *_) in zip(pair, video[:2]):
        assert np.array_equal(a_image, b_image) and np.array_equal(a_label, b_label)
    # Later frames move the objects on: the same ids, at other places.
    n_objects = len(video[0][3])
    assert all(len(frame[3]) == n_objects for frame in video)
    assert not np.array_equal(video[3][1], video[4][1])


def test_bleed_mask_adds_connected_background_only():
    from scipy import ndimage

    from napari_ois.train.augment import bleed_mask

    # An L-shaped object: a concavity to fill and a ring to leak into.
    mask = np.zeros((96, 96), bool)
    mask[20:80, 55:65] = True
    mask[70:80, 20:65] = True
    rng = np.random.default_rng(0)
    grown = [bleed_mask(mask, rng) for _ in range(40)]
    assert all((g >= mask).all() for g in grown)  # never removes the object
    added = [int((g & ~mask).sum()) for g in grown]
    assert sum(a > 0.1 * mask.sum() for a in added) >= 10  # leaks of real size happen often
    # The leak touches the object: the result is one piece when the object is.
    assert all(ndimage.label(g)[1] == 1 for g in grown)
    # Both kinds show: fills inside the L's hull and blobs outside it.
    hull = np.zeros_like(mask)
    hull[20:80, 20:65] = True
    assert any(((g & ~mask) & hull).sum() > 50 for g in grown)
    assert any(((g & ~mask) & ~hull).sum() > 50 for g in grown)
    assert not bleed_mask(np.zeros((8, 8), bool), rng).any()


def test_bleed_references_touch_only_chosen_pairs_and_not_the_padding():
    from napari_ois.train.step import bleed_references

    ref = np.zeros((3, 64, 64), bool)
    ref[:, 20:40, 20:40] = True
    ignore = np.zeros((3, 64, 64), bool)
    ignore[:, :, 48:] = True  # the padding right of a landscape frame
    batch = {"ref_mask": ref.copy(), "ignore": ignore}
    rng = np.random.default_rng(1)
    for _ in range(10):
        bleed_references(batch, np.array([True, False, True]), rng)
    assert (batch["ref_mask"][1] == ref[1]).all()
    assert (batch["ref_mask"] >= ref).all() and not (batch["ref_mask"] & ignore).any()
    assert batch["ref_mask"][[0, 2]].sum() > ref[[0, 2]].sum()

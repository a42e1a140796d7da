"""Procedural natural-like scenes with exact depth order, occlusion and two-frame motion.

A scene is a background plane plus 2-7 objects. Each object is a random shape (smooth
blob, polygon, compound of both, optionally thin limbs and holes) textured with a crop of
a real image (or a procedural texture) and put at its own depth level; the frame is
composited far to near, so the visible part of every object, the occlusions and the
depth map agree exactly. For a propagation pair every object moves (affine + mild
elastic), the camera shifts a little, the depth order may change and the lighting
drifts; the previous frame with a degraded copy of the target's mask is the reference.

Microscopy scenes are in :mod:`napari_ois.train.synthetic_cells` (re-exported here).
"""

from __future__ import annotations

import numpy as np
from skimage.draw import polygon

from .augment import apply_points, blur, degrade_mask, elastic_flow, photometric, similarity, smooth_field, translate, warp
from .samples import TrainingSample
from .synthetic_cells import microscopy_scene  # noqa: F401 - public re-export

_TEXTURE_SIDE = 96  # procedural textures are drawn small and magnified by the warp


def shape_mask(rng: np.random.Generator, side: int) -> np.ndarray:
    """(side, side) bool random object shape: blob, polygon or a union, with extras.

    Thin limbs (p=0.4) teach the model structures a few pixels wide; holes (p=0.25)
    teach it that the background can show through an object.
    """
    yy, xx = (np.mgrid[0:side, 0:side].astype(np.float32) + 0.5) / side * 2 - 1
    mask = np.zeros((side, side), bool)
    parts = 1 if rng.random() < 0.6 else int(rng.integers(2, 4))
    for _ in range(parts):
        shrink = 1.0 if parts == 1 else rng.uniform(0.45, 0.7)
        cy, cx = (0.0, 0.0) if parts == 1 else rng.uniform(-0.3, 0.3, 2)  # parts mostly touch
        angle, elong = rng.uniform(0, 2 * np.pi), rng.uniform(0.45, 1.0)
        cos, sin = np.cos(angle), np.sin(angle)
        if rng.random() < 0.5:  # smooth blob: a radius with a few low harmonics
            y, x = (yy - cy) / shrink, (xx - cx) / shrink
            y, x = y * cos - x * sin, (y * sin + x * cos) / elong
            radius = np.hypot(y, x)
            # cos(k theta + phi) from powers of e^{i theta}: no arctan2, one product a term.
            z = (x + 1j * y) / np.maximum(radius, 1e-6)
            zk, bound = z, np.full_like(radius, 0.75)
            for k in range(2, 7):
                zk = zk * z
                bound += 0.75 * rng.uniform(0, 0.3) / k * (zk * np.exp(1j * rng.uniform(0, 2 * np.pi))).real
            mask |= radius < bound
        else:  # star-shaped polygon: straight edges and corners, filled by scanlines
            n = int(rng.integers(3, 11))
            # Corners spread around the centre: gaps > pi would leave a thin sliver.
            corners = (np.arange(n) + rng.uniform(-0.35, 0.35, n)) * 2 * np.pi / n + rng.uniform(0, 2 * np.pi)
            radii = rng.uniform(0.45, 0.95, n)
            yr, xr = radii * np.sin(corners), radii * np.cos(corners) * elong
            y, x = cos * yr + sin * xr, -sin * yr + cos * xr  # undo the rotation
            rows, cols = polygon((y * shrink + cy + 1) * side / 2 - 0.5, (x * shrink + cx + 1) * side / 2 - 0.5, mask.shape)
            mask[rows, cols] = True
    if rng.random() < 0.4:
        mask |= _limbs(rng, yy, xx, side)
    if rng.random() < 0.25 and mask.sum() > 400:
        for _ in range(int(rng.integers(1, 3))):
            cy, cx = rng.uniform(-0.4, 0.4, 2)
            ry, rx = rng.uniform(0.08, 0.25, 2)
            mask &= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 > 1
    return mask


def _limbs(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, side: int) -> np.ndarray:
    """1-3 straight bands 1.5-5 px wide from near the centre outwards (legs, poles, tails)."""
    out = np.zeros(yy.shape, bool)
    for _ in range(int(rng.integers(1, 4))):
        a = rng.uniform(-0.2, 0.2, 2)
        angle = rng.uniform(0, 2 * np.pi)
        b = np.array([np.sin(angle), np.cos(angle)]) * rng.uniform(0.7, 0.98)
        d = b - a
        t = np.clip(((yy - a[0]) * d[0] + (xx - a[1]) * d[1]) / (d @ d), 0, 1)
        dist = np.hypot(yy - a[0] - t * d[0], xx - a[1] - t * d[1]) * side / 2
        out |= dist < rng.uniform(0.75, 2.5)
    return out


def procedural_texture(rng: np.random.Generator) -> np.ndarray:
    """(96, 96, 3) float32 texture: two colours mixed by smooth noise, maybe stripes."""
    shape = (_TEXTURE_SIDE, _TEXTURE_SIDE)
    c0, c1 = rng.random((2, 3)).astype(np.float32)
    mix = 1 / (1 + np.exp(-2 * smooth_field(rng, shape, int(rng.integers(2, 12)))))
    if rng.random() < 0.3:
        yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 24)
        mix = 0.5 * mix + 0.25 * (1 + np.sin((yy * np.sin(angle) + xx * np.cos(angle)) * 2 * np.pi / period))
    tex = c0 * mix[..., None] + c1 * (1 - mix[..., None])
    tex += rng.uniform(0, 0.06) * rng.standard_normal(tex.shape, dtype=np.float32)
    return np.clip(tex, 0, 1).astype(np.float32)


def _pick_texture(rng, textures, real_prob: float) -> np.ndarray:
    """One of the real ``textures`` with probability ``real_prob`` (when given), else a procedural one."""
    if textures and rng.random() < real_prob:
        return textures[int(rng.integers(len(textures)))]
    return procedural_texture(rng)


def _texture_map(rng, textures, side: float) -> tuple[np.ndarray, np.ndarray]:
    """A texture source and a sprite->source matrix taking a random window of it."""
    src = _pick_texture(rng, textures, 0.75)
    h, w = src.shape[:2]
    win = rng.uniform(0.25, 1.0) * min(h, w)
    y0, x0 = rng.uniform(0, h - win), rng.uniform(0, w - win)
    flip = rng.random() < 0.5
    return src, translate(y0, x0) @ similarity(win / side, 0.0, (0, 0)) @ similarity(1.0, 0.0, (side / 2, side / 2), flip)


class _Object:
    """One layer: shape sprite, texture, depth level and a pose per frame."""

    def __init__(self, rng, size, textures):
        self.side = int(size * rng.uniform(0.12, 0.55))
        self.alpha = shape_mask(rng, self.side).astype(np.float32)
        self.texture, self.tex_map = _texture_map(rng, textures, self.side)
        self.gain = rng.uniform(0.75, 1.25, 3).astype(np.float32)
        # Depth slope within the object: <= +-0.027 over its extent, half the level spacing.
        self.tilt = rng.uniform(-0.015, 0.015, 2) / max(self.side, 1)
        self.centre = rng.uniform(0.05, 0.95, 2) * size
        self.angle, self.zoom = rng.uniform(0, 2 * np.pi), rng.uniform(0.8, 1.25)
        self.flip, self.depth, self.flow_amp = rng.random() < 0.5, 0.0, 0.0

    def moved(self, rng, size):
        """This object one frame later: shifted, turned, rescaled, slightly deformed."""
        nxt = object.__new__(_Object)
        nxt.__dict__.update(self.__dict__)
        nxt.centre = self.centre + np.clip(rng.normal(0, 0.035 * size, 2), -0.08 * size, 0.08 * size)
        nxt.angle = self.angle + np.deg2rad(rng.uniform(-10, 10))
        nxt.zoom = self.zoom * rng.uniform(0.9, 1.1)
        nxt.flow_amp = rng.uniform(0, 0.02) * self.side
        nxt.gain = self.gain * rng.uniform(0.95, 1.05, 3).astype(np.float32)
        return nxt

    def pose(self) -> np.ndarray:
        """Output->sprite 3x3 matrix."""
        half = self.side / 2
        return translate(half, half) @ similarity(1 / self.zoom, self.angle, (0, 0), self.flip) @ translate(*-self.centre)


def _render(objects, background, bg_map, size, rng):
    """Composite far to near.

    Returns image (H, W, 3), label (H, W) int, depth (H, W) and coverage (n, H, W) bool
    (each object's full silhouette, occluded parts included).
    """
    image = warp(background, bg_map, (size, size))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    depth = (0.25 * (yy / size)).astype(np.float32)  # ground plane: lower rows are closer
    label = np.zeros((size, size), np.int32)
    coverage = np.zeros((len(objects), size, size), bool)
    for idx in np.argsort([o.depth for o in objects]):
        obj = objects[idx]
        pose = obj.pose()
        corners = apply_points(np.linalg.inv(pose), np.array([[0, 0], [0, obj.side], [obj.side, 0], [obj.side, obj.side]]))
        y0, x0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
        y1, x1 = np.minimum(np.ceil(corners.max(0)).astype(int), size)
        if y1 <= y0 or x1 <= x0:
            continue
        sub = pose @ translate(y0, x0)
        shape = (y1 - y0, x1 - x0)
        flow = elastic_flow(rng, shape, obj.flow_amp, 3) if obj.flow_amp > 0 else None
        alpha = warp(obj.alpha, sub, shape, flow)
        rgb = warp(obj.texture, obj.tex_map @ sub, shape, flow) * obj.gain
        z = obj.depth + obj.tilt[0] * (yy[y0:y1, x0:x1] - obj.centre[0]) + obj.tilt[1] * (xx[y0:y1, x0:x1] - obj.centre[1])
        a = alpha[..., None]
        image[y0:y1, x0:x1] = a * rgb + (1 - a) * image[y0:y1, x0:x1]
        inside = alpha >= 0.5
        depth[y0:y1, x0:x1][inside] = z[inside]
        label[y0:y1, x0:x1][inside] = idx + 1
        coverage[idx, y0:y1, x0:x1] = inside
    return np.clip(image, 0, 1), label, depth, coverage


def render_scene(rng: np.random.Generator, size: int = 256, textures=None, frames: int = 1):
    """Render a scene over ``frames`` frames (training pairs use 2; validation videos more).

    Returns
    -------
    list of (image, label, depth, coverage)
        Per frame: (size, size, 3) float32 image, (size, size) int32 visible object ids
        (0 = background, i = object i-1, the same ids in every frame), (size, size)
        float32 depth (larger = closer; background 0..0.25, objects 0.35..1) and
        (n, size, size) bool full silhouettes of the n objects (occluded parts too).
    """
    n = int(rng.integers(2, 8))
    objects = [_Object(rng, size, textures) for _ in range(n)]
    # Depth levels at least 0.65/7 = 0.093 apart and at most +-0.027 of tilt within an
    # object, so depth ranges never interleave and occlusion always follows depth.
    levels = np.sort(rng.choice(8, n, replace=False)) / 7 * 0.65 + 0.35
    for obj, level in zip(objects, rng.permutation(levels)):
        obj.depth = level
    background = _pick_texture(rng, textures, 0.8)
    bh, bw = background.shape[:2]
    win = rng.uniform(0.4, 0.9) * min(bh, bw)
    bg_map = translate(rng.uniform(0, bh - win), rng.uniform(0, bw - win)) @ similarity(win / size, 0, (0, 0))
    if rng.random() < 0.3:  # a look-alike distractor makes the model use the clicks
        a, b = rng.choice(n, 2, replace=False)
        objects[b].texture, objects[b].tex_map = objects[a].texture, objects[a].tex_map
    out = [_render(objects, background, bg_map, size, rng)]
    for _ in range(frames - 1):  # each frame moves on from the one before
        objects = [o.moved(rng, size) for o in objects]
        if rng.random() < 0.3:  # occlusion order changes between the frames
            a, b = rng.choice(n, 2, replace=False)
            objects[a].depth, objects[b].depth = objects[b].depth, objects[a].depth
        camera = similarity(rng.uniform(0.97, 1.03), np.deg2rad(rng.uniform(-2, 2)), (size / 2, size / 2))
        camera = translate(*rng.uniform(-0.03, 0.03, 2) * size) @ camera
        bg_map = bg_map @ camera
        image, *rest = _render(objects, background, bg_map, size, rng)
        light = rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
        out.append((np.clip(image * light + rng.uniform(-0.03, 0.03), 0, 1), *rest))
    return out


def natural_scene(
    rng: np.random.Generator,
    size: int = 256,
    textures=None,
    pair: bool = False,
    min_area: float | None = None,
    drop_ref_prob: float = 0.2,
    max_tries: int = 20,
) -> TrainingSample:
    """A synthetic natural-like sample (kind ``synthetic-still`` or ``synthetic-pair``).

    Parameters
    ----------
    rng : numpy.random.Generator
    size : int
        Side of the square output.
    textures : list of np.ndarray, optional
        (h, w, 3) float32 [0, 1] images to texture objects and background with (see
        :func:`napari_ois.train.real_data.texture_sources`); procedural when None.
    pair : bool
        Make a (reference, current) propagation pair.
    min_area : float, optional
        Minimum visible target area in px (default 0.2 % of the image); the target
        also keeps half that in the reference frame.
    drop_ref_prob : float
        Probability that a pair's reference is dropped (then ``kind`` is a still).
    """
    min_area = 0.002 * size * size if min_area is None else min_area
    for _ in range(max_tries):
        frames = render_scene(rng, size, textures, 2 if pair else 1)
        image, label, depth, _ = frames[-1]
        ids, counts = np.unique(label[label > 0], return_counts=True)
        ok = ids[counts >= min_area]
        if pair:
            ok = [i for i in ok if np.count_nonzero(frames[0][1] == i) >= min_area / 2]
        if len(ok):
            break
    else:
        raise RuntimeError("could not draw a synthetic scene with a visible target")
    target = int(rng.choice(ok))
    jitter_seed = int(rng.integers(2**62))  # the same colour jitter on both frames
    sigma = rng.uniform(0, 0.8) if rng.random() < 0.5 else 0.0
    noise = rng.uniform(0, 0.02)

    def finish(img):
        img = photometric(blur(img, sigma), np.random.default_rng(jitter_seed))
        if noise < 0.005:  # not worth 200k normal draws
            return img
        return np.clip(img + noise * rng.standard_normal(img.shape, dtype=np.float32), 0, 1)

    sample = TrainingSample(
        image=finish(image), mask=label == target, depth=depth,
        others=(label > 0) & (label != target), kind="synthetic-still",
    )
    if pair and rng.random() >= drop_ref_prob:
        sample.ref_image = finish(frames[0][0])
        sample.ref_mask = degrade_mask(frames[0][1] == target, rng)
        sample.kind = "synthetic-pair"
    return sample

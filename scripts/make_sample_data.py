"""Generate the procedural sample data shipped with napari-ois.

Everything is drawn from scratch with a fixed seed (no third-party images), so the
files are license-clean (CC0) and reproducible. The outputs are:

``video.mp4``, ``video_labels.tif``, ``video_prompts.csv``
    A 48-frame 320x240 colour video (H.264, 12 fps) of four textured objects moving
    over a textured, slowly panning background, with one object passing in front of
    another, and the ground-truth instance labels of the visible parts.
``cells.tif``, ``cells_labels.tif``, ``cells_prompts.csv``
    A 20-frame 256x256 uint16 fluorescence-like time-lapse of 12 nuclei that drift,
    rotate and deform, under blur, uneven illumination, bleaching and shot noise.
``nuclei3d.tif``, ``nuclei3d_labels.tif``, ``nuclei3d_prompts.csv``
    A 24x128x128 uint16 z-stack of 8 ellipsoidal nuclei (z step twice the pixel size).

Run from anywhere::

    python scripts/make_sample_data.py [--out DIR]

It needs numpy, scipy, tifffile and imageio-ffmpeg (with its bundled ffmpeg).
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage as ndi

SEED = 20240917
VIDEO_SHAPE = (48, 240, 320)  # (T, Y, X)
VIDEO_FPS = 12
# imageio-ffmpeg maps quality q to x264 CRF int((1 - q / 10) * 51): 7 -> CRF 15, which keeps the
# object edges crisp while the whole clip stays a few hundred kB.
VIDEO_QUALITY = 7
CELLS_SHAPE = (20, 256, 256)
N_CELLS = 12
NUCLEI3D_SHAPE = (24, 128, 128)
NUCLEI3D_Z_STEP = 2.0  # z step in units of the xy pixel size (typical confocal anisotropy)
N_NUCLEI3D = 8

HEADER = ("object_id", "frame", "y", "x", "positive")


# --------------------------------------------------------------------------- helpers


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise with zero mean and unit standard deviation.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int
        Output shape.
    sigma : float
        Correlation length in pixels. ``mode="wrap"`` makes the field tileable, so it can
        be sampled at any (wrapped) coordinate without seams.

    Returns
    -------
    numpy.ndarray of float64, ``shape``
    """
    field_ = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field_ - field_.mean()) / (field_.std() + 1e-12)


def sample_tile(tile: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    """Sample a tileable texture at (possibly fractional, possibly negative) coordinates.

    Textures are sampled in each object's own coordinate frame so that they move,
    rotate and scale with the object, as the surface of a real object would.
    """
    return ndi.map_coordinates(tile, coords, order=1, mode="grid-wrap")


def to_local(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, angle: float, scale: float):
    """Image coordinates -> object coordinates (un-rotated, un-scaled, origin at the centre)."""
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(angle), np.sin(angle)
    u = (c * dx + s * dy) / scale
    v = (-s * dx + c * dy) / scale
    return u, v


def alpha_from_sd(sd: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in pixels (negative inside).

    A one-pixel linear ramp approximates the area of the pixel covered by the shape;
    ``alpha > 0.5`` is exactly ``sd < 0``, the rule used for the ground-truth labels, so
    labels and pixels agree on which side of the edge each pixel lies.
    """
    return np.clip(0.5 - sd, 0.0, 1.0)


def interior_point(mask: np.ndarray) -> tuple[int, int]:
    """The pixel (y, x) of a 2-D mask farthest from its boundary (first one on ties)."""
    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(y), int(x)


def background_point(mask: np.ndarray, labels: np.ndarray, near: float, far: float) -> tuple[int, int]:
    """A background pixel (label 0) between ``near`` and ``far`` pixels from ``mask``.

    Used for negative clicks: a point just outside the object, where a segmenter that
    leaks into the background would have to be corrected. Among the candidates, the one
    closest to the mask's interior point is taken, so the choice is deterministic.
    """
    dist_out = ndi.distance_transform_edt(~mask)
    ring = (dist_out >= near) & (dist_out <= far) & (labels == 0)
    ys, xs = np.nonzero(ring)
    if ys.size == 0:
        raise RuntimeError("no background pixel near the object for a negative click")
    cy, cx = interior_point(mask)
    i = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    return int(ys[i]), int(xs[i])


def write_prompts_csv(path: Path, rows: list[tuple[int, int, int, int, int]]) -> None:
    """Write clicks in the prompts CSV contract ``object_id,frame,y,x,positive``."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)


def write_tiff(path: Path, data: np.ndarray, axes: str) -> None:
    """Write a compressed TIFF (deflate + horizontal predictor, readable by tifffile/Fiji)."""
    import tifffile

    # The predictor makes smooth images compress far better; for labels it is harmless.
    tifffile.imwrite(
        path, data, compression="zlib", predictor=True, metadata={"axes": axes}, photometric="minisblack"
    )


# --------------------------------------------------------------------------- video


def sd_ellipse(u: np.ndarray, v: np.ndarray, a: float, b: float) -> np.ndarray:
    """First-order signed distance to the ellipse (u/a)^2 + (v/b)^2 = 1 (exact on the edge)."""
    f = (u / a) ** 2 + (v / b) ** 2 - 1.0
    grad = 2.0 * np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2) + 1e-9
    return f / grad


def sd_star_blob(u: np.ndarray, v: np.ndarray, radius: float, amps, phases) -> np.ndarray:
    """Signed distance to a smooth radial blob r = R (1 + sum_k a_k cos(k theta + phi_k)), k = 2, 3, ..."""
    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    rad = np.ones_like(r)
    drad = np.zeros_like(r)
    for k, (a, p) in enumerate(zip(amps, phases), start=2):
        rad += a * np.cos(k * theta + p)
        drad -= a * k * np.sin(k * theta + p)
    rad *= radius
    drad *= radius
    # Divide by the gradient norm of r - R(theta) so the value is a distance near the edge.
    return (r - rad) / np.sqrt(1.0 + (drad / np.maximum(r, 1e-6)) ** 2)


def sd_polygon(u: np.ndarray, v: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Exact signed distance to a simple polygon with vertices ``verts`` (N, 2) as (u, v)."""
    d2 = np.full(u.shape, np.inf)
    inside = np.zeros(u.shape, dtype=bool)
    n = len(verts)
    for i in range(n):
        (u0, v0), (u1, v1) = verts[i], verts[(i + 1) % n]
        eu, ev = u1 - u0, v1 - v0
        wu, wv = u - u0, v - v0
        t = np.clip((wu * eu + wv * ev) / (eu * eu + ev * ev), 0.0, 1.0)
        d2 = np.minimum(d2, (wu - t * eu) ** 2 + (wv - t * ev) ** 2)
        # Even-odd rule: count crossings of a ray towards +u.
        crosses = (v0 > v) != (v1 > v)
        u_cross = u0 + (v - v0) * eu / np.where(ev == 0, 1e-12, ev)
        inside ^= crosses & (u < u_cross)
    d = np.sqrt(d2)
    return np.where(inside, -d, d)


def sd_rounded_box(u: np.ndarray, v: np.ndarray, half_u: float, half_v: float, radius: float) -> np.ndarray:
    """Exact signed distance to a box with rounded corners (half sizes include the rounding)."""
    qu = np.abs(u) - (half_u - radius)
    qv = np.abs(v) - (half_v - radius)
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    return outside + np.minimum(np.maximum(qu, qv), 0) - radius


@dataclass
class VideoObject:
    """One moving object of the sample video.

    ``pose(t)`` gives (cy, cx, angle, scale) at frame ``t``; ``shape(u, v, t)`` the signed
    distance in object units; ``colour(u, v, rng)`` the RGB texture (H, W, 3) in 0..255.
    """

    label: int
    name: str
    pose: Callable[[float], tuple[float, float, float, float]]
    shape: Callable[[np.ndarray, np.ndarray, float], np.ndarray]
    colour: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _lerp(a: float, b: float, s: float) -> float:
    return a + (b - a) * s


def _ease(s: float) -> float:
    """Smoothstep: objects accelerate and decelerate like things moved by hand."""
    return s * s * (3 - 2 * s)


def make_video_objects(rng: np.random.Generator, n_frames: int) -> list[VideoObject]:
    """The four objects of the sample video, listed from back to front (depth order)."""
    last = n_frames - 1
    spots = smooth_noise(rng, (128, 128), 2.5)
    grain = smooth_noise(rng, (128, 128), 1.0)
    mottle = smooth_noise(rng, (128, 128), 5.0)

    # 4 (back): purple rounded box with yellow polka dots, drifting slowly at the right.
    def pose4(t):
        s = t / last
        return (_lerp(175, 160, s), _lerp(268, 250, s) + 4 * np.sin(0.15 * t), np.deg2rad(_lerp(-10, 12, s)), 1.0)

    def shape4(u, v, t):
        return sd_rounded_box(u, v, 30, 19, 7)

    def colour4(u, v):
        cell = 11.0
        du = (u + 200) % cell - cell / 2
        dv = (v + 200) % cell - cell / 2
        dot = np.clip(3.2 - np.hypot(du, dv), 0, 1)[..., None]
        base = np.array([120, 60, 150]) * (1 + 0.08 * sample_tile(mottle, [v + 64, u + 64]))[..., None]
        return base * (1 - dot) + np.array([235, 205, 70]) * dot

    # 2: cream ellipse with navy stripes, rotating and growing a little; the polygon passes
    # in front of it in the middle of the clip (the occlusion).
    def pose2(t):
        s = t / last
        return (
            _lerp(150, 120, _ease(s)) + 6 * np.sin(0.2 * t),
            _lerp(105, 175, _ease(s)),
            np.deg2rad(_lerp(25, 70, s)),
            _lerp(1.0, 1.15, s),
        )

    def shape2(u, v, t):
        return sd_ellipse(u, v, 44, 25)

    def colour2(u, v):
        stripe = 0.5 + 0.5 * np.tanh(3.0 * np.sin(2 * np.pi * u / 10.0))
        stripe = stripe[..., None]
        tex = (1 + 0.06 * sample_tile(grain, [v + 64, u + 64]))[..., None]
        return (np.array([235, 225, 198]) * stripe + np.array([35, 55, 140]) * (1 - stripe)) * tex

    # 1: orange blob with dark spots, wobbling (non-rigid) in the upper left.
    amps0 = np.array([0.12, 0.08, 0.05])
    ph0 = rng.uniform(0, 2 * np.pi, 3)

    def pose1(t):
        s = t / last
        return (_lerp(70, 62, s) + 8 * np.sin(0.13 * t), _lerp(62, 118, _ease(s)), 0.25 * np.sin(0.1 * t), 1.0)

    def shape1(u, v, t):
        amps = amps0 * (1 + 0.35 * np.sin(0.21 * t + np.arange(3)))
        return sd_star_blob(u, v, 31, amps, ph0 + 0.04 * t)

    def colour1(u, v):
        sp = np.clip((sample_tile(spots, [v + 64, u + 64]) - 0.9) * 2.0, 0, 1)[..., None]
        shade = (1 + 0.07 * sample_tile(grain, [u + 64, v + 64]))[..., None]
        return (np.array([228, 110, 38]) * (1 - sp) + np.array([110, 40, 18]) * sp) * shade

    # 3 (front): green non-convex "arrow" polygon crossing the frame from top right to
    # bottom left while spinning; it occludes the striped ellipse around frames 25-39.
    verts3 = np.array([[-26, -10], [4, -12], [6, -24], [30, 0], [6, 24], [4, 12], [-26, 10]], dtype=float)

    def pose3(t):
        s = t / last
        return (_lerp(30, 196, s), _lerp(268, 120, s), np.deg2rad(_lerp(150, 250, s)), _lerp(0.95, 1.1, s))

    def shape3(u, v, t):
        return sd_polygon(u, v, verts3)

    def colour3(u, v):
        g = sample_tile(grain, [v + 64, u + 64])
        m = sample_tile(mottle, [u + 30, v + 90])
        return np.array([62, 168, 74])[None, None] * (1 + 0.12 * g + 0.08 * m)[..., None]

    return [
        VideoObject(4, "dotted box", pose4, shape4, colour4),
        VideoObject(2, "striped ellipse", pose2, shape2, colour2),
        VideoObject(1, "spotted blob", pose1, shape1, colour1),
        VideoObject(3, "green arrow", pose3, shape3, colour3),
    ]


def make_video_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A textured table-top: colour gradient, low-frequency mottling, grain, faint stains.

    Returns
    -------
    numpy.ndarray of float64, (height, width, 3), values in ~0..255.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    s = (yy / height + xx / width) / 2
    top, bottom = np.array([168, 156, 132]), np.array([92, 108, 122])
    bg = top[None, None] * (1 - s[..., None]) + bottom[None, None] * s[..., None]
    low = smooth_noise(rng, (height, width), 22.0)
    tint = smooth_noise(rng, (height, width), 35.0)
    bg *= (1 + 0.13 * low)[..., None]
    bg += (8 * tint)[..., None] * np.array([1.0, 0.2, -0.8])
    # A few soft, low-contrast stains, some with object-like hues: distractors that a
    # colour-only segmenter would confuse with the objects.
    for colour, strength in (([200, 120, 70], 0.22), ([70, 90, 150], 0.2), ([90, 150, 90], 0.15)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(20, 40)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2)) * strength
        bg = bg * (1 - blob[..., None]) + np.array(colour)[None, None] * blob[..., None]
    # Fine grain and a directional "wood" streak pattern give the background texture edges.
    bg += (7 * smooth_noise(rng, (height, width), 0.8))[..., None]
    streak = ndi.gaussian_filter(rng.standard_normal((height, width)), (6.0, 0.7), mode="wrap")
    bg += (6 * streak / streak.std())[..., None]
    return bg


def render_video(rng: np.random.Generator, shape=VIDEO_SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """Render the sample video and its ground-truth labels.

    Returns
    -------
    frames : numpy.ndarray of uint8, (T, Y, X, 3)
    labels : numpy.ndarray of uint16, (T, Y, X)
        Visible part of each object; where objects overlap the front one wins.
    """
    n_frames, height, width = shape
    objects = make_video_objects(rng, n_frames)
    pan = 40  # the camera pans right by `pan` pixels over the clip
    background = make_video_background(rng, height, width + pan + 4)
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    light = np.array([-0.6, -0.8])  # light from the top left (dy, dx)

    frames = np.empty(shape + (3,), dtype=np.uint8)
    labels = np.zeros(shape, dtype=np.uint16)
    for t in range(n_frames):
        # Sub-pixel camera pan with a cubic spline keeps sharpness constant from frame to frame.
        off = pan * _ease(t / (n_frames - 1))
        canvas = np.stack(
            [ndi.map_coordinates(background[..., c], [yy, xx + off], order=3, mode="nearest") for c in range(3)],
            axis=-1,
        )
        for obj in objects:  # back to front
            cy, cx, angle, scale = obj.pose(t)
            u, v = to_local(yy, xx, cy, cx, angle, scale)
            sd = obj.shape(u, v, t) * scale
            alpha = alpha_from_sd(sd)
            # Soft drop shadow on everything behind the object.
            shadow = ndi.gaussian_filter(ndi.shift(alpha, (5, 4), order=1), 3.0)
            canvas *= (1 - 0.38 * shadow)[..., None]
            # Cheap relief shading: a blurred coverage acts as a height map lit from the top left,
            # so the objects read as solid things rather than flat cut-outs.
            height_map = ndi.gaussian_filter(alpha, 3.0)
            gy, gx = np.gradient(height_map)
            shade = 0.86 + 0.2 * height_map - 2.2 * (gy * light[0] + gx * light[1])
            colour = obj.colour(u, v) * shade[..., None]
            canvas = canvas * (1 - alpha[..., None]) + colour * alpha[..., None]
            labels[t][sd < 0] = obj.label
        # Camera: slight global flicker plus sensor noise.
        canvas *= 1 + 0.015 * np.sin(0.9 * t)
        canvas += rng.normal(0, 1.6, canvas.shape)
        frames[t] = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return frames, labels


def write_video(path: Path, frames: np.ndarray, fps: int = VIDEO_FPS, quality: float = VIDEO_QUALITY) -> None:
    """Encode (T, Y, X, 3) uint8 frames as H.264/yuv420p MP4 with imageio-ffmpeg."""
    import imageio_ffmpeg

    n, h, w, _ = frames.shape
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=quality,
        macro_block_size=16,
        # One encoder thread and bit-exact muxing make the bytes reproducible for a given
        # ffmpeg build; no metadata (creation time, encoder string) is written.
        output_params=["-threads", "1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"],
        ffmpeg_log_level="error",
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def _along_major_axis(mask: np.ndarray, parts: int) -> list[np.ndarray]:
    """Split a (Y, X) bool mask into ``parts`` pieces along its longest direction."""
    ys, xs = np.nonzero(mask)
    coords = np.stack([ys, xs], 1).astype(float)
    centred = coords - coords.mean(0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    proj = centred @ axis
    edges = np.quantile(proj, np.linspace(0, 1, parts + 1))
    pieces = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        piece = np.zeros_like(mask)
        keep = (proj >= lo) & (proj <= hi)
        piece[ys[keep], xs[keep]] = True
        pieces.append(piece)
    return pieces


def video_prompts(labels: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Demo clicks on frame 0, as a user would make them.

    One positive click deep inside the blob (1) and the arrow (3); the striped ellipse
    (2) has stripes of different colours, so the user gives one positive click on each
    third of it along its long axis.
    """
    lab0 = labels[0]
    rows = []
    for obj in (1, 3):
        y, x = interior_point(lab0 == obj)
        rows.append((obj, 0, y, x, 1))
    for piece in _along_major_axis(lab0 == 2, 3):
        y, x = interior_point(piece)
        rows.append((2, 0, y, x, 1))
    return sorted(rows)


# --------------------------------------------------------------------------- cells


@dataclass
class Nucleus:
    """A 2-D nucleus: centre trajectory, size, orientation, contour wobble, brightness."""

    c0: np.ndarray  # (y, x) at t = 0
    drift: np.ndarray  # (vy, vx) px/frame
    jitter_amp: np.ndarray  # (ay, ax) px
    jitter_freq: np.ndarray
    jitter_phase: np.ndarray
    a: float
    b: float
    angle0: float
    spin: float  # rad/frame
    growth: float  # relative size change per frame
    wob_amp: np.ndarray  # contour harmonics k = 2, 3, 4
    wob_phase: np.ndarray
    brightness: float
    nucleoli: np.ndarray  # (n, 2) local (u, v) positions

    def centre(self, t: float) -> np.ndarray:
        return self.c0 + self.drift * t + self.jitter_amp * np.sin(self.jitter_freq * t + self.jitter_phase)

    def radius_max(self, t: float) -> float:
        return self.a * (1 + self.growth * t) * (1 + self.wob_amp.sum())

    def signed_distance(self, yy: np.ndarray, xx: np.ndarray, t: float):
        """Approximate signed distance (px) and local coordinates at frame ``t``."""
        cy, cx = self.centre(t)
        scale = 1 + self.growth * t
        u, v = to_local(yy, xx, cy, cx, self.angle0 + self.spin * t, scale)
        rho = np.sqrt((u / self.a) ** 2 + (v / self.b) ** 2)
        theta = np.arctan2(v / self.b, u / self.a)
        wob = np.ones_like(rho)
        for k, (amp, ph) in enumerate(zip(self.wob_amp, self.wob_phase), start=2):
            # The phases drift so the outline deforms slowly, like a living nucleus.
            wob += amp * np.cos(k * theta + ph + 0.06 * k * t)
        sd = (rho - wob) * np.sqrt(self.a * self.b) * scale
        return sd, u, v


def make_nuclei(rng: np.random.Generator, shape=CELLS_SHAPE, n: int = N_CELLS) -> list[Nucleus]:
    """Place ``n`` nuclei whose trajectories never overlap and stay inside the frame."""
    n_frames, height, width = shape
    ts = np.arange(n_frames)
    nuclei: list[Nucleus] = []
    tries = 0
    while len(nuclei) < n:
        tries += 1
        if tries > 20000:
            raise RuntimeError("could not place the nuclei; lower N_CELLS")
        a = rng.uniform(13, 20)
        nuc = Nucleus(
            c0=rng.uniform([20, 20], [height - 20, width - 20]),
            drift=rng.normal(0, 0.3, 2),
            jitter_amp=rng.uniform(0.5, 2.5, 2),
            jitter_freq=rng.uniform(0.15, 0.4, 2),
            jitter_phase=rng.uniform(0, 2 * np.pi, 2),
            a=a,
            b=a * rng.uniform(0.62, 0.92),
            angle0=rng.uniform(0, np.pi),
            spin=np.deg2rad(rng.uniform(-1.2, 1.2)),
            growth=rng.uniform(0.0, 0.005),
            wob_amp=rng.uniform(0.01, 0.06, 3),
            wob_phase=rng.uniform(0, 2 * np.pi, 3),
            brightness=rng.uniform(0.55, 1.0),
            nucleoli=rng.uniform(-0.45, 0.45, (int(rng.integers(1, 4)), 2)),
        )
        ok = True
        for t in ts:
            c, r = nuc.centre(t), nuc.radius_max(t)
            if not (r + 3 < c[0] < height - r - 3 and r + 3 < c[1] < width - r - 3):
                ok = False
                break
            # Some nuclei come close (a 1-3 px gap is a realistic segmentation challenge)
            # but never overlap, so every label is a whole nucleus.
            if any(np.hypot(*(c - o.centre(t))) < r + o.radius_max(t) + 1.5 for o in nuclei):
                ok = False
                break
        if ok:
            nuclei.append(nuc)
    return nuclei


def render_cells(rng: np.random.Generator, shape=CELLS_SHAPE, n: int = N_CELLS) -> tuple[np.ndarray, np.ndarray]:
    """Render the fluorescence-like time-lapse and its labels.

    The image is formed like a widefield camera frame: emitted light (nuclei with
    chromatin texture, a brighter nuclear rim and nucleoli, plus unlabelled debris and
    out-of-focus haze) is blurred by the PSF, scaled by an uneven illumination field and
    by photobleaching, turned into photons with Poisson noise, then into camera counts
    with an offset, a gain and Gaussian read noise.

    Returns
    -------
    image : numpy.ndarray of uint16, (T, Y, X)
    labels : numpy.ndarray of uint16, (T, Y, X); ids 1..n, sorted by the nucleus'
        position at t = 0 in raster order so they read naturally.
    """
    n_frames, height, width = shape
    nuclei = make_nuclei(rng, shape, n)
    nuclei.sort(key=lambda nu: (round(nu.c0[0] / 32), nu.c0[1]))
    chromatin = [smooth_noise(rng, (96, 96), 1.3) for _ in range(2)]
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    # Off-centre illumination: the corners get ~60 % of the light of the brightest spot.
    r2 = (yy - 0.35 * height) ** 2 + (xx - 0.6 * width) ** 2
    illumination = 0.6 + 0.4 * np.exp(-r2 / (2 * (0.6 * width) ** 2))
    debris = [
        (rng.uniform(0, height), rng.uniform(0, width), rng.uniform(1.0, 2.2), rng.uniform(0.3, 0.9))
        for _ in range(10)
    ]
    haze_centre = (rng.uniform(0, height), rng.uniform(0, width))

    image = np.empty(shape, dtype=np.uint16)
    labels = np.zeros(shape, dtype=np.uint16)
    for t in range(n_frames):
        emitted = np.zeros((height, width))
        # The chromatin pattern evolves slowly: cross-fade between two textures.
        mix = 0.5 - 0.5 * np.cos(np.pi * t / (n_frames - 1))
        for i, nuc in enumerate(nuclei, start=1):
            sd, u, v = nuc.signed_distance(yy, xx, t)
            alpha = alpha_from_sd(sd)
            coords = [v + 48 + 7 * i, u + 48 + 11 * i]
            tex = (1 - mix) * sample_tile(chromatin[0], coords) + mix * sample_tile(chromatin[1], coords)
            rim = np.exp(-0.5 * ((sd + 1.5) / 1.4) ** 2)  # lamina: a bright band just inside the edge
            body = 1.0 + 0.22 * tex + 0.45 * rim
            for nu, nv in nuc.nucleoli:
                # Nucleoli are dimmer, denser spots (they exclude DNA stain).
                d2 = (u - nu * nuc.a) ** 2 + (v - nv * nuc.b) ** 2
                body -= 0.35 * np.exp(-d2 / (2 * 2.3**2))
            emitted += alpha * nuc.brightness * body
            labels[t][sd < 0] = i
        for dy, dx, r, amp in debris:  # small unlabelled bright particles, drifting a little
            emitted += amp * np.exp(-((yy - dy - 0.3 * t) ** 2 + (xx - dx + 0.2 * t) ** 2) / (2 * r**2))
        haze = 0.25 * np.exp(-((yy - haze_centre[0]) ** 2 + (xx - haze_centre[1]) ** 2) / (2 * 30.0**2))
        optical = ndi.gaussian_filter(emitted, 1.1) + ndi.gaussian_filter(emitted, 6.0) * 0.12 + haze
        bleach = np.exp(-0.012 * t)
        photons = rng.poisson(illumination * (1500.0 * optical * bleach + 18.0))
        counts = 100 + 1.6 * photons + rng.normal(0, 4.0, photons.shape)
        image[t] = np.clip(np.round(counts), 0, 65535).astype(np.uint16)
    return image, labels


def cells_prompts(labels: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Positive clicks on frame 0 for three nuclei (ids 1, 5, 9: spread over the frame)."""
    rows = []
    for obj in (1, 5, 9):
        y, x = interior_point(labels[0] == obj)
        rows.append((obj, 0, y, x, 1))
    return rows


# --------------------------------------------------------------------------- 3-D nuclei


def render_nuclei3d(
    rng: np.random.Generator, shape=NUCLEI3D_SHAPE, n: int = N_NUCLEI3D, z_step: float = NUCLEI3D_Z_STEP
) -> tuple[np.ndarray, np.ndarray]:
    """Render a confocal-like z-stack of ellipsoidal nuclei and its labels.

    Returns
    -------
    image : numpy.ndarray of uint16, (Z, Y, X)
    labels : numpy.ndarray of uint16, (Z, Y, X); ids 1..n.
    """
    depth, height, width = shape
    zz, yy, xx = np.mgrid[0:depth, 0:height, 0:width].astype(float)
    zz *= z_step  # physical units (xy pixels)
    tex = smooth_noise(rng, (48, 64, 64), 1.4)
    placed: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(20000):
        if len(placed) == n:
            break
        radii = np.array([rng.uniform(8, 11), rng.uniform(12, 17), rng.uniform(11, 16)])  # z, y, x
        lo = radii + [2, 4, 4]
        hi = np.array([depth * z_step, height, width]) - lo
        if np.any(hi <= lo):
            continue
        c = rng.uniform(lo, hi)
        if all(np.linalg.norm(c - o) > radii.max() + ro.max() + 2 for o, ro in placed):
            placed.append((c, radii))
    if len(placed) < n:
        raise RuntimeError("could not place the 3-D nuclei; lower N_NUCLEI3D")
    placed.sort(key=lambda cr: (round(cr[0][1] / 32), cr[0][2]))

    emitted = np.zeros(shape)
    labels = np.zeros(shape, dtype=np.uint16)
    for i, (c, radii) in enumerate(placed, start=1):
        # A random rotation about z keeps the ellipsoids from all lining up with the axes.
        ang = rng.uniform(0, np.pi)
        dy, dx = yy - c[1], xx - c[2]
        u = np.cos(ang) * dx + np.sin(ang) * dy
        v = -np.sin(ang) * dx + np.cos(ang) * dy
        w = zz - c[0]
        f = (w / radii[0]) ** 2 + (v / radii[1]) ** 2 + (u / radii[2]) ** 2 - 1
        grad = 2 * np.sqrt((w / radii[0] ** 2) ** 2 + (v / radii[1] ** 2) ** 2 + (u / radii[2] ** 2) ** 2) + 1e-9
        sd = f / grad  # in xy pixels; only the sign (the label) must be exact
        alpha = alpha_from_sd(sd)
        t = sample_tile(tex, [w / z_step + 24 + 5 * i, v + 32 + 3 * i, u + 32])
        emitted += alpha * rng.uniform(0.6, 1.0) * (1 + 0.25 * t + 0.35 * np.exp(-0.5 * ((sd + 1.2) / 1.2) ** 2))
        labels[sd < 0] = i
    # Axial blur is wider than lateral blur (elongated PSF); signal fades with depth.
    optical = ndi.gaussian_filter(emitted, (1.3, 1.0, 1.0))
    attenuation = np.exp(-np.arange(depth) / (2.5 * depth))[:, None, None]
    photons = rng.poisson(1200.0 * optical * attenuation + 12.0)
    counts = 100 + 1.8 * photons + rng.normal(0, 4.0, photons.shape)
    return np.clip(np.round(counts), 0, 65535).astype(np.uint16), labels


def nuclei3d_prompts(labels: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Positive clicks for nuclei 1 and 2 on the slice where each is largest (frame = z)."""
    rows = []
    for obj in (1, 2):
        z = int(np.argmax((labels == obj).sum(axis=(1, 2))))
        y, x = interior_point(labels[z] == obj)
        rows.append((obj, z, y, x, 1))
    return rows


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Write every sample file into ``--out`` (default: the repository's ``sample_data/``)."""
    import tifffile  # noqa: F401  (fail early with a clear ImportError)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "sample_data")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    # One independent stream per data set, so changing one generator leaves the others unchanged.
    rng_video, rng_cells, rng_3d = (np.random.default_rng(s) for s in np.random.SeedSequence(SEED).spawn(3))

    frames, vlabels = render_video(rng_video)
    write_video(out / "video.mp4", frames)
    write_tiff(out / "video_labels.tif", vlabels, "TYX")
    write_prompts_csv(out / "video_prompts.csv", video_prompts(vlabels))

    cells, clabels = render_cells(rng_cells)
    write_tiff(out / "cells.tif", cells, "TYX")
    write_tiff(out / "cells_labels.tif", clabels, "TYX")
    write_prompts_csv(out / "cells_prompts.csv", cells_prompts(clabels))

    nuc, nlabels = render_nuclei3d(rng_3d)
    write_tiff(out / "nuclei3d.tif", nuc, "ZYX")
    write_tiff(out / "nuclei3d_labels.tif", nlabels, "ZYX")
    write_prompts_csv(out / "nuclei3d_prompts.csv", nuclei3d_prompts(nlabels))

    total = 0
    for path in sorted(out.iterdir()):
        if path.is_file():
            size = path.stat().st_size
            total += size
            print(f"{path.name:24s} {size / 1024:8.1f} kB")
    print(f"{'total':24s} {total / 1024:8.1f} kB")
    # Visible fraction per video object, a quick check that the occlusion is partial.
    areas = np.stack([(vlabels == i).sum(axis=(1, 2)) for i in range(1, 5)])
    print("video object areas (min/max px):", [(int(a.min()), int(a.max())) for a in areas])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Procedural microscopy scenes: touching cells/nuclei, rims, noise, blur, 8/16-bit data.

Cells are parametric (centre, two axes, angle, a wobbly boundary, a few texture spots in
cell coordinates), so a second frame is the same cells re-drawn after they moved, with
consistent ids. Every pixel belongs to the cell whose normalised radius there is
smallest (if < 1), which splits touching cells along a plausible line.

Three looks: fluorescence (bright cells, dark background), phase contrast (grey cells
with a bright halo), membrane (cell interiors like the background, dark or bright
rims). Then uneven illumination, blur, Poisson + Gaussian noise, quantisation to 8 or
16 bit, and the app's own intensity normalisation (:class:`~napari_ois.core.frames.StackNormalizer`
over both frames: 8-bit keeps 0..255, 16-bit uses the 0.5/99.5 percentiles).
"""

from __future__ import annotations

import numpy as np

from ..core.frames import FrameStack
from .augment import blur, degrade_mask, smooth_field
from .samples import TrainingSample

_HALO = 1.35  # cells are drawn out to this normalised radius (halos, rims)


class _Cells:
    """Parameters of n cells; arrays indexed by cell."""

    def __init__(self, rng: np.random.Generator, size: int):
        radius = np.exp(rng.uniform(np.log(5), np.log(max(6.0, 0.12 * size))))
        fill = rng.uniform(0.15, 0.65)
        n = int(np.clip(fill * size * size / (np.pi * radius**2 * 0.8), 3, 150))
        self.centre = rng.uniform(-0.05, 1.05, (n, 2)) * size
        self.axes = radius * rng.uniform(0.75, 1.25, (n, 1)) * np.c_[np.ones(n), rng.uniform(0.5, 1.0, n)]
        self.angle = rng.uniform(0, np.pi, n)
        self.wobble = rng.uniform(0, 0.08, (n, 3)) / np.arange(2, 5)  # boundary harmonics 2..4
        self.phase = rng.uniform(0, 2 * np.pi, (n, 3))
        self.bright = rng.uniform(0.3, 1.0, n)
        self.spots = rng.uniform(-0.6, 0.6, (n, 3, 2))  # texture spot positions, cell coords
        self.spot_amp = rng.uniform(-0.3, 0.4, (n, 3))

    def __len__(self) -> int:
        return len(self.bright)

    def moved(self, rng: np.random.Generator, size: int) -> "_Cells":
        """The cells one frame later: drift, jiggle, turn, deform, brightness drift."""
        nxt = object.__new__(_Cells)
        nxt.__dict__.update(self.__dict__)
        n = len(self)
        step = rng.normal(0, 0.15, (n, 2)) * self.axes[:, :1]
        nxt.centre = self.centre + rng.uniform(-0.03, 0.03, 2) * size + step
        nxt.angle = self.angle + np.deg2rad(rng.uniform(-10, 10, n))
        nxt.axes = self.axes * rng.uniform(0.93, 1.07, (n, 2))
        nxt.bright = self.bright * rng.uniform(0.9, 1.1, n)
        return nxt

    def draw(self, size: int):
        """Label map (H, W) int32 and per-pixel normalised radius / intensity (H, W).

        ``rho`` is the smallest normalised radius over cells (< 1 inside a cell, up to
        the halo radius outside), ``inner`` the owning cell's interior intensity.
        """
        rho = np.full((size, size), np.inf, np.float32)
        label = np.zeros((size, size), np.int32)
        inner = np.zeros((size, size), np.float32)
        grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        for i in range(len(self)):
            reach = _HALO * 1.1 * self.axes[i].max()
            y0, x0 = np.maximum(np.floor(self.centre[i] - reach).astype(int), 0)
            y1, x1 = np.minimum(np.ceil(self.centre[i] + reach).astype(int), size)
            if y1 <= y0 or x1 <= x0:
                continue
            dy, dx = grid_y[y0:y1, x0:x1] - self.centre[i, 0], grid_x[y0:y1, x0:x1] - self.centre[i, 1]
            c, s = np.cos(self.angle[i]), np.sin(self.angle[i])
            u, v = (c * dy + s * dx) / self.axes[i, 0], (-s * dy + c * dx) / self.axes[i, 1]
            dist = np.hypot(u, v)
            # Boundary 1 + sum_k w_k cos(k theta + phi_k), via powers of e^{i theta}
            # (cheaper than arctan2 and a cosine per harmonic).
            z = (v + 1j * u) / np.maximum(dist, 1e-6)
            zk, bound = z, np.ones_like(dist)
            for k in range(3):
                zk = zk * z
                bound += self.wobble[i, k] * (zk * np.exp(1j * self.phase[i, k])).real
            r = dist / bound
            sub = rho[y0:y1, x0:x1]
            win = r < sub
            sub[win] = r[win]
            own = win & (r < 1)
            label[y0:y1, x0:x1][own] = i + 1
            u, v, r = u[own], v[own], r[own]  # texture only where this cell shows
            tex = self.bright[i] * (1 - 0.3 * r**2)
            for k in range(3):
                d2 = (u - self.spots[i, k, 0]) ** 2 + (v - self.spots[i, k, 1]) ** 2
                tex = tex + self.spot_amp[i, k] * self.bright[i] * np.exp(-d2 / 0.05)
            inner[y0:y1, x0:x1][own] = tex
        return label, rho, inner


def _look(rng: np.random.Generator) -> dict:
    """Appearance parameters shared by both frames of a scene."""
    mode = rng.choice(["fluorescence", "phase", "membrane"], p=[0.45, 0.3, 0.25])
    bits = 8 if rng.random() < 0.5 else 16
    return {
        "mode": mode,
        "background": rng.uniform(0.02, 0.15) if mode == "fluorescence" else rng.uniform(0.35, 0.6),
        "contrast": rng.uniform(0.1, 0.35) * rng.choice([-1, 1]),
        "rim": rng.uniform(0.15, 0.4) * rng.choice([-1, 1]),
        "rim_width": rng.uniform(0.08, 0.2),
        "illumination": rng.uniform(0, 0.5),
        "blur": rng.uniform(0.3, 1.6),
        "photons": 10 ** rng.uniform(1.3, 3.0),
        "read_noise": rng.uniform(0, 0.03),
        "bits": bits,
        "gain": rng.uniform(0.35, 1.0) if bits == 8 else rng.uniform(500, 40000),
        "offset": rng.uniform(50, 2000),
        "field_seed": int(rng.integers(2**62)),
    }


def _intensity(look: dict, label, rho, inner, rng: np.random.Generator) -> np.ndarray:
    """Noise-free-then-noisy intensity image (H, W) float32 in ~[0, 1] for one frame."""
    bg = look["background"]
    cell = label > 0
    if look["mode"] == "fluorescence":
        img = np.where(cell, bg + inner, bg)
    elif look["mode"] == "phase":
        img = np.where(cell, bg + look["contrast"] * inner, bg)
        halo = ~cell & (rho < _HALO)
        img = img + np.where(halo, abs(look["rim"]) * (_HALO - rho) / (_HALO - 1), 0)
    else:  # membrane: interiors like the background, rims carry the contrast
        img = np.where(cell, bg + 0.3 * look["contrast"] * inner, bg)
        rim = cell & (rho > 1 - look["rim_width"])
        img = img + np.where(rim, look["rim"], 0)
    field = smooth_field(np.random.default_rng(look["field_seed"]), label.shape, 2)
    img = img * (1 + look["illumination"] * np.tanh(field))
    img = blur(img.astype(np.float32), look["blur"])
    img = np.clip(img, 0, None)
    if look["photons"] < 100:  # low light: photon counts are visibly discrete
        img = rng.poisson(img * look["photons"]).astype(np.float32) / look["photons"]
        std = look["read_noise"]
    else:  # shot noise ~ Gaussian at these counts; one draw for shot + read noise
        std = np.sqrt(img / look["photons"] + look["read_noise"] ** 2)
    return (img + std * rng.standard_normal(img.shape, dtype=np.float32)).astype(np.float32)


def _quantise(look: dict, img: np.ndarray) -> np.ndarray:
    """Raw detector values: uint8 (dim or full-range) or uint16 with an offset."""
    if look["bits"] == 8:
        return np.clip(img * 255 * look["gain"], 0, 255).astype(np.uint8)
    return np.clip(img * look["gain"] + look["offset"], 0, 65535).astype(np.uint16)


def microscopy_scene(
    rng: np.random.Generator,
    size: int = 256,
    pair: bool = False,
    min_area: float | None = None,
    drop_ref_prob: float = 0.2,
    max_tries: int = 20,
) -> TrainingSample:
    """A synthetic microscopy sample (kind ``microscopy-still`` or ``microscopy-pair``).

    Parameters
    ----------
    rng : numpy.random.Generator
    size : int
        Side of the square output.
    pair : bool
        Make a (reference, current) pair; the target cell is the same id in both.
    min_area : float, optional
        Minimum target area in px in every frame (default max(12, 0.05 % of the image)).
    drop_ref_prob : float
        Probability that a pair's reference is dropped.

    Returns
    -------
    TrainingSample
        (size, size, 3) gray image repeated over 3 channels, depth None (a flat scene).
    """
    min_area = max(12.0, 0.0005 * size * size) if min_area is None else min_area
    for _ in range(max_tries):
        cells = [_Cells(rng, size)]
        if pair:
            cells.append(cells[0].moved(rng, size))
        drawn = [c.draw(size) for c in cells]
        areas = [np.bincount(d[0].ravel(), minlength=len(cells[0]) + 1)[1:] for d in drawn]
        ok = np.flatnonzero(np.min(areas, axis=0) >= min_area) + 1
        if len(ok):
            break
    else:
        raise RuntimeError("could not draw a microscopy scene with a large enough cell")
    target = int(rng.choice(ok))
    look = _look(rng)
    raw = np.stack([_quantise(look, _intensity(look, *d, rng)) for d in drawn])
    stack = FrameStack(raw)  # the app's normalisation, computed over both frames
    label = drawn[-1][0]
    sample = TrainingSample(
        image=stack[len(raw) - 1], mask=label == target,
        others=(label > 0) & (label != target), kind="microscopy-still",
    )
    if pair and rng.random() >= drop_ref_prob:
        sample.ref_image = stack[0]
        ref = drawn[0][0] == target
        # Small cells: scale the degradation with the cell, or a 5 px cell would vanish.
        sample.ref_mask = degrade_mask(ref, rng, max_px=min(8.0, 0.25 * np.sqrt(ref.sum()) + 1))
        sample.kind = "microscopy-pair"
    return sample

"""Geometric and photometric augmentation shared by the synthetic and real-data samplers.

Coordinates are (y, x) with pixel centres at half-integers (pixel i covers [i, i+1)),
so a scale about the origin maps whole images onto whole images. Affine maps are 3x3
matrices taking *output* coordinates to *source* coordinates (inverse warping).

OpenCV is used for the warps when it is installed (about 10x faster than scipy, and the
data must not be the bottleneck on a 2-core machine); scipy is the fallback. The two
agree to ~1/32 px (OpenCV's sub-pixel grid). Set ``NAPARI_OIS_NO_CV2=1`` to force scipy.
"""

from __future__ import annotations

import os

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

from .samples import resize_image

try:  # optional accelerator, see the module docstring
    if os.environ.get("NAPARI_OIS_NO_CV2"):
        raise ImportError
    import cv2
except ImportError:  # pragma: no cover - exercised where OpenCV is absent
    cv2 = None


def translate(ty: float, tx: float) -> np.ndarray:
    """3x3 matrix of a translation by (ty, tx)."""
    return np.array([[1.0, 0, ty], [0, 1.0, tx], [0, 0, 1.0]])


def similarity(scale: float = 1.0, angle: float = 0.0, centre=(0.0, 0.0), flip: bool = False) -> np.ndarray:
    """3x3 matrix: scale by ``scale`` and rotate by ``angle`` radians about ``centre``.

    ``flip`` mirrors x about the centre first. Use as an out->source map: a scale of 2
    samples the source twice as far apart, i.e. shrinks the content.
    """
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    lin = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    if flip:
        lin = lin @ np.diag([1.0, -1.0, 1.0])
    return translate(*centre) @ lin @ translate(-centre[0], -centre[1])


def apply_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) (y, x) points through a 3x3 matrix."""
    pts = np.c_[points, np.ones(len(points))] @ matrix.T
    return pts[:, :2]


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """(H, W) float32 smooth random field, roughly N(0, 1), with ~``cells`` bumps per side."""
    cells = max(2, int(cells))
    coarse = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return resize_image(coarse, shape)


def elastic_flow(rng: np.random.Generator, shape: tuple[int, int], amplitude: float, cells: int = 4) -> np.ndarray:
    """(2, H, W) float32 smooth displacement (dy, dx) in pixels, std ``amplitude``."""
    return np.stack([smooth_field(rng, shape, cells) * amplitude for _ in range(2)])


def warp(
    src: np.ndarray,
    matrix: np.ndarray,
    out_shape: tuple[int, int],
    flow: np.ndarray | None = None,
    order: int = 1,
) -> np.ndarray:
    """Inverse-warp ``src`` (H, W[, C]) to ``out_shape`` (h, w) through an affine map.

    Parameters
    ----------
    src : np.ndarray
        Source image, any float/uint8 dtype; C <= 4 channels for one OpenCV call.
    matrix : np.ndarray
        3x3 output->source map in half-integer pixel coordinates.
    flow : np.ndarray, optional
        (2, h, w) extra source displacement (dy, dx) added after the affine map
        (elastic deformation).
    order : int
        1 = bilinear, 0 = nearest.

    Returns
    -------
    np.ndarray
        (h, w[, C]) float32; points that fall outside the source read 0.
    """
    src = np.asarray(src, np.float32)
    h, w = int(out_shape[0]), int(out_shape[1])
    # Half-integer convention -> index convention: src_idx = A (out_idx + .5) + t - .5
    a = matrix[:2, :2]
    t = matrix[:2, 2] + a @ np.array([0.5, 0.5]) - 0.5
    if flow is None and cv2 is not None:
        m = np.array([[a[1, 1], a[1, 0], t[1]], [a[0, 1], a[0, 0], t[0]]])
        interp = cv2.INTER_LINEAR if order == 1 else cv2.INTER_NEAREST
        out = cv2.warpAffine(src, m, (w, h), flags=interp | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out.reshape((h, w) + src.shape[2:])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sy = a[0, 0] * yy + a[0, 1] * xx + t[0]
    sx = a[1, 0] * yy + a[1, 1] * xx + t[1]
    if flow is not None:
        sy += flow[0]
        sx += flow[1]
    if cv2 is not None:
        interp = cv2.INTER_LINEAR if order == 1 else cv2.INTER_NEAREST
        out = cv2.remap(src, sx.astype(np.float32), sy.astype(np.float32), interp,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out.reshape((h, w) + src.shape[2:])
    chans = src[..., None] if src.ndim == 2 else src
    out = np.stack([ndimage.map_coordinates(chans[..., c], [sy, sx], order=order, mode="constant",
                                            cval=0.0, prefilter=False) for c in range(chans.shape[-1])], -1)
    return out[..., 0] if src.ndim == 2 else out


def antialias(src: np.ndarray, scale: float) -> np.ndarray:
    """Blur ``src`` before a warp that shrinks it by ``scale`` (< 1), to avoid aliasing.

    Bilinear sampling alone skips pixels when shrinking; inference uses an antialiased
    resize, so training images must not be sharper or noisier than what it sees.
    """
    if scale >= 0.75:
        return src
    sigma = 0.5 * np.sqrt(max(1.0 / scale**2 - 1.0, 0.0))
    if cv2 is not None:
        return cv2.GaussianBlur(np.asarray(src, np.float32), (0, 0), sigma)
    sig = (sigma, sigma) + (0,) * (src.ndim - 2)
    return ndimage.gaussian_filter(np.asarray(src, np.float32), sig)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over the spatial axes of (H, W[, C]) float32."""
    if sigma <= 0:
        return image
    if cv2 is not None:
        return cv2.GaussianBlur(image, (0, 0), sigma).reshape(image.shape)
    return ndimage.gaussian_filter(image, (sigma, sigma) + (0,) * (image.ndim - 2))


def photometric(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0, colour: bool = True) -> np.ndarray:
    """Brightness / contrast / per-channel shift jitter of an (H, W, 3) [0, 1] image.

    Ranges follow SegNext's albumentations settings (brightness +-0.25, contrast
    -0.15..0.4, RGB shift +-10/255, each with p=0.75), scaled by ``strength``.
    ``colour=False`` shifts all channels alike (gray microscopy stays gray).
    """
    out = image
    if rng.random() < 0.75:
        contrast = 1.0 + strength * rng.uniform(-0.15, 0.4)
        brightness = strength * rng.uniform(-0.25, 0.25)
        out = (out - out.mean()) * contrast + out.mean() + brightness
    if rng.random() < 0.75:
        shift = rng.uniform(-10, 10, size=3 if colour else 1).astype(np.float32)
        out = out + strength * shift / 255.0
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    """Disk dilation of an (H, W) bool mask by ``radius`` px (negative = erosion)."""
    if radius == 0 or not mask.any():
        return mask.copy()
    if radius > 0:
        return ndimage.distance_transform_edt(~mask) <= radius
    return ndimage.distance_transform_edt(mask) > -radius


def degrade_mask(mask: np.ndarray, rng: np.random.Generator, max_px: float = 8.0) -> np.ndarray:
    """A plausible imperfect reference mask: the previous frame's mask as a user left it.

    Erosion or dilation by 1..``max_px`` px, a small affine jitter (shift <= 3 % of the
    object size, rotation <= 5 deg, scale 0.95..1.05 about the object centre), and with
    p=0.3 a few blobs of boundary noise added or removed. Returns (H, W) bool; never
    empty when ``mask`` is not.
    """
    if not mask.any():
        return mask.copy()
    ys, xs = np.nonzero(mask)
    centre = (ys.mean() + 0.5, xs.mean() + 0.5)
    extent = max(np.ptp(ys), np.ptp(xs)) + 1
    out = dilate(mask, rng.choice([-1, 1]) * rng.uniform(1, max_px))
    if not out.any():  # eroded away: keep the object, only a thin one vanishes
        out = mask.copy()
    jitter = translate(*rng.uniform(-0.03, 0.03, 2) * extent) @ similarity(
        rng.uniform(0.95, 1.05), np.deg2rad(rng.uniform(-5, 5)), centre)
    out = warp(out.astype(np.float32), jitter, mask.shape) >= 0.5
    if rng.random() < 0.3:
        noise = smooth_field(rng, mask.shape, max(2, mask.shape[0] // 24)) > 1.2
        band = dilate(out, max_px) & ~dilate(out, -max_px)
        out = np.where(band & noise, ~out, out)
    return out if out.any() else mask.copy()


def bleed_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The mask with background added next to it, as a propagated mask leaks.

    :func:`degrade_mask` moves the boundary by a few pixels; a propagated mask also
    picks up whole regions of background that touch the object: the gap between a
    swan's neck and its body, filled, or water beside it. Once in the previous mask
    such a region stays and grows frame after frame unless the model learns to remove
    it by its appearance. Two kinds, equally often:

    - a concavity filled: the convex hull minus the object, on one side of a random
      line through the object and within 8-50 % of its extent from it;
    - an outside blob: a smooth random region of the ring 8-50 % of the extent wide
      around the object, connected to it.

    Parameters
    ----------
    mask : np.ndarray
        (H, W) bool object mask.

    Returns
    -------
    np.ndarray
        (H, W) bool, a superset of ``mask`` (equal when nothing could be added).
    """
    if not mask.any():
        return mask.copy()
    ys, xs = np.nonzero(mask)
    extent = max(np.ptp(ys), np.ptp(xs)) + 1
    radius = rng.uniform(0.08, 0.5) * extent
    if rng.random() < 0.5:
        # The convex hull fills every concavity; a random line through the object and
        # the distance from it keep one partial fill, as a leak starts on one side.
        added = convex_hull_image(mask) & ~mask & dilate(mask, radius)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[:mask.shape[0], :mask.shape[1]]
        offset = (yy - ys.mean()) * np.sin(angle) + (xx - xs.mean()) * np.cos(angle)
        added &= offset > rng.uniform(-0.2, 0.2) * extent
    else:
        ring = dilate(mask, radius) & ~mask
        noise = smooth_field(rng, mask.shape, max(2, int(1.5 * max(mask.shape) / max(radius, 1.0))))
        added = ring & (noise > rng.uniform(0.3, 1.0))
        # Only pieces that touch the object: a leak grows from the mask's boundary.
        pieces, _ = ndimage.label(added | mask)
        added &= np.isin(pieces, np.unique(pieces[mask]))
    return mask | added


def choose_view(rng, shape, box, size, context=(1.3, 3.5), full_prob=0.35, rot90=False):
    """A random augmented view of an image around an object box.

    Parameters
    ----------
    shape : tuple
        (H, W) of the source image.
    box : tuple
        (y0, x0, y1, x1) object bounding box in source pixels (end exclusive).
    size : int
        Longest side of the output.
    context : (float, float)
        Range of the crop side in units of the box's longest side (before the scale
        jitter 0.75..1.4, which divides it).
    full_prob : float
        Probability of taking the whole image instead of a crop.
    rot90 : bool
        Allow rotations by multiples of 90 degrees (microscopy has no "up").

    Returns
    -------
    matrix : np.ndarray
        3x3 output->source map for :func:`~napari_ois.train.augment.warp`.
    out_shape : (int, int)
        Output (h, w), longest side ``size``.
    scale : float
        Output pixels per source pixel.
    """
    h, w = shape
    obj_h, obj_w = box[2] - box[0], box[3] - box[1]
    if rng.random() < full_prob:
        win_h, win_w, cy, cx = h, w, h / 2, w / 2
    else:
        side = max(obj_h, obj_w) * rng.uniform(*context) / rng.uniform(0.75, 1.4)
        win_h, win_w = min(side, h), min(side, w)
        # Off-centre crops (the object is not always in the middle), kept inside the image.
        cy = (box[0] + box[2]) / 2 + rng.uniform(-0.4, 0.4) * max(win_h - obj_h, 0)
        cx = (box[1] + box[3]) / 2 + rng.uniform(-0.4, 0.4) * max(win_w - obj_w, 0)
        cy, cx = np.clip(cy, win_h / 2, h - win_h / 2), np.clip(cx, win_w / 2, w - win_w / 2)
    scale = size / max(win_h, win_w)
    cy, cx = np.array([cy, cx]) + rng.uniform(-0.03, 0.03, 2) * np.array([win_h, win_w])
    turns = int(rng.integers(4)) if rot90 else 0
    angle = turns * np.pi / 2 + (np.deg2rad(rng.uniform(-3, 3)) if rng.random() < 0.75 else 0.0)
    out = (max(1, round(win_h * scale)), max(1, round(win_w * scale)))
    out = out[::-1] if turns % 2 else out
    matrix = translate(cy, cx) @ similarity(1 / scale, angle, (0, 0), rng.random() < 0.5) @ translate(-out[0] / 2, -out[1] / 2)
    return matrix, out, scale


def pseudo_motion(rng, out_shape) -> tuple[np.ndarray, np.ndarray]:
    """Output-space affine (shift <= 5 %, rot <= 8 deg, scale 0.9-1.1) + elastic flow."""
    centre = (out_shape[0] / 2, out_shape[1] / 2)
    move = translate(*rng.uniform(-0.05, 0.05, 2) * max(out_shape))
    move = move @ similarity(rng.uniform(0.9, 1.1), np.deg2rad(rng.uniform(-8, 8)), centre)
    return move, elastic_flow(rng, out_shape, rng.uniform(0, 0.015) * max(out_shape), int(rng.integers(3, 5)))

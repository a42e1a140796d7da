"""What is known about one object before segmenting: click seeds, previous mask, reference mask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage as ndi

from ..boxes import BoxPrompt
from ..clicks import Click
from ..segmenter import Reference
from .colour_histogram import joint_histogram, log_ratio
from .embedding import ClassicalEmbedding
from .geodesic import geodesic_distance
from .motion import estimate_shift, shift_map
from .resampling import to_work


@dataclass
class Evidence:
    """What is known about one object on the working grid before segmenting.

    ``hard_*`` are click disks (never overruled); ``soft_*`` are seeds from the previous
    mask or the reference mask: starting points of geodesic distances and a moderate
    pull of weight ``soft_lam`` (a map) towards their label; ``fg_hist``/``bg_hist`` are
    colour models from elsewhere (the reference frame), or None; ``shape_p`` the target of
    the ``soft_lam`` pull; ``ref_here`` the reference mask moved onto this frame.
    """

    hard_fg: np.ndarray
    hard_bg: np.ndarray
    soft_fg: np.ndarray
    soft_bg: np.ndarray
    soft_lam: np.ndarray
    shape_p: np.ndarray | None = None
    ref_here: np.ndarray | None = None
    fg_hist: np.ndarray | None = None
    bg_hist: np.ndarray | None = None

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> "Evidence":
        z = np.zeros(shape, bool)
        return cls(z, z.copy(), z.copy(), z.copy(), np.zeros(shape, np.float32))


def click_seeds(emb: ClassicalEmbedding, clicks: Sequence[Click]) -> list[tuple[int, int, bool]]:
    """Clicks mapped onto the working grid as (row, col, positive), clipped inside it."""
    h, w = emb.work_shape
    seeds = []
    for c in clicks:
        r = int(np.clip(np.floor(c.y * emb.scale), 0, h - 1))
        col = int(np.clip(np.floor(c.x * emb.scale), 0, w - 1))
        seeds.append((r, col, bool(c.positive)))
    return seeds


def _disk_mask(shape: tuple[int, int], points: list[tuple[int, int]], radius: float) -> np.ndarray:
    """(y, x) bool union of disks of ``radius`` around ``points``."""
    out = np.zeros(shape, bool)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    for r, c in points:
        out |= (yy - r) ** 2 + (xx - c) ** 2 <= radius**2
    return out


def add_clicks(emb: ClassicalEmbedding, seeds, ev: Evidence) -> None:
    """Click disks as hard seeds; where disks of opposite clicks overlap the later click wins."""
    radius = max(1.0, 0.01 * max(emb.work_shape))
    for r, c, positive in seeds:
        disk = _disk_mask(emb.work_shape, [(r, c)], radius)
        (ev.hard_fg if positive else ev.hard_bg)[disk] = True
        (ev.hard_bg if positive else ev.hard_fg)[disk] = False
        (ev.hard_fg if positive else ev.hard_bg)[r, c] = True


def add_prev(emb: ClassicalEmbedding, seeds, prev: np.ndarray, ev: Evidence, strength: float) -> None:
    """Pull towards the previous result, except where a correcting click reaches cheaply.

    The clicks themselves (all of them are given again) carry the segmentation; the
    previous result only steadies it where the new click does not reach.
    """
    relax = np.ones(prev.shape, np.float32)
    size = max(prev.shape)
    for r, c, positive in seeds:
        if (prev[r, c] > 0.5) != positive:
            d = geodesic_distance(emb, _disk_mask(prev.shape, [(r, c)], 1.0))
            relax = np.minimum(relax, 1.0 - np.exp(-((d / (0.1 * size)) ** 2)))
    ev.soft_lam = np.maximum(ev.soft_lam, strength * np.abs(2 * prev - 1) * relax)
    ev.shape_p = prev if ev.shape_p is None else 0.5 * (ev.shape_p + prev)


def add_reference(emb: ClassicalEmbedding, reference: Reference, ref_mask: np.ndarray, ev: Evidence) -> None:
    """Seeds from the neighbouring frame's mask (moved along with the object) and its colour models."""
    ref_emb = reference.embedding
    same_grid = isinstance(ref_emb, ClassicalEmbedding) and ref_emb.work_shape == emb.work_shape
    if same_grid:
        dy, dx = estimate_shift(ref_emb.lab, emb.lab, ref_mask, emb.motion_range)
        moved = shift_map(ref_mask, dy, dx)
        if moved.any():
            ref_mask_here = moved
        else:
            ref_mask_here = ref_mask
    else:
        ref_mask_here = ref_mask
    band = float(np.clip(0.1 * np.sqrt(ref_mask_here.sum()), 1.5, 0.03 * max(emb.work_shape) + 1))
    inside = ndi.distance_transform_edt(ref_mask_here)
    outside = ndi.distance_transform_edt(~ref_mask_here)
    core = inside > band
    if not core.any():  # thin or tiny object: keep its most interior pixels
        core = inside >= inside.max()
    far = outside > band
    ev.soft_fg |= core & ~ev.hard_bg
    ev.soft_bg |= far & ~ev.hard_fg
    # Strong where the old mask is sure (core, far outside), weak in the band in between,
    # where the new boundary is placed by edges and colour.
    ev.soft_lam = np.maximum(ev.soft_lam, np.where(core | far, 0.3, 0.03).astype(np.float32))
    ev.shape_p = ref_mask_here.astype(np.float32)
    ev.ref_here = ref_mask_here

    if isinstance(ref_emb, ClassicalEmbedding):
        rmask = ref_mask if ref_emb.work_shape == emb.work_shape else (
            to_work(ref_mask.astype(np.float32), ref_emb.work_shape) > 0.5)
        rbins = ref_emb.bins
    else:
        rmask, rbins = ref_mask, emb.bins
    # Background near the object matters most: it is what the boundary is cut against.
    ring = np.exp(-ndi.distance_transform_edt(~rmask) / (3 * band + 1)) * ~rmask
    ev.fg_hist = joint_histogram(rbins, rmask.astype(np.float32))
    ev.bg_hist = joint_histogram(rbins, 0.2 * ~rmask + ring)


# The colour core keeps the ellipse's pixels in the top 40 % of the box's colour
# log-likelihood ratio (the top half did no better on training objects), and only those at
# or above COLOUR_CORE_MIN_RATIO: a box whose colours all look like the ring gets the
# ellipse core instead.
COLOUR_CORE_QUANTILE = 0.6
COLOUR_CORE_MIN_RATIO = 0.5
COLOUR_CORE_ROUNDS = 2
# Chroma (the hypot of Lab's a and b, in the embedding's units of 100) above which a box
# counts as holding colour. Gray data has none: there the box-against-ring contrast is
# brightness alone, which a nucleus shares with its neighbours in the ring, and the colour
# core lost to the ellipse on procedural fluorescence nuclei (done by the box alone 15 %
# against 33 %).
COLOUR_CORE_MIN_CHROMA = 0.03


def add_box(emb: ClassicalEmbedding, box: BoxPrompt, ev: Evidence, guess_shape: bool = True,
            negatives: Sequence[tuple[int, int]] = (), release: float = 0.0,
            previous: np.ndarray | None = None, core_by_colour: bool = False) -> None:
    """A box prompt as GrabCut's first round on the random walker.

    Outside the box (one working pixel of slack) is background for sure; a core inside it
    is a geodesic source of foreground; colour models come from inside the box against a
    ring around it. The core is the central half of the ellipse inscribed in the box, or
    with ``core_by_colour``, where the box holds colour (:func:`_has_colour`), the pixels
    of that ellipse whose colour is most typical of the box against the ring
    (:func:`_colour_core`). With ``guess_shape`` (the box alone) and
    the ellipse core, the ellipse is also a weak shape prior; once there are clicks that
    guess only pulls their refinement towards an ellipse (on held-out training objects,
    dropping it then took NoC@85 from 6.10 to 5.47). Clicks overrule all of it, and the
    core is only a guess: the part of it that a negative click (working-grid
    ``negatives``, row and column) reaches within ``release`` of the grid's longest side,
    geodesically, is dropped, or one background click could not undo a guess covering
    background. When that leaves no core, the ``previous`` (y, x) bool mask beyond the
    clicks' reach takes its place (the caller passes it when no click is positive):
    without any foreground source one negative click would wipe the object. Failing
    both, the whole core stays.
    """
    h, w = emb.work_shape
    y0, y1, x0, x1 = box.scaled(emb.scale).pixel_bounds((h, w))
    in_box = (slice(max(0, y0 - 1), y1 + 1), slice(max(0, x0 - 1), x1 + 1))
    outside = np.ones((h, w), bool)
    outside[in_box] = False
    ev.hard_bg |= outside & ~ev.hard_fg
    yy, xx = np.ogrid[:h, :w]
    cy, cx = (y0 + y1 - 1) / 2.0, (x0 + x1 - 1) / 2.0
    ry, rx = max((y1 - y0) / 2.0, 0.5), max((x1 - x0) / 2.0, 0.5)
    radius = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    ellipse = radius <= 1.0
    band = max(2.0, 0.25 * max(y1 - y0, x1 - x0))
    ring = outside & (ndi.distance_transform_edt(outside) <= band)
    bg_hist = joint_histogram(emb.bins, 0.2 * outside + ring)
    core, fg_hist = None, None
    if core_by_colour and _has_colour(emb.lab[in_box]):
        core, fg_hist = _colour_core(emb.bins, ~outside & ellipse, ~outside, bg_hist)
    shape_guess = guess_shape and core is None
    if core is None:
        core = radius <= 0.25
        if not core.any():
            core[int(round(cy)), int(round(cx))] = True
        fg_hist = joint_histogram(emb.bins, np.where(ellipse, 1.0, 0.3) * ~outside)
    if negatives and release > 0:
        reached = geodesic_distance(emb, _disk_mask((h, w), list(negatives), 1.0)) <= release * max(h, w)
        kept = core & ~reached
        if not kept.any() and previous is not None:
            kept = previous & ~reached & ~outside
        core = kept if kept.any() else core
    ev.soft_fg |= core & ~ev.hard_bg
    if shape_guess:
        ev.shape_p = ellipse.astype(np.float32) if ev.shape_p is None else 0.5 * (ev.shape_p + ellipse)
        ev.soft_lam = np.maximum(ev.soft_lam, np.where(~outside, 0.02, 0.0).astype(np.float32))
    ev.fg_hist = fg_hist
    ev.bg_hist = bg_hist


def _has_colour(lab: np.ndarray) -> bool:
    """Whether (y, x, 3) Lab pixels hold colour, not only gray: a tenth of them at least at
    :data:`COLOUR_CORE_MIN_CHROMA`."""
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return chroma.size > 0 and float(np.quantile(chroma, 0.9)) >= COLOUR_CORE_MIN_CHROMA


def _colour_core(bins: np.ndarray, candidates: np.ndarray, inside: np.ndarray,
                 bg_hist: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Where in the box the object most likely is, judged by colour, as GrabCut judges it.

    The ellipse's middle is background for a giraffe, a chair or a bicycle; the colours
    the box holds more often than the ring around it are the object's wherever they lie.
    Each round fits the foreground histogram on the current core and re-picks it.

    Parameters
    ----------
    bins : np.ndarray
        (y, x) colour-bin index of each working pixel.
    candidates : np.ndarray
        (y, x) bool pixels the core may take (the ellipse inscribed in the box).
    inside : np.ndarray
        (y, x) bool pixels of the box: the first foreground histogram.
    bg_hist : np.ndarray
        The background colour histogram (outside the box, the ring near it weighted up).

    Returns
    -------
    core, fg_hist
        (y, x) bool core, or None when no candidate's colour favours the object; the
        foreground histogram of the last round.
    """
    fg_hist = joint_histogram(bins, inside.astype(np.float32))
    core = None
    for _ in range(COLOUR_CORE_ROUNDS):
        ratio = log_ratio(bins, fg_hist, bg_hist)
        cut = max(float(np.quantile(ratio[inside], COLOUR_CORE_QUANTILE)), COLOUR_CORE_MIN_RATIO)
        picked = candidates & (ratio >= cut)
        if not picked.any():
            break
        core = picked
        fg_hist = joint_histogram(bins, core.astype(np.float32))
    return core, fg_hist

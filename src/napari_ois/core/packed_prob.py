"""Probability maps kept compact in the session state and the undo history.

A session keeps the last probability of every (object, frame) it was clicked on (fed
back as ``prev_prob`` so the next click refines rather than restarts), and every click
in the undo history holds the probability before and after it. As float32 that is
4 bytes per pixel per click (8 MB for a 1920x1080 frame): the undo history would grow
by megabytes per click. Quantised to 8 bits and zlib-compressed, a map is a few
hundred bytes to a few kB, since most of it is confidently 0 or 1.
"""

from __future__ import annotations

import zlib

import numpy as np


class PackedProb:
    """A (Y, X) probability in [0, 1], stored as 8-bit levels, zlib-compressed.

    ``np.asarray(packed)`` gives it back as a (Y, X) float32 array (levels / 255; the
    quantisation error is at most 1/510, far below what moves a 0.5 threshold on a
    smooth map). Restoring a packed map is exact: undo then redo gives back the very
    same state.

    Parameters
    ----------
    prob : np.ndarray
        (Y, X) probabilities; NaN counts as 0, values are clipped to [0, 1].
    """

    __slots__ = ("blob", "shape")

    def __init__(self, prob: np.ndarray):
        prob = np.nan_to_num(np.asarray(prob, dtype=np.float32), nan=0.0)
        levels = np.rint(np.clip(prob, 0.0, 1.0) * 255).astype(np.uint8)
        self.blob = zlib.compress(levels.tobytes(), 1)
        self.shape = levels.shape

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        levels = np.frombuffer(zlib.decompress(self.blob), dtype=np.uint8).reshape(self.shape)
        out = levels.astype(np.float32) / np.float32(255)
        return out if dtype is None else out.astype(dtype, copy=False)

    @property
    def nbytes(self) -> int:
        """Bytes held (the compressed levels)."""
        return len(self.blob)


def pack_prob(prob: np.ndarray | PackedProb | None) -> PackedProb | None:
    """Pack a probability map (already packed maps and None pass through)."""
    if prob is None or isinstance(prob, PackedProb):
        return prob
    return PackedProb(prob)

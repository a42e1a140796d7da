"""Geodesic distances on an embedding's coarse cost grid (how cheaply seeds reach each pixel)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.graph import MCP_Geometric
from skimage.transform import resize

from .embedding import ClassicalEmbedding


def geodesic_distance(emb: ClassicalEmbedding, sources: np.ndarray) -> np.ndarray:
    """(y, x) geodesic distance (in working pixels) from a (y, x) bool source map.

    Computed on the coarse cost grid (the paths are a prior; the random walker places
    the exact boundary), starting only from the sources' boundary pixels (inner source
    pixels cannot shorten a path and would slow the search).
    """
    f = emb.coarse_factor
    ch, cw = emb.coarse_cost.shape
    src = sources[: ch * f, : cw * f].reshape(ch, f, cw, f).any(axis=(1, 3)) if f > 1 else sources
    if not src.any():  # sources only in the cropped-off last row/column
        src = np.zeros((ch, cw), bool)
        ys, xs = np.nonzero(sources)
        src[np.minimum(ys // f, ch - 1), np.minimum(xs // f, cw - 1)] = True
    edge = src & ~ndi.binary_erosion(src, border_value=1)
    starts = np.argwhere(edge if edge.any() else src)
    dist, _ = MCP_Geometric(emb.coarse_cost, fully_connected=True).find_costs(starts)
    dist[src] = 0.0
    dist = np.asarray(dist, np.float32) * f
    if f > 1:
        dist = resize(dist, ((ch * f), (cw * f)), order=1, preserve_range=True)
        dist = np.pad(dist, ((0, sources.shape[0] - ch * f), (0, sources.shape[1] - cw * f)), mode="edge")
    return dist.astype(np.float32)

"""The training sample and the fixed-size geometry shared by training and inference.

The model sees every image the same way: the longest side resized to ``size`` and the
image placed at the top-left of a ``size`` x ``size`` canvas padded with zeros. The pure
functions here (:func:`longest_side_pad_image`, :func:`longest_side_pad_mask`,
:func:`unpad_and_resize`) are meant to be imported by the model's inference code too, so
training and inference cannot drift apart.

Resizing is linear with antialiasing when shrinking (a triangle filter whose support
grows with the shrink factor), the same kernel as PIL's bilinear filter and
``torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass
class TrainingSample:
    """One training example.

    Attributes
    ----------
    image : np.ndarray
        (H, W, 3) float32 in [0, 1], the frame to segment.
    mask : np.ndarray
        (H, W) bool target object (its visible part).
    ignore : np.ndarray or None
        (H, W) bool pixels without a label (padding, warped-in borders); None = none.
    depth : np.ndarray or None
        (H, W) float32 relative depth, larger = closer; None where unknown (real data).
    ref_image : np.ndarray or None
        (H, W, 3) float32 previous frame of a propagation pair; None for stills.
    ref_mask : np.ndarray or None
        (H, W) bool reference mask on ``ref_image``, already degraded; None when the
        reference is dropped or the sample is a still.
    kind : str
        ``"<source>-<still|pair>"`` with source in {synthetic, microscopy, coco, ctc};
        "pair" means ``ref_image`` and ``ref_mask`` are set.
    others : np.ndarray or None
        (H, W) bool visible pixels of other objects (distractors), used to draw negative
        clicks on them; None when unknown.
    """

    image: np.ndarray
    mask: np.ndarray
    ignore: np.ndarray | None = None
    depth: np.ndarray | None = None
    ref_image: np.ndarray | None = None
    ref_mask: np.ndarray | None = None
    kind: str = "still"
    others: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W)."""
        return tuple(self.mask.shape)


def fit_shape(shape: tuple[int, int], size: int) -> tuple[int, int]:
    """(h, w) of an (H, W) image whose longest side is resized to ``size`` (aspect kept).

    Rounds like ``napari_ois.model.preprocess.Geometry.fit`` (Python's ``round``), so
    training samples and inference inputs have the same extent to the pixel.
    """
    h, w = int(shape[0]), int(shape[1])
    scale = size / max(h, w)
    return min(size, max(1, round(h * scale))), min(size, max(1, round(w * scale)))


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights, both (n_out, K), of the 1-D antialiased linear resize.

    Output pixel i is centred at (i + 0.5) * n_in / n_out in input coordinates; the
    triangle filter is stretched by the shrink factor so that shrinking averages every
    input pixel instead of skipping some (aliasing). Taps outside the input are dropped
    and the rest renormalised, which is how PIL and torch treat the border.
    """
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out) + 0.5) * scale
    first = np.floor(centre - support + 0.5).astype(np.int64)
    k = int(np.ceil(2 * support)) + 1
    idx = first[:, None] + np.arange(k)[None, :]
    weight = np.maximum(0.0, 1.0 - np.abs(idx + 0.5 - centre[:, None]) / support)
    weight[(idx < 0) | (idx >= n_in)] = 0.0
    weight /= weight.sum(axis=1, keepdims=True)
    return np.clip(idx, 0, n_in - 1), weight.astype(np.float32)


def resize_image(image: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Antialiased linear resize of an (H, W) or (H, W, C) array to ``out_shape`` (h, w).

    Returns float32; the input may be any real dtype (no value rescaling is done).
    """
    out = np.asarray(image, dtype=np.float32)
    for axis, n_out in enumerate(out_shape):
        n_in = out.shape[axis]
        if n_in == n_out:
            continue
        idx, weight = _taps(n_in, int(n_out))
        moved = np.moveaxis(out, axis, 0)
        gathered = moved[idx]  # (n_out, K, ...)
        w = weight.reshape(weight.shape + (1,) * (moved.ndim - 1))
        out = np.moveaxis((gathered * w).sum(axis=1), 0, axis)
    return np.ascontiguousarray(out, dtype=np.float32)


def resize_mask(mask: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W) bool mask with the image kernel and threshold at 0.5.

    Using the image kernel (not nearest) keeps the mask aligned with the resized image
    to sub-pixel accuracy.
    """
    if tuple(mask.shape) == tuple(out_shape):
        return np.asarray(mask, bool).copy()
    return resize_image(np.asarray(mask, np.float32), out_shape) >= 0.5


def _pad(array: np.ndarray, size: int, value) -> np.ndarray:
    out = np.full((size, size) + array.shape[2:], value, dtype=array.dtype)
    out[: array.shape[0], : array.shape[1]] = array
    return out


def longest_side_pad_image(image: np.ndarray, size: int) -> np.ndarray:
    """Model input geometry for an image.

    Parameters
    ----------
    image : np.ndarray
        (H, W) or (H, W, C) array (values kept as they are, e.g. [0, 1] floats).
    size : int
        Side of the square model input.

    Returns
    -------
    np.ndarray
        (size, size[, C]) float32: the image resized so its longest side is ``size``
        (:func:`fit_shape`), placed top-left, zero padding bottom/right.
    """
    return _pad(resize_image(image, fit_shape(image.shape[:2], size)), size, 0.0)


def longest_side_pad_mask(mask: np.ndarray, size: int, pad_value: bool = False) -> np.ndarray:
    """:func:`longest_side_pad_image` for an (H, W) bool mask; padding = ``pad_value``."""
    return _pad(resize_mask(mask, fit_shape(mask.shape[:2], size)), size, bool(pad_value))


def unpad_and_resize(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`longest_side_pad_image`: model output back to an (H, W) image.

    Parameters
    ----------
    array : np.ndarray
        (size, size[, C]) model-space array, e.g. a probability map.
    shape : tuple of int
        (H, W) of the original image.

    Returns
    -------
    np.ndarray
        (H, W[, C]) float32.
    """
    h, w = fit_shape(shape, array.shape[0])
    return resize_image(array[:h, :w], tuple(shape))


def resize_longest_and_pad(sample: TrainingSample, size: int) -> TrainingSample:
    """The sample in model geometry: every array (size, size), ignore=True on the padding.

    Depth pads with 0 (= farthest) and is ignored there through ``ignore`` anyway.
    """
    h, w = fit_shape(sample.shape, size)
    ignore = sample.ignore if sample.ignore is not None else np.zeros(sample.shape, bool)
    opt = lambda a, f: None if a is None else f(a)  # noqa: E731 - keeps the call list flat
    return replace(
        sample,
        image=longest_side_pad_image(sample.image, size),
        mask=longest_side_pad_mask(sample.mask, size),
        ignore=_pad(resize_mask(ignore, (h, w)), size, True),
        depth=opt(sample.depth, lambda d: longest_side_pad_image(d, size)),
        ref_image=opt(sample.ref_image, lambda a: longest_side_pad_image(a, size)),
        ref_mask=opt(sample.ref_mask, lambda a: longest_side_pad_mask(a, size)),
        others=opt(sample.others, lambda a: longest_side_pad_mask(a, size)),
    )


def stack_samples(samples: list[TrainingSample]) -> dict[str, np.ndarray]:
    """Batch same-size samples into arrays, with flags where a field may be missing.

    Returns
    -------
    dict
        ``image`` (B, H, W, 3) float32, ``mask`` / ``ignore`` / ``others`` (B, H, W) bool,
        ``depth`` (B, H, W) float32 + ``has_depth`` (B,) bool, ``ref_image``
        (B, H, W, 3) float32 + ``ref_mask`` (B, H, W) bool + ``has_ref`` (B,) bool
        (zeros where absent), ``kind`` list of str.
    """
    shape = samples[0].shape
    zeros = lambda *extra: np.zeros(shape + extra, np.float32)  # noqa: E731
    pick = lambda a, default: default if a is None else a  # noqa: E731
    return {
        "image": np.stack([s.image for s in samples]).astype(np.float32),
        "mask": np.stack([s.mask for s in samples]).astype(bool),
        "ignore": np.stack([pick(s.ignore, zeros() > 0) for s in samples]),
        "others": np.stack([pick(s.others, zeros() > 0) for s in samples]),
        "depth": np.stack([pick(s.depth, zeros()) for s in samples]).astype(np.float32),
        "has_depth": np.array([s.depth is not None for s in samples]),
        "ref_image": np.stack([pick(s.ref_image, zeros(3)) for s in samples]).astype(np.float32),
        "ref_mask": np.stack([pick(s.ref_mask, zeros() > 0) for s in samples]),
        "has_ref": np.array([s.ref_mask is not None for s in samples]),
        "kind": [s.kind for s in samples],
    }

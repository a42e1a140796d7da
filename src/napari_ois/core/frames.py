"""A lazy stack of frames along one axis, with stack-consistent intensity normalisation.

Frames are read one at a time from any array-like (numpy, dask, zarr, a memory-mapped
TIFF), so a long video or a large stack is never loaded whole. Every frame goes through
the *same* intensity mapping (computed over the stack, or taken from napari's contrast
limits), so propagation does not see brightness jumps that per-frame min-max would make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class StackNormalizer:
    """Linear intensity mapping ``(value - low) / (high - low)`` clipped to [0, 1].

    Attributes
    ----------
    low, high : float
        Input values mapped to 0 and 1; the same for every frame of the stack.
    """

    low: float
    high: float

    @classmethod
    def from_stack(
        cls,
        stack: "FrameStack",
        percentiles: tuple[float, float] = (0.5, 99.5),
        max_sample_frames: int = 16,
    ) -> "StackNormalizer":
        """Choose the mapping for a whole stack.

        8-bit data keeps its natural range (0..255): videos and photos are already
        display-ready. Other dtypes (16-bit microscopy, floats) use percentiles over
        up to ``max_sample_frames`` evenly spaced frames, ignoring NaN and inf.
        """
        if np.dtype(stack.dtype) == np.uint8:
            return cls(0.0, 255.0)
        if np.dtype(stack.dtype) == np.bool_:
            return cls(0.0, 1.0)
        idx = np.unique(np.linspace(0, stack.n_frames - 1, min(stack.n_frames, max_sample_frames)).astype(int))
        samples = []
        for i in idx:
            with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, dropped below
                frame = np.asarray(stack.raw(int(i)), dtype=np.float32)
            if stack.rgb:
                frame = frame[..., :3]
            values = frame[np.isfinite(frame)]
            if values.size > 65536:  # a strided subsample is enough for percentiles
                values = values[:: values.size // 65536]
            samples.append(values)
        values = np.concatenate(samples) if samples else np.zeros(0, np.float32)
        if values.size == 0:
            return cls(0.0, 1.0)
        # float64: the interpolation of float32 values near their maximum would overflow
        low, high = np.percentile(values.astype(np.float64), percentiles)
        if not high > low:  # flat image: avoid a division by zero
            high = low + 1.0
        return cls(float(low), float(high))

    @classmethod
    def from_contrast_limits(cls, limits: Sequence[float]) -> "StackNormalizer":
        """Use napari's contrast limits, i.e. exactly what the user sees."""
        low, high = float(limits[0]), float(limits[1])
        if not high > low:
            high = low + 1.0
        return cls(low, high)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Map a raw (Y, X) or (Y, X, C) frame to (Y, X, 3) float32 in [0, 1].

        Gray frames are repeated to 3 channels; alpha (RGBA) is dropped; NaN maps to 0.
        """
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, clipped to 1 below
            out = np.asarray(frame, dtype=np.float32)
        if out.ndim == 3:
            out = out[..., :3]
            if out.shape[-1] == 1:
                out = np.repeat(out, 3, axis=-1)
            elif out.shape[-1] == 2:
                raise InputError("frames with 2 channels are neither gray nor RGB")
        elif out.ndim == 2:
            out = np.repeat(out[..., None], 3, axis=-1)
        else:
            raise InputError(f"a frame must be (Y, X) or (Y, X, C), got shape {out.shape}")
        with np.errstate(over="ignore", invalid="ignore"):  # inf - inf = NaN: mapped to 0 below
            out = (out - self.low) / (self.high - self.low)
        np.clip(out, 0.0, 1.0, out=out)
        np.nan_to_num(out, copy=False, nan=0.0)
        return out


class FrameStack:
    """Frames of an N-d array along one axis, read lazily.

    Parameters
    ----------
    data : array-like
        numpy, dask, zarr or memory-mapped array. Layouts: (Y, X) or (Y, X, C) for a
        single image; (N, Y, X) or (N, Y, X, C) for a stack; (T, Z, Y, X[, C]) for 4-D
        data, where ``axis`` picks the axis to walk and ``fixed`` the index on the other.
    axis : int
        Axis of ``data`` along which frames are taken (time or depth).
    rgb : bool, optional
        Whether the last axis holds colour channels; guessed (last axis of 3 or 4 on a
        >= 3-D array) when None.
    fixed : dict[int, int], optional
        Index to hold on every other leading (non-spatial) axis, e.g. ``{0: t}`` to walk
        Z within time point ``t`` of a TZYX array.
    normalizer : StackNormalizer, optional
        Intensity mapping; computed with :meth:`StackNormalizer.from_stack` when None.
    """

    def __init__(
        self,
        data: Any,
        axis: int = 0,
        rgb: bool | None = None,
        fixed: dict[int, int] | None = None,
        normalizer: StackNormalizer | None = None,
    ):
        shape = tuple(int(s) for s in data.shape)
        if rgb is None:
            rgb = len(shape) >= 3 and shape[-1] in (3, 4)
        n_spatial = 3 if rgb else 2
        if len(shape) < n_spatial:
            raise InputError(f"an image needs at least {n_spatial} dimensions, got shape {shape}")
        if any(s == 0 for s in shape):
            raise InputError(f"the data is empty (shape {shape})")
        leading = len(shape) - n_spatial
        fixed = dict(fixed or {})
        self._single = leading == 0
        if not self._single:
            if axis < 0:
                axis += leading
            if not 0 <= axis < leading:
                raise InputError(
                    f"axis {axis} is not a frame axis of data with shape {shape} "
                    f"({leading} non-spatial axis/axes)"
                )
            others = [a for a in range(leading) if a != axis]
            unfixed = [a for a in others if a not in fixed]
            if unfixed:
                raise InputError(
                    f"data with shape {shape} has {leading} non-spatial axes; say which index to hold "
                    f"on axis/axes {unfixed} (e.g. the time point when propagating along Z)"
                )
            for a in others:
                if not 0 <= fixed[a] < shape[a]:
                    raise InputError(f"index {fixed[a]} is out of range for axis {a} of size {shape[a]}")
        self.data = data
        self.axis = axis
        self.rgb = bool(rgb)
        self.fixed = {a: fixed[a] for a in range(leading) if a != axis} if not self._single else {}
        self.n_frames = 1 if self._single else shape[axis]
        self.frame_shape: tuple[int, int] = shape[leading : leading + 2]
        self.dtype = data.dtype
        self.normalizer = normalizer if normalizer is not None else StackNormalizer.from_stack(self)

    @property
    def shape(self) -> tuple[int, int]:
        """(Y, X) size of one frame."""
        return self.frame_shape

    def index(self, frame: int) -> tuple:
        """The full index into ``data`` of frame ``frame`` (for writing labels alike)."""
        if self._single:
            return ()
        leading = len(self.data.shape) - (3 if self.rgb else 2)
        return tuple(frame if a == self.axis else self.fixed[a] for a in range(leading))

    def raw(self, frame: int) -> np.ndarray:
        """Frame ``frame`` as stored: (Y, X) or (Y, X, C), original dtype."""
        if not 0 <= frame < self.n_frames:
            raise InputError(f"frame {frame} is outside the stack (0..{self.n_frames - 1})")
        return np.asarray(self.data[self.index(frame)])

    def __getitem__(self, frame: int) -> np.ndarray:
        """Frame ``frame`` normalised: (Y, X, 3) float32 in [0, 1]."""
        return self.normalizer(self.raw(frame))

    def __len__(self) -> int:
        return self.n_frames

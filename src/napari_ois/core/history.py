"""The undo history's records: one :class:`Action` per undoable step, with packed masks.

Shared by the session (which records and applies them), the multi-object runs, the
autosave journal (which writes and replays them) and the soak test (which counts them).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .boxes import BoxPrompt
from .clicks import Click


def pack_mask(mask: np.ndarray) -> bytes:
    """Compress a (Y, X) bool mask; masks are mostly runs, so this is ~100x smaller."""
    return zlib.compress(np.packbits(mask, axis=None).tobytes(), 1)


def unpack_mask(blob: bytes, shape: tuple[int, int]) -> np.ndarray:
    """The (Y, X) bool mask that :func:`pack_mask` compressed."""
    bits = np.frombuffer(zlib.decompress(blob), dtype=np.uint8)
    return np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)


@dataclass
class Action:
    """One undoable step: a click, a mask set, a propagation run or a clear.

    ``masks`` maps frame -> (packed mask before, packed mask after) of ``object_id``;
    ``clicks``, ``boxes``, ``keyframes`` and ``probs`` hold the before/after state they touched
    (``probs`` as :class:`~napari_ois.core.packed_prob.PackedProb`; ``np.asarray`` unpacks).
    A multi-object run is a group: ``parts`` holds one such action per object
    (``object_id`` is then 0 unless the run has one object); ``record=False`` runs
    keep no masks and are not undoable.
    """

    kind: str
    object_id: int
    masks: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    clicks: dict[int, tuple[list[Click], list[Click]]] = field(default_factory=dict)
    boxes: dict[int, tuple[BoxPrompt | None, BoxPrompt | None]] = field(default_factory=dict)
    keyframes: tuple[frozenset, frozenset] | None = None
    probs: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    scores: dict[int, tuple[float | None, float | None]] = field(default_factory=dict)
    parts: list["Action"] = field(default_factory=list)
    record: bool = True

    @property
    def nbytes(self) -> int:
        """Bytes its packed masks and probabilities hold (what the undo budget counts)."""
        held = sum(len(b) + len(a) for b, a in self.masks.values())
        held += sum(getattr(s, "nbytes", 0) for states in self.probs.values() for s in states if s is not None)
        return held + sum(p.nbytes for p in self.parts)

    @property
    def frames(self) -> list[int]:
        """Frames whose labels this action changed."""
        return sorted(set(self.masks).union(*(p.masks for p in self.parts)))

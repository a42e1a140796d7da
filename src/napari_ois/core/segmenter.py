"""The Segmenter interface every backend implements, and the bounded embedding cache.

Expensive once, cheap per click: :meth:`Segmenter.encode` runs the heavy part on
one frame and its result is cached per frame; :meth:`Segmenter.predict` reruns
only the light prompt path for each click.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Protocol, Sequence, runtime_checkable

import numpy as np

from .clicks import Click


@dataclass
class Prediction:
    """A segmenter's answer for one object on one frame.

    Attributes
    ----------
    prob : np.ndarray
        (Y, X) float32 foreground probability in [0, 1].
    score : float
        Quality estimate in [0, 1] (higher = more confident); shown per frame so
        users can jump to the worst one.
    """

    prob: np.ndarray
    score: float

    def mask(self, threshold: float = 0.5) -> np.ndarray:
        """(Y, X) bool mask ``prob > threshold``."""
        return self.prob > threshold


@dataclass
class Reference:
    """The exemplar for propagation: a neighbouring frame's embedding and mask.

    Attributes
    ----------
    embedding : Any
        What :meth:`Segmenter.encode` returned for the reference frame (taken from
        the cache: no second encoder pass).
    mask : np.ndarray
        (Y, X) bool mask of the object on the reference frame.
    """

    embedding: Any
    mask: np.ndarray


@runtime_checkable
class Segmenter(Protocol):
    """What a backend provides.

    ``image`` arrays are (Y, X, 3) float32 in [0, 1], already normalised
    consistently over the whole stack (see :class:`~napari_ois.core.frames.StackNormalizer`).

    Optional method (not a protocol member, so backends without it still match):
    ``frame_depth(embedding) -> np.ndarray | None`` gives the (Y, X) float relative
    depth of an encoded frame (larger = closer), or None when the backend has no
    depth cue. Multi-object propagation uses it to decide overlaps by order; call it
    through :func:`frame_depth`.
    """

    name: str

    def encode(self, image: np.ndarray) -> Any:
        """Run the heavy per-frame part once; the result must have ``nbytes`` (int)."""

    def predict(
        self,
        embedding: Any,
        clicks: Sequence[Click],
        prev_prob: np.ndarray | None = None,
        reference: Reference | None = None,
    ) -> Prediction:
        """Segment one object on the encoded frame.

        Parameters
        ----------
        embedding : Any
            Result of :meth:`encode` for this frame.
        clicks : sequence of Click
            Clicks on this frame for this object, oldest first (may be empty when a
            reference is given: zero-click propagation).
        prev_prob : np.ndarray, optional
            (Y, X) float32 probability from the previous interaction on this frame, or
            the propagated mask being corrected.
        reference : Reference, optional
            Neighbouring frame's embedding and mask (propagation exemplar).
        """


def frame_depth(segmenter: Segmenter, embedding: Any) -> np.ndarray | None:
    """(Y, X) float32 depth of an encoded frame (larger = closer), or None without a depth cue.

    Parameters
    ----------
    segmenter : Segmenter
        Backend that encoded the frame; its optional ``frame_depth`` method is used.
    embedding : Any
        What ``segmenter.encode`` returned for the frame.
    """
    method = getattr(segmenter, "frame_depth", None)
    if method is None:
        return None
    depth = method(embedding)
    return None if depth is None else np.asarray(depth, dtype=np.float32)


def embedding_nbytes(embedding: Any) -> int:
    """Bytes held by an embedding; backends expose it as an ``nbytes`` attribute."""
    try:
        return int(embedding.nbytes)
    except AttributeError:
        raise TypeError(f"{type(embedding).__name__} embeddings must define nbytes") from None


class EmbeddingCache:
    """Per-frame embeddings, least-recently-used first out, bounded by bytes.

    Parameters
    ----------
    segmenter : Segmenter
        Backend whose ``encode`` fills the cache.
    load_frame : callable
        ``load_frame(key) -> (Y, X, 3) float32`` image; called only on a miss.
    max_bytes : int
        Budget; the most recently used entry is always kept even if larger.
    disk : DiskEmbeddingStore, optional
        Second tier: entries pushed out of memory are written there and read back on
        a later miss instead of encoding the frame again.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        load_frame: Callable[[Hashable], np.ndarray],
        max_bytes: int = 512 * 2**20,
        disk=None,
    ):
        self.segmenter = segmenter
        self.load_frame = load_frame
        self.max_bytes = int(max_bytes)
        self.disk = disk
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.nbytes = 0
        self.encode_calls = 0
        self._lock = threading.RLock()
        self._pending: dict[Hashable, threading.Event] = {}

    def get(self, key: Hashable) -> Any:
        """The embedding of frame ``key``, encoding it on a miss.

        Thread-safe: a worker may encode a frame while the GUI thread reads others; the
        encode itself runs outside the lock, and two threads asking for the same missing
        frame encode it once (the second waits for the first).
        """
        while True:
            with self._lock:
                hit = self._lookup(key)
                if hit is not None:
                    return hit
                pending = self._pending.get(key)
                if pending is None:
                    pending = self._pending[key] = threading.Event()
                    break
            pending.wait()  # another thread is encoding it: take its result (or retry)
        try:
            embedding = self.disk.get(key) if self.disk is not None else None
            if embedding is None:
                embedding = self.segmenter.encode(self.load_frame(key))
                self.encode_calls += 1
            with self._lock:
                size = embedding_nbytes(embedding)
                self._entries[key] = (embedding, size)
                self.nbytes += size
                self._evict()
        finally:
            with self._lock:
                self._pending.pop(key).set()
        return embedding

    def _lookup(self, key: Hashable) -> Any | None:
        """The cached embedding (most recently used now), or None; call with the lock held."""
        if key not in self._entries:
            return None
        self._entries.move_to_end(key)
        embedding, counted = self._entries[key]
        # An embedding may grow after encoding (the ois backend adds zoom-in crops
        # to it): count it again, so the budget holds.
        size = embedding_nbytes(embedding)
        if size != counted:
            self._entries[key] = (embedding, size)
            self.nbytes += size - counted
            self._evict()
        return embedding

    def is_ready(self, key: Hashable) -> bool:
        """Whether :meth:`get` would return without encoding (in memory or on the disk tier)."""
        with self._lock:
            if key in self._entries:
                return True
        return self.disk is not None and key in self.disk

    def _evict(self) -> None:
        """Drop the least recently used embeddings (to disk when there is a disk tier) until within budget."""
        while self.nbytes > self.max_bytes and len(self._entries) > 1:
            old_key, (old, old_size) = self._entries.popitem(last=False)
            self.nbytes -= old_size
            if self.disk is not None:
                self.disk.put(old_key, old)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every cached embedding (e.g. after the backend or normalisation changed)."""
        with self._lock:
            self._entries.clear()
            self.nbytes = 0
        if self.disk is not None:
            self.disk.clear()

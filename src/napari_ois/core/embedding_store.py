"""The on-disk tier of the embedding cache: encoded frames that left memory, kept as files.

Encoding is the expensive part of a frame (the whole backbone for ``ois``; Lab
conversion, edge weights and geodesic costs for ``classical``). When the in-memory
budget of :class:`~napari_ois.core.segmenter.EmbeddingCache` pushes a frame out, this
store keeps it on disk, so scrubbing back through a long video or re-propagating after a
correction reads a file instead of re-encoding.

One file per frame, written to a temporary name and renamed (a crash never leaves a
half-written entry), least recently used deleted first beyond ``max_bytes``. The folder
belongs to one session (backend, weights and normalisation): :meth:`clear` empties it
when any of them changes, and the files are only ever read back by the process that
wrote them (they are pickles: never point this at a folder others can write).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any, Hashable

import torch

from .errors import InputError


class DiskEmbeddingStore:
    """Least-recently-used embedding files in ``folder``, bounded by bytes.

    Parameters
    ----------
    folder : str or Path
        Parent folder; a private sub-folder is created inside it (and removed by :meth:`close`).
    max_bytes : int
        Budget for the files together.
    """

    def __init__(self, folder: str | Path, max_bytes: int = 4 * 2**30):
        parent = Path(folder).expanduser()
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix="napari-ois-embeddings-", dir=parent))
        except OSError as exc:
            raise InputError(f"cannot use {parent} for the embedding cache: {exc.strerror or exc}") from None
        # The folder goes with the store (also when a session is dropped without close()).
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.folder), True)
        self.max_bytes = int(max_bytes)
        self._files: OrderedDict[Hashable, tuple[Path, int]] = OrderedDict()
        self.nbytes = 0
        self.writes = 0
        self.reads = 0

    def _path(self, key: Hashable) -> Path:
        # Keys are frame indices or tuples of them; a digest keeps file names short and safe.
        return self.folder / (hashlib.sha1(repr(key).encode()).hexdigest()[:20] + ".pt")

    def __contains__(self, key: Hashable) -> bool:
        return key in self._files

    def __len__(self) -> int:
        return len(self._files)

    def put(self, key: Hashable, embedding: Any) -> bool:
        """Write ``embedding`` (any picklable object, torch tensors included); False if the disk refused."""
        if key in self._files:
            self._files.move_to_end(key)
            return True
        path = self._path(key)
        tmp = path.with_suffix(".tmp")
        try:
            torch.save(embedding, tmp)
            os.replace(tmp, path)
        except (OSError, RuntimeError):
            # A full or read-only disk only costs speed: the frame is encoded again when needed.
            tmp.unlink(missing_ok=True)
            return False
        size = path.stat().st_size
        self._files[key] = (path, size)
        self.nbytes += size
        self.writes += 1
        while self.nbytes > self.max_bytes and len(self._files) > 1:
            _, (old, old_size) = self._files.popitem(last=False)
            old.unlink(missing_ok=True)
            self.nbytes -= old_size
        return True

    def get(self, key: Hashable) -> Any | None:
        """The stored embedding of ``key``, or None (never stored, evicted, or unreadable)."""
        if key not in self._files:
            return None
        path, size = self._files[key]
        try:
            embedding = torch.load(path, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - any unreadable entry (torn, truncated, foreign) is just a miss
            self._files.pop(key)
            self.nbytes -= size
            path.unlink(missing_ok=True)
            return None
        self._files.move_to_end(key)
        self.reads += 1
        return embedding

    def clear(self) -> None:
        """Delete every file (the embeddings no longer match the backend or the normalisation)."""
        for path, _ in self._files.values():
            path.unlink(missing_ok=True)
        self._files.clear()
        self.nbytes = 0

    def close(self) -> None:
        """Delete the files and the private folder."""
        self._files.clear()
        self.nbytes = 0
        self._finalizer()


__all__ = ["DiskEmbeddingStore"]

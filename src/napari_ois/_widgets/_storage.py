"""Storage of the widget: labels in memory or on disk, and the on-disk embedding cache.

Labels above a size go into a zarr array on disk (see :mod:`napari_ois.core.io.scratch_labels`); every
whole-array operation of the widget (restore, Start fresh) is done here plane by plane,
so neither storage is ever loaded whole. The embedding cache's disk tier
(:class:`~napari_ois.core.embedding_store.DiskEmbeddingStore`) lives in the autosave
folder, on the data's disk, or in a temporary folder when there is no autosave.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from napari_ois.core.embedding_store import DiskEmbeddingStore
from napari_ois.core.errors import OISError
from napari_ois.core.io import scratch_labels

from . import _layers

#: Name prefix of the embedding folders DiskEmbeddingStore makes (left behind by a crash).
_EMBEDDINGS_PREFIX = "napari-ois-embeddings-"


def plane_keys(shape: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Leading-axes indices of the (Y, X) planes of labels shaped ``shape`` (``()`` for 2-D)."""
    return itertools.product(*(range(int(n)) for n in shape[:-2]))


class StorageMixin:
    """Labels storage and the embedding disk cache of :class:`AnnotateObjectsWidget`."""

    scratch_dir: str | Path | None = None  # parent of on-disk labels (None: system temp)

    # ------------------------------------------------------------ labels
    @property
    def labels_on_disk_mb(self) -> int:
        """Labels larger than this (MiB, uint32) get an objects layer on disk; 0 = always."""
        return self.labels_disk_spin.value()

    def _ensure_objects_layer(self):
        return _layers.ensure_objects_layer(self.viewer, self.image_layer, self.labels_on_disk_mb, self.scratch_dir)

    def _show_storage_state(self) -> None:
        layer = self.labels_layer
        if layer is None:
            text, tip = "", ""
        elif _layers.labels_on_disk(layer):
            folder = layer.metadata.get(scratch_labels.FOLDER_KEY)
            text, tip = "(now: on disk)", f"The objects layer is a zarr array in {folder}"
        else:
            text, tip = "(now: in memory)", f"The objects layer holds {layer.data.nbytes / 2**20:.0f} MB in memory"
        self.labels_storage_label.setText(text)
        self.labels_storage_label.setToolTip(tip)

    def _fill_labels(self, read_plane: Callable[[tuple[int, ...]], np.ndarray] | None) -> None:
        """Write every plane of the objects layer: ``read_plane(key)``, or zeros when None.

        One plane at a time, for numpy and zarr alike: a long stack is never held twice.
        """
        data = self.labels_layer.data
        zeros = np.zeros(data.shape[-2:], dtype=data.dtype) if read_plane is None else None
        for key in plane_keys(data.shape):
            data[key if key else ...] = zeros if read_plane is None else read_plane(key)
        self._refresh_labels()

    # ------------------------------------------------------ embeddings
    def _disk_cache_settings(self) -> dict:
        """``disk_cache_dir`` / ``disk_cache_mb`` of the config of new sessions."""
        folder = self._disk_cache_parent() if self.disk_cache_check.isChecked() else None
        return {"disk_cache_dir": None if folder is None else str(folder),
                "disk_cache_mb": self.disk_cache_spin.value()}

    def _disk_cache_parent(self) -> Path:
        """The autosave folder (next to the data), else the system temp folder."""
        store = self._autosave
        return store.folder if store is not None and store.active else Path(tempfile.gettempdir())

    def _on_disk_cache_toggled(self, checked: bool) -> None:
        """Give the sessions a disk tier now (or drop it): no rebuild, nothing else changes."""
        self._close_disk_caches()
        if checked:
            self._open_disk_caches()

    def _on_disk_cache_mb_changed(self, mb: int) -> None:
        for session in self._sessions.values():
            disk = session.cache.disk
            if disk is not None:
                disk.max_bytes = int(mb) * 2**20  # the next write evicts down to it
            session.config.disk_cache_mb = int(mb)

    def _open_disk_caches(self) -> None:
        """A disk tier for each session without one (where :meth:`_disk_cache_parent` says)."""
        if not self.disk_cache_check.isChecked():
            return
        settings = self._disk_cache_settings()
        for session in self._sessions.values():
            if session.cache.disk is not None:
                continue
            try:
                session.cache.disk = DiskEmbeddingStore(settings["disk_cache_dir"],
                                                        settings["disk_cache_mb"] * 2**20)
            except OISError as exc:
                self._error(f"embeddings are cached in memory only: {exc}", warning=True)
                return
            session.config.disk_cache_dir = settings["disk_cache_dir"]
            session.config.disk_cache_mb = settings["disk_cache_mb"]

    def _close_disk_caches(self) -> None:
        """Delete the sessions' embedding files (before their folder is set aside, or on Uncheck)."""
        for session in self._sessions.values():
            disk = session.cache.disk
            if disk is not None:
                with session.lock:
                    session.cache.disk = None
                    disk.close()
                session.config.disk_cache_dir = None


def remove_stale_embeddings(folder: Path) -> None:
    """Delete embedding folders a crashed napari left in an autosave folder.

    They are only ever read by the process that wrote them (see DiskEmbeddingStore), so
    those of a process that is gone are dead weight, possibly gigabytes of it.
    """
    for path in Path(folder).glob(_EMBEDDINGS_PREFIX + "*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)

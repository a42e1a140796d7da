"""Lazy readers for videos, TIFFs, frame folders, images and zarr; atomic labels writers; sessions.

Everything here is numpy / dask / imageio(-ffmpeg) / tifffile / zarr: no napari, no Qt.

Readers never load a whole stack: a video is decoded frame by frame by ffmpeg
(:class:`VideoReader`, wrapped in a dask array with one frame per chunk), a TIFF is
memory-mapped (or read through tifffile's zarr store when compressed), a folder of
frames is a dask array that reads one file per frame.

Writers stream frame by frame and write to a temporary sibling that replaces the target
only once it is complete, so an error never leaves a half-written or clobbered output.

Modules
-------
suffixes
    File suffixes by which inputs and outputs are recognised.
frame_sequence, frame_files
    Base of lazily indexed frame sequences; listing a folder's frames in order.
video_probe, video
    Probing a video with ffmpeg; :class:`VideoReader` (decoding and seeking).
images
    Single image files, folders of frames, TIFF and zarr inputs, :func:`open_image_data`.
zarr_arrays
    Recognising zarr folders and finding the array a zarr path stands for.
labels, label_writers, atomic_target
    :func:`read_labels`; :func:`write_labels`, :func:`write_ctc`; atomic replacement.
sessions
    :func:`session_paths`, :func:`write_session`, :func:`read_session`, :class:`SavedSession`.
"""

from __future__ import annotations

from .frame_files import list_frame_files
from .images import ImageSequence, open_image_data, read_image_file
from .label_writers import write_ctc, write_labels
from .labels import read_labels
from .sessions import SESSION_STEM, SESSION_VERSION, SavedSession, read_session, session_paths, write_session
from .suffixes import FRAME_SUFFIXES, IMAGE_SUFFIXES, TIFF_SUFFIXES, VIDEO_SUFFIXES, ZARR_SUFFIX
from .video import VideoReader
# importable here as before the split; VideoReader looks it up in .video, so patch it there
from .video_probe import probe_video  # noqa: F401

__all__ = [
    "FRAME_SUFFIXES",
    "IMAGE_SUFFIXES",
    "SESSION_STEM",
    "SESSION_VERSION",
    "TIFF_SUFFIXES",
    "VIDEO_SUFFIXES",
    "ZARR_SUFFIX",
    "ImageSequence",
    "SavedSession",
    "VideoReader",
    "list_frame_files",
    "open_image_data",
    "read_image_file",
    "read_labels",
    "read_session",
    "session_paths",
    "write_ctc",
    "write_labels",
    "write_session",
]

"""Random access to the frames of a video file, decoded on demand by ffmpeg."""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import InputError
from .frame_sequence import FrameSequence
from .video_probe import probe_video, VideoProbe


class VideoReader(FrameSequence):
    """Random access to the frames of a video file, decoded on demand by ffmpeg.

    Frames come out as (Y, X, 3) uint8 RGB; the reader behaves as a read-only array of
    shape (T, Y, X, 3). Reading forward reuses one open ffmpeg stream; a jump backwards
    or far ahead restarts ffmpeg with an accurate seek (``-ss`` before the input, at a
    time between the wanted frame's presentation time and the previous one's), so
    scrubbing a long video does not decode it from the start. A small LRU keeps the
    latest decoded frames. All reads hold a lock: napari and a worker thread may read
    concurrently.

    Parameters
    ----------
    path : str or Path
        The video file.
    cache_frames : int
        How many decoded frames the LRU keeps.
    max_skip : int
        Read forward through at most this many frames rather than restart ffmpeg:
        decoding a few frames is cheaper than a restart plus a seek.
    seek : bool
        Use ``-ss`` seeking; False restarts from frame 0 and skips (slow, but exact
        whatever the container does with timestamps).

    Raises
    ------
    InputError
        The file is missing, not a video, truncated or damaged.
    """

    def __init__(self, path: str | Path, cache_frames: int = 8, max_skip: int = 24, seek: bool = True):
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise InputError(f"video file not found: {self.path}")
        self.cache_frames = max(1, int(cache_frames))
        self.max_skip = max(0, int(max_skip))
        probe = probe_video(self.path)
        self.fps = probe.fps
        self._seek_times = probe.seek_times if seek else None
        self.dtype = np.dtype(np.uint8)
        self._init_state()
        self._n_frames = probe.n_frames
        self.shape = (probe.n_frames, 0, 0, 3)  # frame size comes with the first decode
        self._check_truncation(probe)
        with self._lock:
            self._open(0)
            if self._seek_times is not None and not self._seek_is_exact():
                # some containers (e.g. MPEG-TS) land elsewhere: restart and skip instead
                warnings.warn(f"seeking in {self.path} is not frame-accurate; frames will be "
                              "decoded from the start (slower random access)", stacklevel=2)
                self._seek_times = None
        # decoding the last frame finds a damaged tail now rather than mid-propagation
        # (only when seeking is possible: otherwise it would decode the whole video)
        if probe.n_frames > 1 and self._seek_times is not None:
            self.read(probe.n_frames - 1)

    def _init_state(self) -> None:
        self._lock = threading.RLock()
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._gen = None
        self._pos = 0  # index of the frame the open stream yields next

    def _check_truncation(self, probe: VideoProbe) -> None:
        if probe.declared_duration is None or probe.stream_end is None or not probe.fps:
            return
        missing = probe.declared_duration - probe.stream_end
        if missing > max(2.5 / probe.fps, 0.02 * probe.declared_duration):
            raise InputError(
                f"video {self.path} looks truncated: its header announces "
                f"{probe.declared_duration:.2f} s but frames stop at {probe.stream_end:.2f} s "
                f"({probe.n_frames} frames readable)"
            )

    # -- ffmpeg stream handling (callers hold the lock) --------------------------------

    def _seek_is_exact(self, probe_frame: int = 8) -> bool:
        """Compare a frame reached by seeking with the same frame decoded from the start.

        Cheap (a few frames near the start) and run once per file, so a container whose
        timestamps mislead ``-ss`` falls back to exact, slower skipping.
        """
        k = min(self._n_frames - 1, probe_frame)
        if k < 1:
            return True
        if self._gen is None or self._pos != 0:
            self._open(0)
        for i in range(k + 1):
            reference = self._next_frame()
            self._remember(i, reference)
        self._open(k)
        sought = self._next_frame()
        self._close_stream()  # its position is only known if the seek was exact
        return float(np.abs(sought.astype(np.int16) - reference).mean()) < 1.0

    def _open(self, index: int) -> None:
        """(Re)start ffmpeg so that the next frame it yields is ``index``."""
        import imageio_ffmpeg

        self._close_stream()
        input_params = ["-nostdin"]
        start = 0
        if index > 0 and self._seek_times is not None:
            input_params += ["-ss", f"{self._seek_times[index]:.6f}"]
            start = index
        # passthrough: one output frame per decoded frame, never duplicated or dropped
        # to fit a constant frame rate, so frame indices match the probed packets
        gen = imageio_ffmpeg.read_frames(
            self.path, input_params=input_params,
            output_params=["-map", "0:V:0", "-fps_mode", "passthrough"],
        )
        try:
            meta = next(gen)
        except (RuntimeError, OSError, StopIteration) as exc:
            gen.close()
            raise InputError(f"cannot decode video {self.path}: {str(exc).splitlines()[0]}") from None
        if self.shape[1] == 0:
            width, height = meta["size"]
            self.shape = (self._n_frames, int(height), int(width), 3)
        self._gen, self._pos = gen, start

    def _close_stream(self) -> None:
        if self._gen is not None:
            self._gen.close()  # imageio-ffmpeg terminates the ffmpeg process
            self._gen = None

    def _next_frame(self) -> np.ndarray:
        _, height, width, _ = self.shape
        try:
            raw = next(self._gen)
        except StopIteration:
            raw = None
        except (RuntimeError, OSError) as exc:
            raise InputError(f"video {self.path} cannot be decoded at frame {self._pos}: "
                             f"{str(exc).splitlines()[0]}") from None
        if raw is None or len(raw) != height * width * 3:
            self._close_stream()
            raise InputError(
                f"video {self.path} ends at frame {self._pos} although {self._n_frames} frames "
                "were announced: the file may be truncated or damaged"
            )
        frame = np.frombuffer(raw, np.uint8).reshape(height, width, 3)
        self._pos += 1
        return frame

    def _decode(self, index: int) -> np.ndarray:
        behind = self._gen is None or index < self._pos
        far_ahead = index > self._pos + self.max_skip and self._seek_times is not None
        if behind or far_ahead:
            self._open(index)  # without seeking this restarts at 0 and we skip forward
        while self._pos < index:
            self._remember(self._pos, self._next_frame())
        frame = self._next_frame()
        if self._pos - 1 != index:  # pragma: no cover - defensive
            raise InputError(f"video {self.path}: lost track of frame {index}")
        return frame

    def _remember(self, index: int, frame: np.ndarray) -> None:
        self._cache[index] = frame
        self._cache.move_to_end(index)
        while len(self._cache) > self.cache_frames:
            self._cache.popitem(last=False)

    # -- public ------------------------------------------------------------------------

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as a new (Y, X, 3) uint8 RGB array."""
        if not 0 <= index < self._n_frames:
            raise IndexError(f"frame {index} is outside 0..{self._n_frames - 1}")
        with self._lock:
            frame = self._cache.get(index)
            if frame is None:
                frame = self._decode(index)
                self._remember(index, frame)
            else:
                self._cache.move_to_end(index)
            # a copy: callers may write into it, the cached frame must stay intact
            return frame.copy()

    def close(self) -> None:
        """Stop the ffmpeg process (the reader reopens it on the next read)."""
        with self._lock:
            self._close_stream()
            self._cache.clear()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # ffmpeg must not outlive the reader
        try:
            self._close_stream()
        except Exception:
            pass

    # a reader can travel to another process (dask, multiprocessing): the stream cannot
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("_lock", "_cache", "_gen", "_pos"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_state()

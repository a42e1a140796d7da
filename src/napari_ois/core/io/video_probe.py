"""Probing a video with ffmpeg: frame count, per-frame seek times, fps, damage reports.

The container is demuxed, not decoded, so probing is fast even for long videos.
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass

from ..errors import InputError


@dataclass
class VideoProbe:
    n_frames: int
    fps: float | None
    seek_times: list[float] | None  # per frame, a time (s) between its pts and the previous one's
    stream_end: float | None  # end of the last video packet (s)
    declared_duration: float | None  # what the header claims for the video (s)


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_TAG_DURATION_RE = re.compile(r"^\s*DURATION\s*:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", re.M)
_FPS_RE = re.compile(r"(\d+(?:\.\d+)?)(k?)\s+(fps|tbr)")
_TB_RE = re.compile(r"^#tb 0:\s*(\d+)/(\d+)", re.M)


def _hms(match: re.Match) -> float:
    h, m, s = match.groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def _ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class _RotationNoticeFilter(logging.Filter):
    """Drop imageio-ffmpeg's notice that a rotated video's frames differ in size from the
    stored ones: expected (frames come out upright) and otherwise repeated at every seek."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("The frame size for reading")


logging.getLogger("imageio_ffmpeg").addFilter(_RotationNoticeFilter())


# demuxer complaints that mean packets are missing or cut: the file is truncated/damaged
_CUT_MARKERS = ("packet corrupt", "ended prematurely", "truncating packet", "partial file")
_DAMAGE_MARKERS = _CUT_MARKERS + ("moov atom not found", "invalid data found")
_LOG_PREFIX_RE = re.compile(r"^\[[^\]]*\]\s*")


def _ffmpeg_reason(stderr: str) -> str:
    """The most telling line of an ffmpeg log: the first damage report, else the last line."""
    lines = [_LOG_PREFIX_RE.sub("", ln.strip()) for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("frame=")]
    for ln in lines:
        if any(m in ln.lower() for m in _DAMAGE_MARKERS):
            return ln
    return lines[-1] if lines else "no output from ffmpeg"


def probe_video(path: str) -> VideoProbe:
    """Demux (not decode) the first video stream to count its packets and get their times.

    ``-c copy -f framecrc`` reads the container only, so it is fast even for long
    videos, and it lists every packet's presentation time: exact frame times make
    seeking frame-accurate also for variable frame rates, and the packet count stops
    where a truncated file stops.
    """
    cmd = [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path,
           "-map", "0:V:0", "-c", "copy", "-f", "framecrc", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise InputError(f"cannot read video {path} ({_ffmpeg_reason(err)}); "
                         "the file may be truncated, damaged or not a video")
    if any(m in err.lower() for m in _CUT_MARKERS):
        raise InputError(f"video {path} is truncated or damaged ({_ffmpeg_reason(err)})")
    n_frames, seek_times, stream_end = _parse_packets(out)
    if n_frames == 0:
        raise InputError(f"video {path} holds no readable frame (the file may be truncated or damaged)")
    fps, declared = _parse_video_header(err.split("Stream mapping:")[0])
    return VideoProbe(n_frames, fps, seek_times, stream_end, declared)


def _parse_packets(framecrc: str) -> tuple[int, list[float] | None, float | None]:
    """Packet count, per-frame seek times and stream end (s) from ``framecrc`` output.

    Lines are ``stream, dts, pts, duration, size, checksum[, ...]`` in the stream time
    base (``#tb 0: num/den``). Seek times are None when presentation times are missing
    or repeated, since then they cannot name a frame.
    """
    tb = _TB_RE.search(framecrc)
    packets = []
    for line in framecrc.splitlines():
        if line.startswith("0,"):
            fields = [f.strip() for f in line.split(",")]
            packets.append((int(fields[2]), int(fields[3])))  # (pts, duration)
    no_pts = -(2**63)
    if not packets or tb is None or any(p == no_pts for p, _ in packets):
        return len(packets), None, None
    unit = int(tb.group(1)) / int(tb.group(2))
    order = sorted(p for p, _ in packets)
    if len(set(order)) != len(order):
        return len(packets), None, None
    # frame i is the first frame at or after a time between its pts and the previous one's
    seek_times = [0.0] + [(a + b) / 2 * unit for a, b in zip(order[:-1], order[1:])]
    last_pts, last_duration = max(packets)
    return len(packets), seek_times, (last_pts + max(last_duration, 0)) * unit


def _parse_video_header(in_header: str) -> tuple[float | None, float | None]:
    """(fps, declared duration in s) of the first real video stream in ffmpeg's input listing.

    The stream's own ``DURATION`` tag (mkv/webm) is preferred; the container duration
    spans every stream (audio may be longer), so it is used only for a one-stream file.
    Cover art ("attached pic") streams are skipped.
    """
    blocks = re.split(r"(?m)^(?=\s*Stream #)", in_header)
    video = next((b for b in blocks[1:] if "Video:" in b.splitlines()[0]
                  and "attached pic" not in b.splitlines()[0]), None)
    if video is None:
        return None, None
    fps = None
    for m in _FPS_RE.finditer(video.splitlines()[0]):  # "..., 25 fps, 25 tbr, 90k tbn"
        fps = float(m.group(1)) * (1000 if m.group(2) else 1)
        if fps > 0:
            break
    declared = None
    tag = _TAG_DURATION_RE.search(video)
    container = _DURATION_RE.search(blocks[0])
    if tag:
        declared = _hms(tag)
    elif container and len(blocks) == 2:
        declared = _hms(container)
    return (fps or None), declared

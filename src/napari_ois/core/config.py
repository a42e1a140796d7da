"""One typed configuration for the API, the CLI and the widget; saved with every export."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .errors import InputError
from .backends import DEFAULT_BACKEND

DIRECTIONS = ("forward", "backward", "both")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class AnnotationConfig:
    """Settings of an annotation session.

    Attributes
    ----------
    backend : str
        Segmenter name (``ois``, the default; ``classical``; ``grabcut-cv``).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps`` (torch backends only).
    checkpoint : str or None
        Model checkpoint for the ``ois`` backend; None = the packaged default.
    threshold : float
        Probability above which a pixel belongs to the object.
    cache_mb : int
        Memory budget of the per-frame embedding cache.
    disk_cache_dir : str or None
        Folder for the on-disk tier of the embedding cache (frames pushed out of memory
        are kept there instead of being encoded again); None = memory only.
    disk_cache_mb : int
        Budget of the on-disk tier.
    undo_mb : float
        Memory budget of the undo/redo history (packed masks and probabilities); the
        oldest steps are forgotten beyond it (the latest step always stays undoable).
    agree_iou : float
        Re-propagation after a correction stops once the new masks agree with the
        previous ones (IoU >= this) ...
    agree_frames : int
        ... on this many consecutive frames.
    min_score : float
        Propagation stops in a direction when the object is lost (empty mask) or the
        frame's quality score falls below this; 0 disables the score check. With the
        ``ois`` backend the score is a predicted IoU (core/quality.py), which stays above
        about 0.67 for any non-empty mask.
    axis : int
        Axis of the image data walked by propagation (time or depth).
    """

    backend: str = DEFAULT_BACKEND
    device: str = "auto"
    checkpoint: str | None = None
    threshold: float = 0.5
    cache_mb: int = 512
    disk_cache_dir: str | None = None
    disk_cache_mb: int = 4096
    undo_mb: float = 1024.0
    agree_iou: float = 0.95
    agree_frames: int = 3
    min_score: float = 0.0
    axis: int = 0

    def validate(self) -> "AnnotationConfig":
        """Raise :class:`InputError` on an out-of-range setting; return self."""
        if self.device not in DEVICES:
            raise InputError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if not 0.0 < self.threshold < 1.0:
            raise InputError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.cache_mb < 1 or self.disk_cache_mb < 1:
            raise InputError("cache_mb and disk_cache_mb must be >= 1")
        if not self.undo_mb > 0:
            raise InputError("undo_mb must be > 0")
        if self.agree_frames < 1:
            raise InputError("agree_frames must be >= 1")
        return self

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to JSON text; also write it to ``path`` when given."""
        text = json.dumps(asdict(self), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "AnnotationConfig":
        """Read a config from JSON text or a file; unknown keys are ignored (forward compatible)."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            if not path.is_file():
                raise InputError(f"settings file not found: {path}")
            text = path.read_text()
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"settings are not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise InputError("settings JSON must be an object")
        known = {f.name for f in fields(cls)}
        settings = raw.get("config", raw)
        return cls(**{k: v for k, v in settings.items() if k in known}).validate()

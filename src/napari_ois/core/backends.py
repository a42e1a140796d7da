"""The backend registry: every segmenter's name, description and factory, and the default.

The core registers its own backends (``classical``, ``grabcut-cv``); the package's
``__init__`` registers ``ois`` (the trained network in :mod:`napari_ois.model`), so the
core never imports the model. The CLI's ``--backend`` choices, the widget's backend list
and the session's construction from a config all read this registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import BackendUnavailable
from .segmenter import Segmenter

DEFAULT_BACKEND = "ois"
"""The packaged trained checkpoint: on every dev set it measured at least level with
``classical`` (COCO-MVal, nuclei, DAVIS-2016, CTC; README and MODEL_CARD.md)."""


@dataclass(frozen=True)
class Backend:
    """One registered backend.

    Attributes
    ----------
    name : str
        What users type (``--backend``) and pick (the widget's list).
    description : str
        One line for help texts.
    factory : callable
        ``factory(device, checkpoint) -> Segmenter``; imports its heavy modules itself,
        so only the backend asked for loads them.
    takes_checkpoint : bool
        Whether ``checkpoint`` means anything to it (the widget shows its checkpoint row).
    """

    name: str
    description: str
    factory: Callable[[str, str | None], Segmenter]
    takes_checkpoint: bool = False


_REGISTRY: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    """Add (or replace) a backend under its name."""
    _REGISTRY[backend.name] = backend


def backend_names() -> tuple[str, ...]:
    """Registered names, in registration order."""
    return tuple(_REGISTRY)


def backend_info(name: str) -> Backend:
    """The registered backend ``name``.

    Raises
    ------
    BackendUnavailable
        No backend has that name.
    """
    if name not in _REGISTRY:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def get_segmenter(name: str = DEFAULT_BACKEND, device: str = "auto", checkpoint: str | None = None) -> Segmenter:
    """Build a backend by name.

    Parameters
    ----------
    name : str
        A registered name (:func:`backend_names`): ``ois`` (the default) is the packaged
        trained checkpoint; ``classical`` is training-free and always available.
    device : {"auto", "cpu", "cuda", "mps"}
        Where torch backends run; ignored by numpy backends.
    checkpoint : str, optional
        Path of a model checkpoint, for backends that take one.

    Raises
    ------
    BackendUnavailable
        Unknown name, or a backend that cannot run here (with the reason).
    """
    return backend_info(name).factory(device, checkpoint)


def _classical(device: str, checkpoint: str | None) -> Segmenter:
    from .classical import ClassicalSegmenter

    return ClassicalSegmenter()


def _grabcut(device: str, checkpoint: str | None) -> Segmenter:
    from .grabcut_cv import GrabCutSegmenter

    return GrabCutSegmenter()


register_backend(Backend("classical", "training-free random walker on colour and edge evidence (numpy)", _classical))
register_backend(Backend("grabcut-cv", "OpenCV GrabCut (a baseline; needs opencv-python-headless)", _grabcut))

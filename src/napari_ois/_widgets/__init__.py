"""napari widgets of napari-ois: the only package that imports napari, Qt and magicgui."""

from .annotate import AnnotateObjectsWidget

__all__ = ["AnnotateObjectsWidget"]

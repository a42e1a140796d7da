"""napari widgets of napari-ois: the only package that imports napari, Qt and magicgui."""

import sys

# The OIS backend imports timm -> torchvision -> torch._dynamo, which imports triton if it is
# installed. triton bundles its own LLVM, and loading it into a process where napari's
# OpenGL canvas already loaded Mesa's libLLVM crashes the whole app (segfault) on Linux
# with Mesa drivers (Xvfb, software GL, Intel/AMD). Inference in napari never needs
# triton (it is only for torch.compile on GPUs), so mark it absent before anything can
# import it; torch then treats triton as unavailable. Harmless if it was imported already.
sys.modules.setdefault("triton", None)

from .annotate import AnnotateObjectsWidget  # noqa: E402

__all__ = ["AnnotateObjectsWidget"]

"""``napari-ois demo``: a viewer with a sample, the widget docked and the sample's clicks applied."""

from __future__ import annotations

from typing import Any

# The sample layers carry their own axis labels (t/y/x, z/y/x; see _sample_data), so the
# demo's viewer names its slider like File > Open Sample does.
SAMPLES = {  # name: (maker in napari_ois._sample_data, prompts file)
    "video": ("make_sample_video", "video_prompts.csv"),
    "cells": ("make_sample_cells", "cells_prompts.csv"),
    "nuclei3d": ("make_sample_nuclei3d", "nuclei3d_prompts.csv"),
}


def open_demo(sample: str = "video", viewer: Any = None, segmenter_factory=None):
    """Open ``sample`` in ``viewer`` (a new one if None), dock the widget and apply the
    sample's prompts CSV, so the user sees clicks and masks at once.

    Returns
    -------
    (napari.Viewer, AnnotateObjectsWidget)
    """
    import napari

    from napari_ois import _sample_data
    from napari_ois.core.errors import InputError

    from .annotate import AnnotateObjectsWidget

    if sample not in SAMPLES:
        raise InputError(f"unknown sample {sample!r}; choose one of {', '.join(SAMPLES)}")
    make, prompts = SAMPLES[sample]
    if viewer is None:
        viewer = napari.Viewer(title=f"napari-ois demo: {sample}")
    for data, meta, layer_type in getattr(_sample_data, make)():
        getattr(viewer, f"add_{layer_type}")(data, **meta)
    widget = AnnotateObjectsWidget(viewer, segmenter_factory=segmenter_factory)
    viewer.window.add_dock_widget(widget, name="Annotate objects", area="right")
    widget.load_prompts(_sample_data.sample_path(prompts))
    return viewer, widget


def launch_demo(sample: str = "video") -> None:
    """Open the demo and run napari's event loop until the window is closed."""
    import napari

    open_demo(sample)
    napari.run()

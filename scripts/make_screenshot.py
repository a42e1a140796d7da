"""Render docs/screenshot.png: the "Annotate objects" widget at work on the sample video.

Run under a display (Xvfb works)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/make_screenshot.py [--out docs/screenshot.png]

It opens the sample video (or, when the sample files are missing, synthetic moving
squares), docks the widget, applies the sample's clicks for two objects through the
widget's own click path, propagates both objects in the widget's worker, steps to a
middle frame and saves the whole window (canvas + widget).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _segmenter_factory():
    """The widget's default backend when it loads, else a plain brightness fallback."""
    from napari_ois.core.errors import OISError
    from napari_ois.core.backends import DEFAULT_BACKEND, get_segmenter

    try:
        get_segmenter(DEFAULT_BACKEND)
        return None  # the widget's default factory
    except (OISError, ImportError) as exc:
        print(f"{DEFAULT_BACKEND} backend unavailable ({exc}); using a brightness fallback", file=sys.stderr)
        from scipy import ndimage

        from napari_ois.core.segmenter import Prediction

        class _Gray:
            def __init__(self, gray):
                self.gray, self.nbytes = gray, gray.nbytes

        class BrightComponents:
            name = "bright-components (fallback)"

            def encode(self, image):
                return _Gray(image.mean(axis=-1))

            def predict(self, embedding, clicks, prev_prob=None, reference=None):
                labels, _ = ndimage.label(embedding.gray > 0.5)
                mask = prev_prob > 0.5 if prev_prob is not None else np.zeros(labels.shape, bool)
                if reference is not None:
                    ids = np.unique(labels[reference.mask & (labels > 0)])
                    mask = np.isin(labels, ids[ids > 0])
                for c in clicks:
                    region = labels == labels[int(c.y), int(c.x)] if labels[int(c.y), int(c.x)] else False
                    mask = mask | region if c.positive else mask & ~region
                return Prediction(np.asarray(mask, np.float32), float(np.any(mask)))

        return lambda backend, device: BrightComponents()


def _wait_for_run(widget) -> None:
    from qtpy.QtCore import QEventLoop

    if widget.worker is None:
        return
    loop = QEventLoop()
    widget.propagation_finished.connect(loop.quit)
    loop.exec()
    widget.propagation_finished.disconnect(loop.quit)


def _open_synthetic(viewer, factory):
    from napari_ois._widgets import AnnotateObjectsWidget
    from napari_ois.core.clicks import Click

    n, size = 24, 160
    video = np.zeros((n, size, size), np.uint8)
    for t in range(n):
        x = 10 + 3 * t
        video[t, 30:60, x : x + 30] = 230
        video[t, 100:130, size - 40 - x : size - x] = 170
    viewer.add_image(video, name="synthetic squares")
    widget = AnnotateObjectsWidget(viewer, segmenter_factory=factory)
    viewer.window.add_dock_widget(widget, name="Annotate objects", area="right")
    widget.add_clicks([Click(1, 0, 45, 25), Click(2, 0, 115, 105)])
    return widget


def _extra_click(widget, frame: int):
    """A positive click at the centre of a not yet annotated object of the sample's truth."""
    from scipy import ndimage

    from napari_ois._sample_data import sample_path
    from napari_ois.core.clicks import Click

    try:
        import tifffile

        truth = tifffile.imread(sample_path("video_labels.tif"))[frame]
    except (FileNotFoundError, ImportError):
        return None
    ids = [i for i in range(1, int(truth.max()) + 1) if i not in widget.session.objects() and (truth == i).any()]
    if not ids:
        return None
    # The pixel deepest inside the object: a click a user would make.
    depth = ndimage.distance_transform_edt(truth == ids[0])
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    return Click(widget.session.new_object_id(), frame, float(y), float(x))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    args = parser.parse_args(argv)

    import napari

    from napari_ois._widgets.launch import open_demo

    factory = _segmenter_factory()
    viewer = napari.Viewer(title="napari-ois", show=True)
    viewer.window._qt_window.resize(1600, 940)
    try:
        _, widget = open_demo("video", viewer=viewer, segmenter_factory=factory)
    except FileNotFoundError as exc:
        print(f"sample video missing ({exc}); using synthetic squares", file=sys.stderr)
        widget = _open_synthetic(viewer, factory)

    for obj in widget.session.objects():
        widget.object_spin.setValue(obj)
        widget.propagate("both")
        _wait_for_run(widget)
        print(widget.status.text())
    widget.object_spin.setValue(1)

    n_frames = widget.session.frames.n_frames
    middle = n_frames // 2
    viewer.dims.set_point(0, middle)
    # One more object clicked on the middle frame: the screenshot then shows a click too.
    click = _extra_click(widget, middle)
    if click is not None:
        widget.object_spin.setValue(click.object_id)
        widget.add_clicks([click])
    viewer.layers.selection.active = widget.points_layer
    viewer.reset_view()
    # The status line is the widget's own (the last click's or run's message), never set here.
    print(f"status line: {widget.status.text()}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    viewer.screenshot(str(out), canvas_only=False)
    print(f"wrote {out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Render docs/box_prompts.png: box prompts in the widget on a real dev image.

Run under a display (Xvfb works)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/make_box_screenshot.py [--out docs/box_prompts.png]

Opens the dev nuclei image (``../shared/data/dev/stardist_nuclei/img2d.tif``), docks the
widget with its default backend, and segments six nuclei from boxes through the widget's
own box path (``AnnotateObjectsWidget.add_box``, what a drawn rectangle calls). The boxes
are the tight boxes of six ground-truth nuclei, as a user would drag them; the script
prints each mask's IoU with its nucleus, then saves the whole window.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "dev" / "stardist_nuclei"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "box_prompts.png"))
    parser.add_argument("--objects", type=int, default=6)
    args = parser.parse_args()

    import napari
    import tifffile
    from qtpy.QtWidgets import QApplication

    from napari_ois._widgets import AnnotateObjectsWidget
    from napari_ois.core.boxes import box_of_mask
    from napari_ois.core.click_simulator import iou

    image = tifffile.imread(DEV / "img2d.tif")
    truth = tifffile.imread(DEV / "mask2d.tif")
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 950)
    viewer.add_image(image, name="nuclei (dev)")
    widget = AnnotateObjectsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Annotate objects")
    ids = [i for i in np.unique(truth) if i]
    # Nuclei spread over the image: every k-th id, largest first among equals.
    chosen = ids[:: max(1, len(ids) // args.objects)][: args.objects]
    for object_id, nucleus in enumerate(chosen, start=1):
        widget.object_spin.setValue(object_id)
        mask = truth == nucleus
        widget.add_box(box_of_mask(mask))
        QApplication.processEvents()
        made = np.asarray(widget.labels_layer.data) == object_id
        print(f"object {object_id}: nucleus {nucleus}, IoU {iou(mask, made):.3f}")
    viewer.reset_view()  # the whole image, every box in view
    viewer.layers.selection.active = widget.boxes_layer
    widget.boxes_layer.mode = "add_rectangle"
    QApplication.processEvents()
    viewer.window.screenshot(args.out, canvas_only=False)
    print(f"wrote {args.out}")
    viewer.close()


if __name__ == "__main__":
    main()

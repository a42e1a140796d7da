"""Regression: choosing the ois backend inside a running napari must not crash the app.

Loading triton's LLVM after napari's canvas loaded Mesa's LLVM segfaults; the widget
package marks triton absent. Run in a fresh process, where nothing imported triton first.
"""

import subprocess
import sys

import pytest

SCRIPT = r"""
import sys
import numpy as np
import napari
viewer = napari.Viewer(show=True)          # the canvas loads the GL driver first
viewer.add_image(np.zeros((2, 40, 48), np.uint8))
from napari_ois._widgets import AnnotateObjectsWidget   # what napari does when the widget opens
from napari_ois.model.checkpoint import make_random_checkpoint
from napari_ois.core.backends import get_segmenter
from napari_ois.core.clicks import Click
make_random_checkpoint(sys.argv[1], preset="test")
segmenter = get_segmenter("ois", "cpu", sys.argv[1])
prediction = segmenter.predict(segmenter.encode(np.zeros((40, 48, 3), np.float32)), [Click(1, 0, 20, 20)])
assert prediction.prob.shape == (40, 48)
viewer.close()
print("ok")
"""


@pytest.mark.gui
def test_ois_backend_loads_after_the_napari_canvas(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "c.pt")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), (proc.returncode, proc.stderr[-1500:])

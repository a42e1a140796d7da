"""Motion of an object between two frames, as the propagation steps estimate it."""

import numpy as np

from napari_ois.core.classical import ClassicalSegmenter
from napari_ois.core.classical.motion import estimate_motion, shift_map


def _textured_pair(dy, dx):
    """Two 480 x 640 frames: a textured ellipse on noise, moved by (dy, dx) in the second."""
    rng = np.random.default_rng(3)
    image = 0.3 + 0.1 * rng.random((480, 640, 3), dtype=np.float32)
    yy, xx = np.mgrid[:480, :640]
    mask = ((yy - 200) / 30.0) ** 2 + ((xx - 300) / 40.0) ** 2 <= 1.0
    stripes = (0.5 + 0.3 * np.sin(xx / 4.0) * np.cos(yy / 5.0)).astype(np.float32)
    image[mask] = np.stack([stripes, 0.9 - stripes, np.full_like(stripes, 0.2)], -1)[mask]
    moved = np.roll(image, (dy, dx), axis=(0, 1))
    return image, moved, mask


def test_the_motion_is_found_in_frame_pixels_on_a_downscaled_grid():
    seg = ClassicalSegmenter(work_size=320)  # the frames are downscaled 2x
    image, moved, mask = _textured_pair(12, -22)
    ref, here = seg.encode(image), seg.encode(moved)
    assert here.scale == 0.5
    dy, dx = estimate_motion(ref, here, mask)
    assert abs(dy - 12) <= 2 and abs(dx + 22) <= 2  # one grid pixel is two frame pixels
    assert estimate_motion(ref, ref, mask) == (0, 0)


def test_no_motion_is_claimed_across_different_grids_or_for_an_empty_mask():
    image, moved, mask = _textured_pair(0, 10)
    ref, here = ClassicalSegmenter(work_size=320).encode(image), ClassicalSegmenter(work_size=160).encode(moved)
    assert estimate_motion(ref, here, mask) == (0, 0)
    assert estimate_motion(ref, ref, np.zeros_like(mask)) == (0, 0)


def test_shift_map_moves_values_and_fills_the_border_with_zero():
    array = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    moved = shift_map(array, 1, -2)
    assert moved[0].tolist() == [0, 0, 0, 0]
    assert moved[1].tolist() == [3, 4, 0, 0] and moved[2].tolist() == [7, 8, 0, 0]

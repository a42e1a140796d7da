"""Layer plumbing for the annotation widget: the ``objects`` Labels layer, the ``prompts``
Points layer, the ``boxes`` Shapes layer, and conversions between napari coordinates and
:class:`Click` / :class:`BoxPrompt`.

Pixel convention: napari centres pixel ``i`` on data coordinate ``i`` (it covers
``[i - 0.5, i + 0.5)``), while the core reads click coordinates with ``floor`` (pixel
``i`` covers ``[i, i + 1)``). A click is therefore stored as the index of the pixel
under the cursor, ``floor(coord + 0.5)``, and shown at that pixel's centre: a
prompts CSV written from the session names the very pixels the user clicked. A box's
edges are continuous: napari's edge ``e`` is the core's ``e + 0.5``, so a rectangle drawn
along pixel borders covers exactly the pixels inside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from napari_ois.core.boxes import BoxPrompt
from napari_ois.core.clicks import Click
from napari_ois.core.errors import InputError

from napari_ois.core.io import scratch_labels

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Labels, Points, Shapes

OBJECTS_NAME = "objects"
PROMPTS_NAME = "prompts"
BOXES_NAME = "boxes"
POSITIVE_COLOR = np.array([0.2, 0.9, 0.25, 1.0])  # green: "this is the object"
NEGATIVE_COLOR = np.array([0.95, 0.15, 0.15, 1.0])  # red: "leave this out"
FEATURE_DEFAULTS = {"object_id": 1, "frame": 0, "positive": True}
# Outline width (data pixels) of the objects layer's default view: a filled mask tinted
# like the object under it (yellow/orange on the sample's orange object) hides its edge.
CONTOUR_PX = 2
# Opacity of each view: filled masks let the image show through; outlines are thin enough
# to be drawn opaque, which keeps a yellow outline apart from an orange object.
FILLED_OPACITY, CONTOUR_OPACITY = 0.6, 1.0
# Saturated, mutually distinct colours for objects 1, 2, 3, ... (cycled); napari's random
# label colours are often dark or close to the object's own colour and vanish on video.
OBJECT_COLORS = np.array(
    [
        [0.0, 0.0, 0.0, 0.0],  # background
        [1.0, 0.85, 0.0, 1.0],  # yellow
        [0.0, 0.85, 1.0, 1.0],  # cyan
        [1.0, 0.2, 0.75, 1.0],  # magenta
        [0.35, 0.45, 1.0, 1.0],  # blue
        [1.0, 0.45, 0.0, 1.0],  # orange
        [0.45, 1.0, 0.1, 1.0],  # lime
        [0.6, 1.0, 0.85, 1.0],  # mint
        [1.0, 0.6, 0.6, 1.0],  # salmon
    ]
)


def hex_color(positive: bool) -> str:
    """'#rrggbb' of the click colour for a polarity."""
    rgba = POSITIVE_COLOR if positive else NEGATIVE_COLOR
    return "#" + "".join(f"{round(255 * v):02x}" for v in rgba[:3])


def image_data(layer: "Image"):
    """The full-resolution array of an image layer (level 0 of a multiscale pyramid)."""
    return layer.data[0] if layer.multiscale else layer.data


def leading_axes(layer: "Image") -> int:
    """Number of non-spatial axes (time, depth) of an image layer; 0 for one 2-D image."""
    return max(layer.ndim - 2, 0)


def labels_shape(layer: "Image") -> tuple[int, ...]:
    """Shape of the labels matching an image layer: the image shape without channels."""
    data = image_data(layer)
    return tuple(int(s) for s in (data.shape[:-1] if layer.rgb else data.shape))


def frame_count(layer: "Image", axis: int) -> int:
    """Number of frames along the walked leading ``axis`` of an image layer; 1 for a 2-D image."""
    return labels_shape(layer)[axis] if leading_axes(layer) else 1


def _same_geometry(layer, image: "Image") -> bool:
    return np.allclose(layer.scale, image.scale) and np.allclose(layer.translate, image.translate)


def ensure_objects_layer(
    viewer: "napari.Viewer",
    image: "Image",
    on_disk_above_mb: float | None = None,
    scratch_dir: str | Path | None = None,
) -> "Labels":
    """The ``objects`` Labels layer for ``image``: reused when its shape matches (so labels
    made before survive a rebuild of the session), else a new uint32 layer of zeros.

    Parameters
    ----------
    viewer : napari.Viewer
    image : napari.layers.Image
    on_disk_above_mb : float, optional
        A new layer whose labels would take more than this many MiB in memory is backed
        by a zarr array on disk (see :mod:`napari_ois.core.io.scratch_labels`); 0 = always, None = never.
    scratch_dir : str or Path, optional
        Parent folder of that zarr array (the system temp folder when None).

    Notes
    -----
    Only layers the widget can write safely are reused: numpy arrays, and zarr arrays
    this module put on disk. A Labels layer on the user's own zarr or dask data is never
    written into; a new ``objects`` layer is made next to it.
    """
    from napari.layers import Labels

    shape = labels_shape(image)
    for layer in viewer.layers:
        if (
            isinstance(layer, Labels)
            and layer.name.startswith(OBJECTS_NAME)
            and tuple(layer.data.shape) == shape
            and (isinstance(layer.data, np.ndarray) or scratch_labels.scratch_of(layer) is not None)
            and _same_geometry(layer, image)
        ):
            return layer
    from napari.utils.colormaps import CyclicLabelColormap

    kwargs = dict(
        name=OBJECTS_NAME,
        scale=image.scale,
        translate=image.translate,
        # The image's names (t, z, y, x...; channels excluded), so every layer agrees on them.
        axis_labels=tuple(image.axis_labels),
        opacity=FILLED_OPACITY,  # the widget then applies its view (show_filled)
        colormap=CyclicLabelColormap(colors=OBJECT_COLORS),
    )
    if scratch_labels.goes_on_disk(shape, on_disk_above_mb):
        return scratch_labels.add_disk_labels_layer(viewer, shape, scratch_dir, **kwargs)
    return viewer.add_labels(np.zeros(shape, dtype=np.uint32), **kwargs)


def show_filled(layer: "Labels", filled: bool) -> None:
    """Draw the objects layer as filled masks, or as :data:`CONTOUR_PX`-pixel outlines.

    The opacity follows (:data:`FILLED_OPACITY`, :data:`CONTOUR_OPACITY`) only while it
    is the other view's default: an opacity the user chose is kept.
    """
    layer.contour = 0 if filled else CONTOUR_PX
    old, new = (CONTOUR_OPACITY, FILLED_OPACITY) if filled else (FILLED_OPACITY, CONTOUR_OPACITY)
    if np.isclose(layer.opacity, old):
        layer.opacity = new


def labels_on_disk(layer) -> bool:
    """Whether a Labels layer's data is a zarr array on disk made by :func:`ensure_objects_layer`."""
    return layer is not None and scratch_labels.scratch_of(layer) is not None


def ensure_prompts_layer(viewer: "napari.Viewer", image: "Image") -> "Points":
    """The ``prompts`` Points layer for ``image`` (reused when its ndim matches)."""
    from napari.layers import Points

    ndim = image.ndim
    for layer in viewer.layers:
        if (
            isinstance(layer, Points)
            and layer.name.startswith(PROMPTS_NAME)
            and layer.ndim == ndim
            and _same_geometry(layer, image)
        ):
            return layer
    height, width = labels_shape(image)[-2:]
    return viewer.add_points(
        np.zeros((0, ndim)),
        ndim=ndim,
        name=PROMPTS_NAME,
        scale=image.scale,
        translate=image.translate,
        axis_labels=tuple(image.axis_labels),
        features={
            "object_id": np.zeros(0, dtype=int),
            "frame": np.zeros(0, dtype=int),
            "positive": np.zeros(0, dtype=bool),
        },
        feature_defaults=FEATURE_DEFAULTS,
        # Big enough to see on a video frame, small enough not to hide a small object.
        size=float(np.clip(min(height, width) / 32.0, 3.0, 14.0)),
        face_color=POSITIVE_COLOR,
        border_color="white",
        border_width=0.22,
        border_width_is_relative=True,
    )


def pixel_index(coord: float) -> int:
    """Index of the pixel under napari data coordinate ``coord`` (pixel centres at integers)."""
    return int(np.floor(coord + 0.5))


def click_from_point(
    point: np.ndarray, axis: int, n_leading: int, object_id: int, positive: bool
) -> tuple[Click, tuple[tuple[int, int], ...]]:
    """Turn a point of the prompts layer into a click and the indices held on other axes.

    Parameters
    ----------
    point : np.ndarray
        (D,) napari data coordinates: leading (time/depth) axes, then y, x.
    axis : int
        The leading axis that is walked (frames).
    n_leading : int
        Number of leading axes (``D - 2``).

    Returns
    -------
    click : Click
        Pixel-index coordinates (see the module docstring).
    fixed : tuple of (axis, index)
        Indices on the other leading axes (4-D data), sorted by axis.
    """
    point = np.asarray(point, dtype=float)
    if not np.all(np.isfinite(point)):
        raise InputError("the click position is not a finite coordinate")
    frame = pixel_index(point[axis]) if n_leading else 0
    fixed = tuple((a, pixel_index(point[a])) for a in range(n_leading) if a != axis)
    click = Click(
        object_id=int(object_id),
        frame=frame,
        y=float(pixel_index(point[-2])),
        x=float(pixel_index(point[-1])),
        positive=bool(positive),
    )
    return click, fixed


def point_from_click(click: Click, axis: int, n_leading: int, fixed: Iterable[tuple[int, int]]) -> list[float]:
    """Napari data coordinates of a click (the inverse of :func:`click_from_point`)."""
    coords = [0.0] * n_leading
    if n_leading:
        coords[axis] = float(click.frame)
    for a, index in fixed:
        coords[a] = float(index)
    return coords + [float(np.floor(click.y)), float(np.floor(click.x))]


def show_clicks(
    points: "Points",
    clicks: list[tuple[Click, tuple[tuple[int, int], ...]]],
    axis: int,
    n_leading: int,
) -> None:
    """Make the prompts layer show exactly ``clicks`` (with their held indices).

    Face colour: green for positive, red for negative; a white border keeps them
    visible on any mask colour (the object is the mask under the click).
    """
    ndim = points.ndim
    data = np.array(
        [point_from_click(c, axis, n_leading, fixed) for c, fixed in clicks], dtype=float
    ).reshape(-1, ndim)
    features = {
        "object_id": np.array([c.object_id for c, _ in clicks], dtype=int),
        "frame": np.array([c.frame for c, _ in clicks], dtype=int),
        "positive": np.array([c.positive for c, _ in clicks], dtype=bool),
    }
    face = np.array([POSITIVE_COLOR if c.positive else NEGATIVE_COLOR for c, _ in clicks]).reshape(-1, 4)
    points.selected_data = set()
    points.data = data
    points.features = features
    if len(data):
        points.face_color = face
        points.border_color = "white"
    points.refresh()


def current_data_point(viewer: "napari.Viewer", layer) -> np.ndarray:
    """The viewer's current dims position in ``layer``'s data coordinates, (D,)."""
    return np.asarray(layer.world_to_data(viewer.dims.point), dtype=float)


def move_to_frame(viewer: "napari.Viewer", layer, axis: int, frame: int) -> None:
    """Step the viewer so that ``layer`` shows ``frame`` on its data axis ``axis``."""
    data_point = current_data_point(viewer, layer)
    data_point[axis] = frame
    world = np.asarray(layer.data_to_world(data_point), dtype=float)
    world_axis = viewer.dims.ndim - layer.ndim + axis
    viewer.dims.set_point(world_axis, float(world[axis]))


def ensure_boxes_layer(viewer: "napari.Viewer", image: "Image") -> "Shapes":
    """The ``boxes`` Shapes layer for ``image`` (reused when its ndim matches), in rectangle mode."""
    from napari.layers import Shapes

    for layer in viewer.layers:
        if isinstance(layer, Shapes) and layer.name.startswith(BOXES_NAME) and layer.ndim == image.ndim and (
                _same_geometry(layer, image)):
            return layer
    layer = viewer.add_shapes(
        None,
        ndim=image.ndim,
        name=BOXES_NAME,
        scale=image.scale,
        translate=image.translate,
        axis_labels=tuple(image.axis_labels),
        shape_type="rectangle",
        edge_width=max(1.0, min(labels_shape(image)[-2:]) / 200.0),
        edge_color=POSITIVE_COLOR,
        face_color="transparent",
    )
    layer.mode = "add_rectangle"
    return layer


def box_from_shape(
    vertices: np.ndarray, axis: int, n_leading: int
) -> tuple[int, tuple[tuple[int, int], ...], BoxPrompt]:
    """Frame, held indices and box of a rectangle drawn in the boxes layer.

    Parameters
    ----------
    vertices : np.ndarray
        (4, D) napari data coordinates of the rectangle's corners (leading axes, y, x).

    Returns
    -------
    frame : int
    fixed : tuple of (axis, index)
        Indices on the other leading axes (4-D data).
    box : BoxPrompt
        Corners in core pixel coordinates (not yet checked against the frame).
    """
    vertices = np.asarray(vertices, dtype=float)
    if not np.all(np.isfinite(vertices)):
        raise InputError("the box corners are not finite coordinates")
    first = vertices[0]
    frame = pixel_index(first[axis]) if n_leading else 0
    fixed = tuple((a, pixel_index(first[a])) for a in range(n_leading) if a != axis)
    ys, xs = vertices[:, -2] + 0.5, vertices[:, -1] + 0.5
    return frame, fixed, BoxPrompt(float(ys.min()), float(xs.min()), float(ys.max()), float(xs.max()))


def shape_from_box(box: BoxPrompt, frame: int, axis: int, n_leading: int,
                   fixed: Iterable[tuple[int, int]]) -> np.ndarray:
    """(4, D) napari data corners of a box on ``frame`` (the inverse of :func:`box_from_shape`)."""
    lead = [0.0] * n_leading
    if n_leading:
        lead[axis] = float(frame)
    for a, index in fixed:
        lead[a] = float(index)
    y0, x0, y1, x1 = box.y0 - 0.5, box.x0 - 0.5, box.y1 - 0.5, box.x1 - 0.5
    return np.array([lead + [y0, x0], lead + [y0, x1], lead + [y1, x1], lead + [y1, x0]], dtype=float)


def show_boxes(layer: "Shapes", boxes: list[tuple[int, int, BoxPrompt, tuple[tuple[int, int], ...]]],
               axis: int, n_leading: int) -> None:
    """Make the boxes layer show exactly ``boxes`` ((object id, frame, box, held indices)),
    each edged in its object's colour."""
    data = [shape_from_box(box, frame, axis, n_leading, fixed) for _, frame, box, fixed in boxes]
    colours = [OBJECT_COLORS[1 + (obj - 1) % (len(OBJECT_COLORS) - 1)] for obj, *_ in boxes]
    layer.selected_data = set()
    layer.data = []
    if data:
        layer.add_rectangles(data, edge_color=np.array(colours), face_color="transparent")
    layer.refresh()

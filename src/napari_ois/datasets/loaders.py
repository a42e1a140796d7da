"""Loaders for the evaluation layouts: single-image instance sets and propagation sequences.

Click-evaluation formats (one item = one object on one image):
- ``davis`` / ``coco_mval``: ``img/*.jpg`` + ``gt/*.png`` matched by file stem; any
  non-zero pixel of the mask is the object.
- ``grabcut``: ``data_GT/*`` + ``boundary_GT/*`` (or ``img/`` + ``gt/``); mask value 128
  is an ignore band excluded from IoU, values > 128 are the object.
- ``folder``: ``img/`` + ``gt/``, ``images/`` + ``masks/`` or ``labels/``, or files ``img*``
  beside ``mask*``; integer masks with several ids give one item per id (instance masks).
- ``coco_json``: a COCO instances file (polygon or RLE ``segmentation``), or a folder with
  exactly one; one item per non-crowd annotation, named ``<image stem>#<annotation id>``
  (read by :class:`napari_ois.datasets.object_sets.ObjectSet`, as ``napari-ois train --objects``).

Propagation formats (one item = one sequence):
- ``davis``: ``JPEGImages/480p/SEQ/*.jpg`` + ``Annotations/480p/SEQ/*.png``.
- ``ctc``: ``NN/tNNN.tif`` + ``NN_GT/SEG`` or ``NN_ST/SEG`` ``man_segNNN.tif`` instance masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from .layouts import (CLICK_FORMATS, PROPAGATION_FORMATS, InstanceItem, as_plane, image_files, image_mask_pairs,
                      read_mask)
from .object_sets import ObjectSet


def load_click_items(root: str | Path, fmt: str, limit: int | None = None) -> list[InstanceItem]:
    """All objects of a click-evaluation set, sorted by name; the first ``limit`` if given."""
    root = Path(root)
    if fmt not in CLICK_FORMATS:
        raise InputError(f"format must be one of {', '.join(CLICK_FORMATS)}, got {fmt!r}")
    if fmt == "coco_json":
        return ObjectSet(root).instance_items(lambda image_key: True, limit)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    items: list[InstanceItem] = []
    for stem, image_path, mask_path in image_mask_pairs(root, fmt):
        mask = as_plane(read_mask(mask_path))
        if mask.ndim != 2:
            continue  # volumes are evaluated by propagation, not here
        if fmt == "grabcut":
            items.append(InstanceItem(stem, image_path, mask > 128, mask == 128))
        elif fmt == "folder" and len(ids := [i for i in np.unique(mask) if i]) > 1:
            items.extend(InstanceItem(f"{stem}#{i}", image_path, mask == i) for i in ids)
        else:
            items.append(InstanceItem(stem, image_path, mask > 0))
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise InputError(f"no image/mask pairs found under {root} for format {fmt!r}")
    return items[:limit] if limit is not None else items


@dataclass
class Sequence:
    """One propagation sequence.

    Attributes
    ----------
    name : str
    frames : list of Path
        Image files in time order.
    truth : list of Path
        Label files aligned with ``frames`` (instance ids consistent over time).
    binary : bool
        Whether any non-zero label is the one object (DAVIS-2016) rather than instance ids.
    """

    name: str
    frames: list[Path]
    truth: list[Path]
    binary: bool


def load_sequences(root: str | Path, fmt: str, names: list[str] | None = None) -> list[Sequence]:
    """Sequences of a propagation set, optionally only ``names``."""
    root = Path(root)
    if fmt not in PROPAGATION_FORMATS:
        raise InputError(f"format must be one of {', '.join(PROPAGATION_FORMATS)}, got {fmt!r}")
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    sequences = []
    if fmt == "davis":
        image_root, mask_root = root / "JPEGImages" / "480p", root / "Annotations" / "480p"
        if not image_root.is_dir() or not mask_root.is_dir():
            raise InputError(f"{root} lacks JPEGImages/480p/ and Annotations/480p/")
        for seq_dir in sorted(p for p in image_root.iterdir() if p.is_dir()):
            frames = list(image_files(seq_dir).values())
            masks = image_files(mask_root / seq_dir.name) if (mask_root / seq_dir.name).is_dir() else {}
            truth = [masks.get(f.stem) for f in frames]
            if frames and all(truth):
                sequences.append(Sequence(seq_dir.name, frames, truth, binary=True))
    else:
        for seq_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()):
            for gt_kind in ("_GT", "_ST"):
                seg = root / f"{seq_dir.name}{gt_kind}" / "SEG"
                if seg.is_dir():
                    break
            else:
                continue
            frames, truth = [], []
            for frame in sorted(seq_dir.glob("t*.tif")):
                mask = seg / f"man_seg{frame.stem[1:]}.tif"
                if mask.exists():
                    frames.append(frame)
                    truth.append(mask)
            if frames:
                sequences.append(Sequence(seq_dir.name, frames, truth, binary=False))
    if names:
        unknown = set(names) - {s.name for s in sequences}
        if unknown:
            raise InputError(f"unknown sequence(s): {', '.join(sorted(unknown))}")
        sequences = [s for s in sequences if s.name in names]
    if not sequences:
        raise InputError(f"no sequences found under {root} for format {fmt!r}")
    return sequences

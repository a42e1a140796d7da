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
  (read by :class:`napari_ois.train.object_sets.ObjectSet`, as ``napari-ois train --objects``).

Propagation formats (one item = one sequence):
- ``davis``: ``JPEGImages/480p/SEQ/*.jpg`` + ``Annotations/480p/SEQ/*.png``.
- ``ctc``: ``NN/tNNN.tif`` + ``NN_GT/SEG`` or ``NN_ST/SEG`` ``man_segNNN.tif`` instance masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.errors import InputError
from ..core.io import read_image_file

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
CLICK_FORMATS = ("davis", "coco_mval", "grabcut", "folder", "coco_json")
PROPAGATION_FORMATS = ("davis", "ctc")
# Image and mask folder pairs of the ``folder`` format (and of ``napari-ois train --objects``).
FOLDER_LAYOUTS = [("img", "gt"), ("images", "masks"), ("images", "labels"), ("img", "labels")]


@dataclass
class InstanceItem:
    """One object to segment.

    Attributes
    ----------
    name : str
        ``<image stem>`` or ``<image stem>#<id>`` for instance masks.
    image_path : Path
        Image file (loaded lazily by the evaluator, once per image).
    truth : np.ndarray
        (Y, X) bool object mask.
    ignore : np.ndarray or None
        (Y, X) bool pixels excluded from IoU.
    """

    name: str
    image_path: Path
    truth: np.ndarray
    ignore: np.ndarray | None = None


def _files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _pair_dirs(root: Path, candidates: list[tuple[str, str]]) -> tuple[Path, Path]:
    for image_dir, mask_dir in candidates:
        if (root / image_dir).is_dir() and (root / mask_dir).is_dir():
            return root / image_dir, root / mask_dir
    names = " or ".join(f"{a}/ + {b}/" for a, b in candidates)
    raise InputError(f"{root} does not have the expected layout ({names})")


def read_mask(path: Path) -> np.ndarray:
    """A mask file's values: palette PNGs/TIFFs as their indices (DAVIS-2017 style), other
    formats (GrabCut's BMPs) as stored."""
    labels = path.suffix.lower() in (".png", ".tif", ".tiff")
    return read_image_file(path, labels=labels)


def as_plane(mask: np.ndarray) -> np.ndarray:
    """Masks stored as RGB(A) keep their first channel (as the reference loaders do);
    other 3-D masks (volumes) are returned unchanged and skipped by the caller."""
    return mask[..., 0] if mask.ndim == 3 and mask.shape[-1] in (3, 4) else mask


def image_mask_pairs(root: Path, fmt: str) -> Iterator[tuple[str, Path, Path]]:
    """(stem, image file, mask file) of a click-evaluation layout, matched by file stem."""
    if fmt == "grabcut":
        image_dir, mask_dir = _pair_dirs(root, [("data_GT", "boundary_GT"), ("img", "gt")])
    elif fmt == "folder" and not any((root / d).is_dir() for d in ("img", "images")):
        images = sorted(p for p in root.iterdir() if p.name.startswith("img") and p.suffix.lower() in IMAGE_SUFFIXES)
        for image in images:
            mask = image.with_name("mask" + image.name[3:])
            if mask.exists():
                yield image.stem, image, mask
        return
    else:
        image_dir, mask_dir = _pair_dirs(root, FOLDER_LAYOUTS)
    images = _files(image_dir)
    for stem, mask_path in _files(mask_dir).items():
        if stem in images:
            yield stem, images[stem], mask_path


def load_click_items(root: str | Path, fmt: str, limit: int | None = None) -> list[InstanceItem]:
    """All objects of a click-evaluation set, sorted by name; the first ``limit`` if given."""
    root = Path(root)
    if fmt not in CLICK_FORMATS:
        raise InputError(f"format must be one of {', '.join(CLICK_FORMATS)}, got {fmt!r}")
    if fmt == "coco_json":
        from ..train.object_sets import ObjectSet  # the training side reads the same files

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
            frames = list(_files(seq_dir).values())
            masks = _files(mask_root / seq_dir.name) if (mask_root / seq_dir.name).is_dir() else {}
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

"""The file layouts of object and sequence sets: what evaluation and training both read.

See :mod:`napari_ois.datasets.loaders` for the formats.
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


def image_files(folder: Path) -> dict[str, Path]:
    """File stem -> path of the images in ``folder``, sorted by name."""
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
    images = image_files(image_dir)
    for stem, mask_path in image_files(mask_dir).items():
        if stem in images:
            yield stem, images[stem], mask_path

"""Object masks to train on, in the layouts ``napari-ois train --objects`` reads.

- **Mask folder**, the layouts of ``eval clicks --format folder``: ``img/`` + ``gt/``,
  ``images/`` + ``masks/`` or ``labels/``, ``img/`` + ``labels/``, or files ``img*`` beside
  ``mask*``; paired by stem, any of png/jpg/bmp/tif.

  - A mask with one non-zero value is one object. Names ending in ``_<image id>`` (the
    ``shared/data/train/coco_mval`` layout: one image copy per object) mark masks of the
    same image, whose pixels are each other's *other objects*.
  - A mask with several ids is an instance label image (Cellpose / StarDist / CTC style):
    one object per id, named ``<stem>#<id>``, the other ids being its other objects.
- **COCO JSON**: an instances file (``images`` with ``id``, ``file_name``, ``height``,
  ``width``; ``annotations`` with ``image_id`` and a polygon, uncompressed or compressed
  RLE ``segmentation``). ``--objects`` names the file, or a folder holding exactly one
  ``.json``. Image files are looked up by ``file_name`` relative to the JSON's folder, its
  parent, or an ``images/`` folder in either. Crowd regions (``iscrowd``) are never a
  target but count as other objects.

Images are normalised as the app shows them (:class:`~napari_ois.core.frames.FrameStack`):
8-bit kept at 0..255, 16-bit and float images mapped by their 0.5-99.5 percentiles; grey
images repeated to RGB. Objects are grouped by image; the held-out validation split takes
whole images (:func:`is_held_out_image`), so no image is both trained on and validated on.
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.errors import InputError
from ..core.frames import FrameStack
from ..core.io import read_image_file
from .layouts import FOLDER_LAYOUTS, InstanceItem, as_plane, image_mask_pairs, read_mask

VALIDATION_EVERY = 20  # 1 image in 20 is held out for validation
_IMAGE_ID = re.compile(r"_(\d+)$")


def is_held_out_image(image_key: str) -> bool:
    """Whether the image ``image_key`` belongs to the held-out validation split.

    Numeric keys (COCO image ids) keep the rule the shipped checkpoint was validated with
    (id divisible by :data:`VALIDATION_EVERY`); any other name is hashed (CRC-32), so the
    split is stable across runs and machines.
    """
    if image_key.isdigit():
        return int(image_key) % VALIDATION_EVERY == 0
    return zlib.crc32(image_key.encode("utf-8")) % VALIDATION_EVERY == 0


@dataclass(frozen=True)
class ObjectRecord:
    """One object on one image.

    Attributes
    ----------
    name : str
        Unique object name (``<mask stem>``, ``<mask stem>#<id>`` or ``<file stem>#<annotation id>``).
    image_path : Path
    image_key : str
        Objects with the same key are on the same image.
    mask_path : Path or None
        Mask / label file (mask folders); None for COCO JSON objects.
    label : int or None
        The object's id in an instance label file; None: every non-zero pixel.
    annotation : int or None
        Index into the COCO JSON's annotation list.
    """

    name: str
    image_path: Path
    image_key: str
    mask_path: Path | None = None
    label: int | None = None
    annotation: int | None = None


@functools.lru_cache(maxsize=48)  # bounded: a few MB per entry, no growth over hours
def read_image01(path: Path) -> np.ndarray:
    """Image file as (Y, X, 3) float32 in [0, 1], normalised as the app shows it."""
    data = read_image_file(path)
    if data.ndim == 3 and data.shape[-1] not in (3, 4):
        raise InputError(f"{path}: expected a grey or RGB image, got shape {data.shape}")
    return FrameStack(data)[0]


@functools.lru_cache(maxsize=48)
def _read_labels(path: Path) -> np.ndarray:
    """(Y, X) label ids of a mask file, read as the click evaluation reads it."""
    labels = as_plane(read_mask(path))
    if labels.ndim != 2:
        raise InputError(f"{path}: a mask must be 2-D, got shape {labels.shape}")
    return labels


def _folder_records(root: Path) -> list[ObjectRecord]:
    records = []
    for stem, image_path, mask_path in image_mask_pairs(root, "folder"):
        labels = _read_labels(mask_path)
        ids = [int(i) for i in np.unique(labels) if i != 0]  # read_labels refuses negative ids
        if len(ids) > 1:  # instance label image: one object per id
            records += [ObjectRecord(f"{stem}#{i}", image_path, stem, mask_path, i) for i in ids]
        elif ids:
            match = _IMAGE_ID.search(stem)
            records.append(ObjectRecord(stem, image_path, match.group(1) if match else stem, mask_path))
    return records


def _coco_file(path: Path) -> Path | None:
    if path.is_file() and path.suffix.lower() == ".json":
        return path
    if path.is_dir() and not any((path / a).is_dir() and (path / b).is_dir() for a, b in FOLDER_LAYOUTS):
        found = sorted(path.glob("*.json"))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InputError(f"{path} holds {len(found)} JSON files; name the annotation file itself")
    return None


def _find_image(json_path: Path, file_name: str) -> Path | None:
    folder = json_path.parent
    for base in (folder, folder.parent, folder / "images", folder.parent / "images"):
        candidate = base / file_name
        if candidate.is_file():
            return candidate
    return None


def rle_counts(counts: str | bytes) -> list[int]:
    """Run lengths of a COCO compressed RLE string.

    Each run is a variable-length integer of 5-bit groups stored as characters from '0'
    (ASCII 48): bit 0x20 says another group follows, bit 0x10 of the last group is the sign.
    From the third run on, the stored value is the difference to the run two places earlier.
    """
    text = counts.decode("ascii") if isinstance(counts, bytes) else counts
    runs: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(text):
                raise InputError("malformed compressed RLE: the string ends inside a run length")
            group = ord(text[pos]) - 48
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            pos, shift = pos + 1, shift + 5
            if not more and group & 0x10:
                value -= 1 << shift  # negative: sign-extend the last group
        runs.append(value + runs[-2] if len(runs) > 2 else value)
    return runs


def rle_to_mask(counts: str | bytes | list[int], height: int, width: int) -> np.ndarray:
    """(height, width) bool mask of a COCO RLE (runs of 0 then 1 ..., column-major)."""
    runs = np.asarray(rle_counts(counts) if isinstance(counts, (str, bytes)) else counts, np.int64)
    if (runs < 0).any() or runs.sum() != height * width:
        raise InputError(f"RLE covers {int(runs.sum())} pixels, its image {height} x {width} = {height * width}")
    flat = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
    return flat.reshape((height, width), order="F")


def polygons_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """(height, width) bool union of COCO polygons ``[x0, y0, x1, y1, ...]`` (pixel-centre coordinates)."""
    from skimage.draw import polygon as fill_polygon

    mask = np.zeros((height, width), bool)
    for poly in polygons:
        xy = np.asarray(poly, np.float64).reshape(-1, 2)
        if len(xy) < 3:
            continue
        # COCO polygons trace pixel edges (0..W); pixel centres sit at +0.5.
        rows, cols = fill_polygon(xy[:, 1] - 0.5, xy[:, 0] - 0.5, (height, width))
        mask[rows, cols] = True
    return mask


def _segmentation_mask(segmentation, height: int, width: int) -> np.ndarray:
    if isinstance(segmentation, list):
        return polygons_to_mask(segmentation, height, width)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        size = tuple(int(s) for s in segmentation.get("size", (height, width)))
        if size != (height, width):
            raise InputError(f"an RLE of size {size} on an image of {height} x {width}")
        return rle_to_mask(segmentation["counts"], height, width)
    raise InputError(f"unknown COCO segmentation: {type(segmentation).__name__}")


class ObjectSet:
    """The objects of one training-data location (mask folder or COCO JSON), grouped by image.

    Parameters
    ----------
    path : str or Path
        Mask folder, COCO JSON file, or a folder with exactly one JSON file.
    exclude : callable, optional
        ``exclude(image_key) -> bool``: images never used (the held-out validation split).

    Raises
    ------
    InputError
        Unknown layout, unreadable annotation file, missing images, or no object left.
    """

    def __init__(self, path: str | Path, exclude: Callable[[str], bool] | None = None):
        path = Path(path)
        if not path.exists():
            raise InputError(f"no training objects: {path} does not exist")
        self.annotations: list[dict] = []
        self.image_sizes: dict[str, tuple[int, int]] = {}
        # COCO crowd regions by image key (annotation indices): looked up at every sample.
        self.crowd: dict[str, list[int]] = {}
        coco_json = _coco_file(path)
        if coco_json is None and not path.is_dir():
            raise InputError(f"no training objects: {path} is neither a COCO JSON file nor a folder")
        records = self._coco_records(coco_json) if coco_json else _folder_records(path)
        if not records:
            layouts = ", ".join(f"{a}/ + {b}/" for a, b in FOLDER_LAYOUTS)
            raise InputError(f"no training objects found under {path} (a COCO JSON file, or one of {layouts})")
        kept = [r for r in records if not (exclude and exclude(r.image_key))]
        # A set so small that the split holds out every image trains on all of it; its
        # validation split is then empty (see trainer.validation_items).
        self.records = kept or records
        self.by_image: dict[str, list[int]] = {}
        for i, record in enumerate(self.records):
            self.by_image.setdefault(record.image_key, []).append(i)

    def _coco_records(self, json_path: Path) -> list[ObjectRecord]:
        try:
            data = json.loads(json_path.read_text(encoding="utf-8"))
            images = {img["id"]: img for img in data["images"]}
            annotations = data["annotations"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{json_path} is not a COCO instances file: {exc!r}") from None
        records, missing = [], []
        for index, ann in enumerate(annotations):
            image = images.get(ann.get("image_id"))
            if image is None or "segmentation" not in ann:
                continue
            image_path = _find_image(json_path, image["file_name"])
            if image_path is None:
                missing.append(image["file_name"])
                continue
            key = str(image["id"])
            self.image_sizes[key] = (int(image["height"]), int(image["width"]))
            self.annotations.append(ann)
            if ann.get("iscrowd", 0):
                self.crowd.setdefault(key, []).append(len(self.annotations) - 1)
            else:
                records.append(ObjectRecord(f"{Path(image['file_name']).stem}#{ann.get('id', index)}", image_path,
                                            key, annotation=len(self.annotations) - 1))
        if missing:
            raise InputError(f"{len(set(missing))} image(s) of {json_path.name} not found, e.g. {missing[0]!r} "
                             f"(looked beside the JSON, in its parent, and in images/ of either)")
        return records

    def __len__(self) -> int:
        return len(self.records)

    def image_paths(self) -> list[Path]:
        """Distinct image files, sorted."""
        return sorted({r.image_path for r in self.records})

    def mask(self, i: int) -> np.ndarray:
        """(Y, X) bool mask of object ``i``."""
        record = self.records[i]
        if record.annotation is not None:
            h, w = self.image_sizes[record.image_key]
            return _segmentation_mask(self.annotations[record.annotation]["segmentation"], h, w)
        labels = _read_labels(record.mask_path)
        return labels == record.label if record.label is not None else labels > 0

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image (Y, X, 3) float32 [0, 1], object mask (Y, X) bool, other objects (Y, X) bool."""
        record = self.records[i]
        image, mask = read_image01(record.image_path), self.mask(i)
        if mask.shape != image.shape[:2]:
            raise InputError(f"{record.name}: mask {mask.shape} and image {image.shape[:2]} differ in size")
        others = np.zeros_like(mask)
        if record.label is not None:  # one label file holds every object of the image
            others = _read_labels(record.mask_path) > 0
        else:
            for j in self.by_image[record.image_key]:
                other = self.mask(j) if j != i else None
                if other is not None and other.shape == mask.shape:
                    others |= other
        for k in self.crowd.get(record.image_key, []):
            others |= _segmentation_mask(self.annotations[k]["segmentation"], *mask.shape)
        return image, mask, others & ~mask

    def instance_items(self, keep: Callable[[str], bool], limit: int | None = None) -> list[InstanceItem]:
        """The objects of the images ``keep(image_key)`` selects as click-evaluation items, in name order."""
        chosen = [i for i, r in enumerate(self.records) if keep(r.image_key)]
        order = sorted(chosen, key=lambda i: self.records[i].name)[:limit]
        return [InstanceItem(self.records[i].name, self.records[i].image_path, self.mask(i)) for i in order]


__all__ = ["ObjectRecord", "ObjectSet", "VALIDATION_EVERY", "is_held_out_image", "polygons_to_mask",
           "read_image01", "rle_counts", "rle_to_mask"]

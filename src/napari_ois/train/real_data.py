"""Real training data (``shared/data/train``) with augmentation, and the mixed sample stream.

- ``coco_mval``: ``img/<name>.jpg`` + ``gt/<name>.png``, one object per mask; names end
  in ``_<image id>``, and masks of the same image id are the other objects' pixels.
- ``ctc_psc``: phase-contrast frames ``02/tNNN.tif`` with instance masks
  ``02_ST/SEG/man_segNNN.tif`` whose ids persist over time: one sample per chosen
  instance, real propagation pairs from frames t and t+1.

Each sample is a view chosen around the object (a crop with random context, or the whole
image), flipped, slightly shifted/rotated (rot90 too for microscopy), drawn directly at
the model resolution in one warp (longest side = ``size``), and jittered in
brightness/contrast/colour. COCO stills become pseudo-video pairs by warping the view
again (affine + elastic). Depth is unknown for real data (None). Never point this at
``dev/``: those sets are for evaluation only.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from ..core.errors import InputError
from ..core.frames import StackNormalizer
from ..datasets.object_sets import ObjectSet, read_image01
from .augment import antialias, choose_view, degrade_mask, photometric, pseudo_motion, warp
from .samples import TrainingSample, resize_image, resize_longest_and_pad
from .synthetic import natural_scene
from .synthetic_cells import microscopy_scene

DEFAULT_WEIGHTS = {"synthetic": 0.3, "microscopy": 0.15, "coco": 0.4, "ctc": 0.15}


def default_data_root() -> Path:
    """``$NAPARI_OIS_TRAIN_DATA``, else ``shared/data/train`` beside the repository."""
    env = os.environ.get("NAPARI_OIS_TRAIN_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[4] / "shared" / "data" / "train"


@functools.lru_cache(maxsize=48)  # bounded: a few MB per entry, no growth over hours
def _read(path: Path, mode: str | None = None) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert(mode) if mode else im)


def _render(image, planes, matrix, out_shape, scale, flow=None):
    """Warp an image and a stack of bool planes; returns image, planes (K, h, w), valid."""
    img = warp(antialias(image, scale), matrix, out_shape, flow)
    stack = np.stack(list(planes) + [np.ones(planes[0].shape, bool)], -1).astype(np.float32)
    chans = [warp(stack[..., i : i + 4], matrix, out_shape, flow) for i in range(0, stack.shape[-1], 4)]
    warped = np.concatenate([c.reshape(out_shape + (-1,)) for c in chans], -1) >= 0.5
    return img, np.moveaxis(warped[..., :-1], -1, 0), warped[..., -1]


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return ys.min(), xs.min(), ys.max() + 1, xs.max() + 1


class CocoObjects(ObjectSet):
    """Object masks (``coco_mval/`` or one's own, see :mod:`.object_sets`) as augmented training views."""

    def sample(self, rng, size=256, pair=False, min_area=None, drop_ref_prob=0.2, max_tries=20) -> TrainingSample:
        """An augmented object view (``coco-still``) or pseudo-video pair (``coco-pair``)."""
        min_area = 0.002 * size * size if min_area is None else min_area
        for _ in range(max_tries):
            image, mask, others = self.read(int(rng.integers(len(self))))
            if not mask.any():
                continue
            matrix, out, scale = choose_view(rng, mask.shape, _bbox(mask), size)
            if mask.sum() * scale**2 < min_area:
                continue
            img, (tgt, oth), valid = _render(image, [mask, others], matrix, out, scale)
            if tgt.sum() < min_area:
                continue
            jitter = int(rng.integers(2**62))
            # Out-of-image pixels stay 0, like the padding the model sees at inference.
            img = photometric(img, np.random.default_rng(jitter)) * valid[..., None]
            sample = TrainingSample(img, tgt, ~valid, others=oth, kind="coco-still")
            if pair:  # the view above becomes the reference; the current frame moved
                move, flow = pseudo_motion(rng, out)
                # The flow is drawn in output pixels; warp() applies it in source pixels.
                cur, (cur_tgt, cur_oth), cur_valid = _render(image, [mask, others], matrix @ move, out,
                                                             scale, flow / scale)
                if cur_tgt.sum() < min_area:
                    continue
                light = rng.uniform(0.9, 1.1) * rng.uniform(0.97, 1.03, 3).astype(np.float32)
                cur = np.clip(photometric(cur, np.random.default_rng(jitter)) * light, 0, 1) * cur_valid[..., None]
                ref = sample
                sample = TrainingSample(cur, cur_tgt, ~cur_valid, others=cur_oth, kind="coco-still")
                if rng.random() >= drop_ref_prob:
                    sample.ref_image, sample.ref_mask = ref.image, degrade_mask(ref.mask, rng)
                    sample.kind = "coco-pair"
            return sample
        raise RuntimeError("no COCO object large enough after augmentation")


class CtcFrames:
    """A Cell Tracking Challenge sequence: ``<seq>/tNNN.tif`` + ``<seq>_ST/SEG/man_segNNN.tif``."""

    def __init__(self, root: str | Path, sequence: str = "02"):
        root = Path(root)
        seg = root / f"{sequence}_ST" / "SEG"
        if not seg.is_dir():
            seg = root / f"{sequence}_GT" / "SEG"
        self.frames = []
        for img in sorted((root / sequence).glob("t*.tif")):
            lab = seg / f"man_seg{img.stem[1:]}.tif"
            if lab.is_file():
                self.frames.append((img, lab))
        if len(self.frames) < 2:
            raise InputError(f"no CTC training frames: fewer than 2 annotated frames under {root}/{sequence}")
        self.normalise = StackNormalizer(0.0, 255.0)  # as the app maps uint8 frames
        self._ids: dict[int, np.ndarray] = {}

    def ids(self, t: int) -> np.ndarray:
        """Instance ids present in frame t (cached: a few ints per frame)."""
        if t not in self._ids:
            present = np.flatnonzero(np.bincount(_read(self.frames[t][1]).ravel()))
            self._ids[t] = present[present > 0]
        return self._ids[t]

    def read(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame t as (H, W, 3) float32 [0, 1] (app normalisation) and (H, W) int ids."""
        img, lab = self.frames[t]
        return self.normalise(_read(img)), _read(lab).astype(np.int32)

    def sample(self, rng, size=256, pair=False, min_area=None, drop_ref_prob=0.2, max_tries=20) -> TrainingSample:
        """One cell (``ctc-still``) or a real frame pair t -> t+1 (``ctc-pair``)."""
        min_area = max(12.0, 0.0005 * size * size) if min_area is None else min_area
        for _ in range(max_tries):
            t = int(rng.integers(len(self.frames) - 1)) + (1 if pair else int(rng.integers(2)))
            image, labels = self.read(t)
            ids = self.ids(t)
            if pair:
                ref_image, ref_labels = self.read(t - 1)
                ids = np.intersect1d(ids, self.ids(t - 1))
            if not len(ids):
                continue
            cell = int(rng.choice(ids))
            mask = labels == cell
            matrix, out, scale = choose_view(rng, mask.shape, _bbox(mask), size, (2.0, 12.0), 0.15, rot90=True)
            if mask.sum() * scale**2 < min_area:
                continue
            img, (tgt, oth), valid = _render(image, [mask, (labels > 0) & ~mask], matrix, out, scale)
            if tgt.sum() < min_area:
                continue
            jitter = int(rng.integers(2**62))
            img = photometric(img, np.random.default_rng(jitter), colour=False) * valid[..., None]
            sample = TrainingSample(img, tgt, ~valid, others=oth, kind="ctc-still")
            if pair and rng.random() >= drop_ref_prob:
                ref_img, (ref_tgt,), _ = _render(ref_image, [ref_labels == cell], matrix, out, scale)
                if ref_tgt.sum() < min_area / 2:
                    continue
                sample.ref_image = photometric(ref_img, np.random.default_rng(jitter), colour=False) * valid[..., None]
                sample.ref_mask = degrade_mask(ref_tgt, rng, max_px=min(8.0, 0.25 * np.sqrt(ref_tgt.sum()) + 1))
                sample.kind = "ctc-pair"
            return sample
        raise RuntimeError("no CTC cell large enough after augmentation")


def texture_sources(coco: CocoObjects, n: int = 64, seed: int = 0, max_side: int = 384) -> list[np.ndarray]:
    """``n`` training images as (h, w, 3) float32 [0, 1] textures for synthetic scenes.

    Shrunk to ``max_side``: 64 of them take ~85 MB (float32, kept for the whole run).
    """
    rng = np.random.default_rng(seed)
    paths = coco.image_paths()
    out = []
    for p in rng.choice(len(paths), min(n, len(paths)), replace=False):
        img = read_image01(paths[p])
        scale = min(1.0, max_side / max(img.shape[:2]))
        if scale < 1:
            img = resize_image(img, (round(img.shape[0] * scale), round(img.shape[1] * scale)))
        out.append(np.ascontiguousarray(img, np.float32))
    return out


def real_sources(
    weights: dict[str, float],
    data_root: str | Path | None = None,
    objects_root: str | Path | None = None,
    exclude_objects: Callable[[str], bool] | None = None,
) -> tuple[CocoObjects | None, CtcFrames | None]:
    """The real-data sources that ``weights`` asks for (see :func:`mixed_stream`).

    Only lists files, so it is also a cheap check that the data is there before a
    (multi-process) run starts.

    Raises
    ------
    InputError
        A weighted source has no data under its folder.
    """
    root = Path(data_root) if data_root is not None else default_data_root()
    coco = None
    coco_root = Path(objects_root) if objects_root is not None else root / "coco_mval"
    if weights.get("coco", 0) > 0:
        coco = CocoObjects(coco_root, exclude_objects)
    elif weights.get("synthetic", 0) > 0 and coco_root.is_dir():
        coco = CocoObjects(coco_root, exclude_objects)  # only for textures; procedural without it
    ctc = CtcFrames(root / "ctc_psc") if weights.get("ctc", 0) > 0 else None
    return coco, ctc


def mixed_stream(
    seed: int,
    size: int = 256,
    weights: dict[str, float] | None = None,
    data_root: str | Path | None = None,
    start: int = 0,
    stride: int = 1,
    pair_prob: float = 0.5,
    drop_ref_prob: float = 0.2,
    n_textures: int = 64,
    objects_root: str | Path | None = None,
    exclude_objects: Callable[[str], bool] | None = None,
) -> Iterator[TrainingSample]:
    """Endless, seeded stream of fixed-size samples from all sources.

    Sample i depends only on (seed, i): a resumed trainer continues the exact stream
    with ``start=i``, and n loader workers split it with ``start=start + w, stride=n``.

    Parameters
    ----------
    seed : int
    size : int
        Every sample is (size, size) (:func:`~napari_ois.train.samples.resize_longest_and_pad`).
    weights : dict, optional
        Relative frequency of ``synthetic``, ``microscopy``, ``coco`` and ``ctc``
        (default :data:`DEFAULT_WEIGHTS`); real sources are loaded only when weighted.
    data_root : path, optional
        Folder with ``coco_mval/`` and ``ctc_psc/`` (default :func:`default_data_root`).
    start : int
        Index of the first sample (resume).
    stride : int
        Step between sample indices (worker sharding).
    pair_prob : float
        Probability that a sample is drawn as a propagation pair.
    drop_ref_prob : float
        Probability that a pair's reference is dropped (the sample becomes a still).
    n_textures : int
        Real images used as textures by the synthetic scenes (procedural if no COCO).
    objects_root : path, optional
        One's own object masks (a mask folder or a COCO JSON, :mod:`.object_sets`) used as
        the ``coco`` source instead of ``<data_root>/coco_mval``.
    exclude_objects : callable, optional
        ``exclude_objects(image_key) -> bool``: images never used (held-out validation).
    """
    weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
    coco, ctc = real_sources(weights, data_root, objects_root, exclude_objects)
    textures = texture_sources(coco, n_textures, seed) if coco is not None and n_textures else None
    makers = {
        "synthetic": lambda rng, pair: natural_scene(rng, size, textures, pair, drop_ref_prob=drop_ref_prob),
        "microscopy": lambda rng, pair: microscopy_scene(rng, size, pair, drop_ref_prob=drop_ref_prob),
        "coco": lambda rng, pair: coco.sample(rng, size, pair, drop_ref_prob=drop_ref_prob),
        "ctc": lambda rng, pair: ctc.sample(rng, size, pair, drop_ref_prob=drop_ref_prob),
    }
    names = [k for k in makers if weights.get(k, 0) > 0]
    if not names or set(weights) - set(makers):
        raise ValueError(f"weights must give some of {list(makers)} a positive weight, got {weights}")
    p = np.array([weights[k] for k in names], float)
    p /= p.sum()
    index = start
    while True:
        rng = np.random.default_rng([seed, index])
        source = names[int(rng.choice(len(names), p=p))]
        yield resize_longest_and_pad(makers[source](rng, rng.random() < pair_prob), size)
        index += stride

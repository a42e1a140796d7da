"""Box-start settings on the held-out *training* objects (never dev).

Usage: python scripts/experiments/box_settings_check.py OBJECTS SETTING [SETTING ...]

OBJECTS is a number N (the first N held-out training objects; there are 30), ``mixK``:
the 30 held-out objects and every K-th of the other training objects (``mix8``: 115 in
all), or ``folder:PATH[:N]``: the first N objects (default 40) of an ``img/`` + ``gt/`` folder
(one CTC *training* frame and its cells, say: microscopy without touching dev). The network has trained on the latter, which flatters it against GrabCut, but the
comparison of two settings of the same network is fair, with about half the standard error.

Each SETTING is ``base`` (the shipped settings), ``grabcut-cv``, ``classical`` or
comma-separated ``key=value`` pairs: attributes of the classical prior's backend
(``rounds=3``, ``alpha=1.0``), of the OIS segmenter
(``box_margin=0.05``) ``prior_work_size=480`` (the prior's working grid) or ``image_size=320`` (the network's
input side); an upper-case key sets that constant of ``core/classical/evidence.py``
(``COLOUR_CORE_QUANTILE=0.5``). A ``backend=classical`` pair applies them to the
classical backend instead of the network's prior. Prints the box-first protocol's
mIoU@1/5/20, the share of objects at IoU >= 0.9 after the box alone, NoC@85/90/95 and NoF@90
over 20 interactions. ``CHECKPOINT=path`` in the environment evaluates that checkpoint instead
of the packaged one; ``DUMP=folder`` writes each setting's per-object NoC there
(``<setting>.json``, object name -> {"85", "90", "95"}) and, for a second setting on, the
NoC@90 difference against the first setting paired object by object.
"""

import copy
import dataclasses
import json
import os
import sys
import time

import torch

from napari_ois.core.backends import get_segmenter
from napari_ois.core.classical import evidence
from napari_ois.datasets.loaders import load_click_items
from napari_ois.datasets.object_sets import ObjectSet, is_held_out_image
from napari_ois.evaluate.click_eval import evaluate_clicks, item_nocs, paired_noc, summarize
from napari_ois.model.checkpoint import load_model
from napari_ois.model.prior import ClassicalPrior
from napari_ois.model.segmenter import OISSegmenter
from napari_ois.train.real_data import default_data_root
from napari_ois.train.trainer import TrainConfig, validation_items

INTERACTIONS = 20
EVIDENCE_CONSTANTS = {key: getattr(evidence, key) for key in dir(evidence) if key.isupper()}


def make_segmenter(setting: str, model):
    """The segmenter a SETTING names, its attributes set."""
    for key, value in EVIDENCE_CONSTANTS.items():  # an earlier setting's constants undone
        setattr(evidence, key, value)
    if setting in ("grabcut-cv", "classical"):
        return get_segmenter(setting, "cpu")
    pairs = [] if setting == "base" else [kv.split("=") for kv in setting.split(",")]
    options = dict(pairs)
    if options.pop("backend", "ois") == "classical":
        segmenter = get_segmenter("classical", "cpu")
        prior_backend = segmenter
    else:
        if "image_size" in options:  # the network's input side (trained at 256)
            model = copy.deepcopy(model)
            model.config = dataclasses.replace(model.config, image_size=int(options.pop("image_size")))
        segmenter = OISSegmenter(model, "cpu")
        if "prior_work_size" in options:
            segmenter.prior = ClassicalPrior(int(options.pop("prior_work_size")))
        prior_backend = segmenter.prior.backend
    for key, value in options.items():
        if key.isupper():
            setattr(evidence, key, type(getattr(evidence, key))(value))
            continue
        target = segmenter if hasattr(segmenter, key) and not hasattr(prior_backend, key) else prior_backend
        current = getattr(target, key)
        if value == "none":
            setattr(target, key, None)
        elif isinstance(current, bool):
            setattr(target, key, value == "1")
        else:
            setattr(target, key, type(current if current is not None else 0.0)(value))
    return segmenter


def check_items(spec: str):
    """The objects OBJECTS names (see the module docstring)."""
    if spec.startswith("folder:"):
        path, _, count = spec[len("folder:"):].partition(":")
        return load_click_items(path, "folder", int(count or 40))
    if not spec.startswith("mix"):
        return validation_items(TrainConfig(validation_items=int(spec)))
    trained = ObjectSet(default_data_root() / "coco_mval").instance_items(lambda key: not is_held_out_image(key))
    return validation_items(TrainConfig(validation_items=30)) + trained[::int(spec[3:])]


torch.set_num_threads(1)
items = check_items(sys.argv[1])
model = load_model(os.environ.get("CHECKPOINT") or None, "cpu")
dump = os.environ.get("DUMP")
first = None
for setting in sys.argv[2:]:
    start = time.perf_counter()
    segmenter = make_segmenter(setting, model)
    results = evaluate_clicks(segmenter, items, INTERACTIONS, init="box")
    summary = summarize(results, INTERACTIONS)
    noc = summary["noc"]
    done_by_box = sum(r.ious[0] >= 0.9 for r in results) / len(results)
    print(f"{setting}: mIoU@1/5/20 {summary['miou_at'][0]:.3f} {summary['miou_at'][4]:.3f} "
          f"{summary['miou_at'][-1]:.3f} IoU>=0.9 at 1 {done_by_box:.1%} "
          f"NoC@85/90/95 {noc['85']:.2f} {noc['90']:.2f} {noc['95']:.2f} NoF@90 {summary['nof']['90']} "
          f"n {summary['n']} ({time.perf_counter() - start:.0f} s)", flush=True)
    if dump:
        run = {"per_item_noc": {r.name: item_nocs(r, INTERACTIONS) for r in results}}
        os.makedirs(dump, exist_ok=True)
        with open(os.path.join(dump, setting.replace("/", "_") + ".json"), "w") as f:
            json.dump(run, f)
        if first is None:
            first = (setting, run)
        else:
            paired = paired_noc(run, first[1], "90")
            if paired is not None:
                mean, se, better, worse, tied = paired
                print(f"  NoC@90 vs {first[0]}: {mean:+.2f} (SE {se:.2f}); fewer clicks on {better}, "
                      f"more on {worse}, tied {tied}", flush=True)

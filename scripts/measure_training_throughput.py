"""Training throughput of the CPU regimes of issue #19: samples per hour, before and after.

Runs a few optimizer steps of each regime in this process (1 torch thread, batch 8, the
default sample mix of shared/data/train, 256 px) and reports, from the trainer's own
per-step times after the first ``--skip`` steps (warm-up, and the feature pool's first fill):

- ``tiny-prior``: today's recipe, MobileNetV4 trunk from scratch and trained;
- ``lite0``: the pretrained EfficientNet-Lite0 trunk, trained;
- ``lite0-frozen``: the same trunk frozen (no gradient, batch-norm statistics fixed);
- ``lite0-pool``: frozen, with a pool of views whose trunk features are cached and reused;
- ``lite0-pool-noprior``: the same without the classical prior (recomputed at every click round).

samples/h counts training samples (batch x steps); fresh views/h the augmented views
encoded (with a pool, fewer than the samples). Writes results/training_throughput.json.

Usage: python scripts/measure_training_throughput.py [--steps 14] [--skip 4]
Run it on an idle machine; it prints the load average before and after.
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from napari_ois.train.trainer import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parent.parent
REGIMES = {
    "tiny-prior": dict(preset="tiny-prior"),
    "lite0": dict(preset="lite0"),
    "lite0-frozen": dict(preset="lite0", freeze_trunk=True),
    "lite0-pool": dict(preset="lite0", freeze_trunk=True, pool_size=32, pool_reuse=4),
    "lite0-pool-noprior": dict(preset="lite0", freeze_trunk=True, pool_size=32, pool_reuse=4,
                               model_overrides={"use_prior": False}),
}


def measure(name: str, steps: int, skip: int) -> dict:
    cfg = TrainConfig(image_size=256, batch_size=8, steps=steps, threads=1, validate_every=0, log_every=1,
                      warmup_steps=1, **REGIMES[name])
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out, log=lambda _: None)
        trainer.run()
        records = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]
    records = [r for r in records if "s" in r][skip:]
    seconds = float(np.sum([r["s"] for r in records]))
    fresh = float(np.sum([r["fresh_views"] for r in records]))
    return {"steps_timed": len(records), "s_per_step": round(seconds / len(records), 3),
            "samples_per_hour": round(3600 * cfg.batch_size * len(records) / seconds),
            "fresh_views_per_hour": round(3600 * fresh / seconds),
            "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--skip", type=int, default=4)
    parser.add_argument("--regimes", default=",".join(REGIMES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = {"machine": f"{os.cpu_count()} CPU cores, 1 torch thread, batch 8, 256 px",
              "load_before": os.getloadavg()[0], "regimes": {}}
    for name in args.regimes.split(","):
        report["regimes"][name] = measure(name, args.steps, args.skip)
        print(name, json.dumps(report["regimes"][name]), flush=True)
    report["load_after"] = os.getloadavg()[0]
    out = ROOT / "results" / "training_throughput.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"load {report['load_before']:.2f} -> {report['load_after']:.2f}; wrote {out}")


if __name__ == "__main__":
    main()

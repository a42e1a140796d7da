"""The training loop behind ``napari-ois train``: resumable, logged, validated, deterministic.

Files in ``out_dir``:
- ``last.pt``   model checkpoint (the format ``load_model`` reads), saved every few minutes;
- ``state.pt``  optimizer + step + wall time, so a killed run resumes where it was;
- ``best.pt``   the checkpoint with the best validation mIoU@5 so far;
- ``log.jsonl`` one JSON line per logged step and per validation;
- ``step_NNNNNN.pt`` checkpoints kept every ``keep_every`` steps (when set).

With ``workers`` > 1 (:mod:`napari_ois.train.parallel`) several processes train one
model data-parallel: each draws its own shard of the sample stream, builds its own
batch (the classical prior and the click simulation are CPU work, one core each) and
their gradients are averaged before every optimizer step, so all workers hold the
same weights. Only worker 0 writes files and validates.

Validation uses held-out *training* images (a fixed 1-in-20 split of the COCO image ids,
never trained on), through the same evaluation code as ``napari-ois eval clicks``; dev/
data is only for reporting, never for choosing a checkpoint.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..evaluate.click_eval import evaluate_clicks, summarize
from ..datasets.layouts import InstanceItem
from ..model.checkpoint import load_model, save_checkpoint
from ..model.config import preset_config
from ..model.network import OISModel, with_box_prompt
from ..model.runtime import resolve_device
from ..model.segmenter import OISSegmenter
from ..progress_bar import ProgressBar
from ..datasets.object_sets import ObjectSet, is_held_out_image
from .real_data import default_data_root, mixed_stream
from .feature_pool import FeaturePool
from .step import StepSettings, training_step


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in the checkpoint metadata)."""

    preset: str = "tiny"
    image_size: int = 320
    batch_size: int = 8
    steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    seed: int = 0
    threads: int = 2
    device: str = "cpu"
    save_every_s: float = 300.0
    log_every: int = 10
    validate_every: int = 250
    validation_items: int = 30
    validation_clicks: int = 10
    data_root: str | None = None
    objects_root: str | None = None
    weights: dict[str, float] | None = None
    init_checkpoint: str | None = None
    model_overrides: dict = field(default_factory=dict)
    step: StepSettings = field(default_factory=StepSettings)
    workers: int = 1
    keep_every: int = 0
    # The CPU regime for pretrained trunks (issue #19): the timm network frozen, and with
    # pool_size > 0 its features of each augmented view cached and reused pool_reuse times
    # (train/feature_pool.py).
    freeze_trunk: bool = False
    pool_size: int = 0
    pool_reuse: int = 4


def _lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0))))


def validation_items(cfg: TrainConfig) -> list[InstanceItem]:
    """The held-out training objects used to pick the best checkpoint (first ``cfg.validation_items``).

    Whole images are held out (:func:`~napari_ois.datasets.object_sets.is_held_out_image`).
    Empty when the split would hold out every image of a small set of one's own: that set
    is then trained on whole (``ObjectSet``), and no ``best.pt`` is chosen.
    """
    root = Path(cfg.objects_root) if cfg.objects_root else (
        Path(cfg.data_root) if cfg.data_root else default_data_root()) / "coco_mval"
    objects = ObjectSet(root)
    if all(is_held_out_image(r.image_key) for r in objects.records):
        return []
    return objects.instance_items(is_held_out_image, cfg.validation_items)


def validate(model: OISModel, items: list[InstanceItem], clicks: int) -> dict:
    """Click-protocol metrics of the current weights on ``items``."""
    was_training = model.training
    model.eval()
    try:
        segmenter = OISSegmenter(model, device=str(next(model.parameters()).device))
        results = evaluate_clicks(segmenter, items, clicks)
        boxed = None
        if model.config.box_prompt:
            boxed = summarize(evaluate_clicks(segmenter, items, clicks, init="box"), clicks)
    finally:
        model.train(was_training)
    summary = summarize(results, clicks)
    metrics = {"miou_at_1": summary["miou_at"][0], "miou_at_5": summary["miou_at"][min(4, clicks - 1)],
               "noc_85": summary["noc"]["85"], "n": summary["n"]}
    if boxed is not None:
        metrics.update(box_miou_at_1=boxed["miou_at"][0], box_noc_85=boxed["noc"]["85"])
    return metrics


class Trainer:
    """Runs, checkpoints and resumes one training run in ``out_dir``."""

    def __init__(self, cfg: TrainConfig, out_dir: str | Path, log: Callable[[str], None] = print,
                 rank: int = 0, world: int = 1):
        self.cfg, self.out, self.log = cfg, Path(out_dir), log
        # rank / world: this process among ``world`` data-parallel workers (1 = plain run).
        self.rank, self.world = rank, world
        self.writes = rank == 0
        self.out.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.model = self._build_model().to(self.device)
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.step, self.wall_time, self.best = 0, 0.0, -1.0
        # Samples drawn so far by all workers together: where the stream resumes, also when
        # a run is resumed with another number of workers.
        self.samples = 0
        self._resume()

    def _build_model(self) -> OISModel:
        if self.cfg.init_checkpoint:
            model = load_model(self.cfg.init_checkpoint, "cpu")
        else:
            config = preset_config(self.cfg.preset, image_size=self.cfg.image_size, **self.cfg.model_overrides)
            model = OISModel(config, load_backbone_weights=True)  # pretrained trunk where the preset names one
        if self.cfg.step.box_start_prob > 0:
            model = with_box_prompt(model)  # box training from a click-only checkpoint
        if self.cfg.freeze_trunk or self.cfg.pool_size:
            model.backbone.freeze_trunk()
        return model.to(memory_format=torch.channels_last).train()

    def _resume(self) -> None:
        state_path, last = self.out / "state.pt", self.out / "last.pt"
        if not (state_path.is_file() and last.is_file()):
            return
        self.model.load_state_dict(load_model(last, "cpu").state_dict())
        state = torch.load(state_path, map_location=self.device, weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.wall_time, self.best = state["step"], state["wall_time"], state.get("best", -1.0)
        self.samples = state.get("samples", self.step * self.cfg.batch_size)  # older states: one worker
        self.log(f"resumed from step {self.step} ({self.wall_time / 60:.1f} min trained)")

    def _metadata(self, metrics: dict | None = None) -> dict:
        return {"data": "shared/data/train (COCO objects minus the 1-in-20 validation images, CTC PhC-C2DL-PSC "
                        "seq 02 frames 0-29) + procedural natural and microscopy scenes",
                "steps": self.step, "wall_time_s": round(self.wall_time, 1),
                "samples_seen": self.samples,
                "train_config": json.loads(json.dumps(asdict(self.cfg), default=str)),
                "metrics": metrics or {}, "hardware": self._hardware()}

    def _hardware(self) -> str:
        """Where the run trains, e.g. 'NVIDIA H200, 15 data-parallel workers' (checkpoint metadata)."""
        where = (torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                 else f"{torch.get_num_threads()} CPU thread(s)")
        return where + (f", {self.world} data-parallel workers" if self.world > 1 else "")

    def save(self, metrics: dict | None = None) -> None:
        """Checkpoint + trainer state, both written atomically (worker 0 only)."""
        if not self.writes:
            return
        save_checkpoint(self.out / "last.pt", self.model, self._metadata(metrics))
        tmp = self.out / "state.pt.tmp"
        torch.save({"optimizer": self.optimizer.state_dict(), "step": self.step, "wall_time": self.wall_time,
                    "best": self.best, "samples": self.samples}, tmp)
        tmp.replace(self.out / "state.pt")

    def _write_log(self, record: dict) -> None:
        if not self.writes:
            return
        with (self.out / "log.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def _sample_rng(self) -> np.random.Generator:
        """The click-simulation generator of this step (and worker): a resumed run replays it."""
        key = [self.cfg.seed, self.step, 1] + ([self.rank] if self.world > 1 else [])
        return np.random.default_rng(key)

    def _shared_click_rounds(self) -> int | None:
        """One number of corrective-click rounds for all workers of this step (None: a plain run draws its own).

        A round costs every sample a classical-prior pass (CPU), so a step with 0 rounds
        takes about half the time of one with 3 (1.3 s against 2.7 s for 8 samples on one
        core); drawn per worker, nearly every step of 15 workers would wait for one that
        drew 3. Shared, the rounds stay uniform over steps and no worker waits for another.
        """
        if self.world == 1:
            return None
        rounds = np.random.default_rng([self.cfg.seed, self.step, 2])
        return int(rounds.integers(0, self.cfg.step.max_iter_clicks + 1))

    def _synchronise(self, stop: bool) -> bool:
        """Average the gradients over the workers; True when any worker asks to stop.

        The stop request rides in the same all-reduce as the gradients, so every
        worker leaves the loop after the same step (a worker stopping alone would
        leave the others waiting in the next all-reduce forever).
        """
        if self.world == 1:
            return stop
        import torch.distributed as dist

        params = [p for p in self.model.parameters() if p.requires_grad]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float().cpu()
                          for p in params] + [torch.tensor([float(stop)])])
        # Gloo reduces CPU tensors on every platform; the copy costs ~ms for this model.
        dist.all_reduce(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = (flat[offset:offset + n] / self.world).reshape(p.shape).to(p.device, p.dtype)
            offset += n
        return bool(flat[-1] > 0)

    def _mean_over_workers(self, record: dict) -> dict:
        """The logged means averaged over all workers (the step time: the slowest worker)."""
        if self.world == 1:
            return record
        import torch.distributed as dist

        keys = [k for k in record if k != "s"]
        values = torch.tensor([record[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(values)
        merged = {k: round(float(v) / self.world, 4) for k, v in zip(keys, values)}
        step_time = torch.tensor([record["s"]], dtype=torch.float64)
        dist.all_reduce(step_time, op=dist.ReduceOp.MAX)
        return merged | {"s": round(float(step_time), 4)}

    def run(self, max_seconds: float | None = None, max_steps: int | None = None) -> None:
        """Train until ``cfg.steps`` (or ``max_seconds`` / ``max_steps`` of this call); resumable at any point."""
        cfg = self.cfg
        # Worker r of n takes samples r, r + n, r + 2n, ...: together they read the one stream.
        stream = mixed_stream(cfg.seed, cfg.image_size, cfg.weights, cfg.data_root,
                              start=self.samples + self.rank, stride=self.world,
                              objects_root=cfg.objects_root, exclude_objects=is_held_out_image)
        pool = FeaturePool(self.model, stream, cfg.pool_size, cfg.pool_reuse, self.device) if cfg.pool_size else None
        items = validation_items(cfg) if cfg.validate_every and self.writes else []
        started, last_save, first_step = time.perf_counter(), time.perf_counter(), self.step
        window: list[dict] = []
        # Only the first worker shows steps (every worker takes each step).
        with ProgressBar(cfg.steps, "train", unit="step", quiet=not self.writes, initial=self.step) as bar:
            while self.step < cfg.steps:
                tick = time.perf_counter()
                trunk, encoded_before = None, pool.encoded if pool is not None else 0
                if pool is not None:
                    samples, *trunk = pool.draw(cfg.batch_size, np.random.default_rng([cfg.seed, 17, self.step, self.rank]))
                else:
                    samples = [next(stream) for _ in range(cfg.batch_size)]
                for group in self.optimizer.param_groups:
                    group["lr"] = _lr_at(cfg, self.step)
                rng = self._sample_rng()
                # Torch's own randomness (order dropout) seeded per step too: a resumed run
                # continues exactly as an uninterrupted one.
                torch.manual_seed(cfg.seed * 1_000_003 + self.step + 7919 * self.rank)
                out = training_step(self.model, samples, rng, cfg.step, self.device, n_iter=self._shared_click_rounds(),
                                    trunk=trunk)
                self.optimizer.zero_grad(set_to_none=True)
                out["loss"].backward()
                want_stop = ((max_seconds is not None and time.perf_counter() - started > max_seconds)
                             or (max_steps is not None and self.step + 1 - first_step >= max_steps))
                stop = self._synchronise(want_stop)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.optimizer.step()
                self.step += 1
                bar.update()
                # Samples read from the stream (where a resumed run continues it): with a pool,
                # only the fresh views it encoded.
                fresh = pool.encoded - encoded_before if pool is not None else cfg.batch_size
                self.samples += fresh * self.world
                elapsed = time.perf_counter() - tick
                self.wall_time += elapsed
                window.append({k: float(v.item() if torch.is_tensor(v) else v) for k, v in out.items()}
                              | {"s": elapsed, "fresh_views": fresh})
                if self.step % cfg.log_every == 0:
                    record = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
                    record = {k: round(v, 4) for k, v in self._mean_over_workers(record).items()}
                    record |= {"step": self.step, "lr": _lr_at(cfg, self.step), "wall_min": round(self.wall_time / 60, 2)}
                    if self.world > 1:
                        record["samples"] = self.samples
                    self._write_log(record)
                    self.log(json.dumps(record))
                    window = []
                if cfg.keep_every and self.step % cfg.keep_every == 0 and self.writes:
                    save_checkpoint(self.out / f"step_{self.step:06d}.pt", self.model, self._metadata())
                if items and self.step % cfg.validate_every == 0:
                    metrics = validate(self.model, items, cfg.validation_clicks)
                    self._write_log({"step": self.step, "validation": metrics})
                    self.log(f"step {self.step} validation: {metrics}")
                    improved = metrics["miou_at_5"] > self.best
                    if improved:
                        self.best = metrics["miou_at_5"]
                    # The state saved here must know this best already: a run resumed from
                    # it would otherwise let a worse later step overwrite best.pt.
                    self.save(metrics)
                    if improved:
                        save_checkpoint(self.out / "best.pt", self.model, self._metadata(metrics))
                    last_save = time.perf_counter()
                elif time.perf_counter() - last_save > cfg.save_every_s:
                    self.save()
                    last_save = time.perf_counter()
                if stop:
                    break
        if self.world > 1:
            self._check_in_sync()
        self.save()

    def _check_in_sync(self) -> None:
        """Raise if the workers' weights differ (they must: same start, same averaged gradients)."""
        import torch.distributed as dist

        with torch.no_grad():
            total = torch.stack([p.double().sum() for p in self.model.parameters()]).sum().cpu()
        low, high = total.clone().reshape(1), total.clone().reshape(1)
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        in_sync = bool(torch.isclose(low, high, rtol=1e-9, atol=1e-9))
        self._write_log({"step": self.step, "workers": self.world, "weights_in_sync": in_sync})
        if not in_sync:
            raise RuntimeError(f"data-parallel workers hold different weights at step {self.step} "
                               f"(checksums {float(low):.9g} .. {float(high):.9g})")

"""Data-parallel training over several processes (``napari-ois train --workers N``).

Why processes: a training step of the prior model is mostly CPU work done one sample
at a time (the classical prior's encoding and random walker at every click round, the
click simulation, the augmentations), while the network itself is small. One process
per core, each building its own batch, scales that work with the cores; on a GPU
machine all workers share the one GPU for the network.

The workers meet through a file rendezvous in the run folder and average gradients
with the Gloo backend (CPU tensors, so it works the same with or without CUDA). The
run folder stays resumable: worker 0 writes ``last.pt`` / ``state.pt`` as a plain run
does, and every worker restarts from them.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import torch

from ..core.errors import OISError
from ..model.checkpoint import resolve_checkpoint
from .real_data import DEFAULT_WEIGHTS, real_sources
from ..datasets.object_sets import is_held_out_image
from .trainer import TrainConfig, Trainer

# How a worker's OISError (bad data folder, missing checkpoint) reads in the traceback text
# that torch.multiprocessing hands to the parent.
_USER_ERROR_PREFIX = "napari_ois.core.errors."


def _worker(rank: int, cfg: TrainConfig, out_dir: str, world: int, rendezvous: str,
            max_seconds: float | None, max_steps: int | None) -> None:
    """One worker process: join the group, train, leave (``torch.multiprocessing`` entry point)."""
    import torch.distributed as dist

    # One core per worker: N workers x N threads would oversubscribe the machine.
    torch.set_num_threads(cfg.threads)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        log = print if rank == 0 else (lambda _line: None)
        trainer = Trainer(cfg, out_dir, log=log, rank=rank, world=world)
        trainer.run(max_seconds=max_seconds, max_steps=max_steps)
        if rank == 0:
            print(f"train: step {trainer.step}/{cfg.steps} with {world} workers, "
                  f"{trainer.wall_time / 60:.1f} min trained, best validation mIoU@5 {trainer.best:.3f} -> {out_dir}")
    finally:
        dist.destroy_process_group()


def run_parallel(cfg: TrainConfig, out_dir: str | Path, max_seconds: float | None = None,
                 max_steps: int | None = None) -> None:
    """Train ``cfg`` with ``cfg.workers`` processes; returns when all have finished.

    Parameters
    ----------
    cfg : TrainConfig
        ``workers`` >= 2; ``batch_size`` is per worker (the optimizer sees
        ``batch_size * workers`` samples a step); ``threads`` is per worker.
    out_dir : path
        The run folder (as for :class:`~napari_ois.train.trainer.Trainer`).

    Raises
    ------
    OISError
        A worker stopped on a user error (e.g. no training data under ``data_root``):
        the same message a plain run gives, without the worker's traceback.
    torch.multiprocessing.ProcessRaisedException
        A worker failed otherwise (its traceback is in the message); the others are stopped.
    """
    # Checked here, once: a missing data folder or checkpoint would otherwise stop every worker.
    real_sources(cfg.weights or DEFAULT_WEIGHTS, cfg.data_root, cfg.objects_root, is_held_out_image)
    if cfg.init_checkpoint:
        resolve_checkpoint(cfg.init_checkpoint)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # A fresh rendezvous file per launch: a stale one from a killed run would hang the group.
    rendezvous = out / f".rendezvous-{uuid.uuid4().hex}"
    try:
        # "spawn": forked children cannot use CUDA, and spawn behaves the same on every OS.
        torch.multiprocessing.start_processes(
            _worker, args=(cfg, str(out), cfg.workers, str(rendezvous.resolve()), max_seconds, max_steps),
            nprocs=cfg.workers, start_method="spawn")
    except torch.multiprocessing.ProcessRaisedException as exc:
        last = str(exc).strip().splitlines()[-1]
        if last.startswith(_USER_ERROR_PREFIX):
            raise OISError(last.split(": ", 1)[-1]) from None
        raise
    finally:
        if rendezvous.exists():
            os.remove(rendezvous)

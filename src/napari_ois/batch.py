"""``napari-ois batch``: propagate many videos/stacks listed in a manifest, one dask task per row.

Each row of the manifest names an input, its prompts and/or boxes CSV (or keyframe masks) and a
labels output (``.zarr`` recommended: written frame by frame, never held whole). Rows
run as tasks on a dask.distributed cluster: a :class:`distributed.LocalCluster` of
worker processes on this machine by default, or the scheduler at ``--scheduler
ADDRESS`` (its workers must have napari-ois installed and see the same paths). A row
that fails (bad input, a crash, a worker that died) does not stop the others; the
summary JSON gives every row's status and message.

Manifest: CSV with a header, or JSON (a list of objects, or ``{"runs": [...]}``), with
the fields ``input``, ``out``, ``prompts`` and/or ``boxes`` or else ``masks``, and optionally
``direction`` (forward, backward, both). Relative paths are taken from the manifest's
folder.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .core.config import DIRECTIONS, AnnotationConfig
from .core.errors import InputError, OISError
from .progress_bar import ProgressBar

MANIFEST_FIELDS = ("input", "prompts", "boxes", "masks", "out", "direction")


@dataclass
class BatchRow:
    """One run of a manifest (paths absolute; ``problem`` says why it cannot run, if so)."""

    row: int
    input: str = ""
    out: str = ""
    prompts: str | None = None
    masks: str | None = None
    boxes: str | None = None
    direction: str | None = None
    problem: str | None = None


def _read_manifest_records(path: Path) -> list[dict[str, Any]]:
    """The manifest's rows as dicts (CSV or JSON)."""
    if not path.is_file():
        raise InputError(f"manifest not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"manifest {path} is not valid JSON: {exc}") from None
        records = data.get("runs") if isinstance(data, dict) else data
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InputError(f"manifest {path} must be a list of objects (or {{\"runs\": [...]}})")
        return records
    try:
        reader = csv.DictReader(text.splitlines())
        names = [n.strip() for n in reader.fieldnames or []]
        records = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except csv.Error as exc:
        raise InputError(f"manifest {path} is not a readable CSV: {exc}") from None
    missing = [f for f in ("input", "out") if f not in names]
    if missing or not ({"prompts", "boxes", "masks"} & set(names)):
        raise InputError(f"manifest {path} needs the columns input, out and prompts, boxes or masks "
                         f"(got {', '.join(names) or 'no header'})")
    return records


def read_manifest(path: str | Path) -> list[BatchRow]:
    """Read a manifest; rows that cannot run carry a ``problem`` instead of raising.

    Raises
    ------
    InputError
        The manifest itself is missing, unreadable, lacks columns or holds no row.
    """
    path = Path(path).expanduser()
    base = path.resolve().parent
    records = _read_manifest_records(path)
    if not records:
        raise InputError(f"manifest {path} holds no row")

    def resolved(value: Any) -> str | None:
        text = str(value).strip() if value is not None else ""
        return str((base / Path(text).expanduser()).resolve()) if text else None

    rows, outputs = [], {}
    for number, record in enumerate(records, start=1):
        unknown = sorted(set(record) - set(MANIFEST_FIELDS))
        row = BatchRow(number, input=resolved(record.get("input")) or "", out=resolved(record.get("out")) or "",
                       prompts=resolved(record.get("prompts")), masks=resolved(record.get("masks")),
                       boxes=resolved(record.get("boxes")),
                       direction=(str(record.get("direction") or "").strip() or None))
        if unknown:
            row.problem = f"unknown field(s) {', '.join(unknown)}; use {', '.join(MANIFEST_FIELDS)}"
        elif not row.input or not row.out:
            row.problem = "the row needs an input and an out"
        elif (row.prompts is None and row.boxes is None) == (row.masks is None):
            row.problem = "give masks, or else prompts and/or boxes"
        elif row.direction is not None and row.direction not in DIRECTIONS:
            row.problem = f"direction must be one of {', '.join(DIRECTIONS)}, got {row.direction!r}"
        elif row.out in outputs:
            row.problem = f"row {outputs[row.out]} writes the same output {row.out}"
        else:
            outputs[row.out] = number
        rows.append(row)
    return rows


def run_row(row: BatchRow, config: dict[str, Any], direction: str) -> dict[str, Any]:
    """Propagate one manifest row (runs on a dask worker); never raises, returns its status.

    Returns
    -------
    dict
        ``{"row", "input", "out", "status": "ok"|"error", "error", "objects", "frames",
        "frames_annotated", "frames_propagated", "seconds", "worker"}``.
    """
    from .api import propagate_file

    start = time.perf_counter()
    status: dict[str, Any] = {"row": row.row, "input": row.input, "out": row.out, "worker": _worker_name()}
    try:
        if row.problem:
            raise InputError(row.problem)
        summary = propagate_file(row.input, row.out, prompts=row.prompts, masks=row.masks, boxes=row.boxes,
                                 direction=row.direction or direction,
                                 config=AnnotationConfig(**config).validate())
        status.update(status="ok", objects=summary.objects, frames=summary.n_frames,
                      frames_annotated=summary.frames_annotated, frames_propagated=summary.frames_propagated)
    except OISError as exc:  # bad input: its message says it all
        status.update(status="error", error=str(exc))
    except Exception as exc:  # a bug: keep the row's trace for the report, go on with the others
        status.update(status="error", error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=8))
    status["seconds"] = round(time.perf_counter() - start, 3)
    return status


def _worker_name() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def _client(scheduler: str | None, workers: int | None, n_rows: int):
    """A dask.distributed client: on ``scheduler``, or on a new LocalCluster of worker processes."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise OISError("napari-ois batch needs dask.distributed: pip install napari-ois[batch]") from None
    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as exc:
            raise OISError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n_workers = workers or max(1, min(n_rows, cores))
    # One thread per worker process: each task runs numpy/torch code that threads itself.
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster), cluster


def run_batch(
    manifest: str | Path,
    scheduler: str | None = None,
    workers: int | None = None,
    config: AnnotationConfig | None = None,
    direction: str = "both",
    summary_path: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every row of ``manifest`` as a dask task and return the summary.

    Parameters
    ----------
    manifest : path
        CSV or JSON manifest (see the module docstring).
    scheduler : str, optional
        Address of a running dask.distributed scheduler (``tcp://host:8786``); a
        LocalCluster of ``workers`` processes when None.
    workers : int, optional
        Worker processes of the LocalCluster (default: one per row, at most one per core).
    config : AnnotationConfig, optional
        Backend and settings for every row.
    direction : {"forward", "backward", "both"}
        For rows that give none.
    summary_path : path, optional
        Write the summary JSON here too.

    Returns
    -------
    dict
        ``{"manifest", "scheduler", "workers", "rows": [per-row status], "ok", "failed", "seconds"}``.
    """
    config = (config or AnnotationConfig()).validate()
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if workers is not None and workers < 1:
        raise InputError("--workers must be >= 1")
    rows = read_manifest(manifest)
    if summary_path and not Path(summary_path).expanduser().parent.is_dir():
        raise InputError(f"folder of the summary {summary_path} does not exist")
    start = time.perf_counter()
    client, cluster = _client(scheduler, workers, len(rows))
    statuses: dict[int, dict[str, Any]] = {}
    try:
        from distributed import as_completed

        futures = {client.submit(run_row, row, asdict(config), direction, pure=False,
                                 key=f"napari-ois-batch-row-{row.row}-{time.time_ns()}"): row for row in rows}
        bar = ProgressBar(len(rows), "batch", unit="row", quiet=log is None)
        for future in as_completed(futures):  # an error here is reported by the caller, the bar just stops
            row = futures[future]
            try:
                status = future.result()
            except Exception as exc:  # the task never returned: e.g. its worker died (KilledWorker)
                status = {"row": row.row, "input": row.input, "out": row.out, "status": "error",
                          "error": f"the task failed on the cluster: {type(exc).__name__}: {exc}"}
            statuses[row.row] = status
            if log is not None:
                done = f"[{len(statuses)}/{len(rows)}] row {row.row}"
                log(f"batch: {done} ok, {status.get('frames', 0)} frame(s) in {status.get('seconds', 0):.1f} s "
                    f"-> {row.out}" if status["status"] == "ok" else f"batch: {done} failed: {status['error']}")
            bar.update()
        bar.close()
        n_workers = len(client.scheduler_info().get("workers", {}))
        address = client.scheduler.address
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    ordered = [statuses[row.row] for row in rows]
    payload = {
        "manifest": str(Path(manifest).expanduser().resolve()),
        "scheduler": scheduler or f"LocalCluster ({address})",
        "workers": n_workers,
        "backend": config.backend,
        "rows": ordered,
        "ok": sum(s["status"] == "ok" for s in ordered),
        "failed": sum(s["status"] != "ok" for s in ordered),
        "seconds": round(time.perf_counter() - start, 3),
    }
    if summary_path:
        Path(summary_path).expanduser().write_text(json.dumps(payload, indent=2) + "\n")
    return payload

"""CPU threads of the model: how many, and how they wait.

torch's CPU kernels run on an OpenMP pool (libgomp in the Linux wheels). By default its
threads *spin* while they wait for work. On a machine whose cores are already busy (napari
beside a training job, two notebooks) the spinning threads take the cores from the ones
doing the work: beside two busy processes the demo took 3.4x its idle CPU time
(README, *The demo beside other work*). A passive wait
policy makes waiting threads sleep instead.

libgomp reads ``OMP_WAIT_POLICY`` once, when the library is loaded (with torch), so
:func:`prefer_passive_waiting` runs when ``napari_ois`` is imported, before torch; a value
the user set is kept. If torch was imported before ``napari_ois``, the setting cannot take
effect and torch's default stays.
"""

from __future__ import annotations

import os
import sys

#: Environment variable read as the default thread count (else torch's own default).
THREADS_ENV = "NAPARI_OIS_THREADS"


def prefer_passive_waiting() -> None:
    """Ask OpenMP to sleep rather than spin while waiting (unless the user chose a policy)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def requested_threads() -> int | None:
    """``$NAPARI_OIS_THREADS`` if set to a positive integer, else None (no request)."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    try:
        if int(value) >= 1:
            return int(value)
    except ValueError:
        pass
    print(f"napari-ois: warning: {THREADS_ENV}={value!r} is not a positive integer; ignored", file=sys.stderr)
    return None


_torch_default: int | None = None  # torch's own count (OMP_NUM_THREADS or its core count), read once


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count; returns the count in force.

    Parameters
    ----------
    threads : int, optional
        Threads for one model call. ``None``: ``$NAPARI_OIS_THREADS`` if set, else
        torch's own default (which follows ``OMP_NUM_THREADS``). More threads than
        cores never helps, so the count is capped at :func:`usable_cores`.

    Raises
    ------
    ValueError
        ``threads`` below 1.
    """
    global _torch_default
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    import torch  # here, not at module level: the wait policy must be set before torch loads

    if _torch_default is None:
        _torch_default = torch.get_num_threads()
    count = min(threads or requested_threads() or _torch_default, usable_cores())
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def torch_threads() -> int:
    """The intra-op thread count torch uses now (imports torch)."""
    import torch

    return torch.get_num_threads()

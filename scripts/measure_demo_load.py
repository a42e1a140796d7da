"""CPU seconds and wall time of the headless demo, on an idle machine and beside busy processes.

Usage::

    python scripts/measure_demo_load.py --busy 0 --busy 2 --json results/demo_load.json
    python scripts/measure_demo_load.py --src /path/to/old/checkout/src --label before ...

Each run starts ``napari-ois demo --headless`` in a fresh process (optionally with
``--threads N`` or another source tree first on ``PYTHONPATH``, e.g. a worktree of an older
commit for a before/after comparison) while ``--busy`` processes spin on the other cores;
the demo's own CPU time comes from ``wait4``, so the busy processes are not counted.
Results are appended to the JSON file (one record per run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUSY_CODE = "while True:\n    pass\n"


def run_demo(busy: int, threads: int | None, src: str | None, sample: str) -> dict:
    """One headless demo beside ``busy`` spinning processes; its CPU seconds, wall seconds and output."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    spinners = [subprocess.Popen([sys.executable, "-c", BUSY_CODE]) for _ in range(busy)]
    try:
        time.sleep(1.0 if busy else 0.0)  # let the spinners take their cores
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "napari_ois.cli", "demo", "--headless", "--sample", sample,
                       "--out", str(Path(tmp) / "labels.tif")]
            if threads is not None:
                command += ["--threads", str(threads)]
            start = time.perf_counter()
            proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            stdout, stderr = proc.stdout.read(), proc.stderr.read()
            proc.stdout.close()
            proc.stderr.close()
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"demo failed: {stderr.strip()[-500:]}")
    return {"busy_processes": busy, "threads": threads, "sample": sample,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "wall_s": round(wall, 1),
            "stdout": stdout.strip().splitlines()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, action="append", default=None,
                        help="spinning processes beside the demo (repeatable; default 0 and 2)")
    parser.add_argument("--threads", type=int, default=None, help="--threads of the demo (default: its own)")
    parser.add_argument("--src", default=None, help="source tree put first on PYTHONPATH (e.g. an older commit's src)")
    parser.add_argument("--label", default="now", help="name of this code version in the JSON")
    parser.add_argument("--sample", default="video")
    parser.add_argument("--json", default=None, help="append the records to this JSON list")
    args = parser.parse_args()
    records = []
    for busy in args.busy or [0, 2]:
        load = round(os.getloadavg()[0], 2)  # 1-minute load average before this run (should be ~0 idle)
        record = {"label": args.label, **run_demo(busy, args.threads, args.src, args.sample),
                  "machine": f"{platform.machine()}, {os.cpu_count()} CPU core(s)", "load_before": load}
        print(json.dumps(record), flush=True)
        records.append(record)
    if args.json:
        path = Path(args.json)
        old = json.loads(path.read_text()) if path.exists() else []
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(old + records, indent=2) + "\n")


if __name__ == "__main__":
    main()

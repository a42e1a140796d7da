"""Terminal progress bars, thread settings and the CLI's help and error lines."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from napari_ois import progress_bar
from napari_ois.cli import build_parser, main
from napari_ois.core.clicks import Click, write_prompts
from napari_ois.progress_bar import ProgressBar
from napari_ois.threads import configure_threads, requested_threads, usable_cores


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _not_quiet():
    progress_bar.set_quiet(False)
    yield
    progress_bar.set_quiet(False)


def test_plain_lines_every_tenth_when_not_a_terminal():
    stream = io.StringIO()
    with ProgressBar(50, "propagate", unit="frame", stream=stream) as bar:
        for _ in range(50):
            bar.update()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10  # one per 10 %, the last at 100 %
    assert lines[0].startswith("propagate:  10% 5/50") and "frame/s" in lines[0]
    assert "100% 50/50" in lines[-1]
    assert "\r" not in stream.getvalue()


def test_a_run_ending_early_says_how_far_it_got_and_an_error_prints_no_line():
    stream = io.StringIO()
    with ProgressBar(100, "propagate", unit="frame", stream=stream) as bar:
        bar.update(3)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and " 3/100" in lines[0]
    failed = io.StringIO()
    with pytest.raises(RuntimeError):
        with ProgressBar(100, "propagate", stream=failed) as bar:
            bar.update(3)
            raise RuntimeError("boom")
    assert failed.getvalue() == ""


def test_live_bar_on_a_terminal_and_quiet_silences_everything():
    terminal = _Terminal()
    with ProgressBar(4, "eval clicks", unit="object", stream=terminal) as bar:
        bar.write("  item 1: IoU 0.9")
        bar.update(4)
    text = terminal.getvalue()
    assert "\r" in text and "4/4" in text and "item 1: IoU 0.9" in text
    progress_bar.set_quiet(True)
    silent = _Terminal()
    with ProgressBar(4, "x", stream=silent) as bar:
        bar.write("detail")
        bar.update(4)
    progress_bar.message("status", stream=silent)
    assert silent.getvalue() == ""


def test_resumed_bar_starts_at_the_steps_done():
    stream = io.StringIO()
    with ProgressBar(100, "train", unit="step", stream=stream, initial=40) as bar:
        bar.update(10)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("train:  50% 50/100")


def test_thread_count_is_capped_and_validated(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.delenv("NAPARI_OIS_THREADS", raising=False)
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        assert configure_threads(10_000) == usable_cores()
        with pytest.raises(ValueError):
            configure_threads(0)
        monkeypatch.setenv("NAPARI_OIS_THREADS", "1")
        assert requested_threads() == 1 and configure_threads() == 1
        monkeypatch.setenv("NAPARI_OIS_THREADS", "many")
        assert requested_threads() is None
        # No request: torch's own default (what OMP_NUM_THREADS gave it), not a count of ours.
        assert configure_threads() == min(_torch_default_count(), usable_cores())
    finally:
        torch.set_num_threads(before)


def _torch_default_count() -> int:
    from napari_ois import threads  # the count torch had before napari-ois set one

    return threads._torch_default


def test_cli_threads_reach_child_processes_and_quiet_too(monkeypatch):
    import subprocess as sp

    monkeypatch.delenv("NAPARI_OIS_THREADS", raising=False)
    monkeypatch.delenv("NAPARI_OIS_QUIET", raising=False)
    try:
        progress_bar.set_quiet(True)
        code = "import napari_ois.progress_bar as p, napari_ois.threads as t; print(p.is_quiet(), t.configure_threads())"
        out = sp.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                     env=dict(os.environ, NAPARI_OIS_THREADS="1"))
        assert out.stdout.split() == ["True", "1"]
    finally:
        progress_bar.set_quiet(False)
    assert "NAPARI_OIS_QUIET" not in os.environ


def test_import_asks_openmp_to_wait_passively_unless_the_user_chose():
    code = "import os, napari_ois; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "ACTIVE"


def _all_actions(parser):
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            for sub in action.choices.values():
                yield from _all_actions(sub)
        elif action.option_strings and action.dest != "help":
            yield parser.prog, action


def test_every_option_of_every_command_has_help():
    missing = [f"{prog} {action.option_strings[0]}" for prog, action in _all_actions(build_parser())
               if not action.help]
    assert missing == []


def test_help_shows_defaults_and_every_demo_sample(capsys):
    with pytest.raises(SystemExit):
        main(["propagate", "--help"])
    text = capsys.readouterr().out
    assert "(default: both)" in text and "(default: ois)" in text and "(default: auto)" in text
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "nuclei3d" in capsys.readouterr().out


def test_bad_thread_count_is_a_one_line_error(tmp_path, capsys):
    assert main(["segment", "x.tif", "--prompts", "p.csv", "--out", str(tmp_path / "o.tif"), "--threads", "0"]) == 2
    assert capsys.readouterr().err.strip() == "napari-ois: error: --threads must be at least 1, got 0"


def test_click_outside_the_image_names_the_file_row(tmp_path, capsys):
    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((2, 20, 30), np.uint8))
    prompts = tmp_path / "clicks.csv"
    write_prompts(prompts, [Click(1, 0, 5, 5), Click(1, 1, 50, 5)])
    code = main(["segment", str(tmp_path / "stack.tif"), "--prompts", str(prompts), "--out",
                 str(tmp_path / "o.tif"), "--backend", "classical", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"napari-ois: error: {prompts}, line 3: click at (y=50.0, x=5.0) is outside")
    assert not (tmp_path / "o.tif").exists()

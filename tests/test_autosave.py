"""Autosave, crash recovery and replay (core/autosave, ``napari-ois replay``).

The kill test runs a real propagation in a child process, SIGKILLs it mid-run and
checks that every frame the child reported complete comes back bit-exact and that no
frame comes back half-written.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import BrightComponentSegmenter, moving_squares

from napari_ois.api import open_frames
from napari_ois.cli import main
from napari_ois.core.autosave import (
    AutosaveStore,
    autosave_folder,
    read_autosave,
    read_journal,
    replay_autosave,
    restore_sessions,
)
from napari_ois.core.clicks import Click
from napari_ois.core.errors import InputError
from napari_ois.core.segmenter import Prediction
from napari_ois.core.backends import get_segmenter
from napari_ois.core.session import AnnotationSession

TESTS = Path(__file__).parent


def fake_factory(config):
    return BrightComponentSegmenter()


def squares_file(tmp_path, n_frames=10, size=40):
    video, truth = moving_squares(n_frames, size)
    path = tmp_path / "squares.tif"
    tifffile.imwrite(path, video)
    return path, truth


def autosaved_session(path, segmenter=None, folder=None):
    """A session over the file at ``path`` (fake segmenter unless one is given), autosaved."""
    session = AnnotationSession(open_frames(path), segmenter=segmenter or BrightComponentSegmenter())
    store = AutosaveStore.create(folder or autosave_folder(path), session.labels, image_path=path)
    store.attach(session)
    return session, store


def labels_of(session):
    return np.array(np.asarray(session.labels))


def annotate_a_history(session):
    """Clicks, a keyframe mask, a full run, a stopped run, undo/redo, a clear and its undo."""
    session.add_click(Click(1, 0, 8, 5))
    session.add_click(Click(2, 0, 28, 9))
    session.run_propagation(1, "forward")
    session.undo()
    session.redo()
    run = session.begin_run(2, "forward")
    results = session.propagation(2, "forward")
    for _ in range(4):  # stopped after 4 frames, as with the Stop button
        session.apply_result(run, next(results))
    session.end_run(run)
    mask = np.zeros(session.frames.shape, bool)
    mask[30:34, 30:34] = True
    session.set_keyframe_mask(3, 6, mask)
    session.clear_object(3)
    session.undo()
    session.add_click(Click(2, 7, 28, 9 + 14, positive=False))
    session.undo()  # leaves one redo step


def test_restore_brings_back_labels_clicks_keyframes_scores_and_history(tmp_path):
    path, _ = squares_file(tmp_path)
    session, store = autosaved_session(path)
    annotate_a_history(session)
    store.close()

    restored = restore_sessions(autosave_folder(path), segmenter_factory=fake_factory)
    (again,) = restored.sessions.values()
    assert np.array_equal(restored.labels, labels_of(session))
    assert list(again.prompts) == list(session.prompts)
    assert again.keyframes == session.keyframes
    assert again.scores == session.scores
    assert [a.kind for a in again.undo_stack] == [a.kind for a in session.undo_stack]
    assert [a.frames for a in again.undo_stack] == [a.frames for a in session.undo_stack]
    assert len(again.redo_stack) == len(session.redo_stack) == 1
    # The click probabilities too (the next click on a frame refines them, not the mask).
    assert again._probs.keys() == session._probs.keys()
    for key, prob in session._probs.items():
        assert np.array_equal(np.asarray(again._probs[key]), np.asarray(prob)), key
    # The history works after the restore as it did before: redo, then undo everything.
    for step in ["redo"] + ["undo"] * len(session.undo_stack) + ["redo", "redo"]:
        getattr(again, step)()
        getattr(session, step)()
        assert np.array_equal(labels_of(again), labels_of(session)), step
        assert list(again.prompts) == list(session.prompts)


def test_torn_last_record_is_ignored_with_a_warning_and_cut_off_on_resume(tmp_path):
    path, truth = squares_file(tmp_path)
    session, store = autosaved_session(path)
    session.add_click(Click(1, 0, 8, 5))
    session.run_propagation(1, "forward")
    store.close()
    journal = autosave_folder(path) / "journal.jsonl"
    complete = journal.read_bytes()
    with journal.open("ab") as fh:  # what a kill in the middle of a write leaves
        fh.write(b'{"op":"frame","s":1,"run":1,"frame":3,"objects":{"1":{"mask":["eJz')

    contents = read_autosave(autosave_folder(path))
    assert any("torn record" in w for w in contents.warnings)
    restored = restore_sessions(autosave_folder(path), segmenter_factory=fake_factory)
    (again,) = restored.sessions.values()
    assert np.array_equal(restored.labels == 1, truth == 1)
    assert sorted(again.scores[1]) == list(range(10))  # the click's frame 0 and 9 propagated

    store = restored.resume_autosave()  # appending first cuts the torn bytes off
    assert journal.read_bytes().startswith(complete)
    again.add_click(Click(2, 0, 28, 9))
    store.close()
    read = read_journal(journal)
    assert read.warnings == []
    assert read.records[-1]["op"] == "action" and read.records[-1]["action"]["object"] == 2


CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[3])
    from conftest import BrightComponentSegmenter
    from napari_ois.api import open_frames
    from napari_ois.core.autosave import AutosaveStore
    from napari_ois.core.clicks import Click
    from napari_ois.core.session import AnnotationSession

    class Slow(BrightComponentSegmenter):
        def predict(self, embedding, clicks, prev_prob=None, reference=None):
            if reference is not None:
                time.sleep(0.04)
            return super().predict(embedding, clicks, prev_prob, reference)

    image, folder = sys.argv[1], sys.argv[2]
    session = AnnotationSession(open_frames(image), segmenter=Slow())
    store = AutosaveStore.create(folder, session.labels, image_path=image)
    store.attach(session)
    session.add_click(Click(1, 0, 8, 5))
    session.add_click(Click(2, 0, 28, 9))
    for obj in (1, 2):
        # on_frame runs after the frame is applied (and autosaved): "done" = reported complete
        session.run_propagation(obj, "forward", on_frame=lambda r, obj=obj: print("done", obj, r.frame, flush=True))
    print("finished", flush=True)
""")


@pytest.mark.parametrize("kill_after", [5, 30])
def test_kill_mid_propagation_loses_no_completed_frame(tmp_path, kill_after):
    n = 24
    path, truth = squares_file(tmp_path, n_frames=n, size=64)
    folder = tmp_path / "autosave.ois"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, str(script), str(path), str(folder), str(TESTS)],
                             stdout=subprocess.PIPE, text=True, env=env)
    reported = []
    for line in child.stdout:
        if line.startswith("done"):
            reported.append(tuple(int(v) for v in line.split()[1:]))
            if len(reported) == kill_after:
                # Land anywhere in the next frame: while it is computed or written.
                time.sleep(random.Random(kill_after).uniform(0.0, 0.05))
                os.kill(child.pid, signal.SIGKILL)
                break
    rest = child.stdout.read()  # lines the child printed before it died are reported too
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the child finished before it was killed"
    reported += [tuple(int(v) for v in ln.split()[1:]) for ln in rest.splitlines() if ln.startswith("done")]
    assert len(reported) >= kill_after

    restored = restore_sessions(folder, segmenter_factory=fake_factory)
    labels = restored.labels
    for obj, frame in reported:  # every reported frame, bit-exact
        assert np.array_equal(labels[frame] == obj, truth[frame] == obj), (obj, frame)
    on_disk = set()
    for frame in range(n):
        for obj in (1, 2):
            mask = labels[frame] == obj
            if mask.any():  # a frame is complete or absent, never half-written
                assert np.array_equal(mask, truth[frame] == obj), (obj, frame)
                on_disk.add((obj, frame))
    keyframes = {(1, 0), (2, 0)}
    assert set(reported) <= on_disk - keyframes
    assert len(on_disk - keyframes - set(reported)) <= 1  # at most the frame in flight

    (session,) = restored.sessions.values()
    assert session.keyframes == {1: {0}, 2: {0}} and len(session.prompts) == 2
    for obj, frame in reported:
        assert frame in session.scores[obj]
    # The cut run is one undo step holding the frames it finished ...
    killed_obj = reported[-1][0]
    journaled = set(session.undo_stack[-1].frames)
    assert session.undo_stack[-1].object_id == killed_obj and {f for o, f in reported if o == killed_obj} <= journaled
    session.undo()
    assert not any((labels_of(session)[f] == killed_obj).any() for f in journaled)
    session.redo()
    # ... and the work goes on from there to the same end result as an uninterrupted run.
    for obj in (1, 2):
        session.run_propagation(obj, "forward")
    assert np.array_equal(labels_of(session), truth)


def test_a_multi_object_run_cut_short_is_restored_and_replayed(tmp_path):
    path, truth = squares_file(tmp_path)
    session, store = autosaved_session(path)
    session.add_click(Click(1, 0, 8, 5))
    session.add_click(Click(2, 0, 28, 9))
    run = session.begin_multi_run([1, 2], direction="forward")
    results = session.multi_propagation([1, 2], "forward")
    for _ in range(5):  # the process dies after 5 frames: end_run is never called
        session.apply_multi_result(run, next(results))
    expected = labels_of(session)
    store.close()

    restored = restore_sessions(autosave_folder(path), segmenter_factory=fake_factory)
    (again,) = restored.sessions.values()
    assert np.array_equal(restored.labels, expected)
    assert np.array_equal(expected[:6], truth[:6]) and not expected[6:].any()
    assert sorted(again.undo_stack[-1].frames) == [1, 2, 3, 4, 5]  # the cut run is one undo step
    again.undo()
    assert not labels_of(again)[1:].any()
    result = replay_autosave(autosave_folder(path), segmenter_factory=fake_factory)
    assert result.identical and result.frames_propagated == 5 and result.warnings == []


def test_replay_with_the_classical_backend_reproduces_the_labels(tmp_path, capsys):
    video = np.zeros((6, 48, 56), np.uint8)
    for t in range(6):
        yy, xx = np.mgrid[:48, :56]
        video[t] = 40 + 30 * ((xx // 4 + yy // 4) % 2)  # textured background
        video[t][(yy - 22) ** 2 + (xx - 16 - 3 * t) ** 2 < 81] = 220  # a disc moving right
    path = tmp_path / "disc.tif"
    tifffile.imwrite(path, video)
    session, store = autosaved_session(path, segmenter=get_segmenter("classical"))
    session.add_click(Click(1, 0, 22, 16))
    session.add_click(Click(1, 0, 5, 5, positive=False))
    session.run_propagation(1, "both")
    session.add_click(Click(1, 4, 22, 28))  # a correction, then a re-propagation from it
    session.run_propagation(1, "forward", start=4)
    session.undo()
    plane = np.asarray(session.labels[2]).copy()
    plane[40:44, 40:44] = 5  # a manual edit, as painted in napari: data first, then the record
    session.labels.primary[2] = plane
    store.record_paint((2,), plane)
    store.close()
    # Reopened (the recorded backend), then one more click refining frame 0's probability.
    restored = restore_sessions(autosave_folder(path))
    (again,) = restored.sessions.values()
    store = restored.resume_autosave()
    again.add_click(Click(1, 0, 30, 20, positive=False))
    store.close()

    out, report = tmp_path / "replayed.tif", tmp_path / "replay.json"
    assert main(["replay", str(path), "--out", str(out), "--json", str(report)]) == 0
    line = capsys.readouterr().out
    assert "identical to the autosaved labels" in line and "1: 1.000" in line
    result = json.loads(report.read_text())
    assert result["identical"] is True and result["iou"] == {"1": 1.0, "5": 1.0}
    assert np.array_equal(tifffile.imread(out), labels_of(again))


def test_replay_after_a_restore_matches_the_continued_session(tmp_path):
    path, _ = squares_file(tmp_path)
    session, store = autosaved_session(path)
    session.add_click(Click(1, 0, 8, 5))
    session.run_propagation(1, "both")
    store.close()
    restored = restore_sessions(autosave_folder(path), segmenter_factory=fake_factory)
    (again,) = restored.sessions.values()
    store = restored.resume_autosave()
    again.add_click(Click(2, 3, 28, 15))
    again.run_propagation(2, "both")
    again.undo()
    again.redo()
    store.close()
    result = replay_autosave(autosave_folder(path), segmenter_factory=fake_factory)
    assert result.identical and result.iou == {1: 1.0, 2: 1.0} and result.warnings == []
    assert np.array_equal(result.labels, labels_of(again))


def test_replay_reports_a_mismatch_per_object(tmp_path):
    path, _ = squares_file(tmp_path)
    session, store = autosaved_session(path)
    session.add_click(Click(1, 0, 8, 5))
    session.add_click(Click(2, 0, 28, 9))
    session.run_propagation(2, "forward")
    store.close()

    class ForgetsObjectTwo(BrightComponentSegmenter):
        def predict(self, embedding, clicks, prev_prob=None, reference=None):
            pred = super().predict(embedding, clicks, prev_prob, reference)
            if reference is not None:
                pred.prob[:] = 0  # propagation finds nothing
            return pred

    result = replay_autosave(autosave_folder(path), segmenter_factory=lambda c: ForgetsObjectTwo())
    assert not result.identical
    assert result.iou[1] == 1.0 and result.iou[2] < 0.2
    assert result.warnings == ["run 1: the recomputed run ended before frame 2, which the recorded run reached"]


def test_a_run_recorded_without_its_parameters_is_replayed_from_its_masks(tmp_path):
    path, truth = squares_file(tmp_path)
    session, store = autosaved_session(path)
    session.add_click(Click(1, 0, 8, 5))
    run = session.begin_run(1)  # a caller that does not say how it propagates
    for result in session.propagation(1, "forward"):
        session.apply_result(run, result)
    session.end_run(run)
    store.close()
    result = replay_autosave(autosave_folder(path), segmenter_factory=fake_factory)
    assert result.identical and result.frames_propagated == 9
    assert np.array_equal(result.labels == 1, truth == 1)


def test_replay_errors_go_to_stderr_with_exit_code_2(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nothing.ois")]) == 2
    assert "no autosave" in capsys.readouterr().err
    path, _ = squares_file(tmp_path)
    session, store = autosaved_session(path)
    session.add_click(Click(1, 0, 8, 5))
    store.close()
    path.unlink()  # the annotated image moved away
    assert main(["replay", str(autosave_folder(path)), "--out", str(tmp_path / "x.tif")]) == 2
    assert "is not there any more" in capsys.readouterr().err
    assert not (tmp_path / "x.tif").exists()


def test_a_failing_disk_stops_the_autosave_but_not_the_annotation(tmp_path):
    path, truth = squares_file(tmp_path)
    session, store = autosaved_session(path)
    errors = []
    store.on_error = errors.append

    def disk_full(record):
        raise OSError(28, "No space left on device")

    store.journal.append = disk_full
    session.add_click(Click(1, 0, 8, 5))
    session.run_propagation(1, "forward")
    assert len(errors) == 1 and "No space left" in errors[0] and not store.active
    assert np.array_equal(labels_of(session) == 1, truth == 1)


def test_an_existing_autosave_is_not_overwritten_unless_asked(tmp_path):
    path, _ = squares_file(tmp_path)
    session, store = autosaved_session(path)
    session.add_click(Click(1, 0, 8, 5))
    store.close()
    with pytest.raises(InputError, match="already holds an autosave"):
        AutosaveStore.create(autosave_folder(path), session.labels, image_path=path)
    AutosaveStore.create(autosave_folder(path), np.zeros_like(labels_of(session)), path, replace=True).close()
    previous = read_autosave(autosave_folder(path).with_name("squares.tif.ois.previous"))
    assert previous.summary().startswith("1 click(s)")


def test_numpy_scores_from_a_backend_are_journaled(tmp_path):
    class NumpyScores(BrightComponentSegmenter):
        def predict(self, embedding, clicks, prev_prob=None, reference=None):
            pred = super().predict(embedding, clicks, prev_prob, reference)
            return Prediction(pred.prob, np.float32(0.75))

    path, _ = squares_file(tmp_path)
    session, store = autosaved_session(path, segmenter=NumpyScores())
    session.add_click(Click(np.int64(1), np.int64(0), np.float32(8), np.float32(5)))
    session.run_propagation(1, "forward")
    assert store.active and store.error is None
    store.close()
    (again,) = restore_sessions(autosave_folder(path), segmenter_factory=fake_factory).sessions.values()
    assert again.scores == {1: {f: 0.75 for f in range(10)}}

"""Long random sessions: undo/redo stays consistent, the undo history stays packed.

The memory figures themselves come from ``napari-ois bench --soak`` (README,
"Hardening"); these tests check the bookkeeping, not timings or RSS.
"""

from __future__ import annotations

import json

import numpy as np

from napari_ois.cli import main
from napari_ois.core.clicks import Click
from napari_ois.core.config import AnnotationConfig
from napari_ois.core.frames import FrameStack, StackNormalizer
from napari_ois.core.packed_prob import PackedProb
from napari_ois.core.session import AnnotationSession
from napari_ois.evaluate.bench import SyntheticVideo
from napari_ois.evaluate.soak import _apply, _Mix, history_bytes, run_soak


def _session(n_frames=6, size=32):
    video = SyntheticVideo(n_frames, size, size, radius=6)
    # The soak's backend (`bench --soak` measures classical): its near-binary maps are
    # what the packed-history size check below was written for.
    config = AnnotationConfig(backend="classical")
    return video, AnnotationSession(FrameStack(video, normalizer=StackNormalizer(0.0, 255.0)), config=config)


def test_every_undo_and_redo_returns_the_exact_earlier_labels():
    """400 random operations; after each undo/redo the labels equal a snapshot taken when that step was made."""
    video, session = _session()
    mix = _Mix(np.random.default_rng(7), video, objects=3)
    undo_snapshots, redo_snapshots = [], []  # labels before each step on the undo / redo stack
    for _ in range(400):
        op = mix.next()
        before = session.labels.copy()
        steps = len(session.undo_stack)
        _apply(session, op)
        if op[0] == "undo" and undo_snapshots:
            assert np.array_equal(session.labels, undo_snapshots.pop())
            redo_snapshots.append(before)
        elif op[0] == "redo" and redo_snapshots:
            assert np.array_equal(session.labels, redo_snapshots.pop())
            undo_snapshots.append(before)
        elif len(session.undo_stack) > steps:
            undo_snapshots.append(before)
            redo_snapshots.clear()
        else:  # nothing recorded, so nothing may have changed
            assert np.array_equal(session.labels, before), op
        assert len(undo_snapshots) == len(session.undo_stack) and len(redo_snapshots) == len(session.redo_stack)
        # clicks, keyframes and probabilities follow the labels
        for obj in session.objects():
            for frame in session.keyframes_of(obj):
                assert (obj, frame) in session._probs


def test_redo_restores_the_probability_a_click_left():
    video, session = _session()
    cy, cx = video.center(0)
    session.add_click(Click(1, 0, cy, cx))
    session.add_click(Click(1, 0, 2, 2, positive=False))
    after = np.asarray(session._probs[(1, 0)])
    session.undo()
    session.redo()
    assert np.array_equal(np.asarray(session._probs[(1, 0)]), after)
    # the history holds packed maps, far smaller than float32 ones
    for action in session.undo_stack:
        for states in action.probs.values():
            assert all(s is None or isinstance(s, PackedProb) for s in states)
    assert history_bytes(session) < 2 * after.nbytes / 10


def test_undo_history_keeps_within_its_budget_and_the_latest_steps():
    video, session = _session(n_frames=4, size=64)
    session.config.undo_mb = 0.02  # 20 kB: a handful of clicks on 64x64 frames
    rng = np.random.default_rng(3)
    snapshots = []
    for k in range(30):
        snapshots.append(session.labels.copy())
        cy, cx = video.center(k % 4)
        session.add_click(Click(1 + k % 2, k % 4, cy + rng.uniform(-20, 20), cx + rng.uniform(-20, 20), k % 3 > 0))
    kept = len(session.undo_stack)
    assert 1 <= kept < 30 and session.forgotten_steps == 30 - kept
    assert history_bytes(session) <= 0.02 * 2**20 or kept == 1
    while session.undo() is not None:
        pass
    # undoing every kept step leads back to the labels before the oldest kept one
    assert np.array_equal(session.labels, snapshots[30 - kept])


def test_keyframe_sets_are_shared_between_clicks():
    video, session = _session()
    cy, cx = video.center(0)
    for k in range(5):
        session.add_click(Click(1, 0, cy + k, cx))
    sets = [a.keyframes for a in session.undo_stack]
    assert all(s[0] is sets[1][0] and s[1] is sets[1][0] for s in sets[1:])  # one frozenset, not 8
    session.undo()
    session.add_click(Click(1, 1, *video.center(1)))
    assert session.undo_stack[-1].keyframes == (frozenset({0}), frozenset({0, 1}))


def test_packed_probability_round_trip():
    prob = np.random.default_rng(0).random((17, 23)).astype(np.float32)
    prob[0, 0], prob[0, 1] = np.nan, 1.0
    restored = np.asarray(PackedProb(prob))
    assert restored.shape == prob.shape and restored.dtype == np.float32
    assert restored[0, 0] == 0.0 and restored[0, 1] == 1.0
    assert np.abs(restored[1:] - prob[1:]).max() <= 1 / 510 + 1e-7


def test_soak_command_writes_figures_and_plot(tmp_path, capsys):
    out = tmp_path / "soak.json"
    assert main(["bench", "--soak", "150", "--size", "24x24", "--soak-frames", "4", "--json", str(out)]) == 0
    line = capsys.readouterr().out
    assert line.startswith("soak: 150 operations") and "redo all -> same labels: True" in line
    payload = json.loads(out.read_text())
    assert sum(payload["counts"].values()) == 150
    assert payload["undo_all_gives_empty_labels"] and payload["redo_all_gives_final_labels"]
    assert len(payload["samples"]["rss_mb"]) == len(payload["samples"]["operations"]) >= 2
    assert out.with_suffix(".png").stat().st_size > 1000


def test_soak_figures_from_the_api():
    payload = run_soak(operations=60, height=16, width=20, n_frames=3, sample_every=20)
    assert payload["samples"]["operations"] == [0, 20, 40, 60]
    assert payload["undo_all_gives_empty_labels"] and payload["redo_all_gives_final_labels"]

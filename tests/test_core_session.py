"""Session, propagation and undo/redo with a deterministic fake segmenter."""

import numpy as np
import pytest

from napari_ois.core.clicks import Click
from napari_ois.core.errors import InputError
from napari_ois.core.frames import FrameStack
from napari_ois.core.session import AnnotationSession


def make_session(video, segmenter):
    return AnnotationSession(FrameStack(video), segmenter=segmenter)


def test_click_updates_that_frame_only(squares, fake_segmenter):
    video, truth = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(1, 3, 8, 3 + 2 * 3))
    assert np.array_equal(session.labels[3] == 1, truth[3] == 1)
    assert session.labels[[0, 1, 2, 4]].max() == 0
    assert session.keyframes_of(1) == [3]


def test_click_outside_image_is_rejected_and_changes_nothing(squares, fake_segmenter):
    video, _ = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(1, 0, 8, 4))
    before = session.labels.copy()
    for bad in (Click(1, 0, -1, 4), Click(1, 0, 8, 40), Click(1, 10, 8, 4), Click(0, 0, 8, 4)):
        with pytest.raises(InputError):
            session.add_click(bad)
    assert np.array_equal(session.labels, before)
    assert len(session.prompts) == 1


@pytest.mark.parametrize("direction,expected", [("forward", range(4, 10)), ("backward", range(0, 5)), ("both", range(10))])
def test_propagation_directions(squares, fake_segmenter, direction, expected):
    video, truth = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(1, 4, 8, 3 + 8))
    session.run_propagation(1, direction)
    for t in range(10):
        if t in expected:
            assert np.array_equal(session.labels[t] == 1, truth[t] == 1), t
        else:
            assert not (session.labels[t] == 1).any(), t


def test_meets_in_the_middle_and_never_overwrites_keyframes(squares, fake_segmenter):
    video, _ = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(1, 0, 8, 3))
    session.add_click(Click(1, 9, 8, 21))
    # A negative click on the keyframe makes it deliberately differ from what
    # propagation would produce; it must survive the run.
    session.add_click(Click(1, 9, 8, 21, positive=False))
    order = []
    session.run_propagation(1, "both", on_frame=lambda r: order.append((r.frame, r.source)))
    assert sorted(f for f, _ in order) == list(range(1, 9))
    # Fronts alternate from both ends: 1 (from 0) then 8 (from 9) ...
    assert order[:2] == [(1, 0), (8, 9)]
    assert not (session.labels[9] == 1).any()


def test_undo_redo_of_clicks_and_whole_runs(squares, fake_segmenter):
    video, truth = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(1, 0, 8, 3))
    after_click = session.labels.copy()
    session.run_propagation(1, "forward")
    after_run = session.labels.copy()
    assert (after_run[1:] == 1).any()
    session.undo()
    assert np.array_equal(session.labels, after_click)
    session.undo()
    assert session.labels.max() == 0 and len(session.prompts) == 0 and session.keyframes_of(1) == []
    session.redo()
    session.redo()
    assert np.array_equal(session.labels, after_run)
    assert session.undo() is not None and session.redo() is not None
    assert session.redo() is None


def test_other_objects_are_never_overwritten(squares, fake_segmenter):
    video, truth = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(2, 0, 28, 8))
    session.labels[0][5, 5] = 7  # a hand-painted label of another object
    session.add_click(Click(1, 0, 8, 3))
    assert session.labels[0][5, 5] == 7
    assert np.array_equal(session.labels[0] == 2, truth[0] == 2)


def test_correction_repropagates_only_until_agreement(squares, fake_segmenter):
    video, _ = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(1, 0, 8, 3))
    session.run_propagation(1, "forward")
    session.config.agree_frames = 2
    # Correct frame 4 by hand with the same mask: re-propagation must stop after
    # agree_frames agreeing frames instead of recomputing the whole tail.
    session.set_keyframe_mask(1, 4, session.object_mask(1, 4))
    done = []
    session.run_propagation(1, "forward", start=4, on_frame=lambda r: done.append(r.frame))
    assert done == [5, 6]


def test_headless_correction_repropagates_every_frame_that_changes(squares, fake_segmenter):
    video, truth = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(1, 0, 8, 3))
    session.run_propagation(1, "forward")
    session.config.agree_frames = 2
    # The correction adds the second square: every later frame changes, so the
    # re-propagation must not stop early. (It did when the earlier mask was read after
    # run_propagation had already written the new one: it then agreed with itself.)
    session.set_keyframe_mask(1, 4, truth[4] > 0)
    done = []
    session.run_propagation(1, "forward", start=4, on_frame=lambda r: done.append(r.frame))
    assert done == [5, 6, 7, 8, 9]
    assert all(np.array_equal(session.labels[t] == 1, truth[t] > 0) for t in range(4, 10))


def test_cancelled_run_leaves_complete_frames_and_is_undoable(squares, fake_segmenter):
    video, truth = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(1, 0, 8, 3))
    before = session.labels.copy()
    run = session.begin_run(1)
    gen = session.propagation(1, "forward")
    for _ in range(3):
        session.apply_result(run, next(gen))
    gen.close()  # what Stop does: no further frame is computed
    session.end_run(run)
    for t in range(1, 4):
        assert np.array_equal(session.labels[t] == 1, truth[t] == 1)
    assert session.labels[4:].max() == 0
    session.undo()
    assert np.array_equal(session.labels, before)


def test_clear_object_and_undo(squares, fake_segmenter):
    video, _ = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(1, 0, 8, 3))
    session.add_click(Click(2, 0, 28, 8))
    session.run_propagation(1, "forward")
    full = session.labels.copy()
    assert session.clear_object(1) == 10
    assert not (session.labels == 1).any() and (session.labels == 2).any()
    session.undo()
    assert np.array_equal(session.labels, full)
    assert session.keyframes_of(1) == [0]


def test_per_click_path_does_not_reencode(squares, fake_segmenter):
    video, _ = squares
    session = make_session(video, fake_segmenter)
    for x in (3, 4, 5, 6):
        session.add_click(Click(1, 0, 8, x))
    assert fake_segmenter.encode_calls == 1 and fake_segmenter.predict_calls == 4


def test_4d_axis_choice_walks_z_at_a_time_point(fake_segmenter):
    video, truth = __import__("conftest").moving_squares()
    tzyx = np.stack([video, video[::-1]])  # T=2, Z=10
    stack = FrameStack(tzyx, axis=1, fixed={0: 1})
    session = AnnotationSession(stack, segmenter=fake_segmenter)
    session.add_click(Click(1, 9, 8, 3))  # z=9 at t=1 is the original frame 0
    session.run_propagation(1, "backward")
    assert session.labels.shape == (2, 10, 40, 40)
    assert session.labels[0].max() == 0
    assert np.array_equal(session.labels[1, ::-1] == 1, truth == 1)


def test_scores_and_worst_frame(squares, fake_segmenter):
    video, _ = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(1, 0, 8, 3))
    session.run_propagation(1, "forward")
    assert set(session.scores[1]) == set(range(10))  # the clicked frame is scored too
    assert session.worst_frame(1) in range(1, 10)  # keyframes are never the 'worst'


def test_correction_start_is_a_keyframe_of_an_already_propagated_object(squares, fake_segmenter):
    video, _ = squares
    session = make_session(video, fake_segmenter)
    session.add_click(Click(1, 0, 8, 3))
    assert session.correction_start(1, 0) is None  # annotated, never propagated: a full run
    session.run_propagation(1, "forward")
    assert session.correction_start(1, 4) is None  # a propagated frame, not a keyframe
    session.set_keyframe_mask(1, 4, session.object_mask(1, 4))
    assert session.correction_start(1, 4) == 4
    assert session.correction_start(2, 4) is None  # another object: nothing propagated

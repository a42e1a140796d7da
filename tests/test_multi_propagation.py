"""Multi-object one-pass propagation: encoding once, order-aware overlaps, undo, streamed outputs."""

from dataclasses import dataclass

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from conftest import BrightComponentSegmenter
from napari_ois.api import propagate_file
from napari_ois.cli import main
from napari_ois.core.errors import InputError
from napari_ois.core.frames import FrameStack
from napari_ois.core.multi_propagation import resolve_overlaps
from napari_ois.core.segmenter import EmbeddingCache, Prediction
from napari_ois.core.session import AnnotationSession


def three_squares(n_frames: int = 10, size: int = 48):
    """(T, Y, X) uint8 video of three separate bright squares moving right, and their labels."""
    video = np.zeros((n_frames, size, size), np.uint8)
    truth = np.zeros((n_frames, size, size), np.uint16)
    for t in range(n_frames):
        x = 2 + 2 * t
        for obj, (y0, value) in enumerate(((3, 255), (19, 220), (35, 190)), start=1):
            video[t, y0 : y0 + 8, x : x + 8] = value
            truth[t, y0 : y0 + 8, x : x + 8] = obj
    return video, truth


def annotate_frame(session, truth, frame, ids=(1, 2, 3)):
    for obj in ids:
        session.set_keyframe_mask(obj, frame, truth[frame] == obj)


# ----------------------------------------------------------------- encoding once
def test_each_frame_is_encoded_once_for_all_objects_even_with_a_one_frame_cache():
    video, truth = three_squares()
    loads = []
    stack = FrameStack(video)

    def load(frame):
        loads.append(frame)
        return stack[frame]

    segmenter = BrightComponentSegmenter()
    # A cache that keeps a single embedding: any revisit of a frame would re-encode it.
    cache = EmbeddingCache(segmenter, load, max_bytes=1)
    session = AnnotationSession(stack, segmenter=segmenter, cache=cache)
    annotate_frame(session, truth, 0)
    session.run_multi_propagation(direction="forward")
    assert sorted(loads) == list(range(10))  # every frame once, for three objects
    assert segmenter.predict_calls == 3 * 9
    for t in range(10):
        assert np.array_equal(session.labels[t], truth[t]), t

    # The object-by-object walk over the same cache encodes frames once per object.
    loads.clear()
    other = AnnotationSession(stack, segmenter=BrightComponentSegmenter(), cache=cache)
    annotate_frame(other, truth, 0)
    for obj in (1, 2, 3):
        other.run_propagation(obj, "forward")
    assert len(loads) > 2 * 10


def test_both_directions_from_a_middle_keyframe_encode_each_frame_once():
    video, truth = three_squares()
    segmenter = BrightComponentSegmenter()
    session = AnnotationSession(FrameStack(video), segmenter=segmenter)
    annotate_frame(session, truth, 4)
    frames = []
    session.run_multi_propagation(direction="both", on_frame=lambda r: frames.append(r.frame))
    assert frames == [5, 6, 7, 8, 9, 3, 2, 1, 0]  # forward sweep, then backward sweep
    assert segmenter.encode_calls == 10
    assert all(np.array_equal(session.labels[t], truth[t]) for t in range(10))


# ------------------------------------------------------------------- overlaps
def test_overlap_goes_to_the_higher_probability_without_depth():
    a = np.zeros((20, 20), np.float32)
    b = np.zeros((20, 20), np.float32)
    a[0:10, 0:10] = 0.9
    b[5:15, 5:15] = 0.6
    masks = resolve_overlaps([(1, a), (2, b)])
    assert masks[1][5:10, 5:10].all() and not masks[2][5:10, 5:10].any()
    assert masks[2][10:15, 10:15].all() and not (masks[1] & masks[2]).any()
    # The order of the candidates does not matter, only the probabilities.
    swapped = resolve_overlaps([(2, b), (1, a)])
    assert all(np.array_equal(masks[o], swapped[o]) for o in (1, 2))


def test_overlap_goes_to_the_object_in_front_when_depth_is_given():
    a = np.zeros((20, 20), np.float32)
    b = np.zeros((20, 20), np.float32)
    a[0:10, 0:10] = 0.9
    b[5:15, 5:15] = 0.6
    depth = np.zeros((20, 20), np.float32)
    depth[5:15, 5:15] = 1.0  # b is closer, though less probable
    masks = resolve_overlaps([(1, a), (2, b)], depth=depth)
    assert masks[2][5:15, 5:15].all()
    assert not masks[1][5:10, 5:10].any() and masks[1][0:5, 0:10].all()
    # A flat depth map says nothing about order: the probability decides again.
    flat = resolve_overlaps([(1, a), (2, b)], depth=np.full((20, 20), 3.0, np.float32))
    assert flat[1][5:10, 5:10].all()


@dataclass
class _FrameEmbedding:
    frame: int
    nbytes: int = 8


class LayeredSegmenter:
    """Two squares with known amodal masks; square 2 passes in front of square 1.

    ``predict`` returns the whole (amodal) square the reference overlaps, with
    probability 0.9 for square 1 and 0.7 for square 2, so without depth square 1
    wins the overlap and with depth square 2 (in front) does. Frame index is read
    from pixel (0, 0) of the image.
    """

    name = "layered"
    probability = {1: 0.9, 2: 0.7}

    def __init__(self, n_frames: int, size: int = 40, use_depth: bool = True):
        self.size, self.use_depth = size, use_depth
        self.amodal = {1: [], 2: []}
        for t in range(n_frames):
            one = np.zeros((size, size), bool)
            one[10:22, 10:22] = True  # still
            two = np.zeros((size, size), bool)
            two[14:26, 2 + 2 * t : 14 + 2 * t] = True  # moving right, across square 1
            self.amodal[1].append(one)
            self.amodal[2].append(two)
        self.encode_calls = 0

    def video(self) -> np.ndarray:
        frames = np.zeros((len(self.amodal[1]), self.size, self.size), np.uint8)
        frames[:, 0, 0] = np.arange(len(frames))
        return frames

    def encode(self, image):
        self.encode_calls += 1
        return _FrameEmbedding(int(round(float(image[0, 0, 0]) * 255)))

    def predict(self, embedding, clicks, prev_prob=None, reference=None):
        ref = reference.mask
        ref_frame = reference.embedding.frame
        obj = max((1, 2), key=lambda o: (self.amodal[o][ref_frame] & ref).sum())
        prob = self.amodal[obj][embedding.frame] * np.float32(self.probability[obj])
        return Prediction(prob.astype(np.float32), 1.0)

    def frame_depth(self, embedding):
        if not self.use_depth:
            return None
        depth = np.zeros((self.size, self.size), np.float32)
        depth[self.amodal[1][embedding.frame]] = 0.5
        depth[self.amodal[2][embedding.frame]] = 1.0  # square 2 is closer
        return depth


def layered_session(use_depth=True, n_frames=8):
    segmenter = LayeredSegmenter(n_frames, use_depth=use_depth)
    session = AnnotationSession(FrameStack(segmenter.video()), segmenter=segmenter)
    session.set_keyframe_mask(1, 0, segmenter.amodal[1][0])
    session.set_keyframe_mask(2, 0, segmenter.amodal[2][0] & ~segmenter.amodal[1][0])
    return session, segmenter


@pytest.mark.parametrize("use_depth", [True, False])
def test_session_resolves_overlaps_by_depth_else_by_probability(use_depth):
    session, seg = layered_session(use_depth)
    session.labels[5][0, 39] = 7  # a label of an object outside the run
    session.run_multi_propagation(direction="forward")
    front, back = (2, 1) if use_depth else (1, 2)
    for t in range(1, 8):
        overlap = seg.amodal[1][t] & seg.amodal[2][t]
        assert overlap.any()
        labels = np.asarray(session.labels[t])
        assert (labels[overlap] == front).all(), t
        # Each object keeps its pixels outside the overlap; nothing else is labelled.
        for obj in (1, 2):
            assert (labels[seg.amodal[obj][t] & ~overlap] == obj).all(), (t, obj)
        assert set(np.unique(labels)) <= {0, 1, 2, 7}
    assert session.labels[5][0, 39] == 7
    assert seg.encode_calls == 8


@pytest.mark.parametrize("use_depth", [True, False])
def test_objects_meeting_from_opposite_sweeps_are_resolved_by_depth_too(use_depth):
    # Object 1 annotated on the first frame (forward sweep), object 2 on the last
    # (backward sweep): on the frames between they meet from opposite directions.
    segmenter = LayeredSegmenter(8, use_depth=use_depth)
    session = AnnotationSession(FrameStack(segmenter.video()), segmenter=segmenter)
    session.set_keyframe_mask(1, 0, segmenter.amodal[1][0])
    session.set_keyframe_mask(2, 7, segmenter.amodal[2][7])
    session.run_multi_propagation(direction="both")
    front = 2 if use_depth else 1  # without depth the object that got there first keeps it
    for t in range(1, 7):
        overlap = segmenter.amodal[1][t] & segmenter.amodal[2][t]
        assert (session.labels[t][overlap] == front).all(), t
        for obj in (1, 2):
            assert (session.labels[t][segmenter.amodal[obj][t] & ~overlap] == obj).all(), (t, obj)
    assert np.array_equal(session.labels[7] == 2, segmenter.amodal[2][7])  # keyframe kept
    assert segmenter.encode_calls == 8


def test_undo_of_a_multi_run_gives_back_pixels_taken_from_another_object():
    session, seg = layered_session(use_depth=True)
    session.run_propagation(1, "forward")  # square 1 alone first: it holds the overlaps
    before = session.labels.copy()
    session.run_multi_propagation([1, 2], direction="forward")
    after = session.labels.copy()
    assert not np.array_equal(before, after)
    assert (after[3][seg.amodal[1][3] & seg.amodal[2][3]] == 2).all()
    action = session.undo()
    assert action.parts and {p.object_id for p in action.parts} == {1, 2}
    assert np.array_equal(session.labels, before)  # one undo step for the whole run
    session.redo()
    assert np.array_equal(session.labels, after)


# ----------------------------------------------- keyframes, ids, later objects
def test_keyframes_and_ids_are_preserved():
    video, truth = three_squares()
    session = AnnotationSession(FrameStack(video), segmenter=BrightComponentSegmenter())
    annotate_frame(session, truth, 0)
    # Object 2's keyframe on frame 6 deliberately differs from what propagation gives.
    partial = truth[6] == 2
    partial[:, : partial.shape[1] // 2 + 4] = False
    session.set_keyframe_mask(2, 6, partial)
    computed = []
    session.run_multi_propagation(direction="both", on_frame=lambda r: computed.append((r.frame, set(r.masks))))
    assert np.array_equal(session.labels[6] == 2, partial)
    assert all(not (f == 6 and 2 in objs) for f, objs in computed)
    assert set(np.unique(session.labels)) == {0, 1, 2, 3}
    for t in range(10):
        for obj in (1, 3):
            assert np.array_equal(session.labels[t] == obj, truth[t] == obj), (t, obj)


def test_adding_an_object_after_propagation_leaves_the_others_alone():
    video, truth = three_squares()
    session = AnnotationSession(FrameStack(video), segmenter=BrightComponentSegmenter())
    annotate_frame(session, truth, 0, ids=(1, 2))
    session.run_multi_propagation(direction="forward")
    first_two = session.labels.copy()
    annotate_frame(session, truth, 3, ids=(3,))
    session.run_multi_propagation([3], direction="both")
    labels = session.labels
    assert np.array_equal(np.where(labels == 3, 0, labels), first_two)
    assert np.array_equal(labels == 3, truth == 3)
    session.undo()  # the object-3 run only
    assert np.array_equal(np.where(session.labels == 3, 0, session.labels), first_two)
    assert not (session.labels[np.arange(10) != 3] == 3).any()


def test_unknown_object_or_direction_is_an_input_error():
    video, truth = three_squares()
    session = AnnotationSession(FrameStack(video), segmenter=BrightComponentSegmenter())
    with pytest.raises(InputError):
        session.run_multi_propagation()  # nothing annotated
    annotate_frame(session, truth, 0, ids=(1,))
    with pytest.raises(InputError):
        session.run_multi_propagation([1, 5])
    with pytest.raises(InputError):
        session.multi_propagation(direction="sideways")  # refused at once, not on the first frame
    assert session.labels[1:].max() == 0


# ------------------------------------------------------------------ cancelling
def test_cancel_mid_run_leaves_each_frame_untouched_or_complete():
    video, truth = three_squares()
    full = AnnotationSession(FrameStack(video), segmenter=BrightComponentSegmenter())
    annotate_frame(full, truth, 5)
    full.run_multi_propagation(direction="both")

    session = AnnotationSession(FrameStack(video), segmenter=BrightComponentSegmenter())
    annotate_frame(session, truth, 5)
    before = session.labels.copy()
    results = session.multi_propagation(direction="both")
    run = session.begin_multi_run([1, 2, 3])
    for _ in range(3):
        session.apply_multi_result(run, next(results))
    results.close()  # what Stop does: no further frame is computed
    session.end_run(run)
    assert run.frames == [6, 7, 8]
    for t in range(10):
        same = np.array_equal(session.labels[t], before[t])
        done = np.array_equal(session.labels[t], full.labels[t])
        assert same or done, t
        assert done == (t in (5, 6, 7, 8)), t
    session.undo()
    assert np.array_equal(session.labels, before)


# ------------------------------------------------------------ ois depth method
def test_ois_frame_depth_uses_only_the_valid_area_at_frame_size():
    torch = pytest.importorskip("torch")
    from napari_ois.model.network import EncoderCache
    from napari_ois.model.preprocess import Geometry
    from napari_ois.model.segmenter import OISEmbedding, OISSegmenter

    geometry = Geometry.fit((30, 60), 64)  # resized to (32, 64): top half of the input is image
    depth = torch.full((1, 1, 8, 8), 100.0)  # padding rows carry a value that must not leak
    depth[:, :, :4, :] = torch.linspace(0.0, 1.0, 8).view(1, 1, 1, 8)  # closer to the right
    cache = EncoderCache(torch.zeros(1, 4, 4, 4), torch.tensor([[32, 64]]), depth=depth)
    result = OISSegmenter.frame_depth(object.__new__(OISSegmenter), OISEmbedding(cache, geometry))
    assert result.shape == (30, 60) and result.dtype == np.float32
    assert result.max() <= 1.0 + 1e-5 and result[:, -1].mean() > result[:, 0].mean()
    no_depth = OISEmbedding(EncoderCache(torch.zeros(1, 4, 4, 4), torch.tensor([[32, 64]])), geometry)
    assert OISSegmenter.frame_depth(object.__new__(OISSegmenter), no_depth) is None


# ------------------------------------------------------- CLI / API, streamed out
@pytest.fixture
def fake_backend(monkeypatch):
    """The CLI builds its backend by name: give it the test double with exact answers."""
    monkeypatch.setattr("napari_ois.core.session.get_segmenter", lambda *a, **k: BrightComponentSegmenter())


def write_inputs(tmp_path):
    video, truth = three_squares()
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, video)
    keys = np.zeros_like(truth)
    keys[4] = truth[4]
    masks = tmp_path / "keys.tif"
    tifffile.imwrite(masks, keys)
    return stack, masks, truth


@pytest.mark.parametrize("out_name", ["labels.tif", "labels.zarr", "labels_png"])
def test_cli_propagates_all_objects_and_writes_the_right_labels(tmp_path, capsys, fake_backend, out_name):
    stack, masks, truth = write_inputs(tmp_path)
    out = tmp_path / out_name
    args = ["propagate", str(stack), "--masks", str(masks), "--direction", "both", "--out", str(out)]
    assert main(args) == 0
    assert "3 object(s), 10 frame(s), 3 annotated + 27 propagated" in capsys.readouterr().out
    if out.suffix == ".tif":
        labels = tifffile.imread(out)
    elif out.suffix == ".zarr":
        labels = zarr.open_array(str(out), mode="r")[...]
    else:
        labels = np.stack([np.asarray(Image.open(p)) for p in sorted(out.glob("*.png"))])
    assert labels.dtype == np.uint16
    assert np.array_equal(labels, truth)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no scratch left


def test_zarr_output_holds_each_frame_on_disk_before_the_run_ends(tmp_path, fake_backend):
    stack, masks, truth = write_inputs(tmp_path)
    out = tmp_path / "labels.zarr"
    seen = []

    def check_on_disk(object_id, result):
        assert not out.exists()  # the output appears only when complete
        (tmp,) = [p for p in tmp_path.iterdir() if p.name.startswith(".labels.zarr.tmp")]
        on_disk = zarr.open_array(str(tmp), mode="r")[result.frame]
        assert np.array_equal(on_disk == object_id, result.mask)
        seen.append(result.frame)

    propagate_file(stack, out, masks=masks, direction="forward", on_frame=check_on_disk)
    assert sorted(set(seen)) == [5, 6, 7, 8, 9]
    assert np.array_equal(zarr.open_array(str(out), mode="r")[5:], truth[5:])


def test_tiff_output_streams_from_an_on_disk_scratch_and_an_error_keeps_the_old_output(tmp_path, fake_backend):
    stack, masks, truth = write_inputs(tmp_path)
    out = tmp_path / "labels.tif"
    out.write_bytes(b"previous output")
    scratch_frames = []

    def fail_midway(object_id, result):
        (scratch,) = [p for p in tmp_path.iterdir() if ".frames-" in p.name]
        scratch_frames.append(int(np.count_nonzero(zarr.open_array(str(scratch), mode="r")[result.frame])))
        if result.frame == 7:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        propagate_file(stack, out, masks=masks, direction="forward", on_frame=fail_midway)
    assert scratch_frames and all(n > 0 for n in scratch_frames)  # frames were on disk as they finished
    assert out.read_bytes() == b"previous output"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_output_is_refused_before_any_work(tmp_path, fake_backend):
    stack, masks, _ = write_inputs(tmp_path)
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    calls = []
    with pytest.raises(InputError):
        propagate_file(stack, folder, masks=masks, on_frame=lambda *a: calls.append(a))
    assert calls == [] and (folder / "notes.txt").read_text() == "keep me"


def test_cli_walks_z_of_a_4d_stack_at_a_held_time_point(tmp_path, fake_backend):
    video, truth = three_squares()
    stack4d = np.zeros((2,) + video.shape, np.uint8)
    stack4d[1] = video  # time point 1 holds the objects, time point 0 is empty
    path = tmp_path / "tzyx.tif"
    tifffile.imwrite(path, stack4d, metadata={"axes": "TZYX"})
    keys = np.zeros_like(truth)
    keys[4] = truth[4]
    tifffile.imwrite(tmp_path / "keys.tif", keys)
    out = tmp_path / "z.tif"
    args = ["propagate", str(path), "--masks", str(tmp_path / "keys.tif"), "--axis", "1", "--hold", "0:1",
            "--out", str(out)]
    assert main(args) == 0
    assert np.array_equal(tifffile.imread(out), truth)  # (Z, Y, X): the walked frames only


def _label_files(tmp_path):
    _, truth = three_squares()
    tifffile.imwrite(tmp_path / "zlib.tif", truth, compression="zlib")
    tifffile.imwrite(tmp_path / "plain.tif", truth.astype(np.uint32))
    tifffile.imwrite(tmp_path / "white.tif", ((truth == 2) * 255).astype(np.uint8), compression="zlib")
    (tmp_path / "pngs").mkdir()
    for t, frame in enumerate(truth):
        Image.fromarray(frame.astype(np.uint8)).save(tmp_path / "pngs" / f"{t:03d}.png")
    zarr.create_array(store=str(tmp_path / "k.zarr"), data=truth, chunks=(1, 48, 48))
    Image.fromarray(truth[0].astype(np.uint8)).save(tmp_path / "one.png")
    return ["zlib.tif", "plain.tif", "white.tif", "pngs", "k.zarr", "one.png"]


def test_keyframe_labels_read_frame_by_frame_give_what_read_labels_gives(tmp_path):
    from napari_ois.core.io import read_labels
    from napari_ois.core.io.label_frames import LabelFrames

    for name in _label_files(tmp_path):
        whole = read_labels(tmp_path / name)
        frames = LabelFrames(tmp_path / name)
        assert tuple(frames.shape) == whole.shape, name
        lazily = frames[0] if whole.ndim == 2 else np.stack([frames[t] for t in range(len(frames))])
        assert np.array_equal(lazily, whole) and lazily.dtype.kind in "u", name
        assert frames.max_id_bound() >= whole.max(), name
    assert LabelFrames(tmp_path / "white.tif").max_id_bound() == 1  # a 0/255 mask is object 1

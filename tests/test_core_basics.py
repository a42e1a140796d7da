"""Clicks, prompts CSV, frames/normalisation, config, and the import boundary."""

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_ois.core.clicks import Click, PromptStore, read_prompts, write_prompts
from napari_ois.core.config import AnnotationConfig
from napari_ois.core.errors import InputError
from napari_ois.core.frames import FrameStack, StackNormalizer
from napari_ois.core.segmenter import EmbeddingCache


def test_core_imports_no_napari_or_qt():
    code = (
        "import sys, napari_ois, napari_ois.api, napari_ois.cli, napari_ois.core.session;"
        "bad=[m for m in ('napari','qtpy','PyQt5','PyQt6','PySide2','PySide6','magicgui') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_prompts_csv_round_trip(tmp_path):
    clicks = [Click(1, 0, 10.5, 20, True), Click(2, 3, 5, 6, False)]
    path = tmp_path / "p.csv"
    write_prompts(path, clicks)
    assert path.read_text().splitlines()[0] == "object_id,frame,y,x,positive"
    assert read_prompts(path) == clicks


@pytest.mark.parametrize(
    "text",
    ["", "object_id,frame,y,x,positive\n", "object_id,frame,y\n1,0,2\n",
     "object_id,frame,y,x,positive\n1,0,nan,3,1\n", "object_id,frame,y,x,positive\n1,zero,2,3,1\n",
     "object_id,frame,y,x,positive\n1,0,2,3,yes\n"],
)
def test_bad_prompts_files_raise_input_error(tmp_path, text):
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(InputError):
        read_prompts(path)


def test_missing_prompts_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_prompts(tmp_path / "nope.csv")


def test_prompt_store_order_and_removal():
    store = PromptStore([Click(1, 2, 1, 1), Click(1, 2, 3, 3, False), Click(2, 0, 1, 1)])
    assert [c.y for c in store.clicks(1, 2)] == [1, 3]
    assert store.remove_last(1, 2).positive is False
    assert store.frames(1) == [2] and store.objects() == [1, 2]
    store.clear_object(1)
    assert store.objects() == [2] and len(store) == 1


def test_stack_normalisation_is_consistent_across_frames():
    rng = np.random.default_rng(0)
    stack = rng.integers(100, 4000, size=(6, 16, 16)).astype(np.uint16)
    stack[3] //= 4  # a dim frame must stay dim, not be stretched to full range
    frames = FrameStack(stack)
    assert frames[3].max() < 0.5 < frames[0].max()
    assert frames[0].shape == (16, 16, 3) and frames[0].dtype == np.float32


def test_eight_bit_rgb_rgba_and_nan():
    rgba = np.zeros((2, 4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    frames = FrameStack(rgba)
    assert frames.rgb and np.allclose(frames[1][..., 0], 1.0) and frames[1].shape == (4, 4, 3)
    data = np.ones((3, 5, 5), np.float32)
    data[1, 0, 0] = np.nan
    data[2] = 3
    out = FrameStack(data)[1]
    assert np.isfinite(out).all()
    contrast = StackNormalizer.from_contrast_limits((0, 2))
    assert np.allclose(contrast(np.full((2, 2), 1.0)), 0.5)


def test_frame_stack_rejects_bad_shapes():
    for bad in (np.zeros(5), np.zeros((0, 4, 4)), np.zeros((2, 3, 5, 5))):
        with pytest.raises(InputError):
            FrameStack(bad)
    with pytest.raises(InputError):
        FrameStack(np.zeros((2, 5, 5)), axis=2)
    with pytest.raises(InputError):
        FrameStack(np.zeros((3, 5, 5))).raw(3)


def test_single_image_is_one_frame():
    frames = FrameStack(np.zeros((8, 9, 3), np.uint8))
    assert frames.n_frames == 1 and frames.shape == (8, 9) and frames.index(0) == ()


def test_config_json_round_trip(tmp_path):
    config = AnnotationConfig(backend="classical", threshold=0.4, agree_frames=5)
    path = tmp_path / "s.json"
    config.to_json(path)
    assert AnnotationConfig.from_json(path) == config
    payload = json.loads(path.read_text())
    payload["unknown_future_key"] = 1
    assert AnnotationConfig.from_json(json.dumps(payload)) == config
    with pytest.raises(InputError):
        AnnotationConfig(threshold=1.5).validate()


def test_embedding_cache_is_bounded_by_bytes(fake_segmenter):
    frames = FrameStack(np.zeros((10, 32, 32), np.uint8))
    one = 32 * 32 * 4  # float32 gray embedding of the fake segmenter
    cache = EmbeddingCache(fake_segmenter, frames.__getitem__, max_bytes=3 * one)
    for t in range(10):
        cache.get(t)
    assert len(cache) == 3 and cache.nbytes == 3 * one
    cache.get(9)
    assert fake_segmenter.encode_calls == 10  # a hit does not re-encode
    cache.get(0)
    assert fake_segmenter.encode_calls == 11  # evicted long ago


def test_embedding_cache_recounts_an_embedding_that_grew():
    class Growing:
        """An embedding that gains bytes after encoding, as zoom-in crops do."""

        def __init__(self):
            self.nbytes = 100

    class Encoder:
        def encode(self, image):
            return Growing()

    cache = EmbeddingCache(Encoder(), lambda key: None, max_bytes=350)
    first = cache.get(0)
    for t in (1, 2):
        cache.get(t)
    assert len(cache) == 3 and cache.nbytes == 300
    first.nbytes = 250  # frame 0 grew while in use
    cache.get(0)  # counted again: 250 + 100 + 100 > 350, the least recent goes
    assert cache.nbytes <= 350 and 0 in cache and 1 not in cache


def test_a_session_records_the_backend_it_runs_and_defaults_to_ois():
    from napari_ois.core.classical import ClassicalSegmenter
    from napari_ois.core.backends import DEFAULT_BACKEND
    from napari_ois.core.session import AnnotationSession

    assert AnnotationConfig().backend == DEFAULT_BACKEND == "ois"
    frames = FrameStack(np.zeros((2, 16, 16), np.uint8))
    # Autosave writes session.config and replay rebuilds the backend from it.
    session = AnnotationSession(frames, segmenter=ClassicalSegmenter())
    assert session.config.backend == "classical"

    class Unnamed:  # a custom segmenter with no known name leaves the config alone
        def encode(self, image):
            return image

    session = AnnotationSession(frames, segmenter=Unnamed(), config=AnnotationConfig(backend="grabcut-cv"))
    assert session.config.backend == "grabcut-cv"

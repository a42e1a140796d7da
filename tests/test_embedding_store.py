"""The on-disk tier of the embedding cache: evicted frames come back without encoding."""

import gc

import numpy as np
import pytest

from napari_ois.cli import main
from napari_ois.core.clicks import Click
from napari_ois.core.config import AnnotationConfig
from napari_ois.core.embedding_store import DiskEmbeddingStore
from napari_ois.core.errors import InputError
from napari_ois.core.frames import FrameStack
from napari_ois.core.segmenter import EmbeddingCache, embedding_nbytes
from napari_ois.core.session import AnnotationSession


def test_evicted_frames_are_read_back_instead_of_encoded(squares, fake_segmenter, tmp_path):
    video, _ = squares
    frames = FrameStack(video)
    one_frame = embedding_nbytes(fake_segmenter.encode(frames[0]))
    fake_segmenter.encode_calls = 0
    disk = DiskEmbeddingStore(tmp_path, max_bytes=2**30)
    cache = EmbeddingCache(fake_segmenter, frames.__getitem__, max_bytes=one_frame, disk=disk)
    first = [cache.get(t) for t in range(5)]
    assert fake_segmenter.encode_calls == 5 and len(cache) == 1 and len(disk) == 4
    again = [cache.get(t) for t in range(5)]  # a second pass: all from disk or memory
    assert fake_segmenter.encode_calls == 5 and disk.reads == 5
    for a, b in zip(first, again):
        assert np.array_equal(a.gray, b.gray)


def test_disk_budget_drops_the_oldest_and_clear_empties_it(tmp_path):
    disk = DiskEmbeddingStore(tmp_path, max_bytes=3 * 9000)
    for t in range(6):
        assert disk.put(t, np.full(2000, t, np.float32))  # ~8 kB a file
    assert len(disk) <= 3 and disk.get(0) is None and disk.get(5)[0] == 5
    assert disk.nbytes <= 3 * 9000
    disk.clear()
    assert len(disk) == 0 and not list(disk.folder.iterdir())
    folder = disk.folder
    del disk
    gc.collect()
    assert not folder.exists()  # the private folder goes with the store


def test_unreadable_file_is_a_miss_not_a_crash(tmp_path):
    disk = DiskEmbeddingStore(tmp_path)
    disk.put("a", np.zeros(3))
    disk._path("a").write_bytes(b"torn")
    assert disk.get("a") is None and "a" not in disk


def test_unusable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="embedding cache"):
        DiskEmbeddingStore(blocker / "sub")


def test_session_uses_the_disk_tier_from_its_config(squares, fake_segmenter, tmp_path):
    video, truth = squares
    config = AnnotationConfig(cache_mb=1, disk_cache_dir=str(tmp_path / "cache"))
    session = AnnotationSession(FrameStack(video), segmenter=fake_segmenter, config=config)
    session.cache.max_bytes = 1  # keep one frame in memory: every other frame goes to disk
    session.add_click(Click(1, 0, 8, 3))
    session.run_propagation(1, "forward")
    encodes = fake_segmenter.encode_calls
    session.add_click(Click(2, 3, 28, 24))
    session.run_propagation(2, "forward")  # the same frames again: read back, not encoded
    assert fake_segmenter.encode_calls == encodes
    assert session.cache.disk.reads >= video.shape[0] - 4
    assert np.array_equal(session.labels == 1, truth == 1)


def test_cli_takes_a_disk_cache_folder(tmp_path):
    import tifffile

    video = np.zeros((4, 32, 32), np.uint8)
    video[:, 8:20, 8:20] = 200
    tifffile.imwrite(tmp_path / "v.tif", video)
    (tmp_path / "p.csv").write_text("object_id,frame,y,x,positive\n1,0,12,12,1\n")
    out = tmp_path / "o.tif"
    assert main(["propagate", str(tmp_path / "v.tif"), "--prompts", str(tmp_path / "p.csv"), "--out", str(out),
                 "--disk-cache", str(tmp_path / "cache")]) == 0
    assert tifffile.imread(out)[:, 12, 12].tolist() == [1, 1, 1, 1]

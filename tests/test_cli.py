"""The napari-ois command end to end: segment, propagate, errors, eval and bench on small data."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_ois._sample_data import sample_path
from napari_ois.cli import main
from napari_ois.core.clicks import Click, write_prompts
from napari_ois.evaluate.labels_quality import score_against_ground_truth


def squares_tiff(tmp_path, n=8):
    """A (T, Y, X) uint16 TIFF of a bright square drifting right, and its labels."""
    video = np.full((n, 48, 64), 200, np.uint16)
    truth = np.zeros((n, 48, 64), np.uint16)
    for t in range(n):
        video[t, 12:30, 8 + 2 * t : 26 + 2 * t] = 3000
        truth[t, 12:30, 8 + 2 * t : 26 + 2 * t] = 1
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, video)
    return path, truth


def test_propagate_tiff_timelapse_from_prompts(tmp_path, capsys):
    stack, truth = squares_tiff(tmp_path)
    prompts = tmp_path / "p.csv"
    write_prompts(prompts, [Click(1, 3, 20, 22)])
    out = tmp_path / "labels.tif"
    assert main(["propagate", str(stack), "--prompts", str(prompts), "--out", str(out)]) == 0
    assert "propagate: 1 object(s), 8 frame(s)" in capsys.readouterr().out
    labels = tifffile.imread(out)
    assert labels.shape == truth.shape and all(labels[t].any() for t in range(8))
    assert score_against_ground_truth(labels, truth, [1])[1] > 0.9


def test_propagate_into_a_ctc_results_folder(tmp_path):
    """``--out <name>_RES`` writes the Cell Tracking Challenge layout, no option needed."""
    stack, truth = squares_tiff(tmp_path)
    prompts = tmp_path / "p.csv"
    write_prompts(prompts, [Click(1, 3, 20, 22)])
    out = tmp_path / "01_RES"
    assert main(["propagate", str(stack), "--prompts", str(prompts), "--backend", "classical",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"mask{t:03d}.tif" for t in range(8)] + ["res_track.txt"]
    labels = np.stack([tifffile.imread(out / f"mask{t:03d}.tif") for t in range(8)])
    assert labels.dtype == np.uint16
    assert score_against_ground_truth(labels, truth, [1])[1] > 0.9
    present = np.nonzero((labels == 1).any(axis=(1, 2)))[0]
    assert (out / "res_track.txt").read_text() == f"1 {present.min()} {present.max()} 0\n"
    # Running again replaces its own earlier result (and an empty folder made beforehand) ...
    assert main(["propagate", str(stack), "--prompts", str(prompts), "--backend", "classical",
                 "--out", str(out), "--quiet"]) == 0
    empty = tmp_path / "02_RES"
    empty.mkdir()
    assert main(["propagate", str(stack), "--prompts", str(prompts), "--backend", "classical",
                 "--out", str(empty), "--quiet"]) == 0
    assert (empty / "res_track.txt").exists()
    # ... but never a folder holding something else.
    (tmp_path / "03_RES").mkdir()
    (tmp_path / "03_RES" / "notes.txt").write_text("mine")
    assert main(["propagate", str(stack), "--prompts", str(prompts), "--backend", "classical",
                 "--out", str(tmp_path / "03_RES"), "--quiet"]) == 2
    assert (tmp_path / "03_RES" / "notes.txt").read_text() == "mine"


def test_propagate_folder_of_frames_from_keyframe_masks(tmp_path):
    stack, truth = squares_tiff(tmp_path)
    frames = tmp_path / "frames"
    frames.mkdir()
    for t, frame in enumerate(tifffile.imread(stack)):
        Image.fromarray((frame // 16).astype(np.uint8)).convert("RGB").save(frames / f"{t:03d}.jpg", quality=95)
    keys = np.zeros_like(truth)
    keys[0] = truth[0]
    masks = tmp_path / "keys.tif"
    tifffile.imwrite(masks, keys)
    out = tmp_path / "labels_png"
    assert main(["propagate", str(frames), "--masks", str(masks), "--direction", "forward", "--out", str(out)]) == 0
    written = sorted(out.glob("*.png"))
    assert len(written) == 8
    labels = np.stack([np.asarray(Image.open(p)) for p in written])
    assert score_against_ground_truth(labels, truth, [1])[1] > 0.85


def test_segment_writes_only_prompted_frames(tmp_path):
    stack, _ = squares_tiff(tmp_path)
    prompts = tmp_path / "p.csv"
    write_prompts(prompts, [Click(1, 2, 20, 18), Click(2, 5, 5, 5, True)])
    out = tmp_path / "seg.tif"
    assert main(["segment", str(stack), "--prompts", str(prompts), "--out", str(out)]) == 0
    labels = tifffile.imread(out)
    assert labels[2].max() == 1 and labels[[0, 1, 3, 4, 6, 7]].max() == 0


@pytest.mark.parametrize(
    "args_for",
    [
        lambda d: ["propagate", str(d / "missing.mp4"), "--prompts", str(d / "p.csv"), "--out", str(d / "o.tif")],
        lambda d: ["propagate", str(d / "stack.tif"), "--prompts", str(d / "empty.csv"), "--out", str(d / "o.tif")],
        lambda d: ["propagate", str(d / "stack.tif"), "--prompts", str(d / "outside.csv"), "--out", str(d / "o.tif")],
        lambda d: ["propagate", str(d / "stack.tif"), "--prompts", str(d / "late.csv"), "--out", str(d / "o.tif")],
        lambda d: ["propagate", str(d / "broken.mp4"), "--prompts", str(d / "p.csv"), "--out", str(d / "o.tif")],
        lambda d: ["segment", str(d / "stack.tif"), "--prompts", str(d / "p.csv"), "--out", str(d / "o.tif"),
                   "--backend", "ois", "--checkpoint", str(d / "missing.pt")],
    ],
)
def test_bad_input_exits_2_with_message_and_keeps_output(tmp_path, capsys, args_for):
    squares_tiff(tmp_path)
    write_prompts(tmp_path / "p.csv", [Click(1, 0, 20, 15)])
    (tmp_path / "empty.csv").write_text("object_id,frame,y,x,positive\n")
    write_prompts(tmp_path / "outside.csv", [Click(1, 0, 400, 15)])
    write_prompts(tmp_path / "late.csv", [Click(1, 99, 20, 15)])
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    (tmp_path / "o.tif").write_bytes(b"previous labels")
    assert main(args_for(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-ois: error: ") and "Traceback" not in err
    assert (tmp_path / "o.tif").read_bytes() == b"previous labels"


def test_console_script_runs_on_the_sample_video(tmp_path):
    out = tmp_path / "demo.tif"
    proc = subprocess.run(
        [sys.executable, "-m", "napari_ois.cli", "propagate", str(sample_path("video.mp4")),
         "--prompts", str(sample_path("video_prompts.csv")), "--direction", "forward", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    labels = tifffile.imread(out)
    truth = tifffile.imread(sample_path("video_labels.tif"))
    assert labels.shape == truth.shape
    scores = score_against_ground_truth(labels, truth, [1, 3])
    assert scores[1] > 0.8 and scores[3] > 0.8, scores


def _click_dataset(root, n=3):
    (root / "img").mkdir(parents=True)
    (root / "gt").mkdir()
    rng = np.random.default_rng(1)
    for i in range(n):
        image = rng.integers(0, 60, (40, 50, 3)).astype(np.uint8)
        mask = np.zeros((40, 50), np.uint8)
        mask[8 + i : 30, 10 : 35 - i] = 255
        image[mask > 0] += 150
        Image.fromarray(image).save(root / "img" / f"obj{i}.jpg", quality=95)
        Image.fromarray(mask).save(root / "gt" / f"obj{i}.png")


def test_eval_clicks_end_to_end(tmp_path, capsys):
    _click_dataset(tmp_path / "set")
    out = tmp_path / "res.json"
    assert main(["eval", "clicks", str(tmp_path / "set"), "--format", "davis", "--max-clicks", "5",
                 "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    for key in ("backend", "checkpoint", "dataset", "n", "noc", "nof", "miou_at", "spc_s", "encode_s"):
        assert key in result
    assert result["n"] == 3 and len(result["miou_at"]) == 5 and set(result["noc"]) == {"85", "90", "95"}
    assert result["miou_at"][-1] > 0.8  # an easy bright rectangle
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "eval clicks: 3 objects" in capsys.readouterr().out


def _davis_dataset(root, n=6):
    images = root / "JPEGImages" / "480p" / "seq"
    masks = root / "Annotations" / "480p" / "seq"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for t in range(n):
        image = np.full((40, 60, 3), 30, np.uint8)
        mask = np.zeros((40, 60), np.uint8)
        mask[10:28, 5 + 3 * t : 20 + 3 * t] = 255
        image[mask > 0] = (220, 200, 40)
        Image.fromarray(image).save(images / f"{t:05d}.jpg", quality=95)
        Image.fromarray(mask).save(masks / f"{t:05d}.png")


def test_eval_propagation_end_to_end(tmp_path):
    _davis_dataset(tmp_path / "davis")
    out = tmp_path / "prop.json"
    assert main(["eval", "propagation", str(tmp_path / "davis"), "--format", "davis", "--json", str(out),
                 "--quiet"]) == 0
    result = json.loads(out.read_text())
    seq = result["sequences"]["seq"]
    assert {"J_mean", "J_recall", "J_decay", "frames", "fps"} <= set(seq)
    assert seq["frames"] == 6 and result["J_mean"] > 0.8
    assert out.with_suffix(".png").exists()


def test_eval_propagation_ctc_layout_with_click_init(tmp_path):
    seq, seg = tmp_path / "ctc" / "01", tmp_path / "ctc" / "01_ST" / "SEG"
    seq.mkdir(parents=True)
    seg.mkdir(parents=True)
    for t in range(4):
        image = np.full((40, 40), 20, np.uint8)
        labels = np.zeros((40, 40), np.uint16)
        labels[5:15, 5 + t : 15 + t] = 1
        labels[22:34, 20:32] = 2
        image[labels > 0] = 200
        tifffile.imwrite(seq / f"t{t:03d}.tif", image)
        tifffile.imwrite(seg / f"man_seg{t:03d}.tif", labels)
    out = tmp_path / "ctc.json"
    assert main(["eval", "propagation", str(tmp_path / "ctc"), "--format", "ctc", "--init", "clicks",
                 "--json", str(out), "--quiet"]) == 0
    metrics = json.loads(out.read_text())["sequences"]["01"]
    assert metrics["objects"] == 2 and metrics["init_clicks"] >= 2 and metrics["J_mean"] > 0.8


def test_bench_writes_the_contract_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--size", "64x96", "--repeats", "2", "--propagate-frames", "4",
                 "--long-videos", "20,40", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {"backend", "device", "encode_ms", "spc_ms", "propagate_fps", "peak_rss_mb"} <= set(result)
    assert set(result["peak_rss_mb"]) == {"20", "40"} and result["peak_rss_mb"]["20"] > 10
    assert result["propagate_fps"] > 0 and result["propagate_iou"] > 0.8


def test_grabcut_layout_has_an_ignore_band(tmp_path):
    from napari_ois.datasets.loaders import load_click_items

    (tmp_path / "data_GT").mkdir()
    (tmp_path / "boundary_GT").mkdir()
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 255
    mask[4, 4:16] = 128  # the unsure band around the object
    Image.fromarray(np.full((20, 20, 3), 90, np.uint8)).save(tmp_path / "data_GT" / "flower.jpg")
    Image.fromarray(mask).save(tmp_path / "boundary_GT" / "flower.bmp")
    (item,) = load_click_items(tmp_path, "grabcut")
    assert item.truth.sum() == 100 and item.ignore.sum() == 12 and not (item.truth & item.ignore).any()


def test_cli_runs_the_ois_backend_from_a_checkpoint(tmp_path):
    from napari_ois.model.checkpoint import make_random_checkpoint

    stack, _ = squares_tiff(tmp_path)
    checkpoint = make_random_checkpoint(tmp_path / "random.pt", preset="test")
    prompts = tmp_path / "p.csv"
    write_prompts(prompts, [Click(1, 0, 20, 15)])
    out = tmp_path / "ois.tif"
    assert main(["segment", str(stack), "--prompts", str(prompts), "--out", str(out),
                 "--backend", "ois", "--checkpoint", str(checkpoint), "--device", "cpu"]) == 0
    assert tifffile.imread(out).shape == (8, 48, 64)  # a random model's mask content is arbitrary


@pytest.mark.parametrize("extra, message", [(["--workers", "0"], "--workers must be at least 1"),
                                            (["--workers", "2", "--device", "cuda"], "device 'cuda'")])
def test_train_rejects_bad_worker_settings_before_starting(tmp_path, capsys, extra, message):
    if "cuda" in extra:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--preset", "test", "--image-size", "64", "--steps", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-ois: error: ") and message in err and "Traceback" not in err
    assert not run.exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_train_without_training_data_says_so(tmp_path, capsys, workers):
    args = ["train", "--out", str(tmp_path / "run"), "--preset", "test", "--image-size", "64", "--steps", "1",
            "--threads", "1", "--validate-every", "0", "--data-root", str(tmp_path / "nothing"),
            "--weights", "coco=1", "--workers", workers]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-ois: error: no training objects") and "Traceback" not in err


def test_headless_demo_on_the_cells_sample_scores_each_object_quietly(tmp_path, capsys):
    """The README's main job (headless), on the short cells sample: labels written, one IoU line per
    prompted cell, nothing on stderr with --quiet."""
    out = tmp_path / "demo.tif"
    assert main(["demo", "--headless", "--quiet", "--sample", "cells", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    ious = [float(line.rsplit("=", 1)[1]) for line in captured.out.splitlines() if "mean IoU" in line]
    assert len(ious) == 3 and min(ious) > 0.8, captured.out
    assert tifffile.imread(out).shape == (20, 256, 256)

"""``napari-ois batch``: manifest rows as dask tasks, per-row status, a bad row does not stop the rest."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import tifffile

pytest.importorskip("distributed")

from napari_ois.api import propagate_file  # noqa: E402
from napari_ois.batch import read_manifest  # noqa: E402
from napari_ois.cli import main  # noqa: E402


def _stack(folder, name, shift):
    """A (6, 32, 40) uint16 stack of a bright block drifting right, starting ``shift`` px over."""
    video = np.full((6, 32, 40), 200, np.uint16)
    for t in range(6):
        video[t, 8:20, 4 + 2 * t + shift : 16 + 2 * t + shift] = 3000
    tifffile.imwrite(folder / name, video)
    return folder / name


def _zarr(path):
    import zarr

    return np.asarray(zarr.open_array(str(path), mode="r")[...])


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def three_stacks(tmp_path):
    for i in range(3):
        _stack(tmp_path, f"s{i}.tif", i)
    (tmp_path / "p.csv").write_text("object_id,frame,y,x,positive\n1,0,14,10,1\n")
    (tmp_path / "bad.csv").write_text("object_id,frame,y,x,positive\n1,0,nan,10,1\n")
    return tmp_path


def test_batch_on_a_local_cluster_writes_good_rows_and_reports_the_bad_one(three_stacks):
    d = three_stacks
    (d / "m.csv").write_text("input,prompts,out\n"
                             "s0.tif,p.csv,o0.zarr\n"
                             "s1.tif,bad.csv,o1.zarr\n"  # malformed prompts: this row fails
                             "s2.tif,p.csv,o2.zarr\n")
    code, out, err = _run(["batch", str(d / "m.csv"), "--workers", "2", "--summary", str(d / "summary.json")])
    assert code == 1, err
    assert out.startswith("batch: 3 row(s), 2 ok, 1 failed") and "with 2 worker(s)" in out
    assert "Traceback" not in err and "row 2 failed: " in err
    summary = json.loads((d / "summary.json").read_text())
    assert [r["row"] for r in summary["rows"]] == [1, 2, 3]
    assert [r["status"] for r in summary["rows"]] == ["ok", "error", "ok"]
    assert "line 2: y and x must be finite" in summary["rows"][1]["error"]
    assert not (d / "o1.zarr").exists()
    # A task's result is exactly what the same call gives in this process.
    propagate_file(d / "s0.tif", d / "direct.tif", prompts=d / "p.csv")
    batch_labels = _zarr(d / "o0.zarr")
    assert np.array_equal(batch_labels, tifffile.imread(d / "direct.tif"))
    assert batch_labels.shape == (6, 32, 40) and all(batch_labels[t].any() for t in range(6))
    assert _zarr(d / "o2.zarr")[5, 14, 24] == 1  # the block of s2 on the last frame


def test_batch_json_manifest_on_a_given_scheduler(three_stacks):
    from distributed import LocalCluster

    d = three_stacks
    (d / "b.csv").write_text("object_id,frame,y0,x0,y1,x1\n1,0,8,5,20,17\n")  # s1's block on frame 0
    runs = [{"input": "s0.tif", "prompts": "p.csv", "out": "j0.zarr", "direction": "forward"},
            {"input": "s1.tif", "boxes": "b.csv", "out": "j1.zarr", "direction": "forward"}]
    (d / "m.json").write_text(json.dumps({"runs": runs}))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        code, out, err = _run(["batch", str(d / "m.json"), "--scheduler", cluster.scheduler_address,
                               "--summary", str(d / "s.json")])
    assert code == 0, err
    summary = json.loads((d / "s.json").read_text())
    assert summary["scheduler"] == cluster.scheduler_address and summary["ok"] == 2
    assert all(_zarr(d / f"j{i}.zarr").shape == (6, 32, 40) for i in range(2))
    # The boxes row is the same run as the API's.
    propagate_file(d / "s1.tif", d / "boxed.tif", boxes=d / "b.csv", direction="forward")
    assert np.array_equal(_zarr(d / "j1.zarr"), tifffile.imread(d / "boxed.tif"))
    assert _zarr(d / "j1.zarr")[5, 14, 24] == 1  # the block on the last frame


def test_manifest_rows_that_cannot_run_are_flagged_not_fatal(tmp_path):
    (tmp_path / "m.csv").write_text("input,prompts,masks,out,direction\n"
                                    "a.tif,p.csv,,o.zarr,\n"
                                    "b.tif,p.csv,,o.zarr,\n"        # same output as row 1
                                    "c.tif,,,c.zarr,\n"              # no prompts, boxes or masks
                                    "d.tif,p.csv,k.tif,d.zarr,\n"   # both
                                    "e.tif,p.csv,,e.zarr,sideways\n"
                                    ",p.csv,,f.zarr,\n")
    rows = read_manifest(tmp_path / "m.csv")
    assert rows[0].problem is None and rows[0].input == str(tmp_path / "a.tif")
    assert "same output" in rows[1].problem
    assert all("give masks, or else prompts and/or boxes" in rows[i].problem for i in (2, 3))
    assert "direction" in rows[4].problem and "needs an input" in rows[5].problem


@pytest.mark.parametrize("content, message", [
    ("input,out\na.tif,o.zarr\n", "needs the columns"),
    ("input,prompts,out\n", "holds no row"),
    ("{\"runs\": 3}", "must be a list"),
])
def test_a_bad_manifest_is_one_clean_error(tmp_path, content, message):
    manifest = tmp_path / ("m.json" if content.startswith("{") else "m.csv")
    manifest.write_text(content)
    code, out, err = _run(["batch", str(manifest)])
    assert code == 2 and err.startswith("napari-ois: error: ") and message in err and err.count("\n") == 1

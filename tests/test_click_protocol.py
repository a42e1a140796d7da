"""The evaluation protocol: next-click rules and metrics on masks where the answer is known."""

import numpy as np

from napari_ois.core.click_simulator import iou, next_click
from napari_ois.evaluate.click_eval import InstanceResult, paired_noc, summarize


def square(shape=(21, 21), top=5, left=5, size=11):
    mask = np.zeros(shape, bool)
    mask[top : top + size, left : left + size] = True
    return mask


def test_first_click_is_the_truth_pixel_farthest_from_the_boundary():
    truth = square()
    click = next_click(truth, np.zeros_like(truth))
    assert (click.y, click.x, click.positive) == (10, 10, True)


def test_image_border_counts_as_boundary():
    truth = np.zeros((10, 30), bool)
    truth[:, :20] = True  # touches the top, bottom and left borders
    click = next_click(truth, np.zeros_like(truth))
    # Farthest from any edge, the image border included: row 4 (first max), column 4..15.
    assert click.y == 4 and 4 <= click.x <= 15


def test_ties_go_to_the_first_row_major_maximum():
    truth = np.zeros((9, 20), bool)
    truth[2:7, 2:7] = True
    truth[2:7, 12:17] = True
    click = next_click(truth, np.zeros_like(truth))
    assert (click.y, click.x) == (4, 4)


def test_false_positive_region_larger_gives_negative_click():
    truth = square()
    predicted = truth.copy()
    predicted[0:4, :] = True  # a 4-row false-positive band
    predicted[10, 10] = False  # a 1-pixel false negative
    click = next_click(truth, predicted)
    assert not click.positive and click.y in (1, 2)


def test_equal_error_sizes_give_a_negative_click():
    truth = np.zeros((11, 11), bool)
    truth[1:4, 1:4] = True
    predicted = np.zeros_like(truth)
    predicted[6:9, 6:9] = True
    click = next_click(truth, predicted)
    assert not click.positive and (click.y, click.x) == (7, 7)


def test_perfect_prediction_needs_no_click_and_ignore_band_is_excluded():
    truth = square()
    assert next_click(truth, truth.copy()) is None
    ignore = np.zeros_like(truth)
    ignore[4:17, 4:17] = ~truth[4:17, 4:17] | False
    ignore[5:16, 5] = True  # errors only inside the ignore band
    predicted = truth.copy()
    predicted[5:16, 5] = False
    assert next_click(truth, predicted, ignore=ignore) is None
    assert iou(truth, predicted, ignore) == 1.0


def test_never_clicks_the_same_pixel_twice():
    truth = square()
    clicked = np.zeros_like(truth)
    clicked[10, 10] = True
    click = next_click(truth, np.zeros_like(truth), clicked=clicked)
    assert (click.y, click.x) != (10, 10) and truth[click.y, click.x]


def test_iou_values():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    assert iou(a, b) == 1.0
    a[0, :2] = True
    b[0, 1:3] = True
    assert iou(a, b) == 1 / 3


def test_summary_metrics_by_hand():
    results = [
        InstanceResult("a", [0.5, 0.86, 0.91, 0.96] + [0.96] * 16, 2.0, 1.0),
        InstanceResult("b", [0.2] * 19 + [0.9], 4.0, 0.0),
    ]
    s = summarize(results, 20)
    assert s["noc"] == {"85": (2 + 20) / 2, "90": (3 + 20) / 2, "95": (4 + 20) / 2}
    assert s["nof"] == {"85": 1, "90": 1, "95": 1}  # success on click 20 still counts as NoF
    assert np.isclose(s["miou_at"][0], 0.35) and np.isclose(s["miou_at"][19], 0.93)
    assert np.isclose(s["spc_s"], 6.0 / 40) and s["encode_s"] == 1.0 and s["n"] == 2


def test_paired_noc_compares_two_runs_object_by_object():
    run = {"per_item_noc": {"a": {"90": 1}, "b": {"90": 5}, "c": {"90": 20}, "only_here": {"90": 1}}}
    baseline = {"per_item_noc": {"a": {"90": 4}, "b": {"90": 5}, "c": {"90": 8}}}
    mean, se, fewer, more, same = paired_noc(run, baseline, "90")
    # Differences over the shared objects a, b, c: -3, 0, +12.
    assert mean == 3.0
    assert np.isclose(se, np.std([-3.0, 0.0, 12.0], ddof=1) / np.sqrt(3))
    assert (fewer, more, same) == (1, 1, 1)
    # Runs written before per-object counts existed cannot be paired.
    assert paired_noc({"per_item": {}}, baseline, "90") is None

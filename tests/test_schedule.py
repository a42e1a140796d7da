"""The propagation schedule (core.propagation.plan_fronts) that both propagation paths follow."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ois.core.propagation import FrontPlan, plan_fronts


def _frames(plan: FrontPlan, shared: bool) -> list[int]:
    end = plan.share_limit if shared else plan.limit
    return list(range(plan.source + plan.step, end, plan.step))


def test_one_keyframe_goes_to_the_ends():
    assert plan_fronts([4], 10, "forward") == [FrontPlan(4, +1, 10, 10)]
    assert plan_fronts([4], 10, "backward") == [FrontPlan(4, -1, -1, -1)]
    assert plan_fronts([4], 10, "both") == [FrontPlan(4, +1, 10, 10), FrontPlan(4, -1, -1, -1)]


@pytest.mark.parametrize("keys, forward, backward", [
    ([2, 9], [3, 4, 5], [8, 7, 6]),   # even gap of 6: 3 frames each
    ([0, 8], [1, 2, 3, 4], [7, 6, 5]),  # odd gap of 7: the forward front takes the extra frame
    ([3, 5], [4], []),                 # gap of 1
    ([3, 4], [], []),                  # adjacent keyframes: nothing between them
])
def test_a_gap_between_two_keyframes_is_shared(keys, forward, backward):
    plans = plan_fronts(keys, 12, "both")
    gap_forward = next(p for p in plans if p.source == keys[0] and p.step == 1)
    gap_backward = next(p for p in plans if p.source == keys[1] and p.step == -1)
    assert gap_forward.limit == keys[1] and gap_backward.limit == keys[0]  # never past a keyframe
    assert _frames(gap_forward, shared=True) == forward
    assert _frames(gap_backward, shared=True) == backward


def test_one_way_runs_cover_each_gap_with_one_front():
    plans = plan_fronts([2, 6], 10, "forward")
    assert plans == [FrontPlan(2, +1, 6, 6), FrontPlan(6, +1, 10, 10)]
    plans = plan_fronts([2, 6], 10, "backward")
    assert plans == [FrontPlan(2, -1, -1, -1), FrontPlan(6, -1, 2, 2)]


def test_a_correction_leaves_from_its_keyframe_alone_up_to_the_neighbours():
    assert plan_fronts([1, 5, 9], 12, "both", start=5) == [FrontPlan(5, +1, 9, 9), FrontPlan(5, -1, 1, 1)]


def test_shares_cover_every_frame_between_and_around_keyframes_exactly_once():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        keys = sorted(set(rng.integers(0, n, size=int(rng.integers(1, 5))).tolist()))
        covered = [f for p in plan_fronts(keys, n, "both") for f in _frames(p, shared=True)]
        assert sorted(covered) == [f for f in range(n) if f not in keys], (keys, n)

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.aggregator.rewards import SCORE_SCALE, split_rewards, to_points
from market.aggregator.scoring import contribution_scores
from market.errors import AggregationError


def test_split_is_proportional_and_floors():
    assert split_rewards(100, [1, 1, 1]) == [33, 33, 33]
    assert split_rewards(10**18, [3, 1]) == [750_000_000_000_000_000, 250_000_000_000_000_000]
    assert split_rewards(5, [0, 0]) == [0, 0]


@given(
    st.integers(min_value=0, max_value=10**24),
    st.lists(st.integers(min_value=0, max_value=10**15), min_size=1, max_size=50),
)
def test_split_never_exceeds_budget_and_loses_less_than_one_wei_each(budget, points):
    rewards = split_rewards(budget, points)
    assert sum(rewards) <= budget
    if sum(points):
        assert budget - sum(rewards) < len(points)


def test_points_are_fixed_point_and_reject_bad_scores():
    assert to_points([0.5, 0.25]) == [SCORE_SCALE // 2, SCORE_SCALE // 4]
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(AggregationError):
            to_points([bad])
    with pytest.raises(AggregationError):
        split_rewards(-1, [1])


def test_scores_follow_weight_and_alignment():
    u = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    g = u @ u.T
    # the others' aggregate aligns more with the two agreeing updates than with the odd one
    scores = contribution_scores(np.full(3, 1 / 3), [None, None, None], g)
    assert scores[0] == scores[1] > scores[2] > 0
    assert sum(scores) == pytest.approx(1.0)


def test_scores_zero_for_flagged_opposed_and_negative():
    u = np.array([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.1], [2.0, 0.0]])
    g = u @ u.T
    coefficients = np.array([0.4, 0.4, 0.1, 0.1])
    scores = contribution_scores(coefficients, [None, None, None, "krum: outlier"], g)
    assert scores[3] == 0.0  # flagged
    assert scores[2] == 0.0  # points against the others' aggregate
    assert scores[0] > 0 and scores[1] > 0 and scores[0] + scores[1] == pytest.approx(1.0)
    assert contribution_scores(np.array([-1.0]), [None], np.ones((1, 1))) == [0.0]

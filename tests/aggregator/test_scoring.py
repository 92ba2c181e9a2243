"""Contribution scores: honest updates share the round, free-riders and noise get nothing."""

import numpy as np
import pytest

from market.aggregator.rules import QuantizedBatch, gram
from market.aggregator.scoring import ALIGNMENT_FLOOR, contribution_scores, score_details


def honest_round(n: int = 5, d: int = 4096, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    return np.stack([direction + 0.8 * rng.normal(size=d) for _ in range(n)])


def scores_of(u: np.ndarray) -> list[float]:
    batch = QuantizedBatch.from_dense(u)
    n = batch.n
    return contribution_scores(np.full(n, 1 / n), [None] * n, gram(batch))


def test_honest_updates_share_the_round():
    scores = scores_of(honest_round())
    assert all(s > 0.1 for s in scores)
    assert sum(scores) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "rider",
    [
        "global_resubmitted",  # the global model sent back: delta ~ 0 after quantisation noise
        "noise",  # pure noise of an honest norm
        "loud_noise",  # noise ten times louder, which dominates a plain mean
    ],
)
def test_free_riders_score_zero(rider):
    u = honest_round()
    rng = np.random.default_rng(7)
    norm = float(np.linalg.norm(u[0]))
    if rider == "global_resubmitted":
        bad = 1e-7 * rng.normal(size=u.shape[1])
    else:
        bad = rng.normal(size=u.shape[1])
        bad *= norm / np.linalg.norm(bad) * (10 if rider == "loud_noise" else 1)
    scores = scores_of(np.vstack([u, bad]))
    assert scores[-1] == 0.0
    assert all(s > 0 for s in scores[:-1])
    assert sum(scores) == pytest.approx(1.0)


def test_details_explain_the_score():
    u = np.vstack([honest_round(), 1e-7 * np.ones(4096)])
    batch = QuantizedBatch.from_dense(u)
    details = score_details(np.full(6, 1 / 6), [None] * 6, gram(batch))
    assert details[-1].free_rider and details[-1].score == 0.0
    assert all(d.alignment > ALIGNMENT_FLOOR and not d.free_rider for d in details[:-1])


def test_a_lone_update_takes_the_round_and_scores_are_bit_reproducible():
    u = honest_round(n=1)
    assert scores_of(u) == [1.0]
    many = honest_round(n=8, seed=3)
    assert scores_of(many) == scores_of(many.copy())

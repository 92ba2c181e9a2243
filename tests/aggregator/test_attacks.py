import numpy as np
import pytest

from market.aggregator import attacks
from market.errors import ConfigError
from tests.aggregator.byzfl_oracle import load_byzfl

byzfl = load_byzfl()


@pytest.fixture
def honest() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(8, 50)) + 1.0


@pytest.mark.skipif(byzfl is None, reason="byzfl not installed")
def test_conventions_match_byzfl(honest: np.ndarray) -> None:
    assert np.allclose(attacks.sign_flip(honest, 2)[1], byzfl.SignFlipping()(honest))
    assert np.allclose(attacks.ipm(honest, 1, 2.0)[0], byzfl.InnerProductManipulation(2.0)(honest))
    assert np.allclose(attacks.alie(honest, 3, 1.5)[2], byzfl.ALittleIsEnough(1.5)(honest))


def test_min_max_and_min_sum_respect_their_bounds(honest: np.ndarray) -> None:
    d2 = ((honest[:, None] - honest[None]) ** 2).sum(-1)
    mm = attacks.min_max(honest, 2)
    assert ((honest - mm[0]) ** 2).sum(1).max() <= d2.max() + 1e-9
    ms = attacks.min_sum(honest, 2)
    assert ((honest - ms[0]) ** 2).sum() <= d2.sum(1).max() + 1e-9
    # They do push: away from the mean along −std.
    assert np.linalg.norm(mm[0] - honest.mean(0)) > 0.1


def test_clones_noise_free_riders_and_label_flip(honest: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    clones = attacks.sybil_clones(honest[0], 5, rng)
    cos = clones @ clones.T / np.outer(*[np.linalg.norm(clones, axis=1)] * 2)
    assert clones.shape == (5, 50) and cos.min() > 0.999
    noisy = attacks.independent_noise(attacks.sign_flip(honest, 3), rng, 0.5)
    assert not np.allclose(noisy[0], noisy[1])
    assert np.all(attacks.free_rider(50, 2) == 0)
    assert attacks.free_rider(50, 2, "noise").std() > 0
    _, y = attacks.label_flip(np.zeros((3, 2)), np.array([0, 3, 9]), 10)
    assert y.tolist() == [9, 6, 0]
    assert attacks.alie_z(20, 6) > 0
    with pytest.raises(ConfigError, match="unknown attack"):
        attacks.byzantine_updates("nope", honest, 1, rng)

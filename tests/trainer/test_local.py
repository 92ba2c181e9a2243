import numpy as np
import pytest

from market.errors import TrainingError
from market.trainer.data import load_digits, train_test_split
from market.trainer.local import evaluate, train_update
from market.trainer.model import ModelSpec, build_model, get_weights, set_weights


def test_model_spec_round_trip_and_unknown_kind():
    spec = ModelSpec(hidden=(32,))
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(TrainingError, match="unknown model kind"):
        ModelSpec.from_dict({"kind": "transformer", "input_dim": 1, "num_classes": 2})


def test_build_model_is_seeded():
    a = get_weights(build_model(ModelSpec(), seed=4))
    b = get_weights(build_model(ModelSpec(), seed=4))
    assert list(a) == list(b)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_set_weights_checks_names_and_shapes():
    model = build_model(ModelSpec())
    weights = get_weights(model)
    with pytest.raises(TrainingError, match="missing"):
        set_weights(model, {k: v for k, v in list(weights.items())[1:]})
    bad = dict(weights)
    first = next(iter(bad))
    bad[first] = np.zeros((1, 1), np.float32)
    with pytest.raises(TrainingError, match="shape"):
        set_weights(model, bad)


def test_local_training_improves_accuracy_and_returns_a_delta():
    train, test = train_test_split(load_digits(), 0.2, seed=0)
    model = build_model(ModelSpec())
    start = get_weights(model)
    before = evaluate(model, test)
    delta = train_update(model, start, train, epochs=2, lr=0.1, batch_size=32, seed=0)
    after = evaluate(model, test)
    assert after > before + 0.3
    trained = get_weights(model)
    for name in start:
        np.testing.assert_allclose(start[name] + delta[name], trained[name], atol=1e-6)

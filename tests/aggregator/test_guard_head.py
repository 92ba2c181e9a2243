"""Guard's label-consistency check on the classifier head (opt-in ``head``): the pure
disagreement measure on constructed head steps, the rule over rounds, and resolving a
layer name against a model layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from market.aggregator.rules import QuantizedBatch, get_rule, rule_for
from market.aggregator.rules.gram_rule import read_columns
from market.aggregator.rules.head import label_disagreement, resolve_head
from market.errors import AggregationError
from tests.aggregator.helpers import random_batch

CLASSES, FEATURES = 5, 16


def _class_features(rng: np.random.Generator) -> np.ndarray:
    """Mean hidden features per class: ReLU outputs share a common part, as real ones do."""
    common = rng.uniform(0.5, 1.0, FEATURES)
    return common + rng.uniform(0.0, 1.5, (CLASSES, FEATURES))


def _head_steps(
    rng: np.random.Generator, features: np.ndarray, labels: list[dict[int, float]], flip: set[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Head steps (n, C, F), (n, C): trainer t labels class c with mass labels[t][c]; a
    flipper's samples labelled c are images of class C − 1 − c."""
    n = len(labels)
    weight = np.zeros((n, CLASSES, FEATURES))
    bias = np.full((n, CLASSES), -0.01)
    for t, held in enumerate(labels):
        for c, mass in held.items():
            source = CLASSES - 1 - c if t in flip else c
            noisy = features[source] * (1 + 0.1 * rng.normal(size=FEATURES))
            weight[t, c] = mass * noisy
            bias[t, c] = mass
    return weight, bias


def _labels(rng: np.random.Generator, n: int) -> list[dict[int, float]]:
    """Each trainer labels two or three classes with comparable mass."""
    out = []
    for _ in range(n):
        classes = rng.choice(CLASSES, size=int(rng.integers(2, 4)), replace=False)
        out.append({int(c): float(rng.uniform(0.6, 1.0)) for c in classes})
    return out


def test_a_flipper_s_rows_disagree_with_its_peers_honest_ones_do_not() -> None:
    rng = np.random.default_rng(0)
    features = _class_features(rng)
    labels = _labels(rng, 12)
    weight, bias = _head_steps(rng, features, labels, flip={3, 7})
    dis, mass = label_disagreement(weight, bias)
    assert (mass > 0).all()
    honest = np.delete(dis, [3, 7])
    assert dis[[3, 7]].min() > 1.8 > 1.4 > honest.max(), dis


def test_a_class_labelled_by_two_trainers_or_a_minor_class_says_nothing() -> None:
    rng = np.random.default_rng(1)
    features = _class_features(rng)
    # Classes 0 and 1: two trainers each (no majority to compare with) — trainer 2 also
    # labels class 1, with a tenth of its main mass (a row dominated by its main class's
    # pull), which does not make it a third.
    labels = [{0: 1.0}, {0: 1.0}, {3: 1.0, 1: 0.1}, {3: 1.0}, {3: 1.0}, {1: 1.0}, {1: 1.0}]
    weight, bias = _head_steps(rng, features, labels, flip={2})
    dis, mass = label_disagreement(weight, bias)
    assert (mass[[0, 1, 5, 6]] == 0.0).all() and (dis[[0, 1, 5, 6]] == 0.0).all()
    assert mass[2] == pytest.approx(1.0)  # judged on class 3 only
    assert dis[2] > 1.4 > max(dis[3], dis[4])


def _round(rng, features, labels, flip, body: int = 300) -> QuantizedBatch:
    """Updates: a random body, then the head (weight (C, F) row-major, bias (C,))."""
    weight, bias = _head_steps(rng, features, labels, flip)
    n = len(labels)
    u = np.hstack([0.05 * rng.normal(size=(n, body)), weight.reshape(n, -1), bias])
    return QuantizedBatch.from_dense(u, block_size=64)


def test_guard_with_a_head_cuts_label_flippers_over_rounds_and_says_why() -> None:
    rng = np.random.default_rng(2)
    features = _class_features(rng)
    labels = _labels(rng, 12)
    head = [300, 300 + CLASSES * FEATURES, CLASSES, FEATURES]
    ids = [f"t{i}" for i in range(12)]
    rule, plain = get_rule("guard", head=head), get_rule("guard")
    state = plain_state = None
    for _ in range(4):
        batch = _round(rng, features, labels, flip={3, 7})
        res = rule.aggregate(batch, ids=ids, state=state)
        state = res.state
        base = plain.aggregate(batch, ids=ids, state=plain_state)
        plain_state = base.state
    assert res.coefficients[[3, 7]].max() == 0.0
    assert all("labels disagree" in res.flags[i] for i in (3, 7))
    assert np.delete(res.coefficients, [3, 7]).min() > 0
    assert base.coefficients[[3, 7]].min() > 0  # invisible without the head
    assert res.evidence["label_trust"][3] == 0.0
    assert set(state["labels"]) == set(ids)
    assert json.loads(json.dumps(state)) == state


def test_without_ids_the_round_alone_counts_and_no_state_is_kept() -> None:
    rng = np.random.default_rng(3)
    features = _class_features(rng)
    batch = _round(rng, features, _labels(rng, 10), flip={4})
    res = get_rule(
        "guard", history=False, head=[300, 300 + CLASSES * FEATURES, CLASSES, FEATURES]
    ).aggregate(batch)
    assert res.coefficients[4] == 0.0 and res.state is None


@pytest.mark.parametrize(
    ("head", "match"),
    [
        ([1, 2], "must be null, a layer name"),
        ([0, 10, 1, 4], "must be null, a layer name"),
        ("", "must be null, a layer name"),
        ([0, 10**6, 5, 2], "does not fit"),
    ],
)
def test_a_bad_head_is_refused_with_its_reason(head, match) -> None:
    batch = random_batch(4, 500, seed=4)
    with pytest.raises(AggregationError, match=match):
        get_rule("guard", head=head).aggregate(batch)


def test_a_layer_name_must_be_resolved_before_aggregating() -> None:
    with pytest.raises(AggregationError, match="resolve it against the model layout"):
        get_rule("guard", head="auto").aggregate(random_batch(4, 500, seed=5))


LAYOUT = [("0.weight", (64, 64)), ("0.bias", (64,)), ("2.weight", (10, 64)), ("2.bias", (10,))]


def test_layer_names_resolve_to_offsets_in_the_flat_vector() -> None:
    assert resolve_head("auto", LAYOUT) == [4160, 4800, 10, 64]
    assert resolve_head("2", LAYOUT) == [4160, 4800, 10, 64]
    assert resolve_head("0", LAYOUT) == [0, 4096, 64, 64]
    rule = rule_for("guard", {"head": "auto", "label_hi": 2.0}, [list(e) for e in LAYOUT])
    assert rule.params["head"] == [4160, 4800, 10, 64] and rule.params["label_hi"] == 2.0
    assert rule_for("median", {}, LAYOUT).name == "median"


def test_benchmark_mlp_head_is_what_the_layer_name_resolves_to() -> None:
    from benchmarks.fl_sim import MLP

    mlp = MLP()
    torch_layout = list(zip(["0.weight", "0.bias", "2.weight", "2.bias"], mlp.shapes, strict=True))
    assert mlp.head == resolve_head("auto", torch_layout)


@pytest.mark.parametrize(
    ("head", "layout", "match"),
    [
        ("fc", LAYOUT, r"no tensor fc.weight, fc.bias"),
        ("auto", [("w", (10, 64)), ("b", (9,))], "not a classifier layer"),
        ("auto", [("w", (10, 64))], "fewer than two tensors"),
    ],
)
def test_a_name_that_is_no_classifier_layer_is_refused(head, layout, match) -> None:
    with pytest.raises(AggregationError, match=match):
        rule_for("guard", {"head": head}, layout)


def test_read_columns_gives_the_exact_values_across_blocks() -> None:
    batch = random_batch(3, 5000, seed=6, block_size=1024)
    dense = batch.dense()
    a, b = read_columns(batch, [(1000, 2100), (4990, 5000)])
    assert a.tobytes() == dense[:, 1000:2100].tobytes()
    assert b.tobytes() == dense[:, 4990:5000].tobytes()
    with pytest.raises(AggregationError, match="does not fit"):
        read_columns(batch, [(4990, 5001)])


def test_a_spec_naming_no_classifier_layer_is_refused_before_anything_is_stored(tmp_path) -> None:
    from market.owner import publish_spec
    from market.storage import EmbeddedStore
    from market.trainer.model import ModelSpec

    store = EmbeddedStore(tmp_path / "store")
    model = ModelSpec(hidden=(8,))
    with pytest.raises(AggregationError, match="no tensor fc.weight"):
        publish_spec(store, name="x", model=model, rule="guard", rule_params={"head": "fc"})
    stored = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert not stored  # not even the initial model
    _, spec = publish_spec(store, name="x", model=model, rule="guard", rule_params={"head": "2"})
    assert spec.rule_params == {"head": "2"}  # the spec keeps the name; rounds resolve it
    assert rule_for(spec.rule, spec.rule_params, spec.layout).params["head"] == [520, 600, 10, 8]


def test_column_medians_are_the_scalar_weighted_medians() -> None:
    from market.aggregator.rules.head import column_medians, weighted_median

    rng = np.random.default_rng(7)
    for k in (1, 2, 5, 8):
        values = rng.integers(0, 4, size=(k, 30)).astype(float)  # ties on purpose
        weights = rng.choice([0.0, 0.5, 1.0, 2.0], size=k)
        weights[0] = 1.0
        expected = [weighted_median(values[:, f], weights) for f in range(30)]
        assert column_medians(values, weights).tolist() == expected


def test_a_row_nearer_another_class_misfits_and_a_contested_class_says_nothing() -> None:
    from market.aggregator.rules.head import label_misfit

    rng = np.random.default_rng(8)
    features = _class_features(rng)
    labels = [{0: 1.0, 2: 1.0}, {0: 1.0, 1: 1.0}, {0: 1.0, 3: 1.0}, {4: 1.0, 2: 1.0}]
    labels += [{4: 1.0, 1: 1.0}, {4: 1.0, 3: 1.0}, {0: 1.0, 1: 1.0}]  # 6: flips 0 → 4
    weight, bias = _head_steps(rng, features, labels, flip={6})
    # _head_steps flips c → C − 1 − c: trainer 6's "0" row carries class 4's features.
    rate, mass = label_misfit(weight, bias)
    assert rate[6] > 0.4 and (np.delete(rate, 6) == 0).all(), rate


def test_a_class_whose_labellers_mostly_misfit_is_contested_and_says_nothing() -> None:
    """Classes A, B, C with features e1, e2 (and e3 unused). Honest 0–3 label A (e1); 0 and 1
    also label B (e2). Flippers 4–6 are most of B's labellers: they label A-images B (e1)
    and B-images C (e2). B's centroid is then theirs, and the honest B rows sit nearest C's
    centroid: judged, the honest would misfit; B is contested, so it says nothing."""
    from market.aggregator.rules.head import label_misfit

    e1, e2 = np.eye(4)[0], np.eye(4)[1]
    rows = {0: {0: e1, 1: e2}, 1: {0: e1, 1: e2}, 2: {0: e1}, 3: {0: e1}}
    rows |= {t: {1: e1, 2: e2} for t in (4, 5, 6)}
    weight = np.zeros((7, 3, 4))
    bias = np.full((7, 3), -0.01)
    for t, held in rows.items():
        for c, row in held.items():
            weight[t, c], bias[t, c] = row, 1.0
    rate, _ = label_misfit(weight, bias)
    assert (rate[:4] == 0).all(), rate
    judged_anyway, _ = label_misfit(weight, bias, quorum=0.0)
    assert judged_anyway[0] > 0 and judged_anyway[1] > 0, judged_anyway

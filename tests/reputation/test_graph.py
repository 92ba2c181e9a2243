import pytest

from market.errors import ReputationError
from market.reputation import FeedbackGraph, RewardEvent


def test_from_events_accumulates_amounts_per_edge():
    g = FeedbackGraph.from_events(
        [
            RewardEvent("owner", "t1", 3.0, 0),
            RewardEvent("owner", "t1", 2.0, 0),
            RewardEvent("owner", "t2", 1.0, 1),
        ]
    )
    assert g.weight("owner", "t1") == 5.0
    assert g.weight("owner", "t2") == 1.0
    assert g.epoch == 1
    assert g.nodes() == ["owner", "t1", "t2"]
    assert g.in_degree("t1") == 1 and g.in_degree("owner") == 0
    assert g.edge_count() == 2


def test_epoch_decay_weighs_old_rounds_less():
    g = FeedbackGraph(gamma=0.5)
    g.add_edge("o", "old", 8.0, epoch=0)
    g.add_edge("o", "new", 8.0, epoch=2)
    assert g.weight("o", "old") == pytest.approx(2.0)
    assert g.weight("o", "new") == pytest.approx(8.0)
    # A later round's feedback on an old edge is added at its own age.
    g.add_edge("o", "old", 4.0, epoch=1)
    assert g.weight("o", "old") == pytest.approx(2.0 + 2.0)
    # Advancing the epoch scales every edge alike: a walk's ratios do not change.
    names, before = g.out_row("o")
    g.advance_epoch(5)
    assert g.weight("o", "new") == pytest.approx(8.0 / 8)
    assert g.out_row("o") == (names, before)
    assert before[names.index("new")] / before[names.index("old")] == pytest.approx(2.0)


def test_out_row_is_ordered_by_name_not_insertion():
    a, b = FeedbackGraph(), FeedbackGraph()
    for dst, w in [("z", 1.0), ("a", 2.0), ("m", 3.0)]:
        a.add_edge("s", dst, w)
    for dst, w in [("m", 3.0), ("z", 1.0), ("a", 2.0)]:
        b.add_edge("s", dst, w)
    assert a.out_row("s") == b.out_row("s") == (["a", "m", "z"], [2.0, 3.0, 1.0])


def test_set_edge_replaces_and_zero_removes():
    g = FeedbackGraph()
    g.add_edge("s", "t", 5.0)
    g.set_edge("s", "t", 1.0)
    assert g.weight("s", "t") == 1.0
    g.set_edge("s", "t", 0.0)
    assert g.weight("s", "t") == 0.0 and g.in_degree("t") == 0 and g.edge_count() == 0


def test_changed_sources_are_reported_since_a_version():
    g = FeedbackGraph()
    g.add_edge("a", "b", 1.0)
    v1 = g.version
    g.add_edge("c", "b", 1.0)
    g.add_edge("a", "c", 1.0)
    assert g.changed_since(0) == {"a", "c"}
    assert g.changed_since(v1) == {"a", "c"}
    assert g.changed_since(g.version) == set()
    v2 = g.version
    g.advance_epoch(3)
    assert g.changed_since(v2) == set()


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.add_edge("a", "a", 1.0),
        lambda g: g.add_edge("a", "b", -1.0),
        lambda g: g.add_edge("a", "b", float("nan")),
        lambda g: g.add_edge("a", "b", 1.0, epoch=-1),
        lambda g: FeedbackGraph(gamma=1.0),
        lambda g: FeedbackGraph(gamma=-0.1),
    ],
)
def test_invalid_input_raises_reputation_error(call):
    with pytest.raises(ReputationError):
        call(FeedbackGraph())


def test_epoch_cannot_go_back():
    g = FeedbackGraph()
    g.advance_epoch(2)
    with pytest.raises(ReputationError):
        g.advance_epoch(1)


def test_summary_counts():
    g = FeedbackGraph.from_events([RewardEvent("o", "t", 2.0, 0), RewardEvent("t", "u", 1.0, 0)])
    assert g.summary() == {"nodes": 3, "edges": 2, "epoch": 0, "gamma": 0.0, "total_weight": 3.0}


def test_reachable_follows_feedback_paths_from_the_seeds():
    g = FeedbackGraph()
    for a, b in [("s", "a"), ("a", "b"), ("b", "a"), ("x", "y")]:
        g.add_edge(a, b, 1.0)
    assert g.reachable(["s"]) == {"a", "b"}
    assert g.reachable(["s", "x"]) == {"a", "b", "y"}
    assert g.reachable(["unknown"]) == set()

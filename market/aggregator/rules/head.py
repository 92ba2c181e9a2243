"""Label consistency read from the classifier head: evidence against label flipping.

A softmax classifier's last layer z = W h + b, trained by SGD on cross-entropy, moves by
ΔW_c = η Σ (y_c − p_c) h and Δb_c = η Σ (y_c − p_c): the classes a trainer labels show as
a positive bias step, and the weight row's step then points along the mean hidden feature
of the samples labelled c (the last-layer inversion behind iDLG, Zhao et al. 2020). Honest
trainers who label class c send rows pointing the same way, whatever else they hold. A
trainer who flips labels sends, for "c", the features of another class — a row the others
who label c do not share. That is a signal Gram-space rules cannot see: at α = 1.0 on
digits a flipper's update is no less aligned with the honest ones than an honest update
is (history cosines measured: honest–honest 0.12, flipper–honest −0.03), but its head rows
disagree with its peers' twice as much as an honest trainer's do from round 2 on.

The functions here are pure, over the head's values only (a few thousand numbers).
"""

from __future__ import annotations

import numpy as np

from market.errors import AggregationError

OWN_SHARE = 0.4


def resolve_head(head: str, layout: list[tuple[str, tuple[int, ...]]]) -> list[int]:
    """[weight_offset, bias_offset, classes, features] of the layer ``head`` names in a
    model layout [(tensor name, shape), …] (flat order): ``"auto"`` is the last weight and
    bias, any other name the tensors ``{name}.weight`` (classes, features) and
    ``{name}.bias`` (classes,)."""
    offsets, start = {}, 0
    for name, shape in layout:
        offsets[name] = (start, tuple(int(x) for x in shape))
        start += int(np.prod(shape, dtype=np.int64))
    if head == "auto":
        if len(layout) < 2:
            raise AggregationError("head 'auto': the model has fewer than two tensors")
        weight_name, bias_name = layout[-2][0], layout[-1][0]
    else:
        weight_name, bias_name = f"{head}.weight", f"{head}.bias"
    missing = [n for n in (weight_name, bias_name) if n not in offsets]
    if missing:
        raise AggregationError(
            f"head {head!r}: the model has no tensor {', '.join(missing)} "
            f"(its last tensors: {', '.join(n for n, _ in layout[-4:])})"
        )
    (w_off, w_shape), (b_off, b_shape) = offsets[weight_name], offsets[bias_name]
    if len(w_shape) != 2 or b_shape != (w_shape[0],) or w_shape[0] < 2:
        raise AggregationError(
            f"head {head!r}: {weight_name} {list(w_shape)} and {bias_name} {list(b_shape)} "
            "are not a classifier layer (weight (classes ≥ 2, features), bias (classes,))"
        )
    return [w_off, b_off, w_shape[0], w_shape[1]]


def head_slices(
    head: list[int] | tuple[int, ...], d: int
) -> tuple[tuple[int, int], tuple[int, int], int, int]:
    """The weight and bias column ranges of a head [weight_offset, bias_offset, classes,
    features] (weight stored (classes, features) row-major, as torch's ``nn.Linear``)."""
    w_off, b_off, classes, features = (int(x) for x in head)
    weight = (w_off, w_off + classes * features)
    bias = (b_off, b_off + classes)
    for lo, hi in (weight, bias):
        if lo < 0 or hi > d:
            raise AggregationError(f"head columns [{lo}, {hi}) lie outside the {d} parameters")
    return weight, bias, classes, features


def weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    """The weighted median of ``x`` (weights ``w`` ≥ 0, not all zero); where the weight
    splits exactly in half, the mean of the two middle values (``np.median`` for equal
    weights)."""
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    xs, cw = xs[ws > 0], np.cumsum(ws[ws > 0])
    k = int(np.searchsorted(cw, cw[-1] / 2.0))
    if cw[k] == cw[-1] / 2.0 and k + 1 < len(xs):
        return float((xs[k] + xs[k + 1]) / 2.0)
    return float(xs[k])


def label_disagreement(
    weight: np.ndarray,
    bias: np.ndarray,
    peers: np.ndarray | None = None,
    min_share: float = 0.05,
    min_peers: int = 2,
    min_own: float = OWN_SHARE,
) -> tuple[np.ndarray, np.ndarray]:
    """Per update: how far its head rows point from its peers' on the classes it labels,
    relative to the class's typical disagreement (1 ≈ typical), and its label mass.

    ``weight`` (n, classes, features) and ``bias`` (n, classes) are the updates' head steps.
    An update labels class c with mass Δb_c when Δb_c > 0 and Δb_c is at least ``min_own``
    of its largest (a minor class's row is dominated by the −p_c·h pull of the update's
    main classes). On each class, the updates whose mass is at least ``min_share`` of the
    class's largest compare their row directions: an update's disagreement is 1 − the
    median cosine to the others, divided by the median disagreement on that class (some
    classes vary more than others). Medians are weighted by ``peers`` (default 1 each):
    the weight the caller already gives each update, so that clones or rejected updates
    cannot outvote honest ones. Classes with fewer than ``min_peers`` + 1 such updates of
    positive weight say nothing (a class held by one or two trainers may be new, not
    flipped). The per-update value is the mass-weighted mean over its classes; its mass
    (the second array) is 0 when no class qualified."""
    n, classes, _ = weight.shape
    peers = np.ones(n) if peers is None else np.asarray(peers, dtype=np.float64)
    mass = np.clip(bias, 0.0, None)
    mass[mass < min_own * mass.max(axis=1, keepdims=True)] = 0.0
    norms = np.linalg.norm(weight, axis=2, keepdims=True)
    rows = np.divide(weight, norms, out=np.zeros_like(weight), where=norms > 0)
    total = np.zeros(n)
    used = np.zeros(n)
    for c in range(classes):
        top = mass[:, c].max()
        who = np.flatnonzero((mass[:, c] > 0) & (mass[:, c] >= min_share * top))
        pw = peers[who]
        if (pw > 0).sum() < min_peers + 1:
            continue
        cos = rows[who, c] @ rows[who, c].T
        dis = np.empty(len(who))
        for k in range(len(who)):
            others = pw.copy()
            others[k] = 0.0
            dis[k] = 1.0 - weighted_median(cos[k], others)
        typical = weighted_median(dis, pw)
        if typical <= 0:
            continue  # identical rows: nothing to compare against
        total[who] += mass[who, c] * dis / typical
        used[who] += mass[who, c]
    return np.divide(total, used, out=np.zeros(n), where=used > 0), used

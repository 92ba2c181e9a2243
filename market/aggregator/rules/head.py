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

# Which classes an update labels (see _labelled), and how many others a comparison needs.
OWN_SHARE = 0.3
CLASS_SHARE = 0.05
MIN_PEERS = 2


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
    head: list[int] | tuple[int, ...],
) -> tuple[tuple[int, int], tuple[int, int], int, int]:
    """The weight and bias column ranges of a head [weight_offset, bias_offset, classes,
    features] (weight stored (classes, features) row-major, as torch's ``nn.Linear``);
    reading them checks that they fit the model."""
    w_off, b_off, classes, features = (int(x) for x in head)
    return (w_off, w_off + classes * features), (b_off, b_off + classes), classes, features


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


def _labelled(weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit rows (n, classes, features), label masses (n, classes) and which classes each
    update labels: Δb_c > 0, at least ``OWN_SHARE`` of the update's largest mass (a minor
    class's row is dominated by the −p_c·h pull of the update's main classes) and at least
    ``CLASS_SHARE`` of the class's largest."""
    mass = np.clip(bias, 0.0, None)
    mass[mass < OWN_SHARE * mass.max(axis=1, keepdims=True)] = 0.0
    norms = np.linalg.norm(weight, axis=2, keepdims=True)
    rows = np.divide(weight, norms, out=np.zeros_like(weight), where=norms > 0)
    labels = (mass > 0) & (mass >= CLASS_SHARE * mass.max(axis=0, keepdims=True))
    return rows, np.where(labels, mass, 0.0), labels


def label_disagreement(
    weight: np.ndarray, bias: np.ndarray, peers: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per update: how far its head rows point from its peers' on the classes it labels,
    relative to the class's typical disagreement (1 ≈ typical), and its label mass.

    ``weight`` (n, classes, features) and ``bias`` (n, classes) are the updates' head steps
    (which classes an update labels: :func:`_labelled`). On each class, an update's
    disagreement is 1 − the median cosine of its row to the other labellers', divided by
    the median disagreement on that class (some classes vary more than others). Medians
    are weighted by ``peers`` (default 1 each): the weight the caller already gives each
    update, so that clones or rejected updates cannot outvote honest ones. Classes with
    fewer than ``MIN_PEERS`` + 1 labellers of positive weight say nothing (a class held by
    one or two trainers may be new, not flipped). The per-update value is the
    mass-weighted mean over its classes; its mass (the second array) is 0 when no class
    qualified."""
    n, classes, _ = weight.shape
    peers = np.ones(n) if peers is None else np.asarray(peers, dtype=np.float64)
    rows, mass, labels = _labelled(weight, bias)
    total = np.zeros(n)
    used = np.zeros(n)
    for c in range(classes):
        who = np.flatnonzero(labels[:, c])
        pw = peers[who]
        if (pw > 0).sum() < MIN_PEERS + 1:
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


def column_medians(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """:func:`weighted_median` of every column of ``values`` (k, F) at once."""
    order = np.argsort(values, axis=0, kind="stable")
    xs = np.take_along_axis(values, order, axis=0)
    cw = np.cumsum(weights[order], axis=0)
    half = cw[-1] / 2.0
    lower = np.argmax(cw >= half, axis=0)
    upper = np.argmax(cw > half, axis=0)
    cols = np.arange(values.shape[1])
    exact = cw[lower, cols] == half
    return np.where(exact, (xs[lower, cols] + xs[upper, cols]) / 2.0, xs[lower, cols])


def label_misfit(
    weight: np.ndarray, bias: np.ndarray, peers: np.ndarray | None = None, quorum: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Per update: the mass-weighted share of its labelled classes whose row lies nearer to
    another class's centroid than to its own, and the mass judged.

    Cosine disagreement misses flipped pairs that look alike in the hidden features (digits
    0/9, 1/8: a flipper's row stays close to the class's labellers'), but such a row is
    still nearer the other class's centroid. Centroids are coordinate-wise weighted medians
    (weights ``peers``) of the *other* updates' rows per class, from at least ``MIN_PEERS``
    of them. Where flippers are most of a class's labellers, its centroid is theirs and the
    honest rows are the ones that misfit: a class whose labellers fit less than
    ``quorum`` of the time (peer- and mass-weighted; by default, a class most of whose
    labellers misfit) is contested and says nothing."""
    n, classes, features = weight.shape
    peers = np.ones(n) if peers is None else np.asarray(peers, dtype=np.float64)
    rows, mass, labels = _labelled(weight, bias)

    def centroid(c: int, without: int | None) -> np.ndarray | None:
        """Class c's unit centroid from its labellers other than ``without``, if enough."""
        w = np.where(labels[:, c], peers, 0.0)
        if without is not None:
            w[without] = 0.0
        if (w > 0).sum() < MIN_PEERS:
            return None
        v = column_medians(rows[w > 0, c], w[w > 0])
        norm = float(np.linalg.norm(v))
        return v / norm if norm > 0 else None

    # Leaving an update out changes only the centroids of the classes it labels.
    everyone = [centroid(c, None) for c in range(classes)]
    misfit = np.full((n, classes), np.nan)
    for i in range(n):
        if not labels[i].any():
            continue
        own = {c: centroid(c, i) for c in np.flatnonzero(labels[i])}
        cents = [own.get(c, everyone[c]) for c in range(classes)]
        ok = np.array([v is not None for v in cents])
        cent = np.array([v if v is not None else np.zeros(features) for v in cents])
        for c in np.flatnonzero(labels[i] & ok):
            cos = cent @ rows[i, c]
            others = np.where(ok & (np.arange(classes) != c), cos, -np.inf)
            misfit[i, c] = float(others.max() > cos[c])
    total, used = np.zeros(n), np.zeros(n)
    for c in range(classes):
        judged = ~np.isnan(misfit[:, c])
        w = peers[judged] * mass[judged, c]
        if w.sum() <= 0 or 1.0 - float(misfit[judged, c] @ w) / w.sum() < quorum:
            continue  # contested (or nobody judged)
        total[judged] += mass[judged, c] * misfit[judged, c]
        used[judged] += mass[judged, c]
    return np.divide(total, used, out=np.zeros(n), where=used > 0), used

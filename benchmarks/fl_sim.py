"""A small, fast federated-learning simulator for the robustness benchmark.

All trainers' local SGD runs at once as batched NumPy matrix products (one MLP per trainer,
stacked), so 50 rounds × 20 trainers cost well under a second. Same maths as the project's
torch trainer: MLP 64-64-10 with ReLU, cross-entropy averaged over each minibatch, plain SGD
(lr 0.1, batch 32, 1 local epoch, each trainer shuffling its own data), PyTorch's default
uniform(±1/√fan_in) initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Split:
    """Trainer datasets (lists) and a common test set."""

    xs: list[np.ndarray]
    ys: list[np.ndarray]
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int


def load_digits_split(
    n_trainers: int, alpha: float, seed: int, test_fraction: float = 0.2
) -> Split:
    """Digits, a stratified test split, Dirichlet(α) label skew over the trainers."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test_idx, train_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(test_fraction * len(idx)))
        test_idx.extend(idx[:k])
        train_idx.extend(idx[k:])
    train_idx = np.array(train_idx)
    owners: list[list[int]] = [[] for _ in range(n_trainers)]
    for c in range(10):
        idx = rng.permutation(train_idx[y[train_idx] == c])
        p = rng.dirichlet(np.full(n_trainers, alpha))
        cuts = (np.cumsum(p) * len(idx)).astype(int)[:-1]
        for t, part in enumerate(np.split(idx, cuts)):
            owners[t].extend(part.tolist())
    # Every trainer holds at least a few samples (a trainer with none would not join).
    pool = rng.permutation(train_idx)
    for t in range(n_trainers):
        if len(owners[t]) < 4:
            owners[t].extend(pool[4 * t : 4 * t + 4].tolist())
    xs = [x[np.array(o)] for o in owners]
    ys = [y[np.array(o)] for o in owners]
    test = np.array(test_idx)
    return Split(xs, ys, x[test], y[test], 10)


class MLP:
    """Parameters of one MLP 64-h-10 as a flat float32 vector, laid out as torch's
    ``nn.Sequential(Linear, ReLU, Linear)`` state dict: weights (out, in), then biases."""

    def __init__(self, n_in: int = 64, hidden: int = 64, n_out: int = 10) -> None:
        self.shapes = [(hidden, n_in), (hidden,), (n_out, hidden), (n_out,)]
        self.fan_in = [n_in, n_in, hidden, hidden]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.d = sum(self.sizes)
        offsets = np.cumsum([0, *self.sizes])
        # The classifier layer as guard's ``head`` parameter names it.
        self.head = [int(offsets[2]), int(offsets[3]), n_out, hidden]

    def init(self, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        parts = [
            rng.uniform(-1.0 / np.sqrt(fan_in), 1.0 / np.sqrt(fan_in), size=size)
            for fan_in, size in zip(self.fan_in, self.sizes, strict=True)
        ]
        return np.concatenate(parts).astype(np.float32)

    def unpack(self, w: np.ndarray) -> list[np.ndarray]:
        """Views of stacked parameter rows w (k, d) in the maths' orientation: weights as
        (k, in, out) (transposed views of torch's (out, in)), biases (k, out)."""
        out, start = [], 0
        for shape, size in zip(self.shapes, self.sizes, strict=True):
            view = w[:, start : start + size].reshape(len(w), *shape)
            out.append(view.transpose(0, 2, 1) if len(shape) == 2 else view)
            start += size
        return out

    def accuracy(self, w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
        w1, b1, w2, b2 = (p[0] for p in self.unpack(w[None, :]))
        logits = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
        return float((logits.argmax(1) == y).mean())

    def train(
        self,
        w_global: np.ndarray,
        xs: list[np.ndarray],
        ys: list[np.ndarray],
        rng: np.random.Generator,
        lr: float = 0.1,
        batch: int = 32,
        epochs: int = 1,
    ) -> np.ndarray:
        """Local SGD from ``w_global`` for every trainer at once; returns deltas (k, d)."""
        k = len(xs)
        w = np.tile(w_global, (k, 1))
        w1, b1, w2, b2 = self.unpack(w)  # views: updates write through into w
        x_all = np.concatenate([*xs, np.zeros((1, xs[0].shape[1]), dtype=np.float32)])
        y_all = np.concatenate([*ys, np.zeros(1, dtype=np.int64)])
        offsets = np.cumsum([0] + [len(y) for y in ys])
        dummy = len(y_all) - 1
        steps = max(-(-len(y) // batch) for y in ys)
        rows = np.arange(k)[:, None]
        cols = np.arange(batch)[None, :]
        for _ in range(epochs):
            idx = np.full((k, steps * batch), dummy, dtype=np.int64)
            for c, y in enumerate(ys):
                idx[c, : len(y)] = offsets[c] + rng.permutation(len(y))
            idx = idx.reshape(k, steps, batch)
            for t in range(steps):
                it = idx[:, t]
                mask = (it != dummy).astype(np.float32)
                count = mask.sum(1)
                xb, yb = x_all[it], y_all[it]
                pre = np.matmul(xb, w1) + b1[:, None, :]
                h = np.maximum(pre, 0.0)
                logits = np.matmul(h, w2) + b2[:, None, :]
                logits -= logits.max(axis=2, keepdims=True)
                p = np.exp(logits)
                p /= p.sum(axis=2, keepdims=True)
                p[rows, cols, yb] -= 1.0
                g = p * (mask / np.maximum(count, 1.0)[:, None])[:, :, None]
                gw2 = np.matmul(h.transpose(0, 2, 1), g)
                gb2 = g.sum(1)
                dh = np.matmul(g, w2.transpose(0, 2, 1)) * (pre > 0)
                gw1 = np.matmul(xb.transpose(0, 2, 1), dh)
                gb1 = dh.sum(1)
                w2 -= lr * gw2
                b2 -= lr * gb2
                w1 -= lr * gw1
                b1 -= lr * gb1
        return (w - w_global[None, :]).astype(np.float64)

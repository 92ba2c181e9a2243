"""Direct d-space implementations of our rules, written independently of the Gram engine.

Each works on the dense float64 matrix U (n, d); the tests require the streaming,
coefficient-space rules to agree with these to 1e-9 relative.
"""

from __future__ import annotations

import numpy as np


def krum_scores(u: np.ndarray, f: int) -> np.ndarray:
    n = len(u)
    d2 = ((u[:, None, :] - u[None, :, :]) ** 2).sum(-1)
    return np.array([np.sort(np.delete(d2[i], i))[: n - f - 1].mean() for i in range(n)])


def krum(u: np.ndarray, f: int) -> np.ndarray:
    return u[int(np.argmin(krum_scores(u, f)))]


def multi_krum(u: np.ndarray, f: int, m: int) -> np.ndarray:
    order = np.argsort(krum_scores(u, f), kind="stable")
    return u[order[:m]].mean(axis=0)


def weiszfeld(u: np.ndarray, nu: float, iters: int, z0: np.ndarray) -> np.ndarray:
    z = z0.copy()
    for _ in range(iters):
        dist = np.maximum(np.linalg.norm(u - z, axis=1), nu)
        w = (1.0 / len(u)) / dist
        z = (w[:, None] * u).sum(0) / w.sum()
    return z


def centered_clipping(u: np.ndarray, tau: float | None, iters: int, v0: np.ndarray) -> np.ndarray:
    v = v0.copy()
    for _ in range(iters):
        diff = u - v
        dist = np.linalg.norm(diff, axis=1)
        t = np.median(dist) if tau is None else tau
        factor = np.minimum(1.0, t / np.where(dist > 0, dist, np.inf))
        factor = np.where(dist > 0, factor, 1.0)
        v = v + (diff * factor[:, None]).mean(0)
    return v


def trimmed_mean(u: np.ndarray, f: int) -> np.ndarray:
    s = np.sort(u, axis=0)
    return s[f : len(u) - f].mean(axis=0)


def flag_dense(
    u: np.ndarray, m: int, lam: float, iters: int, eps: float = 1e-7, scale: str = "median_norm"
) -> tuple[np.ndarray, np.ndarray]:
    """IRLS on the d×n matrix of normalised updates; returns (aggregate, Y)."""
    n = len(u)
    norms = np.linalg.norm(u, axis=1)
    x = (u / norms[:, None]).T  # d × n

    def top(mat: np.ndarray) -> np.ndarray:
        left, sv, _ = np.linalg.svd(mat, full_matrices=False)
        return left[:, :m]

    def objective(y: np.ndarray) -> float:
        return float(np.sqrt(np.clip(1 - ((y.T @ x) ** 2).sum(0), 0, None)).sum())

    y = top(x)
    err = objective(y)
    for _ in range(iters):
        w = (np.abs(1 - ((y.T @ x) ** 2).sum(0)) + eps) ** -0.25
        cols = [w[i] * x[:, i] for i in range(n)]
        if lam > 0:
            for i in range(n):
                for j in range(n):
                    if i != j:
                        v = x[:, i] - x[:, j]
                        s = (np.abs(1 - ((y.T @ v) ** 2).sum()) + eps) ** -0.25
                        cols.append(s * lam / (n * (n - 1)) * v)
        new = top(np.stack(cols, axis=1))
        new_err = objective(new)
        if new_err > err * (1 + 1e-12):
            break
        moved = np.abs(((new.T @ x) ** 2).sum(0) - ((y.T @ x) ** 2).sum(0)).max()
        done = moved <= 1e-12
        y, err = new, new_err
        if done:
            break
    if scale == "reference":
        target = x.sum(1) / m
    elif scale == "mean":
        target = u.mean(0)
    elif scale == "weighted_clip":
        cnt = np.ones(n)
        tau = 3.0 * np.median(norms / cnt) * cnt
        target = (cnt * np.minimum(1.0, tau / norms))[:, None] * u
        target = target.sum(0) / cnt.sum()
    else:
        med = np.median(norms)
        target = (u * np.minimum(1.0, med / norms)[:, None]).mean(0)
    return y @ (y.T @ target), y


def foolsgold_weights(h: np.ndarray, cap: bool, eps: float) -> np.ndarray:
    """FoolsGold / SybilWall weights written as loops, like the reference codes."""
    n = len(h)
    nh = h / np.linalg.norm(h, axis=1, keepdims=True)
    cs = nh @ nh.T - np.eye(n)
    maxcs = cs.max(axis=1) + eps
    for i in range(n):
        for j in range(n):
            if i != j and maxcs[i] < maxcs[j]:
                cs[i, j] = cs[i, j] * maxcs[i] / maxcs[j]
    wv = np.clip(1 - cs.max(axis=1), 0, 1)
    wv = wv / wv.max()
    if cap:
        wv[wv == 1] = 0.99
    with np.errstate(divide="ignore"):
        wv = np.log(wv / (1 - wv)) + 0.5
    return np.clip(wv, 0, 1)

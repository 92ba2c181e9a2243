"""Datasets for local training: scikit-learn's bundled digits, and loaders for your own data.

No network at run time: digits ships inside scikit-learn; other data comes from local
``.npz`` (loaded with ``allow_pickle=False``) or ``.csv`` files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from market.errors import TrainingError


@dataclass(frozen=True)
class Dataset:
    """Features as float32 rows and integer class labels."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise TrainingError(
                f"dataset shapes disagree: x {self.x.shape}, y {self.y.shape}; "
                "expected x (n, features) and y (n,)"
            )

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray) -> Dataset:
        return Dataset(self.x[index], self.y[index])


def load_digits() -> Dataset:
    """The 8×8 digits (1797 samples, 64 features scaled to [0, 1], 10 classes)."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return Dataset(
        (bunch.data / 16.0).astype(np.float32),
        bunch.target.astype(np.int64),
    )


def load_npz(path: Path, x_key: str = "x", y_key: str = "y") -> Dataset:
    """Load features and labels from an ``.npz`` file (never unpickles)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return Dataset(archive[x_key].astype(np.float32), archive[y_key].astype(np.int64))
    except (OSError, KeyError, ValueError) as exc:
        raise TrainingError(
            f"cannot load {path}: {exc} (need arrays {x_key!r}, {y_key!r})"
        ) from exc


def load_csv(path: Path, label_column: int = -1) -> Dataset:
    """Load a numeric CSV with a header row; one column holds the integer label."""
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot load {path}: {exc} (need a numeric CSV with header)") from exc
    labels = table[:, label_column]
    features = np.delete(table, label_column % table.shape[1], axis=1)
    return Dataset(features.astype(np.float32), labels.astype(np.int64))


def load_dataset(source: str) -> Dataset:
    """Resolve a data source name: ``digits``, or a path to an ``.npz`` / ``.csv`` file."""
    if source == "digits":
        return load_digits()
    path = Path(source)
    if path.suffix == ".npz":
        return load_npz(path)
    if path.suffix == ".csv":
        return load_csv(path)
    raise TrainingError(f"unknown data source {source!r}: use 'digits', a .npz or a .csv file")


def train_test_split(data: Dataset, test_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """A seeded shuffle split; the test part is the owner's held-out set."""
    order = np.random.default_rng(seed).permutation(len(data))
    cut = int(round(len(data) * (1 - test_fraction)))
    return data.subset(np.sort(order[:cut])), data.subset(np.sort(order[cut:]))


def dirichlet_split(
    labels: np.ndarray, parts: int, alpha: float, seed: int, min_size: int = 10
) -> list[np.ndarray]:
    """Non-IID label-skewed split: each class is divided among parts by Dirichlet(α) shares.

    Small α gives each part few classes. Redraws until every part has ``min_size``
    samples, so no trainer is left without data.
    """
    if parts < 1 or alpha <= 0:
        raise TrainingError(f"need parts ≥ 1 and alpha > 0, got parts={parts}, alpha={alpha}")
    if len(labels) < parts * min_size:
        raise TrainingError(f"{len(labels)} samples cannot give {parts} parts of {min_size}")
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        buckets: list[list[int]] = [[] for _ in range(parts)]
        for cls in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == cls))
            shares = rng.dirichlet(np.full(parts, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
            for bucket, chunk in zip(buckets, np.split(members, cuts), strict=True):
                bucket.extend(chunk.tolist())
        if min(len(b) for b in buckets) >= min_size:
            return [np.sort(np.asarray(b, dtype=np.int64)) for b in buckets]
    raise TrainingError(f"no Dirichlet split with {min_size} samples per part; raise alpha")

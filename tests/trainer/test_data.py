import numpy as np
import pytest

from market.errors import TrainingError
from market.trainer.data import (
    Dataset,
    dirichlet_split,
    load_csv,
    load_dataset,
    load_digits,
    load_npz,
    train_test_split,
)


def test_digits_shape_and_scale():
    data = load_digits()
    assert data.x.shape == (1797, 64) and data.x.dtype == np.float32
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0
    assert set(np.unique(data.y)) == set(range(10))


def test_split_is_a_seeded_partition():
    data = load_digits()
    train, test = train_test_split(data, 0.2, seed=1)
    assert len(train) + len(test) == len(data)
    again, _ = train_test_split(data, 0.2, seed=1)
    np.testing.assert_array_equal(train.x, again.x)


def test_dirichlet_split_partitions_and_skews():
    y = load_digits().y
    parts = dirichlet_split(y, 5, alpha=0.1, seed=3)
    joined = np.sort(np.concatenate(parts))
    np.testing.assert_array_equal(joined, np.arange(len(y)))
    assert all(len(p) >= 10 for p in parts)
    # small alpha: each part is dominated by few classes
    top_share = [np.bincount(y[p], minlength=10).max() / len(p) for p in parts]
    assert np.mean(top_share) > 0.3
    again = dirichlet_split(y, 5, 0.1, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_dirichlet_split_rejects_bad_arguments():
    with pytest.raises(TrainingError, match="alpha"):
        dirichlet_split(np.zeros(100, dtype=int), 2, alpha=0, seed=0)
    with pytest.raises(TrainingError, match="cannot give"):
        dirichlet_split(np.zeros(15, dtype=int), 2, alpha=1, seed=0)


def test_npz_and_csv_loaders(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 0, 1])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    loaded = load_dataset(str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(loaded.x, x)
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    csv = load_csv(tmp_path / "d.csv")
    np.testing.assert_array_equal(csv.y, [0, 1])
    assert csv.x.shape == (2, 2)


def test_loaders_refuse_pickles_and_bad_sources(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "obj.npz").write_bytes((tmp_path / "obj.npy").read_bytes())
    with pytest.raises(TrainingError):
        load_npz(tmp_path / "obj.npz")
    with pytest.raises(TrainingError, match="unknown data source"):
        load_dataset("imagenet")
    with pytest.raises(TrainingError, match="shapes disagree"):
        Dataset(np.zeros((3, 2), np.float32), np.zeros(2, np.int64))

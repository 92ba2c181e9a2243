"""The trainer service's local data: digits part, a file, a directory, a loader entry point."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from market.config import TrainerConfig, load_config
from market.errors import TrainingError
from market.trainer.data import Dataset
from market.trainer.service import load_training_data


def config(**settings) -> TrainerConfig:
    return load_config(TrainerConfig, None, **settings)


def test_digits_part_is_one_dirichlet_share():
    parts = [len(load_training_data(config(digits_part=i, digits_parts=3))) for i in range(3)]
    assert sum(parts) == round(1797 * 0.8) and min(parts) >= 10


def test_directory_concatenates_every_npz_and_csv_file(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.savez(tmp_path / "a.npz", x=x, y=np.array([0, 1, 0, 1]))
    (tmp_path / "b.csv").write_text("f1,f2,f3,label\n1,2,3,2\n4,5,6,1\n")
    (tmp_path / "notes.txt").write_text("ignored")
    data = load_training_data(config(data=str(tmp_path)))
    assert data.x.shape == (6, 3) and data.y.tolist() == [0, 1, 0, 1, 2, 1]
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="no .npz or .csv"):
        load_training_data(config(data=str(tmp_path / "empty")))


def test_loader_entry_point_gets_the_spec(tmp_path, monkeypatch):
    (tmp_path / "my_loader.py").write_text(
        "import numpy as np\n"
        "from market.trainer.data import Dataset\n"
        "def load(spec):\n"
        "    return Dataset(np.zeros((5, 64), np.float32), np.zeros(5, np.int64))\n"
        "def wrong(spec):\n"
        "    return [1, 2]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    data = load_training_data(config(loader="my_loader:load"))
    assert isinstance(data, Dataset) and len(data) == 5
    with pytest.raises(TrainingError, match="returned list"):
        load_training_data(config(loader="my_loader:wrong"))
    with pytest.raises(TrainingError, match="cannot import loader"):
        load_training_data(config(loader="my_loader:missing"))
    sys.modules.pop("my_loader", None)

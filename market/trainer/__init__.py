"""The trainer: datasets (digits, Dirichlet non-IID splits, .npz/.csv loaders), the model
from a project's spec, local training, and the commit–reveal client for one round
(:mod:`.client`) and the long-running service (:mod:`.service`)."""

from market.trainer.data import (
    Dataset,
    dirichlet_split,
    load_csv,
    load_dataset,
    load_digits,
    load_npz,
    train_test_split,
)
from market.trainer.local import compute_delta, evaluate, train_local, train_update
from market.trainer.model import ModelSpec, build_model, get_weights, set_weights

__all__ = [
    "Dataset",
    "ModelSpec",
    "build_model",
    "compute_delta",
    "dirichlet_split",
    "evaluate",
    "get_weights",
    "load_csv",
    "load_dataset",
    "load_digits",
    "load_npz",
    "set_weights",
    "train_local",
    "train_test_split",
    "train_update",
]

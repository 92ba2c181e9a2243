"""Local training on the trainer's private data: only the weight delta leaves the machine."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from market.trainer.data import Dataset
from market.trainer.model import get_weights, set_weights


@dataclass(frozen=True)
class TrainingProgress:
    """Where local training is: after ``batch`` of ``batches`` in epoch ``epoch`` (1-based)."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float  # the last batch's


ProgressCallback = Callable[[TrainingProgress], None]
_PROGRESS: ContextVar[ProgressCallback | None] = ContextVar("training_progress", default=None)


@contextmanager
def reporting_progress(callback: ProgressCallback) -> Iterator[None]:
    """Training anywhere below this block (however deep in the call chain) reports each
    batch to ``callback``: a service shows progress without threading it through callers."""
    token = _PROGRESS.set(callback)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def train_local(
    model: nn.Module,
    data: Dataset,
    *,
    epochs: int = 1,
    lr: float = 0.1,
    batch_size: int = 32,
    seed: int = 0,
) -> None:
    """Plain minibatch SGD on cross-entropy, shuffled by a seeded generator; each batch is
    reported to the callback of an enclosing :func:`reporting_progress`, if any."""
    progress = _PROGRESS.get()
    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(data.x)
    y = torch.from_numpy(data.y)
    optimiser = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    batches = -(-len(y) // batch_size)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(y), generator=generator)
        for index, start in enumerate(range(0, len(y), batch_size), 1):
            batch = order[start : start + batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
            if progress is not None:
                progress(TrainingProgress(epoch, epochs, index, batches, float(loss.item())))


def evaluate(model: nn.Module, data: Dataset) -> float:
    """Top-1 accuracy on ``data``."""
    model.eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(data.x)).argmax(dim=1).numpy()
    return float((predicted == data.y).mean())


def compute_delta(
    model: nn.Module, global_weights: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The update a trainer publishes: trained weights minus the global model."""
    trained = get_weights(model)
    return {name: (trained[name] - global_weights[name]).astype(np.float32) for name in trained}


def train_update(
    model: nn.Module,
    global_weights: Mapping[str, np.ndarray],
    data: Dataset,
    **options: float | int,
) -> dict[str, np.ndarray]:
    """Start from the global model, train locally, return the weight delta."""
    set_weights(model, global_weights)
    train_local(model, data, **options)  # type: ignore[arg-type]
    return compute_delta(model, global_weights)

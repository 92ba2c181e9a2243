"""Training progress in the trainer service: a bar per epoch on a terminal, throttled
``progress`` events in logs (``--json`` stays one JSON object per line)."""

from __future__ import annotations

import io
import json

import numpy as np
import torch
from rich.console import Console

from market.runtime import ServiceLog
from market.trainer.data import Dataset, load_dataset
from market.trainer.local import TrainingProgress, reporting_progress, train_local
from market.trainer.model import ModelSpec, build_model, get_weights


def digits(n: int = 200) -> Dataset:
    data = load_dataset("digits")
    return Dataset(data.x[:n], data.y[:n])


def trained(progress=None) -> dict[str, np.ndarray]:  # noqa: ANN001
    torch.manual_seed(0)
    model = build_model(ModelSpec(hidden=(16,)))
    if progress is None:
        train_local(model, digits(), epochs=2, batch_size=64, seed=1)
    else:
        with reporting_progress(progress):
            train_local(model, digits(), epochs=2, batch_size=64, seed=1)
    return get_weights(model)


def test_training_reports_every_batch_of_every_epoch_and_trains_the_same():
    seen: list[TrainingProgress] = []
    weights = trained(seen.append)
    assert [(p.epoch, p.batch) for p in seen] == [(e, b) for e in (1, 2) for b in (1, 2, 3, 4)]
    assert {(p.epochs, p.batches) for p in seen} == {(2, 4)}  # 200 samples, batches of 64
    assert all(np.isfinite(p.loss) for p in seen)
    plain = trained()
    assert all(np.array_equal(weights[k], plain[k]) for k in plain)  # reporting changes nothing
    seen.clear()
    trained()
    assert seen == []  # outside reporting_progress, nobody is called


def test_json_logs_get_throttled_progress_events(capsys):
    log = ServiceLog(json_logs=True)
    with log.progress("training", project=1, round=2) as report:
        for epoch in (1, 2):
            for batch in range(1, 501):
                report(TrainingProgress(epoch, 2, batch, 500, 0.5))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert 2 <= len(lines) <= 4  # the first, maybe one per 2 s, and always the last
    assert all(r["event"] == "progress" and r["project"] == 1 for r in lines)
    assert (lines[-1]["epoch"], lines[-1]["batch"]) == (2, 500)


def test_terminal_shows_a_bar_per_epoch():
    out = io.StringIO()
    log = ServiceLog(console=Console(file=out, force_terminal=True, width=120))
    with log.progress("project 1 round 1") as report:
        for epoch in (1, 2):
            for batch in range(1, 6):
                report(TrainingProgress(epoch, 2, batch, 5, 0.25))
    text = out.getvalue()
    assert "project 1 round 1 · epoch 1/2" in text and "epoch 2/2" in text
    assert "5/5" in text and "loss 0.2500" in text
    assert log.records == []  # a bar, not log events

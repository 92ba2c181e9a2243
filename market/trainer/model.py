"""The model a project trains, described by a small JSON-able spec, and its weights as arrays.

Weights cross process and machine boundaries only as named float32 arrays (safetensors
on the wire), never as pickled torch objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from market.errors import TrainingError


@dataclass(frozen=True)
class ModelSpec:
    """A multilayer perceptron: ``input_dim → hidden… → num_classes`` with ReLU."""

    kind: str = "mlp"
    input_dim: int = 64
    hidden: tuple[int, ...] = field(default=(64, 64))
    num_classes: int = 10

    @classmethod
    def from_dict(cls, raw: Mapping) -> ModelSpec:
        if raw.get("kind", "mlp") != "mlp":
            raise TrainingError(f"unknown model kind {raw.get('kind')!r}; supported: 'mlp'")
        return cls(
            kind="mlp",
            input_dim=int(raw["input_dim"]),
            hidden=tuple(int(h) for h in raw.get("hidden", ())),
            num_classes=int(raw["num_classes"]),
        )

    def to_dict(self) -> dict:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out


def build_model(spec: ModelSpec, seed: int = 0) -> nn.Module:
    """A freshly initialised model; the seed makes the initial global model reproducible."""
    torch.manual_seed(seed)
    widths = [spec.input_dim, *spec.hidden]
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], spec.num_classes))
    return nn.Sequential(*layers)


def get_weights(model: nn.Module) -> dict[str, np.ndarray]:
    """The model's parameters as named float32 arrays, in the model's order."""
    return {
        name: t.detach().cpu().numpy().astype(np.float32).copy()
        for name, t in model.state_dict().items()
    }


def set_weights(model: nn.Module, weights: Mapping[str, np.ndarray]) -> None:
    """Load named arrays into the model; names and shapes must match exactly."""
    state = model.state_dict()
    if set(state) != set(weights):
        raise TrainingError(
            f"weights do not fit the model: missing {sorted(set(state) - set(weights))}, "
            f"unexpected {sorted(set(weights) - set(state))}"
        )
    for name, tensor in state.items():
        if tuple(weights[name].shape) != tuple(tensor.shape):
            raise TrainingError(
                f"weight {name!r} has shape {weights[name].shape}, "
                f"the model needs {tuple(tensor.shape)}"
            )
    model.load_state_dict(
        {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in weights.items()}
    )

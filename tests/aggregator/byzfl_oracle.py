"""Import ``byzfl`` (a test-only oracle) without its heavy optional imports.

byzfl's package ``__init__`` imports its benchmark code, which needs torchvision and
seaborn. The PyPI torchvision wheel does not load against the CPU torch build we pin, and
neither is needed for the aggregators, so stand-in modules are registered first.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _Anything(types.ModuleType):
    """A module whose every attribute is a no-op callable returning another stand-in."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def _stub(name: str, **attrs: Any) -> types.ModuleType:
    mod = _Anything(name)
    mod.__dict__.update(attrs)
    return mod


def load_byzfl() -> Any:
    """The ``byzfl`` module, or ``None`` when it is not installed."""
    try:
        import importlib.util

        if importlib.util.find_spec("byzfl") is None:
            return None
    except ValueError:
        return None
    if "byzfl" not in sys.modules:
        saved = {k: sys.modules.get(k) for k in ("torchvision", "seaborn")}
        datasets = _stub("torchvision.datasets")
        transforms = _stub("torchvision.transforms")
        sys.modules["torchvision"] = _stub("torchvision", datasets=datasets, transforms=transforms)
        sys.modules["torchvision.datasets"] = datasets
        sys.modules["torchvision.transforms"] = transforms
        sys.modules["seaborn"] = _stub("seaborn")
        try:
            import byzfl  # noqa: F401
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
            sys.modules.pop("torchvision.datasets", None)
            sys.modules.pop("torchvision.transforms", None)
    return sys.modules["byzfl"]

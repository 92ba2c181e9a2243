"""``POST …/verify``: run ``market verify``'s re-execution of a round on the server.

The verifier lives in :mod:`market.proofs.verify` (another package); it is imported when
asked for, so the dashboard runs — and says clearly what is missing — without it.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import time
from typing import Any

from market.errors import ConfigError

from .state import Services

CANDIDATES = ("verify_round", "verify")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and abs(value) >= 2**53:
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def verify_round(svc: Services, project_id: int, number: int) -> dict[str, Any]:
    try:
        module = importlib.import_module("market.proofs.verify")
    except ImportError as exc:
        raise ConfigError(
            "round verification is not available in this build (market.proofs.verify is "
            f"missing: {exc}); run `market verify --project {project_id} --round {number}` "
            "once it exists"
        ) from exc
    fn = next((getattr(module, n) for n in CANDIDATES if hasattr(module, n)), None)
    if fn is None:
        raise ConfigError(f"market.proofs.verify has none of {CANDIDATES}")
    available = {
        "market": svc.market,
        "store": svc.store,
        "project_id": project_id,
        "round": number,
        "round_number": number,
        "w3": svc.w3,
    }
    params = inspect.signature(fn).parameters
    kwargs = {name: available[name] for name in params if name in available}
    started = time.monotonic()
    result = fn(**kwargs)
    body = _jsonable(result.to_dict() if hasattr(result, "to_dict") else result)
    ok = getattr(result, "ok", None)
    if ok is None:
        ok = body.get("ok", body.get("passed")) if isinstance(body, dict) else bool(result)
    return {
        "project_id": project_id,
        "round": number,
        "ok": ok,
        "seconds": round(time.monotonic() - started, 3),
        "result": body,
    }

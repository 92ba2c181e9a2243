"""Run every benchmark: ``python -m benchmarks [--quick] [name ...]`` (what ``make bench`` runs).

Each module in this package with a ``run(quick: bool)`` function is a benchmark; each writes
its JSON and PNG into ``benchmarks/results/``. BLAS is limited to one thread for the whole
run (see ``aggregation_speed``): the machine is shared and oversubscribed threads distort.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
import traceback
from pathlib import Path

# Before NumPy loads: one BLAS thread everywhere (see the module docstring).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ORDER = ["aggregation_speed", "robustness"]


def discover() -> list[str]:
    here = Path(__file__).parent
    names = [m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_")]
    found = []
    for name in names:
        if name in ("fl_sim",):
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        if callable(getattr(module, "run", None)):
            found.append(name)
    return [n for n in ORDER if n in found] + sorted(n for n in found if n not in ORDER)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    wanted = [a for a in argv if not a.startswith("--")]
    names = [n for n in discover() if not wanted or n in wanted]
    failed = []
    for name in names:
        started = time.perf_counter()
        print(f"== benchmark {name} ({'quick' if quick else 'full'})", flush=True)
        try:
            importlib.import_module(f"benchmarks.{name}").run(quick=quick)
        except Exception:  # noqa: BLE001 - finish the other benchmarks, then fail
            traceback.print_exc()
            failed.append(name)
        print(f"== {name}: {time.perf_counter() - started:.1f} s", flush=True)
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

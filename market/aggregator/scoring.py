"""Contribution scores from the robust rule's evidence.

For now a score is the update's coefficient in the robust aggregate (its share of the new
model), clipped at 0; rejected and flagged updates score 0. Issue 6 refines this with
alignment to the aggregate and validation-loss change.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def contribution_scores(coefficients: np.ndarray, flags: Sequence[str | None]) -> list[float]:
    """Non-negative scores, one per accepted update, normalised to sum to 1 (or all 0)."""
    raw = [0.0 if flag else max(float(c), 0.0) for c, flag in zip(coefficients, flags, strict=True)]
    total = sum(raw)
    return [r / total if total > 0 else 0.0 for r in raw]

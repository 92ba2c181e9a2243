"""Compiled loops for the coordinate-wise rules (Numba, GIL released).

Sort keys: a value s·q rounded to float32 (a monotone rounding), as an *ordered* int32
(signed-integer order = float order), with its low ``bits`` replaced by the update's index.
Sorting a coordinate's keys orders its values exactly wherever the truncated keys differ
and names the update holding each sorted position; a cut between two equal truncated keys
is *uncertain* (the values may be equal or in either order) and the caller redoes that
coordinate exactly.

Every loop does IEEE operations one at a time in a fixed order (no fast-math, hence no
reassociation), so the bytes do not depend on the machine's SIMD width.
"""

from __future__ import annotations

import numba
import numpy as np

from market.errors import AggregationError

# Flipping the magnitude bits of negatives maps float32 bit patterns to ordered integers
# and back (the map is its own inverse).
_MAGNITUDE = 0x7FFFFFFF
_ORDERED_INF = 0x7F800000  # ordered key of +inf (and its float bits); beyond it lie NaNs
_PLUS_INF_BITS = np.int32(_ORDERED_INF)
_MINUS_INF_BITS = np.int32(-0x800000)  # 0xFF800000


def _rows(q: np.ndarray) -> tuple[np.ndarray, int]:
    """``q`` (n, c) as one flat run of memory and its row stride. A 2-D slice reaches the
    compiled loops with unknown strides, and LLVM does not vectorise loops over it."""
    if q.strides[1] != 1:
        q = np.ascontiguousarray(q)
    span = (q.shape[0] - 1) * q.strides[0] + q.shape[1]
    flat = np.lib.stride_tricks.as_strided(q, shape=(span,), strides=(1,), writeable=False)
    return flat, q.strides[0]


def _check(ok: bool, what: str) -> None:
    """The compiled loops do not check bounds: a wrong shape would write past an array."""
    if not ok:
        raise AggregationError(f"coordinate kernel: {what}")


def _check_blocks(q_shape: tuple[int, int], s: np.ndarray, block_size: int) -> None:
    n, c = q_shape
    _check(s.shape == (n, -(-c // block_size)), f"scales {s.shape} for values {q_shape}")


@numba.njit(inline="always")
def _flip(m: int) -> int:
    """Float32 bit pattern ↔ ordered integer (its own inverse)."""
    return m ^ ((m >> 31) & _MAGNITUDE)


@numba.njit(inline="always")
def _uncertain(row: np.ndarray, k: int, bits: int) -> bool:
    """Whether the cut between sorted positions k − 1 and k falls between equal truncated
    keys (False at either end)."""
    return 0 < k < row.shape[0] and (row[k - 1] >> bits) == (row[k] >> bits)


@numba.njit(inline="always")
def _value(flat: np.ndarray, row_stride: int, s: np.ndarray, i: int, j: int, b: int) -> float:
    """The exact value of update i at column j (block b) of a flat-rows chunk."""
    return np.float64(s[i, b]) * np.float64(flat[i * row_stride + j])


def order_keys(
    qt: np.ndarray, st: np.ndarray, block_size: int, bits: int, keys: np.ndarray
) -> None:
    """``keys[j, i]``: the key of value ``st[j // block_size, i] · qt[j, i]``.

    ``qt`` (c, n) int8, ``st`` (blocks, n) float32, ``keys`` (c, n) int32, C-contiguous."""
    _check(keys.shape == qt.shape and keys.flags.c_contiguous, "keys must match the values")
    _check_blocks(qt.shape[::-1], st.T, block_size)
    _check(qt.shape[1] <= 1 << bits, f"{qt.shape[1]} updates do not fit {bits} index bits")
    _order_keys(qt, st, block_size, bits, keys)


@numba.njit(nogil=True, cache=True)
def _order_keys(
    qt: np.ndarray, st: np.ndarray, block_size: int, bits: int, keys: np.ndarray
) -> None:
    c, n = qt.shape
    as_float = keys.view(np.float32)
    for j in range(c):
        scale = st[j // block_size]
        for i in range(n):
            # + 0.0 turns −0.0 into +0.0: equal values must get equal truncated keys.
            as_float[j, i] = scale[i] * np.float32(qt[j, i]) + np.float32(0.0)
    for j in range(c):
        for i in range(n):
            m = keys[j, i]
            keys[j, i] = ((_flip(m) >> bits) << bits) | i


def trimmed_bounds(keys: np.ndarray, bits: int, f: int) -> tuple[np.ndarray, ...]:
    """Per coordinate of sorted ``keys`` (c, n): the float32 interval [lo, hi] holding the
    float32 roundings of exactly the values at sorted positions f … n−f−1, and whether a
    cut is uncertain (then the interval is empty and the coordinate must be redone)."""
    c, n = keys.shape
    _check(0 <= 2 * f < n, f"cannot drop 2·{f} of {n} values")
    lo, hi = np.empty(c, np.int32), np.empty(c, np.int32)
    uncertain = np.empty(c, np.bool_)
    _trimmed_bounds(keys, bits, f, lo, hi, uncertain)
    return lo.view(np.float32), hi.view(np.float32), uncertain


@numba.njit(nogil=True, cache=True)
def _trimmed_bounds(
    keys: np.ndarray, bits: int, f: int, lo: np.ndarray, hi: np.ndarray, uncertain: np.ndarray
) -> None:
    n = keys.shape[1]
    if f == 0:  # nothing dropped: every value is kept
        uncertain[:] = False
        lo[:], hi[:] = _MINUS_INF_BITS, _PLUS_INF_BITS
        return
    for j in range(keys.shape[0]):
        row = keys[j]
        unsure = _uncertain(row, f, bits) or _uncertain(row, n - f, bits)
        uncertain[j] = unsure
        if unsure:
            lo[j], hi[j] = _PLUS_INF_BITS, _MINUS_INF_BITS
            continue
        # Least float32 whose key truncates like position f's, greatest like n−f−1's.
        low = np.int64(row[f] >> bits) << bits
        high = min(((np.int64(row[n - f - 1] >> bits) + 1) << bits) - 1, _ORDERED_INF)
        lo[j] = np.int32(_flip(low))
        hi[j] = np.int32(_flip(high))


def masked_sum(
    q: np.ndarray, s: np.ndarray, block_size: int, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per coordinate j, Σ (in update order, one add at a time, from +0.0) of the exact
    values ``s[i, j // block_size] · q[i, j]`` whose float32 rounding lies in
    ``[lo[j], hi[j]]``; and per update, on how many coordinates it was added."""
    _check_blocks(q.shape, s, block_size)
    _check(lo.shape == hi.shape == (q.shape[1],), "one interval per coordinate")
    flat, stride = _rows(q)
    acc = np.zeros(q.shape[1])
    counts = np.zeros(q.shape[0], np.int64)
    _masked_sum(flat, stride, q.shape[0], q.shape[1], s, block_size, lo, hi, acc, counts)
    return acc, counts


@numba.njit(nogil=True, cache=True)
def _masked_sum(
    flat: np.ndarray,
    row_stride: int,
    n: int,
    c: int,
    s: np.ndarray,
    block_size: int,
    lo: np.ndarray,
    hi: np.ndarray,
    acc: np.ndarray,
    counts: np.ndarray,
) -> None:
    for i in range(n):
        for b in range(s.shape[1]):
            j0, j1 = b * block_size, min(c, (b + 1) * block_size)
            start = i * row_stride
            counts[i] += _masked_block(
                flat[start + j0 : start + j1], s[i, b], lo[j0:j1], hi[j0:j1], acc[j0:j1]
            )


@numba.njit(nogil=True, cache=True)
def _masked_block(
    q: np.ndarray, scale: np.float32, lo: np.ndarray, hi: np.ndarray, acc: np.ndarray
) -> int:
    """One update's block: a separate function over 1-D slices, because LLVM vectorises
    this loop and not the same loop inlined under 2-D indexing."""
    taken = 0
    scale64 = np.float64(scale)
    for j in range(q.shape[0]):
        v = q[j]
        rounded = scale * np.float32(v) + np.float32(0.0)
        inside = (lo[j] <= rounded) & (rounded <= hi[j])
        a = acc[j]
        acc[j] = a + scale64 * np.float64(v) if inside else a
        taken += inside
    return taken


@numba.njit(nogil=True, cache=True)
def kept_sums(values: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Σ of each row's kept values (rows × n), added as :func:`masked_sum` adds them: in
    update order, one at a time, from +0.0."""
    acc = np.zeros(values.shape[0])
    for r in range(values.shape[0]):
        total = 0.0
        for i in range(values.shape[1]):
            if kept[r, i]:
                total += values[r, i]
        acc[r] = total
    return acc


def median_picks(
    keys: np.ndarray, bits: int, q: np.ndarray, s: np.ndarray, block_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per coordinate of sorted ``keys`` (c, n): the exact median (the mean of the two
    middle values for even n), and per update the number of middle positions it holds.

    A middle value repeated elsewhere in its coordinate is shared equally by its copies
    (for each middle position, 1/e to each of the e updates holding that value); shares
    are added in coordinate then update order, one add at a time."""
    c, n = keys.shape
    _check(q.shape == (n, c), f"keys {keys.shape} for values {q.shape}")
    _check_blocks(q.shape, s, block_size)
    med = np.empty(c)
    held = np.zeros(n)
    flat, stride = _rows(q)
    _median_picks(keys, bits, flat, stride, s, block_size, med, held)
    return med, held


@numba.njit(nogil=True, cache=True)
def _median_picks(
    keys: np.ndarray,
    bits: int,
    flat: np.ndarray,
    row_stride: int,
    s: np.ndarray,
    block_size: int,
    med: np.ndarray,
    held: np.ndarray,
) -> None:
    n = keys.shape[1]
    lo_k, hi_k = (n - 1) // 2, n // 2
    index = (1 << bits) - 1
    column = np.empty(n)
    for j in range(keys.shape[0]):
        row = keys[j]
        b = j // block_size
        # The two middle positions may be swapped without harm (their mean is symmetric):
        # only the cuts outside them matter.
        if not (_uncertain(row, lo_k, bits) or _uncertain(row, hi_k + 1, bits)):
            h_lo, h_hi = row[lo_k] & index, row[hi_k] & index
            low = _value(flat, row_stride, s, h_lo, j, b)
            high = _value(flat, row_stride, s, h_hi, j, b)
            held[h_lo] += 1.0
            held[h_hi] += 1.0
        else:
            for i in range(n):
                column[i] = _value(flat, row_stride, s, i, j, b)
            ordered = np.sort(column)
            low, high = ordered[lo_k], ordered[hi_k]
            for value in (low, high):
                copies = 0
                for i in range(n):
                    copies += column[i] == value
                for i in range(n):
                    if column[i] == value:
                        held[i] += 1.0 / copies
        med[j] = low if lo_k == hi_k else (low + high) / 2.0

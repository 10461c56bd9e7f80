"""The row loops: updates of the rows of a table that a sparse gradient names.

A row-sparse gradient is ``rows`` (k indices into the first axis of ``x``) and ``g`` (k rows of
values, ``g[j]`` for row ``rows[j]``). Nothing here checks arguments (``kernels.py`` does,
before calling in) and nothing here writes an update: each element of a row is updated by the
per-element math of ``_math.py`` (through :func:`_loops._update_element`, as the dense loops
do), and exact RMSProp's catch-up is the formula of ``_math.py`` too. What is here is the
access pattern:

1. The entries are put in order of row, equal rows keeping their input order
   (:func:`_row_order`: a stable radix sort of the row indices, skipped when they already
   increase). Equal rows then form *runs*.
2. Each run updates its row: once, with the run's values summed in input order into a scratch
   row (``duplicates="sum"``), or once per entry, in input order (``"sequential"``). In exact
   RMSProp the row's state is first brought forward over the steps it missed, in the same pass
   over the row as the update.
3. Runs touch disjoint rows, so the parallel loop shares them among the threads in chunks of
   about equal numbers of entries, no chunk boundary inside a run. Every row is written by one
   thread and every sum is formed in input order: the serial and the parallel loop give the
   same bits, whatever the number of threads.

What it costs beyond the rows' own bytes: two int64 arrays of k entries (the order and the
radix sort's buffer), a count of at most 2049 entries per sort pass (ceil(log2(n) / 11)
passes: 2 up to 4 million rows, 3 up to 8 billion), a read of ``rows`` per pass, and one
scratch row per chunk. Time and memory grow with k, never with n.
"""

from __future__ import annotations

import numpy as np
from numba import prange
from numba.extending import overload
from numba.np.ufunc.parallel import _iget_num_threads

from ._jit import jit
from ._loops import _BLOCK, _is_none, _update_element, _update_serial
from ._math import _gamma_power, _rmsprop_catch_up

_RADIX_BITS = 11  # at most, per pass of the radix sort

_gamma_power_cpu = jit(_gamma_power, inline=True)
_rmsprop_catch_up_cpu = jit(_rmsprop_catch_up, inline=True)


# --------------------------------------------------------------------------------------------
# Compile-time helpers: optional (None) state.
# --------------------------------------------------------------------------------------------


def _row(a, r):
    """Row ``r`` of ``a``, or ``None`` when ``a`` is ``None``."""


@overload(_row)
def _row_impl(a, r):
    if _is_none(a):
        return lambda a, r: None
    return lambda a, r: a[r]


def _as_rows(a):
    """A C-contiguous array as a 2-D (rows, elements per row) view (``None`` stays ``None``)."""


@overload(_as_rows, jit_options=dict(error_model="numpy"))
def _as_rows_impl(a):
    if _is_none(a):
        return lambda a: None
    if a.ndim == 2:
        return lambda a: a
    if a.ndim == 1:
        return lambda a: a.reshape((a.shape[0], 1))

    def impl(a):
        m = 1
        for d in a.shape[1:]:
            m *= d
        return a.reshape((a.shape[0], m))

    return impl


# --------------------------------------------------------------------------------------------
# Step 1: the entries in order of row.
# --------------------------------------------------------------------------------------------


@jit(inline=True)
def _row_order(rows, n):
    """Positions ``0..k-1`` ordered by ``rows[position]``, equal rows in input order.

    A least-significant-digit radix sort over the bits a row index below ``n`` can have, in
    as few passes of at most 11 bits as that takes (2 passes up to 4 million rows, 3 up to 8
    billion): each pass is stable, so the result is. No pass when the rows already increase.
    """
    k = rows.size
    order = np.empty(k, np.int64)
    for j in range(k):
        order[j] = j
    increasing = True
    for j in range(1, k):
        if rows[j] <= rows[j - 1]:
            increasing = False
            break
    bits = 0
    while ((n - 1) >> bits) > 0:
        bits += 1
    if increasing or bits == 0:
        return order
    passes = (bits + _RADIX_BITS - 1) // _RADIX_BITS
    width = (bits + passes - 1) // passes
    mask = (np.int64(1) << width) - 1
    other = np.empty(k, np.int64)
    counts = np.empty((1 << width) + 1, np.int64)
    for p in range(passes):
        shift = p * width
        for b in range(counts.size):
            counts[b] = 0
        for j in range(k):
            counts[((np.int64(rows[order[j]]) >> shift) & mask) + 1] += 1
        for b in range(counts.size - 1):
            counts[b + 1] += counts[b]
        for j in range(k):
            d = (np.int64(rows[order[j]]) >> shift) & mask
            other[counts[d]] = order[j]
            counts[d] += 1
        order, other = other, order
    return order


@jit(inline=True)
def _run_end(rows, order, lo, hi):
    """The first position after ``lo`` (and at most ``hi``) holding another row."""
    r = rows[order[lo]]
    e = lo + 1
    while e < hi and rows[order[e]] == r:
        e += 1
    return e


# --------------------------------------------------------------------------------------------
# Step 2: one run.
# --------------------------------------------------------------------------------------------


@jit
def _decay_row(s, gavg, f):
    """``s`` and ``gavg`` (one row each, ``gavg`` may be None) times ``f``, in place. (Not
    inlined: ``gavg is None`` must be decided on an argument's type.)"""
    for c in range(s.size):
        a = s.dtype.type(0) if gavg is None else gavg[c]
        sc, a = _rmsprop_catch_up_cpu(s[c], a, f)
        s[c] = sc
        if gavg is not None:
            gavg[c] = a


def _missed_factor(s, h, last_step, r, step):
    r"""Exact RMSProp: the decay :math:`\gamma^k` row ``r`` missed since it was last brought up
    to date (1 when it missed nothing), and ``step`` recorded for it; 1 when ``last_step`` is
    None (lazy RMSProp, AdaGrad; the checks refuse an exact step without ``step``). ``s``: a
    row of the state, for the dtype."""


@overload(_missed_factor, jit_options=dict(error_model="numpy"))
def _missed_factor_impl(s, h, last_step, r, step):
    if _is_none(last_step) or _is_none(step):
        return lambda s, h, last_step, r, step: s.dtype.type(1)

    def impl(s, h, last_step, r, step):
        missed = step - 1 - last_step[r]
        last_step[r] = step
        if missed > 0:
            return _gamma_power_cpu(h, s.dtype.type(missed))
        return s.dtype.type(1)

    return impl


@jit
def _update_row(x, g, s, buf, gavg, h, f):
    """One row's update, with ``s`` and ``gavg`` first brought forward by the factor ``f``
    (exact RMSProp's catch-up). ``f == 1`` (nothing to catch up) is the dense loop itself; else
    one pass does both, element by element: a separate catch-up pass would wait for the state's
    memory before the parameters'. (Two loops, not a test of ``f`` in one: LLVM vectorises a
    loop without the branch.)"""
    if f == s.dtype.type(1):
        _update_serial(x, g, s, buf, gavg, h)
        return
    for i in range(x.size):
        b = h.zero if buf is None else buf[i]
        si, a = _rmsprop_catch_up_cpu(s[i], h.zero if gavg is None else gavg[i], f)
        xi, si, b, a = _update_element(x[i], g[i], si, b, a, h, buf is not None, gavg is not None)
        x[i] = xi
        s[i] = si
        if buf is not None:
            buf[i] = b
        if gavg is not None:
            gavg[i] = a


@jit(inline=True)
def _sum_rows(scratch, g, order, lo, hi):
    """``scratch = g[order[lo]] + g[order[lo + 1]] + ...``, left to right; returns it."""
    first = g[order[lo]]
    for c in range(first.size):
        scratch[c] = first[c]
    for i in range(lo + 1, hi):
        gi = g[order[i]]
        for c in range(gi.size):
            scratch[c] += gi[c]
    return scratch


@jit(inline=True)
def _update_run(x, g, s, buf, gavg, h, rows, order, lo, hi, sequential, scratch, f):
    """Update the row of run ``order[lo:hi]`` (2-D ``x``, ``g``, state; ``scratch``: a row),
    its state first brought forward by ``f``."""
    r = np.int64(rows[order[lo]])
    xr, sr, br, ar = x[r], s[r], _row(buf, r), _row(gavg, r)
    i = lo
    while i < hi:  # one update per entry (sequential), or one of the summed entries
        if sequential or hi - lo == 1:
            gi = g[order[i]]
            i += 1
        else:
            gi = _sum_rows(scratch, g, order, lo, hi)
            i = hi
        _update_row(xr, gi, sr, br, ar, h, f)
        f = sr.dtype.type(1)  # caught up: the next entries of a sequential run are plain steps


@jit(inline=True)
def _update_runs(x, g, s, buf, gavg, last_step, step, h, rows, order, lo, hi, sequential):
    """Update the rows of the runs in ``order[lo:hi]`` (``lo`` and ``hi``: run starts). The
    catch-up factors of all of them come first, in a pass of their own: reading ``last_step``
    at scattered rows one after the other, rather than each just before its row's update,
    lets the processor fetch them all at once."""
    factors = np.empty(hi - lo, s.dtype)
    p = lo
    while p < hi:
        e = _run_end(rows, order, p, hi)
        factors[p - lo] = _missed_factor(s[0], h, last_step, np.int64(rows[order[p]]), step)
        p = e
    scratch = np.empty(x.shape[1], x.dtype)
    p = lo
    while p < hi:
        e = _run_end(rows, order, p, hi)
        _update_run(x, g, s, buf, gavg, h, rows, order, p, e, sequential, scratch,
                    factors[p - lo])
        p = e


# --------------------------------------------------------------------------------------------
# Step 3: every run, serially or shared among the threads.
# --------------------------------------------------------------------------------------------


@jit
def _rows_serial(x, rows, g, s, buf, gavg, last_step, step, h, sequential):
    """Apply a checked row-sparse step: ``x``, ``s``, ``buf``, ``gavg`` of shape (n, m), ``g``
    of shape (k, m), ``rows`` of shape (k,) with every entry in [0, n)."""
    k = rows.size
    if k == 0:
        return
    order = _row_order(rows, x.shape[0])
    _update_runs(x, g, s, buf, gavg, last_step, step, h, rows, order, np.int64(0), k,
                 sequential)


@jit(parallel=True)
def _rows_parallel(x, rows, g, s, buf, gavg, last_step, step, h, sequential):
    """:func:`_rows_serial`, the runs shared among Numba's threads (same results, bit for
    bit)."""
    k = rows.size
    if k == 0:
        return
    order = _row_order(rows, x.shape[0])
    m = x.shape[1]
    # Chunks of about _BLOCK elements, a multiple of the thread count of them (as the dense
    # loops), cut at equal numbers of entries and then moved forward to the next run start.
    threads = _iget_num_threads()
    count = max(1, (k * m + _BLOCK * threads - 1) // (_BLOCK * threads)) * threads
    count = min(count, k)
    bounds = np.empty(count + 1, np.int64)
    for c in range(count + 1):
        b = c * k // count
        while 0 < b < k and rows[order[b]] == rows[order[b - 1]]:
            b += 1
        bounds[c] = b
    for c in prange(count):
        _update_runs(x, g, s, buf, gavg, last_step, step, h, rows, order, bounds[c],
                     bounds[c + 1], sequential)


# --------------------------------------------------------------------------------------------
# Exact RMSProp: every row brought forward to a step (before its state is read).
# --------------------------------------------------------------------------------------------


@jit
def _catch_up_range(s, gavg, last_step, step, h, lo, hi):
    """Rows ``lo..hi-1`` of ``s`` (and ``gavg``) brought forward to ``step``. Rows that
    missed as many steps as the row before reuse its factor (one ``pow`` per distinct gap)."""
    prev, f = np.int64(-1), h.zero
    for r in range(lo, hi):
        missed = step - last_step[r]
        if missed > 0:
            if missed != prev:
                f = _gamma_power_cpu(h, s.dtype.type(missed))
                prev = missed
            _decay_row(s[r], _row(gavg, r), f)
            last_step[r] = step


@jit
def _catch_up_serial(s, gavg, last_step, step, h):
    """Every row of ``s`` (2-D) and ``gavg`` (or None) brought forward to ``step``."""
    _catch_up_range(s, gavg, last_step, step, h, np.int64(0), s.shape[0])


@jit(parallel=True)
def _catch_up_parallel(s, gavg, last_step, step, h):
    """:func:`_catch_up_serial`, blocks of rows shared among Numba's threads."""
    n, m = s.shape
    threads = _iget_num_threads()
    count = max(1, (n * m + _BLOCK * threads - 1) // (_BLOCK * threads)) * threads
    count = min(count, max(n, 1))
    for c in prange(count):
        _catch_up_range(s, gavg, last_step, step, h, c * n // count, (c + 1) * n // count)

"""The loops: every element of one flat array, or of many arrays found by address.

Nothing here checks arguments (``kernels.py`` and the optimizers do, before calling in) and
nothing here writes an update (``_math.py`` does). What is here is the access pattern:

* one array: :func:`_update_serial`, and :func:`_update_blocks`, the same over blocks shared
  among Numba's threads;
* many arrays (the optimizers): an int64 *address table* per dtype and group, cut into tasks of
  about equal size; :func:`_update_segments` walks them serially, :func:`_update_tasks` in
  parallel; and the optimizers' compiled entry points over them (``_rmsprop_group_*``,
  ``_adagrad_group_*``, :func:`_set_grad`, :func:`_first_nonfinite`).

Serial and parallel loops are separate functions all the way up to the entry points, so that a
program that only ever updates small arrays never compiles (nor loads) a parallel region: that
is most of a first call's compile time, and it keeps such a program fork-safe.
"""

from __future__ import annotations

import numpy as np
from numba import carray, config, prange, types
from numba.extending import intrinsic, overload
from numba.np.ufunc.parallel import _iget_num_threads

from . import _validation
from ._jit import jit
from ._math import (
    AdaGradHyper, _adagrad_hyper, _adagrad_update, _rmsprop_hyper, _rmsprop_update,
)

# Arrays of at least this many bytes take the parallel loops (public, and measured: see
# rmsprop_nb.kernels.PARALLEL_MIN_BYTES).
PARALLEL_MIN_BYTES = 1 << 17

# Elements per task of the parallel loops: large enough to amortise the task, small enough to
# balance two threads over the many-arrays case.
_BLOCK = 1 << 14

_rmsprop_update_cpu = jit(_rmsprop_update, inline=True)
_adagrad_update_cpu = jit(_adagrad_update, inline=True)


# --------------------------------------------------------------------------------------------
# Compile-time helpers: optional (None) state and any memory order.
# --------------------------------------------------------------------------------------------


def _is_none(t):
    return isinstance(t, (types.NoneType, types.Omitted))


def _flat(a):
    """A 1-D view of a contiguous array in memory order (``None`` stays ``None``)."""


@overload(_flat, jit_options=dict(error_model="numpy"))
def _flat_impl(a):
    if _is_none(a):
        return lambda a: None
    if a.ndim == 1:  # already flat (and no reshape to compile)
        return lambda a: a
    if a.layout == "F":  # the transpose of a Fortran array is a C array over the same memory
        return lambda a: a.T.reshape(a.size)
    return lambda a: a.reshape(a.size)


def _slice(a, lo, hi):
    """``a[lo:hi]``, or ``None`` when ``a`` is ``None``."""


@overload(_slice)
def _slice_impl(a, lo, hi):
    if _is_none(a):
        return lambda a, lo, hi: None
    return lambda a, lo, hi: a[lo:hi]


def _update_element(x, g, s, buf, gavg, h, use_momentum, centered):
    """Dispatch on the hyperparameter type: one generic loop serves both algorithms."""


@overload(_update_element, jit_options=dict(error_model="numpy"))
def _update_element_impl(x, g, s, buf, gavg, h, use_momentum, centered):
    if getattr(h, "instance_class", None) is AdaGradHyper:

        def adagrad(x, g, s, buf, gavg, h, use_momentum, centered):
            x, s = _adagrad_update_cpu(x, g, s, h)
            return x, s, buf, gavg

        return adagrad
    return lambda x, g, s, buf, gavg, h, use_momentum, centered: _rmsprop_update_cpu(
        x, g, s, buf, gavg, h, use_momentum, centered
    )


# --------------------------------------------------------------------------------------------
# One flat array (1-D, contiguous, already checked).
# --------------------------------------------------------------------------------------------


@jit
def _update_serial(x, g, s, buf, gavg, h):
    """Update every element in place, serially (LLVM vectorises this loop)."""
    for i in range(x.size):
        b = h.zero if buf is None else buf[i]
        a = h.zero if gavg is None else gavg[i]
        xi, si, b, a = _update_element(
            x[i], g[i], s[i], b, a, h, buf is not None, gavg is not None
        )
        x[i] = xi
        s[i] = si
        if buf is not None:
            buf[i] = b
        if gavg is not None:
            gavg[i] = a


@jit
def _update_into(x, g, s, buf, gavg, h, x_out, s_out, buf_out, gavg_out):
    """:func:`_update_serial` out of place: read ``x`` and the state, write the new values
    to the ``_out`` arrays (for Dask's tasks, which must not modify their inputs: one pass
    over memory instead of a copy and then an update)."""
    for i in range(x.size):
        b = h.zero if buf is None else buf[i]
        a = h.zero if gavg is None else gavg[i]
        xi, si, b, a = _update_element(
            x[i], g[i], s[i], b, a, h, buf is not None, gavg is not None
        )
        x_out[i] = xi
        s_out[i] = si
        if buf is not None:
            buf_out[i] = b
        if gavg is not None:
            gavg_out[i] = a


# The parallel loops hand each task *slices* of the arrays: an inner loop over
# range(lo, hi) of the full arrays is not vectorised inside a prange body (8x slower here).


@jit(parallel=True)
def _update_blocks(x, g, s, buf, gavg, h):
    """Update every element in place, blocks shared among Numba's threads."""
    n = x.size
    # prange gives each thread an equal count of blocks, so the blocks are made equal too (a
    # multiple of 16 elements each, about _BLOCK) and their count a multiple of the thread
    # count: with fixed _BLOCK-long blocks, 10^5 float32 made 7 blocks, 4 on one thread.
    # (numba.get_num_threads() would make this function uncacheable; this intrinsic, which
    # parfors use too, calls the threading layer by symbol name.)
    threads = _iget_num_threads()
    count = max(1, (n + _BLOCK * threads - 1) // (_BLOCK * threads)) * threads
    size = ((n + count - 1) // count + 15) // 16 * 16
    for k in prange(count):
        lo = min(k * size, n)
        hi = min(lo + size, n)
        _update_serial(
            x[lo:hi], g[lo:hi], s[lo:hi], _slice(buf, lo, hi), _slice(gavg, lo, hi), h
        )


# --------------------------------------------------------------------------------------------
# Many arrays (the optimizers). Each array is found by its address in an int64 table: the
# compiled code then depends on the dtype only, not on how many arrays there are (a tuple of
# N arrays in a signature is compiled anew for every N: 100 s for 200 arrays here).
# --------------------------------------------------------------------------------------------

# Rows of an optimizer's address table (one column per array, see address_table): where the
# parameters, gradients and state are, the sizes, and the group each array belongs to (its row
# of the hyperparameter matrix).
_PARAMS, _GRADS, _STATE, _BUFS, _AVGS, _SIZES, _GROUP = range(7)


@intrinsic
def _pointer(typingctx, address, like):
    """The integer ``address`` as a pointer to elements of ``like``'s dtype."""
    ptr = types.CPointer(like.dtype)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(ptr))

    return ptr(address, like), codegen


def _view(table, row, t, like):
    """Array ``t`` of ``row`` of an address table, 1-D, of ``like``'s dtype (``None`` when
    ``row`` is ``None``). The memory is owned elsewhere: by the optimizer (its parameters and
    state) or by the caller of the step (its gradients)."""


@overload(_view)
def _view_impl(table, row, t, like):
    if _is_none(row):
        return lambda table, row, t, like: None
    return lambda table, row, t, like: carray(
        _pointer(table[row, t], like), table[_SIZES, t]
    )


# The hyperparameters of each group are a row of a float64 matrix (flags as 0/1), turned into
# the update's namedtuple, in the arrays' dtype, once per run of segments of one group.


@jit
def _rmsprop_row(like, hyper, k, t):
    """RMSProp's hyperparameters from row ``k``: lr gamma eps eps_in_sqrt weight_decay
    maximize momentum (``t``, the step number, is not used)."""
    return _rmsprop_hyper(
        "RMSProp.step", like, hyper[k, 0], hyper[k, 1], hyper[k, 2], hyper[k, 3] != 0,
        hyper[k, 4], hyper[k, 5] != 0, hyper[k, 6],
    )


@jit
def _adagrad_row(like, hyper, k, t):
    """AdaGrad's hyperparameters from row ``k``: lr eps eps_in_sqrt weight_decay maximize
    lr_decay start (the optimizer's step count when the group was added: step ``t`` is the
    group's step ``t - start``)."""
    return _adagrad_hyper(
        "AdaGrad.step", like, hyper[k, 0], hyper[k, 1], hyper[k, 2] != 0, hyper[k, 3],
        hyper[k, 4] != 0, hyper[k, 5], t - np.int64(hyper[k, 6]),
    )


@jit(inline=True)
def _update_segment(table, bufs, avgs, segments, r, like, h):
    """Update segments[r] = (array index, start, stop); ``bufs``/``avgs``: the table rows of the
    momentum buffers and gradient averages, or ``None``. An array whose gradient address is 0
    has a row-sparse gradient this step (the optimizer steps it with the row kernels): skipped."""
    c, a, b = segments[r, 0], segments[r, 1], segments[r, 2]
    if table[_GRADS, c] == 0:
        return
    _update_serial(
        _view(table, _PARAMS, c, like)[a:b], _view(table, _GRADS, c, like)[a:b],
        _view(table, _STATE, c, like)[a:b], _slice(_view(table, bufs, c, like), a, b),
        _slice(_view(table, avgs, c, like), a, b), h,
    )


# Segments lo to hi, each with its group's hyperparameters, built once per run of segments of
# one group. One function per algorithm (their hyperparameters are different types), serial
# and parallel (a dispatcher passed down into a prange loop would make it uncacheable).


@jit(inline=True)
def _rmsprop_segments(table, bufs, avgs, segments, lo, hi, like, hyper):
    if lo >= hi:
        return
    k = table[_GROUP, segments[lo, 0]]
    h = _rmsprop_row(like, hyper, k, 0)
    for r in range(lo, hi):
        if table[_GROUP, segments[r, 0]] != k:
            k = table[_GROUP, segments[r, 0]]
            h = _rmsprop_row(like, hyper, k, 0)
        _update_segment(table, bufs, avgs, segments, r, like, h)


@jit(inline=True)
def _adagrad_segments(table, segments, lo, hi, like, hyper, t):
    if lo >= hi:
        return
    k = table[_GROUP, segments[lo, 0]]
    h = _adagrad_row(like, hyper, k, t)
    for r in range(lo, hi):
        if table[_GROUP, segments[r, 0]] != k:
            k = table[_GROUP, segments[r, 0]]
            h = _adagrad_row(like, hyper, k, t)
        _update_segment(table, None, None, segments, r, like, h)


# The parallel loops: task k (segments tasks[k] to tasks[k + 1]) holds about _BLOCK elements,
# and there is a multiple of the thread count of tasks (see task_table).


@jit(parallel=True)
def _rmsprop_tasks(table, bufs, avgs, segments, tasks, like, hyper):
    for k in prange(tasks.size - 1):
        _rmsprop_segments(table, bufs, avgs, segments, tasks[k], tasks[k + 1], like, hyper)


@jit(parallel=True)
def _adagrad_tasks(table, segments, tasks, like, hyper, t):
    for k in prange(tasks.size - 1):
        _adagrad_segments(table, segments, tasks[k], tasks[k + 1], like, hyper, t)


def address_table(params, state, bufs=None, avgs=None, groups=None):
    """The int64 table of an optimizer's arrays of one dtype: the addresses of the parameters,
    of their gradients (filled in by :func:`_set_grad` at every step), of their state arrays
    (zeros for ``None``), the sizes, and each array's group (0 when ``groups`` is None). The
    caller keeps the arrays alive as long as the table."""

    def row(arrays):
        if arrays is None:
            return [0] * len(params)
        return [a.__array_interface__["data"][0] for a in arrays]

    grads = [0] * len(params)
    rows = [row(params), grads, row(state), row(bufs), row(avgs), [p.size for p in params],
            [0] * len(params) if groups is None else list(groups)]
    return np.array(rows, np.int64).reshape(7, len(params))


def task_table(sizes, threads=config.NUMBA_NUM_THREADS):
    """Cut arrays of the given sizes into ``segments`` (rows: array index, start, stop) and
    group them into tasks of about _BLOCK elements, as many per thread: task k is segments
    ``tasks[k]`` to ``tasks[k + 1]``. Tiny arrays share a task; large ones span several."""
    total = int(sum(sizes))
    count = max(1, -(-total // (_BLOCK * threads))) * threads
    per = max(1, -(-total // count))
    segments, tasks, room = [], [0], per
    for t, n in enumerate(sizes):
        lo = 0
        while lo < n:
            take = min(n - lo, room)
            segments.append((t, lo, lo + take))
            lo += take
            room -= take
            if room == 0:
                tasks.append(len(segments))
                room = per
    if tasks[-1] != len(segments):
        tasks.append(len(segments))
    return np.array(segments, np.int64).reshape(-1, 3), np.array(tasks, np.int64)


@jit(inline=True)
def _overlaps_spans(a, spans):
    """True when ``a`` shares memory with a row of ``spans``: sorted, disjoint [start, end)
    byte ranges (the optimizer's parameters, see :func:`memory_spans`). O(log n)."""
    n = spans.shape[1]
    if a.size == 0 or n == 0:
        return False
    p = np.int64(a.ctypes.data)
    end = p + a.nbytes
    # The last range starting before a ends (a binary search: np.searchsorted would cost a
    # quarter of a second of compilation on first use).
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if spans[0, mid] < end:
            lo = mid + 1
        else:
            hi = mid
    return lo > 0 and spans[1, lo - 1] > p


def memory_spans(arrays):
    """The sorted [start, end) byte ranges of non-empty, disjoint contiguous arrays, as the
    2-row int64 table :func:`_overlaps_spans` searches."""
    rows = sorted((a.__array_interface__["data"][0], a.nbytes) for a in arrays if a.size)
    return np.array([[p for p, _ in rows], [p + n for p, n in rows]], dtype=np.int64).reshape(2, -1)


def _grad_type_check(fn):
    """Type check of :func:`_set_grad`: the gradient must match its parameter."""

    def check(table, t, g, p, spans):
        _validation.check_array(f"grads[{t}]", g, like=p, like_name=f"params[{t}]",
                                writeable=False)

    return check


@jit(type_check=_grad_type_check)
def _set_grad(table, t, g, p, spans):
    """Record where the gradient ``g`` of parameter ``p`` is: ``table[_GRADS, t]``. Returns 0, or
    1 when its shape differs from p's, 2 when it shares memory with any parameter (``spans``:
    all of the optimizer's), and then records nothing. The optimizer checks every gradient so
    before any update: a bad gradient changes nothing (a gradient aliasing a parameter would
    be read after that parameter was updated)."""
    if g.shape != p.shape:
        return 1
    if _overlaps_spans(g, spans):
        return 2
    table[_GRADS, t] = np.int64(g.ctypes.data)
    return 0


# --------------------------------------------------------------------------------------------
# The optimizers' steps over the arrays of one dtype (any number of groups): the serial or the
# parallel walk; the optimizer picks by size, and checks the hyperparameters in Python first.
# --------------------------------------------------------------------------------------------


@jit
def _rmsprop_group_serial(table, segments, tasks, like, bufs, avgs, hyper):
    """One RMSProp step over the arrays of an address table (the optimizer's hot path): the
    tables of :func:`address_table` and :func:`task_table`, ``like`` an array of their dtype,
    ``bufs``/``avgs`` the table rows of the momentum buffers and gradient averages, or None,
    ``hyper`` the groups' hyperparameters (see :func:`_rmsprop_row`)."""
    _rmsprop_segments(table, bufs, avgs, segments, 0, segments.shape[0], like, hyper)


@jit
def _rmsprop_group_parallel(table, segments, tasks, like, bufs, avgs, hyper):
    """:func:`_rmsprop_group_serial`, the tasks shared among Numba's threads."""
    _rmsprop_tasks(table, bufs, avgs, segments, tasks, like, hyper)


@jit
def _adagrad_group_serial(table, segments, tasks, like, hyper, t):
    """One AdaGrad step (the optimizer's step ``t``) over the arrays of an address table; as
    :func:`_rmsprop_group_serial` (see :func:`_adagrad_row`)."""
    _adagrad_segments(table, segments, 0, segments.shape[0], like, hyper, t)


@jit
def _adagrad_group_parallel(table, segments, tasks, like, hyper, t):
    """:func:`_adagrad_group_serial`, the tasks shared among Numba's threads."""
    _adagrad_tasks(table, segments, tasks, like, hyper, t)


# --------------------------------------------------------------------------------------------
# Packed chunks (rmsprop_nb.dask): a parameter and its state as the rows of one (rows, n)
# array; the new rows are written to another such array. Rows are -1 when a buffer is off.
# --------------------------------------------------------------------------------------------


@jit
def _rmsprop_packed(src, g, dst, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize,
                    momentum, buf_row, avg_row):
    h = _rmsprop_hyper("RMSProp.step", src, lr, gamma, eps, eps_in_sqrt, weight_decay,
                       maximize, momentum)
    if buf_row < 0 and avg_row < 0:
        _update_into(src[0], g, src[1], None, None, h, dst[0], dst[1], None, None)
    elif avg_row < 0:
        _update_into(src[0], g, src[1], src[buf_row], None, h, dst[0], dst[1], dst[buf_row],
                     None)
    elif buf_row < 0:
        _update_into(src[0], g, src[1], None, src[avg_row], h, dst[0], dst[1], None,
                     dst[avg_row])
    else:
        _update_into(src[0], g, src[1], src[buf_row], src[avg_row], h, dst[0], dst[1],
                     dst[buf_row], dst[avg_row])


@jit
def _adagrad_packed(src, g, dst, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay,
                    step):
    h = _adagrad_hyper("AdaGrad.step", src, lr, eps, eps_in_sqrt, weight_decay, maximize,
                       lr_decay, step)
    _update_into(src[0], g, src[1], None, None, h, dst[0], dst[1], None, None)


# --------------------------------------------------------------------------------------------
# The optimizers' nonfinite="raise"/"skip" policies: a read-only scan before any update.
# --------------------------------------------------------------------------------------------


@jit
def _count_nonfinite(g):
    """Number of NaN/inf elements of a flat array. v - v is NaN exactly for NaN and inf, and
    an integer count (unlike a float sum or an early exit) is a loop LLVM vectorises."""
    n = 0
    for i in range(g.size):
        d = g[i] - g[i]
        n += d != d
    return n


@jit
def _first_nonfinite_serial(table, segments, tasks, like, counts):
    """Index of the first gradient of an address table holding NaN or inf, else -1."""
    for t in range(counts.size):
        if table[_GRADS, t] != 0 and _count_nonfinite(_view(table, _GRADS, t, like)):
            return t  # (address 0: a row-sparse gradient, scanned by the optimizer)
    return -1


@jit(parallel=True)
def _count_nonfinite_tasks(table, segments, tasks, like, counts):
    """counts[t] += number of NaN/inf elements of gradient t, tasks spread over the threads.
    (The caller zeroes counts: here that would be a second parallel region.)"""
    for k in prange(tasks.size - 1):
        for r in range(tasks[k], tasks[k + 1]):
            t, lo, hi = segments[r, 0], segments[r, 1], segments[r, 2]
            if table[_GRADS, t] == 0:  # a row-sparse gradient: scanned by the optimizer
                continue
            c = _count_nonfinite(_view(table, _GRADS, t, like)[lo:hi])
            if c:
                counts[t] += c  # a race between blocks of one array only ever adds to a nonzero


@jit
def _first_nonfinite_parallel(table, segments, tasks, like, counts):
    """:func:`_first_nonfinite_serial`, the scan shared among Numba's threads; ``counts`` is
    an int64 work array (one per gradient)."""
    counts[:] = 0
    _count_nonfinite_tasks(table, segments, tasks, like, counts)
    for t in range(counts.size):
        if counts[t]:
            return t
    return -1

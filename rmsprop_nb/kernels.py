r"""Numba kernels: in-place AdaGrad and RMSProp updates over contiguous float arrays.

The per-element math of each algorithm is written once, as a plain scalar function
(:func:`_rmsprop_update`, :func:`_adagrad_update`). Numba compiles it here for the CPU and
``rmsprop_nb.cuda`` compiles the very same function for the GPU. Everything else in this module
is looping: a serial loop over one array, a parallel loop over blocks of one array, and
serial/parallel loops over many arrays at once (used by the optimizer classes).

The two public kernels, :func:`rmsprop_step` and :func:`adagrad_step`, can be called from Python
and from your own ``@numba.njit`` functions. They check their arguments, then pick the serial
loop for small arrays and the parallel one for large arrays.

Conventions kept throughout:

* arithmetic stays in the arrays' dtype: hyperparameters are cast to it once, before the loop,
  so a float32 update is computed in float32 (a Python float is float64 in Numba);
* the order of operations follows ``torch.optim``, so float32 results agree with PyTorch to a
  few ulp and float64 results to round-off;
* NaN and infinities propagate as in NumPy; nothing is clamped except ``s - gbar^2`` (centered
  RMSProp), which round-off could push below zero.
"""

from __future__ import annotations

import inspect
import math
from collections import namedtuple

import numpy as np
from numba import carray, config, prange, types
from numba.extending import intrinsic, overload
from numba.np.ufunc.parallel import _iget_num_threads

from . import _threads, _validation
from ._jit import jit

__all__ = ["rmsprop_step", "adagrad_step", "PARALLEL_MIN_BYTES"]

#: Arrays of at least this many bytes are updated by the parallel (``prange``) loop, smaller
#: ones by the serial loop: below it, waking the thread pool costs more than it saves.
#: Measured with ``benchmarks/run.py`` (its ``threshold`` suite) on a 2-core AMD EPYC: idle,
#: the parallel loop won from 48 KiB (float32) and 32 KiB (float64) up, by 1.2-1.5x at
#: 64-96 KiB; with other processes running, the crossover moved to 96-128 KiB.
PARALLEL_MIN_BYTES = 1 << 17

# Elements per task of the parallel loops: large enough to amortise the task, small enough to
# balance two threads over the many-arrays case.
_BLOCK = 1 << 14

# Hyperparameters, already cast to the arrays' dtype, travel together as one namedtuple.
# Derived constants (1 - gamma, eps split into an inside/outside part) are computed once per
# call in float64 and rounded once, as PyTorch does with its Python-float scalars.
RMSPropHyper = namedtuple(
    "RMSPropHyper",
    "lr gamma one_minus_gamma lerp_keep lerp_low eps_in eps_out weight_decay momentum "
    "maximize zero",
)
AdaGradHyper = namedtuple("AdaGradHyper", "lr eps_in eps_out weight_decay maximize zero")


# --------------------------------------------------------------------------------------------
# The math, once. Plain Python so that both the CPU and the CUDA target can compile it.
# --------------------------------------------------------------------------------------------


def _rmsprop_update(x, g, s, buf, gavg, h, use_momentum, centered):
    r"""One element of RMSProp; returns the new ``(x, s, buf, gavg)``.

    .. math:: s \leftarrow \gamma s + (1-\gamma) g^2,\quad
              x \leftarrow x - \eta\, g / (\sqrt{s + \epsilon_{in}} + \epsilon_{out})
    """
    if h.maximize:
        g = -g
    if h.weight_decay != h.zero:
        g = g + h.weight_decay * x
    s = h.gamma * s + h.one_minus_gamma * g * g
    v = s
    if centered:
        # gavg + (1 - gamma)(g - gavg), in torch.lerp's two-sided form (exact at both ends)
        if h.lerp_low:
            gavg = gavg + h.one_minus_gamma * (g - gavg)
        else:
            gavg = g - (g - gavg) * h.lerp_keep
        v = s - gavg * gavg
        if v < h.zero:  # round-off only (s >= gavg^2 in exact arithmetic); NaN passes through
            v = h.zero
    # One of eps_in/eps_out is zero, so this is sqrt(v + eps) or sqrt(v) + eps without a branch
    # (adding an exact zero changes nothing).
    d = math.sqrt(v + h.eps_in) + h.eps_out
    if use_momentum:
        buf = h.momentum * buf + g / d
        x = x - h.lr * buf
    else:
        x = x - h.lr * g / d
    return x, s, buf, gavg


def _adagrad_update(x, g, s, h):
    r"""One element of AdaGrad; returns the new ``(x, s)``.

    .. math:: s \leftarrow s + g^2,\quad
              x \leftarrow x - \eta_t\, g / (\sqrt{s + \epsilon_{in}} + \epsilon_{out})
    """
    if h.maximize:
        g = -g
    if h.weight_decay != h.zero:
        g = g + h.weight_decay * x
    s = s + g * g
    d = math.sqrt(s + h.eps_in) + h.eps_out
    x = x - h.lr * g / d
    return x, s


_rmsprop_update_cpu = jit(_rmsprop_update)
_adagrad_update_cpu = jit(_adagrad_update)


# --------------------------------------------------------------------------------------------
# Small compile-time helpers: optional (None) state and any memory order.
# --------------------------------------------------------------------------------------------


def _is_none(t):
    return isinstance(t, (types.NoneType, types.Omitted))


def _flat(a):
    """A 1-D view of a contiguous array in memory order (``None`` stays ``None``)."""


@overload(_flat, jit_options=dict(error_model="numpy"))
def _flat_impl(a):
    if _is_none(a):
        return lambda a: None
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


def _overlap(a, b):
    """True when two arrays share any byte of memory (``None`` shares nothing)."""


@overload(_overlap)
def _overlap_impl(a, b):
    if _is_none(a) or _is_none(b):
        return lambda a, b: False

    def impl(a, b):
        if a.size == 0 or b.size == 0:
            return False
        pa = a.ctypes.data
        pb = b.ctypes.data
        return pa < pb + b.nbytes and pb < pa + a.nbytes

    return impl


def _shape_differs(a, ref):
    """True when ``a`` is an array whose shape differs from ``ref``'s (``None`` never differs)."""


@overload(_shape_differs)
def _shape_differs_impl(a, ref):
    if _is_none(a):
        return lambda a, ref: False
    return lambda a, ref: a.shape != ref.shape


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
# Loops. All arrays here are flat (1-D, contiguous) and already checked.
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


@jit
def _update_flat(x, g, s, buf, gavg, h, parallel):
    """Serial below :data:`PARALLEL_MIN_BYTES` or when ``parallel`` is False, parallel above."""
    if parallel and x.nbytes >= PARALLEL_MIN_BYTES:
        _update_blocks(x, g, s, buf, gavg, h)
    else:
        _update_serial(x, g, s, buf, gavg, h)


# Many arrays at once (the optimizers). Each array is found by its address in an int64 table:
# the compiled code then depends on the dtype only, not on how many arrays there are (a tuple of
# N arrays in a signature is compiled anew for every N: 100 s for 200 arrays here).

# Rows of an optimizer group's address table (one column per array, see address_table).
_PARAMS, _GRADS, _STATE, _BUFS, _AVGS, _SIZES = range(6)


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


@jit
def _update_segment(table, bufs, avgs, segments, r, like, h):
    """Update segments[r] = (array index, start, stop); ``bufs``/``avgs``: the rows of the
    momentum buffers and gradient averages, or ``None``."""
    t, lo, hi = segments[r, 0], segments[r, 1], segments[r, 2]
    _update_serial(
        _view(table, _PARAMS, t, like)[lo:hi], _view(table, _GRADS, t, like)[lo:hi],
        _view(table, _STATE, t, like)[lo:hi], _slice(_view(table, bufs, t, like), lo, hi),
        _slice(_view(table, avgs, t, like), lo, hi), h,
    )


@jit(parallel=True)
def _update_tasks(table, bufs, avgs, segments, tasks, like, h):
    """Update every segment; task k (segments tasks[k] to tasks[k + 1]) holds about _BLOCK
    elements, and there is a multiple of the thread count of tasks (see :func:`task_table`)."""
    for k in prange(tasks.size - 1):
        for r in range(tasks[k], tasks[k + 1]):
            _update_segment(table, bufs, avgs, segments, r, like, h)


@jit
def _update_group(table, bufs, avgs, segments, tasks, like, h, parallel):
    """One step over the arrays of an address table; serially, or in parallel over the tasks."""
    if parallel:
        _update_tasks(table, bufs, avgs, segments, tasks, like, h)
    else:
        for r in range(segments.shape[0]):
            _update_segment(table, bufs, avgs, segments, r, like, h)


def address_table(params, state, bufs=None, avgs=None):
    """The int64 table of an optimizer group: the addresses of the parameters, of their
    gradients (filled in by :func:`_set_grad` at every step), of their state arrays (zeros for
    ``None``), and the sizes. The caller keeps the arrays alive as long as the table."""

    def row(arrays):
        if arrays is None:
            return [0] * len(params)
        return [a.__array_interface__["data"][0] for a in arrays]

    grads = [0] * len(params)
    rows = [row(params), grads, row(state), row(bufs), row(avgs), [p.size for p in params]]
    return np.array(rows, np.int64).reshape(6, len(params))


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


@jit
def _overlaps_spans(a, spans):
    """True when ``a`` shares memory with a row of ``spans``: sorted, disjoint [start, end)
    byte ranges (the optimizer's parameters, see :func:`memory_spans`). O(log n)."""
    if a.size == 0 or spans.shape[1] == 0:
        return False
    p = np.int64(a.ctypes.data)
    k = np.searchsorted(spans[0], p + a.nbytes) - 1  # the last range starting before a ends
    return k >= 0 and spans[1, k] > p


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


def _scalars_type_check(label, reals, flags, ints=()):
    """Type check of a group kernel's hyperparameters: an optimizer's attributes may be
    reassigned between steps (e.g. ``opt.lr = "0.1"``), and then reach a new specialization."""

    def factory(fn):
        order = list(inspect.signature(fn).parameters)
        return lambda *args: _validation.check_scalars(
            label, dict(zip(order, args)), reals, flags, ints
        )

    return factory


@jit(type_check=_scalars_type_check(
    "RMSProp", ("lr", "gamma", "eps", "weight_decay", "momentum"), ("eps_in_sqrt", "maximize")
))
def _rmsprop_group(
    table, segments, tasks, like, bufs, avgs, parallel,
    lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
):
    """One RMSProp step over the arrays of one dtype of an optimizer (its hot path): the
    tables of :func:`address_table` and :func:`task_table`, ``like`` an array of their dtype,
    ``bufs``/``avgs`` the table rows of the momentum buffers and gradient averages, or None."""
    h = _rmsprop_hyper(like, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum)
    if momentum != 0 and bufs is None:
        raise ValueError("RMSProp: momentum cannot be switched on after construction")
    _update_group(table, bufs, avgs, segments, tasks, like, h, parallel)


@jit(type_check=_scalars_type_check(
    "AdaGrad", ("lr", "eps", "weight_decay", "lr_decay"), ("eps_in_sqrt", "maximize"), ("step",)
))
def _adagrad_group(
    table, segments, tasks, like, parallel, lr, eps, eps_in_sqrt, weight_decay, maximize,
    lr_decay, step,
):
    """One AdaGrad step over the arrays of one dtype; as :func:`_rmsprop_group`."""
    h = _adagrad_hyper(like, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step)
    _update_group(table, None, None, segments, tasks, like, h, parallel)


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


@jit(parallel=True)
def _count_nonfinite_tasks(table, segments, tasks, like, counts):
    """counts[t] += number of NaN/inf elements of gradient t, tasks spread over the threads.
    (The caller zeroes counts: here that would be a second parallel region.)"""
    for k in prange(tasks.size - 1):
        for r in range(tasks[k], tasks[k + 1]):
            t, lo, hi = segments[r, 0], segments[r, 1], segments[r, 2]
            c = _count_nonfinite(_view(table, _GRADS, t, like)[lo:hi])
            if c:
                counts[t] += c  # a race between blocks of one array only ever adds to a nonzero


@jit
def _first_nonfinite(table, segments, tasks, like, counts, parallel):
    """Index of the first gradient of an address table holding NaN or inf, else -1; parallel
    over the tasks when ``parallel``, with ``counts`` an int64 work array (one per gradient)."""
    if parallel:
        counts[:] = 0
        _count_nonfinite_tasks(table, segments, tasks, like, counts)
        for t in range(counts.size):
            if counts[t]:
                return t
    else:
        for t in range(counts.size):
            if _count_nonfinite(_view(table, _GRADS, t, like)):
                return t
    return -1


# --------------------------------------------------------------------------------------------
# Hyperparameters: checked (ValueError) and cast to the dtype of x.
# --------------------------------------------------------------------------------------------


@jit
def _rmsprop_hyper(x, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum):
    if not (lr >= 0 and lr < math.inf):
        raise ValueError("rmsprop_step: lr must be a finite number >= 0")
    if not (gamma >= 0 and gamma < 1):
        raise ValueError("rmsprop_step: gamma must be in [0, 1)")
    if not (eps >= 0 and eps < math.inf):
        raise ValueError("rmsprop_step: eps must be a finite number >= 0")
    if not (weight_decay >= 0 and weight_decay < math.inf):
        raise ValueError("rmsprop_step: weight_decay must be a finite number >= 0")
    if not (momentum >= 0 and momentum < math.inf):
        raise ValueError("rmsprop_step: momentum must be a finite number >= 0")
    t = x.dtype.type
    w = t(1.0 - gamma)  # PyTorch rounds 1 - alpha (a Python float) once to the tensor dtype
    return RMSPropHyper(
        t(lr), t(gamma), w, t(1.0 - float(w)), float(w) < 0.5,
        t(eps) if eps_in_sqrt else t(0), t(0) if eps_in_sqrt else t(eps),
        t(weight_decay), t(momentum), bool(maximize), t(0),
    )


@jit
def _adagrad_hyper(x, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step):
    if not (lr >= 0 and lr < math.inf):
        raise ValueError("adagrad_step: lr must be a finite number >= 0")
    if not (eps >= 0 and eps < math.inf):
        raise ValueError("adagrad_step: eps must be a finite number >= 0")
    if not (weight_decay >= 0 and weight_decay < math.inf):
        raise ValueError("adagrad_step: weight_decay must be a finite number >= 0")
    if not (lr_decay >= 0 and lr_decay < math.inf):
        raise ValueError("adagrad_step: lr_decay must be a finite number >= 0")
    if step < 1:
        raise ValueError("adagrad_step: step must be >= 1 (the first step is 1)")
    t = x.dtype.type
    clr = lr / (1.0 + (step - 1) * lr_decay)  # in float64, then rounded once, as PyTorch
    return AdaGradHyper(
        t(clr), t(eps) if eps_in_sqrt else t(0), t(0) if eps_in_sqrt else t(eps),
        t(weight_decay), bool(maximize), t(0),
    )


# --------------------------------------------------------------------------------------------
# Public kernels.
# --------------------------------------------------------------------------------------------

_rmsprop_types = _validation.kernel_type_check(
    "rmsprop_step",
    dict(x="inout", g="in", s="inout", momentum_buffer="inout", grad_avg="inout"),
    reals=("lr", "gamma", "eps", "weight_decay", "momentum"),
    flags=("eps_in_sqrt", "maximize", "centered"),
)


def rmsprop_step(
    x, g, s, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
    momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None,
):
    r"""One RMSProp step, in place: update ``x`` and the state arrays from the gradient ``g``.

    Element-wise, with :math:`\epsilon` inside the root (``eps_in_sqrt=True``, the book,
    optax and Keras) or outside it (``eps_in_sqrt=False``, PyTorch):

    .. math::

        s &\leftarrow \gamma s + (1 - \gamma)\, g \odot g \\
        x &\leftarrow x - \eta\, \frac{g}{\sqrt{s + \epsilon}}
        \quad\text{or}\quad x - \eta\, \frac{g}{\sqrt{s} + \epsilon}

    Options, with the semantics of ``torch.optim.RMSprop``: ``maximize`` negates ``g``;
    ``weight_decay`` adds :math:`\lambda x` to ``g`` (coupled L2); ``grad_avg`` (with
    ``centered=True``) keeps :math:`\bar g \leftarrow \gamma \bar g + (1-\gamma) g` and uses
    :math:`\max(s - \bar g^2, 0)` in place of :math:`s`; ``momentum_buffer`` keeps
    :math:`b \leftarrow \mu b + g / \mathrm{denom}` and steps :math:`x \leftarrow x - \eta b`.
    The full rules are in :class:`rmsprop_nb.RMSProp`.

    Parameters
    ----------
    x : ndarray of float32 or float64
        Parameters, any shape, C- or Fortran-contiguous, writeable. Updated in place.
    g : ndarray
        Gradient: same shape, dtype and memory order as ``x``; only read.
    s : ndarray
        Running average of squared gradients (start at zeros); updated in place.
    lr : float
        Learning rate :math:`\eta \ge 0`.
    gamma : float
        Decay rate :math:`\gamma \in [0, 1)` (PyTorch's ``alpha``).
    eps : float
        :math:`\epsilon \ge 0`, added inside or outside the square root (see ``eps_in_sqrt``).
    eps_in_sqrt : bool, default True
        True: :math:`\sqrt{s + \epsilon}` (book, optax, Keras). False: :math:`\sqrt{s} +
        \epsilon` (PyTorch).
    weight_decay : float, default 0.0
        Coupled L2 penalty :math:`\lambda \ge 0`: ``g <- g + weight_decay * x``.
    maximize : bool, default False
        Ascend instead of descend (``g <- -g`` first).
    momentum : float, default 0.0
        Momentum :math:`\mu \ge 0`; a value > 0 needs ``momentum_buffer``.
    momentum_buffer : ndarray or None, default None
        Momentum state (start at zeros), same shape/dtype as ``x``; updated in place.
    centered : bool, default False
        Normalise by the variance estimate :math:`s - \bar g^2`; needs ``grad_avg``.
    grad_avg : ndarray or None, default None
        Running average of gradients :math:`\bar g` (start at zeros); updated in place.

    Returns
    -------
    None
        The arrays are updated in place; nothing is allocated.

    Raises
    ------
    TypeError
        Non-array arguments, a dtype other than float32/float64, or mixed dtypes.
    ValueError
        Different shapes or memory orders, non-contiguous or read-only arrays, arrays sharing
        memory, hyperparameters out of range, or option/state mismatch (``momentum > 0``
        without ``momentum_buffer``, ``centered`` without ``grad_avg`` or vice versa).
        Nothing is modified when an error is raised.

    Notes
    -----
    Arrays of at least :data:`PARALLEL_MIN_BYTES` bytes are updated by Numba's thread pool,
    smaller ones serially. Called from another jitted function the type checks happen at
    compile time, the value checks at run time.

    References
    ----------
    .. [1] T. Tieleman and G. Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for
       Machine Learning, 2012.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.6
       (PyTorch edition, "RMSProp"), https://d2l.ai.

    Examples
    --------
    >>> import numpy as np
    >>> from rmsprop_nb.kernels import rmsprop_step
    >>> x = np.array([-5.0, -2.0]); s = np.zeros(2)
    >>> g = np.array([0.2, 4.0]) * x          # gradient of 0.1 x1^2 + 2 x2^2
    >>> rmsprop_step(x, g, s, lr=0.4, gamma=0.9, eps=1e-6)
    >>> x.round(6)
    array([-3.735095, -0.735089])

    From your own compiled code:

    >>> import numba
    >>> @numba.njit
    ... def train(x, s, steps):
    ...     for _ in range(steps):
    ...         g = np.array([0.2, 4.0]) * x
    ...         rmsprop_step(x, g, s, 0.4, 0.9, 1e-6)
    >>> x = np.array([-5.0, -2.0]); s = np.zeros(2)
    >>> train(x, s, 20)
    >>> print(f"x1 {x[0]:f}, x2 {x[1]:f}")
    x1 -0.010599, x2 0.000000
    """
    # Numba's dispatcher takes a slow path when several defaulted arguments are omitted, so the
    # Python entry point passes every argument explicitly. _threads.PARALLEL is False in a
    # forked child of an OpenMP parent, which must not enter a parallel region.
    try:
        _rmsprop_step(
            x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
            momentum_buffer, centered, grad_avg, _threads.PARALLEL,
        )
    except OverflowError:  # Numba's unboxing of an int beyond the compiled int type
        raise ValueError("rmsprop_step: an integer argument is out of the 64-bit range") from None


@jit(type_check=_rmsprop_types)
def _rmsprop_step(
    x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum, momentum_buffer,
    centered, grad_avg, parallel,
):
    h = _rmsprop_hyper(x, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum)
    if g.shape != x.shape:
        raise ValueError("rmsprop_step: g must have the same shape as x")
    if s.shape != x.shape:
        raise ValueError("rmsprop_step: s must have the same shape as x")
    if _shape_differs(momentum_buffer, x):
        raise ValueError("rmsprop_step: momentum_buffer must have the same shape as x")
    if _shape_differs(grad_avg, x):
        raise ValueError("rmsprop_step: grad_avg must have the same shape as x")
    if momentum != 0 and momentum_buffer is None:
        raise ValueError("rmsprop_step: momentum > 0 needs a momentum_buffer array")
    if centered and grad_avg is None:
        raise ValueError("rmsprop_step: centered=True needs a grad_avg array")
    if grad_avg is not None and not centered:
        raise ValueError("rmsprop_step: grad_avg is given but centered is False")
    if _overlap(x, g) or _overlap(x, s) or _overlap(x, momentum_buffer) or _overlap(x, grad_avg):
        raise ValueError("rmsprop_step: x shares memory with g, s or another state array")
    if _overlap(s, g) or _overlap(s, momentum_buffer) or _overlap(s, grad_avg):
        raise ValueError("rmsprop_step: s shares memory with g or another state array")
    if _overlap(momentum_buffer, g) or _overlap(momentum_buffer, grad_avg):
        raise ValueError("rmsprop_step: momentum_buffer shares memory with g or grad_avg")
    if _overlap(grad_avg, g):
        raise ValueError("rmsprop_step: grad_avg shares memory with g")
    _update_flat(
        _flat(x), _flat(g), _flat(s), _flat(momentum_buffer), _flat(grad_avg), h, parallel
    )


_adagrad_types = _validation.kernel_type_check(
    "adagrad_step",
    dict(x="inout", g="in", s="inout"),
    reals=("lr", "eps", "weight_decay", "lr_decay"),
    flags=("eps_in_sqrt", "maximize"),
    ints=("step",),
)


def adagrad_step(
    x, g, s, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False, lr_decay=0.0, step=1,
):
    r"""One AdaGrad step, in place: update ``x`` and the accumulator ``s`` from ``g``.

    Element-wise, with :math:`\epsilon` inside the root (``eps_in_sqrt=True``, the book,
    optax and Keras) or outside it (``eps_in_sqrt=False``, PyTorch):

    .. math::

        s &\leftarrow s + g \odot g, \qquad \eta_t = \frac{\eta}{1 + (t - 1)\,\delta} \\
        x &\leftarrow x - \eta_t\, \frac{g}{\sqrt{s + \epsilon}}
        \quad\text{or}\quad x - \eta_t\, \frac{g}{\sqrt{s} + \epsilon}

    ``maximize`` and ``weight_decay`` act on ``g`` first, as in ``torch.optim.Adagrad``. The
    accumulator starts at ``initial_accumulator_value`` (0 in the book); this kernel takes
    ``s`` as it is. The full rules are in :class:`rmsprop_nb.AdaGrad`.

    Parameters
    ----------
    x : ndarray of float32 or float64
        Parameters, any shape, C- or Fortran-contiguous, writeable. Updated in place.
    g : ndarray
        Gradient: same shape, dtype and memory order as ``x``; only read.
    s : ndarray
        Sum of squared gradients; updated in place.
    lr : float
        Learning rate :math:`\eta \ge 0`.
    eps : float
        :math:`\epsilon \ge 0`, added inside or outside the square root (see ``eps_in_sqrt``).
    eps_in_sqrt : bool, default True
        True: :math:`\sqrt{s + \epsilon}` (book, optax, Keras). False: :math:`\sqrt{s} +
        \epsilon` (PyTorch).
    weight_decay : float, default 0.0
        Coupled L2 penalty :math:`\lambda \ge 0`: ``g <- g + weight_decay * x``.
    maximize : bool, default False
        Ascend instead of descend (``g <- -g`` first).
    lr_decay : float, default 0.0
        :math:`\delta \ge 0` in :math:`\eta_t = \eta / (1 + (t-1)\delta)`.
    step : int, default 1
        The step number :math:`t \ge 1` of this update (only used by ``lr_decay``).

    Returns
    -------
    None
        The arrays are updated in place; nothing is allocated.

    Raises
    ------
    TypeError
        Non-array arguments, a dtype other than float32/float64, or mixed dtypes.
    ValueError
        Different shapes or memory orders, non-contiguous or read-only arrays, arrays sharing
        memory, or hyperparameters out of range. Nothing is modified when an error is raised.

    References
    ----------
    .. [1] J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning
       and Stochastic Optimization", JMLR 12, 2011.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       (PyTorch edition, "AdaGrad"), https://d2l.ai.

    Examples
    --------
    >>> import numpy as np
    >>> from rmsprop_nb.kernels import adagrad_step
    >>> x = np.array([-5.0, -2.0]); s = np.zeros(2)
    >>> for _ in range(20):
    ...     adagrad_step(x, np.array([0.2, 4.0]) * x, s, lr=0.4, eps=1e-6)
    >>> print(f"x1 {x[0]:f}, x2 {x[1]:f}")
    x1 -2.382563, x2 -0.158591
    """
    try:
        _adagrad_step(
            x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step,
            _threads.PARALLEL,
        )
    except OverflowError:  # Numba's unboxing of an int beyond the compiled int type
        raise ValueError("adagrad_step: an integer argument is out of the 64-bit range") from None


@jit(type_check=_adagrad_types)
def _adagrad_step(
    x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step, parallel
):
    h = _adagrad_hyper(x, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step)
    if g.shape != x.shape:
        raise ValueError("adagrad_step: g must have the same shape as x")
    if s.shape != x.shape:
        raise ValueError("adagrad_step: s must have the same shape as x")
    if _overlap(x, g) or _overlap(x, s):
        raise ValueError("adagrad_step: x shares memory with g or s")
    if _overlap(s, g):
        raise ValueError("adagrad_step: s shares memory with g")
    _update_flat(_flat(x), _flat(g), _flat(s), None, None, h, parallel)


# The public kernels are Python functions (fast to call from Python); these overloads make the
# same names callable, with the same defaults, from a user's own @numba.njit code.


@overload(rmsprop_step, jit_options=dict(error_model="numpy"))
def _rmsprop_step_jit(
    x, g, s, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
    momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None,
):
    def impl(
        x, g, s, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
        momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None,
    ):
        _rmsprop_step(
            x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
            momentum_buffer, centered, grad_avg, True,
        )

    return impl


@overload(adagrad_step, jit_options=dict(error_model="numpy"))
def _adagrad_step_jit(
    x, g, s, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False, lr_decay=0.0, step=1,
):
    def impl(
        x, g, s, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False, lr_decay=0.0,
        step=1,
    ):
        _adagrad_step(
            x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step, True
        )

    return impl

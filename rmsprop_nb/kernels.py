r"""The public kernels: in-place AdaGrad and RMSProp updates of contiguous float arrays.

:func:`rmsprop_step` and :func:`adagrad_step` can be called from Python and from your own
``@numba.njit`` functions. This module is their thin face: it checks the arguments and picks a
loop. The per-element math is in ``_math.py`` (written once, also compiled for CUDA by
``rmsprop_nb.cuda``), the loops in ``_loops.py``.

Checks, and where they run:

* types (array or not, dtype, contiguity, writeable, memory order, number of dimensions;
  scalar types): in Python, when Numba meets new argument types (``_jit.py``), or when a user's
  ``@njit`` function that calls a kernel is compiled (the ``@overload`` below): the same
  ``TypeError``/``ValueError`` either way, before anything runs;
* values (shapes, overlapping memory, hyperparameter ranges, options without their state):
  compiled in, on every call, before the first element is touched.

Conventions kept throughout:

* arithmetic stays in the arrays' dtype: hyperparameters are cast to it once, before the loop,
  so a float32 update is computed in float32 (a Python float is float64 in Numba);
* the order of operations follows ``torch.optim``, so float32 results agree with PyTorch to a
  few ulp and float64 results to round-off;
* NaN and infinities propagate as in NumPy; nothing is clamped except ``s - gbar^2`` (centered
  RMSProp), which round-off could push below zero.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from . import _threads
from ._jit import jit
from . import _loops
from ._loops import _flat, _is_none, _update_blocks, _update_serial
from ._math import _adagrad_hyper, _rmsprop_hyper
from ._rows import _as_rows, _catch_up_parallel, _catch_up_serial, _rows_parallel, _rows_serial
from ._validation import (
    BadChoice, KernelArgs, OutOfRange, RowCount, RowOutOfRange, ShapeMismatch, StaleStep,
)

__all__ = [
    "rmsprop_step", "adagrad_step", "rmsprop_step_rows", "adagrad_step_rows", "rmsprop_catch_up",
    "PARALLEL_MIN_BYTES",
]

#: Arrays of at least this many bytes (131072, 128 KiB) are updated by the parallel
#: (``prange``) loop, smaller ones by the serial loop: below it, waking Numba's thread pool
#: costs more than it saves. The optimizers apply it to the bytes of all the arrays of one
#: dtype together. Measured with ``benchmarks/run.py`` (its ``threshold`` suite) on a 2-core
#: AMD EPYC: idle, the parallel loop won from 48 KiB (float32) and 32 KiB (float64) up, by
#: 1.2-1.5x at 64-96 KiB; with other processes running, the crossover moved to 96-128 KiB.
PARALLEL_MIN_BYTES = _loops.PARALLEL_MIN_BYTES


# --------------------------------------------------------------------------------------------
# Value checks, compiled in.
# --------------------------------------------------------------------------------------------


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


def _same_shape_as(where, name, a, ref_name, ref):
    """Raise :class:`ShapeMismatch` unless ``a`` (an array, or ``None``) has the shape of the
    array ``ref``, named ``ref_name`` in the message."""


@overload(_same_shape_as)
def _same_shape_as_impl(where, name, a, ref_name, ref):
    if _is_none(a):
        return lambda where, name, a, ref_name, ref: None

    def impl(where, name, a, ref_name, ref):
        if a.shape != ref.shape:
            raise ShapeMismatch(where, name, a.shape, ref_name, ref.shape)

    return impl


def _same_shape(where, name, a, x):
    """:func:`_same_shape_as` against ``x``."""


@overload(_same_shape)
def _same_shape_impl(where, name, a, x):
    return lambda where, name, a, x: _same_shape_as(where, name, a, "x", x)


@jit(inline=True)
def _rmsprop_checks(
    x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum, momentum_buffer,
    centered, grad_avg,
):
    """Every value check of :func:`rmsprop_step`; returns the hyperparameters."""
    where = "rmsprop_step"
    h = _rmsprop_hyper(where, x, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum)
    _same_shape(where, "g", g, x)
    _same_shape(where, "s", s, x)
    _same_shape(where, "momentum_buffer", momentum_buffer, x)
    _same_shape(where, "grad_avg", grad_avg, x)
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
    return h


@jit(inline=True)
def _adagrad_checks(x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step):
    """Every value check of :func:`adagrad_step`; returns the hyperparameters."""
    where = "adagrad_step"
    h = _adagrad_hyper(where, x, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step)
    _same_shape(where, "g", g, x)
    _same_shape(where, "s", s, x)
    if _overlap(x, g) or _overlap(x, s):
        raise ValueError("adagrad_step: x shares memory with g or s")
    if _overlap(s, g):
        raise ValueError("adagrad_step: s shares memory with g")
    return h


# --------------------------------------------------------------------------------------------
# Public kernels. Each has a serial and a parallel entry point (separate functions, so that
# small arrays never compile a parallel region) with the same type checks.
# --------------------------------------------------------------------------------------------

_RMSPROP_ARGS = KernelArgs(
    "rmsprop_step",
    dict(x="inout", g="in", s="inout", momentum_buffer="inout?", grad_avg="inout?"),
    reals=("lr", "gamma", "eps", "weight_decay", "momentum"),
    flags=("eps_in_sqrt", "maximize", "centered"),
)

_ADAGRAD_ARGS = KernelArgs(
    "adagrad_step",
    dict(x="inout", g="in", s="inout"),
    reals=("lr", "eps", "weight_decay", "lr_decay"),
    flags=("eps_in_sqrt", "maximize"),
    ints=("step",),
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
        Non-array arguments, a dtype other than float32/float64, mixed dtypes, or a
        hyperparameter or flag of the wrong type.
    ValueError
        Different shapes, numbers of dimensions or memory orders, non-contiguous or read-only
        arrays, arrays sharing memory, hyperparameters out of range, or option/state mismatch
        (``momentum > 0`` without ``momentum_buffer``, ``centered`` without ``grad_avg`` or
        vice versa). The message names the argument and says what was got. Nothing is
        modified when an error is raised.

    Notes
    -----
    Arrays of at least :data:`PARALLEL_MIN_BYTES` bytes are updated by Numba's thread pool,
    smaller ones serially. Called from your own ``@numba.njit`` function, the type checks run
    when that function is compiled (a wrong dtype, layout or argument type is the same
    ``TypeError``/``ValueError`` as from Python, and nothing runs), the value checks on every
    call.

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
    >>> # the gradient of 0.1 x1^2 + 2 x2^2
    >>> g = np.array([0.2, 4.0]) * x
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
    # Python entry point passes every argument explicitly.
    # (type(x) is np.ndarray first: cheaper than isinstance, the common case.)
    if ((type(x) is np.ndarray or isinstance(x, np.ndarray))
            and x.nbytes >= PARALLEL_MIN_BYTES and _threads.PARALLEL):
        kernel = _rmsprop_parallel
    else:
        kernel = _rmsprop_serial
    try:
        kernel(
            x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
            momentum_buffer, centered, grad_avg,
        )
    except OverflowError:  # Numba's unboxing of an int beyond the compiled int type
        raise ValueError("rmsprop_step: an integer argument is out of the 64-bit range") from None


@jit(type_check=_RMSPROP_ARGS.type_check)
def _rmsprop_serial(
    x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum, momentum_buffer,
    centered, grad_avg,
):
    h = _rmsprop_checks(
        x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
        momentum_buffer, centered, grad_avg,
    )
    _update_serial(
        _flat(x), _flat(g), _flat(s), _flat(momentum_buffer), _flat(grad_avg), h
    )


@jit(type_check=_RMSPROP_ARGS.type_check)
def _rmsprop_parallel(
    x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum, momentum_buffer,
    centered, grad_avg,
):
    h = _rmsprop_checks(
        x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
        momentum_buffer, centered, grad_avg,
    )
    _update_blocks(
        _flat(x), _flat(g), _flat(s), _flat(momentum_buffer), _flat(grad_avg), h
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
        Non-array arguments, a dtype other than float32/float64, mixed dtypes, or a
        hyperparameter or flag of the wrong type.
    ValueError
        Different shapes, numbers of dimensions or memory orders, non-contiguous or read-only
        arrays, arrays sharing memory, or hyperparameters out of range. The message names the
        argument and says what was got. Nothing is modified when an error is raised.

    Notes
    -----
    As for :func:`rmsprop_step`: serial below :data:`PARALLEL_MIN_BYTES`, parallel above;
    from ``@numba.njit`` code the type checks run at compile time.

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
    ...     g = np.array([0.2, 4.0]) * x
    ...     adagrad_step(x, g, s, lr=0.4, eps=1e-6)
    >>> print(f"x1 {x[0]:f}, x2 {x[1]:f}")
    x1 -2.382563, x2 -0.158591
    """
    if ((type(x) is np.ndarray or isinstance(x, np.ndarray))
            and x.nbytes >= PARALLEL_MIN_BYTES and _threads.PARALLEL):
        kernel = _adagrad_parallel
    else:
        kernel = _adagrad_serial
    try:
        kernel(x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step)
    except OverflowError:  # Numba's unboxing of an int beyond the compiled int type
        raise ValueError("adagrad_step: an integer argument is out of the 64-bit range") from None


@jit(type_check=_ADAGRAD_ARGS.type_check)
def _adagrad_serial(x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step):
    h = _adagrad_checks(x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step)
    _update_serial(_flat(x), _flat(g), _flat(s), None, None, h)


@jit(type_check=_ADAGRAD_ARGS.type_check)
def _adagrad_parallel(x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step):
    h = _adagrad_checks(x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step)
    _update_blocks(_flat(x), _flat(g), _flat(s), None, None, h)


# --------------------------------------------------------------------------------------------
# The same names from a user's @numba.njit code. The typing function below runs when that code
# is compiled: it applies the Python path's type checks to Numba's types (same messages), so a
# wrong dtype or layout fails the compilation instead of being converted silently. Scalars are
# passed on as float64/bool, so every call shares one compiled kernel per array type.
# --------------------------------------------------------------------------------------------


@overload(rmsprop_step, jit_options=dict(error_model="numpy"))
def _rmsprop_step_jit(
    x, g, s, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
    momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None,
):
    _RMSPROP_ARGS.check(dict(
        x=x, g=g, s=s, lr=lr, gamma=gamma, eps=eps, eps_in_sqrt=eps_in_sqrt,
        weight_decay=weight_decay, maximize=maximize, momentum=momentum,
        momentum_buffer=momentum_buffer, centered=centered, grad_avg=grad_avg,
    ))

    def impl(
        x, g, s, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
        momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None,
    ):
        args = (
            x, g, s, float(lr), float(gamma), float(eps), bool(eps_in_sqrt),
            float(weight_decay), bool(maximize), float(momentum), momentum_buffer,
            bool(centered), grad_avg,
        )
        if x.nbytes >= PARALLEL_MIN_BYTES and _threads.parallel_ok():
            _rmsprop_parallel(*args)
        else:
            _rmsprop_serial(*args)

    return impl


@overload(adagrad_step, jit_options=dict(error_model="numpy"))
def _adagrad_step_jit(
    x, g, s, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False, lr_decay=0.0, step=1,
):
    _ADAGRAD_ARGS.check(dict(
        x=x, g=g, s=s, lr=lr, eps=eps, eps_in_sqrt=eps_in_sqrt, weight_decay=weight_decay,
        maximize=maximize, lr_decay=lr_decay, step=step,
    ))

    def impl(
        x, g, s, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False, lr_decay=0.0,
        step=1,
    ):
        args = (
            x, g, s, float(lr), float(eps), bool(eps_in_sqrt), float(weight_decay),
            bool(maximize), float(lr_decay), np.int64(step),
        )
        if x.nbytes >= PARALLEL_MIN_BYTES and _threads.parallel_ok():
            _adagrad_parallel(*args)
        else:
            _adagrad_serial(*args)

    return impl


# --------------------------------------------------------------------------------------------
# Row-sparse kernels: the rows of a table that a sparse gradient names (embeddings). The loops
# are in _rows.py; here are their checks (types as above, values compiled in) and faces.
# --------------------------------------------------------------------------------------------

_DUPLICATES = ("sum", "sequential")
_DUPLICATES_TEXT = "'sum' or 'sequential'"

# The row kernels' messages, shared with rmsprop_nb.cuda (compiled code reads them as constants).
_ADAGRAD_ROWS_SHARING = "adagrad_step_rows: x, g, s and rows must not share memory"
_RMSPROP_ROWS_SHARING = "rmsprop_step_rows: x, g, s and rows must not share memory"
_MOVES_ABSENT_ROWS = (
    "changes rows that have no gradient (their gradient is weight_decay * x, not 0), which a "
    "step over the rows present cannot do; pass lazy=True to apply the weight decay to the "
    "rows present only"
)
_ADAGRAD_ROWS_WEIGHT_DECAY = "adagrad_step_rows: weight_decay > 0 " + _MOVES_ABSENT_ROWS
_RMSPROP_ROWS_WEIGHT_DECAY = "rmsprop_step_rows: weight_decay > 0 " + _MOVES_ABSENT_ROWS
_RMSPROP_ROWS_MOMENTUM = (
    "rmsprop_step_rows: momentum moves rows that have no gradient (their buffer keeps stepping "
    "them), which a step over the rows present cannot do; pass lazy=True to apply momentum to "
    "the rows present only"
)
_RMSPROP_ROWS_NEEDS_STEPS = (
    "rmsprop_step_rows: the exact mode (lazy=False) needs last_step (an int64 array, one entry "
    "per row of x, starting at zeros) and step (this step's number, the first is 1); or pass "
    "lazy=True"
)
_RMSPROP_ROWS_LAZY_STEPS = (
    "rmsprop_step_rows: last_step and step belong to the exact mode; with lazy=True leave them "
    "out"
)
_RMSPROP_ROWS_STATE_SHARING = (
    "rmsprop_step_rows: momentum_buffer or grad_avg shares memory with another array"
)
_RMSPROP_ROWS_STEPS_SHARING = (
    "rmsprop_step_rows: last_step or rows shares memory with another array"
)
_CATCH_UP_SHARING = "rmsprop_catch_up: s, grad_avg and last_step must not share memory"

_ADAGRAD_ROWS_ARGS = KernelArgs(
    "adagrad_step_rows",
    dict(x="inout", rows="index", g="in rows", s="inout"),
    reals=("lr", "eps", "weight_decay", "lr_decay"),
    flags=("eps_in_sqrt", "maximize", "lazy"),
    ints=("step",),
    row_major=True,
)

_RMSPROP_ROWS_ARGS = KernelArgs(
    "rmsprop_step_rows",
    dict(x="inout", rows="index", g="in rows", s="inout", momentum_buffer="inout?",
         grad_avg="inout?", last_step="steps?"),
    reals=("lr", "gamma", "eps", "weight_decay", "momentum"),
    flags=("eps_in_sqrt", "maximize", "centered", "lazy"),
    optional_ints=("step",),
    row_major=True,
)

_CATCH_UP_ARGS = KernelArgs(
    "rmsprop_catch_up",
    dict(s="inout", last_step="steps", grad_avg="inout?"),
    reals=("gamma",),
    ints=("step",),
    row_major=True,
)


def _use_parallel(a):
    """The parallel loops for an ndarray of at least PARALLEL_MIN_BYTES (``g`` of a row step,
    ``s`` of a catch-up: the bytes the step moves), when this process may run them."""
    return isinstance(a, np.ndarray) and a.nbytes >= PARALLEL_MIN_BYTES and _threads.PARALLEL


def _sequential(where, duplicates):
    """``duplicates`` checked; True for "sequential"."""
    if isinstance(duplicates, str) and duplicates in _DUPLICATES:
        return duplicates == "sequential"
    raise BadChoice(where, "duplicates", duplicates, _DUPLICATES_TEXT)


def _sequential_type(where, t):
    """:func:`_sequential` for the Numba type of ``duplicates`` (an ``@overload`` sees types):
    True/False when it is known at compile time, None when it is a run-time string."""
    if not isinstance(t, types.Type):  # an omitted argument: its default value
        return _sequential(where, t)
    if isinstance(t, types.Omitted):
        return _sequential(where, t.value)
    if isinstance(t, types.Literal):
        return _sequential(where, t.literal_value)
    if isinstance(t, types.UnicodeType):
        return None
    raise BadChoice(where, "duplicates", str(t), _DUPLICATES_TEXT)


@jit(inline=True)
def _rows_checks(where, x, rows, g, s):
    """The checks every row kernel shares: the shape of ``g`` and ``s``, every row index.
    Returns True when x, g, s or rows share memory (the caller raises: a message made by
    concatenating strings would cost half a second of compilation)."""
    n = x.shape[0]
    if g.shape[0] != rows.size or g.shape[1:] != x.shape[1:]:
        raise ShapeMismatch(where, "g", g.shape, "x[rows]", (rows.size,) + x.shape[1:])
    _same_shape(where, "s", s, x)
    for j in range(rows.size):
        if rows[j] < 0 or rows[j] >= n:
            raise RowOutOfRange(where, "rows", j, rows[j], n)
    return (_overlap(x, g) or _overlap(x, s) or _overlap(s, g) or _overlap(rows, x)
            or _overlap(rows, s))


def _exact_checks(where, rows, n, last_step, step):
    """Exact RMSProp: ``last_step`` has one entry per row, ``step >= 1``, and every row present
    was last brought up to date before ``step``."""


@overload(_exact_checks)
def _exact_checks_impl(where, rows, n, last_step, step):
    if _is_none(last_step) or _is_none(step):

        def missing(where, rows, n, last_step, step):
            raise ValueError(_RMSPROP_ROWS_NEEDS_STEPS)

        return missing

    def impl(where, rows, n, last_step, step):
        if last_step.shape[0] != n:
            raise RowCount(where, "last_step", last_step.shape, "x", n)
        if step < 1:
            raise OutOfRange(where, "step", step, ">= 1 (the first step is 1)")
        for j in range(rows.size):
            r = rows[j]
            if last_step[r] >= step:
                raise StaleStep(where, r, last_step[r], step, True)

    return impl


@jit(inline=True)
def _adagrad_rows_checks(x, rows, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay,
                         step, lazy):
    """Every value check of :func:`adagrad_step_rows`; returns the hyperparameters."""
    where = "adagrad_step_rows"
    h = _adagrad_hyper(where, x, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step)
    if _rows_checks(where, x, rows, g, s):
        raise ValueError(_ADAGRAD_ROWS_SHARING)
    if weight_decay != 0 and not lazy:
        raise ValueError(_ADAGRAD_ROWS_WEIGHT_DECAY)
    return h


@jit(inline=True)
def _rmsprop_rows_checks(
    x, rows, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
    momentum_buffer, centered, grad_avg, last_step, step, lazy,
):
    """Every value check of :func:`rmsprop_step_rows`; returns the hyperparameters."""
    where = "rmsprop_step_rows"
    h = _rmsprop_hyper(where, x, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum)
    if _rows_checks(where, x, rows, g, s):
        raise ValueError(_RMSPROP_ROWS_SHARING)
    _same_shape(where, "momentum_buffer", momentum_buffer, x)
    _same_shape(where, "grad_avg", grad_avg, x)
    if centered and grad_avg is None:
        raise ValueError("rmsprop_step_rows: centered=True needs a grad_avg array")
    if grad_avg is not None and not centered:
        raise ValueError("rmsprop_step_rows: grad_avg is given but centered is False")
    if lazy:
        if momentum != 0 and momentum_buffer is None:
            raise ValueError("rmsprop_step_rows: momentum > 0 needs a momentum_buffer array")
        if last_step is not None or step is not None:
            raise ValueError(_RMSPROP_ROWS_LAZY_STEPS)
    else:
        if momentum != 0 or momentum_buffer is not None:
            raise ValueError(_RMSPROP_ROWS_MOMENTUM)
        if weight_decay != 0:
            raise ValueError(_RMSPROP_ROWS_WEIGHT_DECAY)
        _exact_checks(where, rows, x.shape[0], last_step, step)
    if (_overlap(x, momentum_buffer) or _overlap(x, grad_avg) or _overlap(s, momentum_buffer)
            or _overlap(s, grad_avg) or _overlap(momentum_buffer, grad_avg)
            or _overlap(g, momentum_buffer) or _overlap(g, grad_avg)):
        raise ValueError(_RMSPROP_ROWS_STATE_SHARING)
    if (_overlap(last_step, rows) or _overlap(last_step, x) or _overlap(last_step, g)
            or _overlap(last_step, s) or _overlap(rows, momentum_buffer)
            or _overlap(rows, grad_avg)):
        raise ValueError(_RMSPROP_ROWS_STEPS_SHARING)
    return h


def adagrad_step_rows(
    x, rows, g, s, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False, lr_decay=0.0,
    step=1, *, lazy=False, duplicates="sum",
):
    r"""One AdaGrad step on the rows of ``x`` that a sparse gradient names, in place.

    ``g[j]`` is the gradient of row ``rows[j]`` of ``x``; every other row has a zero gradient.
    With ``duplicates="sum"`` (the default) the entries of a row are summed first,
    :math:`G_r = \sum_{j:\, \mathrm{rows}_j = r} g_j`, and each row present is updated once:

    .. math::

        s_r &\leftarrow s_r + G_r \odot G_r, \qquad \eta_t = \frac{\eta}{1 + (t - 1)\,\delta} \\
        x_r &\leftarrow x_r - \eta_t\, \frac{G_r}{\sqrt{s_r + \epsilon}}
        \quad\text{or}\quad x_r - \eta_t\, \frac{G_r}{\sqrt{s_r} + \epsilon}

    This is exactly :func:`adagrad_step` with the dense gradient (:math:`G_r` on the rows
    present, zeros elsewhere), since a zero gradient changes neither :math:`s` nor :math:`x`,
    at the cost of the rows present. With ``duplicates="sequential"`` every entry is applied in
    turn, in the order of ``rows``, as its own update of its row (a different algorithm, that of
    per-example streams such as GloVe's training loop).

    Parameters
    ----------
    x : ndarray of float32 or float64, shape (n, ...)
        The table: its first axis indexes the rows; C-contiguous, writeable. Updated in place
        (the rows present only).
    rows : ndarray of int, shape (k,)
        Row indices in ``[0, n)``, any integer dtype, in any order, repeats allowed; only read.
        Negative indices are refused, not wrapped.
    g : ndarray, shape (k, ...)
        ``g[j]`` is the gradient of row ``rows[j]``: the shape of ``x[rows]``, the dtype of
        ``x``, C-contiguous; only read.
    s : ndarray, shape (n, ...)
        Sum of squared gradients, like ``x``; updated in place (the rows present only).
    lr : float
        Learning rate :math:`\eta \ge 0`.
    eps : float
        :math:`\epsilon \ge 0`, added inside or outside the square root (see ``eps_in_sqrt``).
    eps_in_sqrt : bool, default True
        True: :math:`\sqrt{s + \epsilon}` (book, optax, Keras). False: :math:`\sqrt{s} +
        \epsilon` (PyTorch).
    weight_decay : float, default 0.0
        Coupled L2 penalty :math:`\lambda \ge 0`, ``g <- g + weight_decay * x``. It makes the
        gradient of a row with no entry nonzero, so it needs ``lazy=True``.
    maximize : bool, default False
        Ascend instead of descend (``g <- -g`` first).
    lr_decay : float, default 0.0
        :math:`\delta \ge 0` in :math:`\eta_t = \eta / (1 + (t-1)\delta)`.
    step : int, default 1
        The step number :math:`t \ge 1` of this update (only used by ``lr_decay``).
    lazy : bool, default False, keyword-only
        True: ``weight_decay`` acts on the rows present only (TensorFlow's and MXNet's lazy
        updates); nothing else changes for AdaGrad.
    duplicates : {"sum", "sequential"}, default "sum", keyword-only
        How repeated row indices combine: summed into one gradient per row first (PyTorch's
        ``coalesce``, TensorFlow's ``IndexedSlices``), or applied one after another in order.

    Returns
    -------
    None
        The arrays are updated in place.

    Raises
    ------
    TypeError
        Non-array arguments, a float dtype other than float32/float64, mixed dtypes, ``rows``
        not of an integer dtype, or a hyperparameter or flag of the wrong type.
    ValueError
        A row index out of range (the message gives its position and value), ``g`` not of the
        shape of ``x[rows]``, ``s`` not of the shape of ``x``, non-contiguous, Fortran-ordered
        (2-D and up) or read-only arrays, arrays sharing memory, hyperparameters out of range,
        ``weight_decay > 0`` without ``lazy=True``, or ``duplicates`` not "sum" or
        "sequential". The message names the argument and says what was got. Every check runs
        before the first row is touched: nothing is modified when an error is raised.

    See Also
    --------
    adagrad_step : the dense step.
    rmsprop_step_rows : RMSProp on rows, with its exact and lazy modes.
    rmsprop_nb.SparseGrad : a row-sparse gradient for the optimizers.

    Notes
    -----
    Cost: the rows present (their bytes in ``x``, ``s`` and ``g``) plus sorting the k row
    indices (a radix sort; skipped when they increase): the table's size :math:`n` does not
    count. The entries are grouped by row, equal rows in input order, so sums are formed in
    the order of ``rows`` and every row is written once: with ``g`` of at least
    :data:`PARALLEL_MIN_BYTES` bytes the rows are shared among Numba's threads, with the same
    results, bit for bit, as the serial loop. Called from your own ``@numba.njit`` function,
    the type checks run when it is compiled, as for :func:`adagrad_step`.

    References
    ----------
    .. [1] J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning
       and Stochastic Optimization", JMLR 12, 2011 (AdaGrad, made for sparse features).
    .. [2] J. Pennington, R. Socher and C. D. Manning, "GloVe: Global Vectors for Word
       Representation", EMNLP 2014 (trained with AdaGrad, one co-occurrence at a time).

    Examples
    --------
    Row 2 appears twice: its two gradients are summed, then it is updated once.

    >>> import numpy as np
    >>> from rmsprop_nb.kernels import adagrad_step_rows
    >>> x = np.ones((4, 2)); s = np.zeros((4, 2))
    >>> rows = np.array([2, 0, 2])
    >>> g = np.array([[1.0, 2.0], [3.0, -4.0], [1.0, -1.0]])
    >>> adagrad_step_rows(x, rows, g, s, lr=0.1, eps=1e-10,
    ...                   eps_in_sqrt=False)
    >>> s
    array([[ 9., 16.],
           [ 0.,  0.],
           [ 4.,  1.],
           [ 0.,  0.]])
    >>> x
    array([[0.9, 1.1],
           [1. , 1. ],
           [0.9, 0.9],
           [1. , 1. ]])

    The same gradients one after another:

    >>> x = np.ones((4, 2)); s = np.zeros((4, 2))
    >>> adagrad_step_rows(x, rows, g, s, lr=0.1, eps=1e-10,
    ...                   eps_in_sqrt=False,
    ...                   duplicates="sequential")
    >>> s[2]
    array([2., 5.])
    """
    sequential = _sequential("adagrad_step_rows", duplicates)
    kernel = _adagrad_rows_parallel if _use_parallel(g) else _adagrad_rows_serial
    try:
        kernel(x, rows, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step, lazy,
               sequential)
    except OverflowError:
        raise ValueError(
            "adagrad_step_rows: an integer argument is out of the 64-bit range"
        ) from None


@jit(type_check=_ADAGRAD_ROWS_ARGS.type_check)
def _adagrad_rows_serial(x, rows, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay,
                         step, lazy, sequential):
    h = _adagrad_rows_checks(x, rows, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize,
                             lr_decay, step, lazy)
    _rows_serial(_as_rows(x), rows, _as_rows(g), _as_rows(s), None, None, None, None, h,
                 sequential)


@jit(type_check=_ADAGRAD_ROWS_ARGS.type_check)
def _adagrad_rows_parallel(x, rows, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize,
                           lr_decay, step, lazy, sequential):
    h = _adagrad_rows_checks(x, rows, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize,
                             lr_decay, step, lazy)
    _rows_parallel(_as_rows(x), rows, _as_rows(g), _as_rows(s), None, None, None, None, h,
                   sequential)


def rmsprop_step_rows(
    x, rows, g, s, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
    momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None, *, last_step=None,
    step=None, lazy=False, duplicates="sum",
):
    r"""One RMSProp step on the rows of ``x`` that a sparse gradient names, in place.

    ``g[j]`` is the gradient of row ``rows[j]`` of ``x``; every other row has a zero gradient.
    The entries of a row are summed first (``duplicates="sum"``),
    :math:`G_r = \sum_{j:\, \mathrm{rows}_j = r} g_j`, and each row present is updated once.
    Two modes say what happens to the rows that are not present.

    **Exact** (``lazy=False``, the default): the result is :func:`rmsprop_step` with the dense
    gradient (zeros on the absent rows). A zero gradient leaves :math:`x` in place but decays
    :math:`s` (and :math:`\bar g`) by :math:`\gamma`, so the kernel keeps, per row, the step at
    which it was last brought up to date, :math:`\tau_r` (``last_step``), and applies the
    decays a row missed when it is next present, at step :math:`t` (``step``):

    .. math::

        s_r &\leftarrow \gamma^{\,t - 1 - \tau_r}\, s_r, \qquad
        \bar g_r \leftarrow \gamma^{\,t - 1 - \tau_r}\, \bar g_r, \qquad
        \tau_r \leftarrow t \\
        s_r &\leftarrow \gamma s_r + (1 - \gamma)\, G_r \odot G_r \\
        x_r &\leftarrow x_r - \eta\, \frac{G_r}{\sqrt{s_r + \epsilon}}
        \quad\text{or}\quad x_r - \eta\, \frac{G_r}{\sqrt{s_r} + \epsilon}

    The absent rows' :math:`s` is therefore behind until :func:`rmsprop_catch_up` brings every
    row up to date (before you read the state: to save it, or before a dense step). Momentum
    and weight decay move absent rows at every step, so the exact mode refuses them.

    **Lazy** (``lazy=True``): only the rows present decay and update (TensorFlow's
    ``SparseApplyRMSProp``, MXNet's lazy update); the absent rows' state stays as it is.
    ``momentum`` and ``weight_decay`` then act on the rows present only. No ``last_step``.

    ``maximize``, ``weight_decay``, ``momentum_buffer`` and ``centered``/``grad_avg`` act as in
    :func:`rmsprop_step`, row by row.

    Parameters
    ----------
    x : ndarray of float32 or float64, shape (n, ...)
        The table: its first axis indexes the rows; C-contiguous, writeable. Updated in place.
    rows : ndarray of int, shape (k,)
        Row indices in ``[0, n)``, any integer dtype, in any order, repeats allowed; only read.
        Negative indices are refused, not wrapped.
    g : ndarray, shape (k, ...)
        ``g[j]`` is the gradient of row ``rows[j]``: the shape of ``x[rows]``, the dtype of
        ``x``, C-contiguous; only read.
    s : ndarray, shape (n, ...)
        Running average of squared gradients (start at zeros), like ``x``; updated in place.
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
        Coupled L2 penalty :math:`\lambda \ge 0` (lazy mode only).
    maximize : bool, default False
        Ascend instead of descend (``g <- -g`` first).
    momentum : float, default 0.0
        Momentum :math:`\mu \ge 0` (lazy mode only); a value > 0 needs ``momentum_buffer``.
    momentum_buffer : ndarray or None, default None
        Momentum state (start at zeros), like ``x``; updated in place (lazy mode only).
    centered : bool, default False
        Normalise by the variance estimate :math:`s - \bar g^2`; needs ``grad_avg``.
    grad_avg : ndarray or None, default None
        Running average of gradients :math:`\bar g` (start at zeros), like ``x``; updated in
        place (in the exact mode it decays with :math:`s`).
    last_step : ndarray of int64, shape (n,), keyword-only
        Exact mode: for each row, the step as of which its state is up to date (start at
        zeros); updated in place (the rows present are set to ``step``).
    step : int, keyword-only
        Exact mode: this step's number :math:`t`, counting from 1, one number per step. Every
        row present must have ``last_step[row] < step``.
    lazy : bool, default False, keyword-only
        Choose the lazy mode.
    duplicates : {"sum", "sequential"}, default "sum", keyword-only
        How repeated row indices combine: summed into one gradient per row first (PyTorch's
        ``coalesce``, TensorFlow's ``IndexedSlices``), or applied one after another in input
        order, each as its own update of its row (a different algorithm; in the exact mode
        the row catches up once, before its first entry).

    Returns
    -------
    None
        The arrays are updated in place.

    Raises
    ------
    TypeError
        Non-array arguments, a float dtype other than float32/float64, mixed dtypes, ``rows``
        not of an integer dtype, ``last_step`` not int64, or a hyperparameter or flag of the
        wrong type.
    ValueError
        A row index out of range, ``g`` not of the shape of ``x[rows]``, state not of the shape
        of ``x``, ``last_step`` not of shape ``(n,)``, a row present with ``last_step[row] >=
        step``, non-contiguous, Fortran-ordered (2-D and up) or read-only arrays, arrays
        sharing memory, hyperparameters out of range, option/state mismatch, the exact mode
        without ``last_step``/``step`` or with momentum or weight decay (the message points to
        ``lazy=True``), the lazy mode with ``last_step``/``step``, or ``duplicates`` not "sum"
        or "sequential". The message names the argument and says what was got. Every check
        runs before the first row is touched: nothing is modified when an error is raised.

    See Also
    --------
    rmsprop_catch_up : bring every row of the exact mode up to date.
    rmsprop_step : the dense step.
    adagrad_step_rows : AdaGrad on rows.

    Notes
    -----
    The factor :math:`\gamma^{k}` is computed once per row, in the arrays' dtype, with one
    ``pow`` (:math:`k` exact up to :math:`2^{24}` missed steps in float32): one rounding where
    the dense kernel rounds :math:`k` times. The exact mode therefore agrees with the dense
    kernel to round-off (about :math:`10^{-16}` relative per step in float64, a fraction of
    an ulp per step in float32), and bit for bit on rows present at every step. It costs, per
    row present, a read and a write of ``last_step[row]`` and, when the row missed steps, one
    ``pow`` and a pass over its state.

    Cost and order otherwise as in :func:`adagrad_step_rows`: the rows present and a sort of
    their indices, never the whole table; sums in the order of ``rows``; the parallel loop
    (for ``g`` of at least :data:`PARALLEL_MIN_BYTES` bytes) gives the same bits as the serial
    one.

    References
    ----------
    .. [1] T. Tieleman and G. Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for
       Machine Learning, 2012.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.6
       (PyTorch edition, "RMSProp"), https://d2l.ai.

    Examples
    --------
    Three steps on a 3-row table, each touching one row, give what three dense steps give once
    :func:`rmsprop_catch_up` has brought the absent rows up to date:

    >>> import numpy as np
    >>> from rmsprop_nb.kernels import (
    ...     rmsprop_catch_up, rmsprop_step, rmsprop_step_rows)
    >>> x = np.ones((3, 2)); s = np.zeros((3, 2))
    >>> last = np.zeros(3, np.int64)
    >>> xd = x.copy(); sd = s.copy()
    >>> for t, row in enumerate([0, 1, 0], start=1):
    ...     g = np.full((1, 2), 0.5)
    ...     rmsprop_step_rows(x, np.array([row]), g, s, 0.01, 0.9,
    ...                       1e-6, last_step=last, step=t)
    ...     gd = np.zeros((3, 2)); gd[row] = g[0]
    ...     rmsprop_step(xd, gd, sd, 0.01, 0.9, 1e-6)
    >>> last
    array([3, 2, 0])
    >>> rmsprop_catch_up(s, last, 3, 0.9)
    >>> np.allclose(s, sd, rtol=1e-15, atol=0)
    True
    >>> np.array_equal(x, xd)
    True
    >>> s[:, 0]
    array([0.04525, 0.0225 , 0.     ])

    The lazy mode leaves the absent rows alone, and may keep momentum:

    >>> buf = np.zeros((3, 2))
    >>> rmsprop_step_rows(x, np.array([2]), g, s, 0.01, 0.9, 1e-6,
    ...                   momentum=0.9, momentum_buffer=buf,
    ...                   lazy=True)
    >>> s[:, 0]                      # rows 0 and 1 did not decay
    array([0.04525, 0.0225 , 0.025  ])
    >>> buf[:, 0].round(3)
    array([0.   , 0.   , 3.162])
    """
    sequential = _sequential("rmsprop_step_rows", duplicates)
    kernel = _rmsprop_rows_parallel if _use_parallel(g) else _rmsprop_rows_serial
    try:
        kernel(
            x, rows, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
            momentum_buffer, centered, grad_avg, last_step, step, lazy, sequential,
        )
    except OverflowError:
        raise ValueError(
            "rmsprop_step_rows: an integer argument is out of the 64-bit range"
        ) from None


@jit(type_check=_RMSPROP_ROWS_ARGS.type_check)
def _rmsprop_rows_serial(
    x, rows, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
    momentum_buffer, centered, grad_avg, last_step, step, lazy, sequential,
):
    h = _rmsprop_rows_checks(
        x, rows, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
        momentum_buffer, centered, grad_avg, last_step, step, lazy,
    )
    _rows_serial(_as_rows(x), rows, _as_rows(g), _as_rows(s), _as_rows(momentum_buffer),
                 _as_rows(grad_avg), last_step, step, h, sequential)


@jit(type_check=_RMSPROP_ROWS_ARGS.type_check)
def _rmsprop_rows_parallel(
    x, rows, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
    momentum_buffer, centered, grad_avg, last_step, step, lazy, sequential,
):
    h = _rmsprop_rows_checks(
        x, rows, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
        momentum_buffer, centered, grad_avg, last_step, step, lazy,
    )
    _rows_parallel(_as_rows(x), rows, _as_rows(g), _as_rows(s), _as_rows(momentum_buffer),
                   _as_rows(grad_avg), last_step, step, h, sequential)


@jit(inline=True)
def _catch_up_checks(s, last_step, step, gamma, grad_avg):
    """Every value check of :func:`rmsprop_catch_up`; returns the hyperparameters."""
    where = "rmsprop_catch_up"
    h = _rmsprop_hyper(where, s, 0.0, gamma, 0.0, True, 0.0, False, 0.0)
    n = s.shape[0]
    if last_step.shape[0] != n:
        raise RowCount(where, "last_step", last_step.shape, "s", n)
    _same_shape_as(where, "grad_avg", grad_avg, "s", s)
    if step < 0:
        raise OutOfRange(where, "step", step, ">= 0")
    for r in range(n):
        if last_step[r] > step:
            raise StaleStep(where, r, last_step[r], step, False)
    if _overlap(s, grad_avg) or _overlap(last_step, s) or _overlap(last_step, grad_avg):
        raise ValueError(_CATCH_UP_SHARING)
    return h


def rmsprop_catch_up(s, last_step, step, gamma, *, grad_avg=None):
    r"""Bring every row of an exact-mode RMSProp state up to date as of ``step``, in place.

    :func:`rmsprop_step_rows` (exact mode) leaves the state of the rows that are not present
    behind and records, in ``last_step``, as of which step each row is up to date. This applies
    the decays each row missed and records ``step`` for every row:

    .. math::

        s_r \leftarrow \gamma^{\,t - \tau_r}\, s_r, \qquad
        \bar g_r \leftarrow \gamma^{\,t - \tau_r}\, \bar g_r, \qquad \tau_r \leftarrow t

    After it, ``s`` (and ``grad_avg``) hold what the dense kernel :func:`rmsprop_step` would
    hold after step :math:`t` (to round-off): call it before reading or saving the state, and
    before a dense step of the same table. The parameters need nothing (a zero gradient does
    not move them).

    Parameters
    ----------
    s : ndarray of float32 or float64, shape (n, ...)
        Running averages of squared gradients, C-contiguous, writeable; updated in place.
    last_step : ndarray of int64, shape (n,)
        The step as of which each row is up to date (as kept by :func:`rmsprop_step_rows`);
        every entry must be ``<= step``. Set to ``step`` in place.
    step : int
        The step to bring the rows to, :math:`t \ge 0` (usually the last step taken).
    gamma : float
        Decay rate :math:`\gamma \in [0, 1)`, the one the steps used.
    grad_avg : ndarray or None, default None, keyword-only
        Centered RMSProp's running average of gradients, like ``s``; brought forward with it.

    Returns
    -------
    None
        The arrays are updated in place.

    Raises
    ------
    TypeError
        Non-array arguments, a dtype other than float32/float64, mixed dtypes, ``last_step``
        not int64, or ``gamma``/``step`` of the wrong type.
    ValueError
        ``last_step`` not of shape ``(n,)``, an entry of ``last_step`` after ``step``,
        ``step < 0``, ``gamma`` out of range, non-contiguous, Fortran-ordered or read-only
        arrays, or arrays sharing memory. Nothing is modified when an error is raised.

    Notes
    -----
    It reads and writes the whole of ``s`` (and ``grad_avg``) and ``last_step``: the cost of a
    dense step, shared among Numba's threads for ``s`` of at least :data:`PARALLEL_MIN_BYTES`
    bytes. Rows that missed the same number of steps share one ``pow``. Calling it twice with
    the same ``step`` changes nothing the second time.

    Examples
    --------
    >>> import numpy as np
    >>> from rmsprop_nb.kernels import rmsprop_catch_up
    >>> s = np.array([[1.0, 4.0], [1.0, 4.0]])
    >>> last = np.array([3, 1])
    >>> rmsprop_catch_up(s, last, 3, gamma=0.5)
    >>> s
    array([[1.  , 4.  ],
           [0.25, 1.  ]])
    >>> last
    array([3, 3])
    """
    kernel = (_catch_up_parallel_entry if _use_parallel(s) else _catch_up_serial_entry)
    try:
        kernel(s, last_step, step, gamma, grad_avg)
    except OverflowError:
        raise ValueError("rmsprop_catch_up: an integer argument is out of the 64-bit range") from None


@jit(type_check=_CATCH_UP_ARGS.type_check)
def _catch_up_serial_entry(s, last_step, step, gamma, grad_avg):
    h = _catch_up_checks(s, last_step, step, gamma, grad_avg)
    _catch_up_serial(_as_rows(s), _as_rows(grad_avg), last_step, step, h)


@jit(type_check=_CATCH_UP_ARGS.type_check)
def _catch_up_parallel_entry(s, last_step, step, gamma, grad_avg):
    h = _catch_up_checks(s, last_step, step, gamma, grad_avg)
    _catch_up_parallel(_as_rows(s), _as_rows(grad_avg), last_step, step, h)


# --------------------------------------------------------------------------------------------
# The row kernels from a user's @numba.njit code (as rmsprop_step above). Numba's overloads
# take no keyword-only arguments: there, lazy, duplicates, last_step and step are ordinary
# trailing arguments (pass them by keyword). ``prefer_literal`` lets a constant ``duplicates``
# be checked when the user's function is compiled.
# --------------------------------------------------------------------------------------------


def _int64_or_none(v):
    """``np.int64(v)``, or ``None`` when ``v`` is ``None``."""


@overload(_int64_or_none)
def _int64_or_none_impl(v):
    if _is_none(v):
        return lambda v: None
    return lambda v: np.int64(v)


def _duplicates_flag(where, duplicates, known):
    """True for "sequential", False for "sum": ``known`` when it was checked at compile
    time, else checked here."""


@overload(_duplicates_flag)
def _duplicates_flag_impl(where, duplicates, known):
    if not _is_none(known):
        return lambda where, duplicates, known: known

    def impl(where, duplicates, known):
        if duplicates == "sequential":
            return True
        if duplicates != "sum":
            raise BadChoice(where, "duplicates", duplicates, "'sum' or 'sequential'")
        return False

    return impl


@overload(adagrad_step_rows, jit_options=dict(error_model="numpy"), prefer_literal=True)
def _adagrad_step_rows_jit(
    x, rows, g, s, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False, lr_decay=0.0,
    step=1, lazy=False, duplicates="sum",
):
    _ADAGRAD_ROWS_ARGS.check(dict(
        x=x, rows=rows, g=g, s=s, lr=lr, eps=eps, eps_in_sqrt=eps_in_sqrt,
        weight_decay=weight_decay, maximize=maximize, lr_decay=lr_decay, step=step, lazy=lazy,
    ))
    known = _sequential_type("adagrad_step_rows", duplicates)

    def impl(
        x, rows, g, s, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
        lr_decay=0.0, step=1, lazy=False, duplicates="sum",
    ):
        sequential = _duplicates_flag("adagrad_step_rows", duplicates, known)
        args = (
            x, rows, g, s, float(lr), float(eps), bool(eps_in_sqrt), float(weight_decay),
            bool(maximize), float(lr_decay), np.int64(step), bool(lazy), sequential,
        )
        if g.nbytes >= PARALLEL_MIN_BYTES and _threads.parallel_ok():
            _adagrad_rows_parallel(*args)
        else:
            _adagrad_rows_serial(*args)

    return impl


@overload(rmsprop_step_rows, jit_options=dict(error_model="numpy"), prefer_literal=True)
def _rmsprop_step_rows_jit(
    x, rows, g, s, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
    momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None, last_step=None,
    step=None, lazy=False, duplicates="sum",
):
    _RMSPROP_ROWS_ARGS.check(dict(
        x=x, rows=rows, g=g, s=s, lr=lr, gamma=gamma, eps=eps, eps_in_sqrt=eps_in_sqrt,
        weight_decay=weight_decay, maximize=maximize, momentum=momentum,
        momentum_buffer=momentum_buffer, centered=centered, grad_avg=grad_avg,
        last_step=last_step, step=step, lazy=lazy,
    ))
    known = _sequential_type("rmsprop_step_rows", duplicates)

    def impl(
        x, rows, g, s, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
        momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None, last_step=None,
        step=None, lazy=False, duplicates="sum",
    ):
        sequential = _duplicates_flag("rmsprop_step_rows", duplicates, known)
        args = (
            x, rows, g, s, float(lr), float(gamma), float(eps), bool(eps_in_sqrt),
            float(weight_decay), bool(maximize), float(momentum), momentum_buffer,
            bool(centered), grad_avg, last_step, _int64_or_none(step), bool(lazy), sequential,
        )
        if g.nbytes >= PARALLEL_MIN_BYTES and _threads.parallel_ok():
            _rmsprop_rows_parallel(*args)
        else:
            _rmsprop_rows_serial(*args)

    return impl


@overload(rmsprop_catch_up, jit_options=dict(error_model="numpy"))
def _rmsprop_catch_up_jit(s, last_step, step, gamma, grad_avg=None):
    _CATCH_UP_ARGS.check(dict(s=s, last_step=last_step, step=step, gamma=gamma,
                              grad_avg=grad_avg))

    def impl(s, last_step, step, gamma, grad_avg=None):
        if s.nbytes >= PARALLEL_MIN_BYTES and _threads.parallel_ok():
            _catch_up_parallel_entry(s, last_step, np.int64(step), float(gamma), grad_avg)
        else:
            _catch_up_serial_entry(s, last_step, np.int64(step), float(gamma), grad_avg)

    return impl

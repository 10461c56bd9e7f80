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
from numba.extending import overload

from . import _threads
from ._jit import jit
from . import _loops
from ._loops import _flat, _is_none, _update_blocks, _update_serial
from ._math import _adagrad_hyper, _rmsprop_hyper
from ._validation import KernelArgs, ShapeMismatch

__all__ = ["rmsprop_step", "adagrad_step", "PARALLEL_MIN_BYTES"]

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


def _same_shape(where, name, a, x):
    """Raise :class:`ShapeMismatch` unless ``a`` (an array, or ``None``) has ``x``'s shape."""


@overload(_same_shape)
def _same_shape_impl(where, name, a, x):
    if _is_none(a):
        return lambda where, name, a, x: None

    def impl(where, name, a, x):
        if a.shape != x.shape:
            raise ShapeMismatch(where, name, a.shape, "x", x.shape)

    return impl


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

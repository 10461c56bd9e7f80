r"""AdaGrad and RMSProp on NVIDIA GPUs: the same per-element updates, compiled by numba-cuda.

Nothing here is a second copy of the math: :func:`rmsprop_update` and :func:`adagrad_update`
are ``rmsprop_nb._math._rmsprop_update`` and ``_adagrad_update``, the very functions the CPU
kernels compile, compiled again as CUDA device functions. This module adds

* the launchers :func:`rmsprop_step` and :func:`adagrad_step`: the CPU kernels' arguments,
  checks and error messages, for arrays that live on the GPU (Numba device arrays, CuPy
  arrays, PyTorch CUDA tensors: anything with ``__cuda_array_interface__``, used without a
  copy), and one grid-stride kernel launch each;
* the row-sparse launchers :func:`rmsprop_step_rows`, :func:`adagrad_step_rows` and
  :func:`rmsprop_catch_up`: the CPU row kernels' semantics, checks and messages; the row
  indices are grouped on the host (a stable sort, so sums are deterministic), the rows
  present updated by one launch;
* :func:`rmsprop_hyper` and :func:`adagrad_hyper`, which check the hyperparameters and cast
  them to the arrays' dtype for your own kernels that call the device functions;
* what the optimizer classes need to keep their state on the GPU.

The module is imported on demand (``import rmsprop_nb`` never imports it, nor ``numba.cuda``)
and needs the ``numba-cuda`` package: ``pip install "rmsprop-nb[cuda]"``. Kernels are compiled
on their first launch, for the dtype they meet; importing needs no GPU. Without a GPU, Numba's
CUDA simulator runs everything (slowly) when ``NUMBA_ENABLE_CUDASIM=1`` is set before
``numba.cuda`` is first imported.

Float32 stays float32: the hyperparameters are cast to the arrays' dtype on the host, and the
device functions contain no float64 literal, so the float32 kernels' PTX has no ``.f64``
instruction. On a GPU, NVVM fuses multiply-adds (FMA), so results may differ from the CPU
kernels in the last bit or two; the simulator reproduces the CPU bit for bit in float64.
"""

from __future__ import annotations

import bisect
import functools
import importlib.util
import math

import numpy as np

if importlib.util.find_spec("numba_cuda") is None:  # Numba's own numba.cuda is deprecated
    raise ImportError(
        'rmsprop_nb.cuda needs the numba-cuda package: pip install "rmsprop-nb[cuda]" '
        '(or pip install "numba-cuda[cu13]" for CUDA 13, "numba-cuda[cu12]" for CUDA 12)'
    )

from numba import cuda  # noqa: E402  (after the check above, on purpose)

from . import _math, _validation, kernels  # noqa: E402

__all__ = [
    "rmsprop_step",
    "adagrad_step",
    "rmsprop_step_rows",
    "adagrad_step_rows",
    "rmsprop_catch_up",
    "rmsprop_update",
    "adagrad_update",
    "rmsprop_hyper",
    "adagrad_hyper",
    "THREADS_PER_BLOCK",
    "MAX_BLOCKS",
]

#: Threads per block of the launchers' kernels. The update is memory-bound; 256 keeps every
#: multiprocessor full on all current GPUs.
THREADS_PER_BLOCK = 256

#: At most this many blocks per launch (``None``: 32 per multiprocessor of the current GPU).
#: Larger arrays are covered by the grid-stride loop: each thread updates several elements.
#: Tests set this and :data:`THREADS_PER_BLOCK` small to run several blocks and strides.
MAX_BLOCKS = None


# --------------------------------------------------------------------------------------------
# The device functions: the CPU's per-element math, compiled for the GPU.
# --------------------------------------------------------------------------------------------

# inline="always" also lets compile_ptx work without a GPU (a separately compiled device
# function would be linked, which asks the driver).
rmsprop_update = cuda.jit(device=True, inline="always")(_math._rmsprop_update)
adagrad_update = cuda.jit(device=True, inline="always")(_math._adagrad_update)

rmsprop_update.__doc__ = r"""RMSProp for one element, as a CUDA device function.

    Call it from your own ``@cuda.jit`` kernel, for example to fuse the gradient computation
    with the update. It returns the new values; storing them is up to the caller.

    .. math::

        s \leftarrow \gamma s + (1-\gamma)\, g^2, \qquad
        x \leftarrow x - \eta\, \frac{g}{\sqrt{s + \epsilon}}
        \quad\text{or}\quad x - \eta\, \frac{g}{\sqrt{s} + \epsilon}

    with the options of :func:`rmsprop_nb.kernels.rmsprop_step` (``maximize``,
    ``weight_decay``, momentum, centered); the full rules are in :class:`rmsprop_nb.RMSProp`.

    Parameters
    ----------
    x, g, s : float32 or float64
        Parameter, gradient and running average of :math:`g^2` (all of one dtype).
    buf, gavg : float
        Momentum buffer and running average of :math:`g`; pass ``h.zero`` when unused.
    h : RMSPropHyper
        The hyperparameters in the arrays' dtype, from :func:`rmsprop_hyper` (pass it to the
        kernel as an argument).
    use_momentum, centered : bool
        Whether ``buf`` and ``gavg`` are used (compile-time constants are best: the unused
        branch is then compiled out).

    Returns
    -------
    x, s, buf, gavg : float
        The updated values (``buf`` and ``gavg`` unchanged when unused).

    See Also
    --------
    rmsprop_step : the launcher, for whole arrays.
    rmsprop_hyper : builds ``h``.

    References
    ----------
    .. [1] T. Tieleman and G. Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for
       Machine Learning, 2012.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.6
       "RMSProp", https://d2l.ai.

    Examples
    --------
    A kernel that computes the gradient of :math:`0.1 x_1^2 + 2 x_2^2` and takes 20 steps
    without leaving the GPU (one thread per element):

    >>> import numpy as np
    >>> from numba import cuda
    >>> from rmsprop_nb.cuda import rmsprop_hyper, rmsprop_update
    >>> @cuda.jit
    ... def train(x, c, s, h, steps):
    ...     i = cuda.grid(1)
    ...     if i < x.size:
    ...         xi, si = x[i], s[i]
    ...         for _ in range(steps):
    ...             gi = c[i] * xi
    ...             xi, si, _, _ = rmsprop_update(
    ...                 xi, gi, si, h.zero, h.zero, h, False, False)
    ...         x[i] = xi
    ...         s[i] = si
    >>> x = cuda.to_device(np.array([-5.0, -2.0]))
    >>> c = cuda.to_device(np.array([0.2, 4.0]))
    >>> s = cuda.to_device(np.zeros(2))
    >>> h = rmsprop_hyper(x.dtype, lr=0.4, gamma=0.9, eps=1e-6)
    >>> train[1, 32](x, c, s, h, 20)
    >>> print("x1 {:f}, x2 {:f}".format(*x.copy_to_host()))
    x1 -0.010599, x2 0.000000
    """

adagrad_update.__doc__ = r"""AdaGrad for one element, as a CUDA device function.

    .. math::

        s \leftarrow s + g^2, \qquad
        x \leftarrow x - \eta_t\, \frac{g}{\sqrt{s + \epsilon}}
        \quad\text{or}\quad x - \eta_t\, \frac{g}{\sqrt{s} + \epsilon}

    with the options of :func:`rmsprop_nb.kernels.adagrad_step`; the full rules are in
    :class:`rmsprop_nb.AdaGrad`.

    Parameters
    ----------
    x, g, s : float32 or float64
        Parameter, gradient and sum of :math:`g^2` (all of one dtype).
    h : AdaGradHyper
        The hyperparameters in the arrays' dtype, from :func:`adagrad_hyper`; its ``lr`` is
        already :math:`\eta_t`, the rate of this step.

    Returns
    -------
    x, s : float
        The updated values.

    See Also
    --------
    adagrad_step : the launcher, for whole arrays.
    adagrad_hyper : builds ``h``.

    References
    ----------
    .. [1] J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning
       and Stochastic Optimization", JMLR 12, 2011.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       "AdaGrad", https://d2l.ai.

    Examples
    --------
    >>> import numpy as np
    >>> from numba import cuda
    >>> from rmsprop_nb.cuda import adagrad_hyper, adagrad_update
    >>> @cuda.jit
    ... def adagrad_kernel(x, g, s, h):
    ...     for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
    ...         x[i], s[i] = adagrad_update(x[i], g[i], s[i], h)
    >>> x = cuda.to_device(np.array([1.0, -1.0], dtype=np.float32))
    >>> g = cuda.to_device(np.array([0.5, -2.0], dtype=np.float32))
    >>> s = cuda.to_device(np.zeros(2, dtype=np.float32))
    >>> h = adagrad_hyper(np.float32, lr=0.1, eps=0.0)
    >>> adagrad_kernel[1, 32](x, g, s, h)
    >>> x.copy_to_host()
    array([ 0.9, -0.9], dtype=float32)
    """


# --------------------------------------------------------------------------------------------
# Hyperparameters for the device functions: checked, and cast to the arrays' dtype.
# --------------------------------------------------------------------------------------------


class _DType:
    """Something with a ``.dtype``: all that _math._*_hyper need from ``x``."""

    def __init__(self, name, dtype):
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{name}: dtype must be float32 or float64, got {dtype!r}") from None
        if self.dtype not in _validation.FLOAT_DTYPES:
            raise TypeError(f"{name}: dtype must be float32 or float64, got {self.dtype}")


def _check_scalars(name, reals, flags, ints=None):
    for key, value in reals.items():
        _validation.check_real(f"{name}: {key}", value)
    for key, value in flags.items():
        _validation.check_flag(f"{name}: {key}", value)
    for key, value in (ints or {}).items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name}: {key} must be an integer, got {type(value).__name__}")


def rmsprop_hyper(
    dtype, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False, momentum=0.0,
):
    r"""The hyperparameters of :func:`rmsprop_update`, checked and cast to ``dtype``.

    The cast happens once, on the host, as in the CPU kernels (``1 - gamma`` is rounded once,
    like PyTorch does), so that a float32 kernel computes in float32 only.

    Parameters
    ----------
    dtype : dtype-like
        ``float32`` or ``float64``: the dtype of the arrays the kernel updates.
    lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum
        As in :func:`rmsprop_step`: :math:`\eta \ge 0`, :math:`\gamma \in [0, 1)`,
        :math:`\epsilon \ge 0` (inside the root when ``eps_in_sqrt``), :math:`\lambda \ge 0`,
        ascend if ``maximize``, :math:`\mu \ge 0`.

    Returns
    -------
    RMSPropHyper
        A namedtuple of ``dtype`` scalars and flags; pass it to your kernel as one argument.
        ``h.zero`` is a zero of ``dtype``, handy for unused state.

    Raises
    ------
    TypeError
        A dtype other than float32/float64, or a non-real hyperparameter.
    ValueError
        A hyperparameter out of range.

    References
    ----------
    .. [1] T. Tieleman and G. Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for
       Machine Learning, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from rmsprop_nb.cuda import rmsprop_hyper
    >>> h = rmsprop_hyper(np.float32, lr=0.01, gamma=0.9, eps=1e-6)
    >>> h.lr.dtype, float(h.one_minus_gamma)
    (dtype('float32'), 0.10000000149011612)
    """
    x = _DType("rmsprop_hyper", dtype)
    _check_scalars(
        "rmsprop_hyper", dict(lr=lr, gamma=gamma, eps=eps, weight_decay=weight_decay,
                              momentum=momentum), dict(eps_in_sqrt=eps_in_sqrt, maximize=maximize),
    )
    return _math._rmsprop_hyper.py_func(
        "rmsprop_hyper", x, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum
    )


def adagrad_hyper(
    dtype, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False, lr_decay=0.0, step=1,
):
    r"""The hyperparameters of :func:`adagrad_update`, checked and cast to ``dtype``.

    Parameters
    ----------
    dtype : dtype-like
        ``float32`` or ``float64``: the dtype of the arrays the kernel updates.
    lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step
        As in :func:`adagrad_step`. The rate of this step,
        :math:`\eta_t = \eta / (1 + (t-1)\delta)`, is computed here (in float64, rounded
        once), so ``h`` changes with ``step`` when ``lr_decay > 0``.

    Returns
    -------
    AdaGradHyper
        A namedtuple of ``dtype`` scalars and flags; pass it to your kernel as one argument.

    Raises
    ------
    TypeError
        A dtype other than float32/float64, or a non-real hyperparameter.
    ValueError
        A hyperparameter out of range, or ``step < 1``.

    References
    ----------
    .. [1] J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning
       and Stochastic Optimization", JMLR 12, 2011.

    Examples
    --------
    >>> from rmsprop_nb.cuda import adagrad_hyper
    >>> h = adagrad_hyper("float64", lr=0.1, eps=1e-10,
    ...                   lr_decay=0.5, step=3)
    >>> float(h.lr)   # 0.1 / (1 + 2 * 0.5)
    0.05
    """
    x = _DType("adagrad_hyper", dtype)
    _check_scalars(
        "adagrad_hyper", dict(lr=lr, eps=eps, weight_decay=weight_decay, lr_decay=lr_decay),
        dict(eps_in_sqrt=eps_in_sqrt, maximize=maximize), dict(step=step),
    )
    return _math._adagrad_hyper.py_func(
        "adagrad_hyper", x, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step
    )


# --------------------------------------------------------------------------------------------
# Device arrays: what they are, the checks they pass, and flat views of them.
# --------------------------------------------------------------------------------------------


def _interface(name, a):
    """The array interface of a device array (a dict with data, shape, strides, typestr)."""
    iface = getattr(a, "__cuda_array_interface__", None)
    if iface is None and getattr(a, "__cuda_ndarray__", False):
        iface = a.__array_interface__  # the simulator's device arrays wrap a NumPy array
    if iface is None:
        raise TypeError(
            f"{name} must be a CUDA device array (an object with __cuda_array_interface__, "
            f"such as a Numba device array, a CuPy array or a PyTorch CUDA tensor), got "
            f"{type(a).__name__}; copy a NumPy array to the GPU with numba.cuda.to_device"
        )
    return iface


class _Device:
    """One device array as the checks see it: its NumPy stand-in and its memory span."""

    def __init__(self, name, a):
        iface = _interface(name, a)
        dtype = np.dtype(iface["typestr"])
        shape = tuple(iface["shape"])
        strides = iface.get("strides")
        if strides is None:  # C-contiguous, by the interface's convention
            strides = tuple(int(np.prod(shape[k + 1:], dtype=np.int64)) * dtype.itemsize
                            for k in range(len(shape)))
        ptr, readonly = iface["data"]
        self.array = a
        self.ptr = ptr
        self.nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        # A NumPy array with the device array's dtype, shape, strides and writeability, over
        # a one-element host buffer that is never read: _validation's checks (dtype,
        # contiguity, memory order, shape, read-only) and their messages apply unchanged.
        self.stand_in = np.lib.stride_tricks.as_strided(
            np.zeros(1, dtype), shape, strides, writeable=not readonly
        )

    def overlaps(self, other):
        if other is None or self.nbytes == 0 or other.nbytes == 0:
            return False
        return self.ptr < other.ptr + other.nbytes and other.ptr < self.ptr + self.nbytes

    def view(self):
        """A Numba device array over the same memory (no copy)."""
        a = self.array
        return a if getattr(a, "__cuda_ndarray__", False) else cuda.as_cuda_array(a)

    def flat(self):
        """A 1-D Numba device array over the same memory, in memory order."""
        d = self.view()
        if d.ndim == 1:
            return d
        return d.reshape(d.size, order=_validation.memory_order(self.stand_in))


def _devices(kernel, names_values):
    """``_Device`` for each array argument (``None`` stays ``None``), in order."""
    return {
        k: None if v is None else _Device(f"{kernel}: {k}", v) for k, v in names_values.items()
    }


# --------------------------------------------------------------------------------------------
# The checks of the CPU kernels, on device arrays: same order, same messages.
# --------------------------------------------------------------------------------------------



def _overlap_error(kernel, dev, pairs):
    for first, others, message in pairs:
        if any(dev[first] is not None and dev[first].overlaps(dev[o]) for o in others):
            raise ValueError(f"{kernel}: {message}")


def _check_rmsprop(
    x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum, momentum_buffer,
    centered, grad_avg,
):
    """Every check of kernels.rmsprop_step; returns the device arrays and the hyperparameters."""
    dev = _devices(
        "rmsprop_step", dict(x=x, g=g, s=s, momentum_buffer=momentum_buffer, grad_avg=grad_avg)
    )
    stand = {k: None if d is None else d.stand_in for k, d in dev.items()}
    kernels._RMSPROP_ARGS.check(dict(
        stand, lr=lr, gamma=gamma, eps=eps, eps_in_sqrt=eps_in_sqrt, weight_decay=weight_decay,
        maximize=maximize, momentum=momentum, centered=centered,
    ))
    h = _math._rmsprop_hyper.py_func(
        "rmsprop_step", stand["x"], lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum
    )
    if momentum != 0 and momentum_buffer is None:
        raise ValueError("rmsprop_step: momentum > 0 needs a momentum_buffer array")
    if centered and grad_avg is None:
        raise ValueError("rmsprop_step: centered=True needs a grad_avg array")
    if grad_avg is not None and not centered:
        raise ValueError("rmsprop_step: grad_avg is given but centered is False")
    _overlap_error("rmsprop_step", dev, [
        ("x", ("g", "s", "momentum_buffer", "grad_avg"),
         "x shares memory with g, s or another state array"),
        ("s", ("g", "momentum_buffer", "grad_avg"),
         "s shares memory with g or another state array"),
        ("momentum_buffer", ("g", "grad_avg"), "momentum_buffer shares memory with g or grad_avg"),
        ("grad_avg", ("g",), "grad_avg shares memory with g"),
    ])
    return dev, h


def _check_adagrad(x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step):
    """Every check of kernels.adagrad_step; returns the device arrays and the hyperparameters."""
    dev = _devices("adagrad_step", dict(x=x, g=g, s=s))
    stand = {k: d.stand_in for k, d in dev.items()}
    kernels._ADAGRAD_ARGS.check(dict(
        stand, lr=lr, eps=eps, eps_in_sqrt=eps_in_sqrt, weight_decay=weight_decay,
        maximize=maximize, lr_decay=lr_decay, step=step,
    ))
    h = _math._adagrad_hyper.py_func(
        "adagrad_step", stand["x"], lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step
    )
    _overlap_error("adagrad_step", dev, [
        ("x", ("g", "s"), "x shares memory with g or s"),
        ("s", ("g",), "s shares memory with g"),
    ])
    return dev, h


# --------------------------------------------------------------------------------------------
# Kernels (compiled on first launch, per dtype) and launching.
# --------------------------------------------------------------------------------------------


@functools.cache
def _rmsprop_kernel(use_momentum, centered):
    """The RMSProp kernel for one combination of state arrays.

    ``use_momentum`` and ``centered`` are closure constants, so the unused state is compiled
    out; the launcher passes ``x`` in the unused ``buf``/``gavg`` slots (never touched).
    """

    def rmsprop_kernel(x, g, s, buf, gavg, h):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            b = buf[i] if use_momentum else h.zero
            a = gavg[i] if centered else h.zero
            xi, si, b, a = rmsprop_update(x[i], g[i], s[i], b, a, h, use_momentum, centered)
            x[i] = xi
            s[i] = si
            if use_momentum:
                buf[i] = b
            if centered:
                gavg[i] = a

    return cuda.jit(rmsprop_kernel)


@functools.cache
def _adagrad_kernel():
    """The AdaGrad kernel."""

    def adagrad_kernel(x, g, s, h):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            xi, si = adagrad_update(x[i], g[i], s[i], h)
            x[i] = xi
            s[i] = si

    return cuda.jit(adagrad_kernel)


@functools.cache
def _nonfinite_kernel():
    """Sets ``flags[k] = 1`` when the flat array ``g`` holds a NaN or an infinity."""

    def flag_nonfinite(g, flags, k):
        for i in range(cuda.grid(1), g.size, cuda.gridsize(1)):
            if not math.isfinite(g[i]):
                flags[k] = 1  # every writer writes the same value: no atomic needed

    return cuda.jit(flag_nonfinite)


def _first_nonfinite(arrays):
    """Index of the first flat device array holding NaN or inf, else None (waits for it)."""
    flags = cuda.to_device(np.zeros(len(arrays), np.int32))
    for k, g in enumerate(arrays):
        _launch(_nonfinite_kernel(), g.size, None, g, flags, k)
    bad = np.flatnonzero(flags.copy_to_host())
    return int(bad[0]) if bad.size else None


_gpu_checked = False


def _require_gpu():
    global _gpu_checked
    if not _gpu_checked:
        if not cuda.is_available():
            raise RuntimeError(
                "rmsprop_nb.cuda: no CUDA GPU is available (numba.cuda.is_available() is "
                "False). To run the CUDA kernels without a GPU, on Numba's CUDA simulator "
                "(slow; for testing), set the environment variable NUMBA_ENABLE_CUDASIM=1 "
                "before numba.cuda is first imported."
            )
        _gpu_checked = True


def _launch_config(n):
    """(blocks, threads per block) for ``n`` elements: one thread per element, capped."""
    threads = THREADS_PER_BLOCK
    cap = MAX_BLOCKS
    if cap is None:
        sms = getattr(cuda.get_current_device(), "MULTIPROCESSOR_COUNT", 1)
        cap = 32 * sms
    return max(1, min(-(-n // threads), cap)), threads


def _launch_stream(stream):
    """A stream Numba can launch on: None is the default stream; Numba streams pass; any
    other object with ``__cuda_stream__`` (cuda.core, recent CuPy and PyTorch) is wrapped."""
    if stream is None:
        return 0
    if cuda.config.ENABLE_CUDASIM or not hasattr(stream, "__cuda_stream__"):
        return stream
    from numba.cuda.cudadrv.driver import Stream

    if isinstance(stream, Stream):
        return stream
    return cuda.external_stream(int(stream.__cuda_stream__()[1]))


def _launch(kernel, n, stream, *args):
    if n == 0:
        return
    blocks, threads = _launch_config(n)
    kernel[blocks, threads, _launch_stream(stream)](*args)


# --------------------------------------------------------------------------------------------
# The launchers.
# --------------------------------------------------------------------------------------------


def rmsprop_step(
    x, g, s, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
    momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None, *, stream=None,
):
    r"""One RMSProp step on the GPU, in place: :func:`rmsprop_nb.kernels.rmsprop_step` for
    device arrays.

    Element-wise, with :math:`\epsilon` inside the root (``eps_in_sqrt=True``, the book,
    optax and Keras) or outside it (``eps_in_sqrt=False``, PyTorch):

    .. math::

        s &\leftarrow \gamma s + (1 - \gamma)\, g \odot g \\
        x &\leftarrow x - \eta\, \frac{g}{\sqrt{s + \epsilon}}
        \quad\text{or}\quad x - \eta\, \frac{g}{\sqrt{s} + \epsilon}

    ``maximize``, ``weight_decay``, ``momentum_buffer`` and ``centered``/``grad_avg`` act as
    in ``torch.optim.RMSprop``; the full rules are in :class:`rmsprop_nb.RMSProp`. One kernel
    launch (a grid-stride loop over the elements) updates every array; the call returns
    without waiting for the GPU.

    Parameters
    ----------
    x : device array of float32 or float64
        Parameters: any object with ``__cuda_array_interface__`` (Numba device array, CuPy
        array, PyTorch CUDA tensor), any shape, C- or Fortran-contiguous, writeable. Updated in
        place; nothing is copied.
    g : device array
        Gradient: same shape, dtype and memory order as ``x``; only read.
    s : device array
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
    momentum_buffer : device array or None, default None
        Momentum state (start at zeros), like ``x``; updated in place.
    centered : bool, default False
        Normalise by the variance estimate :math:`s - \bar g^2`; needs ``grad_avg``.
    grad_avg : device array or None, default None
        Running average of gradients :math:`\bar g` (start at zeros); updated in place.
    stream : optional, keyword-only
        The CUDA stream to launch on: a Numba stream (``numba.cuda.stream()``,
        ``numba.cuda.external_stream(ptr)``) or an object with ``__cuda_stream__``. Default:
        the default stream.

    Returns
    -------
    None
        The arrays are updated in place; nothing is allocated.

    Raises
    ------
    TypeError
        Arguments that are not device arrays, a dtype other than float32/float64, mixed
        dtypes, non-real hyperparameters.
    ValueError
        Different shapes or memory orders, non-contiguous or read-only arrays, arrays sharing
        memory, hyperparameters out of range, or option/state mismatch, with the messages of
        the CPU kernel. Every check runs before the launch: nothing is modified on error.
    RuntimeError
        No GPU (and the simulator is off: set ``NUMBA_ENABLE_CUDASIM=1`` to use it).

    Notes
    -----
    The launch uses :data:`THREADS_PER_BLOCK` threads per block and at most
    :data:`MAX_BLOCKS` blocks. On a GPU, NVVM contracts multiply-adds to FMA, so results
    can differ from the CPU kernel in the last bit or two.

    References
    ----------
    .. [1] T. Tieleman and G. Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for
       Machine Learning, 2012.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.6
       "RMSProp", https://d2l.ai.

    Examples
    --------
    >>> import numpy as np
    >>> from numba import cuda
    >>> from rmsprop_nb.cuda import rmsprop_step
    >>> x = cuda.to_device(np.array([-5.0, -2.0]))
    >>> s = cuda.to_device(np.zeros(2))
    >>> g = cuda.to_device(np.array([0.2, 4.0]) * x.copy_to_host())
    >>> rmsprop_step(x, g, s, lr=0.4, gamma=0.9, eps=1e-6)
    >>> x.copy_to_host().round(6)
    array([-3.735095, -0.735089])

    CuPy arrays and PyTorch CUDA tensors are used in place the same way, e.g.
    ``rmsprop_step(p, p.grad, s, 1e-3, 0.99, 1e-8, eps_in_sqrt=False)`` for a tensor ``p``.
    """
    _require_gpu()
    dev, h = _check_rmsprop(
        x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
        momentum_buffer, centered, grad_avg,
    )
    flat = {k: None if d is None else d.flat() for k, d in dev.items()}
    _launch_rmsprop(
        flat["x"], flat["g"], flat["s"], flat["momentum_buffer"], flat["grad_avg"], h, stream
    )


def _launch_rmsprop(x, g, s, buf, gavg, h, stream):
    """Launch on flat device arrays (``buf``/``gavg`` may be None)."""
    _launch(
        _rmsprop_kernel(buf is not None, gavg is not None), x.size, stream,
        x, g, s, x if buf is None else buf, x if gavg is None else gavg, h,
    )


def adagrad_step(
    x, g, s, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False, lr_decay=0.0, step=1,
    *, stream=None,
):
    r"""One AdaGrad step on the GPU, in place: :func:`rmsprop_nb.kernels.adagrad_step` for
    device arrays.

    Element-wise, with :math:`\epsilon` inside the root (``eps_in_sqrt=True``, the book,
    optax and Keras) or outside it (``eps_in_sqrt=False``, PyTorch):

    .. math::

        s &\leftarrow s + g \odot g, \qquad \eta_t = \frac{\eta}{1 + (t - 1)\,\delta} \\
        x &\leftarrow x - \eta_t\, \frac{g}{\sqrt{s + \epsilon}}
        \quad\text{or}\quad x - \eta_t\, \frac{g}{\sqrt{s} + \epsilon}

    ``maximize`` and ``weight_decay`` act on ``g`` first, as in ``torch.optim.Adagrad``; the
    full rules are in :class:`rmsprop_nb.AdaGrad`. One kernel launch (a grid-stride loop)
    updates the arrays; the call returns without waiting for the GPU.

    Parameters
    ----------
    x : device array of float32 or float64
        Parameters: any object with ``__cuda_array_interface__``, any shape, C- or
        Fortran-contiguous, writeable. Updated in place; nothing is copied.
    g : device array
        Gradient: same shape, dtype and memory order as ``x``; only read.
    s : device array
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
    stream : optional, keyword-only
        The CUDA stream to launch on (see :func:`rmsprop_step`). Default: the default stream.

    Returns
    -------
    None
        The arrays are updated in place; nothing is allocated.

    Raises
    ------
    TypeError
        Arguments that are not device arrays, a dtype other than float32/float64, mixed
        dtypes, non-real hyperparameters.
    ValueError
        Different shapes or memory orders, non-contiguous or read-only arrays, arrays sharing
        memory, or hyperparameters out of range, with the messages of the CPU kernel. Every
        check runs before the launch: nothing is modified on error.
    RuntimeError
        No GPU (and the simulator is off: set ``NUMBA_ENABLE_CUDASIM=1`` to use it).

    References
    ----------
    .. [1] J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning
       and Stochastic Optimization", JMLR 12, 2011.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       "AdaGrad", https://d2l.ai.

    Examples
    --------
    >>> import numpy as np
    >>> from numba import cuda
    >>> from rmsprop_nb.cuda import adagrad_step
    >>> x = cuda.to_device(np.array([-5.0, -2.0]))
    >>> s = cuda.to_device(np.zeros(2))
    >>> c = cuda.to_device(np.array([0.2, 4.0]))
    >>> g = cuda.device_array_like(x)
    >>> for _ in range(20):
    ...     g.copy_to_device(c.copy_to_host() * x.copy_to_host())
    ...     adagrad_step(x, g, s, lr=0.4, eps=1e-6)
    >>> print("x1 {:f}, x2 {:f}".format(*x.copy_to_host()))
    x1 -2.382563, x2 -0.158591
    """
    _require_gpu()
    dev, h = _check_adagrad(x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step)
    _launch_adagrad(dev["x"].flat(), dev["g"].flat(), dev["s"].flat(), h, stream)


def _launch_adagrad(x, g, s, h, stream):
    """Launch on flat device arrays."""
    _launch(_adagrad_kernel(), x.size, stream, x, g, s, h)


# --------------------------------------------------------------------------------------------
# Row-sparse steps: the rows are grouped on the host, the rows present updated on the GPU.
# --------------------------------------------------------------------------------------------

# The catch-up of exact RMSProp, the CPU's math compiled for the GPU (as the updates above).
_gamma_power_device = cuda.jit(device=True, inline="always")(_math._gamma_power)
_catch_up_device = cuda.jit(device=True, inline="always")(_math._rmsprop_catch_up)


class _RowGroups:
    """The entries of a row step grouped by row, on the host, as the CPU loops group them:
    ``order`` (positions by row, equal rows in input order), ``starts`` (run ``d`` is
    ``order[starts[d]:starts[d + 1]]``) and ``rows`` (the row of each run, increasing)."""

    def __init__(self, rows):
        self.host = rows
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if rows.size else order
        self.order = order.astype(np.int64)
        self.starts = np.append(first, rows.size).astype(np.int64)
        self.rows = ordered[first].astype(np.int64)

    def upload(self):
        return cuda.to_device(self.order), cuda.to_device(self.starts), cuda.to_device(self.rows)


def _host_rows(kernel, rows):
    """``rows`` as a host array (a device array is downloaded: k integers) and, for a device
    array, its _Device (for the shared-memory checks); the type checks come first."""
    if isinstance(rows, np.ndarray):
        _validation._check_index_array(f"{kernel}: rows", _validation.describe(rows))
        return rows, None
    d = _Device(f"{kernel}: rows", rows)
    _validation._check_index_array(f"{kernel}: rows", _validation.describe(d.stand_in))
    if _validation.memory_order(d.stand_in) is None:
        raise ValueError(f"{kernel}: rows must be contiguous when it is a device array")
    return d.view().copy_to_host(), d


def _check_rows_common(kernel, dev, rows, n, trailing):
    """The checks every row launcher shares, on the host rows: g's shape, each index."""
    g = dev["g"].stand_in
    want = (rows.size,) + trailing
    if g.shape != want:
        raise _validation.ShapeMismatch(kernel, "g", g.shape, "x[rows]", want)
    bad = np.flatnonzero((rows < 0) | (rows >= n))
    if bad.size:
        j = int(bad[0])
        raise _validation.RowOutOfRange(kernel, "rows", j, rows[j].item(), n)


def _gather_last_steps(last_step, groups):
    """``last_step`` (device) at the rows present, on the host."""
    out = cuda.device_array(groups.rows.size, np.int64)
    _launch(_gather_kernel(), groups.rows.size, None, last_step, cuda.to_device(groups.rows), out)
    return out.copy_to_host()


def _as_rows_view(d):
    """A C-contiguous device array as a 2-D (rows, elements per row) view, no copy."""
    v = d.view()
    n = v.shape[0]
    return v.reshape(n, v.size // n if n else 1)


@functools.cache
def _gather_kernel():
    def gather(src, index, out):
        for i in range(cuda.grid(1), index.size, cuda.gridsize(1)):
            out[i] = src[index[i]]

    return cuda.jit(gather)


@functools.cache
def _adagrad_rows_kernel(sequential):
    """AdaGrad on the rows of runs: one thread per (row, element) pair, grid-stride."""

    def adagrad_rows(x, g, s, order, starts, rows, h):
        m = x.shape[1]
        for i in range(cuda.grid(1), rows.size * m, cuda.gridsize(1)):
            d = i // m
            c = i - d * m
            r = rows[d]
            xi, si = x[r, c], s[r, c]
            lo, hi = starts[d], starts[d + 1]
            if sequential:
                for e in range(lo, hi):
                    xi, si = adagrad_update(xi, g[order[e], c], si, h)
            else:
                gi = g[order[lo], c]
                for e in range(lo + 1, hi):
                    gi += g[order[e], c]
                xi, si = adagrad_update(xi, gi, si, h)
            x[r, c] = xi
            s[r, c] = si

    return cuda.jit(adagrad_rows)


@functools.cache
def _rmsprop_rows_kernel(use_momentum, centered, exact, sequential):
    """RMSProp on the rows of runs: one thread per (row, element) pair, grid-stride. Exact:
    ``missed[d]`` steps of catch-up first; the thread of element 0 records ``step`` (no thread
    of the launch reads ``last_step``)."""

    def rmsprop_rows(x, g, s, buf, gavg, order, starts, rows, missed, last_step, step, h):
        m = x.shape[1]
        for i in range(cuda.grid(1), rows.size * m, cuda.gridsize(1)):
            d = i // m
            c = i - d * m
            r = rows[d]
            xi, si = x[r, c], s[r, c]
            bi = buf[r, c] if use_momentum else h.zero
            ai = gavg[r, c] if centered else h.zero
            if exact:
                k = missed[d]
                if k > 0:
                    si, ai = _catch_up_device(si, ai, _gamma_power_device(h, s.dtype.type(k)))
                if c == 0:
                    last_step[r] = step
            lo, hi = starts[d], starts[d + 1]
            if sequential:
                for e in range(lo, hi):
                    xi, si, bi, ai = rmsprop_update(xi, g[order[e], c], si, bi, ai, h,
                                                    use_momentum, centered)
            else:
                gi = g[order[lo], c]
                for e in range(lo + 1, hi):
                    gi += g[order[e], c]
                xi, si, bi, ai = rmsprop_update(xi, gi, si, bi, ai, h, use_momentum, centered)
            x[r, c] = xi
            s[r, c] = si
            if use_momentum:
                buf[r, c] = bi
            if centered:
                gavg[r, c] = ai

    return cuda.jit(rmsprop_rows)


@functools.cache
def _catch_up_kernel(centered):
    """Every element of ``s`` (2-D) and ``gavg`` brought forward to ``step``."""

    def catch_up(s, gavg, last_step, step, h):
        m = s.shape[1]
        for i in range(cuda.grid(1), s.shape[0] * m, cuda.gridsize(1)):
            r = i // m
            c = i - r * m
            k = step - last_step[r]
            if k > 0:
                a = gavg[r, c] if centered else h.zero
                sc, a = _catch_up_device(s[r, c], a, _gamma_power_device(h, s.dtype.type(k)))
                s[r, c] = sc
                if centered:
                    gavg[r, c] = a

    return cuda.jit(catch_up)


@functools.cache
def _set_steps_kernel():
    def set_steps(last_step, step):
        for r in range(cuda.grid(1), last_step.size, cuda.gridsize(1)):
            last_step[r] = step

    return cuda.jit(set_steps)


@functools.cache
def _first_after_kernel():
    """``flag[0] = min(flag[0], r)`` for every row ``r`` with ``last_step[r] > step``."""

    def first_after(last_step, step, flag):
        for r in range(cuda.grid(1), last_step.size, cuda.gridsize(1)):
            if last_step[r] > step:
                cuda.atomic.min(flag, 0, r)

    return cuda.jit(first_after)


def _sequential(kernel, duplicates):
    return kernels._sequential(kernel, duplicates)


def adagrad_step_rows(
    x, rows, g, s, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False, lr_decay=0.0,
    step=1, *, lazy=False, duplicates="sum", stream=None,
):
    r"""One AdaGrad step on the rows of a device array that a sparse gradient names:
    :func:`rmsprop_nb.kernels.adagrad_step_rows` on the GPU.

    Same arguments, semantics (duplicates summed in the order of ``rows``, or applied one
    after another with ``duplicates="sequential"``; rows not present unchanged), checks and
    messages as the CPU kernel. ``x``, ``g`` and ``s`` are device arrays (anything with
    ``__cuda_array_interface__``); ``rows`` may be a NumPy array or a device array.

    How it runs, and what it costs: the row indices are grouped on the host (a stable NumPy
    sort of ``rows``, which a device array must first be copied back for: ``8k`` bytes), the
    grouping (about ``24k`` bytes) is copied to the GPU, and one kernel launch updates the
    rows present with one thread per (row, element) pair, each summing its row's entries in
    input order. So every call waits for ``rows`` to be ready and pays two small copies and a
    host sort (tens of microseconds for thousands of rows) besides the rows' own traffic; in
    return the result is deterministic, bit for bit the same from call to call, with no
    atomic additions. The check of every index runs on the host copy, before the launch.

    Parameters
    ----------
    x, g, s : device arrays
        As in the CPU kernel: the table ``(n, ...)`` (C-contiguous), the gradients of the rows
        ``(k, ...)``, the sums of squared gradients ``(n, ...)``.
    rows : ndarray or device array of int, shape (k,)
        Row indices in ``[0, n)``.
    lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step, lazy, duplicates
        As in :func:`rmsprop_nb.kernels.adagrad_step_rows`.
    stream : optional, keyword-only
        The CUDA stream of the update (see :func:`rmsprop_step`).

    Returns
    -------
    None
        The arrays are updated in place.

    Raises
    ------
    TypeError, ValueError
        As the CPU kernel, with its messages; nothing is modified on error.
    RuntimeError
        No GPU (and the simulator is off).

    Examples
    --------
    >>> import numpy as np
    >>> from numba import cuda
    >>> from rmsprop_nb.cuda import adagrad_step_rows
    >>> x = cuda.to_device(np.ones((4, 2)))
    >>> s = cuda.to_device(np.zeros((4, 2)))
    >>> g = np.array([[1.0, 2.0], [3.0, -4.0], [1.0, -1.0]])
    >>> adagrad_step_rows(x, np.array([2, 0, 2]), cuda.to_device(g),
    ...                   s, lr=0.1, eps=1e-10, eps_in_sqrt=False)
    >>> x.copy_to_host()
    array([[0.9, 1.1],
           [1. , 1. ],
           [0.9, 0.9],
           [1. , 1. ]])
    """
    kernel = "adagrad_step_rows"
    _require_gpu()
    sequential = _sequential(kernel, duplicates)
    dev = _devices(kernel, dict(x=x, g=g, s=s))
    host_rows, drows = _host_rows(kernel, rows)
    stand = {k: d.stand_in for k, d in dev.items()}
    kernels._ADAGRAD_ROWS_ARGS.check(dict(
        stand, rows=host_rows, lr=lr, eps=eps, eps_in_sqrt=eps_in_sqrt,
        weight_decay=weight_decay, maximize=maximize, lr_decay=lr_decay, step=step, lazy=lazy,
    ))
    h = _math._adagrad_hyper.py_func(
        kernel, stand["x"], lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step
    )
    n = stand["x"].shape[0]
    _check_rows_common(kernel, dev, host_rows, n, stand["x"].shape[1:])
    dev["rows"] = drows
    if any(dev[a].overlaps(dev[b]) for a, b in (("x", "g"), ("x", "s"), ("s", "g"))) or any(
        drows is not None and drows.overlaps(dev[a]) for a in ("x", "s")
    ):
        raise ValueError(kernels._ADAGRAD_ROWS_SHARING)
    if weight_decay != 0 and not lazy:
        raise ValueError(kernels._ADAGRAD_ROWS_WEIGHT_DECAY)
    if host_rows.size == 0 or n == 0:
        return
    groups = _RowGroups(host_rows)
    order, starts, present = groups.upload()
    x2, g2, s2 = (_as_rows_view(dev[k]) for k in ("x", "g", "s"))
    _launch(_adagrad_rows_kernel(sequential), present.size * x2.shape[1], stream,
            x2, g2, s2, order, starts, present, h)


def rmsprop_step_rows(
    x, rows, g, s, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
    momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None, *, last_step=None,
    step=None, lazy=False, duplicates="sum", stream=None,
):
    r"""One RMSProp step on the rows of a device array that a sparse gradient names:
    :func:`rmsprop_nb.kernels.rmsprop_step_rows` on the GPU.

    Same arguments, semantics (the exact mode with ``last_step``/``step`` and its
    :math:`\gamma^k` catch-up, or ``lazy=True``; duplicates summed or sequential), checks and
    messages as the CPU kernel; ``last_step`` is a device array too. Duplicates are grouped
    on the host, as in :func:`adagrad_step_rows` (same costs); the exact mode also reads back
    ``last_step`` at the rows present (``8`` bytes per distinct row) to check it, and each
    thread applies its row's catch-up to its element before the update.

    Parameters
    ----------
    x, g, s, momentum_buffer, grad_avg, last_step : device arrays
        As in the CPU kernel.
    rows : ndarray or device array of int, shape (k,)
        Row indices in ``[0, n)``.
    lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum, centered, step, lazy, duplicates
        As in :func:`rmsprop_nb.kernels.rmsprop_step_rows`.
    stream : optional, keyword-only
        The CUDA stream of the update (see :func:`rmsprop_step`).

    Returns
    -------
    None
        The arrays are updated in place.

    Raises
    ------
    TypeError, ValueError
        As the CPU kernel, with its messages; nothing is modified on error.
    RuntimeError
        No GPU (and the simulator is off).

    Examples
    --------
    >>> import numpy as np
    >>> from numba import cuda
    >>> from rmsprop_nb.cuda import (
    ...     rmsprop_catch_up, rmsprop_step_rows)
    >>> x = cuda.to_device(np.ones((3, 2)))
    >>> s = cuda.to_device(np.zeros((3, 2)))
    >>> last = cuda.to_device(np.zeros(3, np.int64))
    >>> g = cuda.to_device(np.full((1, 2), 0.5))
    >>> for t, row in enumerate([0, 1, 0], start=1):
    ...     rmsprop_step_rows(x, np.array([row]), g, s, 0.01, 0.9,
    ...                       1e-6, last_step=last, step=t)
    >>> rmsprop_catch_up(s, last, 3, 0.9)
    >>> s.copy_to_host()[:, 0]
    array([0.04525, 0.0225 , 0.     ])
    """
    kernel = "rmsprop_step_rows"
    _require_gpu()
    sequential = _sequential(kernel, duplicates)
    dev = _devices(kernel, dict(x=x, g=g, s=s, momentum_buffer=momentum_buffer,
                                grad_avg=grad_avg, last_step=last_step))
    host_rows, drows = _host_rows(kernel, rows)
    stand = {k: None if d is None else d.stand_in for k, d in dev.items()}
    kernels._RMSPROP_ROWS_ARGS.check(dict(
        stand, rows=host_rows, lr=lr, gamma=gamma, eps=eps, eps_in_sqrt=eps_in_sqrt,
        weight_decay=weight_decay, maximize=maximize, momentum=momentum, centered=centered,
        step=step, lazy=lazy,
    ))
    h = _math._rmsprop_hyper.py_func(
        kernel, stand["x"], lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum
    )
    n = stand["x"].shape[0]
    _check_rows_common(kernel, dev, host_rows, n, stand["x"].shape[1:])
    dev["rows"] = drows
    if any(dev[a].overlaps(dev[b]) for a, b in (("x", "g"), ("x", "s"), ("s", "g"))) or any(
        drows is not None and drows.overlaps(dev[a]) for a in ("x", "s")
    ):
        raise ValueError(kernels._RMSPROP_ROWS_SHARING)
    if centered and grad_avg is None:
        raise ValueError("rmsprop_step_rows: centered=True needs a grad_avg array")
    if grad_avg is not None and not centered:
        raise ValueError("rmsprop_step_rows: grad_avg is given but centered is False")
    groups = _RowGroups(host_rows)
    missed = None
    if lazy:
        if momentum != 0 and momentum_buffer is None:
            raise ValueError("rmsprop_step_rows: momentum > 0 needs a momentum_buffer array")
        if last_step is not None or step is not None:
            raise ValueError(kernels._RMSPROP_ROWS_LAZY_STEPS)
    else:
        if momentum != 0 or momentum_buffer is not None:
            raise ValueError(kernels._RMSPROP_ROWS_MOMENTUM)
        if weight_decay != 0:
            raise ValueError(kernels._RMSPROP_ROWS_WEIGHT_DECAY)
        if last_step is None or step is None:
            raise ValueError(kernels._RMSPROP_ROWS_NEEDS_STEPS)
        if stand["last_step"].shape[0] != n:
            raise _validation.RowCount(kernel, "last_step", stand["last_step"].shape, "x", n)
        if step < 1:
            raise _validation.OutOfRange(kernel, "step", step, ">= 1 (the first step is 1)")
        last = _gather_last_steps(dev["last_step"].view(), groups) if groups.rows.size else \
            np.zeros(0, np.int64)
        stale = groups.rows[last >= step]
        if stale.size:
            j = int(np.flatnonzero(np.isin(host_rows, stale))[0])
            r = int(host_rows[j])
            raise _validation.StaleStep(kernel, r, int(last[groups.rows == r][0]), step, True)
        missed = step - 1 - last
    state = ("momentum_buffer", "grad_avg")
    if any(dev[a] is not None and dev[a].overlaps(dev[b]) for a in state
           for b in ("x", "s", "g", *state) if a != b):
        raise ValueError(kernels._RMSPROP_ROWS_STATE_SHARING)
    if dev["last_step"] is not None and any(
        dev["last_step"].overlaps(dev[b]) for b in ("rows", "x", "g", "s")
    ) or drows is not None and any(drows.overlaps(dev[b]) for b in state):
        raise ValueError(kernels._RMSPROP_ROWS_STEPS_SHARING)
    if host_rows.size == 0 or n == 0:
        return
    order, starts, present = groups.upload()
    x2, g2, s2 = (_as_rows_view(dev[k]) for k in ("x", "g", "s"))
    buf2 = x2 if momentum_buffer is None else _as_rows_view(dev["momentum_buffer"])
    gavg2 = x2 if grad_avg is None else _as_rows_view(dev["grad_avg"])
    exact = not lazy
    rmsprop_kernel = _rmsprop_rows_kernel(momentum_buffer is not None, grad_avg is not None,
                                          exact, sequential)
    _launch(rmsprop_kernel, present.size * x2.shape[1], stream,
            x2, g2, s2, buf2, gavg2, order, starts, present,
            cuda.to_device(missed) if exact else present,
            dev["last_step"].view() if exact else present, np.int64(step if exact else 0), h)


def rmsprop_catch_up(s, last_step, step, gamma, *, grad_avg=None, stream=None):
    r"""Bring every row of an exact-mode RMSProp state on the GPU up to date as of ``step``:
    :func:`rmsprop_nb.kernels.rmsprop_catch_up` for device arrays.

    Same arguments, formula, checks and messages as the CPU function. The check that no row
    is after ``step`` runs on the GPU and waits for it (one integer comes back); then one
    launch brings every element forward (one thread per element, each computing its row's
    :math:`\gamma^k`) and a second records ``step`` in ``last_step``.

    Parameters
    ----------
    s, last_step, grad_avg : device arrays
        As in the CPU function (``grad_avg`` keyword-only).
    step, gamma
        As in the CPU function.
    stream : optional, keyword-only
        The CUDA stream of the two launches.

    Returns
    -------
    None
        The arrays are updated in place.

    Raises
    ------
    TypeError, ValueError
        As the CPU function, with its messages; nothing is modified on error.
    RuntimeError
        No GPU (and the simulator is off).
    """
    kernel = "rmsprop_catch_up"
    _require_gpu()
    dev = _devices(kernel, dict(s=s, last_step=last_step, grad_avg=grad_avg))
    stand = {k: None if d is None else d.stand_in for k, d in dev.items()}
    kernels._CATCH_UP_ARGS.check(dict(stand, step=step, gamma=gamma))
    h = _math._rmsprop_hyper.py_func(kernel, stand["s"], 0.0, gamma, 0.0, True, 0.0, False, 0.0)
    n = stand["s"].shape[0]
    if stand["last_step"].shape[0] != n:
        raise _validation.RowCount(kernel, "last_step", stand["last_step"].shape, "s", n)
    if step < 0:
        raise _validation.OutOfRange(kernel, "step", step, ">= 0")
    lv = dev["last_step"].view()
    if n:
        flag = cuda.to_device(np.array([n], np.int64))
        _launch(_first_after_kernel(), n, None, lv, np.int64(step), flag)
        r = int(flag.copy_to_host()[0])
        if r < n:
            raise _validation.StaleStep(kernel, r, int(lv[r:r + 1].copy_to_host()[0]), step,
                                        False)
    if any(dev[a] is not None and dev[b] is not None and dev[a].overlaps(dev[b])
           for a, b in (("s", "grad_avg"), ("last_step", "s"), ("last_step", "grad_avg"))):
        raise ValueError(kernels._CATCH_UP_SHARING)
    if n == 0:
        return
    s2 = _as_rows_view(dev["s"])
    gavg2 = s2 if grad_avg is None else _as_rows_view(dev["grad_avg"])
    _launch(_catch_up_kernel(grad_avg is not None), s2.size, stream,
            s2, gavg2, lv, np.int64(step), h)
    _launch(_set_steps_kernel(), n, stream, lv, np.int64(step))



# --------------------------------------------------------------------------------------------
# The optimizer classes on the GPU.
# --------------------------------------------------------------------------------------------


class _DeviceOptimizer:
    """The GPU side of :class:`rmsprop_nb.RMSProp` and :class:`rmsprop_nb.AdaGrad`.

    An optimizer makes one when its params are device arrays. It checks them as the host path
    checks NumPy arrays (same messages), offers NumPy stand-ins so that the optimizer's own
    code decides which state exists and how it starts, keeps that state on the GPU, and takes
    a step as one launch per parameter after every gradient and hyperparameter is checked.
    Parameter groups add their arrays with :meth:`check` then :meth:`add`.
    """

    def __init__(self, name):
        _require_gpu()
        self._name = name
        self._params = []
        self._starts, self._ends, self._order = [], [], []
        #: Host arrays with the params' dtype, shape and strides (no data).
        self.stand_ins = []
        #: The params as Numba device arrays (views: the caller's memory, updated in place).
        self.params = []
        self._flat_params = []
        self._flat_state = {}

    def check(self, where, arrays, label):
        """Check new parameter arrays (``label(i)`` names the i-th parameter overall); return
        their NumPy stand-ins. Changes nothing."""
        first = len(self._params)
        devices = []
        for j, p in enumerate(arrays):
            d = _Device(f"{where}: {label(first + j)}", p)
            _validation.check_array(f"{where}: {label(first + j)}", d.stand_in)
            devices.append(d)
        # No two parameters may share memory: one step would update the shared part twice.
        spans = sorted((d.ptr, d.ptr + d.nbytes, i)
                       for i, d in enumerate(self._params + devices) if d.nbytes)
        for (_, a_end, ai), (b_start, _, bi) in zip(spans, spans[1:]):
            if b_start < a_end:
                ai, bi = sorted((ai, bi))
                raise ValueError(f"{where}: {label(ai)} and {label(bi)} share memory")
        self._pending = devices, spans
        return [d.stand_in for d in devices]

    def add(self, state):
        """Add the arrays of the last :meth:`check`, with their initial state ({name: [ndarray
        or None]}) copied to the GPU; return their device views and that state."""
        devices, spans = self._pending
        self._params.extend(devices)
        # Sorted and disjoint, so both columns are sorted: a bisection finds the parameters a
        # gradient overlaps.
        self._starts = [start for start, _, _ in spans]
        self._ends = [end for _, end, _ in spans]
        self._order = [i for _, _, i in spans]
        self.stand_ins.extend(d.stand_in for d in devices)
        views = [d.view() for d in devices]
        self.params.extend(views)
        self._flat_params.extend(d.flat() for d in devices)
        on_device = {k: [None if a is None else cuda.to_device(a) for a in arrays]
                     for k, arrays in state.items()}
        for k, arrays in on_device.items():
            self._flat_state.setdefault(k, []).extend(
                None if a is None else _Device(k, a).flat() for a in arrays)
        return views, on_device

    @staticmethod
    def to_host(a):
        """A NumPy copy of a state array."""
        return a.copy_to_host()

    @staticmethod
    def copy_from_host(dst, src):
        """Copy the host array ``src`` into the state array ``dst`` (same dtype and shape)."""
        order = "F" if dst.is_f_contiguous() and not dst.is_c_contiguous() else "C"
        dst.copy_to_device(np.asarray(src, order=order))

    def _first_param_overlapping(self, d):
        """The lowest index of a parameter sharing memory with the device array ``d``, or None."""
        if d.nbytes == 0:
            return None
        lo = bisect.bisect_right(self._ends, d.ptr)  # the first parameter ending after d starts
        hi = bisect.bisect_left(self._starts, d.ptr + d.nbytes)  # ... starting before d ends
        return min(self._order[lo:hi], default=None)

    def step(self, opt, grads, hyper_of):
        """A step of the optimizer ``opt`` (an RMSProp or AdaGrad) from ``grads``, with
        ``hyper_of(i, x)`` the hyperparameters of parameter ``i`` (already checked); False
        when the step is skipped (``nonfinite="skip"`` and a NaN/inf gradient). The optimizer
        has checked that ``grads`` is a list of the right length."""
        name = opt._name
        flat_grads = []
        for i, (g, p) in enumerate(zip(grads, self._params)):
            label = f"{name}.step: grads[{i}]"
            d = _Device(label, g)
            _validation.check_array(
                label, d.stand_in, like=p.stand_in, like_name=f"params[{i}]", writeable=False
            )
            j = self._first_param_overlapping(d)
            if j is not None:
                raise ValueError(f"{label} shares memory with params[{j}]")
            flat_grads.append(d.flat())
        hyper = [hyper_of(i, x) for i, x in enumerate(self.stand_ins)]
        # nonfinite="raise"/"skip": a scan of every gradient (one wait for the GPU) first.
        if opt.nonfinite != "propagate":
            bad = _first_nonfinite(flat_grads)
            if bad is not None:
                if opt.nonfinite == "raise":
                    raise FloatingPointError(
                        f"{name}.step: grads[{bad}] contains NaN or infinity; nothing was "
                        "updated (nonfinite='raise')"
                    )
                opt.skipped_steps += 1
                return False
        # Everything is checked: launch.
        st = self._flat_state
        for i, (x, g) in enumerate(zip(self._flat_params, flat_grads)):
            if name == "AdaGrad":
                _launch_adagrad(x, g, st["sum"][i], hyper[i], None)
            else:
                _launch_rmsprop(x, g, st["square_avg"][i], st["momentum_buffer"][i],
                                st["grad_avg"][i], hyper[i], None)
        return True


# The device functions' docstrings live on the dispatchers, where doctest does not look.
__test__ = {"rmsprop_update": rmsprop_update.__doc__, "adagrad_update": adagrad_update.__doc__}

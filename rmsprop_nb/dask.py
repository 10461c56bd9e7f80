r"""The optimizers over Dask arrays: parameters and state live on a Dask cluster's workers.

:class:`RMSProp` and :class:`AdaGrad` here take the hyperparameters and options of
:class:`rmsprop_nb.RMSProp` and :class:`rmsprop_nb.AdaGrad` (same names, defaults, checks and
messages) and give the same results bit for bit: every chunk is updated by the same compiled
per-element update as :func:`rmsprop_nb.kernels.rmsprop_step` and
:func:`~rmsprop_nb.kernels.adagrad_step`, and the update is element-wise, so how an array is
cut into chunks changes no bit.

How a step runs. Each parameter and its state buffers are stacked into one *packed* array of
shape ``(rows,) + param.shape`` (rows: the parameter, then the state buffers that are on),
chunked like the parameter and one chunk deep along the rows: one task per chunk reads a packed
chunk and the matching chunk of the gradient and returns the new packed chunk. The result is
persisted, so parameters and state stay on the workers; the client only sends the small graph.
A task never changes its input (Dask may run it again, or hand the same input to other tasks):
the kernel reads the old chunk and writes the new one, in one pass, into memory recycled from
the previous steps.

Works with any Dask scheduler: a ``distributed`` cluster (the point of this module), or the
threaded or synchronous scheduler of plain ``dask`` (handy in tests and doctests). ``import
rmsprop_nb`` does not import this module; ``import rmsprop_nb.dask`` needs ``dask[array]`` and,
for a cluster, ``distributed`` (``pip install "rmsprop-nb[dask]"``).
"""

from __future__ import annotations

import functools
import json
import math
import posixpath
import sys
import threading
import uuid

import dask
import dask.array as da
import fsspec
import numpy as np

from . import optimizers
from . import _loops

__all__ = ["RMSProp", "AdaGrad", "rmsprop_update", "adagrad_update", "row_block_sum"]

# The name of the first row of a packed array (the others are the state buffers' names).
_PARAM_ROW = "param"

_MANIFEST = "manifest.json"
_FORMAT = "rmsprop_nb.dask checkpoint"
_FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------
# Tasks: what runs on the workers. Plain module functions, so a worker imports this module and
# the kernels come from Numba's disk cache (a kernel passed as an argument would be rebuilt).
# --------------------------------------------------------------------------------------------


def _rmsprop_rows(src, g, dst, h):
    """RMSProp from the rows of a packed chunk (``src[0]`` the parameter, then the state) into
    the rows of ``dst``."""
    _loops._rmsprop_packed(
        src, g, dst, h["lr"], h["gamma"], h["eps"], h["eps_in_sqrt"], h["weight_decay"],
        h["maximize"], h["momentum"], -1 if h["buf_row"] is None else h["buf_row"],
        -1 if h["avg_row"] is None else h["avg_row"],
    )


def _adagrad_rows(src, g, dst, h):
    """AdaGrad from the rows of a packed chunk (the parameter, the sum) into ``dst``."""
    _loops._adagrad_packed(
        src, g, dst, h["lr"], h["eps"], h["eps_in_sqrt"], h["weight_decay"], h["maximize"],
        h["lr_decay"], h["step"],
    )


_ROWS_KERNELS = {"RMSProp": _rmsprop_rows, "AdaGrad": _adagrad_rows}


class _BufferPool:
    """Memory for the tasks' results, reused once nothing references it any more.

    A fresh array of megabytes costs a page fault per 4 KiB page, and the operating system
    zeroes each page before the task writes it: about as much time as the update itself (the
    workers' allocator gives large blocks back to the system at once). A task's result lives
    one step, so the pool hands out views of buffers it owns and takes a buffer again only
    when its reference count shows that no array, view or memoryview uses it (every view of a
    NumPy array holds a reference to the array that owns the memory). Each worker process has
    its own pool; it keeps at most one spare buffer per buffer in use, of each size.
    """

    min_bytes = 1 << 20  # smaller results come from np.empty: their pages are reused anyway

    def __init__(self):
        self._lock = threading.Lock()
        self._buffers = {}  # nbytes -> [uint8 arrays that own their memory]
        probe = [np.empty(1, np.uint8)]
        self._unused = _references(probe[0])  # counted exactly as below: held by the pool only

    def empty(self, shape, dtype):
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if nbytes < self.min_bytes:
            return np.empty(shape, dtype)
        with self._lock:
            buffers = self._buffers.setdefault(nbytes, [])
            free = [k for k in range(len(buffers)) if _references(buffers[k]) == self._unused]
            for k in reversed(free[len(buffers) - len(free) + 1 :]):  # too many spares
                del buffers[k]
            if free:
                owner = buffers[free[0]]
            else:
                owner = np.empty(nbytes, np.uint8)
                buffers.append(owner)
            return owner.view(dtype).reshape(shape)


def _references(a):
    return sys.getrefcount(a)


_POOL = _BufferPool()


def _update_block(packed, g, algorithm, h):
    """The new packed chunk, computed from ``packed`` and the gradient ``g`` into new memory
    (a task must not modify its inputs): one pass, reading the old rows, writing the new."""
    new = _POOL.empty(packed.shape, packed.dtype)
    # The kernels need C-contiguous, aligned arrays; a chunk that arrived over the network may
    # be neither.
    src = packed if packed.flags.c_contiguous and packed.flags.aligned else packed.copy()
    g = np.ascontiguousarray(g).reshape(-1)
    if not g.flags.aligned:
        g = g.copy()
    _ROWS_KERNELS[algorithm](src.reshape(src.shape[0], -1), g, new.reshape(new.shape[0], -1), h)
    return new


def _pack_block(param, *state, fills):
    """A packed chunk: the parameter chunk, then one row per state buffer (an array chunk, or
    a number to fill the row with)."""
    out = np.empty((len(fills) + 1,) + param.shape, param.dtype)
    out[0] = param
    for k, fill in enumerate(fills):
        out[k + 1] = state[fill] if isinstance(fill, int) else fill[0]
    return out


def _count_nonfinite(g):
    return np.array(np.count_nonzero(~np.isfinite(g)), dtype=np.int64).reshape((1,) * g.ndim)


def _write_block(block, url):
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    with fs.open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(block), allow_pickle=False)
    return block.nbytes


def _read_block(root, i, block_id=None, *, shape):
    """A packed chunk of parameter ``i`` from a checkpoint (``block_id``: its index)."""
    url = posixpath.join(root, str(i), _block_file(block_id[1:]))
    with fsspec.open(url, "rb") as f:
        block = np.load(f, allow_pickle=False)
    if block.shape != shape(block_id):
        raise ValueError(f"{url}: a chunk of shape {block.shape}, expected {shape(block_id)}")
    return block


def _block_file(index):
    return ".".join(map(str, index)) + ".npy" if index else "0.npy"


# --------------------------------------------------------------------------------------------
# The lazy functional core.
# --------------------------------------------------------------------------------------------


def _lazy_update(algorithm, packed, grad, hyper, name):
    """The graph of one step of one packed array (one task per chunk)."""
    axes = tuple(range(packed.ndim))
    return da.blockwise(
        _update_block, axes, packed, axes, grad, axes[1:], algorithm=algorithm, h=hyper,
        name=name, dtype=packed.dtype, align_arrays=False, concatenate=False,
        meta=np.empty((0,) * packed.ndim, packed.dtype),
    )


def rmsprop_update(
    packed, grad, *, lr=0.01, gamma=0.9, eps=1e-6, eps_in_sqrt=True, momentum=0.0,
    centered=False, weight_decay=0.0, maximize=False,
):
    r"""One RMSProp step of a packed Dask array, lazily: returns the new packed array.

    The functional core of :class:`RMSProp`, for loops of your own. ``packed`` holds the
    parameter and its state stacked along a new first axis, one chunk deep along it:
    ``packed[0]`` the parameter :math:`x`, ``packed[1]`` the average :math:`s` of squared
    gradients, then the momentum buffer :math:`b` (when ``momentum > 0``) and the gradient
    average :math:`\bar g` (when ``centered``), in that order. Element-wise, as in
    :class:`rmsprop_nb.RMSProp`:

    .. math::

        s &\leftarrow \gamma s + (1 - \gamma)\, g^2 \\
        x &\leftarrow x - \eta\, \frac{g}{\sqrt{s + \epsilon}}
        \quad\text{or}\quad x - \eta\, \frac{g}{\sqrt{s} + \epsilon}
        \ (\mathtt{eps\_in\_sqrt{=}False})

    Nothing runs until you compute or persist the result; each chunk becomes one task, which
    reads its chunk and writes the updated one with the kernels' per-element update.

    Parameters
    ----------
    packed : dask.array.Array
        Shape ``(rows,) + shape``, float32 or float64, one chunk along the first axis. Build it
        with ``dask.array.stack([x, s, ...]).rechunk({0: -1})``.
    grad : dask.array.Array
        The gradient, of shape ``shape`` and the dtype of ``packed``, chunked like
        ``packed[0]``.
    lr, gamma, eps, eps_in_sqrt, momentum, centered, weight_decay, maximize
        As in :class:`rmsprop_nb.RMSProp`; here they are only checked by the kernels, when
        the tasks run (:class:`RMSProp` checks them before any task runs).

    Returns
    -------
    dask.array.Array
        The packed array after the step, with the chunks of ``packed``.

    Raises
    ------
    ValueError
        ``packed`` has fewer than two rows, more than one chunk along them, a number of rows
        that does not fit ``momentum`` and ``centered``, or chunks that differ from ``grad``'s.
    TypeError
        Not Dask arrays, or dtypes that differ.

    See Also
    --------
    adagrad_update, RMSProp

    Examples
    --------
    >>> import dask, dask.array as da, numpy as np
    >>> from rmsprop_nb.dask import rmsprop_update
    >>> x = da.from_array(np.array([-5.0, -2.0]), chunks=1)
    >>> packed = da.stack([x, da.zeros_like(x)]).rechunk({0: -1})
    >>> with dask.config.set(scheduler="synchronous"):
    ...     for _ in range(20):
    ...         # the gradient of 0.1 x1^2 + 2 x2^2
    ...         g = packed[0] * np.array([0.2, 4.0])
    ...         packed = rmsprop_update(
    ...             packed, g, lr=0.4, gamma=0.9).persist()
    ...     x1, x2 = packed[0].compute()
    >>> print(f"x1 {x1:f}, x2 {x2:f}")
    x1 -0.010599, x2 0.000000
    """
    rows = 2 + (momentum > 0) + bool(centered)
    _check_packed("rmsprop_update", packed, grad, rows)
    hyper = dict(
        lr=lr, gamma=gamma, eps=eps, eps_in_sqrt=eps_in_sqrt, weight_decay=weight_decay,
        maximize=maximize, momentum=momentum, centered=centered,
        buf_row=2 if momentum > 0 else None, avg_row=rows - 1 if centered else None,
    )
    name = "rmsprop-update-" + dask.base.tokenize(packed, grad, hyper)
    return _lazy_update("RMSProp", packed, grad, hyper, name)


def adagrad_update(
    packed, grad, *, step, lr=0.01, eps=1e-6, eps_in_sqrt=True, lr_decay=0.0,
    weight_decay=0.0, maximize=False,
):
    r"""One AdaGrad step of a packed Dask array, lazily: returns the new packed array.

    The functional core of :class:`AdaGrad`. ``packed[0]`` is the parameter :math:`x` and
    ``packed[1]`` the sum :math:`s` of squared gradients (start it at
    ``initial_accumulator_value``), stacked along a new first axis, one chunk deep along it.
    Element-wise, as in :class:`rmsprop_nb.AdaGrad`, for step :math:`t` = ``step``:

    .. math::

        s &\leftarrow s + g^2, \qquad \eta_t = \frac{\eta}{1 + (t - 1)\,\delta} \\
        x &\leftarrow x - \eta_t\, \frac{g}{\sqrt{s + \epsilon}}
        \quad\text{or}\quad x - \eta_t\, \frac{g}{\sqrt{s} + \epsilon}
        \ (\mathtt{eps\_in\_sqrt{=}False})

    Parameters
    ----------
    packed : dask.array.Array
        Shape ``(2,) + shape``, float32 or float64, one chunk along the first axis.
    grad : dask.array.Array
        The gradient, of shape ``shape`` and the dtype of ``packed``, chunked like
        ``packed[0]``.
    step : int
        The number :math:`t \ge 1` of this step (the first is 1); only ``lr_decay`` uses it.
    lr, eps, eps_in_sqrt, lr_decay, weight_decay, maximize
        As in :class:`rmsprop_nb.AdaGrad`, checked by the kernels when the tasks run.

    Returns
    -------
    dask.array.Array
        The packed array after the step, with the chunks of ``packed``.

    Raises
    ------
    ValueError
        ``packed`` does not have exactly two rows in one chunk, or its chunks differ from
        ``grad``'s.
    TypeError
        Not Dask arrays, or dtypes that differ.

    See Also
    --------
    rmsprop_update, AdaGrad

    Examples
    --------
    >>> import dask, dask.array as da, numpy as np
    >>> from rmsprop_nb.dask import adagrad_update
    >>> x = da.from_array(np.array([-5.0, -2.0]), chunks=1)
    >>> packed = da.stack([x, da.zeros_like(x)]).rechunk({0: -1})
    >>> with dask.config.set(scheduler="synchronous"):
    ...     for t in range(1, 21):
    ...         g = packed[0] * np.array([0.2, 4.0])
    ...         packed = adagrad_update(
    ...             packed, g, step=t, lr=0.4).persist()
    ...     x1, x2 = packed[0].compute()
    >>> print(f"x1 {x1:f}, x2 {x2:f}")
    x1 -2.382563, x2 -0.158591
    """
    _check_packed("adagrad_update", packed, grad, 2)
    hyper = dict(
        lr=lr, eps=eps, eps_in_sqrt=eps_in_sqrt, weight_decay=weight_decay, maximize=maximize,
        lr_decay=lr_decay, step=step,
    )
    name = "adagrad-update-" + dask.base.tokenize(packed, grad, hyper)
    return _lazy_update("AdaGrad", packed, grad, hyper, name)


def _check_packed(who, packed, grad, rows):
    for label, a in (("packed", packed), ("grad", grad)):
        if not isinstance(a, da.Array):
            raise TypeError(f"{who}: {label} must be a dask.array.Array, got {type(a).__name__}")
    if packed.dtype != grad.dtype:
        raise TypeError(f"{who}: grad has dtype {grad.dtype} but packed has dtype {packed.dtype}")
    if packed.ndim != grad.ndim + 1 or packed.shape[0] != rows or len(packed.chunks[0]) != 1:
        raise ValueError(
            f"{who}: packed must have shape ({rows},) + grad.shape in one chunk along its first "
            f"axis (the parameter and its state rows); got shape {packed.shape} with chunks "
            f"{packed.chunks[0]} along the first axis for grad of shape {grad.shape}"
        )
    if packed.chunks[1:] != grad.chunks:
        raise ValueError(
            f"{who}: grad has chunks {grad.chunks} but packed[0] has chunks {packed.chunks[1:]}; "
            "rechunk grad like packed[0]"
        )


# --------------------------------------------------------------------------------------------
# Data-parallel gradients.
# --------------------------------------------------------------------------------------------


def _block_term(fn, X, y, w):
    # Fresh copies: blocks that arrived over the network can be misaligned, and BLAS may then
    # sum in another order (other last bits).
    return np.asarray(fn(np.array(X, order="C"), np.array(y, order="C"), np.array(w)))


def _fold(w, *terms):
    total = np.array(terms[0], dtype=w.dtype)
    for term in terms[1:]:
        total += term
    return total


def row_block_sum(fn, X, y, w):
    r"""Sum ``fn(X_block, y_block, w)`` over the row blocks of ``X``, in block order.

    The data-parallel gradient of a loss that is a sum over examples,

    .. math::

        \nabla L(w) = \sum_{b=1}^{B} \sum_{i \in \text{block } b} \nabla \ell(x_i, y_i; w),

    computed where the data lives: one task per row block evaluates ``fn`` on that block
    (the inner sum), and one task adds the ``B`` results from block 1 to block ``B``. Floating
    point addition is not associative, so a sum in the order the results arrive (or a
    reduction tree that depends on timing) could differ in the last bits from run to run; this
    order is fixed, and each block is copied into fresh, aligned memory before ``fn`` sees it,
    so two runs give the same bits whatever the workers, their timing or their number.

    Parameters
    ----------
    fn : callable
        ``fn(X_block, y_block, w) -> ndarray`` of ``w``'s shape: the sum of the per-example
        gradients over the block (not the mean). It runs on the workers (it must be
        picklable, e.g. a module-level function or one defined in your script).
    X : dask.array.Array
        The features, shape ``(n, ...)``, chunked along the rows (other axes are joined).
    y : dask.array.Array
        The targets, ``n`` rows, chunked like the rows of ``X`` (rechunked if not).
    w : dask.array.Array or ndarray
        The parameters, sent whole to every block's task.

    Returns
    -------
    dask.array.Array
        The sum, lazily, one chunk, with ``w``'s shape and dtype.

    Raises
    ------
    ValueError
        ``X`` and ``y`` differ in their number of rows, or have unknown chunk sizes.
    TypeError
        ``X`` or ``y`` is not a Dask array.

    Examples
    --------
    The gradient of the least-squares loss :math:`\tfrac12 \lVert Xw - y \rVert^2`:

    >>> import dask, dask.array as da, numpy as np
    >>> from rmsprop_nb.dask import row_block_sum
    >>> def grad(Xb, yb, w):
    ...     return Xb.T @ (Xb @ w - yb)
    >>> X = da.from_array(np.arange(12.0).reshape(6, 2),
    ...                   chunks=(2, 2))  # 3 row blocks
    >>> y = da.ones(6, chunks=2)
    >>> w = np.array([0.5, -0.25])
    >>> with dask.config.set(scheduler="synchronous"):
    ...     g = row_block_sum(grad, X, y, w).compute()
    >>> g
    array([17.5, 17.5])
    >>> Xn, yn = X.compute(), y.compute()
    >>> np.array_equal(g, Xn.T @ (Xn @ w - yn))
    True
    """
    for label, a in (("X", X), ("y", y)):
        if not isinstance(a, da.Array):
            raise TypeError(
                f"row_block_sum: {label} must be a dask.array.Array, got {type(a).__name__}"
            )
        if _unknown_chunks(a):
            raise ValueError(f"row_block_sum: {label} has unknown chunk sizes")
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"row_block_sum: X has {X.shape[0]} rows but y has {y.shape[0]}"
        )
    X = X.rechunk({k: -1 for k in range(1, X.ndim)})
    y = y.rechunk((X.chunks[0],) + tuple((n,) for n in y.shape[1:]))
    w_like = np.empty(0, getattr(w, "dtype", np.float64))
    whole = dask.delayed(w) if isinstance(w, da.Array) else w
    terms = [
        dask.delayed(_block_term, pure=True)(fn, xb, yb, whole)
        for xb, yb in zip(X.to_delayed().ravel(), y.to_delayed().ravel())
    ]
    total = dask.delayed(_fold, pure=True)(w_like, *terms)
    return da.from_delayed(total, shape=w.shape, dtype=w_like.dtype)


# --------------------------------------------------------------------------------------------
# The optimizers.
# --------------------------------------------------------------------------------------------


class _BlockShape:
    """The shape of a chunk from its index (a picklable callable for the read tasks)."""

    def __init__(self, chunks):
        self.chunks = chunks

    def __call__(self, block_id):
        return tuple(c[k] for c, k in zip(self.chunks, block_id))


def _delegate(name):
    """A hyperparameter attribute that lives on the twin (checked at the next step)."""

    def get(self):
        return getattr(self._twin, name)

    def set(self, value):
        setattr(self._twin, name, value)

    return property(get, set, doc=f"The hyperparameter ``{name}`` (see the class docstring).")


def _exclusive(method):
    """Run ``method`` only if no other thread is using the optimizer (RuntimeError if one is),
    as the single-process optimizers do."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self._busy.acquire(False):
            raise RuntimeError(
                f"{self._name}.{method.__name__}: this optimizer is being used by another "
                "thread; an optimizer may be used by one thread at a time"
            )
        try:
            return method(self, *args, **kwargs)
        finally:
            self._busy.release()

    return wrapper


class _DaskOptimizer:
    """What RMSProp and AdaGrad over Dask arrays share."""

    _name = ""
    _local = None  # the single-process class

    def __init__(self, params, hyper, nonfinite, checkpoint_every, checkpoint_dir):
        # The single-process optimizer over one element: its rules check the hyperparameters
        # (the same checks and messages, at construction and before every step), and its state
        # tells which buffers are on and what they start at.
        self._twin = self._local([np.zeros(1)], **hyper, nonfinite=nonfinite)
        self._rows = (_PARAM_ROW,) + tuple(self._twin.state_dict()["state"])
        start = {k: float(v[0][0]) for k, v in self._twin.state_dict()["state"].items()}
        params = _check_params(self._name, params)
        _check_checkpointing(self._name, checkpoint_every, checkpoint_dir)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_dir = checkpoint_dir
        self.step_count = 0
        self.skipped_steps = 0
        self._token = uuid.uuid4().hex[:12]  # task names of two optimizers never collide
        self._busy = threading.RLock()  # held by the thread using the optimizer (see _exclusive)
        fills = tuple((start[r],) for r in self._rows[1:])
        self._set_packed([self._pack(p, (), fills, "init") for p in params])

    # -- hyperparameters: the twin's -----------------------------------------------------------

    def _hyperparams(self):
        """The hyperparameters in use (the twin's one group; a checkpoint keeps these)."""
        return {k: v for k, v in self._twin.state_dict()["param_groups"][0].items()
                if k not in ("params", "step")}

    @property
    def nonfinite(self):
        """What :meth:`step` does with NaN/inf gradients: "propagate", "raise" or "skip"."""
        return self._twin.nonfinite

    @nonfinite.setter
    def nonfinite(self, value):
        self._twin.nonfinite = value

    # -- parameters and packed arrays ------------------------------------------------------

    @property
    def params(self):
        """The current parameters: a list of Dask arrays, views of the persisted packed arrays
        (one small task per chunk when used). A new list after every step."""
        return list(self._params)

    @property
    def packed(self):
        """The persisted packed arrays, one per parameter: ``packed[i][0]`` is parameter ``i``,
        the next rows its state buffers (in the order of :meth:`state_dict`)."""
        return list(self._packed)

    def _set_packed(self, packed):
        self._packed = list(dask.persist(*packed))
        self._params = [p[0] for p in self._packed]

    def _pack(self, param, state, fills, label):
        """A packed array (lazy) from a parameter and its state (``fills``: per state row, the
        index of its array in ``state`` or a 1-tuple with the number to fill it with)."""
        axes = tuple(range(1, param.ndim + 1))
        args = [param, axes]
        for s in state:
            args += [s, axes]
        name = f"{self._name.lower()}-{label}-{self._token}-" + dask.base.tokenize(
            param, *state, fills
        )
        return da.blockwise(
            _pack_block, (0,) + axes, *args, fills=fills, new_axes={0: len(fills) + 1},
            name=name, dtype=param.dtype, align_arrays=False, concatenate=False,
            meta=np.empty((0,) * (param.ndim + 1), param.dtype),
        )

    # -- step ------------------------------------------------------------------------------

    @_exclusive
    def step(self, grads):
        """Update every parameter and its state from its gradient (lazily; persisted).

        Every check runs before any task: the number of gradients, their types, dtypes and
        shapes, and the hyperparameters (with the messages of the single-process optimizer).
        Returns as soon as the graph is submitted: the tasks run on the workers while the next
        step is being built. With ``checkpoint_every=K``, every K-th step waits for its result
        and writes a checkpoint (see the class docstring).

        Parameters
        ----------
        grads : sequence of dask.array.Array or ndarray
            One gradient per parameter, in the order of ``params``, with the parameter's shape
            and dtype. Dask arrays are rechunked like the parameter when their chunks differ;
            NumPy arrays are cut into the parameter's chunks and sent with the graph.

        Raises
        ------
        ValueError, TypeError
            A wrong number of gradients, a gradient that does not match its parameter (shape,
            dtype, or unknown chunk sizes that cannot be aligned), or a hyperparameter out of
            range. No task runs then, and nothing changes.
        FloatingPointError
            With ``nonfinite="raise"``, a gradient holding NaN or inf (nothing changes).
        """
        name = f"{self._name}.step"
        if isinstance(grads, (np.ndarray, da.Array)):
            raise TypeError(
                f"{name}: grads must be a list with one gradient per parameter, got an array; "
                "for a single parameter write step([g])"
            )
        if isinstance(grads, (str, bytes)) or not hasattr(grads, "__iter__"):
            raise TypeError(
                f"{name}: grads must be a list with one gradient per parameter, got "
                f"{type(grads).__name__}"
            )
        grads = list(grads)
        if len(grads) != len(self._packed):
            raise ValueError(
                f"{name}: grads must hold one gradient per parameter: expected "
                f"{len(self._packed)}, got {len(grads)}"
            )
        grads = [
            _as_dask(f"{name}: grads[{i}]", g, p, f"params[{i}]")
            for i, (g, p) in enumerate(zip(grads, self._params))
        ]
        # The single-process optimizer checks the hyperparameters as they are now (they may
        # have been changed since the last step): a step of the twin, with a zero gradient.
        self._twin.step([np.zeros(1)])
        if self.nonfinite != "propagate" and self._skip_nonfinite(grads):
            return
        t = self.step_count + 1
        hyper = self._task_hyperparams(t)
        new = [
            _lazy_update(
                self._name, p, g, hyper,
                f"{self._name.lower()}-step-{self._token}-{t}-{i}-"
                + dask.base.tokenize(p, g, hyper),
            )
            for i, (p, g) in enumerate(zip(self._packed, grads))
        ]
        self._set_packed(new)
        self.step_count = t
        if self.checkpoint_every and t % self.checkpoint_every == 0:
            self._checkpoint()

    def _skip_nonfinite(self, grads):
        """nonfinite="raise"/"skip": one reduction over all gradients, before any update."""
        counts = [
            g.map_blocks(_count_nonfinite, dtype=np.int64, chunks=(1,) * g.ndim).sum()
            for g in grads
        ]
        counts = dask.compute(*counts)
        bad = next((i for i, c in enumerate(counts) if c), None)
        if bad is None:
            return False
        if self.nonfinite == "raise":
            raise FloatingPointError(
                f"{self._name}.step: grads[{bad}] contains NaN or infinity; nothing was "
                "updated (nonfinite='raise')"
            )
        self.skipped_steps += 1
        return True

    # -- state -----------------------------------------------------------------------------

    @_exclusive
    def state_dict(self):
        """Return the optimizer state as plain Python numbers and NumPy arrays.

        The format of :meth:`rmsprop_nb.RMSProp.state_dict`: a state saved here loads into the
        single-process optimizer and the other way round. The state buffers are gathered to
        the client (one ``dask.compute``): for states larger than the client's memory, use
        :meth:`save`.

        Returns
        -------
        dict
            ``{"algorithm": str, "step": int, "skipped_steps": int, "hyperparams": dict,
            "state": {name: [ndarray, ...]}}``, one array per parameter for each state buffer
            that is on.
        """
        names = self._rows[1:]
        arrays = dask.compute(*[p[k + 1] for p in self._packed for k in range(len(names))])
        arrays = [np.array(a, copy=True, order="C") for a in arrays]
        hyper = self._hyperparams()
        return {
            "algorithm": self._name,
            "step": self.step_count,
            "skipped_steps": self.skipped_steps,
            "hyperparams": self._twin.state_dict()["hyperparams"],  # the constructor's
            # One group (the single-process format, where groups may be several).
            "param_groups": [{"params": list(range(len(self._packed))),
                              "step": self.step_count, **hyper}],
            "state": {
                name: arrays[k :: len(names)] for k, name in enumerate(names)
            },
        }

    @_exclusive
    def load_state_dict(self, state_dict):
        """Restore a state saved by :meth:`state_dict` (here or by the single-process class).

        The parameters are kept; the state buffers, step counts and hyperparameters are
        replaced, after every check of :meth:`rmsprop_nb.RMSProp.load_state_dict` (same
        messages). The state arrays may be NumPy or Dask arrays; they are cut into the
        parameters' chunks. The next step continues bit for bit.

        Parameters
        ----------
        state_dict : dict
            As returned by :meth:`state_dict`.

        Raises
        ------
        ValueError, TypeError
            When the state does not fit this optimizer; the optimizer is then unchanged.
        """
        twin = self._validate_state(state_dict)
        saved = state_dict["state"]
        arrays = [
            [_as_dask(f"{r}[{i}]", saved[r][i], p, f"params[{i}]") for r in self._rows[1:]]
            for i, p in enumerate(self._params)
        ]
        fills = tuple(range(len(self._rows) - 1))
        self._set_packed(
            [self._pack(p, s, fills, "load") for p, s in zip(self._params, arrays)]
        )
        self._commit(twin, state_dict)

    def _validate_state(self, state_dict):
        """Check a state dict as the single-process optimizer does; return the twin that holds
        its hyperparameters (this optimizer is not changed)."""
        name = self._name
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"{name}.load_state_dict: expected a dict, got {type(state_dict).__name__}"
            )
        saved = state_dict.get("state")
        if saved is not None and not isinstance(saved, dict):
            raise TypeError(f"{name}.load_state_dict: state must be a dict of lists of arrays")
        # A new twin with this optimizer's buffers checks everything but the arrays (it holds
        # one-element arrays); the current twin is kept if anything is wrong.
        twin = self._local([np.zeros(1)], **self._structure())
        twin.nonfinite = self.nonfinite
        stand_in = dict(state_dict)
        if saved is not None:
            stand_in["state"] = {k: [np.zeros(1)] for k in saved}
        groups = state_dict.get("param_groups")
        if groups is not None:  # one group holding every parameter: the twin's one element
            everything = list(range(len(self._params)))
            if (not isinstance(groups, (list, tuple)) or len(groups) != 1
                    or not isinstance(groups[0], dict)
                    or list(groups[0].get("params", ())) != everything):
                raise ValueError(
                    f"{name}.load_state_dict: the state must have one parameter group holding "
                    f"every parameter ({everything}); rmsprop_nb.dask optimizers have one group"
                )
            stand_in["param_groups"] = [dict(groups[0], params=[0])]
        twin.load_state_dict(stand_in)
        for key, arrays in saved.items():
            if len(arrays) != len(self._params):
                raise ValueError(
                    f"{name}.load_state_dict: {key} has {len(arrays)} arrays for "
                    f"{len(self._params)} parameters"
                )
            for i, (a, p) in enumerate(zip(arrays, self._params)):
                if not isinstance(a, (np.ndarray, da.Array)):
                    raise TypeError(
                        f"{name}.load_state_dict: {key}[{i}] must be a numpy.ndarray or a "
                        "dask array"
                    )
                if a.dtype != p.dtype or a.shape != p.shape:
                    raise ValueError(
                        f"{name}.load_state_dict: {key}[{i}] has dtype {a.dtype} and shape "
                        f"{a.shape}; parameter {i} has dtype {p.dtype} and shape {p.shape}"
                    )
                if isinstance(a, da.Array) and _unknown_chunks(a):
                    raise ValueError(f"{name}.load_state_dict: {key}[{i}] has unknown chunk sizes")
        return twin

    def _commit(self, twin, state_dict):
        self._twin = twin
        self.step_count = int(state_dict["step"])
        self.skipped_steps = int(state_dict.get("skipped_steps", 0))

    # -- checkpoints -----------------------------------------------------------------------

    @_exclusive
    def save(self, path):
        """Write parameters and state to the checkpoint folder ``path``, chunk by chunk.

        Unlike the single-process :meth:`rmsprop_nb.RMSProp.save` (one ``.npz`` of the state),
        this saves the parameters too, since the optimizer holds them: each worker writes its
        chunks of the packed arrays as ``.npy`` files (``path/I/J.K.npy``: parameter ``I``,
        chunk ``(J, K)``), then the client writes ``path/manifest.json`` (format version,
        algorithm, step counts, hyperparameters, rows, shapes, dtypes and chunks). A folder
        without a manifest is not a checkpoint, so an interrupted save never passes for one.
        The optimizer then continues from the files it wrote: the scheduler forgets the
        history of every chunk, which bounds its memory and what a lost worker costs.

        Parameters
        ----------
        path : str or os.PathLike
            A folder, or any URL ``fsspec`` writes to (``s3://...``, ``gcs://...``, with its
            package installed); every worker must reach it.

        Returns
        -------
        str
            The checkpoint's location, as given.
        """
        path = str(path)
        fs, root = fsspec.core.url_to_fs(path)
        writes = []
        for i, p in enumerate(self._packed):
            for index, block in zip(np.ndindex(p.numblocks), p.to_delayed().ravel()):
                url = posixpath.join(path, str(i), _block_file(index[1:]))
                writes.append(dask.delayed(_write_block, pure=False)(block, url))
        dask.compute(*writes)
        manifest = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "algorithm": self._name,
            "step": self.step_count,
            "skipped_steps": self.skipped_steps,
            "hyperparams": self._hyperparams(),
            "rows": list(self._rows),
            "arrays": [
                {"shape": list(p.shape[1:]), "dtype": str(p.dtype),
                 "chunks": [list(c) for c in p.chunks[1:]]}
                for p in self._packed
            ],
        }
        fs.makedirs(root, exist_ok=True)
        tmp = posixpath.join(root, f".{_MANIFEST}.{uuid.uuid4().hex}.tmp")
        with fs.open(tmp, "w") as f:
            json.dump(manifest, f, indent=1)
        fs.mv(tmp, posixpath.join(root, _MANIFEST))  # a rename: atomic on a local disk
        self._set_packed(self._read(path, manifest))
        return path

    @_exclusive
    def load(self, path):
        """Restore parameters and state from a checkpoint written by :meth:`save`.

        ``path`` is a checkpoint folder, or a ``checkpoint_dir`` of periodic checkpoints (the
        latest complete one is loaded). Everything is checked first (format, algorithm, state
        buffers, number, shapes and dtypes of the arrays, hyperparameters); on a mismatch
        nothing changes. Chunks that differ from the parameters' are rechunked. The next step
        continues bit for bit.

        Returns
        -------
        str
            The checkpoint folder that was loaded.

        Raises
        ------
        FileNotFoundError
            No checkpoint at ``path``.
        ValueError, TypeError
            A checkpoint that does not fit this optimizer.
        """
        path = _latest_checkpoint(str(path))
        who = f"{self._name}.load"
        fs, root = fsspec.core.url_to_fs(path)
        with fs.open(posixpath.join(root, _MANIFEST), "r") as f:
            manifest = json.load(f)
        if manifest.get("format") != _FORMAT or manifest.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"{who}: {path!r} is not a version {_FORMAT_VERSION} {_FORMAT}")
        shapes = [(tuple(a["shape"]), np.dtype(a["dtype"])) for a in manifest["arrays"]]
        # The state-dict checks, with stand-ins of the right shapes for the arrays.
        stand_in = {
            **manifest,
            "state": {
                r: [da.empty(s, dtype=d, chunks=-1) for s, d in shapes]
                for r in manifest["rows"][1:]
            },
        }
        mine = [(tuple(p.shape), p.dtype) for p in self._params]
        if shapes != mine:
            raise ValueError(
                f"{who}: {path!r} holds parameters of shapes and dtypes {shapes}; this optimizer "
                f"has {mine}"
            )
        try:
            twin = self._validate_state(stand_in)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{who}: {path!r} does not fit: {exc}") from exc
        packed = self._read(path, manifest)
        packed = [
            p if p.chunks[1:] == q.chunks else p.rechunk(((p.shape[0],),) + q.chunks)
            for p, q in zip(packed, self._params)
        ]
        self._set_packed(packed)
        self._commit(twin, manifest)
        return path

    def _read(self, path, manifest):
        """Lazy packed arrays that read a checkpoint's chunks (no history before them)."""
        rows = len(manifest["rows"])
        arrays = []
        for i, a in enumerate(manifest["arrays"]):
            chunks = ((rows,),) + tuple(tuple(c) for c in a["chunks"])
            dtype = np.dtype(a["dtype"])
            arrays.append(da.map_blocks(
                _read_block, path, i, shape=_BlockShape(chunks), chunks=chunks, dtype=dtype,
                meta=np.empty((0,) * len(chunks), dtype),
                name=f"{self._name.lower()}-read-{self._token}-{i}-{uuid.uuid4().hex}",
            ))
        return arrays

    def _checkpoint(self):
        """The periodic checkpoint (``checkpoint_every``): save, then delete the other ones."""
        fs, root = fsspec.core.url_to_fs(str(self.checkpoint_dir))
        folder = f"step-{self.step_count:09d}"
        if fs.exists(posixpath.join(root, folder)):  # left by an interrupted run
            fs.rm(posixpath.join(root, folder), recursive=True)
        self.save(posixpath.join(str(self.checkpoint_dir), folder))
        for old in _checkpoint_folders(fs, root, complete=False):
            if posixpath.basename(old.rstrip("/")) != folder:
                fs.rm(old, recursive=True)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyperparams().items())
        return f"rmsprop_nb.dask.{self._name}(<{len(self._packed)} arrays>, {args})"


_SHARED_PARAMETERS = r"""nonfinite : {"propagate", "raise", "skip"}, default "propagate"
        As in the single-process class. "raise" and "skip" cost one reduction per step
        before the update: a pass over every gradient chunk and a round trip to the client,
        which waits for it (the default costs nothing and never waits).
    checkpoint_every : int or None, default None
        Every this many steps, :meth:`save` a checkpoint to ``checkpoint_dir`` (folder
        ``step-N``, N the step count, written by the workers) and continue from it; the
        previous checkpoint is then deleted. This bounds the history that the scheduler keeps
        per chunk, and so its memory and what a lost worker costs (see Notes).
    checkpoint_dir : str or None, default None
        Where the periodic checkpoints go: a folder that every worker can reach, or any URL
        that ``fsspec`` writes to (``s3://bucket/run``, with ``s3fs`` installed). Give each
        run its own: the optimizer deletes the other ``step-N`` folders in it."""


class RMSProp(_DaskOptimizer):
    r"""RMSProp (Tieleman & Hinton, 2012) over Dask arrays, parameters and state on the workers.

    The update of :class:`rmsprop_nb.RMSProp`, with the same hyperparameters, defaults,
    checks and results, bit for bit: for every element, with gradient :math:`g` (after
    ``maximize`` and ``weight_decay``),

    .. math::

        s_t &= \gamma\, s_{t-1} + (1 - \gamma)\, g_t^2 \\
        x_t &= x_{t-1} - \eta\, \frac{g_t}{\sqrt{s_t + \epsilon}}
        \qquad (\mathtt{eps\_in\_sqrt{=}True},\ \text{the book})

    or :math:`x_t = x_{t-1} - \eta\, g_t / (\sqrt{s_t} + \epsilon)` with
    ``eps_in_sqrt=False`` (PyTorch); ``centered`` and ``momentum`` as in
    :class:`rmsprop_nb.RMSProp`. Each chunk is updated with the per-element update of
    :func:`rmsprop_nb.kernels.rmsprop_step` in a task on the worker that holds it.

    Parameters
    ----------
    params : list of dask.array.Array
        The initial parameters: float32 or float64, any shapes, chunked along any axes (known
        chunk sizes). They are not changed: the current parameters are ``opt.params``.
    lr, gamma, eps, eps_in_sqrt, momentum, centered, weight_decay, maximize
        As in :class:`rmsprop_nb.RMSProp`, with the same defaults (``lr=0.01, gamma=0.9,
        eps=1e-6, eps_in_sqrt=True, momentum=0.0, centered=False, weight_decay=0.0,
        maximize=False``). ``lr``, ``gamma``, ``eps``, ``momentum`` and ``weight_decay`` may
        be changed between steps.
    {shared}

    Attributes
    ----------
    params : list of dask.array.Array
        The current parameters (views of ``packed``, one small task per chunk when used).
    packed : list of dask.array.Array
        The persisted arrays of parameter and state, one per parameter, shape ``(rows,) +
        shape``: ``packed[i][0]`` is parameter ``i``, then ``square_avg``, ``momentum_buffer``
        (if ``momentum > 0`` at construction) and ``grad_avg`` (if ``centered``).
    step_count, skipped_steps : int
        Steps taken, and steps skipped by ``nonfinite="skip"``.

    Raises
    ------
    ValueError, TypeError
        Bad hyperparameters (the messages of :class:`rmsprop_nb.RMSProp`), params that are not
        float Dask arrays of known chunk sizes, or a bad ``checkpoint_every``.

    See Also
    --------
    rmsprop_nb.RMSProp : the same optimizer over NumPy arrays, in place.
    rmsprop_update : the lazy functional core, for loops of your own.

    Notes
    -----
    Per step and per chunk, one task reads the packed chunk (parameter and state, already on
    its worker) and the gradient chunk (moved there if it was computed elsewhere) and returns
    the new packed chunk; only the graph (about a hundred bytes per chunk) and, for NumPy
    gradients, their data travel from the client. :meth:`step` returns once the graph is
    submitted.

    The scheduler keeps the history of every chunk (a record per task) since
    the last checkpoint, or since the start: a chunk lost with a worker is recomputed from
    there, so a lost worker costs (chunks lost) x (steps since the checkpoint) tasks, and the
    gradients of all those steps must still be computable. ``checkpoint_every=K`` bounds both.
    Dask replaces a killed worker's processes (with a nanny, as ``LocalCluster`` and
    dask-jobqueue start them) and recomputes what it held; the results stay bit for bit.

    References
    ----------
    .. [1] T. Tieleman and G. Hinton, "Lecture 6.5 - RMSProp: Divide the gradient by a running
       average of its recent magnitude", COURSERA: Neural Networks for Machine Learning, 2012.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.6
       "RMSProp" (PyTorch edition), https://d2l.ai.
    .. [3] Dask Development Team, *Dask: Library for dynamic task scheduling*, 2016,
       https://dask.org.

    Examples
    --------
    The book's example on a two-worker cluster (in this process; a real cluster is the same
    code with another ``Client``), the parameter cut into two chunks:

    >>> import numpy as np, dask.array as da
    >>> from distributed import Client, LocalCluster
    >>> from rmsprop_nb.dask import RMSProp
    >>> cluster = LocalCluster(n_workers=2, threads_per_worker=1,
    ...                        processes=False,
    ...                        dashboard_address="127.0.0.1:0")
    >>> client = Client(cluster)
    >>> x = da.from_array(np.array([-5.0, -2.0]), chunks=1)
    >>> opt = RMSProp([x], lr=0.4, gamma=0.9)
    >>> for _ in range(20):
    ...     # the gradient of 0.1 x1^2 + 2 x2^2
    ...     opt.step([opt.params[0] * np.array([0.2, 4.0])])
    >>> x1, x2 = opt.params[0].compute()
    >>> print(f"x1 {x1:f}, x2 {x2:f}")
    x1 -0.010599, x2 0.000000

    The state moves to the single-process optimizer (and back) bit for bit:

    >>> import rmsprop_nb
    >>> local = rmsprop_nb.RMSProp([opt.params[0].compute()],
    ...                            lr=0.4)
    >>> local.load_state_dict(opt.state_dict())
    >>> local.step_count, local.gamma
    (20, 0.9)
    >>> client.close(); cluster.close()
    """

    _name = "RMSProp"
    _local = optimizers.RMSProp

    def __init__(
        self, params, lr=0.01, gamma=0.9, eps=1e-6, *, eps_in_sqrt=True, momentum=0.0,
        centered=False, weight_decay=0.0, maximize=False, nonfinite="propagate",
        checkpoint_every=None, checkpoint_dir=None,
    ):
        hyper = dict(
            lr=lr, gamma=gamma, eps=eps, eps_in_sqrt=eps_in_sqrt, momentum=momentum,
            centered=centered, weight_decay=weight_decay, maximize=maximize,
        )
        super().__init__(params, hyper, nonfinite, checkpoint_every, checkpoint_dir)

    def _structure(self):
        return dict(momentum=0.5 if "momentum_buffer" in self._rows else 0.0,
                    centered="grad_avg" in self._rows)

    lr = _delegate("lr")
    gamma = _delegate("gamma")
    eps = _delegate("eps")
    eps_in_sqrt = _delegate("eps_in_sqrt")
    momentum = _delegate("momentum")
    centered = _delegate("centered")
    weight_decay = _delegate("weight_decay")
    maximize = _delegate("maximize")

    def _task_hyperparams(self, t):
        h = {k: getattr(self._twin, k) for k in (
            "lr", "gamma", "eps", "eps_in_sqrt", "weight_decay", "maximize", "momentum",
            "centered",
        )}
        rows = self._rows
        h["buf_row"] = rows.index("momentum_buffer") if "momentum_buffer" in rows else None
        h["avg_row"] = rows.index("grad_avg") if "grad_avg" in rows else None
        return h


class AdaGrad(_DaskOptimizer):
    r"""AdaGrad (Duchi, Hazan & Singer, 2011) over Dask arrays, parameters and state on the
    workers.

    The update of :class:`rmsprop_nb.AdaGrad`, with the same hyperparameters, defaults,
    checks and results, bit for bit: for every element, with gradient :math:`g` (after
    ``maximize`` and ``weight_decay``),

    .. math::

        s_t &= s_{t-1} + g_t^2, \qquad \eta_t = \frac{\eta}{1 + (t-1)\,\delta} \\
        x_t &= x_{t-1} - \eta_t\, \frac{g_t}{\sqrt{s_t + \epsilon}}
        \qquad (\mathtt{eps\_in\_sqrt{=}True},\ \text{the book})

    or :math:`x_t = x_{t-1} - \eta_t\, g_t / (\sqrt{s_t} + \epsilon)` with
    ``eps_in_sqrt=False`` (PyTorch); :math:`s_0` is ``initial_accumulator_value``. Each chunk
    is updated with the per-element update of :func:`rmsprop_nb.kernels.adagrad_step` in a
    task on the worker that holds it.

    Parameters
    ----------
    params : list of dask.array.Array
        The initial parameters: float32 or float64, any shapes, chunked along any axes (known
        chunk sizes). They are not changed: the current parameters are ``opt.params``.
    lr, eps, eps_in_sqrt, initial_accumulator_value, lr_decay, weight_decay, maximize
        As in :class:`rmsprop_nb.AdaGrad`, with the same defaults (``lr=0.01, eps=1e-6,
        eps_in_sqrt=True, initial_accumulator_value=0.0, lr_decay=0.0, weight_decay=0.0,
        maximize=False``). ``lr``, ``eps``, ``lr_decay`` and ``weight_decay`` may be changed
        between steps.
    {shared}

    Attributes
    ----------
    params : list of dask.array.Array
        The current parameters (views of ``packed``).
    packed : list of dask.array.Array
        The persisted arrays of parameter and state, shape ``(2,) + shape``:
        ``packed[i][0]`` is parameter ``i``, ``packed[i][1]`` its ``sum``.
    step_count, skipped_steps : int
        Steps taken (:math:`t` of the last step), and steps skipped by ``nonfinite="skip"``.

    Raises
    ------
    ValueError, TypeError
        Bad hyperparameters (the messages of :class:`rmsprop_nb.AdaGrad`), params that are not
        float Dask arrays of known chunk sizes, or a bad ``checkpoint_every``.

    See Also
    --------
    rmsprop_nb.AdaGrad : the same optimizer over NumPy arrays, in place.
    adagrad_update : the lazy functional core, for loops of your own.

    Notes
    -----
    What a step sends, what the scheduler keeps and what a lost worker costs: as for
    :class:`RMSProp`.

    References
    ----------
    .. [1] J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning
       and Stochastic Optimization", Journal of Machine Learning Research 12, 2121-2159, 2011.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       "AdaGrad" (PyTorch edition), https://d2l.ai.

    Examples
    --------
    With Dask's synchronous scheduler (no cluster: every task runs in this thread), and a
    checkpoint every 10 steps:

    >>> import tempfile
    >>> import dask, numpy as np, dask.array as da
    >>> from rmsprop_nb.dask import AdaGrad
    >>> folder = tempfile.mkdtemp()
    >>> x = da.from_array(np.array([-5.0, -2.0]), chunks=1)
    >>> opt = AdaGrad([x], lr=0.4, checkpoint_every=10,
    ...               checkpoint_dir=folder)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     for _ in range(20):
    ...         opt.step([opt.params[0] * np.array([0.2, 4.0])])
    ...     x1, x2 = opt.params[0].compute()
    >>> print(f"x1 {x1:f}, x2 {x2:f}")
    x1 -2.382563, x2 -0.158591
    >>> import os; sorted(os.listdir(folder))
    ['step-000000020']

    Resume from that checkpoint (parameters, state, step count and hyperparameters):

    >>> again = AdaGrad([da.zeros(2, chunks=1)])
    >>> with dask.config.set(scheduler="synchronous"):
    ...     path = again.load(folder)
    >>> print(path[-14:], again.step_count, again.lr)
    step-000000020 20 0.4
    >>> import shutil; shutil.rmtree(folder)
    """

    _name = "AdaGrad"
    _local = optimizers.AdaGrad

    def __init__(
        self, params, lr=0.01, eps=1e-6, *, eps_in_sqrt=True, initial_accumulator_value=0.0,
        lr_decay=0.0, weight_decay=0.0, maximize=False, nonfinite="propagate",
        checkpoint_every=None, checkpoint_dir=None,
    ):
        hyper = dict(
            lr=lr, eps=eps, eps_in_sqrt=eps_in_sqrt,
            initial_accumulator_value=initial_accumulator_value, lr_decay=lr_decay,
            weight_decay=weight_decay, maximize=maximize,
        )
        super().__init__(params, hyper, nonfinite, checkpoint_every, checkpoint_dir)

    def _structure(self):
        return {}

    lr = _delegate("lr")
    eps = _delegate("eps")
    eps_in_sqrt = _delegate("eps_in_sqrt")
    initial_accumulator_value = _delegate("initial_accumulator_value")
    lr_decay = _delegate("lr_decay")
    weight_decay = _delegate("weight_decay")
    maximize = _delegate("maximize")

    def _task_hyperparams(self, t):
        h = {k: getattr(self._twin, k) for k in (
            "lr", "eps", "eps_in_sqrt", "weight_decay", "maximize", "lr_decay",
        )}
        h["step"] = t
        return h


# The parameters both classes add to the single-process ones, written once.
RMSProp.__doc__ = RMSProp.__doc__.replace("{shared}", _SHARED_PARAMETERS)
AdaGrad.__doc__ = AdaGrad.__doc__.replace("{shared}", _SHARED_PARAMETERS)



def _check_params(name, params):
    if isinstance(params, (np.ndarray, da.Array)):
        raise TypeError(f"{name}: params must be a list of arrays; wrap a single array in a list")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(
            f"{name}: params must be a list of arrays, got {type(params).__name__}"
        ) from None
    if not params:
        raise ValueError(f"{name}: params is empty")
    for i, p in enumerate(params):
        if not isinstance(p, da.Array):
            raise TypeError(
                f"{name}: params[{i}] must be a dask.array.Array, got {type(p).__name__} "
                "(dask.array.from_array makes one from a NumPy array)"
            )
        if p.dtype not in (np.float32, np.float64):
            raise TypeError(
                f"{name}: params[{i}] must have dtype float32 or float64, got {p.dtype}"
            )
        if _unknown_chunks(p):
            raise ValueError(
                f"{name}: params[{i}] has unknown chunk sizes; call .compute_chunk_sizes() first"
            )
    return params


def _check_checkpointing(name, every, folder):
    if every is None:
        return
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(
            f"{name}: checkpoint_every must be None or an integer >= 1, got {every!r}"
        )
    if folder is None:
        raise ValueError(f"{name}: checkpoint_every needs a checkpoint_dir")


def _unknown_chunks(a):
    return any(math.isnan(c) for cs in a.chunks for c in cs)


def _as_dask(label, g, p, like_label):
    """The gradient (or state array) ``g`` as a Dask array chunked like the parameter ``p``,
    after the checks of the single-process optimizer (same messages)."""
    if not isinstance(g, (np.ndarray, da.Array)):
        raise TypeError(
            f"{label} must be a dask.array.Array or a numpy.ndarray, got {type(g).__name__}"
        )
    if g.dtype not in (np.float32, np.float64):
        raise TypeError(f"{label} must have dtype float32 or float64, got {g.dtype}")
    if g.dtype != p.dtype:
        raise TypeError(f"{label} has dtype {g.dtype} but {like_label} has dtype {p.dtype}")
    if isinstance(g, da.Array) and _unknown_chunks(g):
        raise ValueError(
            f"{label} has unknown chunk sizes, so it cannot be aligned with the chunks of "
            f"{like_label}; call .compute_chunk_sizes() on it first"
        )
    if g.shape != p.shape:
        raise ValueError(f"{label} has shape {g.shape} but {like_label} has shape {p.shape}")
    if isinstance(g, np.ndarray):
        # Each chunk goes into the graph: the scheduler keeps it until the next checkpoint, so
        # a result lost with a worker can be recomputed (scattered data would be lost with it).
        return da.from_array(g, chunks=p.chunks, name="from-numpy-" + uuid.uuid4().hex)
    return g if g.chunks == p.chunks else g.rechunk(p.chunks)


def _checkpoint_folders(fs, root, complete=True):
    """The ``step-N`` folders under ``root`` (only those with a manifest: ``complete``), oldest
    first."""
    if not fs.isdir(root):
        return []
    found = [
        d for d in fs.ls(root, detail=False)
        if posixpath.basename(d.rstrip("/")).startswith("step-")
        and (not complete or fs.exists(posixpath.join(d, _MANIFEST)))
    ]
    return sorted(found, key=lambda d: posixpath.basename(d.rstrip("/")))


def _latest_checkpoint(path):
    """The checkpoint folder at ``path``: ``path`` itself when it holds a manifest, else the
    latest complete ``step-N`` folder of a ``checkpoint_dir``. FileNotFoundError if none."""
    fs, root = fsspec.core.url_to_fs(path)
    if fs.exists(posixpath.join(root, _MANIFEST)):
        return path
    folders = _checkpoint_folders(fs, root)
    if not folders:
        raise FileNotFoundError(f"no rmsprop_nb.dask checkpoint at {path!r}")
    return posixpath.join(path, posixpath.basename(folders[-1].rstrip("/")))

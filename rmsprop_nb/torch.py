r"""Drop-in ``torch.optim`` optimizers that run on this package's kernels.

:class:`RMSprop` and :class:`Adagrad` are :class:`torch.optim.Optimizer` subclasses with the
names, defaults and semantics of ``torch.optim.RMSprop`` and ``torch.optim.Adagrad``: change
the import, keep the training loop (parameter groups, ``torch.optim.lr_scheduler``,
``zero_grad``, closures, ``state_dict()`` interchangeable with torch's own). A step updates
the tensors in place through the compiled kernels: no copy, one call per group and dtype on
the CPU (``rmsprop_nb._loops``), one launch per parameter on the GPU (``rmsprop_nb.cuda``).

How a step reaches the kernels. The kernels find parameters, gradients and state by address
(an int64 table per group and dtype, see ``_loops.address_table``). The tables are built once
and kept; a step only writes the gradients' addresses into them (``zero_grad()`` makes new
gradient tensors every step) after checking each gradient, and rebuilds a table when a
parameter's or a state tensor's storage has changed. The ``step`` counters, 0-dim tensors as
in torch, are advanced by one compiled call per table, not one torch operation each.

A parameter whose gradient is sparse (COO, as ``nn.Embedding(sparse=True)`` makes) is stepped
by the row kernels of :mod:`rmsprop_nb.kernels` instead, one call per parameter, on the
gradient's indices and values as they are (repeated rows are summed by the kernels, not by
``coalesce``). Exact RMSprop keeps, for such a parameter, the step as of which each row is up
to date (``_Lag``), outside ``state``: every row is brought up to date before the state is
read (``state_dict``, pickling) and before the parameter takes another kind of step.

This is the only module of the package that imports torch; ``import rmsprop_nb`` does not.
"""

from __future__ import annotations

import bisect
import math
import operator
import threading
from collections import namedtuple

import numpy as np

try:
    import torch
except ImportError as exc:  # not installed, or an installation that cannot be imported
    raise ImportError(
        f"rmsprop_nb.torch needs PyTorch, which could not be imported ({exc}): "
        'pip install "rmsprop-nb[torch]"'
    ) from exc

import torch.optim.optimizer as _torch_optimizer  # noqa: E402
from numba import carray

from . import _loops, _math, _threads, _validation, kernels
from ._jit import jit
from ._loops import _AVGS, _BUFS, _GRADS, _GROUP, _PARAMS, _SIZES, _STATE

__all__ = ["RMSprop", "Adagrad"]

#: The ``nonfinite`` policies (as for :class:`rmsprop_nb.RMSProp`).
NONFINITE_POLICIES = ("propagate", "raise", "skip")

# Parameter dtypes and the real dtype the kernels see: a complex tensor is updated as its
# real view (torch.view_as_real), which is exactly what torch.optim does for complex params.
_REAL = {
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.complex64: np.dtype(np.float32),
    torch.complex128: np.dtype(np.float64),
}
_STEP_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}


def _scalar_dtype():
    """The dtype of a new ``step`` tensor: torch.optim's choice (its ``_get_scalar_dtype``)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _dense(t):
    """True when ``t`` covers one block of memory without gaps or overlaps (C order, or a
    permutation of it such as channels_last): the kernels then walk it as a flat array."""
    if t.numel() == 0:
        return True
    expected = 1
    for stride, n in sorted((s, n) for n, s in zip(t.shape, t.stride()) if n != 1):
        if stride != expected:
            return False
        expected *= n
    return True


def _same_layout(a, b):
    """True when ``a`` and ``b`` have one shape and put every element at the same offset
    (the strides of size-1 dimensions do not matter)."""
    return a.shape == b.shape and all(
        n == 1 or sa == sb for n, sa, sb in zip(a.shape, a.stride(), b.stride())
    )


def _span(t):
    """(first byte, byte count) of a dense tensor."""
    return t.data_ptr(), t.numel() * t.element_size()


# --------------------------------------------------------------------------------------------
# Compiled helpers: the step counters and the gradient alias check, by address.
# --------------------------------------------------------------------------------------------


@jit
def _advance_steps(addresses, like):
    """Add one to every step counter (1-element tensors of ``like``'s dtype, by address);
    return the smallest and the largest new value."""
    lo, hi = math.inf, -math.inf
    for i in range(addresses.size):
        c = carray(_loops._pointer(addresses[i], like), 1)
        c[0] += 1
        v = float(c[0])
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


@jit
def _read_steps(addresses, like, out):
    """out[i] = step counter i."""
    for i in range(addresses.size):
        out[i] = carray(_loops._pointer(addresses[i], like), 1)[0]


@jit
def _first_aliased_grad(table, like, spans):
    """Column of the first gradient of ``table`` that shares memory with a parameter
    (``spans``: every parameter of the optimizer, see ``_loops.memory_spans``), else -1."""
    for t in range(table.shape[1]):
        if _loops._overlaps_spans(_loops._view(table, _GRADS, t, like), spans):
            return t
    return -1


# --------------------------------------------------------------------------------------------
# Buckets: the parameters of one group that have gradients, by device type and real dtype.
# --------------------------------------------------------------------------------------------

# A parameter of a bucket: j its index in the group, p the tensor, the state tensors the
# kernels use (in table order), the step tensor.
_Column = namedtuple("_Column", "j p shape stride dtype state step")


class _Bucket:
    """What CPU and GPU buckets share: the columns, the gradient checks, the step counters."""

    def __init__(self, opt, group_index, columns, real_dtype):
        self.opt = opt
        self.group_index = group_index
        self.columns = columns
        self.like = np.empty(0, real_dtype)
        steps = [c.step for c in columns]
        self.step_like = np.empty(0, _STEP_DTYPES[steps[0].dtype])
        self.steps = np.array([s.data_ptr() for s in steps], np.int64)
        self.grad_ptrs = [0] * len(columns)

    def where(self, j):
        return f"param_groups[{self.group_index}]['params'][{j}]"

    def check_grads(self, grads):
        """Check every gradient of the bucket against its parameter; keep its address."""
        ptrs = self.grad_ptrs
        for k, c in enumerate(self.columns):
            g = grads[c.j]
            if (g.layout is not torch.strided or g.dtype is not c.dtype
                    or g.stride() != c.stride or g.shape != c.shape):
                self._check_odd_grad(c, g)
            ptrs[k] = g.data_ptr()

    def _check_odd_grad(self, c, g):
        """A gradient that failed the fast test: raise unless it only differs in the strides
        of size-1 dimensions."""
        name = self.opt._name
        where = f"{name}.step: the gradient of {self.where(c.j)}"
        if g.layout is torch.sparse_coo:
            raise _LayoutChanged
        if g.layout is not torch.strided:
            raise _layout_error(name, self.where(c.j), g)
        if g.dtype is not c.dtype:
            raise TypeError(f"{where} has dtype {g.dtype} but the parameter has {c.dtype}")
        if g.device != c.p.device:
            raise ValueError(f"{where} is on {g.device} but the parameter is on {c.p.device}")
        if not _same_layout(g, c.p):
            raise ValueError(
                f"{where} has shape {tuple(g.shape)} and strides {g.stride()} but the "
                f"parameter has shape {tuple(c.shape)} and strides {c.stride}; the kernels "
                "need the parameter's layout (e.g. assign p.grad = g.contiguous())"
            )

    def advance_steps(self):
        return _advance_steps(self.steps, self.step_like)

    def read_steps(self):
        out = np.empty(len(self.columns))
        _read_steps(self.steps, self.step_like, out)
        return out


class _CpuBucket(_Bucket):
    """CPU tensors: one address table, one compiled call per step (see ``_loops``). The table
    holds one parameter group (its ``_GROUP`` row is 0: row 0 of the hyperparameters)."""

    def __init__(self, opt, group_index, columns, real_dtype):
        super().__init__(opt, group_index, columns, real_dtype)
        n = len(columns)
        table = np.zeros((_GROUP + 1, n), np.int64)
        sizes = []
        for k, c in enumerate(columns):
            table[_PARAMS, k] = c.p.data_ptr()
            for row, s in zip((_STATE, _BUFS, _AVGS), c.state):
                table[row, k] = 0 if s is None else s.data_ptr()
            sizes.append(c.p.numel() * (2 if c.p.is_complex() else 1))
        table[_SIZES] = sizes
        self.table = table
        self.segments, self.tasks = _loops.task_table(sizes)
        self.parallel = sum(sizes) * self.like.itemsize >= _loops.PARALLEL_MIN_BYTES
        self.counts = np.zeros(n, np.int64)
        first = columns[0].state
        self.rows = (None if first[1] is None else _BUFS, None if first[2] is None else _AVGS)

    def check_grads(self, grads):
        super().check_grads(grads)
        self.table[_GRADS] = self.grad_ptrs
        k = _first_aliased_grad(self.table, self.like, self.opt._spans)
        if k >= 0:
            j = self.columns[k].j
            raise ValueError(
                f"{self.opt._name}.step: the gradient of {self.where(j)} shares memory with "
                "a parameter (it would be read after that parameter was updated)"
            )

    def first_nonfinite(self):
        scan = (_loops._first_nonfinite_parallel if self._parallel()
                else _loops._first_nonfinite_serial)
        k = scan(self.table, self.segments, self.tasks, self.like, self.counts)
        return -1 if k < 0 else self.columns[k].j

    def _parallel(self):
        return self.parallel and _threads.PARALLEL

    def rmsprop(self, h):
        kernel = (_loops._rmsprop_group_parallel if self._parallel()
                  else _loops._rmsprop_group_serial)
        bufs, avgs = self.rows
        # The kernels' hyperparameter row (see _loops._rmsprop_row); flags as 0/1.
        hyper = np.array([[h.lr, h.alpha, h.eps, h.eps_in_sqrt, h.weight_decay, h.maximize,
                           h.momentum]], np.float64)
        kernel(self.table, self.segments, self.tasks, self.like,
               bufs if h.momentum > 0 else None, avgs if h.centered else None, hyper)

    def adagrad(self, h, lo, hi):
        if lo == hi:  # every parameter at the same step: the usual case, one call
            self._adagrad(self.table, self.segments, self.tasks, self.parallel, h, int(lo))
            return
        steps = self.read_steps()
        for t in np.unique(steps):
            cols = np.flatnonzero(steps == t)
            table = np.ascontiguousarray(self.table[:, cols])
            segments, tasks = _loops.task_table(table[_SIZES].tolist())
            parallel = int(table[_SIZES].sum()) * self.like.itemsize >= _loops.PARALLEL_MIN_BYTES
            self._adagrad(table, segments, tasks, parallel, h, int(t))

    def _adagrad(self, table, segments, tasks, parallel, h, step):
        kernel = (_loops._adagrad_group_parallel if parallel and _threads.PARALLEL
                  else _loops._adagrad_group_serial)
        # The kernels' hyperparameter row (see _loops._adagrad_row): its last entry, the
        # step the group started at, is 0, so that ``step`` is the parameters' own count.
        hyper = np.array([[h.lr, h.eps, h.eps_in_sqrt, h.weight_decay, h.maximize,
                           h.lr_decay, 0.0]], np.float64)
        kernel(table, segments, tasks, self.like, hyper, step)


class _CudaBucket(_Bucket):
    """CUDA tensors of one device: the kernels of :mod:`rmsprop_nb.cuda`, one launch per
    parameter, on torch's current stream of that device."""

    def __init__(self, opt, group_index, columns, real_dtype):
        super().__init__(opt, group_index, columns, real_dtype)
        self.cuda = _cuda_module()
        self.device = columns[0].p.device
        with self._context():
            self.x = [_cuda_view(c.p) for c in columns]
            self.state = [[None if s is None else _cuda_view(s) for s in c.state]
                          for c in columns]
        # The gradients' views, kept until the next step: the launches may still be reading
        # them when the step returns.
        self.g = [None] * len(columns)

    def _context(self):
        from numba import cuda

        return cuda.gpus[self.device.index or 0]

    def check_grads(self, grads):
        super().check_grads(grads)
        starts, ends = self.opt._cuda_spans
        with self._context():
            for k, c in enumerate(self.columns):
                g = grads[c.j]
                start, size = _span(g)
                i = bisect.bisect_right(starts, start) - 1  # the last param starting <= g
                if size and ((i >= 0 and ends[i] > start)
                             or (i + 1 < len(starts) and starts[i + 1] < start + size)):
                    raise ValueError(
                        f"{self.opt._name}.step: the gradient of {self.where(c.j)} shares "
                        "memory with a parameter (it would be read after that parameter was "
                        "updated)"
                    )
                self.g[k] = _cuda_view(g)

    def first_nonfinite(self):
        """The scan of ``rmsprop_nb.cuda``'s optimizers, on torch's stream, then a wait."""
        from numba import cuda

        with self._context():
            stream = _current_stream(self.device)
            flags = cuda.to_device(np.zeros(len(self.g), np.int32), stream=stream)
            for k, g in enumerate(self.g):
                self.cuda._launch(self.cuda._nonfinite_kernel(), g.size, stream, g, flags, k)
            bad = np.flatnonzero(flags.copy_to_host(stream=stream))
            stream.synchronize()
        return self.columns[int(bad[0])].j if bad.size else -1

    def rmsprop(self, h):
        hyper = _math._rmsprop_hyper.py_func(
            "RMSprop.step", self.like, h.lr, h.alpha, h.eps, h.eps_in_sqrt, h.weight_decay,
            h.maximize, h.momentum,
        )
        with self._context():
            stream = _current_stream(self.device)
            for x, g, (s, buf, gavg) in zip(self.x, self.g, self.state):
                self.cuda._launch_rmsprop(
                    x, g, s, buf if h.momentum > 0 else None, gavg if h.centered else None,
                    hyper, stream,
                )

    def adagrad(self, h, lo, hi):
        steps = [lo] * len(self.x) if lo == hi else self.read_steps()
        hypers = {}
        with self._context():
            stream = _current_stream(self.device)
            for x, g, (s, _, _), t in zip(self.x, self.g, self.state, steps):
                if t not in hypers:
                    hypers[t] = _math._adagrad_hyper.py_func(
                        "Adagrad.step", self.like, h.lr, h.eps, h.eps_in_sqrt, h.weight_decay,
                        h.maximize, h.lr_decay, int(t),
                    )
                self.cuda._launch_adagrad(x, g, s, hypers[t], stream)


_BUCKETS = {"cpu": _CpuBucket, "cuda": _CudaBucket}


def _cuda_module():
    try:
        from . import cuda
    except ImportError as exc:
        raise ImportError(
            f"rmsprop_nb.torch: CUDA tensors are updated by rmsprop_nb.cuda, which needs "
            f"numba-cuda ({exc})"
        ) from exc
    cuda._require_gpu()
    return cuda


def _cuda_view(t):
    """A flat Numba device array over the memory of a dense CUDA tensor (no copy). Numba
    is told not to wait for the tensor's stream: the kernels are queued on it."""
    from numba import cuda

    t = t.detach()
    if t.is_complex():
        t = torch.view_as_real(t)
    flat = t.as_strided((t.numel(),), (1,))  # dense: the same memory, in memory order
    return cuda.as_cuda_array(flat, sync=False)


def _current_stream(device):
    """torch's current stream on ``device``, as a Numba stream."""
    from numba import cuda

    return cuda.external_stream(torch.cuda.current_stream(device).cuda_stream)


def _layout_error(name, where, g):
    return TypeError(
        f"{name}.step: the gradient of {where} has layout {g.layout}; rmsprop_nb.torch takes "
        "dense (strided) gradients and sparse COO ones (torch.sparse_coo, as "
        "nn.Embedding(sparse=True) makes): convert it, e.g. with g.to_sparse_coo()"
    )


# --------------------------------------------------------------------------------------------
# Sparse gradients: a parameter stepped by the row kernels, one call per step.
# --------------------------------------------------------------------------------------------


class _LayoutChanged(Exception):
    """A gradient is sparse where the group's plan has a dense one, or the other way round:
    the plan is rebuilt (raised while the gradients are checked, before anything changes)."""


class _SparseOptionError(ValueError, RuntimeError):
    """Bad input, a ValueError as everywhere in this package, that ``torch.optim`` reports
    as a RuntimeError: code written for ``torch.optim`` catches it as before."""


@jit
def _check_entries(indices, bounds, values, spans):
    """A COO gradient's ``indices`` (sparse_dim x nnz) and ``values``, checked in one call:
    the position of the first entry with an index outside ``[0, bounds[axis])``; else -2 when
    the indices or the values share memory with a parameter (``spans``: the parameters' sorted
    byte ranges, see ``_Optimizer._refresh_spans``); else -1."""
    for j in range(indices.shape[1]):
        for a in range(indices.shape[0]):
            if indices[a, j] < 0 or indices[a, j] >= bounds[a]:
                return j
    if _loops._overlaps_spans(indices, spans) or _loops._overlaps_spans(values, spans):
        return -2
    return -1


# One step of a _SparseColumn: the row indices (int64, into the tables' first axis), the
# values (one row of the tables' shape each), the tables (parameter, then its state tensors
# as the bucket columns order them; None where unused), and the gradient's sparse_dim.
_RowsStep = namedtuple("_RowsStep", "column rows values tables d")


class _SparseColumn:
    """A CPU parameter whose gradient is sparse (COO): the row kernels update the rows the
    gradient names, reading its indices and values where they are.

    A COO gradient with ``sparse_dim() == d`` holds values for entries of the first ``d`` axes
    (``nn.Embedding``: ``d == 1``, the rows of the table): the kernels see the parameter and
    its state, C-contiguous, as tables of ``prod(shape[:d])`` rows of ``shape[d:]``.
    """

    def __init__(self, opt, group_index, j, p, tensors, step):
        self.opt, self.group_index, self.j, self.p = opt, group_index, j, p
        self.tensors = tensors  # the state tensors (square_avg or sum, momentum_buffer, grad_avg)
        self.arrays = tuple(None if t is None else t.detach().numpy() for t in (p,) + tensors)
        self.count = step.numpy()  # torch's step counter, a 0-dim view
        self.layouts = {}  # d -> (the tables, the bounds of the first d axes)

    def where(self):
        return f"param_groups[{self.group_index}]['params'][{self.j}]"

    def _layout(self, d):
        layout = self.layouts.get(d)
        if layout is None:
            shape = tuple(self.p.shape)
            rows = (math.prod(shape[:d]),) + shape[d:]
            tables = tuple(None if a is None else a.reshape(rows) for a in self.arrays)
            layout = self.layouts[d] = (tables, np.array(shape[:d], np.int64))
        return layout

    def check_grad(self, g, h):
        """Check the sparse gradient ``g`` against the parameter and the group's options
        ``h`` (raise before anything changes); return the step the kernels will take."""
        if g.layout is not torch.sparse_coo:
            raise _LayoutChanged
        opt, p = self.opt, self.p
        where = f"{opt._name}.step: the gradient of {self.where()}"
        if g.dtype is not p.dtype:
            raise TypeError(f"{where} has dtype {g.dtype} but the parameter has {p.dtype}")
        if g.device != p.device:
            raise ValueError(f"{where} is on {g.device} but the parameter is on {p.device}")
        if g.shape != p.shape:
            raise ValueError(f"{where} has shape {tuple(g.shape)} but the parameter has "
                             f"{tuple(p.shape)}")
        d = g.sparse_dim()
        tables, bounds = self._layout(d)
        indices = g._indices().numpy()
        values = g._values().detach().contiguous().numpy()
        bad = _check_entries(indices, bounds, values, opt._spans)
        if bad >= 0:
            index = indices[:, bad].tolist()
            raise ValueError(
                f"{where} has the index {index[0] if d == 1 else index} at position {bad} of "
                f"its indices, out of range for the parameter's shape {tuple(p.shape)}"
            )
        if bad == -2:
            raise ValueError(f"{where} shares memory with a parameter (it would be read after "
                             "that parameter was updated)")
        if d == 1:
            rows = indices[0]
        elif d == 0:
            rows = np.zeros(indices.shape[1], np.int64)
        else:  # (a new array)
            rows = np.ravel_multi_index(tuple(indices), tuple(p.shape[:d]))
        opt._check_sparse_options(self.where(), self.group_index, h)
        return _RowsStep(self, rows, values, tables, d)

    def advance(self):
        """Count this step in torch's ``step`` tensor; return the new count."""
        self.count += 1
        return int(self.count)


class _Lag:
    """Exact RMSprop on a parameter stepped by sparse gradients: ``last_step[r]`` is the
    parameter's step count as of which row ``r`` of ``s`` (and ``gavg``) is up to date; the
    steps each row missed decay it by ``alpha`` (see :func:`rmsprop_nb.kernels.rmsprop_catch_up`).
    ``key``: what the tables were (sparse_dim, the state tensors); a step of the parameter
    with another key, another alpha, lazy or dense brings every row up to date first."""

    __slots__ = ("key", "alpha", "last_step", "s", "gavg")

    def __init__(self, key, alpha, last_step, s, gavg):
        self.key, self.alpha, self.last_step, self.s, self.gavg = key, alpha, last_step, s, gavg

    def fits(self, r, h):
        """True when the sparse step ``r`` (options ``h``) continues this bookkeeping."""
        return (not h.lazy and h.alpha == self.alpha and r.d == self.key[0]
                and all(map(operator.is_, r.column.tensors[::2], self.key[1:])))

    def catch_up(self, step):
        kernels.rmsprop_catch_up(self.s, self.last_step, step, self.alpha, grad_avg=self.gavg)


# --------------------------------------------------------------------------------------------
# The plan of one parameter group: its buckets, and what they were built from.
# --------------------------------------------------------------------------------------------


class _Plan:
    def __init__(self, key, group_params, buckets, sparse, entries):
        self.key = key
        self.group_params = list(group_params)
        self.buckets = buckets
        self.sparse = sparse  # the _SparseColumns
        # (param, its data_ptr, its state dict, that dict's tensors the tables use) at build
        # time: when any of these is no longer so, the tables are rebuilt.
        self.entries = entries
        self.params = [e[0] for e in entries]

    def fresh(self, params, state):
        """True while the group holds the same tensors, with the same storage and state."""
        if len(params) != len(self.group_params) or not all(
                map(operator.is_, params, self.group_params)):
            return False
        for p, ptr, st, refs in self.entries:
            if p.data_ptr() != ptr or state.get(p) is not st:
                return False
            for key, t in refs:
                if st.get(key) is not t:
                    return False
        return True

    def check_sparse(self, grads, h):
        """Check the sparse gradients of the group (raise before anything changes); return
        the steps of its sparse columns."""
        return [c.check_grad(grads[c.j], h) for c in self.sparse]


# --------------------------------------------------------------------------------------------
# The optimizers.
# --------------------------------------------------------------------------------------------


class _Optimizer(torch.optim.Optimizer):
    """What RMSprop and Adagrad share: checks, plans, the step, state dict loading."""

    _name = ""
    _state_keys: tuple = ()  # the state tensors, in the order of the table's state rows
    _ranges: dict = {}  # hyperparameter -> rule of _validation.check_range
    _bools: tuple = ()  # the flags among the hyperparameters
    _torch_flags: dict = {}  # torch's flag -> the values accepted here
    _ours = {"eps_in_sqrt": False, "nonfinite": "propagate", "lazy": False}

    def __init__(self, params, defaults):
        self._plans = {}
        self._lags = {}  # exact RMSprop: parameter -> _Lag
        self._checked = {}
        self._busy = threading.RLock()
        self._spans = np.zeros((2, 0), np.int64)
        self._cuda_spans = ([], [])
        self.skipped_steps = 0
        self._check_group(defaults, None)
        super().__init__(params, defaults)

    # -- checks ----------------------------------------------------------------------------

    def _label(self, key, group_index):
        if group_index is None:
            return f"{self._name}: {key}"
        return f"{self._name}: param_groups[{group_index}]['{key}']"

    def _check_group(self, group, group_index, keys=None):
        """Check the hyperparameters and flags of a group (``keys``: only these)."""
        for key, accepted in self._torch_flags.items():
            if key in group and (keys is None or key in keys) and not any(
                    group[key] is v for v in accepted):
                raise ValueError(
                    f"{self._label(key, group_index)}={group[key]!r} is not supported: "
                    f"{_FLAG_REASONS[key]}; leave it at {accepted[0]!r}"
                )
        for key, rule in self._ranges.items():
            if key in group and (keys is None or key in keys):
                value = group[key]
                if key == "lr" and isinstance(value, torch.Tensor):
                    if value.numel() != 1:
                        raise ValueError(f"{self._label(key, group_index)}: a tensor lr must "
                                         f"have one element, got {value.numel()}")
                    value = float(value)
                if type(value) is float and 0.0 <= value < (1.0 if rule == "unit" else math.inf):
                    continue  # fine, and told without making the message (a scheduler's lr)
                _validation.check_range(self._label(key, group_index), value, rule)
        for key in self._bools:
            if key in group and (keys is None or key in keys) and not isinstance(
                    group[key], (bool, np.bool_)):
                _validation.check_flag(self._label(key, group_index), group[key])
        if "nonfinite" in group and (keys is None or "nonfinite" in keys):
            value = group["nonfinite"]
            if not isinstance(value, str) or value not in NONFINITE_POLICIES:
                raise ValueError(
                    f"{self._label('nonfinite', group_index)} must be one of "
                    f"{', '.join(map(repr, NONFINITE_POLICIES))}, got {value!r}"
                )

    def _check_param(self, where, p):
        if p.device.type not in _BUCKETS:
            raise TypeError(f"{self._name}: {where} is on {p.device}; rmsprop_nb.torch updates "
                            "CPU and CUDA tensors")
        if p.layout is not torch.strided:
            raise TypeError(f"{self._name}: {where} has layout {p.layout}; rmsprop_nb.torch "
                            "updates dense (strided) tensors")
        if p.dtype not in _REAL:
            raise TypeError(
                f"{self._name}: {where} has dtype {p.dtype}; rmsprop_nb.torch updates float32, "
                "float64, complex64 and complex128 tensors (keep the parameter in float32, e.g. "
                f"as the master copy of mixed precision, or use torch.optim.{self._name} for it)"
            )
        if not _dense(p):
            raise ValueError(
                f"{self._name}: {where} is not contiguous (shape {tuple(p.shape)}, strides "
                f"{p.stride()}); the kernels walk a parameter as one block of memory: make it "
                "contiguous (p.data = p.data.contiguous()) or use torch.optim for it"
            )

    def _refresh_spans(self):
        """The memory of every parameter (for the gradient alias checks); raise if two
        parameters share memory (one step would update the shared part twice)."""
        cpu, gpu = [], []
        for i, group in enumerate(self.param_groups):
            for j, p in enumerate(group["params"]):
                start, size = _span(p)
                if size:
                    (cpu if p.device.type == "cpu" else gpu).append((start, start + size, i, j))
        for spans in (cpu, gpu):
            spans.sort()
            for a, b in zip(spans, spans[1:]):
                if b[0] < a[1]:
                    raise ValueError(
                        f"{self._name}: param_groups[{a[2]}]['params'][{a[3]}] and "
                        f"param_groups[{b[2]}]['params'][{b[3]}] share memory"
                    )
        self._spans = np.array([[s[0] for s in cpu], [s[1] for s in cpu]],
                               np.int64).reshape(2, -1)
        self._cuda_spans = ([s[0] for s in gpu], [s[1] for s in gpu])

    # -- torch.optim.Optimizer -------------------------------------------------------------

    def add_param_group(self, param_group):
        """Add a parameter group (see :meth:`torch.optim.Optimizer.add_param_group`).

        Its hyperparameters and parameters are checked as the constructor's; on an error the
        optimizer is left unchanged.
        """
        with self._exclusive("add_param_group"):
            index = len(self.param_groups)
            if isinstance(param_group, dict):
                given = set(param_group) - {"params"}
                self._check_group(param_group, index, keys=given)
            super().add_param_group(param_group)
            try:
                for j, p in enumerate(self.param_groups[-1]["params"]):
                    self._check_param(f"param_groups[{index}]['params'][{j}]", p)
                self._refresh_spans()
            except Exception:
                self.param_groups.pop()
                self._refresh_spans()
                raise
            self._plans.clear()

    def load_state_dict(self, state_dict):
        """Load a state saved by this class or by ``torch.optim`` (same keys and types).

        The state is checked first (the keys of every parameter's state, the shapes of its
        tensors); on a mismatch nothing changes. Keys of a group that the saved state lacks
        (``eps_in_sqrt``, ``nonfinite`` and ``lazy``, in a state saved by ``torch.optim``) keep
        their current values.
        """
        with self._exclusive("load_state_dict"):
            self._check_state_dict(state_dict)
            super().load_state_dict(state_dict)  # calls __setstate__, which fills in our keys

    def _check_state_dict(self, state_dict):
        name = f"{self._name}.load_state_dict"
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(f"{name}: expected a dict with the keys 'state' and "
                             "'param_groups' (from state_dict())")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups) or any(
                len(s["params"]) != len(g["params"])
                for s, g in zip(saved_groups, self.param_groups)):
            raise ValueError(f"{name}: the saved parameter groups do not match this "
                             "optimizer's (number of groups, or of parameters in a group)")
        params = {}
        for s, g in zip(saved_groups, self.param_groups):
            params.update(zip(s["params"], g["params"]))
        allowed = set(self._state_keys) | {"step"}
        for pid, st in state_dict["state"].items():
            if pid not in params:
                raise ValueError(f"{name}: the state names parameter {pid!r}, which is in no "
                                 "saved parameter group")
            extra = set(st) - allowed
            if extra:
                raise ValueError(
                    f"{name}: the state of parameter {pid!r} has keys {sorted(extra)}, which "
                    f"{self._name} does not keep (its keys: {sorted(allowed)}): a state of "
                    "another optimizer?"
                )
            p = params[pid]
            for key, value in st.items():
                if key == "step":
                    if not (isinstance(value, (int, float)) or (
                            isinstance(value, torch.Tensor) and value.numel() == 1)):
                        raise ValueError(f"{name}: the step of parameter {pid!r} must be a "
                                         f"number or a 1-element tensor, got {value!r}")
                elif not isinstance(value, torch.Tensor) or value.shape != p.shape:
                    got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
                    raise ValueError(f"{name}: {key} of parameter {pid!r} has shape {got}; "
                                     f"the parameter has shape {tuple(p.shape)}")

    def __setstate__(self, state):
        previous = self.__dict__.get("param_groups")
        super().__setstate__(state)
        defaults = dict(self._ours, **{k: v[0] for k, v in self._torch_flags.items()})
        for k, group in enumerate(self.param_groups):
            old = previous[k] if previous is not None and k < len(previous) else {}
            for key, value in defaults.items():
                group.setdefault(key, old.get(key, value))
        self.__dict__.setdefault("skipped_steps", 0)
        self.__dict__.setdefault("_busy", threading.RLock())  # (held during load_state_dict)
        self._plans, self._checked = {}, {}
        self._lags = {}  # a new state: every row is up to date
        self._refresh_spans()

    def _exclusive(self, what):
        return _Exclusive(self, what)

    def state_dict(self):
        """Return the state as ``torch.optim`` does (:meth:`torch.optim.Optimizer.state_dict`).

        After sparse steps of exact RMSprop, every row of the state is first brought up to
        date, so that the saved ``square_avg`` (and ``grad_avg``) is what dense steps give:
        the state dict has ``torch.optim``'s keys and meaning, and loads into it.
        """
        if self._lags:
            with self._exclusive("state_dict"):
                self._catch_up()
        return super().state_dict()

    def __getstate__(self):
        if self._lags:  # pickled or copied: the state as it is after the steps taken
            with self._exclusive("pickle"):
                self._catch_up()
        return super().__getstate__()

    def _catch_up(self):
        """Bring every row of the exact RMSprop states up to date (as of each parameter's
        own step count); no bookkeeping is left."""
        for p, lag in self._lags.items():
            st = self.state.get(p)
            if st is not None and st.get("square_avg") is lag.key[1]:  # (not replaced)
                lag.catch_up(int(st["step"]))
        self._lags.clear()

    def _catch_up_before(self, work):
        """Exact RMSprop: a parameter with lagging rows that takes another kind of step now
        (dense, lazy, another alpha or other state tensors) is brought up to date as of its
        last step first; one without a gradient now keeps its bookkeeping."""
        sparse = {r.column.p: (r, h) for _, _, h, rows in work for r in rows}
        for p, lag in list(self._lags.items()):
            if p.grad is None:
                continue
            step = sparse.get(p)
            if step is None or not lag.fits(*step):
                del self._lags[p]
                st = self.state.get(p)
                if st is not None and st.get("square_avg") is lag.key[1]:
                    lag.catch_up(int(st["step"]))

    # -- step ------------------------------------------------------------------------------

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place; return the closure's loss.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss; it is called first, with gradients
            enabled.

        Returns
        -------
        loss
            What ``closure`` returned, or None without a closure.

        Raises
        ------
        ValueError, TypeError
            A hyperparameter out of range, or a gradient that does not fit its parameter. Every
            group and gradient is checked before any tensor changes.
        FloatingPointError
            With ``nonfinite="raise"``, a gradient holding NaN or infinity (nothing changes).
        RuntimeError
            When another thread is stepping this optimizer at the same time.
        """
        if torch.autograd._profiler_enabled():
            with torch.autograd.profiler.record_function(f"Optimizer.step#{self._name}.step"):
                return self._hooked_step(closure)
        return self._hooked_step(closure)

    # torch.optim.Optimizer would wrap step() in a profiler range and its hooks, at ~8 us per
    # step (as much as a whole step of a small model): the method says it is hooked, and runs
    # the hooks itself (the range only while the profiler is on).
    step.hooked = True

    def _hooked_step(self, closure):
        args, kwargs = (self,) if closure is None else (self, closure), {}
        pre = [*_GLOBAL_PRE_HOOKS.values(), *self._optimizer_step_pre_hooks.values()]
        for hook in pre:
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"{self._name}.step: a step pre-hook must return None "
                                       f"or a tuple (new_args, new_kwargs), got {result!r}")
                args, kwargs = result
        loss = self._step_with_closure(*args[1:], **kwargs)
        self._optimizer_step_code()
        for hook in [*self._optimizer_step_post_hooks.values(), *_GLOBAL_POST_HOOKS.values()]:
            hook(self, args, kwargs)
        return loss

    def _step_with_closure(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not self._busy.acquire(False):
            raise _threads.busy_error(self._name, "step")
        try:
            self._step()
        finally:
            self._busy.release()
        return loss

    def _step(self):
        state = self.state
        work = []
        for i, group in enumerate(self.param_groups):
            h = self._hyper(i, group)
            params = group["params"]
            grads = [p.grad for p in params]
            plan = self._plans.get(i)
            key = (tuple(g is None for g in grads), self._state_flags(h))
            if plan is None or plan.key != key or not plan.fresh(params, state):
                plan = self._plans[i] = self._build_plan(i, params, grads, h, key)
            try:
                for b in plan.buckets:
                    b.check_grads(grads)
                rows = plan.check_sparse(grads, h) if plan.sparse else ()
            except _LayoutChanged:  # a gradient turned sparse, or dense
                plan = self._plans[i] = self._build_plan(i, params, grads, h, key)
                for b in plan.buckets:
                    b.check_grads(grads)
                rows = plan.check_sparse(grads, h)
            if plan.buckets or rows:
                work.append((i, plan, h, rows))
        for i, plan, h, rows in work:
            if h.nonfinite != "propagate" and self._skip_nonfinite(i, plan, h, rows):
                return
        if self._lags:
            self._catch_up_before(work)
        for _, plan, h, rows in work:
            for b in plan.buckets:
                lo, hi = b.advance_steps()
                self._update(b, h, lo, hi)
            for r in rows:
                self._update_rows(r, h, r.column.advance())
            _increment_version(plan.params)

    def _skip_nonfinite(self, i, plan, h, rows):
        """nonfinite="raise"/"skip": scan the group's gradients (the values of the sparse
        ones) before anything changes; True to skip the step."""
        bad = [r.column.j for r in rows if _loops._count_nonfinite(r.values.reshape(-1))]
        for b in plan.buckets:
            j = b.first_nonfinite()
            if j >= 0:
                bad.append(j)
        if not bad:
            return False
        if h.nonfinite == "raise":
            raise FloatingPointError(
                f"{self._name}.step: the gradient of param_groups[{i}]['params'][{min(bad)}] "
                "contains NaN or infinity; nothing was updated (nonfinite='raise')"
            )
        self.skipped_steps += 1
        return True

    def _hyper(self, i, group):
        """The group's hyperparameters as Python floats and bools, checked when changed."""
        lr = group["lr"]
        if isinstance(lr, torch.Tensor):
            lr = float(lr)
        seen = (lr,) + tuple(group[k] for k in self._hyper_keys[1:])
        done = self._checked.get(i)
        if done is not None and done[0][1:] == seen[1:]:
            if done[0][0] == lr:
                return done[1]
            if type(lr) is float and 0.0 <= lr < math.inf:  # a scheduler's new lr: checked
                h = done[1]._replace(lr=lr)
                self._checked[i] = (seen, h)
                return h
        self._check_group(dict(zip(self._hyper_keys, seen)), i)
        h = self._Hyper._make(
            v if type(v) is float or isinstance(v, str) else
            bool(v) if isinstance(v, (bool, np.bool_)) else float(v) for v in seen
        )
        self._checked[i] = (seen, h)
        return h

    def _build_plan(self, i, params, grads, h, key):
        """Check the group's parameters that have gradients, create or complete their state,
        and sort them into buckets by device and dtype (and those with sparse gradients into
        sparse columns)."""
        self._refresh_spans()
        by_kind, entries, sparse = {}, [], []
        for j, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            where = f"param_groups[{i}]['params'][{j}]"
            self._check_param(where, p)
            if g.layout is torch.sparse_coo:
                self._check_sparse_param(where, p)
            elif g.layout is not torch.strided:
                raise _layout_error(self._name, where, g)
            st = self.state[p]
            tensors = self._prepare_state(where, p, st, h)
            step = st["step"]
            if g.layout is torch.sparse_coo:
                sparse.append(_SparseColumn(self, i, j, p, tensors, step))
            else:
                kind = (p.device, _REAL[p.dtype])
                column = _Column(j, p, p.shape, p.stride(), p.dtype, tensors, step)
                by_kind.setdefault(kind, []).append(column)
            refs = tuple((k, st[k]) for k in ("step",) + self._state_keys if k in st)
            entries.append((p, p.data_ptr(), st, refs))
        buckets = []
        for (device, real), columns in by_kind.items():
            # One step dtype per table (a state loaded from elsewhere may mix them).
            first = columns[0].step.dtype
            columns = [c if c.step.dtype == first else
                       c._replace(step=self._new_step(c.p, c.step, first)) for c in columns]
            buckets.append(_BUCKETS[device.type](self, i, columns, real))
        entries = [(p, ptr, st, tuple((k, st[k]) for k, _ in refs)) for p, ptr, st, refs in entries]
        return _Plan(key, params, buckets, sparse, entries)

    def _check_sparse_param(self, where, p):
        """A parameter whose gradient is sparse: the row kernels must be able to update it."""
        sparse = f"{self._name}.step: the gradient of {where} is sparse"
        if p.device.type != "cpu":
            raise TypeError(
                f"{sparse} and the parameter is on {p.device}; rmsprop_nb.torch steps sparse "
                "gradients of CPU parameters only. On the GPU, call "
                f"rmsprop_nb.cuda.{self._name.lower()}_step_rows with the gradient's indices "
                "and values, or use a dense gradient"
            )
        if p.is_complex():
            raise TypeError(
                f"{sparse} and the parameter is complex ({p.dtype}); sparse steps take float32 "
                "and float64 parameters: use a dense gradient for it"
            )
        if not p.is_contiguous():
            raise ValueError(
                f"{sparse}, which needs a contiguous parameter (the kernels see it as a table "
                f"of rows); it has shape {tuple(p.shape)} and strides {p.stride()}: make it "
                "contiguous (p.data = p.data.contiguous())"
            )

    def _new_step(self, p, old, dtype):
        st = self.state[p]
        st["step"] = torch.tensor(float(old), dtype=dtype)
        return st["step"]

    def _prepare_state(self, where, p, st, h):
        """Create the state of ``p`` if it has none (as torch.optim would), add the buffers an
        option switched on later needs, and make every tensor fit the kernels (the
        parameter's dtype, device and layout): returns the tensors of the table's rows."""
        if len(st) == 0:
            self._init_state(p, st)
        step = st.get("step")
        if not (isinstance(step, torch.Tensor) and step.numel() == 1 and step.device.type == "cpu"
                and step.dtype in _STEP_DTYPES and step.is_contiguous()):
            st["step"] = torch.tensor(float(0 if step is None else step), dtype=_scalar_dtype())
        tensors = []
        for key in self._state_keys:
            if not self._state_used(key, h):
                tensors.append(None)
                continue
            t = st.get(key)
            if t is None:
                t = st[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif t.shape != p.shape:
                raise ValueError(f"{self._name}.step: the {key} of {where} has shape "
                                 f"{tuple(t.shape)}; the parameter has {tuple(p.shape)}")
            elif (t.dtype != p.dtype or t.device != p.device or t.layout is not torch.strided
                  or not _same_layout(t, p) or _overlap(t, p)):
                fitted = torch.empty_like(p, memory_format=torch.preserve_format)
                fitted.copy_(t)
                t = st[key] = fitted
            tensors.append(t)
        tensors += [None] * (3 - len(tensors))
        return tuple(tensors)


def _overlap(a, b):
    a0, an = _span(a)
    b0, bn = _span(b)
    return an and bn and a0 < b0 + bn and b0 < a0 + an


def _increment_version(params):
    """Tell autograd that the parameters changed in place (the kernels write through
    pointers, which autograd cannot see): a graph that saved them then refuses to run
    backward, as after torch.optim's in-place updates."""
    _bump(params)


# The hooks registered with torch.optim.optimizer.register_optimizer_step_pre_hook/_post_hook.
_GLOBAL_PRE_HOOKS = getattr(_torch_optimizer, "_global_optimizer_pre_hooks", {})
_GLOBAL_POST_HOOKS = getattr(_torch_optimizer, "_global_optimizer_post_hooks", {})

_bump = getattr(torch.autograd.graph, "increment_version", None) or (
    lambda ts: [torch._C._increment_version(t) for t in ts]
)


class _Exclusive:
    """``with``: the optimizer is not used by another thread (RuntimeError if it is)."""

    def __init__(self, opt, what):
        self.opt, self.what = opt, what

    def __enter__(self):
        if not self.opt._busy.acquire(False):
            raise _threads.busy_error(self.opt._name, self.what)

    def __exit__(self, *exc):
        self.opt._busy.release()


_FLAG_REASONS = {
    "foreach": "this optimizer always runs rmsprop_nb's compiled kernels (one call per group "
               "and dtype), not torch's per-tensor or foreach implementations",
    "fused": "this optimizer always runs rmsprop_nb's compiled kernels, not torch's fused one",
    "capturable": "the kernels are not CUDA-graph capturable (they read the step count on the "
                  "host)",
    "differentiable": "the kernels update the tensors outside autograd, so the step cannot be "
                      "differentiated",
}


class RMSprop(_Optimizer):
    r"""RMSprop as ``torch.optim.RMSprop``, run by rmsprop_nb's compiled kernels.

    A drop-in replacement: torch's names, defaults and semantics, every option of
    ``torch.optim.RMSprop``, parameter groups, learning-rate schedulers, closures, and
    ``state_dict()`` interchangeable with torch's own. For every element of a parameter with
    a gradient :math:`g` (after ``maximize``, :math:`g \leftarrow -g`, and ``weight_decay``,
    :math:`g \leftarrow g + \lambda\theta`):

    .. math::

        v_t &= \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2 \\
        \theta_t &= \theta_{t-1} - \eta\, \frac{g_t}{\sqrt{v_t} + \epsilon}

    :math:`v` (``square_avg``) starts at 0. With ``centered=True``, :math:`v_t` in the
    denominator becomes :math:`\max(v_t - \bar g_t^2, 0)`, where
    :math:`\bar g_t = \alpha \bar g_{t-1} + (1 - \alpha) g_t` (``grad_avg``); with
    ``momentum`` :math:`\mu > 0`, :math:`b_t = \mu b_{t-1} + g_t / \mathrm{denom}_t`
    (``momentum_buffer``) and :math:`\theta_t = \theta_{t-1} - \eta\, b_t`. With
    ``eps_in_sqrt=True`` the denominator is :math:`\sqrt{v_t + \epsilon}` (the book's RMSProp).

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        The parameters, or parameter groups (dicts with ``"params"`` and any hyperparameter
        below), as for any ``torch.optim`` optimizer. Dense float32 or float64 tensors
        (complex64/complex128 are updated as their real and imaginary parts, as torch does),
        on the CPU or a CUDA GPU, laid out as one block of memory (contiguous, or e.g.
        channels_last).
    lr : float or 1-element Tensor, default 1e-2
        Learning rate :math:`\eta \ge 0`; schedulers change ``group["lr"]`` between steps.
    alpha : float, default 0.99
        Smoothing constant :math:`\alpha \in [0, 1)` (the book's :math:`\gamma`).
    eps : float, default 1e-8
        :math:`\epsilon \ge 0`, added to :math:`\sqrt{v_t}` (see ``eps_in_sqrt``).
    weight_decay : float, default 0
        Coupled L2 penalty :math:`\lambda \ge 0`, added to the gradient.
    momentum : float, default 0
        Momentum :math:`\mu \ge 0`; a ``momentum_buffer`` is kept while it is > 0.
    centered : bool, default False
        Normalise by the estimated variance of the gradient (keeps ``grad_avg``).
    maximize : bool, default False
        Maximise the objective instead of minimising it.
    eps_in_sqrt : bool, default False, keyword-only
        True puts :math:`\epsilon` inside the root, :math:`\sqrt{v_t + \epsilon}`: the book's
        (and optax's, Keras's) RMSProp. False is torch's form.
    nonfinite : {"propagate", "raise", "skip"}, default "propagate", keyword-only
        What a step does when a gradient holds NaN or infinity: let it flow into the
        parameters and state (torch's behaviour); raise ``FloatingPointError`` before anything
        changes; or skip the whole step (no group changes, no step counted), counting it in
        :attr:`skipped_steps`. Checking costs a read of the gradients.
    lazy : bool, default False, keyword-only
        What a sparse gradient (``nn.Embedding(sparse=True)``) does to the rows it leaves out.
        False, the exact mode: the step equals the dense step with zeros on those rows, whose
        ``square_avg`` (and ``grad_avg``) decay by :math:`\alpha`; the decay reaches a row
        when it is next present, or when the state is read. ``momentum`` and
        ``weight_decay`` would move the absent rows too, so a sparse gradient in a group that
        uses them raises ``ValueError``. True: only the rows present decay and update
        (TensorFlow's ``SparseApplyRMSProp``); ``momentum`` and ``weight_decay`` act on those
        rows only. Dense gradients are stepped the same either way.
    foreach, capturable, differentiable : keyword-only
        Accepted at torch's defaults (``foreach`` None or False, the others False) so that
        code written for ``torch.optim.RMSprop`` runs unchanged; any other value raises
        ``ValueError`` (the kernels are neither torch's foreach implementation, nor
        CUDA-graph capturable, nor differentiable).

    Attributes
    ----------
    param_groups : list of dict
        As in ``torch.optim``: each group's parameters and hyperparameters (including
        ``eps_in_sqrt``, ``nonfinite`` and ``lazy``). They may be changed between steps.
    state : dict
        Per parameter, as ``torch.optim.RMSprop`` keeps it: ``step`` (a 0-dim float32
        tensor; float64 when torch's default dtype is), ``square_avg`` and, when on,
        ``momentum_buffer`` and ``grad_avg``. After exact sparse steps the rows left out are
        behind here until :meth:`state_dict` (or pickling) brings them up to date.
    skipped_steps : int
        Steps skipped by ``nonfinite="skip"`` (kept by this object, not in the state dict).

    Raises
    ------
    ValueError
        A hyperparameter out of its range, a torch flag this class does not support, a
        parameter that is not one block of memory, or two parameters sharing memory; at a
        step, a sparse gradient with ``momentum`` or ``weight_decay`` in the exact mode.
    TypeError
        A parameter of another dtype (float16, bfloat16, integers), layout or device.

    Notes
    -----
    The kernels follow torch's order of operations: float64 results agree with
    ``torch.optim.RMSprop`` to round-off, float32 results to a few ulp. One difference: with
    ``centered=True``, where round-off makes :math:`v_t - \bar g_t^2` negative, torch takes
    the square root of a negative number (NaN) and this class uses 0.

    On the CPU a step is one compiled call per group and dtype, over every parameter of the
    group that has a gradient (multi-threaded when they are large together); parameters
    whose gradient is None are skipped and their ``step`` is not advanced. CUDA tensors are
    updated by :func:`rmsprop_nb.cuda.rmsprop_step`'s kernel, one launch per parameter on
    torch's current stream (needs ``numba-cuda``).

    Sparse gradients (COO, of CPU parameters; ``torch.optim.RMSprop`` refuses them) are
    stepped by :func:`rmsprop_nb.kernels.rmsprop_step_rows`, one call per parameter, at the
    cost of the rows present: repeated indices are summed first, as ``coalesce`` would. The
    exact mode keeps, outside ``state``, the step as of which each row is up to date (8
    bytes per row) and brings every row up to date before the state is read
    (:meth:`state_dict`, pickling) or the parameter takes a dense or lazy step, or a step
    with another ``alpha``: the state dict is ``torch.optim.RMSprop``'s, and loads into it.
    See the user guide's *Sparse gradients*.

    Switching ``momentum`` on or ``centered`` on after the first step starts the new buffer at
    zero (``torch.optim.RMSprop`` raises a ``KeyError`` there).

    References
    ----------
    .. [1] T. Tieleman and G. Hinton, "Lecture 6.5 - RMSProp: Divide the gradient by a running
       average of its recent magnitude", COURSERA: Neural Networks for Machine Learning, 2012.
    .. [2] A. Graves, "Generating Sequences With Recurrent Neural Networks", arXiv:1308.0850,
       2013 (the centered variant).
    .. [3] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.6
       "RMSProp" (PyTorch edition), https://d2l.ai.

    Examples
    --------
    The book's RMSProp figure, :math:`f(x) = 0.1 x_1^2 + 2 x_2^2` from :math:`(-5, -2)`, with
    :math:`\eta = 0.4`, :math:`\gamma = 0.9` and :math:`\epsilon = 10^{-6}` in the root:

    >>> import torch
    >>> from rmsprop_nb.torch import RMSprop
    >>> f64 = torch.float64
    >>> x = torch.tensor([-5.0, -2.0], dtype=f64, requires_grad=True)
    >>> opt = RMSprop([x], lr=0.4, alpha=0.9, eps=1e-6,
    ...               eps_in_sqrt=True)
    >>> for epoch in range(20):
    ...     opt.zero_grad()
    ...     loss = 0.1 * x[0] ** 2 + 2 * x[1] ** 2
    ...     loss.backward()
    ...     opt.step()
    >>> x1, x2 = x.tolist()
    >>> print(f"epoch 20, x1 {x1:f}, x2 {x2:f}")
    epoch 20, x1 -0.010599, x2 0.000000

    A model with a learning-rate schedule, as with ``torch.optim.RMSprop``:

    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> from torch.optim.lr_scheduler import StepLR
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = RMSprop(model.parameters(), lr=0.01)
    >>> sched = StepLR(opt, step_size=10, gamma=0.5)
    >>> X, y = torch.randn(64, 3), torch.randn(64, 1)
    >>> for _ in range(30):
    ...     opt.zero_grad()
    ...     torch.nn.functional.mse_loss(model(X), y).backward()
    ...     opt.step()
    ...     sched.step()
    >>> opt.param_groups[0]["lr"]
    0.00125
    >>> opt.state[model.weight]["step"]
    tensor(30.)

    Sparse gradients, which ``torch.optim.RMSprop`` refuses: only
    the rows a batch uses move.

    >>> emb = torch.nn.Embedding(1000, 8, sparse=True)
    >>> opt = RMSprop(emb.parameters(), lr=0.01)
    >>> before = emb.weight.detach().clone()
    >>> emb(torch.tensor([[3, 7, 3]])).sum().backward()
    >>> emb.weight.grad.layout
    torch.sparse_coo
    >>> opt.step()
    >>> moved = (emb.weight != before).any(dim=1)
    >>> moved.nonzero().flatten().tolist()
    [3, 7]
    """

    _name = "RMSprop"
    _state_keys = ("square_avg", "momentum_buffer", "grad_avg")
    _ranges = {"lr": "nonnegative", "alpha": "unit", "eps": "nonnegative",
               "weight_decay": "nonnegative", "momentum": "nonnegative"}
    _bools = ("centered", "maximize", "eps_in_sqrt", "lazy")
    _torch_flags = {"foreach": (None, False), "capturable": (False,),
                    "differentiable": (False,)}
    _defaults_keys = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize",
                      "eps_in_sqrt", "nonfinite", "lazy")
    _hyper_keys = _defaults_keys
    _Hyper = namedtuple("RMSpropHyper", _hyper_keys)

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, maximize=False, *, eps_in_sqrt=False, nonfinite="propagate",
                 lazy=False, foreach=None, capturable=False, differentiable=False):
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable,
                        eps_in_sqrt=eps_in_sqrt, nonfinite=nonfinite, lazy=lazy)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:  # as torch.optim.RMSprop, for states of old versions
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
            group.setdefault("maximize", False)

    @staticmethod
    def _state_flags(h):
        return (h.momentum > 0, h.centered)

    @staticmethod
    def _state_used(key, h):
        return key == "square_avg" or (key == "momentum_buffer" and h.momentum > 0) or (
            key == "grad_avg" and h.centered)

    def _init_state(self, p, st):
        # momentum_buffer and grad_avg, when on, are added by _prepare_state
        st["step"] = torch.zeros((), dtype=_scalar_dtype())
        st["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, bucket, h, lo, hi):
        bucket.rmsprop(h)

    def _check_sparse_options(self, where, i, h):
        if h.lazy:
            return
        moving = [(k, v) for k, v in (("momentum", h.momentum), ("weight_decay", h.weight_decay))
                  if v > 0]
        if moving:
            got = " and ".join(f"param_groups[{i}]['{k}'] is {v!r}" for k, v in moving)
            names = " and ".join(k for k, _ in moving)
            raise ValueError(
                f"RMSprop.step: the gradient of {where} is sparse, but {got}: {names} "
                f"{'move' if len(moving) > 1 else 'moves'} rows that have no gradient, which "
                "the exact sparse step (lazy=False, the dense step's result) cannot do; set "
                f"lazy=True (for the optimizer or this group) to apply "
                f"{'them' if len(moving) > 1 else 'it'} to the rows present only"
            )

    def _update_rows(self, r, h, step):
        x, s, buf, gavg = r.tables
        buf = buf if h.momentum > 0 else None
        gavg = gavg if h.centered else None
        last = None
        if not h.lazy:
            lag = self._lags.get(r.column.p)
            if lag is None:  # every row is up to date as of the last step
                key = (r.d,) + r.column.tensors[::2]
                lag = self._lags[r.column.p] = _Lag(
                    key, h.alpha, np.full(x.shape[0], step - 1, np.int64), s, gavg)
            last = lag.last_step
        kernels.rmsprop_step_rows(
            x, r.rows, r.values, s, h.lr, h.alpha, h.eps, h.eps_in_sqrt, h.weight_decay,
            h.maximize, h.momentum, buf, h.centered, gavg, last_step=last,
            step=None if h.lazy else step, lazy=h.lazy,
        )


class Adagrad(_Optimizer):
    r"""Adagrad as ``torch.optim.Adagrad``, run by rmsprop_nb's compiled kernels.

    A drop-in replacement: torch's names, defaults and semantics, parameter groups,
    learning-rate schedulers, closures, and ``state_dict()`` interchangeable with torch's own.
    For every element of a parameter with a gradient :math:`g` (after ``maximize`` and
    ``weight_decay``), at the parameter's step :math:`t`:

    .. math::

        s_t &= s_{t-1} + g_t^2, \qquad \eta_t = \frac{\eta}{1 + (t - 1)\,\delta} \\
        \theta_t &= \theta_{t-1} - \eta_t\, \frac{g_t}{\sqrt{s_t} + \epsilon}

    :math:`s` (``sum``) starts at ``initial_accumulator_value``; with ``eps_in_sqrt=True`` the
    denominator is :math:`\sqrt{s_t + \epsilon}` (the book's AdaGrad).

    Parameters
    ----------
    params : iterable of torch.Tensor or of dict
        The parameters or parameter groups, as for :class:`RMSprop`.
    lr : float or 1-element Tensor, default 1e-2
        Learning rate :math:`\eta \ge 0`.
    lr_decay : float, default 0
        :math:`\delta \ge 0` in :math:`\eta_t = \eta / (1 + (t-1)\delta)`; :math:`t` is each
        parameter's own step count, as in torch.
    weight_decay : float, default 0
        Coupled L2 penalty :math:`\lambda \ge 0`, added to the gradient.
    initial_accumulator_value : float, default 0
        :math:`s_0 \ge 0`. As in ``torch.optim.Adagrad``, the constructor's value is used for
        every group (a group's own value is not).
    eps : float, default 1e-10
        :math:`\epsilon \ge 0`, added to :math:`\sqrt{s_t}` (see ``eps_in_sqrt``).
    maximize : bool, default False
        Maximise the objective instead of minimising it.
    eps_in_sqrt : bool, default False, keyword-only
        True puts :math:`\epsilon` inside the root, :math:`\sqrt{s_t + \epsilon}`: the book's
        AdaGrad. False is torch's form.
    nonfinite : {"propagate", "raise", "skip"}, default "propagate", keyword-only
        What a step does with NaN/inf gradients, as for :class:`RMSprop`.
    lazy : bool, default False, keyword-only
        For sparse gradients with a nonzero ``weight_decay``, which would move the rows left
        out: False refuses them, as ``torch.optim.Adagrad`` does (with its message, in a
        ``ValueError`` that is also a ``RuntimeError``); True applies the decay to the rows
        present only. Without weight decay the two are the same.
    foreach, fused, differentiable : keyword-only
        Accepted at torch's defaults (``foreach`` and ``fused`` None or False,
        ``differentiable`` False); any other value raises ``ValueError``.

    Attributes
    ----------
    param_groups : list of dict
        As in ``torch.optim``; may be changed between steps.
    state : dict
        Per parameter, as ``torch.optim.Adagrad`` keeps it: ``step`` (a 0-dim float32 tensor)
        and ``sum``, made for every parameter by the constructor.
    skipped_steps : int
        Steps skipped by ``nonfinite="skip"``.

    Raises
    ------
    ValueError, TypeError
        As for :class:`RMSprop`; at a step, a sparse gradient with a nonzero
        ``weight_decay`` and ``lazy=False`` (the error is also a ``RuntimeError``, as
        ``torch.optim.Adagrad``'s).

    Notes
    -----
    float64 results agree with ``torch.optim.Adagrad`` to round-off, float32 results to a few
    ulp. On the CPU a step is one compiled call per group and dtype (one per distinct step
    count, when the parameters of a group have taken different numbers of steps); CUDA
    tensors go through :func:`rmsprop_nb.cuda.adagrad_step`'s kernel on torch's current
    stream.

    Sparse gradients (COO, of CPU parameters) take ``torch.optim.Adagrad``'s sparse path:
    repeated indices summed, then only the rows present updated, which is the dense step's
    result since a zero gradient changes nothing. :func:`rmsprop_nb.kernels.adagrad_step_rows`
    does it in one call per parameter, on the gradient's indices and values as they are
    (without ``coalesce``). See the user guide's *Sparse gradients*.

    References
    ----------
    .. [1] J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning
       and Stochastic Optimization", Journal of Machine Learning Research 12, 2121-2159, 2011.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       "AdaGrad" (PyTorch edition), https://d2l.ai.

    Examples
    --------
    The book's AdaGrad figure (§7.5), :math:`\eta = 0.4` and :math:`\epsilon = 10^{-6}` in
    the root:

    >>> import torch
    >>> from rmsprop_nb.torch import Adagrad
    >>> f64 = torch.float64
    >>> x = torch.tensor([-5.0, -2.0], dtype=f64, requires_grad=True)
    >>> opt = Adagrad([x], lr=0.4, eps=1e-6, eps_in_sqrt=True)
    >>> for _ in range(20):
    ...     opt.zero_grad()
    ...     (0.1 * x[0] ** 2 + 2 * x[1] ** 2).backward()
    ...     opt.step()
    >>> x1, x2 = x.tolist()
    >>> print(f"x1 {x1:f}, x2 {x2:f}")
    x1 -2.382563, x2 -0.158591

    The state dict is torch's: it loads into ``torch.optim.Adagrad`` and back.

    >>> sorted(opt.state_dict()["state"][0])
    ['step', 'sum']
    >>> y = x.detach().clone().requires_grad_()
    >>> twin = torch.optim.Adagrad([y], lr=0.4)
    >>> twin.load_state_dict(opt.state_dict())
    >>> twin.state_dict()["state"][0]["step"]
    tensor(20.)

    Sparse gradients (``nn.Embedding(sparse=True)``) are stepped as
    ``torch.optim.Adagrad`` steps them, at the cost of the rows used:

    >>> emb = torch.nn.Embedding(1000, 8, sparse=True)
    >>> twin = torch.nn.Embedding.from_pretrained(
    ...     emb.weight.detach().clone(), freeze=False, sparse=True)
    >>> ours = Adagrad(emb.parameters(), lr=0.1)
    >>> theirs = torch.optim.Adagrad(twin.parameters(), lr=0.1)
    >>> ids = torch.randint(0, 1000, (32, 20))
    >>> for e, opt in ((emb, ours), (twin, theirs)):
    ...     e(ids).pow(2).sum().backward()
    ...     opt.step()
    >>> torch.allclose(emb.weight, twin.weight)
    True
    """

    _name = "Adagrad"
    _state_keys = ("sum",)
    _ranges = {"lr": "nonnegative", "lr_decay": "nonnegative", "eps": "nonnegative",
               "weight_decay": "nonnegative", "initial_accumulator_value": "nonnegative"}
    _bools = ("maximize", "eps_in_sqrt", "lazy")
    _torch_flags = {"foreach": (None, False), "fused": (None, False),
                    "differentiable": (False,)}
    _defaults_keys = ("lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value",
                      "maximize", "eps_in_sqrt", "nonfinite", "lazy")
    _hyper_keys = ("lr", "lr_decay", "eps", "weight_decay", "maximize", "eps_in_sqrt",
                   "nonfinite", "lazy")
    _Hyper = namedtuple("AdagradHyper", _hyper_keys)

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, maximize=False, *, eps_in_sqrt=False, nonfinite="propagate",
                 lazy=False, foreach=None, fused=None, differentiable=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused,
                        eps_in_sqrt=eps_in_sqrt, nonfinite=nonfinite, lazy=lazy)
        super().__init__(params, defaults)
        # As torch.optim.Adagrad: every parameter's state exists from the start.
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, self.state[p])

    @staticmethod
    def _state_flags(h):
        return ()

    @staticmethod
    def _state_used(key, h):
        return True

    def _init_state(self, p, st):
        st["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
        value = self.defaults["initial_accumulator_value"]
        if p.is_complex():
            value = complex(value, value)
        st["sum"] = torch.full_like(p, value, memory_format=torch.preserve_format)

    def _update(self, bucket, h, lo, hi):
        bucket.adagrad(h, lo, hi)

    def _check_sparse_options(self, where, i, h):
        if h.weight_decay > 0 and not h.lazy:
            raise _SparseOptionError(
                "Adagrad.step: weight_decay option is not compatible with sparse gradients "
                f"(as in torch.optim.Adagrad): param_groups[{i}]['weight_decay'] is "
                f"{h.weight_decay!r} and the gradient of {where} is sparse; the decay moves "
                "rows that have no gradient. Set lazy=True (for the optimizer or this group) "
                "to apply it to the rows present only, or weight_decay=0"
            )

    def _update_rows(self, r, h, step):
        x, s = r.tables[:2]
        kernels.adagrad_step_rows(x, r.rows, r.values, s, h.lr, h.eps, h.eps_in_sqrt,
                                  h.weight_decay, h.maximize, h.lr_decay, step, lazy=h.lazy)

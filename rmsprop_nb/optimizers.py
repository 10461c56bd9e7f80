r"""The optimizer classes: :class:`RMSProp` and :class:`AdaGrad` for lists of NumPy arrays.

Shaped like ``torch.optim``: an optimizer is constructed over a list of parameter arrays, which
it updates in place on every :meth:`~RMSProp.step`; its state (running averages, step count) can
be saved with :meth:`~RMSProp.state_dict` and restored with :meth:`~RMSProp.load_state_dict`.

A step over many arrays is one compiled call per dtype, not one call per array: the kernels
find the parameters, their state and the gradients by address (int64 tables), so one compiled
step serves any number of arrays of any shapes, and walks all of them, in parallel when they are
large together. Each gradient is checked and its address recorded first, by a small compiled
call (a fraction of a microsecond) whose type check runs once per kind of gradient.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator

import numpy as np

from . import _checkpoint, _loops, _threads, _validation

#: The ``nonfinite`` policies of the optimizers (what a step does with NaN/inf gradients).
NONFINITE_POLICIES = ("propagate", "raise", "skip")

__all__ = ["RMSProp", "AdaGrad"]


class _Group:
    """Parameters of one dtype with their state, and the address tables the kernels read."""

    def __init__(self, indices, params, state_names, state):
        self.indices = tuple(indices)
        # These tuples own the arrays whose addresses the kernels use; they never change.
        self.params = tuple(params[i] for i in self.indices)
        self.columns = tuple(zip(range(len(self.indices)), self.indices, self.params))
        self.state = {
            name: None if state[name] is None else tuple(state[name][i] for i in self.indices)
            for name in state_names
        }
        first, bufs, avgs = (list(self.state.values()) + [None, None])[:3]
        # Addresses of params, grads (filled in by every step), state; sizes (see kernels).
        self.table = _loops.address_table(self.params, first, bufs, avgs)
        self.segments, self.tasks = _loops.task_table([p.size for p in self.params])
        self.like = np.empty(0, self.params[0].dtype)  # tells the kernels the dtype
        # The table rows of the state that is on, None for the rest: the kernels specialise on it.
        self.rows = (
            None if bufs is None else _loops._BUFS, None if avgs is None else _loops._AVGS
        )
        # Large groups take the parallel loops (small ones never compile them).
        self.parallel = sum(p.nbytes for p in self.params) >= _loops.PARALLEL_MIN_BYTES
        # Work array of the parallel NaN/inf scan (nonfinite="raise"/"skip").
        self.counts = np.zeros(len(self.params), np.int64)


def _exclusive(method):
    """Run ``method`` only if no other thread is using the optimizer (RuntimeError if one is)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self._busy.acquire(False):
            raise _threads.busy_error(self._name, method.__name__)
        try:
            return method(self, *args, **kwargs)
        finally:
            self._busy.release()

    return wrapper


class _Optimizer:
    """What RMSProp and AdaGrad share: parameters, state, checks, state_dict, checkpoints."""

    _name = ""
    _state_names: tuple = ()

    def __init__(self, params, hyperparams, nonfinite="propagate"):
        self.nonfinite = nonfinite
        self.skipped_steps = 0
        # Held by the thread using the optimizer (re-entrant: save() calls state_dict()).
        self._busy = threading.RLock()
        if isinstance(params, Iterator):  # e.g. a generator: read it once
            params = list(params)
        # GPU arrays: rmsprop_nb.cuda (imported only then) checks them, keeps the state on the
        # GPU and steps there; the code below sees NumPy stand-ins of the params (no data).
        self._device = None
        if _on_device(params):
            from .cuda import _DeviceOptimizer

            self._device = _DeviceOptimizer(self._name, params)
            params = self._device.stand_ins
        self.params = _check_params(self._name, params)
        for name, value in hyperparams.items():
            setattr(self, name, value)
        self.step_count = 0
        self._state = self._init_state()
        if self._device is not None:
            self.params = self._device.params
            self._state = self._device.upload_state(self._state)
            return
        self._spans = _loops.memory_spans(self.params)
        kinds = {}
        for i, p in enumerate(self.params):
            kinds.setdefault(p.dtype, []).append(i)
        self._groups = [
            _Group(ix, self.params, self._state_names, self._state) for ix in kinds.values()
        ]

    # -- state -----------------------------------------------------------------------------

    @property
    def nonfinite(self):
        """What :meth:`step` does with NaN/inf gradients: "propagate", "raise" or "skip"."""
        return self._nonfinite

    @nonfinite.setter
    def nonfinite(self, value):
        if not isinstance(value, str) or value not in NONFINITE_POLICIES:
            raise ValueError(
                f"{self._name}: nonfinite must be one of {', '.join(map(repr, NONFINITE_POLICIES))}, "
                f"got {value!r}"
            )
        self._nonfinite = value

    def _init_state(self):  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def _hyperparams(self):
        return {name: getattr(self, name) for name in self._hyperparam_names}

    @_exclusive
    def state_dict(self):
        """Return the optimizer state as plain Python numbers and NumPy arrays (copies).

        Returns
        -------
        dict
            ``{"algorithm": str, "step": int, "skipped_steps": int, "hyperparams": dict,
            "state": {name: [array, ...]}}``, with one array per parameter for each state
            buffer that is on.
        """
        return {
            "algorithm": self._name,
            "step": self.step_count,
            "skipped_steps": self.skipped_steps,
            "hyperparams": self._hyperparams(),
            "state": {
                name: [a.copy() if self._device is None else self._device.to_host(a)
                       for a in arrays]
                for name, arrays in self._state.items()
                if arrays is not None
            },
        }

    @_exclusive
    def load_state_dict(self, state_dict):
        """Restore a state saved by :meth:`state_dict`; the next step continues bit-for-bit.

        Everything is checked (algorithm, buffers, number, shapes and dtypes of the arrays,
        hyperparameters) before anything is changed.

        Parameters
        ----------
        state_dict : dict
            As returned by :meth:`state_dict`.

        Raises
        ------
        ValueError, TypeError
            When the state does not fit this optimizer; the optimizer is then unchanged.
        """
        name = self._name
        if not isinstance(state_dict, dict):
            raise TypeError(f"{name}.load_state_dict: expected a dict, got {type(state_dict).__name__}")
        missing = {"algorithm", "step", "hyperparams", "state"} - set(state_dict)
        if missing:
            raise ValueError(f"{name}.load_state_dict: missing keys {sorted(missing)}")
        if state_dict["algorithm"] != name:
            raise ValueError(
                f"{name}.load_state_dict: the state is for {state_dict['algorithm']!r}, not {name!r}"
            )
        step = state_dict["step"]
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"{name}.load_state_dict: step must be an integer >= 0, got {step!r}")
        skipped = state_dict.get("skipped_steps", 0)  # absent from states saved before 0.1
        if isinstance(skipped, bool) or not isinstance(skipped, (int, np.integer)) or skipped < 0:
            raise ValueError(
                f"{name}.load_state_dict: skipped_steps must be an integer >= 0, got {skipped!r}"
            )
        hyper = dict(state_dict["hyperparams"])
        if set(hyper) != set(self._hyperparam_names):
            raise ValueError(
                f"{name}.load_state_dict: hyperparams must have the keys "
                f"{sorted(self._hyperparam_names)}, got {sorted(hyper)}"
            )
        self._check_hyperparams(hyper)
        saved = state_dict["state"]
        mine = {k: v for k, v in self._state.items() if v is not None}
        if set(saved) != set(mine):
            raise ValueError(
                f"{name}.load_state_dict: the state has buffers {sorted(saved)} but this "
                f"optimizer keeps {sorted(mine)} (momentum/centered must match)"
            )
        for key, arrays in saved.items():
            if len(arrays) != len(self.params):
                raise ValueError(
                    f"{name}.load_state_dict: {key} has {len(arrays)} arrays for "
                    f"{len(self.params)} parameters"
                )
            for i, (a, p) in enumerate(zip(arrays, self.params)):
                if not isinstance(a, np.ndarray):
                    raise TypeError(f"{name}.load_state_dict: {key}[{i}] must be a numpy.ndarray")
                if a.dtype != p.dtype or a.shape != p.shape:
                    raise ValueError(
                        f"{name}.load_state_dict: {key}[{i}] has dtype {a.dtype} and shape "
                        f"{a.shape}; parameter {i} has dtype {p.dtype} and shape {p.shape}"
                    )
        # All checked: now change things.
        for key, arrays in saved.items():
            for dst, src in zip(mine[key], arrays):
                if self._device is None:
                    np.copyto(dst, src)
                else:
                    self._device.copy_from_host(dst, src)
        for key, value in _floats(hyper).items():
            setattr(self, key, value)
        self.step_count = int(step)
        self.skipped_steps = int(skipped)

    @_exclusive
    def save(self, path):
        """Write the optimizer state to the ``.npz`` file ``path``, atomically.

        The file holds a format version, the algorithm, the hyperparameters, the step counts and
        the state arrays (not the parameters: save those yourself). It is written to a
        temporary file in the same folder, flushed to disk, then renamed over ``path``: a crash
        or a full disk never leaves a truncated checkpoint in place of a good one.

        Parameters
        ----------
        path : str or os.PathLike
            Destination, used as given (no suffix is added).
        """
        _checkpoint.write(path, self.state_dict())

    @_exclusive
    def load(self, path):
        """Restore the state written by :meth:`save`; the next step continues bit-for-bit.

        Everything is checked first (format version, algorithm, buffers, number, shapes and
        dtypes of the arrays, hyperparameters); on any mismatch or a damaged file nothing
        changes.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError, TypeError
            A file that is not an intact checkpoint, or one that does not fit this optimizer.
        """
        state = _checkpoint.read(path, f"{self._name}.load")
        try:
            self.load_state_dict(state)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{self._name}.load: {str(path)!r} does not fit: {exc}") from exc

    # -- step ------------------------------------------------------------------------------

    def step(self, grads):
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        grads : sequence of ndarray
            One gradient per parameter, in the order of ``params``, each with the parameter's
            shape, dtype and memory order (contiguous; read-only arrays are fine).

        Raises
        ------
        ValueError, TypeError
            A wrong number of gradients, or a gradient that does not match its parameter, or a
            hyperparameter out of range. No parameter or state is changed then.
        FloatingPointError
            With ``nonfinite="raise"``, a gradient holding NaN or inf (no change either).
        RuntimeError
            When another thread is using this optimizer at the same time.
        """
        if not self._busy.acquire(False):
            raise _threads.busy_error(self._name, "step")
        try:
            self._step(grads)
        finally:
            self._busy.release()

    def _step(self, grads):
        if type(grads) is not list and type(grads) is not tuple:
            grads = _grads_list(self._name, grads)
        if len(grads) != len(self.params):
            raise ValueError(
                f"{self._name}.step: grads must hold one gradient per parameter: expected "
                f"{len(self.params)}, got {len(grads)}"
            )
        if self._device is not None:
            if self._device.step(self, grads, self.step_count + 1):  # False: skipped
                self.step_count += 1
            return
        groups = self._groups
        t = self.step_count + 1
        try:
            # Every gradient is checked (and its address recorded) before any update.
            for grp in groups:
                self._set_grads(grp, grads)
            if self._nonfinite != "propagate" and self._skip_nonfinite():
                return
            for grp in groups:
                self._step_group(grp, t)
        except (TypeError, ValueError):
            # Say precisely which gradient is wrong when its type is (the kernels' type checks
            # see one gradient and its parameter at a time); otherwise re-raise as it is.
            _check_grads(self._name, self.params, grads)
            raise
        except OverflowError:  # an int attribute (e.g. opt.lr = 2**64) Numba cannot unbox
            raise ValueError(
                f"{self._name}.step: a hyperparameter is an integer out of the 64-bit range"
            ) from None
        self.step_count = t

    def _set_grads(self, grp, grads):
        """Check the gradients of a group and record their addresses for its kernel."""
        table, spans, set_grad = grp.table, self._spans, _loops._set_grad
        for k, i, p in grp.columns:  # (column of the table, index in grads, parameter)
            g = grads[i]
            if set_grad(table, k, g, p, spans):
                if g.shape != p.shape:
                    raise ValueError(
                        f"{self._name}.step: grads[{i}] has shape {g.shape} but params[{i}] has "
                        f"shape {p.shape}"
                    )
                j = next((j for j, q in enumerate(self.params) if np.may_share_memory(g, q)), i)
                raise ValueError(f"{self._name}.step: grads[{i}] shares memory with params[{j}]")

    def _skip_nonfinite(self):
        """nonfinite="raise"/"skip": scan every gradient before any update; True to skip."""
        # Bad hyperparameters are reported first, as on the default path (where the kernels
        # check them): this path costs a few microseconds more, for small steps only.
        hyper = self._hyperparams()
        seen = [(type(v), v) for v in hyper.values()]  # NaN never equals itself: re-checked
        if seen != getattr(self, "_hyper_checked", None):
            self._check_hyperparams(hyper)
            self._step_args.check(dict(hyper, like=self._groups[0].like, step=1))
            self._hyper_checked = seen
        for grp in self._groups:
            scan = (_loops._first_nonfinite_parallel if grp.parallel and _threads.PARALLEL
                    else _loops._first_nonfinite_serial)
            bad = scan(grp.table, grp.segments, grp.tasks, grp.like, grp.counts)
            if bad >= 0:
                i = grp.indices[bad]
                if self._nonfinite == "raise":
                    raise FloatingPointError(
                        f"{self._name}.step: grads[{i}] contains NaN or infinity; nothing was "
                        "updated (nonfinite='raise')"
                    )
                self.skipped_steps += 1
                return True
        return False

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyperparams().items())
        return f"{self._name}(<{len(self.params)} arrays>, {args})"


def _on_device(params):
    """True when ``params`` holds GPU arrays (``__cuda_array_interface__``, or the simulator's)."""
    return isinstance(params, (list, tuple)) and any(
        hasattr(p, "__cuda_array_interface__") or getattr(p, "__cuda_ndarray__", False)
        for p in params
    )


def _check_params(name, params):
    if isinstance(params, np.ndarray):
        raise TypeError(f"{name}: params must be a list of arrays; wrap a single array in a list")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{name}: params must be a list of arrays, got {type(params).__name__}") from None
    if not params:
        raise ValueError(f"{name}: params is empty")
    for i, p in enumerate(params):
        _validation.check_array(f"{name}: params[{i}]", p)
    # No two parameters may share memory: one step would update the shared part twice.
    spans = sorted(
        (p.__array_interface__["data"][0], p.nbytes, i) for i, p in enumerate(params) if p.size
    )
    for (a0, an, ai), (b0, _, bi) in zip(spans, spans[1:]):
        if b0 < a0 + an:
            raise ValueError(f"{name}: params[{ai}] and params[{bi}] share memory")
    return params


def _grads_list(name, grads):
    """``grads`` as a list: any iterable of arrays, but not one array (whose rows would be
    taken for gradients) nor a string."""
    if isinstance(grads, np.ndarray) or hasattr(grads, "__cuda_array_interface__"):
        raise TypeError(
            f"{name}.step: grads must be a list with one gradient per parameter, got an array; "
            "for a single parameter write step([g])"
        )
    if isinstance(grads, (str, bytes)) or not hasattr(grads, "__iter__"):
        raise TypeError(
            f"{name}.step: grads must be a list with one gradient per parameter, got "
            f"{type(grads).__name__}"
        )
    return list(grads)


def _check_grads(name, params, grads):
    for i, (p, g) in enumerate(zip(params, grads)):
        _validation.check_array(
            f"{name}.step: grads[{i}]", g, like=p, like_name=f"params[{i}]", writeable=False
        )


class RMSProp(_Optimizer):
    r"""RMSProp (Tieleman & Hinton, 2012) over a list of NumPy arrays, updated in place.

    For every element, with gradient :math:`g` (after ``maximize`` and ``weight_decay``):

    .. math::

        s_t &= \gamma\, s_{t-1} + (1 - \gamma)\, g_t^2 \\
        x_t &= x_{t-1} - \eta\, \frac{g_t}{\sqrt{s_t + \epsilon}}
        \qquad (\mathtt{eps\_in\_sqrt{=}True},\ \text{the book})

    or :math:`x_t = x_{t-1} - \eta\, g_t / (\sqrt{s_t} + \epsilon)` with
    ``eps_in_sqrt=False`` (PyTorch). :math:`s` starts at 0. With ``centered=True`` the
    denominator uses the variance estimate :math:`\max(s_t - \bar g_t^2, 0)`, where
    :math:`\bar g_t = \gamma \bar g_{t-1} + (1-\gamma) g_t`; with ``momentum`` :math:`\mu > 0`,
    :math:`b_t = \mu b_{t-1} + g_t / \mathrm{denom}_t` and :math:`x_t = x_{t-1} - \eta b_t`;
    ``weight_decay`` :math:`\lambda` replaces :math:`g_t` by :math:`g_t + \lambda x_{t-1}`;
    ``maximize`` by :math:`-g_t` (first).

    Parameters
    ----------
    params : list of ndarray
        The parameters: float32 or float64, contiguous, writeable, not sharing memory. They are
        updated in place by :meth:`step`. Arrays of different dtypes and shapes may be mixed.
    lr : float, default 0.01
        Learning rate :math:`\eta \ge 0` (the book's :math:`\eta`).
    gamma : float, default 0.9
        Decay rate :math:`\gamma \in [0, 1)`: :math:`s` averages about the last
        :math:`1/(1-\gamma)` squared gradients. PyTorch calls it ``alpha``, Keras ``rho``,
        optax ``decay``.
    eps : float, default 1e-6
        :math:`\epsilon \ge 0`, the book's value; see ``eps_in_sqrt`` for where it goes.
    eps_in_sqrt : bool, default True
        True: :math:`\sqrt{s + \epsilon}` (book, optax, Keras). False: :math:`\sqrt{s} +
        \epsilon` (PyTorch).
    momentum : float, default 0.0
        Momentum :math:`\mu \ge 0` (PyTorch's form); a buffer per parameter is kept if > 0.
    centered : bool, default False
        Normalise by the estimated variance instead of the second moment (keeps :math:`\bar g`).
    weight_decay : float, default 0.0
        Coupled L2 penalty :math:`\lambda \ge 0`, added to the gradient.
    maximize : bool, default False
        Maximise the objective instead of minimising it.
    nonfinite : {"propagate", "raise", "skip"}, default "propagate"
        What a step does when a gradient holds NaN or inf: let it flow into the parameters and
        state (as ``torch.optim`` does); raise ``FloatingPointError`` before anything changes;
        or skip the whole step, counting it in ``skipped_steps``. The checks cost a read of the
        gradients (see the user guide's Reliability page); the default costs nothing.

    Attributes
    ----------
    params : list of ndarray
        The arrays being optimised.
    step_count : int
        Number of steps taken.
    skipped_steps : int
        Number of steps skipped by ``nonfinite="skip"`` (not counted in ``step_count``).
    lr, gamma, eps, eps_in_sqrt, momentum, centered, weight_decay, maximize
        The hyperparameters. ``lr``, ``gamma``, ``eps`` and ``weight_decay`` may be changed
        between steps (e.g. a learning-rate schedule); they are checked at the next step.

    Notes
    -----
    How to get the same numbers as other libraries:

    ============ ===================================== ==================================
    library      its call                              this class
    ============ ===================================== ==================================
    d2l (book)   ``rmsprop(eta, gamma=0.9)``, eps 1e-6 ``RMSProp(p, lr=eta, gamma=0.9)``
    PyTorch      ``RMSprop(p, lr, alpha=0.99,``        ``RMSProp(p, lr, gamma=0.99,``
                 ``eps=1e-8)``                         ``eps=1e-8, eps_in_sqrt=False)``
    optax        ``rmsprop(lr, decay=0.9, eps=1e-8)``  ``RMSProp(p, lr, 0.9, 1e-8)``
    Keras        ``RMSprop(lr, rho=0.9,``              ``RMSProp(p, lr, 0.9, 1e-7)``
                 ``epsilon=1e-7)``
    ============ ===================================== ==================================

    PyTorch's ``momentum``, ``centered``, ``weight_decay`` and ``maximize`` have the same
    meaning here. Keras's own ``momentum`` and ``centered`` differ in detail.
    The per-element update is :func:`rmsprop_nb.kernels.rmsprop_step`; a step over many
    arrays is one compiled call per dtype.

    References
    ----------
    .. [1] T. Tieleman and G. Hinton, "Lecture 6.5 - RMSProp: Divide the gradient by a running
       average of its recent magnitude", COURSERA: Neural Networks for Machine Learning, 2012.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.6
       "RMSProp" (PyTorch edition), https://d2l.ai.
    .. [3] A. Graves, "Generating Sequences With Recurrent Neural Networks", arXiv:1308.0850,
       2013 (the centered variant).

    Examples
    --------
    >>> import numpy as np
    >>> from rmsprop_nb import RMSProp
    >>> x = np.array([-5.0, -2.0])
    >>> opt = RMSProp([x], lr=0.4, gamma=0.9)
    >>> for _ in range(20):
    ...     opt.step([np.array([0.2, 4.0]) * x])   # gradient of 0.1 x1^2 + 2 x2^2
    >>> print(f"x1 {x[0]:f}, x2 {x[1]:f}")
    x1 -0.010599, x2 0.000000

    Save and resume:

    >>> state = opt.state_dict()
    >>> opt2 = RMSProp([x.copy()], lr=0.4)
    >>> opt2.load_state_dict(state)
    >>> opt2.step_count, opt2.gamma
    (20, 0.9)
    """

    _name = "RMSProp"
    _step_args = _loops.RMSPROP_STEP_ARGS
    _state_names = ("square_avg", "momentum_buffer", "grad_avg")
    _hyperparam_names = (
        "lr", "gamma", "eps", "eps_in_sqrt", "momentum", "centered", "weight_decay", "maximize",
    )

    def __init__(
        self, params, lr=0.01, gamma=0.9, eps=1e-6, *, eps_in_sqrt=True, momentum=0.0,
        centered=False, weight_decay=0.0, maximize=False, nonfinite="propagate",
    ):
        hyper = dict(
            lr=lr, gamma=gamma, eps=eps, eps_in_sqrt=eps_in_sqrt, momentum=momentum,
            centered=centered, weight_decay=weight_decay, maximize=maximize,
        )
        self._check_hyperparams(hyper)
        hyper = _floats(hyper)
        super().__init__(params, hyper, nonfinite)

    @property
    def centered(self):
        return self._centered

    @centered.setter
    def centered(self, value):
        # The kernels keep grad_avg exactly when centered: a later change would be ignored.
        if hasattr(self, "_centered") and (
            not isinstance(value, (bool, np.bool_)) or bool(value) != self._centered
        ):
            raise ValueError(f"{self._name}: centered cannot be changed after construction")
        self._centered = value

    def _check_hyperparams(self, h):
        n = self._name
        _validation.check_range(f"{n}: lr", h["lr"])
        _validation.check_range(f"{n}: gamma", h["gamma"], "unit")
        _validation.check_range(f"{n}: eps", h["eps"])
        _validation.check_range(f"{n}: momentum", h["momentum"])
        _validation.check_range(f"{n}: weight_decay", h["weight_decay"])
        for flag in ("eps_in_sqrt", "centered", "maximize"):
            _validation.check_flag(f"{n}: {flag}", h[flag])
        if hasattr(self, "momentum") and (h["momentum"] > 0) != (self.momentum > 0):
            raise ValueError(f"{n}: momentum cannot be switched on or off after construction")
        if hasattr(self, "centered") and h["centered"] != self.centered:
            raise ValueError(f"{n}: centered cannot be changed after construction")

    def _init_state(self):
        zeros = [np.zeros_like(p) for p in self.params]
        return {
            "square_avg": zeros,
            "momentum_buffer": [np.zeros_like(p) for p in self.params] if self.momentum > 0 else None,
            "grad_avg": [np.zeros_like(p) for p in self.params] if self.centered else None,
        }

    def _step_group(self, grp, t):
        bufs, avgs = grp.rows
        kernel = (_loops._rmsprop_group_parallel if grp.parallel and _threads.PARALLEL
                  else _loops._rmsprop_group_serial)
        kernel(
            grp.table, grp.segments, grp.tasks, grp.like, bufs, avgs, self.lr, self.gamma,
            self.eps, self.eps_in_sqrt, self.weight_decay, self.maximize, self.momentum,
        )


class AdaGrad(_Optimizer):
    r"""AdaGrad (Duchi, Hazan & Singer, 2011) over a list of NumPy arrays, updated in place.

    For every element, with gradient :math:`g` (after ``maximize`` and ``weight_decay``):

    .. math::

        s_t &= s_{t-1} + g_t^2, \qquad \eta_t = \frac{\eta}{1 + (t-1)\,\delta} \\
        x_t &= x_{t-1} - \eta_t\, \frac{g_t}{\sqrt{s_t + \epsilon}}
        \qquad (\mathtt{eps\_in\_sqrt{=}True},\ \text{the book})

    or :math:`x_t = x_{t-1} - \eta_t\, g_t / (\sqrt{s_t} + \epsilon)` with
    ``eps_in_sqrt=False`` (PyTorch). :math:`s_0` is ``initial_accumulator_value``
    (0 in the book). Because :math:`s_t` only grows, the effective rate
    :math:`\eta_t / \sqrt{s_t + \epsilon}` of every coordinate only decays.

    Parameters
    ----------
    params : list of ndarray
        The parameters: float32 or float64, contiguous, writeable, not sharing memory.
    lr : float, default 0.01
        Learning rate :math:`\eta \ge 0`.
    eps : float, default 1e-6
        :math:`\epsilon \ge 0` (the book's value; PyTorch uses 1e-10, outside the root).
    eps_in_sqrt : bool, default True
        True: :math:`\sqrt{s + \epsilon}` (book, optax, Keras). False: :math:`\sqrt{s} +
        \epsilon` (PyTorch).
    initial_accumulator_value : float, default 0.0
        :math:`s_0 \ge 0` (PyTorch's name; Keras and optax use 0.1).
    lr_decay : float, default 0.0
        :math:`\delta \ge 0` in :math:`\eta_t = \eta / (1 + (t-1)\delta)` (PyTorch's form).
    weight_decay : float, default 0.0
        Coupled L2 penalty :math:`\lambda \ge 0`, added to the gradient.
    maximize : bool, default False
        Maximise the objective instead of minimising it.
    nonfinite : {"propagate", "raise", "skip"}, default "propagate"
        What a step does when a gradient holds NaN or inf: let it flow into the parameters and
        state (as ``torch.optim`` does); raise ``FloatingPointError`` before anything changes;
        or skip the whole step, counting it in ``skipped_steps``. The checks cost a read of the
        gradients (see the user guide's Reliability page); the default costs nothing.

    Attributes
    ----------
    params : list of ndarray
        The arrays being optimised.
    step_count : int
        Number of steps taken (:math:`t` of the last step).
    skipped_steps : int
        Number of steps skipped by ``nonfinite="skip"`` (not counted in ``step_count``).
    lr, eps, eps_in_sqrt, initial_accumulator_value, lr_decay, weight_decay, maximize
        The hyperparameters; ``lr``, ``eps``, ``lr_decay`` and ``weight_decay`` may be changed
        between steps and are checked at the next step.

    Notes
    -----
    ============ ======================================= ====================================
    library      its call                                this class
    ============ ======================================= ====================================
    d2l (book)   ``adagrad(eta)``, eps 1e-6              ``AdaGrad(p, lr=eta)``
    PyTorch      ``Adagrad(p, lr=0.01, eps=1e-10)``      ``AdaGrad(p, 0.01, 1e-10,``
                                                         ``eps_in_sqrt=False)``
    optax        ``adagrad(lr, initial_accumulator``     ``AdaGrad(p, lr, 1e-7,``
                 ``_value=0.1, eps=1e-7)``               ``initial_accumulator_value=0.1)``
    Keras        ``Adagrad(lr, initial_accumulator``     ``AdaGrad(p, lr, 1e-7,``
                 ``_value=0.1, epsilon=1e-7)``           ``initial_accumulator_value=0.1)``
    ============ ======================================= ====================================

    The per-element update is :func:`rmsprop_nb.kernels.adagrad_step`.

    References
    ----------
    .. [1] J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning
       and Stochastic Optimization", Journal of Machine Learning Research 12, 2121-2159, 2011.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       "AdaGrad" (PyTorch edition), https://d2l.ai.

    Examples
    --------
    >>> import numpy as np
    >>> from rmsprop_nb import AdaGrad
    >>> x = np.array([-5.0, -2.0])
    >>> opt = AdaGrad([x], lr=0.4)
    >>> for _ in range(20):
    ...     opt.step([np.array([0.2, 4.0]) * x])
    >>> print(f"x1 {x[0]:f}, x2 {x[1]:f}")
    x1 -2.382563, x2 -0.158591
    """

    _name = "AdaGrad"
    _step_args = _loops.ADAGRAD_STEP_ARGS
    _state_names = ("sum",)
    _hyperparam_names = (
        "lr", "eps", "eps_in_sqrt", "initial_accumulator_value", "lr_decay", "weight_decay",
        "maximize",
    )

    def __init__(
        self, params, lr=0.01, eps=1e-6, *, eps_in_sqrt=True, initial_accumulator_value=0.0,
        lr_decay=0.0, weight_decay=0.0, maximize=False, nonfinite="propagate",
    ):
        hyper = dict(
            lr=lr, eps=eps, eps_in_sqrt=eps_in_sqrt,
            initial_accumulator_value=initial_accumulator_value, lr_decay=lr_decay,
            weight_decay=weight_decay, maximize=maximize,
        )
        self._check_hyperparams(hyper)
        super().__init__(params, _floats(hyper), nonfinite)

    def _check_hyperparams(self, h):
        n = self._name
        for key in ("lr", "eps", "initial_accumulator_value", "lr_decay", "weight_decay"):
            _validation.check_range(f"{n}: {key}", h[key])
        for flag in ("eps_in_sqrt", "maximize"):
            _validation.check_flag(f"{n}: {flag}", h[flag])

    def _init_state(self):
        return {"sum": [np.full_like(p, self.initial_accumulator_value) for p in self.params]}

    def _step_group(self, grp, t):
        kernel = (_loops._adagrad_group_parallel if grp.parallel and _threads.PARALLEL
                  else _loops._adagrad_group_serial)
        kernel(
            grp.table, grp.segments, grp.tasks, grp.like, self.lr, self.eps, self.eps_in_sqrt,
            self.weight_decay, self.maximize, self.lr_decay, t,
        )


def _floats(hyper):
    """Real hyperparameters as Python floats and flags as bools: one compiled specialization."""
    return {k: bool(v) if isinstance(v, (bool, np.bool_)) else float(v) for k, v in hyper.items()}

r"""The optimizer classes: :class:`RMSProp` and :class:`AdaGrad` for lists of NumPy arrays.

Shaped like ``torch.optim``: an optimizer is constructed over parameter arrays, which it updates
in place on every :meth:`~RMSProp.step`, optionally in *parameter groups* with hyperparameters
of their own (a learning rate may be a schedule, a function of the step number); its state
(running averages, step counts, the groups' hyperparameters) can be saved with
:meth:`~RMSProp.state_dict` and restored with :meth:`~RMSProp.load_state_dict`.

A step is one compiled call per group and dtype, not one call per array: the kernels find the
parameters, their state and the gradients by address (int64 tables), so one compiled step
serves any number of arrays of any shapes, and walks all of them, in parallel when they are
large together. Each gradient is checked and its address recorded first, by a small compiled
call (a fraction of a microsecond) whose type check runs once per kind of gradient. Every
group's hyperparameters are checked before any update, in Python, and only when they changed.

A parameter whose gradient is a :class:`~rmsprop_nb.SparseGrad` (row-sparse) gets address 0 in
the table, which the compiled step skips, and is updated by the row kernels of
:mod:`rmsprop_nb.kernels` instead. Exact RMSProp keeps, for such a parameter, the step as of
which each row is up to date (``last_step``), and brings every row up to date whenever the
state is read or the parameter takes a dense gradient (see :meth:`_Optimizer._catch_up`).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterator

import numpy as np

from . import _checkpoint, _loops, _threads, _validation, kernels
from ._sparse import SparseGrad

#: The ``nonfinite`` policies of the optimizers (what a step does with NaN/inf gradients).
NONFINITE_POLICIES = ("propagate", "raise", "skip")

__all__ = ["RMSProp", "AdaGrad"]


class _Table:
    """The parameters of one dtype and one kind of state (of any groups), with their state:
    the address table, tasks and flags the compiled step reads."""

    def __init__(self, indices, params, state, groups):
        self.indices = tuple(indices)
        # These tuples own the arrays whose addresses the kernels use; they never change.
        self.params = tuple(params[i] for i in self.indices)
        self.columns = tuple(zip(range(len(self.indices)), self.indices, self.params))
        kept = [None if state[name][self.indices[0]] is None
                else tuple(state[name][i] for i in self.indices) for name in state]
        first, bufs, avgs = (kept + [None, None])[:3]
        # Addresses of params, grads (filled in by every step), state; sizes; groups.
        self.table = _loops.address_table(self.params, first, bufs, avgs, groups)
        self.segments, self.tasks = _loops.task_table([p.size for p in self.params])
        self.like = np.empty(0, self.params[0].dtype)  # tells the kernels the dtype
        # The table rows of the state that is on, None for the rest: the kernels specialise on it.
        self.rows = (
            None if bufs is None else _loops._BUFS, None if avgs is None else _loops._AVGS
        )
        # Large tables take the parallel loops (small ones never compile them).
        self.parallel = sum(p.nbytes for p in self.params) >= _loops.PARALLEL_MIN_BYTES
        # What every step passes to the compiled step before the hyperparameters.
        self.args = (self.table, self.segments, self.tasks, self.like) + (
            self.rows if len(state) > 1 else ())
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


class _ParamGroup(dict):
    """A parameter group: a plain dict to its users, which notes when any value is set so that
    a step checks the group's hyperparameters only after they changed (and allocates nothing
    when they did not)."""

    changed = True

    def __setitem__(self, key, value):
        self.changed = True
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self.changed = True
        super().__delitem__(key)

    def update(self, *args, **kwargs):
        self.changed = True
        super().update(*args, **kwargs)

    def setdefault(self, key, default=None):
        self.changed = True
        return super().setdefault(key, default)

    def pop(self, *args):
        self.changed = True
        return super().pop(*args)

    def popitem(self):
        self.changed = True
        return super().popitem()

    def clear(self):
        self.changed = True
        super().clear()

    def __ior__(self, other):
        self.changed = True
        return super().__ior__(other)


def _hyperparameter(name):
    """``opt.NAME``: the value every group shares (set: in every group, checked at the next
    step). With one group, as before groups existed: that group's value."""

    def get(self):
        groups = self.param_groups
        first = groups[0][name]
        if all(g[name] is first or g[name] == first for g in groups[1:]):
            return first
        raise AttributeError(
            f"{self._name}: the {len(groups)} parameter groups have different values of "
            f"{name}; read opt.param_groups[i][{name!r}]"
        )

    def set(self, value):
        for g in self.param_groups:
            g[name] = value

    return property(get, set, doc=f"The groups' ``{name}`` (all groups: read, and set).")


class _Optimizer:
    """What RMSProp and AdaGrad share: groups, state, checks, state_dict, checkpoints, step."""

    _name = ""
    _state_names: tuple = ()
    _hyperparam_names: tuple = ()
    # The hyperparameters the compiled step takes, in its order (lr first).
    _kernel_keys: tuple = ()
    # Hyperparameters fixed once a group exists (its state arrays depend on them).
    _fixed_keys: tuple = ()
    _hyper_columns = 0

    def __init__(self, params, defaults, nonfinite="propagate", lazy=False):
        self.nonfinite = nonfinite
        _validation.check_flag(f"{self._name}: lazy", lazy)
        self._lazy = bool(lazy)
        self.skipped_steps = 0
        self.step_count = 0
        # Held by the thread using the optimizer (re-entrant: save() calls state_dict()).
        self._busy = threading.RLock()
        self._step_name = f"{self._name}.step"
        self._check_values(self._name, defaults, lambda k: k)
        #: The constructor's hyperparameters: the values of keys a group does not set.
        self.defaults = _floats(defaults)
        #: The parameter groups: dicts with "params" (a list of arrays) and every
        #: hyperparameter; edit the values between steps (checked at the next step).
        self.param_groups = []
        #: Every parameter, in group order (the index of the state lists and state_dict).
        self.params = []
        self._state = {name: [] for name in self._state_names}
        # The step count when each group was added: its own count (AdaGrad's lr_decay uses it)
        # is step_count minus that.
        self._group_start = []
        self._fixed = []  # each group's _fixed_keys as they were when it was added
        self._tables = []  # a _Table per dtype and kind of state (host arrays)
        # Each group's checked hyperparameters: as the kernels take them, and as the rows of
        # the float64 matrix the compiled steps read (flags as 0/1; see _loops._*_row).
        self._kernel_args = []
        self._hyper = np.zeros((0, self._hyper_columns))
        self._schedules = []  # the groups whose learning rate is a schedule (None: to find)
        self._device = None
        self._labels = []  # how messages name each parameter
        self._group_of = []  # each parameter's group
        # Exact RMSProp, for each parameter stepped with row-sparse gradients since its state
        # was last brought up to date: [last_step, gamma] (the int64 step as of which each row
        # is up to date, and the gamma of the steps it missed).
        self._row_steps = {}
        groups, self._plain = _as_groups(self._name, params)
        self._on_gpu = None  # decided by the first group
        for group in groups:
            self._add_group(group, self._name)

    # -- groups ----------------------------------------------------------------------------

    def _key(self, i, key):
        """How messages name hyperparameter ``key`` of group ``i``."""
        if self._plain and i == 0 and len(self.param_groups) <= 1:
            return key
        return f"param_groups[{i}][{key!r}]"

    @_exclusive
    def add_param_group(self, param_group):
        """Add a group of parameters with hyperparameters of their own (``torch.optim``'s).

        Keys the group does not set take the constructor's values (:attr:`defaults`). The new
        parameters start with fresh state; the state of the others is untouched. Everything is
        checked before anything changes.

        Parameters
        ----------
        param_group : dict
            ``{"params": [array, ...], "lr": ..., ...}``: the arrays (not already in another
            group) and any of the hyperparameters of the constructor.

        Raises
        ------
        ValueError, TypeError
            A missing ``"params"``, an unknown key, a bad value, or an array that is already
            optimised (or shares memory with one).
        """
        self._add_group(param_group, f"{self._name}.add_param_group")

    def _add_group(self, group, where):
        i = len(self.param_groups)
        name = self._key
        if not isinstance(group, dict):
            raise TypeError(f"{where}: a parameter group must be a dict, got {type(group).__name__}")
        if "params" not in group:
            raise ValueError(f"{where}: param_groups[{i}] has no 'params' key")
        unknown = sorted(set(group) - {"params"} - set(self._hyperparam_names))
        if unknown:
            raise ValueError(
                f"{where}: param_groups[{i}] has unknown keys {unknown}; the keys are "
                f"'params' and {', '.join(map(repr, self._hyperparam_names))}"
            )
        values = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        self._check_values(where, values, lambda k: name(i, k))
        if self._plain:
            arrays = _param_list(f"{where}: params", group["params"], single_ok=False)
        else:
            arrays = _param_list(f"{where}: param_groups[{i}]['params']", group["params"],
                                 single_ok=True)
        first = len(self.params)
        labels = self._labels + [
            f"params[{first + j}]" if self._plain else f"param_groups[{i}]['params'][{j}]"
            for j in range(len(arrays))
        ]
        label = labels.__getitem__
        if self._on_gpu is None:
            self._on_gpu = _on_device(arrays)
        if _on_device(arrays) != self._on_gpu:
            raise TypeError(f"{where}: host and GPU arrays cannot be mixed in one optimizer")
        if self._on_gpu:
            from .cuda import _DeviceOptimizer

            if self._device is None:
                self._device = _DeviceOptimizer(self._name)
            stand_ins = self._device.check(where, arrays, label)
        else:
            stand_ins = arrays
            for j, p in enumerate(arrays):
                _validation.check_array(f"{where}: {label(first + j)}", p)
            _check_disjoint(where, self.params + arrays, label)
        # All checked: now change things.
        state = self._new_state(stand_ins, values)
        if self._device is not None:
            arrays, state = self._device.add(state)
        self.params.extend(arrays)
        self._group_of.extend([i] * len(arrays))
        self._labels = labels
        for key in self._state_names:
            self._state[key].extend(state[key])
        self.param_groups.append(_ParamGroup(params=list(arrays), **values))
        self._group_start.append(self.step_count)
        self._fixed.append(tuple(_fixed_value(k, values[k]) for k in self._fixed_keys))
        self._kernel_args.append(None)
        self._hyper = np.vstack([self._hyper, np.zeros((1, self._hyper.shape[1]))])
        if self._device is None:
            self._tables = self._make_tables()
            self._spans = _loops.memory_spans(self.params)

    def _make_tables(self):
        """One address table per dtype and kind of state, over every group."""
        group_of = [i for i, g in enumerate(self.param_groups) for _ in g["params"]]
        kinds = {}
        for j, p in enumerate(self.params):
            kept = tuple(self._state[k][j] is not None for k in self._state_names)
            kinds.setdefault((p.dtype, kept), []).append(j)
        return [_Table(ix, self.params, self._state, [group_of[j] for j in ix])
                for ix in kinds.values()]

    def _check_values(self, where, values, name):
        """Check one group's hyperparameters (``name(key)``: how messages name a key);
        ``lr`` may be a schedule, a callable of the step number."""
        for key in self._hyperparam_names:
            v = values[key]
            if key == "lr" and callable(v):
                continue
            if key in self._flags:
                _validation.check_flag(f"{where}: {name(key)}", v)
            else:
                _validation.check_range(f"{where}: {name(key)}", v,
                                        "unit" if key == "gamma" else "nonnegative")

    def _resolve(self, where, t):
        """Each group's kernel arguments for step ``t``: every group's values checked (when they
        changed) and schedules called, before any update; the matrix rows follow."""
        args = self._kernel_args
        for i, g in enumerate(self.param_groups):
            if g.changed:
                self._check_group(where, i, g)
                args[i] = tuple(
                    bool(v) if isinstance(v, (bool, np.bool_)) else
                    (v if callable(v) else float(v)) for v in map(g.__getitem__, self._kernel_keys)
                )
                row = self._hyper[i]
                row[:len(args[i])] = [0.0 if callable(v) else v for v in args[i]]
                if self._hyper_columns > len(args[i]):  # AdaGrad: when the group started
                    row[-1] = self._group_start[i]
                self._schedules = None
                g.changed = False
        if self._schedules is None:
            self._schedules = [j for j, a in enumerate(args) if callable(a[0])]
        if self._schedules:
            args = list(args)
            for i in self._schedules:
                lr = self._scheduled(where, i, args[i][0], t)
                args[i] = (lr,) + args[i][1:]
                self._hyper[i, 0] = lr
        return args

    def _check_group(self, where, i, g):
        name = lambda k: self._key(i, k)  # noqa: E731
        self._check_values(where, g, name)
        fixed = tuple(_fixed_value(k, g[k]) for k in self._fixed_keys)
        _check_fixed(where, name, self._fixed_keys, self._fixed[i], fixed)

    def _scheduled(self, where, i, schedule, t):
        """The learning rate a schedule gives for step ``t``, checked like a number."""
        lr = schedule(t)
        if not (type(lr) is float and 0.0 <= lr < math.inf):
            try:
                _validation.check_range(f"{where}: {self._key(i, 'lr')}({t})", lr)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{exc} (the value of the learning-rate schedule at step {t})") \
                    from None
            lr = float(lr)
        return lr

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

    @property
    def lazy(self):
        """Row-sparse gradients update the rows present only (True), or give the dense
        step's result (False, the default); fixed at construction. Not saved in the state
        (as ``nonfinite``): construct the optimizer with the same value to resume."""
        return self._lazy

    def _group_indices(self):
        out, first = [], 0
        for g in self.param_groups:
            out.append(list(range(first, first + len(g["params"]))))
            first += len(g["params"])
        return out

    @_exclusive
    def state_dict(self):
        """Return the optimizer state as plain Python numbers and NumPy arrays (copies).

        Returns
        -------
        dict
            ``{"algorithm": str, "step": int, "skipped_steps": int, "hyperparams": dict,
            "param_groups": [dict, ...], "state": {name: [array or None, ...]}}``.
            ``hyperparams`` holds :attr:`defaults`; each group holds its parameters' indices
            (``"params"``), its own step count (``"step"``) and its hyperparameters. A
            learning-rate schedule is saved as ``None``: functions are not saved (construct
            the optimizer with the same schedule before loading, and it continues from the
            saved step). ``state`` has one entry per parameter for each state buffer that any
            group keeps (``None`` for the parameters of groups that do not).
        """
        self._catch_up()  # every row up to date: the state needs no per-row bookkeeping
        indices = self._group_indices()
        return {
            "algorithm": self._name,
            "step": self.step_count,
            "skipped_steps": self.skipped_steps,
            "hyperparams": _saved(self.defaults, self._hyperparam_names),
            "param_groups": [
                {"params": ix, "step": n, **_saved(g, self._hyperparam_names)}
                for ix, n, g in zip(indices, self._group_counts(), self.param_groups)
            ],
            "state": {
                name: [None if a is None else
                       a.copy() if self._device is None else self._device.to_host(a)
                       for a in arrays]
                for name, arrays in self._state.items()
                if any(a is not None for a in arrays)
            },
        }

    @_exclusive
    def load_state_dict(self, state_dict):
        """Restore a state saved by :meth:`state_dict`; the next step continues bit-for-bit.

        Everything is checked (algorithm, groups, buffers, number, shapes and dtypes of the
        arrays, hyperparameters) before anything is changed. A state saved before parameter
        groups existed (no ``"param_groups"``) loads into an optimizer with one group.

        Parameters
        ----------
        state_dict : dict
            As returned by :meth:`state_dict`.

        Raises
        ------
        ValueError, TypeError
            When the state does not fit this optimizer; the optimizer is then unchanged.
        """
        name = f"{self._name}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise TypeError(f"{name}: expected a dict, got {type(state_dict).__name__}")
        missing = {"algorithm", "step", "hyperparams", "state"} - set(state_dict)
        if missing:
            raise ValueError(f"{name}: missing keys {sorted(missing)}")
        if state_dict["algorithm"] != self._name:
            raise ValueError(
                f"{name}: the state is for {state_dict['algorithm']!r}, not {self._name!r}"
            )
        step = _count(name, "step", state_dict["step"])
        skipped = _count(name, "skipped_steps", state_dict.get("skipped_steps", 0))
        defaults = self._loaded_values(name, "hyperparams", state_dict["hyperparams"],
                                       self.defaults, lambda k: k)
        _check_fixed(name, lambda k: k, self._fixed_keys,
                     tuple(_fixed_value(k, self.defaults[k]) for k in self._fixed_keys),
                     tuple(_fixed_value(k, defaults[k]) for k in self._fixed_keys))
        groups = state_dict.get("param_groups")
        if groups is None:  # saved before groups: one group, whose values are hyperparams
            if len(self.param_groups) != 1:
                raise ValueError(f"{name}: the state has one parameter group, this optimizer "
                                 f"has {len(self.param_groups)}")
            groups = [{"params": self._group_indices()[0], "step": step,
                       **state_dict["hyperparams"]}]
        if not isinstance(groups, (list, tuple)) or len(groups) != len(self.param_groups):
            raise ValueError(
                f"{name}: the state has {len(groups) if isinstance(groups, (list, tuple)) else '?'}"
                f" parameter groups, this optimizer has {len(self.param_groups)}"
            )
        arrays = self._loaded_arrays(name, state_dict["state"])
        new_groups = []
        for i, (saved, ix) in enumerate(zip(groups, self._group_indices())):
            if not isinstance(saved, dict) or list(saved.get("params", ())) != ix:
                got = saved.get("params") if isinstance(saved, dict) else saved
                raise ValueError(f"{name}: param_groups[{i}] holds the parameters {got!r}; "
                                 f"this optimizer's group {i} holds {ix}")
            values = self._loaded_values(
                name, f"param_groups[{i}]", {k: v for k, v in saved.items()
                                             if k not in ("params", "step")},
                self.param_groups[i], lambda k, i=i: self._key(i, k))
            fixed = tuple(_fixed_value(k, values[k]) for k in self._fixed_keys)
            _check_fixed(name, lambda k, i=i: self._key(i, k), self._fixed_keys,
                         self._fixed[i], fixed)
            new_groups.append((values, _count(name, f"param_groups[{i}]['step']",
                                              saved.get("step", step))))
        # All checked: now change things.
        for key, saved in arrays.items():
            for dst, src in zip(self._state[key], saved):
                if dst is None:
                    continue
                if self._device is None:
                    np.copyto(dst, src)
                else:
                    self._device.copy_from_host(dst, src)
        self._row_steps.clear()  # the loaded state is up to date as of its step
        self.defaults = defaults
        for i, (values, n) in enumerate(new_groups):
            self.param_groups[i].update(values)  # checked again at the next step
            self._group_start[i] = step - n
        self.step_count = step
        self.skipped_steps = skipped

    def _loaded_values(self, name, where, saved, current, key_name):
        """A saved group's (or the defaults') hyperparameters, checked; ``None`` for lr (a
        schedule, not saved) keeps the current schedule."""
        if not isinstance(saved, dict):
            raise TypeError(f"{name}: {where} must be a dict, got {type(saved).__name__}")
        if set(saved) != set(self._hyperparam_names):
            raise ValueError(
                f"{name}: {where} must have the keys {sorted(self._hyperparam_names)}, "
                f"got {sorted(saved)}"
            )
        values = dict(saved)
        if values["lr"] is None:
            if not callable(current["lr"]):
                raise ValueError(
                    f"{name}: {where} used a learning-rate schedule, which is not saved; "
                    "construct the optimizer with the same schedule (lr=a callable) and load "
                    "into it"
                )
            values["lr"] = current["lr"]
        self._check_values(name, values, key_name)
        return _floats(values)

    def _loaded_arrays(self, name, saved):
        mine = {k for k, v in self._state.items() if any(a is not None for a in v)}
        if not isinstance(saved, dict) or set(saved) != mine:
            raise ValueError(
                f"{name}: the state has buffers {sorted(saved) if isinstance(saved, dict) else saved}"
                f" but this optimizer keeps {sorted(mine)} (momentum/centered must match)"
            )
        for key, arrays in saved.items():
            if len(arrays) != len(self.params):
                raise ValueError(
                    f"{name}: {key} has {len(arrays)} arrays for {len(self.params)} parameters"
                )
            for i, (a, kept, p) in enumerate(zip(arrays, self._state[key], self.params)):
                if kept is None:
                    if a is not None:
                        raise ValueError(f"{name}: {key}[{i}] is saved, but parameter {i}'s "
                                         "group does not keep it")
                    continue
                if a is None:
                    raise ValueError(f"{name}: {key}[{i}] is missing (parameter {i} keeps it)")
                if not isinstance(a, np.ndarray):
                    raise TypeError(f"{name}: {key}[{i}] must be a numpy.ndarray")
                if a.dtype != p.dtype or a.shape != p.shape:
                    raise ValueError(
                        f"{name}: {key}[{i}] has dtype {a.dtype} and shape {a.shape}; "
                        f"parameter {i} has dtype {p.dtype} and shape {p.shape}"
                    )
        return saved

    @_exclusive
    def save(self, path):
        """Write the optimizer state to the ``.npz`` file ``path``, atomically.

        The file holds a format version, the algorithm, the hyperparameters and groups, the
        step counts and the state arrays (not the parameters: save those yourself; nor a
        learning-rate schedule: see :meth:`state_dict`). It is written to a temporary file in
        the same folder, flushed to disk, then renamed over ``path``: a crash or a full disk
        never leaves a truncated checkpoint in place of a good one.

        Parameters
        ----------
        path : str or os.PathLike
            Destination, used as given (no suffix is added).
        """
        _checkpoint.write(path, self.state_dict())

    @_exclusive
    def load(self, path):
        """Restore the state written by :meth:`save`; the next step continues bit-for-bit.

        Everything is checked first (format version, algorithm, groups, buffers, number,
        shapes and dtypes of the arrays, hyperparameters); on any mismatch or a damaged file
        nothing changes. Checkpoints of earlier versions (format 1, before groups) load.

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
        grads : list of ndarray or SparseGrad
            One gradient per parameter, in the order of :attr:`params` (the groups' arrays,
            group after group), each with the parameter's shape, dtype and memory order
            (contiguous; read-only arrays are fine). Any iterable of arrays is read once;
            a single array is refused (wrap it: ``step([g])``). For a parameter whose first
            axis indexes rows (an embedding table, C order), a :class:`~rmsprop_nb.SparseGrad`
            may stand for its gradient: only the rows it names are updated (with ``lazy=False``,
            the result is the dense step's, see the class docstring). Dense and row-sparse
            gradients mix freely in one step.

        Raises
        ------
        ValueError, TypeError
            A wrong number of gradients, a gradient that does not match its parameter (a
            row-sparse one: its rows out of range, its values not of the shape of the rows),
            or a hyperparameter out of range in any group (also a schedule's value). No
            parameter or state is changed then.
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

    def _step(self, grads):  # (the hot path: 1-2 us over tiny arrays, half of it compiled)
        if type(grads) is not list and type(grads) is not tuple:
            grads = _grads_list(self._name, grads)
        if len(grads) != len(self.params):
            raise ValueError(
                f"{self._name}.step: grads must hold one gradient per parameter: expected "
                f"{len(self.params)}, got {len(grads)}"
            )
        t = self.step_count + 1
        values = self._resolve(self._step_name, t)
        if self._device is not None:
            _no_sparse_on_gpu(self._name, grads)
            if self._device.step(self, grads, self._hyper_getter(values)):  # False: skipped
                self.step_count = t
            return
        sparse = []  # the parameters with a row-sparse gradient this step
        try:
            # Every gradient is checked (and its address recorded) before any update.
            for tab in self._tables:
                self._set_grads(tab, grads, sparse)
            for i in sparse:
                self._check_sparse(i, grads[i], values[self._group_of[i]])
            if self._nonfinite != "propagate" and self._skip_nonfinite(grads, sparse):
                return
            if self._row_steps:
                self._catch_up_before(t, values, grads)
            for tab in self._tables:
                self._step_table(tab, t)
            for i in sparse:
                self._step_rows(i, grads[i], t, values[self._group_of[i]])
        except (TypeError, ValueError):
            # Say precisely which gradient is wrong when its type is (the kernels' type checks
            # see one gradient and its parameter at a time); otherwise re-raise as it is.
            _check_grads(self._name, self.params, grads)
            raise
        self.step_count = t

    def _hyper_getter(self, values):
        """For the GPU: ``get(i, x)``, the hyperparameter tuple of parameter ``i`` (``x``: an
        array of its dtype), one per group and dtype."""
        group_of = [i for i, g in enumerate(self.param_groups) for _ in g["params"]]
        cache = {}

        def get(j, x):
            key = (group_of[j], x.dtype)
            h = cache.get(key)
            if h is None:
                i = key[0]
                h = cache[key] = self._device_hyper(f"{self._name}.step", x, values[i], i)
            return h

        return get

    def _group_counts(self):
        """The number of steps each group has taken."""
        return [self.step_count - start for start in self._group_start]

    def _set_grads(self, tab, grads, sparse):
        """Check the gradients of a table and record their addresses for its kernel; a
        row-sparse gradient gets address 0 (the kernel skips it) and its index in ``sparse``."""
        table, spans, set_grad = tab.table, self._spans, _loops._set_grad
        for k, i, p in tab.columns:  # (column of the table, index in grads, parameter)
            g = grads[i]
            if type(g) is SparseGrad:
                table[_loops._GRADS, k] = 0
                sparse.append(i)
                continue
            if set_grad(table, k, g, p, spans):
                if g.shape != p.shape:
                    raise ValueError(
                        f"{self._name}.step: grads[{i}] has shape {g.shape} but params[{i}] has "
                        f"shape {p.shape}"
                    )
                j = next((j for j, q in enumerate(self.params) if np.may_share_memory(g, q)), i)
                raise ValueError(f"{self._name}.step: grads[{i}] shares memory with params[{j}]")

    def _skip_nonfinite(self, grads, sparse):
        """nonfinite="raise"/"skip": scan every gradient before any update (the values of a
        row-sparse one); True to skip."""
        bad_ones = [i for i in sparse if _loops._count_nonfinite(grads[i].values.reshape(-1))]
        for tab in self._tables:
            scan = (_loops._first_nonfinite_parallel if tab.parallel and _threads.PARALLEL
                    else _loops._first_nonfinite_serial)
            bad = scan(tab.table, tab.segments, tab.tasks, tab.like, tab.counts)
            if bad >= 0:
                bad_ones.append(tab.indices[bad])
        if not bad_ones:
            return False
        if self._nonfinite == "raise":
            raise FloatingPointError(
                f"{self._name}.step: grads[{min(bad_ones)}] contains NaN or infinity; nothing "
                "was updated (nonfinite='raise')"
            )
        self.skipped_steps += 1
        return True

    # -- row-sparse gradients --------------------------------------------------------------

    def _check_sparse(self, i, g, values):
        """Check the row-sparse gradient ``g`` of parameter ``i`` (its group's hyperparameters:
        ``values``) as the row kernels would, so that a bad one changes nothing."""
        where = f"{self._name}.step: grads[{i}]"
        p = self.params[i]
        if p.ndim == 0 or (p.ndim > 1 and not p.flags.c_contiguous):
            raise ValueError(
                f"{where} is a SparseGrad, which needs a parameter whose rows are contiguous "
                f"(at least 1-D, in C order); params[{i}] has shape {p.shape}"
                f"{' in Fortran order' if p.ndim else ''}"
            )
        _validation._check_index_array(f"{where}.rows", _validation.describe(g.rows))
        v = g.values
        if not isinstance(v, np.ndarray):
            raise _validation._not_an_array(f"{where}.values", v)
        _validation._check_array(f"{where}.values", _validation.describe(v),
                                 _validation.describe(p), f"params[{i}]", False,
                                 same=f"values must have the shape of params[{i}][rows]")
        rows, n = g.rows, p.shape[0]
        want = (rows.shape[0],) + p.shape[1:]
        if v.shape != want:
            raise ValueError(f"{where}.values has shape {v.shape} but params[{i}][rows] has "
                             f"shape {want}")
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            j = int(np.flatnonzero((rows < 0) | (rows >= n))[0])
            raise _validation.RowOutOfRange(f"{self._name}.step", f"grads[{i}].rows", j,
                                            rows[j].item(), n, f"params[{i}]")
        for part in (rows, v):
            j = _first_overlapping(part, self.params, self._spans)
            if j is not None:
                raise ValueError(f"{where} shares memory with params[{j}]")
        moving = [] if self._lazy else self._moving_options(values)
        if moving:
            gi = self._group_of[i]
            got = " and ".join(f"{self._key(gi, key)} is {value!r}" for key, value in moving)
            raise ValueError(
                f"{where} is a SparseGrad, but {got}: {' and '.join(k for k, _ in moving)} "
                f"{'move' if len(moving) > 1 else 'moves'} rows that have no gradient, which a "
                "step over the rows present cannot do; construct the optimizer with lazy=True "
                "to apply "
                f"{'them' if len(moving) > 1 else 'it'} to the rows present only"
            )

    def _catch_up(self):
        """Exact RMSProp: bring every row of the parameters stepped sparsely up to date as of
        the last step, in place; their per-row bookkeeping is then dropped."""
        for i, (last, gamma) in list(self._row_steps.items()):
            self._catch_up_param(i, last, gamma, self.step_count)
        self._row_steps.clear()

    def _catch_up_before(self, t, values, grads):
        """Before step ``t``: a parameter stepped sparsely whose gradient is dense now, or
        whose group's gamma changed, is brought up to date as of step ``t - 1`` first (the
        catch-up applies the gamma of the steps the rows missed)."""
        for i, (last, gamma) in list(self._row_steps.items()):
            if type(grads[i]) is not SparseGrad or self._gamma(values[self._group_of[i]]) != gamma:
                self._catch_up_param(i, last, gamma, t - 1)
                del self._row_steps[i]

    def _catch_up_param(self, i, last, gamma, step):
        kernels.rmsprop_catch_up(self._state["square_avg"][i], last, step, gamma,
                                 grad_avg=self._state["grad_avg"][i])

    def __repr__(self):
        groups = self.param_groups
        if len(groups) == 1:
            args = ", ".join(f"{k}={groups[0][k]!r}" for k in self._hyperparam_names)
            return f"{self._name}(<{len(self.params)} arrays>, {args})"
        return f"{self._name}(<{len(self.params)} arrays in {len(groups)} groups>)"


def _as_groups(name, params):
    """``params`` as a list of group dicts, and whether it was a plain list of arrays."""
    if isinstance(params, Iterator):  # e.g. a generator: read it once
        params = list(params)
    if isinstance(params, dict):
        raise TypeError(f"{name}: params must be a list of arrays or of parameter-group dicts "
                        "(wrap a single group in a list)")
    if isinstance(params, (list, tuple)) and params and all(isinstance(g, dict) for g in params):
        return list(params), False
    if isinstance(params, (list, tuple)) and any(isinstance(g, dict) for g in params):
        raise TypeError(f"{name}: params mixes arrays and parameter-group dicts; give a list of "
                        "one kind")
    return [{"params": params}], True


def _param_list(where, params, single_ok):
    if isinstance(params, np.ndarray) and single_ok:
        return [params]  # a group of one array, as torch.optim accepts
    if isinstance(params, np.ndarray):
        raise TypeError(f"{where} must be a list of arrays; wrap a single array in a list")
    if isinstance(params, (str, bytes)) or not hasattr(params, "__iter__"):
        raise TypeError(f"{where} must be a list of arrays, got {type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError(f"{where} is empty")
    return params


def _check_disjoint(where, params, label):
    """No array may be optimised twice, nor share memory with another one: one step would
    update the shared part twice."""
    spans = sorted(
        (p.__array_interface__["data"][0], p.nbytes, i) for i, p in enumerate(params) if p.size
    )
    for (a0, an, ai), (b0, _, bi) in zip(spans, spans[1:]):
        if b0 < a0 + an:
            ai, bi = sorted((ai, bi))
            raise ValueError(f"{where}: {label(ai)} and {label(bi)} share memory")


def _on_device(params):
    """True when ``params`` holds GPU arrays (``__cuda_array_interface__``, or the simulator's)."""
    if isinstance(params, np.ndarray):
        return False
    try:
        items = list(params)
    except TypeError:
        return False
    return any(
        hasattr(p, "__cuda_array_interface__") or getattr(p, "__cuda_ndarray__", False)
        for p in items
    )


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
        if type(g) is SparseGrad:  # checked by _check_sparse
            continue
        _validation.check_array(
            f"{name}.step: grads[{i}]", g, like=p, like_name=f"params[{i}]", writeable=False
        )


def _no_sparse_on_gpu(name, grads):
    for i, g in enumerate(grads):
        if type(g) is SparseGrad:
            raise TypeError(
                f"{name}.step: grads[{i}] is a SparseGrad; the optimizers on GPU arrays take "
                "dense gradients (for row-sparse steps on the GPU, call "
                "rmsprop_nb.cuda.rmsprop_step_rows or adagrad_step_rows)"
            )


def _first_overlapping(a, params, spans):
    """The index of the first parameter sharing memory with ``a``, or None; ``spans``: the
    parameters' sorted byte ranges (a binary search first: no loop when nothing overlaps)."""
    start = a.__array_interface__["data"][0]
    k = int(np.searchsorted(spans[0], start + a.nbytes))  # ranges starting before a ends
    if a.size == 0 or k == 0 or spans[1, k - 1] <= start:
        return None
    return next((j for j, q in enumerate(params) if np.may_share_memory(a, q)), None)


def _count(name, key, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}: {key} must be an integer >= 0, got {value!r}")
    return int(value)


def _fixed_value(key, value):
    """What matters of a fixed hyperparameter: momentum on or off; centered or not."""
    return value > 0 if key == "momentum" else bool(value)


def _check_fixed(where, name, keys, was, now):
    for key, a, b in zip(keys, was, now):
        if a != b:
            change = ("switched off" if a else "switched on") if key == "momentum" else "changed"
            raise ValueError(f"{where}: {name(key)} cannot be {change} after the group was "
                             "created (its state arrays depend on it)")


def _saved(values, names):
    """Hyperparameters as a state dict keeps them: a schedule as None."""
    return {k: None if callable(values[k]) else values[k] for k in names}


def _floats(hyper):
    """Real hyperparameters as Python floats and flags as bools: one compiled specialization
    (a schedule stays the callable it is)."""
    return {k: bool(v) if isinstance(v, (bool, np.bool_)) else (v if callable(v) else float(v))
            for k, v in hyper.items()}


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
    params : list of ndarray, or list of dict
        The parameters: float32 or float64, contiguous, writeable, not sharing memory. They are
        updated in place by :meth:`step`. Arrays of different dtypes and shapes may be mixed.
        Or parameter groups, as in ``torch.optim``: dicts ``{"params": [array, ...], "lr":
        ..., ...}`` whose missing keys take the values given here (see the user guide's
        *Parameter groups and schedules*).
    lr : float or callable, default 0.01
        Learning rate :math:`\eta \ge 0` (the book's :math:`\eta`), or a schedule: a function
        of the 1-based step number :math:`t` returning it, called once per step.
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
    lazy : bool, default False
        What a row-sparse gradient (:class:`~rmsprop_nb.SparseGrad`) does to the rows it does
        not name. False (exact): what the dense step with zeros there does, their :math:`s`
        (and :math:`\bar g`) decaying by :math:`\gamma` per step, applied when they are next
        present (the optimizer keeps, per row, the step as of which it is up to date, and
        brings every row up to date whenever the state is read: :meth:`state_dict`,
        :meth:`save`, a dense gradient for that parameter). Momentum and weight decay move
        absent rows at every step, so a row-sparse gradient is refused in a group that uses
        them. True: only the rows present decay and update (TensorFlow's sparse RMSProp);
        momentum and weight decay act on them only. Fixed at construction; not saved.

    Attributes
    ----------
    params : list of ndarray
        The arrays being optimised, group after group (the order of :meth:`step`'s ``grads``).
    param_groups : list of dict
        The groups: ``"params"`` and every hyperparameter. Values may be changed between
        steps (checked at the next step); ``momentum`` (on or off) and ``centered`` are fixed
        once the group exists. :meth:`add_param_group` adds one.
    defaults : dict
        The hyperparameters given to the constructor (the values of keys a group leaves out).
    step_count : int
        Number of steps taken.
    skipped_steps : int
        Number of steps skipped by ``nonfinite="skip"`` (not counted in ``step_count``).
    lr, gamma, eps, eps_in_sqrt, momentum, centered, weight_decay, maximize
        The hyperparameter shared by every group (an ``AttributeError`` if the groups
        differ); setting one sets it in every group, checked at the next step.

    Notes
    -----
    How to get the same numbers as other libraries:

    .. list-table::
       :header-rows: 1
       :widths: 55 45

       * - library: its call
         - this class
       * - d2l (book): ``rmsprop(eta, gamma=0.9)``, eps 1e-6
         - ``RMSProp(p, lr=eta, gamma=0.9)``
       * - PyTorch: ``RMSprop(p, lr, alpha=0.99, eps=1e-8)``
         - ``RMSProp(p, lr, gamma=0.99, eps=1e-8, eps_in_sqrt=False)``
       * - optax: ``rmsprop(lr, decay=0.9, eps=1e-8)``
         - ``RMSProp(p, lr, 0.9, 1e-8)``
       * - Keras: ``RMSprop(lr, rho=0.9, epsilon=1e-7)``
         - ``RMSProp(p, lr, 0.9, 1e-7)``

    PyTorch's ``momentum``, ``centered``, ``weight_decay`` and ``maximize`` have the same
    meaning here. Keras's own ``momentum`` and ``centered`` differ in detail.
    The per-element update is :func:`rmsprop_nb.kernels.rmsprop_step`; a step over many
    arrays is one compiled call per dtype. A parameter with a row-sparse gradient is stepped
    by :func:`rmsprop_nb.kernels.rmsprop_step_rows` (PyTorch's ``RMSprop`` refuses sparse
    gradients); see the user guide's *Sparse gradients*.

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
    ...     # the gradient of 0.1 x1^2 + 2 x2^2
    ...     opt.step([np.array([0.2, 4.0]) * x])
    >>> print(f"x1 {x[0]:f}, x2 {x[1]:f}")
    x1 -0.010599, x2 0.000000

    Save and resume:

    >>> state = opt.state_dict()
    >>> opt2 = RMSProp([x.copy()], lr=0.4)
    >>> opt2.load_state_dict(state)
    >>> opt2.step_count, opt2.gamma
    (20, 0.9)

    Parameter groups (no weight decay on the bias) and a 1/sqrt(t) schedule:

    >>> w, b = np.zeros(3), np.zeros(1)
    >>> opt = RMSProp([{"params": [w], "weight_decay": 1e-4},
    ...                {"params": [b]}], lr=lambda t: 0.01 / t**0.5)
    >>> opt.step([np.ones(3), np.ones(1)])
    >>> [g["weight_decay"] for g in opt.param_groups]
    [0.0001, 0.0]

    An embedding table with a row-sparse gradient (rows 1 and 3 of 4), next to a dense one:

    >>> from rmsprop_nb import SparseGrad
    >>> table, bias = np.ones((4, 2)), np.zeros(2)
    >>> opt = RMSProp([table, bias], lr=0.1)
    >>> grad = SparseGrad(np.array([3, 1]), np.ones((2, 2)))
    >>> opt.step([grad, np.ones(2)])
    >>> table[:, 0].round(4)
    array([1.    , 0.6838, 1.    , 0.6838])
    """

    _name = "RMSProp"
    _state_names = ("square_avg", "momentum_buffer", "grad_avg")
    _hyperparam_names = (
        "lr", "gamma", "eps", "eps_in_sqrt", "momentum", "centered", "weight_decay", "maximize",
    )
    _kernel_keys = ("lr", "gamma", "eps", "eps_in_sqrt", "weight_decay", "maximize", "momentum")
    _hyper_columns = 7  # the kernel keys (see _loops._rmsprop_row)
    _fixed_keys = ("momentum", "centered")
    _flags = ("eps_in_sqrt", "centered", "maximize")

    lr = _hyperparameter("lr")
    gamma = _hyperparameter("gamma")
    eps = _hyperparameter("eps")
    eps_in_sqrt = _hyperparameter("eps_in_sqrt")
    momentum = _hyperparameter("momentum")
    centered = _hyperparameter("centered")
    weight_decay = _hyperparameter("weight_decay")
    maximize = _hyperparameter("maximize")

    def __init__(
        self, params, lr=0.01, gamma=0.9, eps=1e-6, *, eps_in_sqrt=True, momentum=0.0,
        centered=False, weight_decay=0.0, maximize=False, nonfinite="propagate", lazy=False,
    ):
        defaults = dict(
            lr=lr, gamma=gamma, eps=eps, eps_in_sqrt=eps_in_sqrt, momentum=momentum,
            centered=centered, weight_decay=weight_decay, maximize=maximize,
        )
        super().__init__(params, defaults, nonfinite, lazy)

    @staticmethod
    def _new_state(params, values):
        return {
            "square_avg": [np.zeros_like(p) for p in params],
            "momentum_buffer": [np.zeros_like(p) if values["momentum"] > 0 else None
                                for p in params],
            "grad_avg": [np.zeros_like(p) if values["centered"] else None for p in params],
        }

    def _step_table(self, tab, t):
        if tab.parallel and _threads.PARALLEL:
            _loops._rmsprop_group_parallel(*tab.args, self._hyper)
        else:
            _loops._rmsprop_group_serial(*tab.args, self._hyper)

    def _step_rows(self, i, g, t, values):
        """Step ``t`` of parameter ``i`` from its row-sparse gradient ``g``."""
        lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum = values
        p, state = self.params[i], self._state
        last = step = None
        if not self._lazy:
            entry = self._row_steps.get(i)
            if entry is None:  # every row is up to date as of the last step
                entry = self._row_steps[i] = [np.full(p.shape[0], t - 1, np.int64), gamma]
            last, step = entry[0], t
        gavg = state["grad_avg"][i]
        kernel = (kernels._rmsprop_rows_parallel if kernels._use_parallel(g.values)
                  else kernels._rmsprop_rows_serial)
        kernel(p, g.rows, g.values, state["square_avg"][i], lr, gamma, eps, eps_in_sqrt,
               weight_decay, maximize, momentum, state["momentum_buffer"][i], gavg is not None,
               gavg, last, step, self._lazy, False)

    @staticmethod
    def _gamma(values):
        return values[1]

    @staticmethod
    def _moving_options(values):
        """The options that move rows without a gradient, with their values (the exact mode
        refuses them)."""
        return [(k, v) for k, v in (("momentum", values[6]), ("weight_decay", values[4]))
                if v > 0]

    def _device_hyper(self, where, x, values, i):
        from ._math import _rmsprop_hyper

        return _rmsprop_hyper.py_func(where, x, *values)


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
    params : list of ndarray, or list of dict
        The parameters: float32 or float64, contiguous, writeable, not sharing memory; or
        parameter groups (dicts with ``"params"`` and any of the keywords below), as for
        :class:`RMSProp`.
    lr : float or callable, default 0.01
        Learning rate :math:`\eta \ge 0`, or a schedule: a function of the 1-based step
        number returning it (``lr_decay`` then applies on top).
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
    lazy : bool, default False
        For row-sparse gradients (:class:`~rmsprop_nb.SparseGrad`): a zero gradient changes
        nothing in AdaGrad, so updating the rows present gives the dense step's result, except
        with ``weight_decay``, which moves every row: refused for a row-sparse gradient unless
        ``lazy=True``, which applies it to the rows present only. Fixed at construction.

    Attributes
    ----------
    params : list of ndarray
        The arrays being optimised, group after group.
    param_groups : list of dict
        The groups, as for :class:`RMSProp`. A group's own step count (the :math:`t` of
        ``lr_decay``) starts when the group is added; ``initial_accumulator_value`` is used
        when the group's state is created.
    defaults : dict
        The hyperparameters given to the constructor.
    step_count : int
        Number of steps taken (:math:`t` of the last step).
    skipped_steps : int
        Number of steps skipped by ``nonfinite="skip"`` (not counted in ``step_count``).
    lr, eps, eps_in_sqrt, initial_accumulator_value, lr_decay, weight_decay, maximize
        The hyperparameter shared by every group; setting one sets it in every group, checked
        at the next step.

    Notes
    -----
    .. list-table::
       :header-rows: 1
       :widths: 55 45

       * - library: its call
         - this class
       * - d2l (book): ``adagrad(eta)``, eps 1e-6
         - ``AdaGrad(p, lr=eta)``
       * - PyTorch: ``Adagrad(p, lr=0.01, eps=1e-10)``
         - ``AdaGrad(p, 0.01, 1e-10, eps_in_sqrt=False)``
       * - optax: ``adagrad(lr, initial_accumulator_value=0.1, eps=1e-7)``
         - ``AdaGrad(p, lr, 1e-7, initial_accumulator_value=0.1)``
       * - Keras: ``Adagrad(lr, initial_accumulator_value=0.1, epsilon=1e-7)``
         - ``AdaGrad(p, lr, 1e-7, initial_accumulator_value=0.1)``

    The per-element update is :func:`rmsprop_nb.kernels.adagrad_step`; a parameter with a
    row-sparse gradient is stepped by :func:`rmsprop_nb.kernels.adagrad_step_rows` (as
    ``torch.optim.Adagrad`` steps sparse gradients, repeated rows summed).

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
    _state_names = ("sum",)
    _hyperparam_names = (
        "lr", "eps", "eps_in_sqrt", "initial_accumulator_value", "lr_decay", "weight_decay",
        "maximize",
    )
    _kernel_keys = ("lr", "eps", "eps_in_sqrt", "weight_decay", "maximize", "lr_decay")
    _hyper_columns = 7  # the kernel keys and the group's start (see _loops._adagrad_row)
    _flags = ("eps_in_sqrt", "maximize")

    lr = _hyperparameter("lr")
    eps = _hyperparameter("eps")
    eps_in_sqrt = _hyperparameter("eps_in_sqrt")
    initial_accumulator_value = _hyperparameter("initial_accumulator_value")
    lr_decay = _hyperparameter("lr_decay")
    weight_decay = _hyperparameter("weight_decay")
    maximize = _hyperparameter("maximize")

    def __init__(
        self, params, lr=0.01, eps=1e-6, *, eps_in_sqrt=True, initial_accumulator_value=0.0,
        lr_decay=0.0, weight_decay=0.0, maximize=False, nonfinite="propagate", lazy=False,
    ):
        defaults = dict(
            lr=lr, eps=eps, eps_in_sqrt=eps_in_sqrt,
            initial_accumulator_value=initial_accumulator_value, lr_decay=lr_decay,
            weight_decay=weight_decay, maximize=maximize,
        )
        super().__init__(params, defaults, nonfinite, lazy)

    @staticmethod
    def _new_state(params, values):
        return {"sum": [np.full_like(p, values["initial_accumulator_value"]) for p in params]}

    def _step_table(self, tab, t):
        if tab.parallel and _threads.PARALLEL:
            _loops._adagrad_group_parallel(*tab.args, self._hyper, t)
        else:
            _loops._adagrad_group_serial(*tab.args, self._hyper, t)

    def _step_rows(self, i, g, t, values):
        """Step ``t`` of parameter ``i`` from its row-sparse gradient ``g`` (a zero gradient
        changes nothing in AdaGrad: no bookkeeping)."""
        lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay = values
        kernel = (kernels._adagrad_rows_parallel if kernels._use_parallel(g.values)
                  else kernels._adagrad_rows_serial)
        kernel(self.params[i], g.rows, g.values, self._state["sum"][i], lr, eps, eps_in_sqrt,
               weight_decay, maximize, lr_decay, t - self._group_start[self._group_of[i]],
               self._lazy, False)

    @staticmethod
    def _moving_options(values):
        return [("weight_decay", values[3])] if values[3] > 0 else []

    def _device_hyper(self, where, x, values, i):
        from ._math import _adagrad_hyper

        return _adagrad_hyper.py_func(where, x, *values,
                                      self.step_count + 1 - self._group_start[i])

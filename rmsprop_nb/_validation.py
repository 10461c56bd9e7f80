"""The checks that turn bad input into a ``TypeError`` or ``ValueError`` naming the argument.

Two kinds of checks exist, and each lives in one place:

* *type-level* checks (is it an array, which dtype, writeable, contiguous, same memory order,
  same number of dimensions; is a hyperparameter a real number, a flag a bool) are written
  once, in :class:`KernelArgs`, over a small description of each argument. The description is
  made from a Python value (a kernel called from Python, checked by ``_jit.py`` whenever Numba
  meets new argument types) or from a Numba type (a kernel called from a user's ``@njit``
  function, checked when that function is compiled). Both paths raise the same message.
* *value-level* checks (shapes, overlapping memory, hyperparameter ranges) must run on every
  call, so they are compiled into the kernels and raise :class:`ShapeMismatch` /
  :class:`OutOfRange`, whose messages say what was got.

Nothing is modified before either kind of check has passed.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections import namedtuple

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------------------------
# Exceptions raised by compiled code: the arguments are values (Numba passes them at run time),
# the message is made when it is read.
# --------------------------------------------------------------------------------------------


class OutOfRange(ValueError):
    """A hyperparameter outside its range: ``OutOfRange(where, name, value, rule)``."""

    def __str__(self):
        where, name, value, rule = self.args
        return f"{where}: {name} must be {rule}, got {value!r}"


class ShapeMismatch(ValueError):
    """Two arrays whose shapes must agree: ``ShapeMismatch(where, name, shape, ref, shape)``."""

    def __str__(self):
        where, name, shape, ref, ref_shape = self.args
        return f"{where}: {name} has shape {_shape(shape)} but {ref} has shape {_shape(ref_shape)}"


class RowOutOfRange(ValueError):
    """A row index outside ``[0, n)``: ``RowOutOfRange(where, name, position, value, n)``,
    and optionally how to name the table (default ``x``)."""

    def __str__(self):
        where, name, position, value, n, *table = self.args
        table = table[0] if table else "x"
        valid = f"0 to {n - 1}" if n else f"none: {table} has no rows"
        return (
            f"{where}: {name}[{position}] is {value}, out of range for {table} with {n} rows "
            f"(valid indices: {valid}; negative indices are not wrapped)"
        )


class RowCount(ValueError):
    """An array with one entry per row of ``ref`` whose shape is not ``(n,)``:
    ``RowCount(where, name, shape, ref, n)``."""

    def __str__(self):
        where, name, shape, ref, n = self.args
        return (f"{where}: {name} has shape {_shape(shape)} but {ref} has {n} rows; it needs "
                f"shape ({n},)")


class StaleStep(ValueError):
    """A row whose bookkeeping is not before the step being taken:
    ``StaleStep(where, row, last, step, strict)`` (``strict``: last must be < step, else <=)."""

    def __str__(self):
        where, row, last, step, strict = self.args
        if strict:
            return (
                f"{where}: last_step[{row}] is {last} but step is {step}: a row updated at step "
                f"{step} must have been brought up to date before it (last_step < step); give "
                "every step a new number, counting from 1"
            )
        return (
            f"{where}: last_step[{row}] is {last}, after step {step}: the state cannot be "
            "brought back to an earlier step"
        )


class BadChoice(ValueError):
    """A string option outside its choices: ``BadChoice(where, name, value, choices)``, where
    ``choices`` is a string such as ``"'sum' or 'sequential'"``."""

    def __str__(self):
        where, name, value, choices = self.args
        return f"{where}: {name} must be {choices}, got {value!r}"


def _shape(shape):
    return str(tuple(int(n) for n in shape))


# --------------------------------------------------------------------------------------------
# Arrays and scalars given as Python values.
# --------------------------------------------------------------------------------------------


def memory_order(a):
    """'C' or 'F' as Numba sees a contiguous array (C wins when both hold), else None."""
    if a.flags.c_contiguous:
        return "C"
    if a.flags.f_contiguous:
        return "F"
    return None


def _not_an_array(name, a, dtype="np.float64"):
    """The TypeError for a non-array, with a hint for the arrays users most often pass
    (``dtype``: the dtype the hint for a list suggests)."""
    module = type(a).__module__.split(".")[0]
    hint = ""
    if module == "torch":
        hint = (
            "; to train torch tensors use rmsprop_nb.torch (drop-in torch.optim optimizers, "
            "CPU and CUDA); for a CPU tensor pass t.detach().numpy() (no copy)"
        )
    elif hasattr(a, "__cuda_array_interface__"):
        hint = "; for GPU arrays use rmsprop_nb.cuda (or the optimizers, which accept them)"
    elif isinstance(a, (list, tuple)):
        hint = f"; convert it with np.asarray(..., dtype={dtype}) and keep that array"
    return TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}{hint}")


def check_array(name, a, *, like=None, like_name="x", writeable=True):
    """Check that ``a`` is a contiguous float32/float64 ndarray (matching ``like`` if given)."""
    if not isinstance(a, np.ndarray):
        raise _not_an_array(name, a)
    ref = None if like is None else _describe_value(like)
    _check_array(name, _describe_value(a), ref, like_name, writeable)
    if like is not None and a.shape != like.shape:
        raise ValueError(
            f"{name} has shape {_shape(a.shape)} but {like_name} has shape {_shape(like.shape)}"
        )


def check_real(name, value):
    """Check that a hyperparameter is a real number (not a bool, array or string)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")


def check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")


def _check_int64(name, value):
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        raise ValueError(f"{name} is out of the 64-bit integer range, got {value!r}")


# The ranges of the hyperparameters, stated once: for the Python checks here and the compiled
# ones of _math.py.
RULES = {"nonnegative": "a finite number >= 0", "unit": "in [0, 1)"}


def check_range(name, value, rule="nonnegative"):
    """Check a real hyperparameter against ``RULES[rule]`` (NaN and infinities fail)."""
    check_real(name, value)
    try:
        v = float(value)
    except OverflowError:  # an int beyond the float range
        v = math.inf
    ok = math.isfinite(v) and v >= 0 and (rule != "unit" or v < 1)
    if not ok:
        raise ValueError(f"{name} must be {RULES[rule]}, got {value!r}")


# --------------------------------------------------------------------------------------------
# One description of an argument, from a value or from a Numba type; one set of checks.
# --------------------------------------------------------------------------------------------

#: kind: "array", "none", "real", "bool", "int" or "other"; for arrays dtype (a NumPy dtype,
#: or None when Numba's dtype has no NumPy equivalent), order ('C', 'F' or None), writeable and
#: ndim; typename for messages; value for the value-level checks of Python scalars (else None).
Arg = namedtuple("Arg", "kind typename dtype order writeable ndim value")

# What a compiled kernel can take as a scalar: Numba has no type for Fraction, longdouble or
# an int beyond 64 bits, and no float16 arithmetic.
_KERNEL_SCALARS = (int, float, np.integer, np.float32, np.float64)


def _describe_value(v):
    if isinstance(v, np.ndarray):
        return Arg("array", "ndarray", v.dtype, memory_order(v), v.flags.writeable, v.ndim, v)
    if v is None:
        return Arg("none", "None", None, None, None, None, None)
    name = type(v).__name__
    if isinstance(v, (bool, np.bool_)):
        return Arg("bool", name, None, None, None, None, v)
    if isinstance(v, numbers.Integral) and isinstance(v, _KERNEL_SCALARS):
        return Arg("int", name, None, None, None, None, v)
    if isinstance(v, _KERNEL_SCALARS):
        return Arg("real", name, None, None, None, None, v)
    if isinstance(v, numbers.Real):  # Fraction, longdouble, float16, Decimal: no kernel type
        return Arg("other-real", name, None, None, None, None, v)
    return Arg("other", name, None, None, None, None, v)


# Numba's names for the types of Python scalars, as Python names them (messages match).
_PYTHON_NAMES = {"float64": "float", "int64": "int", "complex128": "complex", "bool": "bool"}


def _describe_type(t):
    from numba import types

    if isinstance(t, types.Omitted):
        return _describe_value(t.value)
    t = types.unliteral(t)
    if isinstance(t, types.Array):
        try:
            dtype = np.dtype(str(t.dtype))
        except TypeError:
            dtype = None
        order = t.layout if t.layout in ("C", "F") else None
        return Arg("array", "array", dtype, order, t.mutable, t.ndim, None)
    if isinstance(t, types.NoneType):
        return Arg("none", "None", None, None, None, None, None)
    if isinstance(t, types.Boolean):
        return Arg("bool", "bool", None, None, None, None, None)
    name = _PYTHON_NAMES.get(str(t), str(t))
    if isinstance(t, types.Integer):
        return Arg("int", name, None, None, None, None, None)
    if isinstance(t, types.Float) and str(t) in ("float32", "float64"):
        return Arg("real", name, None, None, None, None, None)
    return Arg("other", name, None, None, None, None, None)


def describe(v):
    """An :data:`Arg` for a Python value or a Numba type (an ``@overload`` sees types)."""
    from numba.core.types import Type

    return _describe_type(v) if isinstance(v, Type) else _describe_value(v)


def _check_array(name, a, ref, ref_name, writeable, same="they must have the same shape"):
    if a.kind != "array":
        if a.value is not None:
            raise _not_an_array(name, a.value)
        raise TypeError(f"{name} must be a numpy.ndarray, got {a.typename}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if a.order is None:
        raise ValueError(
            f"{name} must be contiguous (C or Fortran order); "
            "pass np.ascontiguousarray(...) or a contiguous copy"
        )
    if writeable and not a.writeable:
        raise ValueError(f"{name} is read-only; it is updated in place, so it must be writeable")
    if ref is None:
        return
    if a.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but {ref_name} has dtype {ref.dtype}")
    if a.ndim != ref.ndim:
        raise ValueError(
            f"{name} has {_dims(a.ndim)} but {ref_name} has {ref.ndim}; {same}"
        )
    # A one-element or 1-D array is both C and F; Numba types it C.
    if a.ndim > 1 and a.order != ref.order and _size(a) != 1 and _size(ref) != 1:
        raise ValueError(
            f"{name} is in {a.order} order but {ref_name} is in {ref.order} order; "
            "use the same memory order"
        )


def _check_index_array(name, a):
    """``rows``: a 1-D array of integers (any integer dtype, any layout, may be read-only)."""
    if a.kind != "array":
        if a.value is not None:
            raise _not_an_array(name, a.value, "np.int64")
        raise TypeError(f"{name} must be a numpy.ndarray of integers, got {a.typename}")
    if a.dtype is None or a.dtype.kind not in "iu":
        hint = ("; for a mask, pass np.flatnonzero(mask)" if a.dtype == np.bool_
                else "; pass np.asarray(rows, dtype=np.int64)")
        raise TypeError(f"{name} must be an array of integers (row indices), got dtype "
                        f"{a.dtype}{hint}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one row index per row of g), got {_dims(a.ndim)}")


def _check_step_array(name, a):
    """``last_step``: a 1-D, contiguous, writeable int64 array (one entry per row of x)."""
    if a.kind != "array":
        if a.value is not None:
            raise _not_an_array(name, a.value, "np.int64")
        raise TypeError(f"{name} must be a numpy.ndarray, got {a.typename}")
    if a.dtype != np.dtype(np.int64):
        raise TypeError(f"{name} must have dtype int64, got {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one entry per row of x), got {_dims(a.ndim)}")
    if a.order is None:
        raise ValueError(f"{name} must be contiguous; pass np.ascontiguousarray(...) or a copy")
    if not a.writeable:
        raise ValueError(f"{name} is read-only; it is updated in place, so it must be writeable")


def _check_rows_of(name, a, short):
    """The reference array of a row kernel: a first axis (the rows), each row contiguous."""
    if a.ndim == 0:
        raise ValueError(
            f"{name} must have at least 1 dimension (its first axis indexes the rows), got a "
            "0-dimensional array"
        )
    if a.ndim > 1 and a.order != "C":
        raise ValueError(
            f"{name} must be C-contiguous (each row one block of memory), got Fortran order; "
            f"pass np.ascontiguousarray({short})"
        )


def _dims(n):
    return f"{n} dimension" if n == 1 else f"{n} dimensions"


def _size(a):
    return -1 if a.value is None else a.value.size


def _check_scalar(name, a, kind):
    if kind == "flag":
        if a.kind != "bool":
            raise TypeError(f"{name} must be True or False, got {a.typename}")
        return
    if kind == "int?" and a.kind == "none":
        return
    if kind in ("int", "int?"):
        if a.kind != "int":
            raise TypeError(f"{name} must be an integer, got {a.typename}")
        _check_int64(name, a.value)
        return
    if a.kind == "other-real":
        raise TypeError(
            f"{name} must be a Python float or int, or a NumPy float32, float64 or integer "
            f"scalar, got {a.typename}"
        )
    if a.kind not in ("real", "int"):
        raise TypeError(f"{name} must be a real number, got {a.typename}")
    _check_int64(name, a.value)


class KernelArgs:
    """The type-level checks of one kernel's arguments.

    ``arrays`` maps each array argument to ``"in"`` (only read), ``"inout"`` (updated in place)
    or ``"inout?"`` (optional state: may be ``None``); the first is the reference the others
    must match. The row kernels add ``"in rows"`` (a float array like the reference but with
    the shape of ``x[rows]``, which the kernel checks), ``"index"`` (``rows``: 1-D integers) and
    ``"steps"``/``"steps?"`` (``last_step``: 1-D int64, updated in place); ``row_major=True``
    requires the reference to have rows (``ndim >= 1``) that are contiguous (C order).
    ``reals``, ``flags``, ``ints`` and ``optional_ints`` (int or None) name the scalars.
    """

    def __init__(self, kernel, arrays, reals=(), flags=(), ints=(), optional_ints=(),
                 row_major=False):
        self.kernel = kernel
        self.arrays = dict(arrays)
        self.ref = next(iter(self.arrays))
        self.row_major = row_major
        self.scalars = {**dict.fromkeys(reals, "real"), **dict.fromkeys(flags, "flag"),
                        **dict.fromkeys(ints, "int"), **dict.fromkeys(optional_ints, "int?")}

    def check(self, bound):
        """Raise TypeError/ValueError for the first bad argument; ``bound`` maps argument
        names to values or Numba types (missing names are not checked)."""
        k = self.kernel
        ref = describe(bound[self.ref])
        _check_array(f"{k}: {self.ref}", ref, None, None, self.arrays[self.ref] != "in")
        if self.row_major:
            _check_rows_of(f"{k}: {self.ref}", ref, self.ref)
        for name, mode in list(self.arrays.items())[1:]:
            if name not in bound:
                continue
            a = describe(bound[name])
            if a.kind == "none" and mode.endswith("?"):
                continue
            if mode == "index":
                _check_index_array(f"{k}: {name}", a)
                continue
            if mode.startswith("steps"):
                _check_step_array(f"{k}: {name}", a)
                continue
            if mode == "in rows":
                _check_array(f"{k}: {name}", a, ref, self.ref, False,
                             same=f"{name} must have the shape of {self.ref}[rows]")
                continue
            _check_array(f"{k}: {name}", a, ref, self.ref, mode != "in")
            if a.value is not None and ref.value is not None and a.value.shape != ref.value.shape:
                raise ShapeMismatch(k, name, a.value.shape, self.ref, ref.value.shape)
        for name, kind in self.scalars.items():
            if name in bound:
                _check_scalar(f"{k}: {name}", describe(bound[name]), kind)

    def type_check(self, fn):
        """A check for ``_jit.jit(type_check=...)``: it receives ``fn``'s arguments in order."""
        order = list(inspect.signature(fn).parameters)
        missing = (set(self.arrays) | set(self.scalars)) - set(order)
        if missing:  # a mistake in this package: fail at import, not at a user's call
            raise AssertionError(f"{self.kernel}: no arguments named {sorted(missing)}")
        return lambda *args: self.check(dict(zip(order, args)))

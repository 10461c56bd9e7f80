"""The checks that turn bad input into a ``TypeError`` or ``ValueError`` naming the argument.

Two kinds of checks exist, and each lives in one place:

* *type-level* checks (is it an array, which dtype, writeable, contiguous, same memory order)
  are here, in Python. The kernels run them only when Numba meets new argument types (see
  ``_jit.py``); the optimizers run them once per parameter at construction.
* *value-level* checks (shapes, overlapping memory, hyperparameter ranges) must run on every
  call, so they are compiled into the kernels (``kernels.py``) and cost nanoseconds.

Nothing is modified before either kind of check has passed.
"""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def memory_order(a):
    """'C' or 'F' as Numba sees a contiguous array (C wins when both hold), else None."""
    if a.flags.c_contiguous:
        return "C"
    if a.flags.f_contiguous:
        return "F"
    return None


def check_array(name, a, *, like=None, like_name="x", writeable=True):
    """Check that ``a`` is a contiguous float32/float64 ndarray (matching ``like`` if given)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if memory_order(a) is None:
        raise ValueError(
            f"{name} must be contiguous (C or Fortran order); "
            "pass np.ascontiguousarray(...) or a contiguous copy"
        )
    if writeable and not a.flags.writeable:
        raise ValueError(f"{name} is read-only; it is updated in place, so it must be writeable")
    if like is not None:
        if a.dtype != like.dtype:
            raise TypeError(f"{name} has dtype {a.dtype} but {like_name} has dtype {like.dtype}")
        if a.shape != like.shape:
            raise ValueError(f"{name} has shape {a.shape} but {like_name} has shape {like.shape}")
        if a.size > 1 and a.ndim > 1 and memory_order(a) != memory_order(like):
            raise ValueError(
                f"{name} is in {memory_order(a)} order but {like_name} is in "
                f"{memory_order(like)} order; use the same memory order"
            )


def check_real(name, value):
    """Check that a hyperparameter is a real number (not a bool, array or string)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")


# What a compiled kernel can take as a scalar: Numba has no type for Fraction, longdouble or
# an int beyond 64 bits, and no float16 arithmetic.
_KERNEL_SCALARS = (int, float, np.integer, np.float32, np.float64)


def check_kernel_real(name, value):
    """Check a real number that goes to a compiled kernel as it is (no conversion)."""
    check_real(name, value)
    if not isinstance(value, _KERNEL_SCALARS):
        raise TypeError(
            f"{name} must be a Python float or int, or a NumPy float32, float64 or integer "
            f"scalar, got {type(value).__name__}"
        )
    check_kernel_int(name, value)


def check_kernel_int(name, value):
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        raise ValueError(f"{name} is out of the 64-bit integer range, got {value!r}")


def check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")


def check_range(name, value, low=0.0, high=math.inf, *, high_open=False):
    """Check ``low <= value <= high`` (or ``< high``), rejecting NaN and infinities."""
    check_real(name, value)
    try:
        v = float(value)
    except OverflowError:  # an int beyond the float range
        v = math.inf
    ok = math.isfinite(v) and low <= v and (v < high if high_open else v <= high)
    if not ok:
        bracket = ")" if high_open else "]"
        raise ValueError(f"{name} must be a finite number in [{low:g}, {high:g}{bracket}, got {value!r}")


def kernel_type_check(kernel, arrays, reals=(), flags=(), ints=()):
    """Return a factory ``fn -> check(*args)`` for the type check of the kernel ``fn``.

    ``arrays`` maps each array argument to ``"in"`` (only read) or ``"inout"`` (updated in
    place); the first one is the reference the others must match, and the others may be
    ``None`` (optional state). ``check`` receives the arguments in signature order, as Numba
    passes them when it is about to compile a new specialization.
    """
    ref_name = next(iter(arrays))

    def check_bound(bound):
        ref = bound[ref_name]
        check_array(f"{kernel}: {ref_name}", ref)
        for name, mode in list(arrays.items())[1:]:
            if bound.get(name) is not None or mode == "in":
                check_array(
                    f"{kernel}: {name}", bound[name], like=ref, like_name=ref_name,
                    writeable=mode == "inout",
                )
        check_scalars(kernel, bound, reals, flags, ints)

    def factory(fn):
        order = list(inspect.signature(fn).parameters)
        missing = (set(arrays) | set(reals) | set(flags) | set(ints)) - set(order)
        if missing:  # a mistake in this package: fail at import, not at a user's call
            raise AssertionError(f"{kernel}: no arguments named {sorted(missing)}")
        return lambda *args: check_bound(dict(zip(order, args)))

    return factory


def check_scalars(kernel, bound, reals=(), flags=(), ints=()):
    """Check the types of a kernel's scalar arguments (``bound``: name -> value)."""
    for name in reals:
        check_kernel_real(f"{kernel}: {name}", bound[name])
    for name in flags:
        check_flag(f"{kernel}: {name}", bound[name])
    for name in ints:
        v = bound[name]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{kernel}: {name} must be an integer, got {type(v).__name__}")
        check_kernel_int(f"{kernel}: {name}", v)

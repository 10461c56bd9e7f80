"""Hypothesis strategies for the robustness fuzz tests: good and bad arrays and scalars.

Every generated argument comes with enough information for the test to decide, independently of
the package, whether a call is valid (and must match the NumPy oracle) or invalid (and must raise
ValueError/TypeError with every array unchanged).
"""

import fractions
import math
import numbers

import numpy as np
from hypothesis import strategies as st

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
BAD_DTYPES = ("float16", "int32", "int64", "uint8", "bool", "complex64", "complex128", "object",
              ">f8", "<f4" if np.little_endian else ">f4")


@st.composite
def values(draw, n):
    """n floats: mostly finite and moderate, sometimes NaN/inf/huge/tiny."""
    vals = draw(st.lists(
        st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                  width=32),
        min_size=n, max_size=n,
    ))
    if n and draw(st.integers(0, 7)) == 0:
        special = [np.nan, np.inf, -np.inf, 3e38, -2e19, 1e-40, 0.0, -0.0]
        vals[draw(st.integers(0, n - 1))] = draw(st.sampled_from(special))
    return vals


LAYOUTS = ("C", "C", "C", "F", "strided", "reversed")


def make_array(vals, shape, dtype, layout, writeable=True):
    """An ndarray with the given values, shape, dtype and layout."""
    base = np.array(vals, dtype=np.float64).reshape(shape)
    with np.errstate(all="ignore"):
        if dtype == "object":
            a = base.astype(object)
        elif np.dtype(dtype).kind in "iub":
            a = np.nan_to_num(base, nan=0.0, posinf=1.0, neginf=-1.0).clip(-100, 100).astype(dtype)
        else:
            a = base.astype(dtype)
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "strided" and a.ndim:
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., ::2] = a
        a = big[..., ::2]
    elif layout == "reversed" and a.ndim:
        a = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    if not writeable:
        a.flags.writeable = False
    return a


# Real hyperparameters: (label, value). Whether one is accepted depends on the API: the
# optimizers convert with float(); the kernels pass the value to Numba as it is.
BAD_REALS = [
    ("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf), ("negative", -0.5),
    ("huge", 1e300), ("str", "0.1"), ("None", None), ("bool", True), ("complex", 0.1 + 0j),
    ("list", [0.1]), ("array", np.array([0.1])), ("0-d array", np.array(0.1)),
    ("Fraction", fractions.Fraction(1, 10)), ("float16", np.float16(0.1)),
    ("longdouble", np.longdouble(0.1)), ("int > 64 bits", 10**30), ("int > float", 10**400),
    ("np.int8", np.int8(1)), ("np.float32", np.float32(0.25)), ("int", 1),
]
BAD_FLAGS = [("int", 1), ("str", "yes"), ("None", None), ("float", 1.0), ("np.bool_", np.True_)]


def real_ok(v, lo, hi, high_open, *, kernel):
    """Is v an acceptable real hyperparameter in [lo, hi] (or [lo, hi))?"""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return False
    if kernel:
        if not isinstance(v, (int, float, np.integer, np.float32, np.float64)):
            return False
        if isinstance(v, int) and not -(2**63) <= v < 2**64:
            return False
    try:
        f = float(v)
    except OverflowError:
        return False
    return math.isfinite(f) and lo <= f and (f < hi if high_open else f <= hi)


def flag_ok(v):
    return isinstance(v, (bool, np.bool_))

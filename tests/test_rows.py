"""The row-sparse kernels: against NumPy references written from the formulas, against the
dense kernels (the sparse step is the dense step with zeros elsewhere), their invariants, their
errors (from Python and from @njit code, nothing modified), and a user's journey in fresh
processes."""

import functools
import itertools
import operator
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rmsprop_nb import SparseGrad, kernels
from rmsprop_nb.kernels import (
    PARALLEL_MIN_BYTES, adagrad_step, adagrad_step_rows, rmsprop_catch_up, rmsprop_step,
    rmsprop_step_rows,
)

import reference

ROOT = Path(__file__).resolve().parents[1]
DTYPES = [np.float32, np.float64]
TRAILING = [(), (3,), (2, 3)]  # x of shape (n,), (n, 3), (n, 2, 3)


# ---------------------------------------------------------------------------------------------
# References, from the formulas: the entries of each row summed left to right (or applied one
# by one), then the dense reference update on that row; exact RMSProp first multiplies the
# row's state by gamma**missed, computed in the dtype.
# ---------------------------------------------------------------------------------------------


def _entries(rows, g, duplicates):
    """[(row, gradient)] in the order the updates happen."""
    if duplicates == "sequential":
        return [(int(r), g[j]) for j, r in enumerate(rows)]
    by_row = {}
    for j, r in enumerate(rows):
        by_row.setdefault(int(r), []).append(g[j])
    return [(r, functools.reduce(operator.add, gs)) for r, gs in sorted(by_row.items())]


def adagrad_rows_ref(x, rows, g, s, lr, eps, duplicates="sum", **opts):
    x, s = x.copy(), s.copy()
    for r, gr in _entries(rows, g, duplicates):
        x[r], s[r] = reference.adagrad(x[r], gr, s[r], lr, eps, **opts)
    return x, s


def gamma_power(t, gamma, k):
    """gamma**k in the dtype t, correctly rounded (as the C library's pow and powf, which the
    kernels call, give it; NumPy's float32 power is less accurate)."""
    return t(np.power(np.float64(t(gamma)), np.float64(k)))


def rmsprop_rows_ref(x, rows, g, s, lr, gamma, eps, duplicates="sum", buf=None, gavg=None,
                     last_step=None, step=None, **opts):
    """Exact mode when ``last_step`` is given (returns it updated), else lazy."""
    x, s = x.copy(), s.copy()
    buf = None if buf is None else buf.copy()
    gavg = None if gavg is None else gavg.copy()
    last_step = None if last_step is None else last_step.copy()
    t = x.dtype.type
    for r, gr in _entries(rows, g, duplicates):
        if last_step is not None and last_step[r] != step:
            f = gamma_power(t, gamma, step - 1 - last_step[r])
            s[r] = s[r] * f
            if gavg is not None:
                gavg[r] = gavg[r] * f
            last_step[r] = step
        x[r], s[r], b, a = reference.rmsprop(
            x[r], gr, s[r], lr, gamma, eps, buf=None if buf is None else buf[r],
            gavg=None if gavg is None else gavg[r], **opts)
        if buf is not None:
            buf[r] = b
        if gavg is not None:
            gavg[r] = a
    return x, s, buf, gavg, last_step


def assert_close(actual, expected, dtype, steps=1):
    """float64 to ~1e-12 relative; float32 to a few ulp per step."""
    if actual is None:
        assert expected is None
        return
    if dtype == np.float64:
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)
    else:
        np.testing.assert_array_max_ulp(actual, expected, maxulp=4 * steps)


def table(n, trailing, dtype, rng, low=-3.0, high=3.0):
    return rng.uniform(low, high, (n, *trailing)).astype(dtype)


def zipf_rows(rng, n, k, a=1.3):
    """k row indices in [0, n) drawn from a Zipf law (many repeats of the first rows)."""
    r = rng.zipf(a, 4 * k + 16) - 1
    r = r[r < n][:k]
    return rng.permutation(n)[r].astype(np.int64)  # the popular rows spread over the table


ROW_PATTERNS = {
    "random with repeats": lambda rng, n: rng.integers(0, n, 9),
    "zipf": lambda rng, n: zipf_rows(rng, n, 12),
    "empty": lambda rng, n: np.zeros(0, np.int64),
    "all rows, shuffled": lambda rng, n: rng.permutation(n),
    "increasing": lambda rng, n: np.arange(0, n, 2),
    "one row, repeated": lambda rng, n: np.full(5, n - 1),
    "int32, decreasing": lambda rng, n: np.arange(n - 1, -1, -3, dtype=np.int32),
    "uint8": lambda rng, n: rng.integers(0, n, 7).astype(np.uint8),
}


# ---------------------------------------------------------------------------------------------
# The kernels against the references
# ---------------------------------------------------------------------------------------------

ADAGRAD_OPTIONS = [
    dict(eps_in_sqrt=e, maximize=m, lr_decay=d, weight_decay=wd, lazy=bool(wd))
    for e, m, d, wd in itertools.product([True, False], [False, True], [0.0, 0.1], [0.0, 0.05])
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trailing", TRAILING, ids=str)
@pytest.mark.parametrize("pattern", ROW_PATTERNS)
@pytest.mark.parametrize("duplicates", ["sum", "sequential"])
def test_adagrad_step_rows_matches_reference(dtype, trailing, pattern, duplicates):
    rng = np.random.default_rng(0)
    n = 11
    x, s = table(n, trailing, dtype, rng), table(n, trailing, dtype, rng, 0.0, 1.0)
    rx, rs = x.copy(), s.copy()
    for t in range(1, 5):  # repeated steps, new rows each time
        rows = ROW_PATTERNS[pattern](rng, n)
        g = table(rows.size, trailing, dtype, rng)
        adagrad_step_rows(x, rows, g, s, 0.1, 1e-6, step=t, lr_decay=0.1, duplicates=duplicates)
        rx, rs = adagrad_rows_ref(rx, rows, g, rs, 0.1, 1e-6, duplicates, step=t, lr_decay=0.1)
    assert_close(x, rx, dtype)
    assert_close(s, rs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", ADAGRAD_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_adagrad_step_rows_options_match_reference(dtype, opts):
    rng = np.random.default_rng(1)
    x, s = table(13, (4,), dtype, rng), np.full((13, 4), 0.1, dtype)
    rx, rs = x.copy(), s.copy()
    ref_opts = {k: v for k, v in opts.items() if k != "lazy"}
    for t in range(1, 4):
        rows = zipf_rows(rng, 13, 10)
        g = table(rows.size, (4,), dtype, rng)
        adagrad_step_rows(x, rows, g, s, 0.1, 1e-6, step=t, **opts)
        rx, rs = adagrad_rows_ref(rx, rows, g, rs, 0.1, 1e-6, step=t, **ref_opts)
    assert_close(x, rx, dtype)
    assert_close(s, rs, dtype)


RMSPROP_EXACT_OPTIONS = [
    dict(eps_in_sqrt=e, maximize=m, centered=c)
    for e, m, c in itertools.product([True, False], [False, True], [False, True])
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trailing", TRAILING, ids=str)
@pytest.mark.parametrize("pattern", ROW_PATTERNS)
@pytest.mark.parametrize("duplicates", ["sum", "sequential"])
def test_rmsprop_step_rows_exact_matches_reference(dtype, trailing, pattern, duplicates):
    rng = np.random.default_rng(2)
    n = 11
    x, s = table(n, trailing, dtype, rng), table(n, trailing, dtype, rng, 0.0, 1.0)
    last = rng.integers(0, 3, n)  # rows last brought up to date at steps 0, 1 or 2
    rx, rs, rlast = x.copy(), s.copy(), last.copy()
    for t in range(3, 7):
        rows = ROW_PATTERNS[pattern](rng, n)
        g = table(rows.size, trailing, dtype, rng)
        rmsprop_step_rows(x, rows, g, s, 0.01, 0.9, 1e-6, last_step=last, step=t,
                          duplicates=duplicates)
        rx, rs, _, _, rlast = rmsprop_rows_ref(rx, rows, g, rs, 0.01, 0.9, 1e-6, duplicates,
                                               last_step=rlast, step=t)
    np.testing.assert_array_equal(last, rlast)
    assert_close(x, rx, dtype)
    assert_close(s, rs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", RMSPROP_EXACT_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("duplicates", ["sum", "sequential"])
def test_rmsprop_step_rows_exact_options_match_reference(dtype, opts, duplicates):
    rng = np.random.default_rng(3)
    x, s = table(17, (5,), dtype, rng), np.zeros((17, 5), dtype)
    gavg = np.zeros_like(x) if opts["centered"] else None
    last = np.zeros(17, np.int64)
    rx, rs, rgavg, rlast = x.copy(), s.copy(), None if gavg is None else gavg.copy(), last.copy()
    for t in range(1, 6):
        rows = zipf_rows(rng, 17, 14)
        g = table(rows.size, (5,), dtype, rng)
        rmsprop_step_rows(x, rows, g, s, 0.01, 0.9, 1e-6, grad_avg=gavg, last_step=last, step=t,
                          duplicates=duplicates, **opts)
        rx, rs, _, rgavg, rlast = rmsprop_rows_ref(
            rx, rows, g, rs, 0.01, 0.9, 1e-6, duplicates, gavg=rgavg, last_step=rlast, step=t,
            **opts)
    np.testing.assert_array_equal(last, rlast)
    for a, b in [(x, rx), (s, rs), (gavg, rgavg)]:
        assert_close(a, b, dtype)


RMSPROP_LAZY_OPTIONS = [
    dict(eps_in_sqrt=e, maximize=m, momentum=mu, centered=c, weight_decay=wd)
    for e, m, mu, c, wd in itertools.product([True, False], [False, True], [0.0, 0.9],
                                             [False, True], [0.0, 0.05])
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", RMSPROP_LAZY_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_rmsprop_step_rows_lazy_matches_reference(dtype, opts):
    rng = np.random.default_rng(4)
    x, s = table(9, (2, 2), dtype, rng), np.zeros((9, 2, 2), dtype)
    buf = np.zeros_like(x) if opts["momentum"] else None
    gavg = np.zeros_like(x) if opts["centered"] else None
    ref = [x.copy(), s.copy(), None if buf is None else buf.copy(),
           None if gavg is None else gavg.copy()]
    for _ in range(4):
        rows = ROW_PATTERNS["random with repeats"](rng, 9)
        g = table(rows.size, (2, 2), dtype, rng)
        rmsprop_step_rows(x, rows, g, s, 0.01, 0.9, 1e-6, momentum_buffer=buf, grad_avg=gavg,
                          lazy=True, **opts)
        ref = rmsprop_rows_ref(ref[0], rows, g, ref[1], 0.01, 0.9, 1e-6, buf=ref[2],
                               gavg=ref[3], **opts)[:4]
    for a, b in zip([x, s, buf, gavg], ref):
        assert_close(a, b, dtype)


def test_rmsprop_catch_up_matches_reference():
    rng = np.random.default_rng(5)
    for dtype in DTYPES:
        s, gavg = table(8, (3,), dtype, rng, 0, 1), table(8, (3,), dtype, rng)
        last = rng.integers(0, 6, 8)
        rs, rgavg = s.copy(), gavg.copy()
        f = np.array([gamma_power(dtype, 0.8, 6 - v) for v in last])[:, None]
        rmsprop_catch_up(s, last, 6, 0.8, grad_avg=gavg)
        np.testing.assert_array_equal(last, 6)
        assert_close(s, rs * f, dtype)
        assert_close(gavg, rgavg * f, dtype)
        before = s.copy(), gavg.copy()
        rmsprop_catch_up(s, last, 6, 0.8, grad_avg=gavg)  # up to date: nothing changes
        np.testing.assert_array_equal(s, before[0])
        np.testing.assert_array_equal(gavg, before[1])


# ---------------------------------------------------------------------------------------------
# The sparse step is the dense step with zeros elsewhere
# ---------------------------------------------------------------------------------------------


def dense_grad(n, rows, g):
    """The dense gradient: np.add.at sums the entries of a row in order, as the kernels do."""
    return SparseGrad(rows, g).to_dense(n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("big", [False, True], ids=["serial", "parallel"])
def test_adagrad_rows_equal_the_dense_kernel_bit_for_bit(dtype, big):
    rng = np.random.default_rng(6)
    n, m = (3000, 64) if big else (40, 3)
    k = 2 * PARALLEL_MIN_BYTES // (m * np.dtype(dtype).itemsize) if big else 25
    x, s = table(n, (m,), dtype, rng), np.full((n, m), 0.1, dtype)
    xd, sd = x.copy(), s.copy()
    for t in range(1, 6):
        rows = zipf_rows(rng, n, k)
        g = table(rows.size, (m,), dtype, rng)
        adagrad_step_rows(x, rows, g, s, 0.05, 1e-10, False, maximize=True, lr_decay=0.01,
                          step=t)
        adagrad_step(xd, dense_grad(n, rows, g), sd, 0.05, 1e-10, False, maximize=True,
                     lr_decay=0.01, step=t)
    np.testing.assert_array_equal(x, xd)
    np.testing.assert_array_equal(s, sd)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("big", [False, True], ids=["serial", "parallel"])
def test_exact_rmsprop_equals_the_dense_kernel_over_many_steps(dtype, centered, big):
    """60 steps on random row subsets (some rows absent for long stretches), with a catch-up
    every 20 steps (as an optimizer does when its state is read) and at the end."""
    rng = np.random.default_rng(7)
    n, m = (2000, 32) if big else (30, 4)
    x = table(n, (m,), dtype, rng)
    x0 = x.copy()
    s, last = np.zeros_like(x), np.zeros(n, np.int64)
    gavg = np.zeros_like(x) if centered else None
    xd, sd, gd = x.copy(), s.copy(), None if gavg is None else gavg.copy()
    steps = 60
    for t in range(1, steps + 1):
        k = int(rng.integers(0, n // 3 if big else 12))
        rows = zipf_rows(rng, n, k) if t % 2 else rng.integers(0, n, k)
        g = table(rows.size, (m,), dtype, rng)
        rmsprop_step_rows(x, rows, g, s, 0.01, 0.9, 1e-6, centered=centered, grad_avg=gavg,
                          last_step=last, step=t)
        rmsprop_step(xd, dense_grad(n, rows, g), sd, 0.01, 0.9, 1e-6, centered=centered,
                     grad_avg=gd)
        if t % 20 == 0:
            rmsprop_catch_up(s, last, t, 0.9, grad_avg=gavg)
            np.testing.assert_array_equal(last, t)
    eps = np.finfo(dtype).eps
    # float64: ~1e-12 relative; float32: a few ulp per step, of the values' scale (x moves by
    # lr per step at most, so an error of the state becomes an error of size ~eps * |x0|).
    per_step = 4 if dtype == np.float32 else 1e-12 / eps / steps
    scale = np.maximum(np.abs(xd), np.abs(x0))
    assert np.all(np.abs(x - xd) <= per_step * steps * eps * scale)
    assert np.all(np.abs(s - sd) <= per_step * steps * eps * sd)
    if centered:  # an average of signed gradients: an element near 0 keeps the error of its terms
        scale = np.maximum(np.abs(gd), np.sqrt(np.mean(gd * gd)))
        assert np.all(np.abs(gavg - gd) <= per_step * steps * eps * scale)


def test_rows_present_at_every_step_match_the_dense_kernel_bit_for_bit():
    rng = np.random.default_rng(8)
    x, s, last = table(6, (3,), np.float32, rng), np.zeros((6, 3), np.float32), np.zeros(6, np.int64)
    xd, sd = x.copy(), s.copy()
    for t in range(1, 30):
        rows = np.concatenate([[0, 1], rng.integers(2, 6, 2)])
        g = table(rows.size, (3,), np.float32, rng)
        rmsprop_step_rows(x, rows, g, s, 0.01, 0.99, 1e-8, False, last_step=last, step=t)
        rmsprop_step(xd, dense_grad(6, rows, g), sd, 0.01, 0.99, 1e-8, False)
    np.testing.assert_array_equal(x[:2], xd[:2])
    np.testing.assert_array_equal(s[:2], sd[:2])


@pytest.mark.parametrize("n", [1, 2, 300, 5000, 2**22, 2**22 + 1, 2**40, 2**62])
@pytest.mark.parametrize("dtype", [np.int64, np.uint32, np.int16])
def test_row_order_is_a_stable_sort(n, dtype):
    """The order in which the loops visit the entries: by row, equal rows in input order, for
    tables of any size (1 to 3+ radix passes)."""
    from rmsprop_nb._rows import _row_order

    rng = np.random.default_rng(n)
    high = min(n, np.iinfo(dtype).max + 1)
    for rows in [rng.integers(0, high, 1000), rng.integers(0, min(high, 7), 50),
                 np.sort(rng.integers(0, high, 40)), np.zeros(0, np.int64)]:
        rows = rows.astype(dtype)
        np.testing.assert_array_equal(_row_order(rows, n), np.argsort(rows, kind="stable"))


# ---------------------------------------------------------------------------------------------
# Serial and parallel loops: the same bits
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["adagrad", "exact", "exact centered", "lazy momentum"])
@pytest.mark.parametrize("duplicates", ["sum", "sequential"])
def test_parallel_and_serial_row_loops_agree_bit_for_bit(dtype, case, duplicates):
    rng = np.random.default_rng(9)
    n, m, k = 5000, 16, 6000
    rows = zipf_rows(rng, n, k, a=1.1)  # a few very long runs: chunks of unequal work
    g = table(rows.size, (m,), dtype, rng)
    results = []
    for kernel in ("serial", "parallel"):
        x, s = table(n, (m,), dtype, np.random.default_rng(1)), np.full((n, m), 0.5, dtype)
        last = np.random.default_rng(2).integers(0, 3, n)
        extra = [np.zeros_like(x) for _ in range(2)]
        seq = duplicates == "sequential"
        if case == "adagrad":
            getattr(kernels, f"_adagrad_rows_{kernel}")(
                x, rows, g, s, 0.1, 1e-8, True, 0.0, False, 0.0, 1, False, seq)
        else:
            buf = extra[0] if case == "lazy momentum" else None
            gavg = extra[1] if "centered" in case else None
            lazy = case.startswith("lazy")
            getattr(kernels, f"_rmsprop_rows_{kernel}")(
                x, rows, g, s, 0.01, 0.9, 1e-8, True, 0.0, False, 0.9 if lazy else 0.0, buf,
                gavg is not None, gavg, None if lazy else last, None if lazy else 3, lazy, seq)
        results.append([x, s, last, *extra])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Invariants (Hypothesis)
# ---------------------------------------------------------------------------------------------

finite = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def sparse_steps(draw, max_rows=12, width=3):
    n = draw(st.integers(1, max_rows))
    k = draw(st.integers(0, 2 * n))
    rows = np.array(draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k)), np.int64)
    values = st.floats(-1e3, 1e3, **finite)
    x = np.array(draw(st.lists(values, min_size=n * width, max_size=n * width))).reshape(n, width)
    g = np.array(draw(st.lists(values, min_size=k * width, max_size=k * width))).reshape(k, width)
    s = np.abs(np.array(draw(st.lists(values, min_size=n * width, max_size=n * width))))
    return x, rows, g, s.reshape(n, width)


ALGORITHMS = ["adagrad", "rmsprop exact", "rmsprop lazy"]


def _step(algo, x, rows, g, s, last=None, duplicates="sum"):
    if algo == "adagrad":
        adagrad_step_rows(x, rows, g, s, 0.1, 1e-6, duplicates=duplicates)
    elif algo == "rmsprop exact":
        rmsprop_step_rows(x, rows, g, s, 0.1, 0.9, 1e-6, last_step=last, step=5,
                          duplicates=duplicates)
    else:
        rmsprop_step_rows(x, rows, g, s, 0.1, 0.9, 1e-6, lazy=True, duplicates=duplicates)


@given(data=sparse_steps(), algo=st.sampled_from(ALGORITHMS),
       duplicates=st.sampled_from(["sum", "sequential"]))
@example(data=(np.ones((3, 3)), np.array([2, 2], np.int64), np.ones((2, 3)), np.zeros((3, 3))),
         algo="rmsprop exact", duplicates="sum")
def test_rows_not_present_never_change(data, algo, duplicates):
    x, rows, g, s = data
    last = np.arange(x.shape[0]) % 4
    before = x.copy(), s.copy(), last.copy()
    _step(algo, x, rows, g, s, last, duplicates)
    absent = np.setdiff1d(np.arange(x.shape[0]), rows)
    np.testing.assert_array_equal(x[absent], before[0][absent])
    np.testing.assert_array_equal(s[absent], before[1][absent])  # exact mode: not yet decayed
    np.testing.assert_array_equal(last[absent], before[2][absent])
    if algo == "rmsprop exact":
        np.testing.assert_array_equal(last[rows], 5)


@given(data=sparse_steps(), duplicates=st.sampled_from(["sum", "sequential"]))
def test_adagrad_rows_state_never_decreases(data, duplicates):
    x, rows, g, s = data
    before = s.copy()
    adagrad_step_rows(x, rows, g, s, 0.1, 1e-6, duplicates=duplicates)
    assert np.all(s >= before)


@given(data=sparse_steps(), algo=st.sampled_from(ALGORITHMS))
def test_summed_duplicates_equal_one_entry_per_row_with_the_summed_gradient(data, algo):
    x, rows, g, s = data
    last = np.zeros(x.shape[0], np.int64)
    x2, s2, last2 = x.copy(), s.copy(), last.copy()
    _step(algo, x, rows, g, s, last)
    unique = np.unique(rows)
    summed = np.array([functools.reduce(operator.add, g[rows == r]) for r in unique])
    _step(algo, x2, unique, summed.reshape(-1, x.shape[1]), s2, last2)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(s, s2)


@given(data=sparse_steps(), algo=st.sampled_from(ALGORITHMS), seed=st.integers(0, 2**32 - 1))
def test_distinct_rows_in_any_order_give_the_same_bits_in_both_modes(data, algo, seed):
    x, rows, g, s = data
    rows, first = np.unique(rows, return_index=True)
    g = g[first]
    perm = np.random.default_rng(seed).permutation(rows.size)
    results = []
    for r, gr, duplicates in [(rows, g, "sum"), (rows[perm], g[perm], "sum"),
                              (rows[perm], g[perm], "sequential")]:
        xi, si, last = x.copy(), s.copy(), np.zeros(x.shape[0], np.int64)
        _step(algo, xi, r, np.ascontiguousarray(gr), si, last, duplicates)
        results.append((xi, si))
    for xi, si in results[1:]:
        np.testing.assert_array_equal(xi, results[0][0])
        np.testing.assert_array_equal(si, results[0][1])


@given(data=sparse_steps(), gamma=st.floats(0.0, 0.999), t1=st.integers(0, 50),
       t2=st.integers(0, 50))
def test_catch_up_in_two_stages_equals_one(data, gamma, t1, t2):
    _, _, _, s = data
    last = np.zeros(s.shape[0], np.int64)
    s1, l1 = s.copy(), last.copy()
    rmsprop_catch_up(s1, l1, t1, gamma)
    rmsprop_catch_up(s1, l1, t1 + t2, gamma)
    s2, l2 = s.copy(), last.copy()
    rmsprop_catch_up(s2, l2, t1 + t2, gamma)
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_allclose(s1, s2, rtol=4e-16 * 3, atol=1e-300)


# ---------------------------------------------------------------------------------------------
# Float32 stays float32
# ---------------------------------------------------------------------------------------------


def test_float32_rows_are_computed_in_float32():
    # The float32 reference to the bit, and not what float64 arithmetic rounded at the end gives.
    rng = np.random.default_rng(10)
    x, s = table(500, (8,), np.float32, rng), table(500, (8,), np.float32, rng, 0, 1)
    last = rng.integers(0, 40, 500)
    rows = rng.permutation(500)[:300]
    g = table(300, (8,), np.float32, rng)
    rx, rs, _, _, _ = rmsprop_rows_ref(x, rows, g, s, 0.3, 0.9, 1e-6, last_step=last, step=50)
    x64, s64 = x.astype(np.float64), s.astype(np.float64)
    rmsprop_step_rows(x, rows, g, s, 0.3, 0.9, 1e-6, last_step=last.copy(), step=50)
    rmsprop_step_rows(x64, rows, g.astype(np.float64), s64, 0.3, 0.9, 1e-6, last_step=last,
                      step=50)
    np.testing.assert_array_max_ulp(x, rx, maxulp=1)
    np.testing.assert_array_max_ulp(s, rs, maxulp=1)
    assert np.any(x64.astype(np.float32) != x)


# ---------------------------------------------------------------------------------------------
# Bad input: a clear error naming the argument, nothing modified
# ---------------------------------------------------------------------------------------------


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _ada_args(**over):
    args = dict(x=np.ones((5, 3)), rows=np.array([1, 3, 1]), g=np.full((3, 3), 0.5),
                s=np.zeros((5, 3)), lr=0.1, eps=1e-6, eps_in_sqrt=True, weight_decay=0.0,
                maximize=False, lr_decay=0.0, step=1, lazy=False, duplicates="sum")
    args.update(over)
    return args


def _rms_args(**over):
    args = dict(x=np.ones((5, 3)), rows=np.array([1, 3, 1]), g=np.full((3, 3), 0.5),
                s=np.zeros((5, 3)), lr=0.1, gamma=0.9, eps=1e-6, eps_in_sqrt=True,
                weight_decay=0.0, maximize=False, momentum=0.0, momentum_buffer=None,
                centered=False, grad_avg=None, last_step=np.zeros(5, np.int64), step=1,
                lazy=False, duplicates="sum")
    args.update(over)
    return args


# (description, arguments changed, exception, the message's start after "<kernel>: ").
# Type-level mistakes (marked "type") fail the compilation of a user's @njit function too.
ADAGRAD_BAD = [
    ("rows float", dict(rows=np.array([1.0, 3.0, 1.0])), TypeError,
     "rows must be an array of integers (row indices), got dtype float64; pass np.asarray(rows, dtype=np.int64)", "type"),
    ("rows bool mask", dict(rows=np.array([True, False, True])), TypeError,
     "rows must be an array of integers (row indices), got dtype bool; for a mask, pass np.flatnonzero(mask)", "type"),
    ("rows 2-D", dict(rows=np.array([[1, 3, 1]])), ValueError,
     "rows must be 1-D (one row index per row of g), got 2 dimensions", "type"),
    ("rows a list", dict(rows=[1, 3, 1]), TypeError,
     "rows must be a numpy.ndarray, got list; convert it with np.asarray(..., dtype=np.int64)", "python"),
    ("rows negative", dict(rows=np.array([1, -1, 1])), ValueError,
     "rows[1] is -1, out of range for x with 5 rows (valid indices: 0 to 4; negative indices are not wrapped)", "value"),
    ("rows too large", dict(rows=np.array([1, 3, 5])), ValueError,
     "rows[2] is 5, out of range for x with 5 rows", "value"),
    ("g one row short", dict(g=np.ones((2, 3))), ValueError,
     "g has shape (2, 3) but x[rows] has shape (3, 3)", "value"),
    ("g other width", dict(g=np.ones((3, 4))), ValueError,
     "g has shape (3, 4) but x[rows] has shape (3, 3)", "value"),
    ("g 1-D", dict(g=np.ones(3)), ValueError,
     "g has 1 dimension but x has 2; g must have the shape of x[rows]", "type"),
    ("g float32", dict(g=np.ones((3, 3), np.float32)), TypeError,
     "g has dtype float32 but x has dtype float64", "type"),
    ("s of the rows' shape", dict(s=np.zeros((3, 3))), ValueError,
     "s has shape (3, 3) but x has shape (5, 3)", "value"),
    ("x Fortran order", dict(x=np.asfortranarray(np.ones((5, 3))),
                             s=np.asfortranarray(np.zeros((5, 3)))), ValueError,
     "x must be C-contiguous (each row one block of memory), got Fortran order; pass np.ascontiguousarray(x)", "type"),
    ("x 0-d", dict(x=np.array(1.0)), ValueError,
     "x must have at least 1 dimension (its first axis indexes the rows), got a 0-dimensional array", "type"),
    ("x read-only", dict(x=_readonly(np.ones((5, 3)))), ValueError, "x is read-only", "type"),
    ("s aliases x", dict(s="x"), ValueError, "x, g, s and rows must not share memory", "value"),
    ("lr negative", dict(lr=-0.1), ValueError, "lr must be a finite number >= 0, got -0.1", "value"),
    ("step 0", dict(step=0), ValueError, "step must be >= 1 (the first step is 1), got 0", "value"),
    ("lazy not a bool", dict(lazy=1), TypeError, "lazy must be True or False, got int", "type"),
    ("weight decay, exact", dict(weight_decay=0.1), ValueError,
     "weight_decay > 0 changes rows that have no gradient", "value"),
    ("duplicates unknown", dict(duplicates="mean"), ValueError,
     "duplicates must be 'sum' or 'sequential', got 'mean'", "choice"),
]

RMSPROP_BAD = [
    ("rows uint64 too large", dict(rows=np.array([1, 2**63 + 5, 1], np.uint64)), ValueError,
     "rows[1] is 9223372036854775813, out of range for x with 5 rows", "value"),
    ("exact without last_step", dict(last_step=None), ValueError,
     "the exact mode (lazy=False) needs last_step (an int64 array, one entry per row of x, starting at zeros) and step", "value"),
    ("exact without step", dict(step=None), ValueError, "the exact mode (lazy=False) needs last_step", "value"),
    ("last_step int32", dict(last_step=np.zeros(5, np.int32)), TypeError,
     "last_step must have dtype int64, got int32", "type"),
    ("last_step read-only", dict(last_step=_readonly(np.zeros(5, np.int64))), ValueError,
     "last_step is read-only", "type"),
    ("last_step one short", dict(last_step=np.zeros(4, np.int64)), ValueError,
     "last_step has shape (4,) but x has 5 rows; it needs shape (5,)", "value"),
    ("last_step not before step", dict(last_step=np.array([0, 0, 0, 1, 0]), step=1), ValueError,
     "last_step[3] is 1 but step is 1: a row updated at step 1 must have been brought up to date before it", "value"),
    ("step a float", dict(step=1.0), TypeError, "step must be an integer, got float", "type"),
    ("step 0", dict(step=0), ValueError, "step must be >= 1 (the first step is 1), got 0", "value"),
    ("momentum, exact", dict(momentum=0.9, momentum_buffer=np.zeros((5, 3))), ValueError,
     "momentum moves rows that have no gradient", "value"),
    ("momentum_buffer, exact", dict(momentum_buffer=np.zeros((5, 3))), ValueError,
     "momentum moves rows that have no gradient", "value"),
    ("weight decay, exact", dict(weight_decay=0.01), ValueError,
     "weight_decay > 0 changes rows that have no gradient (their gradient is weight_decay * x, not 0)", "value"),
    ("lazy with last_step", dict(lazy=True), ValueError,
     "last_step and step belong to the exact mode; with lazy=True leave them out", "value"),
    ("lazy momentum without buffer", dict(lazy=True, last_step=None, step=None, momentum=0.9),
     ValueError, "momentum > 0 needs a momentum_buffer array", "value"),
    ("centered without grad_avg", dict(centered=True), ValueError,
     "centered=True needs a grad_avg array", "value"),
    ("grad_avg of the rows' shape", dict(centered=True, grad_avg=np.zeros((3, 3))), ValueError,
     "grad_avg has shape (3, 3) but x has shape (5, 3)", "value"),
    ("grad_avg float32", dict(centered=True, grad_avg=np.zeros((5, 3), np.float32)), TypeError,
     "grad_avg has dtype float32 but x has dtype float64", "type"),
    ("last_step aliases rows", dict(rows="last_step"), ValueError,
     "last_step or rows shares memory with another array", "value"),
    ("gamma 1", dict(gamma=1.0), ValueError, "gamma must be in [0, 1), got 1.0", "value"),
    ("rows out of range", dict(rows=np.array([7, 0, 0])), ValueError, "rows[0] is 7, out of range", "value"),
    ("duplicates not a string", dict(duplicates=2), ValueError,
     "duplicates must be 'sum' or 'sequential', got 2", "choice"),
]


def _resolve(args):
    if isinstance(args.get("s"), str):
        args["s"] = args[args["s"]]
    if isinstance(args.get("rows"), str):  # rows: a view of last_step
        args["last_step"] = np.zeros(5, np.int64)
        args["rows"] = args["last_step"][:3]
    return args


def _arrays(args):
    return [a for a in args.values() if isinstance(a, np.ndarray)]


@pytest.mark.parametrize("kernel, case", [("adagrad_step_rows", c) for c in ADAGRAD_BAD]
                         + [("rmsprop_step_rows", c) for c in RMSPROP_BAD],
                         ids=lambda v: v if isinstance(v, str) else v[0])
def test_bad_input_raises_a_clear_error_and_changes_nothing(kernel, case):
    _, over, exc, message, _ = case
    args = _resolve((_ada_args if kernel.startswith("ada") else _rms_args)(**over))
    before = [a.copy() for a in _arrays(args)]
    with pytest.raises(exc) as info:
        getattr(kernels, kernel)(**args)
    assert str(info.value).startswith(f"{kernel}: {message}")
    for a, b in zip(_arrays(args), before):
        np.testing.assert_array_equal(a, b)


@numba.njit
def _ada_jit(x, rows, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step, lazy,
             duplicates):
    adagrad_step_rows(x, rows, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay,
                      step, lazy=lazy, duplicates=duplicates)


@numba.njit
def _rms_jit(x, rows, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
             momentum_buffer, centered, grad_avg, last_step, step, lazy, duplicates):
    rmsprop_step_rows(x, rows, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize,
                      momentum, momentum_buffer, centered, grad_avg, last_step=last_step,
                      step=step, lazy=lazy, duplicates=duplicates)


def _njit_case(case):
    """Cases an @njit caller can make: not a list (Numba's reflected list is another story),
    and a bad ``duplicates`` only as a run-time string (constants: see the next test)."""
    over = case[1]
    return case[4] != "python" and isinstance(over.get("duplicates", ""), str)


@pytest.mark.parametrize("kernel, case",
                         [("adagrad_step_rows", c) for c in ADAGRAD_BAD if _njit_case(c)]
                         + [("rmsprop_step_rows", c) for c in RMSPROP_BAD if _njit_case(c)],
                         ids=lambda v: v if isinstance(v, str) else v[0])
def test_njit_callers_get_the_same_errors_and_nothing_changes(kernel, case):
    """Type-level mistakes fail the compilation of the caller, value-level ones raise when it
    runs, a bad ``duplicates`` string when it runs (it is a run-time string here); all with
    the Python message."""
    _, over, exc, message, _ = case
    args = _resolve((_ada_args if kernel.startswith("ada") else _rms_args)(**over))
    before = [a.copy() for a in _arrays(args)]
    with pytest.raises(exc) as info:
        (_ada_jit if kernel.startswith("ada") else _rms_jit)(**args)
    assert str(info.value).startswith(f"{kernel}: {message}")
    for a, b in zip(_arrays(args), before):
        np.testing.assert_array_equal(a, b)


@numba.njit
def _constant_duplicates(x, rows, g, s):
    adagrad_step_rows(x, rows, g, s, 0.1, 1e-6, duplicates="mean")


@numba.njit
def _integer_duplicates(x, rows, g, s):
    adagrad_step_rows(x, rows, g, s, 0.1, 1e-6, duplicates=2)


@pytest.mark.parametrize("fn, got", [(_constant_duplicates, "'mean'"), (_integer_duplicates, "2")])
def test_a_constant_bad_duplicates_fails_to_compile_with_the_python_message(fn, got):
    args = _ada_args()
    with pytest.raises(ValueError) as info:
        fn(args["x"], args["rows"], args["g"], args["s"])
    assert str(info.value) == (
        f"adagrad_step_rows: duplicates must be 'sum' or 'sequential', got {got}")
    np.testing.assert_array_equal(args["x"], 1.0)


@pytest.mark.parametrize("case", [
    (dict(last_step=np.array([0, 5, 0])), ValueError,
     "rmsprop_catch_up: last_step[1] is 5, after step 4: the state cannot be brought back to an earlier step"),
    (dict(last_step=np.zeros(4, np.int64)), ValueError,
     "rmsprop_catch_up: last_step has shape (4,) but s has 3 rows; it needs shape (3,)"),
    (dict(step=-1), ValueError, "rmsprop_catch_up: step must be >= 0, got -1"),
    (dict(gamma=1.5), ValueError, "rmsprop_catch_up: gamma must be in [0, 1), got 1.5"),
    (dict(last_step=np.zeros(3)), TypeError, "rmsprop_catch_up: last_step must have dtype int64, got float64"),
    (dict(grad_avg=np.zeros((3, 3))), ValueError, "rmsprop_catch_up: grad_avg has shape (3, 3) but s has shape (3, 2)"),
    (dict(step=2.0), TypeError, "rmsprop_catch_up: step must be an integer, got float"),
], ids=["after step", "length", "step < 0", "gamma", "float last_step", "grad_avg shape", "float step"])
def test_catch_up_rejects_bad_input_and_changes_nothing(case):
    over, exc, message = case
    args = dict(s=np.ones((3, 2)), last_step=np.zeros(3, np.int64), step=4, gamma=0.5,
                grad_avg=None)
    args.update(over)
    before = [a.copy() for a in _arrays(args)]
    with pytest.raises(exc) as info:
        rmsprop_catch_up(**args)
    assert str(info.value) == message
    for a, b in zip(_arrays(args), before):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------------------------


def test_empty_rows_change_nothing_and_an_empty_table_works():
    for dtype in DTYPES:
        x, s, last = np.ones((4, 2), dtype), np.ones((4, 2), dtype), np.zeros(4, np.int64)
        empty, g = np.zeros(0, np.int64), np.zeros((0, 2), dtype)
        adagrad_step_rows(x, empty, g, s, 0.1, 1e-6)
        rmsprop_step_rows(x, empty, g, s, 0.1, 0.9, 1e-6, last_step=last, step=1)
        np.testing.assert_array_equal(x, 1)
        np.testing.assert_array_equal(s, 1)
        np.testing.assert_array_equal(last, 0)
        x0 = np.zeros((0, 2), dtype)
        adagrad_step_rows(x0, empty, g, x0.copy(), 0.1, 1e-6)
        rmsprop_catch_up(x0.copy(), np.zeros(0, np.int64), 3, 0.9)
    with pytest.raises(ValueError, match=r"rows\[0\] is 0, out of range for x with 0 rows "
                                         r"\(valid indices: none: x has no rows"):
        adagrad_step_rows(np.zeros((0, 2)), np.array([0]), np.ones((1, 2)), np.zeros((0, 2)),
                          0.1, 1e-6)


def test_one_dimensional_tables_and_read_only_rows_and_gradients():
    x, s = np.arange(6.0), np.zeros(6)
    rows, g = _readonly(np.array([5, 0, 5])), _readonly(np.array([1.0, 2.0, 3.0]))
    adagrad_step_rows(x, rows, g, s, 0.5, 0.0)
    np.testing.assert_allclose(x, [-0.5, 1, 2, 3, 4, 4.5])
    np.testing.assert_allclose(s, [4, 0, 0, 0, 0, 16])


def test_large_gaps_and_gamma_zero():
    # gamma**k underflows to 0 for long absences; gamma = 0 forgets at once (0**0 = 1).
    for gamma in (0.0, 0.5):
        s, last = np.ones((2, 1)), np.array([0, 10**9])
        x = np.zeros((2, 1))
        rmsprop_step_rows(x, np.array([0, 1]), np.ones((2, 1)), s, 0.1, gamma, 1e-6,
                          last_step=last, step=10**9 + 1)
        np.testing.assert_allclose(s[:, 0], [1 - gamma, gamma + (1 - gamma)])


# ---------------------------------------------------------------------------------------------
# From @njit code: the same results as from Python
# ---------------------------------------------------------------------------------------------


@numba.njit
def _train(x, s, last, rows_per_step, g_per_step, sequential):
    for t in range(rows_per_step.shape[0]):
        if sequential:
            rmsprop_step_rows(x, rows_per_step[t], g_per_step[t], s, 0.01, 0.9, 1e-6,
                              last_step=last, step=t + 1, duplicates="sequential")
        else:
            rmsprop_step_rows(x, rows_per_step[t], g_per_step[t], s, 0.01, 0.9, 1e-6,
                              last_step=last, step=t + 1)
    rmsprop_catch_up(s, last, rows_per_step.shape[0], 0.9)


@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("big", [False, True], ids=["serial", "parallel"])
def test_njit_and_python_calls_agree_bit_for_bit(sequential, big):
    rng = np.random.default_rng(11)
    n, k, m = (3000, 1200, 32) if big else (20, 6, 2)
    rows = np.stack([zipf_rows(rng, n, k) for _ in range(5)])
    g = rng.standard_normal((5, k, m))
    x = rng.standard_normal((n, m))
    x1, s1, l1 = x.copy(), np.zeros_like(x), np.zeros(n, np.int64)
    _train(x1, s1, l1, rows, g, sequential)
    x2, s2, l2 = x.copy(), np.zeros_like(x), np.zeros(n, np.int64)
    for t in range(5):
        rmsprop_step_rows(x2, rows[t], g[t], s2, 0.01, 0.9, 1e-6, last_step=l2, step=t + 1,
                          duplicates="sequential" if sequential else "sum")
    rmsprop_catch_up(s2, l2, 5, 0.9)
    for a, b in [(x1, x2), (s1, s2), (l1, l2)]:
        np.testing.assert_array_equal(a, b)


JOURNEY = """
    import numba
    import numpy as np
    from rmsprop_nb.kernels import adagrad_step_rows, rmsprop_catch_up, rmsprop_step_rows

    @numba.njit{decorator}
    def train(x, s, rows, g, adagrad, last):
        for t in range(rows.shape[0]):
            if adagrad:
                adagrad_step_rows(x, rows[t], g[t], s, 0.1, 1e-6, duplicates="sequential")
            else:
                rmsprop_step_rows(x, rows[t], g[t], s, 0.01, 0.9, 1e-6, last_step=last,
                                  step=t + 1)
        if not adagrad:
            rmsprop_catch_up(s, last, rows.shape[0], 0.9)

    rng = np.random.default_rng(0)
    for n, k in ((50, 8), (20000, 4096)):  # serial, then the parallel loops
        rows = rng.integers(0, n, (4, k))
        g = rng.standard_normal((4, k, 16)).astype(np.float32)
        for adagrad in (True, False):
            x = np.ones((n, 16), np.float32)
            s, last = np.zeros_like(x), np.zeros(n, np.int64)
            train(x, s, rows, g, adagrad, last)
            x2, s2, last2 = np.ones_like(x), np.zeros_like(x), np.zeros(n, np.int64)
            for t in range(4):
                if adagrad:
                    adagrad_step_rows(x2, rows[t], g[t], s2, 0.1, 1e-6, duplicates="sequential")
                else:
                    rmsprop_step_rows(x2, rows[t], g[t], s2, 0.01, 0.9, 1e-6, last_step=last2,
                                      step=t + 1)
            if not adagrad:
                rmsprop_catch_up(s2, last2, 4, 0.9)
            same = np.array_equal(x, x2) and np.array_equal(s, s2)
            print("adagrad" if adagrad else "rmsprop", n, "same" if same else "DIFFERENT")
"""


@pytest.mark.parametrize("decorator", ["(cache=True)", "(cache=True, parallel=True)"])
def test_journey_row_kernels_from_a_users_script_in_fresh_processes(tmp_path, decorator):
    """A user's script, run twice in fresh processes over one fresh cache (the second run
    loads everything from it): the compiled loop gives what the Python calls give."""
    script = tmp_path / "embeddings.py"
    script.write_text(textwrap.dedent(JOURNEY).replace("{decorator}", decorator))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), RMSPROP_NB_CACHE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    for _ in range(2):
        r = subprocess.run([sys.executable, script.name], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        lines = r.stdout.split("\n")
        assert [ln.split()[-1] for ln in lines if ln] == ["same"] * 4, r.stdout

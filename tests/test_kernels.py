"""The kernels against the NumPy oracle, their errors, and invariants of the update rules."""

import itertools

import numba
import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rmsprop_nb.kernels import PARALLEL_MIN_BYTES, adagrad_step, rmsprop_step

import reference

DTYPES = [np.float32, np.float64]
# Small, odd, multi-dimensional, Fortran-ordered, and large enough for the parallel loop.
SHAPES = [(1,), (7,), (3, 5), (2, 3, 4), ("F", (6, 7)), (PARALLEL_MIN_BYTES // 4 + 33,)]


def make(shape, dtype, rng, low=-3.0, high=3.0):
    order = "C"
    if shape[0] == "F":
        order, shape = "F", shape[1]
    return np.asarray(rng.uniform(low, high, size=shape), dtype=dtype, order=order)


def assert_close(actual, expected, dtype):
    """float64 to ~1e-12 relative; float32 to a few ulp."""
    if dtype == np.float64:
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)
    else:
        np.testing.assert_array_max_ulp(actual, expected, maxulp=4)


RMSPROP_OPTIONS = [
    dict(eps_in_sqrt=e, weight_decay=wd, maximize=m, momentum=mu, centered=c)
    for e, wd, m, mu, c in itertools.product(
        [True, False], [0.0, 0.05], [False, True], [0.0, 0.9], [False, True]
    )
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("opts", RMSPROP_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_rmsprop_step_matches_numpy_reference(dtype, shape, opts):
    rng = np.random.default_rng(0)
    x = make(shape, dtype, rng)
    s = np.zeros_like(x)
    buf = np.zeros_like(x) if opts["momentum"] else None
    gavg = np.zeros_like(x) if opts["centered"] else None
    rx, rs, rbuf, rgavg = x.copy(), s.copy(), None if buf is None else buf.copy(), None if gavg is None else gavg.copy()
    for _ in range(4):
        g = make(shape, dtype, rng)
        rmsprop_step(x, g, s, 0.01, 0.9, 1e-6, momentum_buffer=buf, grad_avg=gavg, **opts)
        rx, rs, rbuf, rgavg = reference.rmsprop(rx, g, rs, 0.01, 0.9, 1e-6, buf=rbuf, gavg=rgavg, **opts)
    assert_close(x, rx, dtype)
    assert_close(s, rs, dtype)
    if buf is not None:
        assert_close(buf, rbuf, dtype)
    if gavg is not None:
        assert_close(gavg, rgavg, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(
    "opts",
    [dict(eps_in_sqrt=e, weight_decay=wd, maximize=m, lr_decay=d)
     for e, wd, m, d in itertools.product([True, False], [0.0, 0.05], [False, True], [0.0, 0.1])],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_adagrad_step_matches_numpy_reference(dtype, shape, opts):
    rng = np.random.default_rng(1)
    x = make(shape, dtype, rng)
    s = np.full_like(x, 0.1)
    rx, rs = x.copy(), s.copy()
    for t in range(1, 5):
        g = make(shape, dtype, rng)
        adagrad_step(x, g, s, 0.1, 1e-6, step=t, **opts)
        rx, rs = reference.adagrad(rx, g, rs, 0.1, 1e-6, step=t, **opts)
    assert_close(x, rx, dtype)
    assert_close(s, rs, dtype)


def test_float32_update_is_computed_in_float32():
    # A float64 computation rounded to float32 at the end would differ from the float32
    # reference in some of these elements.
    rng = np.random.default_rng(2)
    x = rng.standard_normal(10_000).astype(np.float32)
    g = rng.standard_normal(10_000).astype(np.float32)
    s = rng.uniform(0, 1, 10_000).astype(np.float32)
    x64, s64 = x.astype(np.float64), s.astype(np.float64)
    rx, rs, _, _ = reference.rmsprop(x.copy(), g, s.copy(), 0.3, 0.9, 1e-6)
    rmsprop_step(x, g, s, 0.3, 0.9, 1e-6)
    rmsprop_step(x64, g.astype(np.float64), s64, 0.3, 0.9, 1e-6)
    np.testing.assert_array_equal(x, rx)
    np.testing.assert_array_equal(s, rs)
    assert np.any(x64.astype(np.float32) != x), "float64 rounding should differ somewhere"


def test_book_example_through_the_kernel():
    x = np.array([-5.0, -2.0])
    s = np.zeros(2)
    for _ in range(20):
        rmsprop_step(x, np.array([0.2, 4.0]) * x, s, 0.4, 0.9, 1e-6)
    assert f"epoch 20, x1 {x[0]:f}, x2 {x[1]:f}" == "epoch 20, x1 -0.010599, x2 0.000000"
    np.testing.assert_allclose(x, reference.book_rmsprop_2d(), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# Called from a user's own @njit code
# ---------------------------------------------------------------------------------------------


@numba.njit
def _user_loop(x, s, buf, steps):
    for _ in range(steps):
        g = np.array([0.2, 4.0]) * x
        rmsprop_step(x, g, s, 0.4, 0.9, 1e-6, momentum=0.5, momentum_buffer=buf)


@numba.njit
def _user_adagrad(x, s, steps):
    for t in range(1, steps + 1):
        adagrad_step(x, np.array([0.2, 4.0]) * x, s, lr=0.4, eps=1e-6, lr_decay=0.01, step=t)


def test_kernels_work_inside_user_njit_functions_with_keywords():
    x, s, buf = np.array([-5.0, -2.0]), np.zeros(2), np.zeros(2)
    _user_loop(x, s, buf, 20)
    rx, rs, rb = np.array([-5.0, -2.0]), np.zeros(2), np.zeros(2)
    for _ in range(20):
        rx, rs, rb, _ = reference.rmsprop(rx, np.array([0.2, 4.0]) * rx, rs, 0.4, 0.9, 1e-6,
                                          momentum=0.5, buf=rb)
    np.testing.assert_allclose(x, rx, rtol=1e-12)

    x, s = np.array([-5.0, -2.0]), np.zeros(2)
    _user_adagrad(x, s, 20)
    rx, rs = np.array([-5.0, -2.0]), np.zeros(2)
    for t in range(1, 21):
        rx, rs = reference.adagrad(rx, np.array([0.2, 4.0]) * rx, rs, 0.4, 1e-6, lr_decay=0.01, step=t)
    np.testing.assert_allclose(x, rx, rtol=1e-12)


def test_value_errors_are_raised_from_njit_code_too():
    x, s, buf = np.array([-5.0, -2.0]), np.zeros(3), np.zeros(2)
    with pytest.raises(ValueError, match=r"rmsprop_step: s has shape \(3,\) but x has shape \(2,\)"):
        _user_loop(x, s, buf, 1)


# ---------------------------------------------------------------------------------------------
# Errors, not damage
# ---------------------------------------------------------------------------------------------


def _arrays(n=4, dtype=np.float64):
    return [np.full(n, v, dtype) for v in (1.0, 0.5, 0.25, 0.0, 0.0)]


BAD_RMSPROP_CALLS = [
    # (description, build(x, g, s, buf, gavg) -> (args, kwargs), exception, message)
    ("g wrong shape", lambda x, g, s, b, a: ((x, g[:3], s, 0.1, 0.9, 1e-6), {}), ValueError, r"g has shape \(3,\) but x has shape \(4,\)"),
    ("s wrong shape", lambda x, g, s, b, a: ((x, g, np.zeros(5), 0.1, 0.9, 1e-6), {}), ValueError, r"s has shape \(5,\) but x has shape \(4,\)"),
    ("g other ndim", lambda x, g, s, b, a: ((x, g.reshape(2, 2), s, 0.1, 0.9, 1e-6), {}), ValueError, "g has 2 dimensions but x has 1"),
    ("g float32", lambda x, g, s, b, a: ((x, g.astype(np.float32), s, 0.1, 0.9, 1e-6), {}), TypeError, "g has dtype float32"),
    ("x int", lambda x, g, s, b, a: ((np.ones(4, np.int64), g, s, 0.1, 0.9, 1e-6), {}), TypeError, "x must have dtype"),
    ("x complex", lambda x, g, s, b, a: ((x.astype(complex), g, s, 0.1, 0.9, 1e-6), {}), TypeError, "x must have dtype"),
    ("x list", lambda x, g, s, b, a: (([1.0, 2.0, 3.0, 4.0], g, s, 0.1, 0.9, 1e-6), {}), TypeError, "x must be a numpy.ndarray"),
    ("x strided", lambda x, g, s, b, a: ((np.ones(8)[::2], g, s, 0.1, 0.9, 1e-6), {}), ValueError, "x must be contiguous"),
    ("s read-only", lambda x, g, s, b, a: ((x, g, _readonly(s), 0.1, 0.9, 1e-6), {}), ValueError, "s is read-only"),
    ("s aliases x", lambda x, g, s, b, a: ((x, g, x, 0.1, 0.9, 1e-6), {}), ValueError, "x shares memory"),
    ("s overlaps x", lambda x, g, s, b, a: ((x[:3], g[:3], x[1:], 0.1, 0.9, 1e-6), {}), ValueError, "x shares memory"),
    ("g aliases s", lambda x, g, s, b, a: ((x, s, s, 0.1, 0.9, 1e-6), {}), ValueError, "shares memory"),
    ("negative lr", lambda x, g, s, b, a: ((x, g, s, -0.1, 0.9, 1e-6), {}), ValueError, "lr must be"),
    ("nan lr", lambda x, g, s, b, a: ((x, g, s, float("nan"), 0.9, 1e-6), {}), ValueError, "lr must be"),
    ("gamma 1", lambda x, g, s, b, a: ((x, g, s, 0.1, 1.0, 1e-6), {}), ValueError, "gamma must be"),
    ("gamma -0.1", lambda x, g, s, b, a: ((x, g, s, 0.1, -0.1, 1e-6), {}), ValueError, "gamma must be"),
    ("eps -1", lambda x, g, s, b, a: ((x, g, s, 0.1, 0.9, -1.0), {}), ValueError, "eps must be"),
    ("eps inf", lambda x, g, s, b, a: ((x, g, s, 0.1, 0.9, float("inf")), {}), ValueError, "eps must be"),
    ("lr string", lambda x, g, s, b, a: ((x, g, s, "0.1", 0.9, 1e-6), {}), TypeError, "lr must be a real number"),
    ("weight_decay -1", lambda x, g, s, b, a: ((x, g, s, 0.1, 0.9, 1e-6), dict(weight_decay=-1.0)), ValueError, "weight_decay must be"),
    ("momentum without buffer", lambda x, g, s, b, a: ((x, g, s, 0.1, 0.9, 1e-6), dict(momentum=0.9)), ValueError, "needs a momentum_buffer"),
    ("centered without grad_avg", lambda x, g, s, b, a: ((x, g, s, 0.1, 0.9, 1e-6), dict(centered=True)), ValueError, "needs a grad_avg"),
    ("grad_avg without centered", lambda x, g, s, b, a: ((x, g, s, 0.1, 0.9, 1e-6), dict(grad_avg=a)), ValueError, "centered is False"),
    ("buffer aliases s", lambda x, g, s, b, a: ((x, g, s, 0.1, 0.9, 1e-6), dict(momentum=0.9, momentum_buffer=s)), ValueError, "shares memory"),
    ("buffer wrong shape", lambda x, g, s, b, a: ((x, g, s, 0.1, 0.9, 1e-6), dict(momentum=0.9, momentum_buffer=b[:2])), ValueError, "momentum_buffer"),
    ("flag not bool", lambda x, g, s, b, a: ((x, g, s, 0.1, 0.9, 1e-6), dict(maximize="yes")), TypeError, "maximize must be True or False"),
    ("C vs F order", lambda x, g, s, b, a: ((np.ones((2, 3)), np.asfortranarray(np.ones((2, 3))), np.zeros((2, 3)), 0.1, 0.9, 1e-6), {}), ValueError, "order"),
]


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("case", BAD_RMSPROP_CALLS, ids=[c[0] for c in BAD_RMSPROP_CALLS])
def test_rmsprop_step_rejects_bad_input_before_touching_anything(case):
    _, build, exc, message = case
    arrays = _arrays()
    args, kwargs = build(*arrays)
    touched = [a for a in list(args) + list(kwargs.values()) if isinstance(a, np.ndarray)]
    before = [a.copy() for a in touched]
    with pytest.raises(exc, match=message):
        rmsprop_step(*args, **kwargs)
    for a, b in zip(touched, before):
        np.testing.assert_array_equal(a, b)


BAD_ADAGRAD_CALLS = [
    ("step 0", dict(step=0), ValueError, "step must be >= 1"),
    ("step float", dict(step=1.5), TypeError, "step must be an integer"),
    ("lr_decay -1", dict(lr_decay=-1.0), ValueError, "lr_decay must be"),
    ("lr inf", dict(lr=float("inf")), ValueError, "lr must be"),
]


@pytest.mark.parametrize("case", BAD_ADAGRAD_CALLS, ids=[c[0] for c in BAD_ADAGRAD_CALLS])
def test_adagrad_step_rejects_bad_hyperparameters(case):
    _, kwargs, exc, message = case
    x, g, s, _, _ = _arrays()
    before = x.copy(), s.copy()
    kw = dict(lr=0.1, eps=1e-6)
    kw.update(kwargs)
    with pytest.raises(exc, match=message):
        adagrad_step(x, g, s, **kw)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(s, before[1])


def test_adagrad_step_rejects_aliasing():
    x, g, _, _, _ = _arrays()
    with pytest.raises(ValueError, match="shares memory"):
        adagrad_step(x, g, x, 0.1, 1e-6)


def test_readonly_gradient_is_accepted():
    x, g, s, _, _ = _arrays()
    rmsprop_step(x, _readonly(g), s, 0.1, 0.9, 1e-6)
    assert np.all(x < 1.0)


# ---------------------------------------------------------------------------------------------
# Invariants of the update rules (Hypothesis)
# ---------------------------------------------------------------------------------------------

finite = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False)
vectors = hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-1e3, 1e3, **finite))
states = hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(0, 1e6, **finite))
gammas = st.floats(0.0, 0.999)
lrs = st.floats(1e-4, 10.0)


def _same_size(*arrays):
    n = min(a.size for a in arrays)
    return [np.ascontiguousarray(a[:n]) for a in arrays]


@given(x=vectors, g=vectors, s=states, gamma=gammas, lr=lrs)
@example(x=np.array([1.0]), g=np.array([1e3]), s=np.array([0.0]), gamma=0.0, lr=1.0)
def test_rmsprop_state_stays_between_old_state_and_g_squared(x, g, s, gamma, lr):
    x, g, s = _same_size(x, g, s)
    lo, hi = np.minimum(s, g * g), np.maximum(s, g * g)
    rmsprop_step(x, g, s, lr, gamma, 1e-6)
    assert np.all(s >= lo * (1 - 1e-15)) and np.all(s <= hi * (1 + 1e-15))


@given(x=vectors, g=vectors, s=states, lr=lrs)
def test_adagrad_state_never_decreases(x, g, s, lr):
    x, g, s = _same_size(x, g, s)
    before = s.copy()
    adagrad_step(x, g, s, lr, 1e-6)
    assert np.all(s >= before)


@given(x=vectors, s=states, gamma=gammas, lr=lrs, algo=st.sampled_from(["rmsprop", "adagrad"]))
def test_zero_gradient_leaves_x_unchanged(x, s, gamma, lr, algo):
    x, s = _same_size(x, s)
    before = x.copy()
    g = np.zeros_like(x)
    if algo == "rmsprop":
        rmsprop_step(x, g, s, lr, gamma, 1e-6)
    else:
        adagrad_step(x, g, s, lr, 1e-6)
    np.testing.assert_array_equal(x, before)


@given(x=vectors, g=vectors, s=states, gamma=gammas, lr=lrs, algo=st.sampled_from(["rmsprop", "adagrad"]))
def test_each_step_moves_against_the_gradient(x, g, s, gamma, lr, algo):
    x, g, s = _same_size(x, g, s)
    before = x.copy()
    if algo == "rmsprop":
        rmsprop_step(x, g, s, lr, gamma, 1e-6)
    else:
        adagrad_step(x, g, s, lr, 1e-6)
    dx = x - before
    assert np.all(dx * g <= 0)
    assert np.all((dx != 0) | (g == 0) | (np.abs(before) > 1e15 * np.abs(dx)))


@given(x=vectors, g=vectors, s=states, lr=lrs, eps=st.floats(1e-8, 1.0))
def test_adagrad_step_size_is_bounded(x, g, s, lr, eps):
    x, g, s = _same_size(x, g, s)
    before = x.copy()
    adagrad_step(x, g, s, lr, eps)
    bound = lr * np.abs(g) / np.sqrt(g * g + eps)
    assert np.all(np.abs(x - before) <= bound * (1 + 1e-12) + 1e-12 * np.abs(before))
    assert np.all(bound <= lr * (1 + 1e-15))


@given(x=vectors, g=vectors, s=states, gamma=gammas, lr=lrs)
@example(x=np.array([0.0]), g=np.array([1e-3]), s=np.array([0.0]), gamma=0.999, lr=1.0)
def test_rmsprop_step_size_is_at_most_lr_over_sqrt_one_minus_gamma(x, g, s, gamma, lr):
    x, g, s = _same_size(x, g, s)
    # With eps = 0, g*g must not underflow to 0 (g/0 = inf; g = s = 0 gives NaN, as in PyTorch).
    assume(np.all(np.abs(g) > 1e-140))
    before = x.copy()
    rmsprop_step(x, g, s, lr, gamma, 0.0)
    assert np.all(np.abs(x - before) <= lr / np.sqrt(1 - gamma) * (1 + 1e-12) + 1e-12 * np.abs(before))


@given(
    x=vectors, g=vectors, gamma=gammas, k=st.integers(-8, 8),
    algo=st.sampled_from(["rmsprop", "adagrad"]), steps=st.integers(1, 5),
)
def test_scaling_all_gradients_gives_the_same_trajectory_when_eps_is_zero(x, g, gamma, k, algo, steps):
    # c = 2^k keeps every product exact, so the trajectories must agree to the bit.
    x, g = _same_size(x, g)
    assume(np.all(np.abs(g) > 1e-140))  # (g c)^2 must stay a normal number
    c = 2.0 ** k
    x1, x2 = x.copy(), x.copy()
    s1, s2 = np.zeros_like(x), np.zeros_like(x)
    for i in range(steps):
        gi = g * (i + 1) + x1 * 0.0
        if algo == "rmsprop":
            rmsprop_step(x1, gi, s1, 0.1, gamma, 0.0)
            rmsprop_step(x2, gi * c, s2, 0.1, gamma, 0.0)
        else:
            adagrad_step(x1, gi, s1, 0.1, 0.0)
            adagrad_step(x2, gi * c, s2, 0.1, 0.0)
    np.testing.assert_array_equal(x1, x2)


@given(
    a=vectors, b=vectors, gamma=gammas, opts=st.sampled_from(RMSPROP_OPTIONS),
    dtype=st.sampled_from(DTYPES),
)
def test_updating_a_concatenation_equals_updating_the_pieces(a, b, gamma, opts, dtype):
    def state(n):
        return (np.zeros(n, dtype), np.zeros(n, dtype) if opts["momentum"] else None,
                np.zeros(n, dtype) if opts["centered"] else None)

    a, b = a.astype(dtype), b.astype(dtype)
    whole = np.concatenate([a, b])
    ga, gb = a[::-1].copy(), b[::-1].copy()
    gw = np.concatenate([ga, gb])
    sa, sb, sw = state(a.size), state(b.size), state(whole.size)
    for _ in range(3):
        rmsprop_step(a, ga, sa[0], 0.05, gamma, 1e-6, momentum_buffer=sa[1], grad_avg=sa[2], **opts)
        rmsprop_step(b, gb, sb[0], 0.05, gamma, 1e-6, momentum_buffer=sb[1], grad_avg=sb[2], **opts)
        rmsprop_step(whole, gw, sw[0], 0.05, gamma, 1e-6, momentum_buffer=sw[1], grad_avg=sw[2], **opts)
    np.testing.assert_array_equal(whole, np.concatenate([a, b]))
    np.testing.assert_array_equal(sw[0], np.concatenate([sa[0], sb[0]]))


def test_parallel_and_serial_paths_agree_bit_for_bit():
    n = 4 * PARALLEL_MIN_BYTES // 4 + 17  # several blocks, ragged end
    rng = np.random.default_rng(5)
    x = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    s = np.zeros(n, np.float32)
    pieces = [(x[i:i + 1000].copy(), g[i:i + 1000], s[i:i + 1000].copy()) for i in range(0, n, 1000)]
    rmsprop_step(x, g, s, 0.01, 0.99, 1e-8, eps_in_sqrt=False)
    for px, pg, ps in pieces:  # each piece is below the threshold: serial
        rmsprop_step(px, pg, ps, 0.01, 0.99, 1e-8, eps_in_sqrt=False)
    np.testing.assert_array_equal(x, np.concatenate([p[0] for p in pieces]))
    np.testing.assert_array_equal(s, np.concatenate([p[2] for p in pieces]))

"""The kernels called from users' ``@numba.njit`` code: every argument that Python rejects is
rejected when the user's function is compiled, with the same error and message, and nothing
is modified; what Python accepts runs with the same results."""

import numba
import numpy as np
import pytest

from rmsprop_nb.kernels import adagrad_step, rmsprop_step

import reference


@numba.njit
def _rms(x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
         momentum_buffer, centered, grad_avg):
    rmsprop_step(x, g, s, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum,
                 momentum_buffer, centered, grad_avg)


@numba.njit
def _ada(x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step):
    adagrad_step(x, g, s, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step)


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _f64(n=4, v=1.0):
    return np.full(n, v)


def _rms_args(**over):
    args = dict(x=_f64(), g=_f64(v=0.5), s=_f64(v=0.25), lr=0.1, gamma=0.9, eps=1e-6,
                eps_in_sqrt=True, weight_decay=0.0, maximize=False, momentum=0.0,
                momentum_buffer=None, centered=False, grad_avg=None)
    args.update(over)
    return args


# (name, arguments of rmsprop_step, exception): type-level mistakes users make in compiled
# code. The Python call gives the expected message; the compiled call must give the same.
RMSPROP_TYPE_TRAPS = [
    ("x int64, g and s float64", dict(x=np.ones(4, np.int64)), TypeError),
    ("x and s float32, g float64", dict(x=np.ones(4, np.float32), s=np.zeros(4, np.float32)),
     TypeError),
    ("g int64", dict(g=np.ones(4, np.int64)), TypeError),
    ("g float32", dict(g=np.ones(4, np.float32)), TypeError),
    ("s float32", dict(s=np.zeros(4, np.float32)), TypeError),
    ("x complex", dict(x=np.ones(4, complex)), TypeError),
    ("x strided (A layout)", dict(x=np.ones(8)[::2]), ValueError),
    ("g strided (A layout)", dict(g=np.ones(8)[::2]), ValueError),
    ("s read-only", dict(s=_readonly(np.zeros(4))), ValueError),
    ("x read-only", dict(x=_readonly(np.zeros(4))), ValueError),
    ("C x, F g", dict(x=np.ones((2, 3)), g=np.asfortranarray(np.ones((2, 3))),
                      s=np.zeros((2, 3))), ValueError),
    ("g 2-D, x 1-D", dict(g=np.ones((2, 2))), ValueError),
    ("x a scalar", dict(x=1.0), TypeError),
    ("momentum_buffer float32", dict(momentum=0.9, momentum_buffer=np.zeros(4, np.float32)),
     TypeError),
    ("grad_avg read-only", dict(centered=True, grad_avg=_readonly(np.zeros(4))), ValueError),
    ("maximize an int", dict(maximize=1), TypeError),
    ("centered a float", dict(centered=1.0), TypeError),
    ("lr a bool", dict(lr=True), TypeError),
    ("lr complex", dict(lr=1j), TypeError),
    ("eps_in_sqrt None", dict(eps_in_sqrt=None), TypeError),
]


def _message(call, args):
    with pytest.raises(Exception) as info:
        call(**args)
    return info.type, str(info.value)


@pytest.mark.parametrize("case", RMSPROP_TYPE_TRAPS, ids=[c[0] for c in RMSPROP_TYPE_TRAPS])
def test_rmsprop_type_traps_fail_to_compile_with_the_python_message(case):
    _, over, exc = case
    args = _rms_args(**over)
    expected_type, expected = _message(rmsprop_step, args)
    assert expected_type is exc and expected.startswith("rmsprop_step: ")
    arrays = [a for a in args.values() if isinstance(a, np.ndarray)]
    before = [a.copy() for a in arrays]
    with pytest.raises(exc) as info:
        _rms(**args)
    assert str(info.value) == expected
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


ADAGRAD_TYPE_TRAPS = [
    ("x int64", dict(x=np.ones(4, np.int64)), TypeError),
    ("g float32", dict(g=np.ones(4, np.float32)), TypeError),
    ("s strided", dict(s=np.zeros(8)[::2]), ValueError),
    ("step a float", dict(step=1.0), TypeError),
    ("step a bool", dict(step=True), TypeError),
    ("maximize an int", dict(maximize=0), TypeError),
]


@pytest.mark.parametrize("case", ADAGRAD_TYPE_TRAPS, ids=[c[0] for c in ADAGRAD_TYPE_TRAPS])
def test_adagrad_type_traps_fail_to_compile_with_the_python_message(case):
    _, over, exc = case
    args = dict(x=_f64(), g=_f64(v=0.5), s=_f64(v=0.25), lr=0.1, eps=1e-6, eps_in_sqrt=True,
                weight_decay=0.0, maximize=False, lr_decay=0.0, step=1)
    args.update(over)
    expected_type, expected = _message(adagrad_step, args)
    assert expected_type is exc and expected.startswith("adagrad_step: ")
    before = [a.copy() for a in args.values() if isinstance(a, np.ndarray)]
    with pytest.raises(exc) as info:
        _ada(**args)
    assert str(info.value) == expected
    for a, b in zip([a for a in args.values() if isinstance(a, np.ndarray)], before):
        np.testing.assert_array_equal(a, b)


# README's example, with float32 parameters: np.array([0.2, 4.0]) * x is float64.


@numba.njit
def _book_loop(x, s, steps):
    for _ in range(steps):
        g = np.array([0.2, 4.0]) * x
        rmsprop_step(x, g, s, 0.4, 0.9, 1e-6)


@numba.njit
def _book_loop_typed(x, s, steps):
    for _ in range(steps):
        g = np.array([0.2, 4.0], dtype=x.dtype) * x
        rmsprop_step(x, g, s, 0.4, 0.9, 1e-6)


def test_a_float64_gradient_of_float32_parameters_fails_to_compile():
    x, s = np.array([-5.0, -2.0], np.float32), np.zeros(2, np.float32)
    with pytest.raises(TypeError, match="rmsprop_step: g has dtype float64 but x has dtype float32"):
        _book_loop(x, s, 20)
    np.testing.assert_array_equal(x, [-5.0, -2.0])
    np.testing.assert_array_equal(s, 0)
    _book_loop_typed(x, s, 20)  # the fix the message points to: one dtype
    rx = np.array([-5.0, -2.0], np.float32)
    rs = np.zeros(2, np.float32)
    for _ in range(20):
        rx, rs, _, _ = reference.rmsprop(rx, np.array([0.2, 4.0], np.float32) * rx, rs, 0.4,
                                         0.9, 1e-6)
    np.testing.assert_array_max_ulp(x, rx, maxulp=4)


# Inside compiled code, a slice with a step or a transposed view has layout 'A' (not known to
# be contiguous): the kernels refuse it when the caller is compiled.


@numba.njit
def _strided_inside(x, s):
    rmsprop_step(x[::2], x[1::2].copy(), s, 0.1, 0.9, 1e-6)


def test_a_strided_view_made_inside_compiled_code_fails_to_compile():
    x, s = np.ones(8), np.zeros(4)
    with pytest.raises(ValueError, match="rmsprop_step: x must be contiguous"):
        _strided_inside(x, s)
    np.testing.assert_array_equal(x, 1)


# Value-level checks run on every call, from compiled code too, before anything changes.


@pytest.mark.parametrize("over, message", [
    (dict(gamma=1.5), "rmsprop_step: gamma must be in [0, 1), got 1.5"),
    (dict(lr=-0.5), "rmsprop_step: lr must be a finite number >= 0, got -0.5"),
    (dict(g=np.ones(3)), "rmsprop_step: g has shape (3,) but x has shape (4,)"),
    (dict(momentum=0.9), "rmsprop_step: momentum > 0 needs a momentum_buffer array"),
])
def test_value_errors_from_compiled_code_say_what_was_got(over, message):
    args = _rms_args(**over)
    before = args["x"].copy(), args["s"].copy()
    with pytest.raises(ValueError) as info:
        _rms(**args)
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        rmsprop_step(**args)
    assert str(info.value) == message
    np.testing.assert_array_equal(args["x"], before[0])
    np.testing.assert_array_equal(args["s"], before[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [7, (1 << 17) // 4 + 5])  # serial and parallel
def test_compiled_and_python_calls_agree_bit_for_bit(dtype, n):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    xs, ss, xa, sa = x.copy(), np.zeros_like(x), x.copy(), np.full_like(x, 0.1)
    x2, s2, xa2, sa2 = x.copy(), np.zeros_like(x), x.copy(), np.full_like(x, 0.1)
    for t in range(1, 4):
        _rms(xs, g, ss, 0.01, 0.9, 1e-8, False, 0.01, False, 0.0, None, False, None)
        rmsprop_step(x2, g, s2, 0.01, 0.9, 1e-8, False, 0.01)
        _ada(xa, g, sa, 0.1, 1e-10, False, 0.0, True, 0.1, t)
        adagrad_step(xa2, g, sa2, 0.1, 1e-10, False, 0.0, True, 0.1, t)
    np.testing.assert_array_equal(xs, x2)
    np.testing.assert_array_equal(ss, s2)
    np.testing.assert_array_equal(xa, xa2)
    np.testing.assert_array_equal(sa, sa2)

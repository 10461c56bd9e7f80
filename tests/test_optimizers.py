"""The optimizer classes: agreement with the oracle over many arrays, state round trips, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rmsprop_nb import AdaGrad, RMSProp
from rmsprop_nb.kernels import PARALLEL_MIN_BYTES

import reference


def mixed_params(rng, big=False):
    """Arrays of several kinds: dtypes, ndims, memory orders; optionally a parallel-sized group."""
    params = [
        rng.standard_normal((3, 4)),
        rng.standard_normal(5).astype(np.float32),
        np.asfortranarray(rng.standard_normal((4, 6))),
        rng.standard_normal(7),
        rng.standard_normal((2, 2, 2)).astype(np.float32),
        rng.standard_normal(1),
    ]
    if big:  # many float32 vectors that together take the parallel many-array loop
        params += [rng.standard_normal(n).astype(np.float32)
                   for n in (10, PARALLEL_MIN_BYTES // 4, 3, 20_000, 1)]
    return params


def _fortran_like(g, p):
    return np.asfortranarray(g) if (p.flags.f_contiguous and not p.flags.c_contiguous) else g


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("opts", [
    dict(), dict(eps_in_sqrt=False, momentum=0.9), dict(centered=True, weight_decay=0.1),
    dict(maximize=True, momentum=0.5, centered=True),
], ids=str)
def test_rmsprop_matches_the_reference_on_many_arrays_of_mixed_kinds(big, opts):
    rng = np.random.default_rng(0)
    params = mixed_params(rng, big)
    ref = [p.copy() for p in params]
    opt = RMSProp(params, lr=0.01, gamma=0.95, **opts)
    n = len(params)
    rs = [np.zeros_like(p) for p in params]
    rb = [np.zeros_like(p) for p in params] if opts.get("momentum") else [None] * n
    ra = [np.zeros_like(p) for p in params] if opts.get("centered") else [None] * n
    for _ in range(3):
        grads = [_fortran_like(rng.standard_normal(p.shape).astype(p.dtype), p) for p in params]
        opt.step(grads)
        for i in range(n):
            ref[i], rs[i], rb[i], ra[i] = reference.rmsprop(
                ref[i], grads[i], rs[i], 0.01, 0.95, 1e-6, buf=rb[i], gavg=ra[i], **opts)
    for p, r in zip(params, ref):
        if p.dtype == np.float64:
            np.testing.assert_allclose(p, r, rtol=1e-12)
        else:
            np.testing.assert_array_max_ulp(p, r, maxulp=4)
    assert opt.step_count == 3


@pytest.mark.parametrize("big", [False, True])
def test_adagrad_matches_the_reference_with_lr_decay_and_initial_accumulator(big):
    rng = np.random.default_rng(1)
    params = mixed_params(rng, big)
    ref = [p.copy() for p in params]
    opt = AdaGrad(params, lr=0.1, initial_accumulator_value=0.2, lr_decay=0.05, weight_decay=0.01)
    rs = [np.full_like(p, 0.2) for p in params]
    for t in range(1, 4):
        grads = [_fortran_like(rng.standard_normal(p.shape).astype(p.dtype), p) for p in params]
        opt.step(grads)
        for i in range(len(params)):
            ref[i], rs[i] = reference.adagrad(ref[i], grads[i], rs[i], 0.1, 1e-6,
                                              lr_decay=0.05, weight_decay=0.01, step=t)
    for p, r in zip(params, ref):
        if p.dtype == np.float64:
            np.testing.assert_allclose(p, r, rtol=1e-12)
        else:
            np.testing.assert_array_max_ulp(p, r, maxulp=4)


def test_book_example_through_the_optimizer():
    x = np.array([-5.0, -2.0])
    opt = RMSProp([x], lr=0.4, gamma=0.9)
    for _ in range(20):
        opt.step([np.array([0.2, 4.0]) * x])
    assert f"x1 {x[0]:f}, x2 {x[1]:f}" == "x1 -0.010599, x2 0.000000"


@given(split=st.integers(0, 12), opts=st.sampled_from([
    ("rmsprop", dict(momentum=0.9, centered=True)), ("rmsprop", dict()),
    ("adagrad", dict(lr_decay=0.1)),
]))
def test_load_state_dict_resume_equals_an_uninterrupted_run_bit_for_bit(split, opts):
    algo, kw = opts
    cls = RMSProp if algo == "rmsprop" else AdaGrad
    rng = np.random.default_rng(7)
    start = mixed_params(rng, big=True)
    grads = [[_fortran_like(rng.standard_normal(p.shape).astype(p.dtype), p) for p in start]
             for _ in range(12)]

    straight = [p.copy(order="K") for p in start]
    opt = cls(straight, lr=0.05, **kw)
    for g in grads:
        opt.step(g)

    first = [p.copy(order="K") for p in start]
    opt1 = cls(first, lr=0.05, **kw)
    for g in grads[:split]:
        opt1.step(g)
    saved = opt1.state_dict()
    resumed = [p.copy(order="K") for p in first]
    opt2 = cls(resumed, lr=0.05, **kw)
    opt2.load_state_dict(saved)
    for g in grads[split:]:
        opt2.step(g)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)
    assert opt2.step_count == 12


def test_state_dict_holds_plain_copies():
    x = np.ones(3)
    opt = RMSProp([x], momentum=0.9)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    assert sd["algorithm"] == "RMSProp" and sd["step"] == 1
    assert set(sd["state"]) == {"square_avg", "momentum_buffer"}
    assert sd["hyperparams"]["momentum"] == 0.9
    sd["state"]["square_avg"][0][:] = 123.0  # a copy: changing it does not change the optimizer
    assert opt.state_dict()["state"]["square_avg"][0][0] != 123.0


def test_hyperparameters_may_change_between_steps():
    x, y = np.array([1.0]), np.array([1.0])
    a, b = RMSProp([x], lr=0.1), RMSProp([y], lr=0.1)
    a.step([np.array([1.0])])
    b.step([np.array([1.0])])
    a.lr = 0.0
    a.step([np.array([1.0])])
    b.step([np.array([1.0])])
    assert x[0] != y[0]
    a.lr = -1.0
    before = x.copy()
    with pytest.raises(ValueError, match="lr must be"):
        a.step([np.array([1.0])])
    np.testing.assert_array_equal(x, before)


# ---------------------------------------------------------------------------------------------
# Errors, not damage
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(lr=-1.0), ValueError, "lr must be"),
    (dict(gamma=1.0), ValueError, "gamma must be"),
    (dict(gamma=float("nan")), ValueError, "gamma must be"),
    (dict(eps=-1e-8), ValueError, "eps must be"),
    (dict(momentum=-0.1), ValueError, "momentum must be"),
    (dict(weight_decay=float("inf")), ValueError, "weight_decay must be"),
    (dict(centered=1), TypeError, "centered must be True or False"),
    (dict(lr="0.1"), TypeError, "lr must be a real number"),
])
def test_rmsprop_constructor_rejects_bad_hyperparameters(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        RMSProp([np.ones(2)], **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr_decay=-1.0), "lr_decay must be"),
    (dict(initial_accumulator_value=-1.0), "initial_accumulator_value must be"),
])
def test_adagrad_constructor_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaGrad([np.ones(2)], **kwargs)


def _ro(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("params, exc, message", [
    ([], ValueError, "params is empty"),
    (np.ones(3), TypeError, "wrap a single array in a list"),
    (5, TypeError, "params must be a list"),
    ([np.ones(3, dtype=np.int32)], TypeError, r"params\[0\] must have dtype"),
    ([np.ones(6)[::2]], ValueError, r"params\[0\] must be contiguous"),
    ([_ro(np.ones(3))], ValueError, r"params\[0\] is read-only"),
    ([np.ones(3), "x"], TypeError, r"params\[1\] must be a numpy.ndarray"),
])
def test_constructor_rejects_bad_params(params, exc, message):
    with pytest.raises(exc, match=message):
        RMSProp(params)


def test_constructor_rejects_parameters_that_share_memory():
    base = np.ones(10)
    with pytest.raises(ValueError, match=r"params\[0\] and params\[1\] share memory"):
        AdaGrad([base[:6], base[4:]])


@pytest.mark.parametrize("bad_index, make_bad, exc, message", [
    (3, lambda g: g[:2].copy(), ValueError, r"grads\[3\] has shape"),
    (1, lambda g: g.astype(np.float64), TypeError, r"grads\[1\] has dtype float64"),
    (0, lambda g: np.ones((6, 8))[::2, ::2], ValueError, r"grads\[0\] must be contiguous"),
    (2, lambda g: np.ascontiguousarray(g), ValueError, r"grads\[2\] is in C order"),
    (5, lambda g: [1.0], TypeError, r"grads\[5\] must be a numpy.ndarray"),
])
@pytest.mark.parametrize("cls", [RMSProp, AdaGrad])
def test_step_rejects_a_bad_gradient_and_changes_nothing(cls, bad_index, make_bad, exc, message):
    rng = np.random.default_rng(3)
    params = mixed_params(rng, big=True)
    opt = cls(params, lr=0.1)
    good = [_fortran_like(np.ones(p.shape, p.dtype), p) for p in params]
    opt.step(good)
    before = [p.copy() for p in params]
    state = opt.state_dict()
    grads = list(good)
    grads[bad_index] = make_bad(good[bad_index])
    with pytest.raises(exc, match=message):
        opt.step(grads)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p, b)
    after = opt.state_dict()
    assert after["step"] == state["step"] == 1
    for key in state["state"]:
        for a, b in zip(after["state"][key], state["state"][key]):
            np.testing.assert_array_equal(a, b)


def test_step_rejects_a_wrong_number_of_gradients():
    opt = RMSProp([np.ones(2), np.ones(3)])
    with pytest.raises(ValueError, match="expected 2, got 1"):
        opt.step([np.ones(2)])


def test_step_rejects_a_gradient_that_is_its_parameter():
    x = np.ones(3)
    with pytest.raises(ValueError, match=r"grads\[0\] shares memory with params\[0\]"):
        RMSProp([x]).step([x])


@pytest.mark.parametrize("mutate, exc, message", [
    (lambda sd: sd.update(algorithm="AdaGrad"), ValueError, "the state is for 'AdaGrad'"),
    (lambda sd: sd["state"].pop("momentum_buffer"), ValueError, "momentum/centered must match"),
    (lambda sd: sd["state"]["square_avg"].pop(), ValueError, "has 1 arrays for 2 parameters"),
    (lambda sd: sd["state"]["square_avg"].__setitem__(1, np.zeros(4)), ValueError, r"square_avg\[1\]"),
    (lambda sd: sd["state"]["square_avg"].__setitem__(0, np.zeros(2, np.float32)), ValueError, r"square_avg\[0\]"),
    (lambda sd: sd["hyperparams"].update(gamma=1.5), ValueError, "gamma must be"),
    (lambda sd: sd["hyperparams"].update(momentum=0.0), ValueError, "momentum cannot be switched"),
    (lambda sd: sd.update(step=-1), ValueError, "step must be an integer"),
    (lambda sd: sd.pop("hyperparams"), ValueError, "missing keys"),
])
def test_load_state_dict_rejects_a_mismatch_and_changes_nothing(mutate, exc, message):
    opt = RMSProp([np.ones(2), np.ones(3)], momentum=0.9)
    opt.step([np.ones(2), np.ones(3)])
    before = opt.state_dict()
    bad = opt.state_dict()
    mutate(bad)
    with pytest.raises(exc, match=message):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["step"] == before["step"] and after["hyperparams"] == before["hyperparams"]
    for key in before["state"]:
        for a, b in zip(after["state"][key], before["state"][key]):
            np.testing.assert_array_equal(a, b)


def test_repr_names_the_algorithm_and_hyperparameters():
    r = repr(AdaGrad([np.ones(2)], lr=0.5))
    assert r.startswith("AdaGrad(<1 arrays>") and "lr=0.5" in r

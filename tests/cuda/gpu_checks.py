"""The CUDA target against the CPU kernels, on the CUDA simulator or on a real GPU.

Run by tests/test_cuda.py in a process of its own: with ``NUMBA_ENABLE_CUDASIM=1`` on machines
without a GPU (the simulator must be switched on before numba.cuda is first imported), and
without it when a GPU is present. Grids are tiny (a simulated thread costs ~0.2 ms): 3 blocks of
4 threads over a few dozen elements, so several blocks and the grid-stride loop both run.
"""

import itertools
import re
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import cuda

from rmsprop_nb import AdaGrad, RMSProp, kernels
from rmsprop_nb import cuda as rcuda

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")

if not cuda.is_available():
    pytest.skip("no GPU and the CUDA simulator is off", allow_module_level=True)

# Tiny launches: 12 threads for 37 elements, so each thread strides over up to 4 elements.
THREADS, BLOCKS = 4, 3


@pytest.fixture(autouse=True)
def small_grid(monkeypatch):
    monkeypatch.setattr(rcuda, "THREADS_PER_BLOCK", THREADS)
    monkeypatch.setattr(rcuda, "MAX_BLOCKS", BLOCKS)


def assert_agrees(dev, cpu):
    """The GPU result equals the CPU kernel's: bit-for-bit in float64 on the simulator, else
    within 2 ulp (float32 on the simulator; on a GPU, NVVM's FMA contraction for both)."""
    got = dev.copy_to_host()
    assert got.dtype == cpu.dtype and got.shape == cpu.shape
    if SIMULATOR and cpu.dtype == np.float64:
        np.testing.assert_array_equal(got, cpu)
    elif SIMULATOR:
        np.testing.assert_array_max_ulp(got, cpu, maxulp=2)
    else:  # FMA: relative to the terms' size, not the result's (centered cancels)
        tol = 1e-5 if cpu.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, cpu, rtol=tol, atol=tol)


def random_arrays(rng, shape, dtype, n):
    out = [rng.standard_normal(shape).astype(dtype) for _ in range(n)]
    return [np.asfortranarray(a) for a in out]


def to_device(*arrays):
    return [None if a is None else cuda.to_device(a) for a in arrays]


# --------------------------------------------------------------------------------------------
# Launchers agree with the CPU kernels, for every option combination and both dtypes.
# --------------------------------------------------------------------------------------------

RMSPROP_OPTIONS = list(itertools.product([True, False], [False, True], [0.0, 0.1], [0.0, 0.9],
                                         [False, True]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps_in_sqrt,maximize,weight_decay,momentum,centered", RMSPROP_OPTIONS)
def test_rmsprop_step_agrees_with_cpu_kernel(
    dtype, eps_in_sqrt, maximize, weight_decay, momentum, centered, shape=(37,)
):
    rng = np.random.default_rng(0)
    x, s, buf, gavg = random_arrays(rng, shape, dtype, 4)
    s = np.abs(s)
    buf = buf if momentum else None
    gavg = gavg * 0.1 if centered else None
    dx, ds, dbuf, dgavg = to_device(x, s, buf, gavg)
    hyper = dict(lr=0.01, gamma=0.9, eps=1e-6, eps_in_sqrt=eps_in_sqrt,
                 weight_decay=weight_decay, maximize=maximize, momentum=momentum,
                 centered=centered)
    for _ in range(3):
        g = random_arrays(rng, shape, dtype, 1)[0]
        kernels.rmsprop_step(x, g, s, momentum_buffer=buf, grad_avg=gavg, **hyper)
        rcuda.rmsprop_step(dx, cuda.to_device(g), ds, momentum_buffer=dbuf, grad_avg=dgavg,
                           **hyper)
    for dev, cpu in [(dx, x), (ds, s), (dbuf, buf), (dgavg, gavg)]:
        if cpu is not None:
            assert_agrees(dev, cpu)


ADAGRAD_OPTIONS = list(itertools.product([True, False], [False, True], [0.0, 0.1], [0.0, 0.5]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps_in_sqrt,maximize,weight_decay,lr_decay", ADAGRAD_OPTIONS)
def test_adagrad_step_agrees_with_cpu_kernel(dtype, eps_in_sqrt, maximize, weight_decay,
                                             lr_decay, shape=(37,)):
    rng = np.random.default_rng(1)
    x, s = random_arrays(rng, shape, dtype, 2)
    s = np.abs(s)
    dx, ds = to_device(x, s)
    hyper = dict(lr=0.1, eps=1e-10, eps_in_sqrt=eps_in_sqrt, weight_decay=weight_decay,
                 maximize=maximize, lr_decay=lr_decay)
    for step in (1, 2, 3):
        g = random_arrays(rng, shape, dtype, 1)[0]
        kernels.adagrad_step(x, g, s, step=step, **hyper)
        rcuda.adagrad_step(dx, cuda.to_device(g), ds, step=step, **hyper)
    assert_agrees(dx, x)
    assert_agrees(ds, s)


# Fortran order: the kernels walk the flat memory, as the CPU kernels do. (Each new array
# type costs a CPU compilation, so the layouts are not crossed with every option.)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 4)])
def test_fortran_arrays_agree_with_cpu_kernels(dtype, shape):
    test_rmsprop_step_agrees_with_cpu_kernel(dtype, False, True, 0.1, 0.9, True, shape=shape)
    test_adagrad_step_agrees_with_cpu_kernel(dtype, False, True, 0.1, 0.5, shape=shape)


finite = dict(allow_nan=False, allow_infinity=False)


@settings(max_examples=25, deadline=None)
@given(
    lr=st.floats(0, 10, **finite), gamma=st.floats(0, 0.999, **finite),
    eps=st.floats(0, 1, **finite), weight_decay=st.floats(0, 1, **finite),
    momentum=st.floats(0, 0.99, **finite), centered=st.booleans(),
    eps_in_sqrt=st.booleans(), seed=st.integers(0, 2**32 - 1),
)
def test_rmsprop_launcher_and_cpu_kernel_agree_for_any_hyperparameters(
    lr, gamma, eps, weight_decay, momentum, centered, eps_in_sqrt, seed
):
    rng = np.random.default_rng(seed)
    x, g, buf, gavg = (rng.standard_normal(29) for _ in range(4))
    s = rng.random(29)
    gavg = gavg if centered else None
    dx, dg, ds, dbuf, dgavg = to_device(x, g, s, buf, gavg)
    hyper = dict(lr=lr, gamma=gamma, eps=eps, eps_in_sqrt=eps_in_sqrt,
                 weight_decay=weight_decay, momentum=momentum, centered=centered)
    kernels.rmsprop_step(x, g, s, momentum_buffer=buf, grad_avg=gavg, **hyper)
    rcuda.rmsprop_step(dx, dg, ds, momentum_buffer=dbuf, grad_avg=dgavg, **hyper)
    assert_agrees(dx, x)
    assert_agrees(dbuf, buf)


def test_small_grid_makes_threads_stride_over_several_elements():
    blocks, threads = rcuda._launch_config(37)
    assert (blocks, threads) == (BLOCKS, THREADS)
    assert blocks * threads < 37  # the grid-stride loop, not one thread per element


def test_default_launch_is_one_thread_per_element_up_to_the_cap(monkeypatch):
    monkeypatch.setattr(rcuda, "THREADS_PER_BLOCK", 256)
    monkeypatch.setattr(rcuda, "MAX_BLOCKS", None)
    assert rcuda._launch_config(1) == (1, 256)
    assert rcuda._launch_config(1000) == (4, 256)
    blocks, _ = rcuda._launch_config(10**9)
    assert 32 <= blocks < 10**9 // 256


@pytest.mark.parametrize("shape", [(), (0,), (1,), (3, 0)])
def test_scalar_and_empty_arrays(shape):
    x, g, s = np.full(shape, 2.0), np.full(shape, 0.5), np.zeros(shape)
    dx, dg, ds = to_device(x, g, s)
    kernels.rmsprop_step(x, g, s, 0.1, 0.9, 1e-6)
    rcuda.rmsprop_step(dx, dg, ds, 0.1, 0.9, 1e-6)
    assert_agrees(dx, x)
    assert_agrees(ds, s)


def test_stream_argument_launches_on_that_stream():
    x, g, s = np.ones(37), np.full(37, 0.25), np.zeros(37)
    dx, dg, ds = to_device(x, g, s)
    stream = cuda.stream()
    rcuda.rmsprop_step(dx, dg, ds, 0.1, 0.9, 1e-6, stream=stream)
    rcuda.adagrad_step(dx, dg, ds, 0.1, 1e-6, stream=stream)
    stream.synchronize()
    kernels.rmsprop_step(x, g, s, 0.1, 0.9, 1e-6)
    kernels.adagrad_step(x, g, s, 0.1, 1e-6)
    assert_agrees(dx, x)


def test_float32_hyperparameters_are_float32():
    h = rcuda.rmsprop_hyper(np.float32, 0.01, 0.9, 1e-6, momentum=0.5)
    floats = [v for v in h if not isinstance(v, bool)]
    assert floats and all(type(v) is np.float32 for v in floats)
    h = rcuda.adagrad_hyper(np.float32, 0.01, 1e-6, lr_decay=0.1, step=4)
    assert all(type(v) is np.float32 for v in h if not isinstance(v, bool))


# --------------------------------------------------------------------------------------------
# The device functions in a user's own kernel.
# --------------------------------------------------------------------------------------------


@cuda.jit
def fused_rmsprop(x, c, s, buf, gavg, h, steps):
    """Gradient of sum(c * x**2 / 2) computed in the kernel, then RMSProp, ``steps`` times."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        xi, si, bi, ai = x[i], s[i], buf[i], gavg[i]
        for _ in range(steps):
            xi, si, bi, ai = rcuda.rmsprop_update(xi, c[i] * xi, si, bi, ai, h, True, True)
        x[i] = xi
        s[i] = si
        buf[i] = bi
        gavg[i] = ai


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_user_kernel_calling_the_device_function_matches_cpu_steps(dtype):
    rng = np.random.default_rng(2)
    x, c = rng.standard_normal(23).astype(dtype), rng.random(23).astype(dtype)
    s, buf, gavg = (np.zeros(23, dtype) for _ in range(3))
    dx, dc, ds, dbuf, dgavg = to_device(x, c, s, buf, gavg)
    hyper = dict(lr=0.05, gamma=0.9, eps=1e-6, momentum=0.5)
    fused_rmsprop[BLOCKS, THREADS](dx, dc, ds, dbuf, dgavg, rcuda.rmsprop_hyper(dtype, **hyper), 5)
    for _ in range(5):
        kernels.rmsprop_step(x, c * x, s, momentum_buffer=buf, centered=True, grad_avg=gavg,
                             **hyper)
    for dev, cpu in [(dx, x), (ds, s), (dbuf, buf), (dgavg, gavg)]:
        assert_agrees(dev, cpu)


@cuda.jit
def plain_adagrad(x, g, s, h):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        x[i], s[i] = rcuda.adagrad_update(x[i], g[i], s[i], h)


def test_user_kernel_calling_adagrad_update_matches_cpu_step():
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal(19), rng.standard_normal(19)
    s = np.zeros(19)
    dx, dg, ds = to_device(x, g, s)
    plain_adagrad[BLOCKS, THREADS](dx, dg, ds, rcuda.adagrad_hyper(np.float64, 0.3, 1e-8,
                                                                    lr_decay=0.2, step=2))
    kernels.adagrad_step(x, g, s, 0.3, 1e-8, lr_decay=0.2, step=2)
    assert_agrees(dx, x)
    assert_agrees(ds, s)


@cuda.jit
def adagrad_with_float64_coefficients(x, c, s, h):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        x[i], s[i] = rcuda.adagrad_update(x[i], c[i] * x[i], s[i], h)


def test_device_function_refuses_a_float64_gradient_in_a_float32_kernel():
    # float32 x times float64 c is a float64 gradient: refused (compiled: when the kernel is
    # compiled; simulated: when the device function runs), not computed in float64.
    x, c, s = np.ones(8, np.float32), np.full(8, 0.2), np.zeros(8, np.float32)
    dx, dc, ds = to_device(x, c, s)
    with pytest.raises(TypeError, match="g is float64 but the hyperparameters are float32"):
        adagrad_with_float64_coefficients[BLOCKS, THREADS](
            dx, dc, ds, rcuda.adagrad_hyper(np.float32, 0.1, 1e-6)
        )
    np.testing.assert_array_equal(dx.copy_to_host(), 1)


# --------------------------------------------------------------------------------------------
# Errors: the CPU kernel's exception and message, raised before anything changes.
# --------------------------------------------------------------------------------------------


def _rmsprop_cases():
    def arrays(n=6, dtype=np.float64):
        return [np.zeros(n, dtype) for _ in range(3)]

    x, g, s = arrays()
    big = np.zeros(12)
    yield "g float32", (x, g.astype(np.float32), s), {}
    yield "x int", (np.zeros(6, np.int64), np.zeros(6, np.int64), np.zeros(6, np.int64)), {}
    yield "s shape", (x, g, np.zeros(7)), {}
    yield "g 2-D", (x, g.reshape(2, 3), s), {}
    yield "x strided", (big[::2], g, s), {}
    yield "F vs C", (np.zeros((2, 3)), np.zeros((2, 3), order="F"), np.zeros((2, 3))), {}
    yield "g is x", (x, x, s), {}
    yield "s overlaps g", (x, big[:6], big[5:11]), {}
    yield "buf is s", (x, g, s), dict(momentum=0.9, momentum_buffer=s)
    yield "gavg is g", (x, g, s), dict(centered=True, grad_avg=g)
    yield "buf is gavg", (x, g, s), dict(momentum_buffer=big[:6], centered=True,
                                          grad_avg=big[:6])
    yield "lr < 0", (x, g, s), dict(lr=-1.0)
    yield "lr nan", (x, g, s), dict(lr=float("nan"))
    yield "gamma 1", (x, g, s), dict(gamma=1.0)
    yield "eps inf", (x, g, s), dict(eps=float("inf"))
    yield "weight_decay < 0", (x, g, s), dict(weight_decay=-0.1)
    yield "momentum < 0", (x, g, s), dict(momentum=-0.5, momentum_buffer=np.zeros(6))
    yield "lr str", (x, g, s), dict(lr="0.1")
    yield "maximize int", (x, g, s), dict(maximize=1)
    yield "momentum without buffer", (x, g, s), dict(momentum=0.9)
    yield "centered without grad_avg", (x, g, s), dict(centered=True)
    yield "grad_avg without centered", (x, g, s), dict(grad_avg=np.zeros(6))
    yield "buf shape", (x, g, s), dict(momentum=0.9, momentum_buffer=np.zeros(5))


RMSPROP_CASES = list(_rmsprop_cases())


def _device_args(args, kwargs, pool):
    """The same call on device arrays; arrays that share memory on the host share it on the
    device too (views of one device array made from the same host base)."""

    def dev(a):
        if not isinstance(a, np.ndarray):
            return a
        base = a if a.base is None else a.base
        if id(base) not in pool:
            pool[id(base)] = (base, cuda.to_device(base))
        host_base, dbase = pool[id(base)]
        if base is a:
            return dbase
        offset = (a.__array_interface__["data"][0] - host_base.__array_interface__["data"][0])
        start = offset // a.itemsize
        if a.ndim == 1 and a.strides[0] != a.itemsize:
            return dbase[start::a.strides[0] // a.itemsize][: a.size]
        return dbase.reshape(-1)[start:start + a.size].reshape(a.shape)

    return [dev(a) for a in args], {k: dev(v) for k, v in kwargs.items()}


def _raised(fn, *args, **kwargs):
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*args, **kwargs)
    return info.type, str(info.value)


@pytest.mark.parametrize("case", RMSPROP_CASES, ids=[c[0] for c in RMSPROP_CASES])
def test_rmsprop_step_errors_match_cpu_kernel_and_change_nothing(case):
    name, args, kwargs = case
    kwargs = dict(dict(lr=0.1, gamma=0.9, eps=1e-6), **kwargs)
    hyper = {k: kwargs.pop(k) for k in ("lr", "gamma", "eps")}
    cpu_type, cpu_msg = _raised(kernels.rmsprop_step, *args, **hyper, **kwargs)
    dargs, dkwargs = _device_args(args, kwargs, {})
    before = [a.copy_to_host() for a in dargs if hasattr(a, "copy_to_host")]
    dev_type, dev_msg = _raised(rcuda.rmsprop_step, *dargs, **hyper, **dkwargs)
    assert dev_type is cpu_type
    if "shape" in name or "2-D" in name:
        # The CPU message depends on whether the kernel was compiled for these types already
        # ("g must have the same shape as x"); the argument is named either way.
        assert dev_msg.split()[:2] == cpu_msg.split()[:2]
    else:
        assert dev_msg == cpu_msg
    after = [a.copy_to_host() for a in dargs if hasattr(a, "copy_to_host")]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)


ADAGRAD_CASES = [
    ("step 0", dict(step=0)),
    ("step float", dict(step=1.5)),
    ("lr_decay < 0", dict(lr_decay=-1.0)),
    ("eps nan", dict(eps=float("nan"))),
    ("eps_in_sqrt None", dict(eps_in_sqrt=None)),
    ("s is x", dict(s="x")),
]


@pytest.mark.parametrize("case", ADAGRAD_CASES, ids=[c[0] for c in ADAGRAD_CASES])
def test_adagrad_step_errors_match_cpu_kernel(case):
    _, kwargs = case
    x, g, s = np.zeros(6), np.zeros(6), np.zeros(6)
    kwargs = dict(dict(lr=0.1, eps=1e-6), **kwargs)
    if kwargs.pop("s", None) == "x":
        s = x
    cpu = _raised(kernels.adagrad_step, x, g, s, **kwargs)
    dx, dg = cuda.to_device(x), cuda.to_device(g)
    ds = dx if s is x else cuda.to_device(s)
    assert _raised(rcuda.adagrad_step, dx, dg, ds, **kwargs) == cpu


def test_host_arrays_are_refused_with_a_hint():
    with pytest.raises(TypeError, match=r"rmsprop_step: x must be a CUDA device array.*to_device"):
        rcuda.rmsprop_step(np.zeros(3), np.zeros(3), np.zeros(3), 0.1, 0.9, 1e-6)
    with pytest.raises(TypeError, match=r"adagrad_step: g must be a CUDA device array"):
        rcuda.adagrad_step(cuda.to_device(np.zeros(3)), [0.0] * 3, cuda.to_device(np.zeros(3)),
                           0.1, 1e-6)


def test_hyper_builders_check_their_arguments():
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        rcuda.rmsprop_hyper(np.int32, 0.1, 0.9, 1e-6)
    with pytest.raises(ValueError, match="gamma must be in"):
        rcuda.rmsprop_hyper(np.float32, 0.1, 1.5, 1e-6)
    with pytest.raises(TypeError, match="adagrad_hyper: step must be an integer"):
        rcuda.adagrad_hyper(np.float64, 0.1, 1e-6, step=2.0)


# --------------------------------------------------------------------------------------------
# The optimizer classes on device arrays.
# --------------------------------------------------------------------------------------------


def _params(rng):
    """A float32 Fortran matrix, a float64 vector and a float32 scalar: three kinds."""
    return [
        np.asfortranarray(rng.standard_normal((5, 7)).astype(np.float32)),
        rng.standard_normal(11),
        np.array(0.5, dtype=np.float32),
    ]


OPTIMIZERS = [
    (RMSProp, dict(lr=0.05, gamma=0.9)),
    (RMSProp, dict(lr=0.05, gamma=0.99, eps=1e-8, eps_in_sqrt=False, momentum=0.9,
                   centered=True, weight_decay=0.01, maximize=True)),
    (AdaGrad, dict(lr=0.1)),
    (AdaGrad, dict(lr=0.1, eps=1e-10, eps_in_sqrt=False, initial_accumulator_value=0.1,
                   lr_decay=0.01, weight_decay=0.01, maximize=True)),
]


@pytest.mark.parametrize("cls,hyper", OPTIMIZERS)
def test_optimizer_on_device_arrays_matches_optimizer_on_host_arrays(cls, hyper):
    rng = np.random.default_rng(4)
    host = _params(rng)
    dev = [cuda.to_device(p) for p in host]
    on_host, on_dev = cls([p.copy(order="K") for p in host], **hyper), cls(dev, **hyper)
    for _ in range(4):
        grads = [np.asarray(rng.standard_normal(p.shape), dtype=p.dtype, order="K")
                 for p in host]
        grads = [np.asfortranarray(g) if g.ndim == 2 else g for g in grads]
        on_host.step(grads)
        on_dev.step([cuda.to_device(g) for g in grads])
    assert on_dev.step_count == on_host.step_count == 4
    for d, h in zip(dev, on_host.params):
        assert_agrees(d, h)
    saved_dev, saved_host = on_dev.state_dict(), on_host.state_dict()
    assert saved_dev["hyperparams"] == saved_host["hyperparams"]
    assert saved_dev["state"].keys() == saved_host["state"].keys()
    for key, arrays in saved_dev["state"].items():
        for a, b in zip(arrays, saved_host["state"][key]):
            assert isinstance(a, np.ndarray)  # copied to the host
            assert_agrees(cuda.to_device(a), b)


@pytest.mark.parametrize("cls", [RMSProp, AdaGrad])
def test_groups_and_schedules_on_device_match_the_host(cls):
    """Two groups with their own hyperparameters, a schedule, a group added mid-run."""
    rng = np.random.default_rng(6)
    host = _params(rng)
    extra = rng.standard_normal(6)
    options = ({"momentum": 0.5, "weight_decay": 0.01} if cls is RMSProp
               else {"lr_decay": 0.1, "initial_accumulator_value": 0.1})

    def build(arrays):
        return cls([{"params": arrays[:2], "lr": lambda t: 0.1 / t},
                    {"params": arrays[2:], **options}], lr=0.05)

    on_host = build([p.copy(order="K") for p in host])
    dev = [cuda.to_device(p) for p in host]
    on_dev = build(dev)
    for t in range(6):
        if t == 3:
            on_host.add_param_group({"params": [extra.copy()], "lr": 0.2})
            on_dev.add_param_group({"params": [cuda.to_device(extra)], "lr": 0.2})
            on_host.param_groups[1]["lr"] = on_dev.param_groups[1]["lr"] = 0.02
        grads = [np.asarray(rng.standard_normal(p.shape), dtype=p.dtype,
                            order="F" if p.ndim == 2 else "C") for p in on_host.params]
        on_host.step(grads)
        on_dev.step([cuda.to_device(g) for g in grads])
    for d, h in zip(on_dev.params, on_host.params):
        assert_agrees(d, h)
    saved_dev, saved_host = on_dev.state_dict(), on_host.state_dict()
    assert saved_dev["param_groups"] == saved_host["param_groups"]


@pytest.mark.parametrize("cls,hyper", OPTIMIZERS)
def test_device_state_dict_round_trip_continues_bit_for_bit(cls, hyper):
    rng = np.random.default_rng(5)
    host = _params(rng)
    first = cls([cuda.to_device(p) for p in host], **hyper)
    grads = [[cuda.to_device(np.asarray(rng.standard_normal(p.shape), dtype=p.dtype,
                                        order="F" if p.ndim == 2 else "C"))
              for p in host] for _ in range(3)]
    first.step(grads[0])
    saved = first.state_dict()
    params_now = [p.copy_to_host() for p in first.params]
    second = cls([cuda.to_device(p) for p in params_now], **hyper)
    second.load_state_dict(saved)
    assert second.step_count == 1
    for g in grads[1:]:
        first.step(g)
        second.step(g)
    for a, b in zip(first.params, second.params):
        np.testing.assert_array_equal(a.copy_to_host(), b.copy_to_host())


def test_device_optimizer_params_are_views_of_the_callers_arrays():
    x = cuda.to_device(np.array([-5.0, -2.0]))
    opt = RMSProp([x], lr=0.4, gamma=0.9)
    c = np.array([0.2, 4.0])
    for _ in range(20):
        opt.step([cuda.to_device(c * x.copy_to_host())])
    np.testing.assert_allclose(x.copy_to_host(), [-0.010599, 0.0], atol=1e-6)
    np.testing.assert_array_equal(opt.params[0].copy_to_host(), x.copy_to_host())


def test_device_optimizer_checks_every_gradient_before_any_update():
    params = [cuda.to_device(np.ones(4)), cuda.to_device(np.ones(3))]
    opt = RMSProp(params, lr=0.1)
    good, bad = cuda.to_device(np.ones(4)), cuda.to_device(np.ones(5))
    with pytest.raises(ValueError, match=r"RMSProp.step: grads\[1\] has shape \(5,\) but "
                                         r"params\[1\] has shape \(3,\)"):
        opt.step([good, bad])
    with pytest.raises(TypeError, match=r"RMSProp.step: grads\[1\] must be a CUDA device array"):
        opt.step([good, np.ones(3)])
    with pytest.raises(ValueError, match=r"grads\[0\] shares memory with params\[0\]"):
        opt.step([params[0], cuda.to_device(np.ones(3))])
    with pytest.raises(ValueError, match="expected 2, got 1"):
        opt.step([good])
    opt.lr = -1.0
    with pytest.raises(ValueError, match="lr must be a finite number"):
        opt.step([good, cuda.to_device(np.ones(3))])
    assert opt.step_count == 0
    for p in params:
        np.testing.assert_array_equal(p.copy_to_host(), 1.0)
    assert all((a == 0).all() for a in opt.state_dict()["state"]["square_avg"])


def test_device_optimizer_refuses_a_gradient_aliasing_another_parameter():
    base = cuda.to_device(np.ones(8))
    opt = AdaGrad([base[:4], base[4:]], lr=0.1)
    with pytest.raises(ValueError, match=r"AdaGrad.step: grads\[0\] shares memory with "
                                         r"params\[1\]"):
        opt.step([base[4:], cuda.to_device(np.ones(4))])
    with pytest.raises(ValueError, match=r"grads\[1\] shares memory with params\[0\]"):
        opt.step([cuda.to_device(np.ones(4)), base[2:6]])
    np.testing.assert_array_equal(base.copy_to_host(), 1.0)


def test_device_optimizer_refuses_bad_params():
    d = cuda.to_device(np.zeros(8))
    with pytest.raises(ValueError, match=r"params\[0\] and params\[1\] share memory"):
        RMSProp([d[:5], d[4:]])
    with pytest.raises(TypeError, match=r"AdaGrad: params\[1\] must be a CUDA device array"):
        AdaGrad([d, np.zeros(3)])
    with pytest.raises(TypeError, match=r"params\[0\] must have dtype float32 or float64"):
        AdaGrad([cuda.to_device(np.zeros(3, np.int32))])


def test_device_optimizer_accepts_a_generator_of_device_arrays():
    params = [cuda.to_device(np.ones(3)), cuda.to_device(np.ones(2, np.float32))]
    opt = AdaGrad(p for p in params)
    opt.step([cuda.to_device(np.ones(3)), cuda.to_device(np.ones(2, np.float32))])
    assert opt.step_count == 1 and len(opt.params) == 2


# --------------------------------------------------------------------------------------------
# Real GPU only: objects that only expose __cuda_array_interface__ (like CuPy and PyTorch).
# --------------------------------------------------------------------------------------------


class InterfaceOnly:
    """Exposes a device array through __cuda_array_interface__ alone, as CuPy/PyTorch do."""

    def __init__(self, array, readonly=False):
        self._array = array
        iface = dict(array.__cuda_array_interface__)
        iface["data"] = (iface["data"][0], readonly)
        self.__cuda_array_interface__ = iface


@pytest.mark.skipif(SIMULATOR, reason="the simulator has no __cuda_array_interface__ arrays")
def test_foreign_device_arrays_are_updated_in_place_without_copies():
    rng = np.random.default_rng(6)
    x, g, s = rng.standard_normal((6, 5)), rng.standard_normal((6, 5)), np.zeros((6, 5))
    dx, dg, ds = to_device(x, g, s)
    rcuda.rmsprop_step(InterfaceOnly(dx), InterfaceOnly(dg), InterfaceOnly(ds), 0.1, 0.9, 1e-6)
    kernels.rmsprop_step(x, g, s, 0.1, 0.9, 1e-6)
    assert_agrees(dx, x)
    opt = RMSProp([InterfaceOnly(dx)], lr=0.1)
    opt.step([InterfaceOnly(dg)])
    RMSProp([x], lr=0.1).step([g])
    assert_agrees(dx, x)


def test_read_only_device_arrays_are_refused():
    x = cuda.to_device(np.zeros(4))
    if SIMULATOR:  # the simulator's arrays wrap a NumPy array, whose flag they report
        x._ary.flags.writeable = False
    else:
        x = InterfaceOnly(x, readonly=True)
    with pytest.raises(ValueError, match="rmsprop_step: x is read-only"):
        rcuda.rmsprop_step(x, cuda.to_device(np.zeros(4)), cuda.to_device(np.zeros(4)),
                           0.1, 0.9, 1e-6)


@pytest.mark.skipif(SIMULATOR, reason="the simulator cannot wrap external streams")
def test_external_stream_objects_are_accepted():
    class Foreign:
        def __init__(self, stream):
            self._stream = stream

        def __cuda_stream__(self):
            return self._stream.__cuda_stream__()

    numba_stream = cuda.stream()
    x, g, s = to_device(np.ones(10), np.ones(10), np.zeros(10))
    rcuda.rmsprop_step(x, g, s, 0.1, 0.9, 1e-6, stream=Foreign(numba_stream))
    numba_stream.synchronize()
    assert (x.copy_to_host() < 1).all()


# --------------------------------------------------------------------------------------------
# The user guide's examples (those that need neither CuPy nor PyTorch) run and print what
# their comments say.
# --------------------------------------------------------------------------------------------

USER_GUIDE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "user_guide", "cuda.rst")


def _python_blocks(path):
    blocks, current = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(".. code-block:: python"):
                current = []
                blocks.append(current)
            elif current is not None and (line.startswith("   ") or not line.strip()):
                current.append(line[3:])
            elif current is not None:
                current = None
    return ["".join(b).strip() + "\n" for b in blocks]


@pytest.mark.skipif(not os.path.exists(USER_GUIDE), reason="no docs/user_guide/cuda.rst")
def test_user_guide_examples_run_and_print_what_they_say(capsys):
    blocks = [b for b in _python_blocks(USER_GUIDE) if not re.search(r"\b(cp|cupy|torch)\b", b)]
    checked = 0
    for code in blocks:
        exec(compile(code, USER_GUIDE, "exec"), {})
        printed = capsys.readouterr().out.splitlines()
        expected = [line.split("#", 1)[1].strip()
                    for line in code.splitlines() if line.startswith("print(") and "#" in line]
        assert printed == expected, code
        checked += len(expected)
    assert checked >= 3  # the launcher, optimizer and device-function examples


@pytest.mark.parametrize("cls", [RMSProp, AdaGrad])
def test_device_optimizer_nonfinite_policies_match_the_host(cls):
    rng = np.random.default_rng(7)
    host = [rng.standard_normal(13), rng.standard_normal(6).astype(np.float32)]
    grads = [rng.standard_normal(13), rng.standard_normal(6).astype(np.float32)]
    grads[1][4] = np.nan
    for policy in ("raise", "skip"):
        dev = [cuda.to_device(p) for p in host]
        on_dev, on_host = cls(dev, nonfinite=policy), cls([p.copy() for p in host],
                                                           nonfinite=policy)
        if policy == "raise":
            for opt, gs in [(on_dev, [cuda.to_device(g) for g in grads]), (on_host, grads)]:
                with pytest.raises(FloatingPointError, match=r"grads\[1\] contains NaN"):
                    opt.step(gs)
        else:
            on_dev.step([cuda.to_device(g) for g in grads])
            on_host.step(grads)
        assert on_dev.step_count == on_host.step_count == 0
        assert on_dev.skipped_steps == on_host.skipped_steps == (policy == "skip")
        for d, h in zip(dev, host):
            np.testing.assert_array_equal(d.copy_to_host(), h)  # nothing was updated
        finite = [np.nan_to_num(g) for g in grads]
        on_dev.step([cuda.to_device(g) for g in finite])
        on_host.step(finite)
        assert on_dev.step_count == 1
        for d, h in zip(dev, on_host.params):
            assert_agrees(d, h)


# --------------------------------------------------------------------------------------------
# Row-sparse launchers: the CPU row kernels' results, semantics and errors.
# --------------------------------------------------------------------------------------------

ROWS = {
    "repeats": np.array([4, 1, 4, 0, 4, 1]),
    "empty": np.zeros(0, np.int64),
    "all rows, shuffled": np.array([3, 0, 5, 2, 4, 1]),
    "int32": np.array([5, 5, 2], np.int32),
}


def _row_arrays(rng, dtype, trailing, k, n=6):
    x = rng.standard_normal((n, *trailing)).astype(dtype)
    s = np.abs(rng.standard_normal((n, *trailing))).astype(dtype)
    g = rng.standard_normal((k, *trailing)).astype(dtype)
    return x, s, g


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pattern", ROWS)
@pytest.mark.parametrize("duplicates", ["sum", "sequential"])
@pytest.mark.parametrize("rows_on", ["host", "device"])
def test_adagrad_step_rows_agrees_with_cpu_kernel(dtype, pattern, duplicates, rows_on):
    rng = np.random.default_rng(10)
    rows = ROWS[pattern]
    x, s, _ = _row_arrays(rng, dtype, (3,), rows.size)
    dx, ds = to_device(x, s)
    for step in (1, 2):
        g = rng.standard_normal((rows.size, 3)).astype(dtype)
        hyper = dict(lr=0.1, eps=1e-10, eps_in_sqrt=False, maximize=True, lr_decay=0.5,
                     weight_decay=0.1, lazy=True, step=step, duplicates=duplicates)
        kernels.adagrad_step_rows(x, rows, g, s, **hyper)
        rcuda.adagrad_step_rows(dx, cuda.to_device(rows) if rows_on == "device" else rows,
                                cuda.to_device(g), ds, **hyper)
    assert_agrees(dx, x)
    assert_agrees(ds, s)


RMSPROP_ROWS_OPTIONS = [
    dict(lazy=False, centered=c, eps_in_sqrt=e) for c in (False, True) for e in (True, False)
] + [
    dict(lazy=True, momentum=mu, centered=c, weight_decay=wd, maximize=True)
    for mu in (0.0, 0.9) for c in (False, True) for wd in (0.0, 0.1)
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opts", RMSPROP_ROWS_OPTIONS,
                         ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("duplicates", ["sum", "sequential"])
def test_rmsprop_step_rows_agrees_with_cpu_kernel(dtype, opts, duplicates):
    rng = np.random.default_rng(11)
    rows = ROWS["repeats"]
    x, s, _ = _row_arrays(rng, dtype, (2,), rows.size)
    lazy = opts["lazy"]
    buf = np.zeros_like(x) if opts.get("momentum") else None
    gavg = rng.standard_normal(x.shape).astype(dtype) * 0.1 if opts["centered"] else None
    last = None if lazy else np.array([0, 1, 0, 2, 1, 0])
    dx, ds, dbuf, dgavg, dlast = to_device(x, s, buf, gavg, last)
    for step in (3, 4, 5):
        g = rng.standard_normal((rows.size, 2)).astype(dtype)
        r = rows if step != 4 else rows[:2]  # row 0 and 4 miss step 4 (exact: a catch-up)
        g = g[: r.size]
        hyper = dict(lr=0.05, gamma=0.9, eps=1e-6, duplicates=duplicates, **opts)
        steps = {} if lazy else dict(step=step)
        kernels.rmsprop_step_rows(x, r, g, s, momentum_buffer=buf, grad_avg=gavg,
                                  last_step=last, **steps, **hyper)
        rcuda.rmsprop_step_rows(dx, r, cuda.to_device(g), ds, momentum_buffer=dbuf,
                                grad_avg=dgavg, last_step=dlast, **steps, **hyper)
    for dev, cpu in [(dx, x), (ds, s), (dbuf, buf), (dgavg, gavg)]:
        if cpu is not None:
            assert_agrees(dev, cpu)
    if not lazy:
        np.testing.assert_array_equal(dlast.copy_to_host(), last)
        kernels.rmsprop_catch_up(s, last, 5, 0.9, grad_avg=gavg)
        rcuda.rmsprop_catch_up(ds, dlast, 5, 0.9, grad_avg=dgavg)
        np.testing.assert_array_equal(dlast.copy_to_host(), last)
        assert_agrees(ds, s)
        if gavg is not None:
            assert_agrees(dgavg, gavg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsprop_catch_up_agrees_with_cpu(dtype):
    rng = np.random.default_rng(12)
    s = np.abs(rng.standard_normal((7, 2))).astype(dtype)
    last = np.array([0, 3, 9, 9, 1, 0, 5])
    ds, dlast = to_device(s, last)
    kernels.rmsprop_catch_up(s, last, 9, 0.8)
    rcuda.rmsprop_catch_up(ds, dlast, 9, 0.8)
    assert_agrees(ds, s)
    np.testing.assert_array_equal(dlast.copy_to_host(), 9)


def _rows_call(name, over):
    x, s, g = np.ones((5, 3)), np.zeros((5, 3)), np.full((3, 3), 0.5)
    if name == "adagrad_step_rows":
        args = dict(x=x, rows=np.array([1, 3, 1]), g=g, s=s, lr=0.1, eps=1e-6)
    elif name == "rmsprop_step_rows":
        args = dict(x=x, rows=np.array([1, 3, 1]), g=g, s=s, lr=0.1, gamma=0.9, eps=1e-6,
                    last_step=np.zeros(5, np.int64), step=1)
    else:
        args = dict(s=s, last_step=np.zeros(5, np.int64), step=4, gamma=0.5)
    args.update(over)
    return args


ROWS_CASES = [
    ("adagrad_step_rows", "rows float", dict(rows=np.array([1.0, 3.0, 1.0]))),
    ("adagrad_step_rows", "rows negative", dict(rows=np.array([1, -1, 1]))),
    ("adagrad_step_rows", "rows too large", dict(rows=np.array([1, 3, 5]))),
    ("adagrad_step_rows", "g short", dict(g=np.ones((2, 3)))),
    ("adagrad_step_rows", "g float32", dict(g=np.ones((3, 3), np.float32))),
    ("adagrad_step_rows", "x Fortran", dict(x=np.asfortranarray(np.ones((5, 3))),
                                            s=np.asfortranarray(np.zeros((5, 3))))),
    ("adagrad_step_rows", "weight decay, exact", dict(weight_decay=0.1)),
    ("adagrad_step_rows", "duplicates", dict(duplicates="mean")),
    ("adagrad_step_rows", "step 0", dict(step=0)),
    ("rmsprop_step_rows", "no last_step", dict(last_step=None)),
    ("rmsprop_step_rows", "last_step int32", dict(last_step=np.zeros(5, np.int32))),
    ("rmsprop_step_rows", "last_step short", dict(last_step=np.zeros(4, np.int64))),
    ("rmsprop_step_rows", "stale", dict(last_step=np.array([0, 0, 0, 1, 0]))),
    ("rmsprop_step_rows", "momentum, exact", dict(momentum=0.9, momentum_buffer=np.zeros((5, 3)))),
    ("rmsprop_step_rows", "weight decay, exact", dict(weight_decay=0.1)),
    ("rmsprop_step_rows", "lazy with steps", dict(lazy=True)),
    ("rmsprop_step_rows", "centered without grad_avg", dict(centered=True)),
    ("rmsprop_step_rows", "gamma 1", dict(gamma=1.0)),
    ("rmsprop_step_rows", "step float", dict(step=1.0)),
    ("rmsprop_catch_up", "after step", dict(last_step=np.array([0, 5, 0, 0, 0]))),
    ("rmsprop_catch_up", "short", dict(last_step=np.zeros(4, np.int64))),
    ("rmsprop_catch_up", "step < 0", dict(step=-1)),
    ("rmsprop_catch_up", "gamma", dict(gamma=1.5)),
]


@pytest.mark.parametrize("case", ROWS_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_row_launcher_errors_match_cpu_and_change_nothing(case):
    name, _, over = case
    args = _rows_call(name, over)
    cpu = _raised(getattr(kernels, name), **args)
    dargs = {k: cuda.to_device(v) if isinstance(v, np.ndarray) and k != "rows" else v
             for k, v in args.items()}
    before = {k: v.copy_to_host() for k, v in dargs.items() if hasattr(v, "copy_to_host")}
    assert _raised(getattr(rcuda, name), **dargs) == cpu
    for k, b in before.items():
        np.testing.assert_array_equal(dargs[k].copy_to_host(), b)


def test_row_launchers_refuse_host_tables_and_device_rows_are_checked():
    with pytest.raises(TypeError, match="adagrad_step_rows: x must be a CUDA device array"):
        rcuda.adagrad_step_rows(np.ones((3, 2)), np.array([0]), cuda.to_device(np.ones((1, 2))),
                                cuda.to_device(np.zeros((3, 2))), 0.1, 1e-6)
    with pytest.raises(TypeError, match=r"adagrad_step_rows: rows must be an array of integers"):
        rcuda.adagrad_step_rows(cuda.to_device(np.ones((3, 2))), cuda.to_device(np.zeros(1)),
                                cuda.to_device(np.ones((1, 2))),
                                cuda.to_device(np.zeros((3, 2))), 0.1, 1e-6)


def test_device_optimizers_refuse_sparse_gradients_and_point_to_the_row_launchers():
    from rmsprop_nb import SparseGrad

    x = cuda.to_device(np.ones((4, 2)))
    opt = RMSProp([x], lr=0.1)
    with pytest.raises(TypeError, match=r"RMSProp.step: grads\[0\] is a SparseGrad; the "
                                        r"optimizers on GPU arrays take dense gradients.*"
                                        r"rmsprop_nb.cuda.rmsprop_step_rows"):
        opt.step([SparseGrad(np.array([1]), np.ones((1, 2)))])
    assert opt.step_count == 0
    np.testing.assert_array_equal(x.copy_to_host(), 1.0)

"""Fuzzed bad input: every call of the public API either succeeds and matches the NumPy oracle,
or raises ValueError/TypeError with every array unchanged; never a crash, hang or wrong answer.

Hypothesis generates arrays of every dtype, shape, memory order and stride, size mismatches,
aliasing (the same array twice, overlapping views), read-only arrays, NaN/inf values and
hyperparameters of every wrong value and type. Whether a call is valid is decided here, from
the documented rules, independently of the package's own checks.

The budget is fixed (``FUZZ_EXAMPLES``). ``test_fuzz_under_boundscheck`` runs this file again
in a child process with Numba's bounds checking on, so an out-of-bounds access in a kernel
raises instead of reading or writing past an array.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmsprop_nb import AdaGrad, RMSProp
from rmsprop_nb.kernels import adagrad_step, rmsprop_step

import reference
from fuzz_inputs import (BAD_DTYPES, BAD_FLAGS, BAD_REALS, FLOATS, LAYOUTS, flag_ok,
                         make_array, real_ok, values)

FUZZ_EXAMPLES = int(os.environ.get("RMSPROP_NB_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(HealthCheck),
)
CALLS = {"kernel ok": 0, "kernel rejected": 0, "optimizer ok": 0, "optimizer rejected": 0}


@pytest.fixture(scope="module", autouse=True)
def _report_calls(request):
    yield
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None and any(CALLS.values()):
        tr.write_line(f"fuzzed calls: {sum(CALLS.values())} ({CALLS})")


# --------------------------------------------------------------------------------------------
# Generated arrays
# --------------------------------------------------------------------------------------------


@st.composite
def shapes(draw):
    return tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))


@st.composite
def array_specs(draw, shape, dtype):
    """A recipe for one array: mostly like the reference, sometimes off in one way."""
    kind = draw(st.sampled_from(["same"] * 40 + ["dtype", "shape", "layout", "readonly", "list"]))
    spec = dict(shape=shape, dtype=dtype, layout="C", writeable=True, kind=kind)
    if kind == "dtype":
        spec["dtype"] = draw(st.sampled_from(BAD_DTYPES + ("float32", "float64")))
    elif kind == "shape":
        spec["shape"] = draw(shapes())
    elif kind == "layout":
        spec["layout"] = draw(st.sampled_from(LAYOUTS))
    elif kind == "readonly":
        spec["writeable"] = False
    return spec


def build(draw, spec, pool):
    """Make the array of a spec: fresh, or (aliasing) a view of a shared buffer or another."""
    n = int(np.prod(spec["shape"]))
    if spec["kind"] == "list":
        return draw(values(n))
    alias = draw(st.sampled_from(["fresh"] * 30 + ["same", "pool"]))
    if alias == "same" and pool["made"]:
        return draw(st.sampled_from(pool["made"]))
    if alias == "pool" and spec["layout"] == "C" and np.dtype(spec["dtype"]) in FLOATS:
        buf = pool.setdefault(spec["dtype"], np.zeros(64, spec["dtype"]))
        start = draw(st.integers(0, 64 - n)) if n <= 64 else None
        if start is not None:
            a = buf[start:start + n].reshape(spec["shape"])
            with np.errstate(over="ignore"):  # 3e38 does not fit float32: inf, on purpose
                a[...] = np.array(draw(values(n)), dtype=np.float64).reshape(spec["shape"])
            pool["made"].append(a)
            return a
    a = make_array(draw(values(n)), spec["shape"], spec["dtype"], spec["layout"],
                   spec["writeable"])
    pool["made"].append(a)
    return a


def snapshot(arrays):
    return [a.copy() if isinstance(a, np.ndarray) and a.dtype != object else None
            for a in arrays]


def assert_unchanged(arrays, before):
    for a, b in zip(arrays, before):
        if b is not None:
            assert a.tobytes() == b.tobytes(), "an array changed although the call raised"


def order(a):
    return "C" if a.flags.c_contiguous else "F"


def arrays_ok(arrays, writeable_names):
    """The documented array rules, for named arrays (the first is the reference ``x``)."""
    (xname, x), *rest = arrays
    everything = [(xname, x)] + rest
    for name, a in everything:
        if not isinstance(a, np.ndarray) or a.dtype not in FLOATS or a.dtype != x.dtype:
            return False
        if not (a.flags.c_contiguous or a.flags.f_contiguous) or a.shape != x.shape:
            return False
        if name in writeable_names and not a.flags.writeable:
            return False
        if a.ndim > 1 and a.size > 1 and order(a) != order(x):
            return False
    for i, (_, a) in enumerate(everything):
        for _, b in everything[i + 1:]:
            if a.size and b.size and np.may_share_memory(a, b):
                return False
    return True


def assert_close(actual, expected):
    """Agreement with the oracle to a few ulp (NaN and inf in the same places)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    inf = np.isinf(expected)
    assert np.array_equal(actual[inf], expected[inf])
    fin = np.isfinite(expected)
    if fin.any():
        rtol = 8 * np.finfo(expected.dtype).eps
        scale = max(1.0, float(np.abs(expected[fin]).max()))
        np.testing.assert_allclose(actual[fin], expected[fin], rtol=rtol, atol=rtol * scale)


class _AlwaysOn(float):
    """A momentum of 0 that the oracle still treats as 'momentum on': the kernels use a given
    momentum_buffer whatever the momentum (b <- 0 * b + g/d)."""

    def __ne__(self, other):
        return True


# --------------------------------------------------------------------------------------------
# The kernels
# --------------------------------------------------------------------------------------------

RMSPROP_REALS = dict(lr=(0, np.inf, False), gamma=(0, 1, True), eps=(0, np.inf, False),
                     weight_decay=(0, np.inf, False), momentum=(0, np.inf, False))
ADAGRAD_REALS = dict(lr=(0, np.inf, False), eps=(0, np.inf, False),
                     weight_decay=(0, np.inf, False), lr_decay=(0, np.inf, False))
GOOD = dict(lr=[0.0, 0.01, 0.5, 3.0, 1e30], gamma=[0.0, 0.5, 0.9, 0.999999],
            eps=[0.0, 1e-8, 1e-6, 1.0], weight_decay=[0.0, 0.0, 0.1],
            momentum=[0.0, 0.0, 0.5, 0.9], lr_decay=[0.0, 0.0, 0.1])


@st.composite
def hyperparams(draw, reals, *, kernel):
    hyper = {name: draw(st.sampled_from(GOOD[name])) for name in reals}
    flags = dict(eps_in_sqrt=draw(st.booleans()), maximize=draw(st.booleans()))
    if draw(st.integers(0, 5)) == 0:
        name = draw(st.sampled_from(sorted(reals)))
        hyper[name] = draw(st.sampled_from(BAD_REALS))[1]
    elif draw(st.integers(0, 9)) == 0:
        flags[draw(st.sampled_from(sorted(flags)))] = draw(st.sampled_from(BAD_FLAGS))[1]
    ok = all(real_ok(hyper[n], *reals[n], kernel=kernel) for n in reals)
    ok = ok and all(flag_ok(v) for v in flags.values())
    return hyper, flags, ok


@given(data=st.data())
@FUZZ
def test_fuzz_rmsprop_step(data):
    draw = data.draw
    dtype = draw(st.sampled_from(["float32", "float64", "float64"]))
    shape = draw(shapes())
    hyper, flags, ok = draw(hyperparams(RMSPROP_REALS, kernel=True))
    centered = draw(st.booleans())
    pool = {"made": []}
    names = ["x", "g", "s"]
    if draw(st.booleans()):
        names.append("momentum_buffer")
    if draw(st.sampled_from([centered, centered, not centered])):
        names.append("grad_avg")
    if draw(st.integers(0, 9)) == 0:
        centered = draw(st.sampled_from(BAD_FLAGS))[1]
        ok = ok and flag_ok(centered)
    arrays = {n: build(draw, draw(array_specs(shape, dtype)), pool) for n in names}
    ok = ok and arrays_ok(list(arrays.items()), {"x", "s", "momentum_buffer", "grad_avg"})
    buf, gavg = arrays.get("momentum_buffer"), arrays.get("grad_avg")
    if ok:  # the option/state rules
        ok = ((hyper["momentum"] == 0 or buf is not None)
              and (gavg is not None) == bool(centered) and flag_ok(centered))
    inputs = list(arrays.values())
    before = snapshot(inputs)
    x, g, s = arrays["x"], arrays["g"], arrays["s"]
    try:
        rmsprop_step(x, g, s, **hyper, **flags, momentum_buffer=buf, centered=centered,
                     grad_avg=gavg)
    except (ValueError, TypeError):
        CALLS["kernel rejected"] += 1
        assert not ok, "a valid call was rejected"
        assert_unchanged(inputs, before)
        return
    CALLS["kernel ok"] += 1
    assert ok, "an invalid call was accepted"
    x0, g0, s0 = before[:3]
    b0 = before[names.index("momentum_buffer")] if buf is not None else None
    a0 = before[names.index("grad_avg")] if gavg is not None else None
    m = float(hyper["momentum"])
    with np.errstate(all="ignore"):
        ex, es, eb, ea = reference.rmsprop(
            x0, g0, s0, float(hyper["lr"]), float(hyper["gamma"]), float(hyper["eps"]),
            flags["eps_in_sqrt"], float(hyper["weight_decay"]), flags["maximize"],
            _AlwaysOn(m) if buf is not None else m, b0, centered, a0)
    assert_close(x, ex)
    assert_close(s, es)
    assert g.tobytes() == g0.tobytes()
    if buf is not None:
        assert_close(buf, eb)
    if gavg is not None:
        assert_close(gavg, ea)


STEPS = [(1, True), (2, True), (10**6, True), (2**62, True), (0, False), (-3, False),
         (2**64, False), (1.0, False), (True, False), (np.int32(5), True), (None, False)]


@given(data=st.data())
@FUZZ
def test_fuzz_adagrad_step(data):
    draw = data.draw
    dtype = draw(st.sampled_from(["float32", "float64"]))
    shape = draw(shapes())
    hyper, flags, ok = draw(hyperparams(ADAGRAD_REALS, kernel=True))
    step, step_ok = draw(st.sampled_from(STEPS[:4] * 3 + STEPS))
    pool = {"made": []}
    arrays = {n: build(draw, draw(array_specs(shape, dtype)), pool) for n in ("x", "g", "s")}
    ok = ok and step_ok and arrays_ok(list(arrays.items()), {"x", "s"})
    inputs = list(arrays.values())
    before = snapshot(inputs)
    x, g, s = inputs
    try:
        adagrad_step(x, g, s, **hyper, **flags, step=step)
    except (ValueError, TypeError):
        CALLS["kernel rejected"] += 1
        assert not ok, "a valid call was rejected"
        assert_unchanged(inputs, before)
        return
    CALLS["kernel ok"] += 1
    assert ok, "an invalid call was accepted"
    with np.errstate(all="ignore"):
        ex, es = reference.adagrad(
            before[0], before[1], before[2], float(hyper["lr"]), float(hyper["eps"]),
            flags["eps_in_sqrt"], float(hyper["weight_decay"]), flags["maximize"],
            float(hyper["lr_decay"]), int(step))
    assert_close(x, ex)
    assert_close(s, es)


# --------------------------------------------------------------------------------------------
# The optimizers
# --------------------------------------------------------------------------------------------


@st.composite
def param_lists(draw):
    """1-4 parameters of mixed kinds; sometimes one bad (dtype, layout, read-only, aliased)."""
    pool = {"made": []}
    params = []
    for _ in range(draw(st.integers(1, 4))):
        dtype = draw(st.sampled_from(["float32", "float64"]))
        spec = draw(array_specs(draw(shapes()), dtype))
        if spec["kind"] == "shape":
            spec["kind"] = "same"
        params.append(build(draw, spec, pool))
    return params


def params_ok(params):
    for p in params:
        if not isinstance(p, np.ndarray) or p.dtype not in FLOATS or not p.flags.writeable:
            return False
        if not (p.flags.c_contiguous or p.flags.f_contiguous):
            return False
    return not any(a.size and b.size and np.may_share_memory(a, b)
                   for i, a in enumerate(params) for b in params[i + 1:])


@st.composite
def grad_lists(draw, params):
    """One gradient per parameter, sometimes off: dtype, shape, order, strides, aliasing a
    parameter, a list, NaN/inf values, or a wrong number of gradients."""
    grads = []
    for p in params:
        kind = draw(st.sampled_from(["ok"] * 40 + ["dtype", "shape", "layout", "readonly",
                                                   "alias", "list"]))
        n = p.size
        vals = draw(values(n))
        if kind == "alias":
            same = [q for q in params if q.shape == p.shape and q.dtype == p.dtype]
            grads.append(draw(st.sampled_from(same)))
        elif kind == "list":
            grads.append(vals)
        else:
            dtype = draw(st.sampled_from(BAD_DTYPES + ("float32", "float64"))) if kind == "dtype" else p.dtype
            shape = draw(shapes()) if kind == "shape" else p.shape
            vals = draw(values(int(np.prod(shape))))
            layout = draw(st.sampled_from(LAYOUTS)) if kind == "layout" else order(p)
            grads.append(make_array(vals, shape, dtype, layout, kind != "readonly"))
    if draw(st.integers(0, 19)) == 0:
        grads = grads[:-1] if draw(st.booleans()) else grads + grads[:1]
    return grads


def grads_ok(params, grads):
    if len(grads) != len(params):
        return False
    for p, g in zip(params, grads):
        if not arrays_ok([("p", p), ("g", g)], set()):
            return False
        if any(g.size and q.size and np.may_share_memory(g, q) for q in params):
            return False
    return True


OPT_REALS = dict(RMSProp=dict(RMSPROP_REALS), AdaGrad=dict(ADAGRAD_REALS))
OPT_REALS["AdaGrad"]["initial_accumulator_value"] = (0, np.inf, False)
GOOD["initial_accumulator_value"] = [0.0, 0.1]


# initial_accumulator_value=1e300 with float32 parameters fills the state with inf (NumPy warns).
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@given(data=st.data())
@FUZZ
def test_fuzz_optimizers(data):
    draw = data.draw
    name = draw(st.sampled_from(["RMSProp", "AdaGrad"]))
    params = draw(param_lists())
    hyper, flags, ok = draw(hyperparams(OPT_REALS[name], kernel=False))
    options = dict(hyper, **flags)
    if name == "RMSProp":
        options["centered"] = draw(st.booleans())
    policy = draw(st.sampled_from(["propagate"] * 4 + ["raise"] * 3 + ["skip"] * 3 + ["bogus", None]))
    ok = ok and policy in ("propagate", "raise", "skip") and params_ok(params)
    before = snapshot(params)
    cls = RMSProp if name == "RMSProp" else AdaGrad
    try:
        opt = cls(params, **options, nonfinite=policy)
    except (ValueError, TypeError):
        CALLS["optimizer rejected"] += 1
        assert not ok, "valid optimizer arguments were rejected"
        assert_unchanged(params, before)
        return
    CALLS["optimizer ok"] += 1
    assert ok, "invalid optimizer arguments were accepted"
    h = {k: (float(v) if k in OPT_REALS[name] else bool(v)) for k, v in options.items()}
    state = [dict(s=np.full_like(p, h.get("initial_accumulator_value", 0.0)),
                  b=np.zeros_like(p) if h.get("momentum") else None,
                  a=np.zeros_like(p) if h.get("centered") else None) for p in params]
    for _ in range(2):
        if draw(st.integers(0, 9)) == 0:  # a schedule sets an attribute between steps
            # checked and converted at the next step as the constructor does
            attr = draw(st.sampled_from(["lr", "eps", "weight_decay", "maximize"]))
            value = draw(st.sampled_from(BAD_REALS + BAD_FLAGS + [("ok", 0.02)]))[1]
            setattr(opt, attr, value)
            h[attr] = value
        grads = draw(grad_lists(params))
        step_ok = grads_ok(params, grads) and all(
            real_ok(h[n], *OPT_REALS[name][n], kernel=False) for n in ("lr", "eps", "weight_decay")
        ) and flag_ok(h["maximize"])
        before = snapshot(params)
        count, skipped = opt.step_count, opt.skipped_steps
        try:
            opt.step(grads)
        except (ValueError, TypeError):
            CALLS["optimizer rejected"] += 1
            assert not step_ok, "a valid step was rejected"
            assert_unchanged(params, before)
            return
        except FloatingPointError:
            CALLS["optimizer ok"] += 1
            assert step_ok and policy == "raise"
            assert not all(np.isfinite(g).all() for g in grads)
            assert_unchanged(params, before)
            assert opt.step_count == count
            continue
        CALLS["optimizer ok"] += 1
        assert step_ok, "an invalid step was accepted"
        finite = all(np.isfinite(g).all() for g in grads)
        if policy == "skip" and not finite:
            assert_unchanged(params, before)
            assert (opt.step_count, opt.skipped_steps) == (count, skipped + 1)
            continue
        assert policy == "propagate" or finite
        t = count + 1
        hf = {k: float(v) if k in OPT_REALS[name] else bool(v) for k, v in h.items()}
        for p, p0, g, st_ in zip(params, before, grads, state):
            with np.errstate(all="ignore"):
                if name == "RMSProp":
                    ex, st_["s"], st_["b"], st_["a"] = reference.rmsprop(
                        p0, g, st_["s"], hf["lr"], hf["gamma"], hf["eps"], hf["eps_in_sqrt"],
                        hf["weight_decay"], hf["maximize"], hf["momentum"], st_["b"],
                        hf["centered"], st_["a"])
                else:
                    ex, st_["s"] = reference.adagrad(
                        p0, g, st_["s"], hf["lr"], hf["eps"], hf["eps_in_sqrt"],
                        hf["weight_decay"], hf["maximize"], hf["lr_decay"], t)
            assert_close(p, ex)
        assert opt.step_count == t


# --------------------------------------------------------------------------------------------
# The same, with Numba's bounds checking on
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(os.environ.get("NUMBA_BOUNDSCHECK") == "1", reason="this is the child run")
def test_fuzz_under_boundscheck(tmp_path):
    """Run this file's fuzz tests in a child with NUMBA_BOUNDSCHECK=1 and a cache of its own
    (cached code compiled without bounds checks must not be reused)."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               RMSPROP_NB_FUZZ_EXAMPLES=os.environ.get("RMSPROP_NB_BOUNDSCHECK_EXAMPLES", "120"),
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-x",
           str(Path(__file__).resolve()), "-k", "fuzz and not boundscheck"]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"child run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    print("".join(line for line in proc.stdout.splitlines(True) if "fuzzed calls" in line))

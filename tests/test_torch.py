"""rmsprop_nb.torch: drop-in torch.optim optimizers, checked against torch.optim itself.

Conformance: two copies of the same parameters, one trained by ``rmsprop_nb.torch``, one by
``torch.optim``, with the same gradients, several parameter groups, parameters skipped (None
gradients) at random steps and a learning-rate scheduler, for 60 steps. After every step the
two must agree to a few units of round-off of the terms that make up each result (see
:func:`_rmsprop_bound`); then the ``torch.optim`` values are copied into ours, so that every
step is compared from the same point. A free-running float64 test checks that our own state
carries from step to step. The other tests: state dicts exchanged both ways mid-run, closures,
bad input (nothing changes), the address tables kept between steps, complex and channels_last
parameters, and torch staying optional.

Skipped as a whole when torch is not installed (CI installs torch==2.13.0).
"""

from __future__ import annotations

import ast
import copy
import doctest
import io
import os
import subprocess
import sys
import textwrap
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent

torch = pytest.importorskip("torch", reason="torch is not installed (CI installs torch==2.13.0)")

import rmsprop_nb.torch as rt  # noqa: E402

import reference  # noqa: E402

STEPS = 60
# The last shape is 160 KiB in float32: with it a group takes the parallel loop.
SHAPES = [(5,), (3, 4), (2, 3, 2), (7,), (40_000,), (6,)]
SCHEDULERS = ["StepLR", "LambdaLR", "CosineAnnealingLR", "ReduceLROnPlateau"]


# -- error bounds -------------------------------------------------------------------------------
#
# ours - torch is compared with the rounding error of the computation itself: every operation
# rounds its result, so a value computed from terms of magnitude M carries an error of about
# u*M (u: the unit round-off), and a square root near zero or a division magnifies its input's
# error. The bounds below follow each formula with the magnitudes of its terms (G for the
# gradient before cancelling with the weight decay, and so on): "a few ulp" of the terms. A
# wrong formula, option or state misses them by orders of magnitude.


def _sqrt_error(v, e):
    """Error of sqrt(v) when v is known to +-e (ill-conditioned near zero)."""
    v = np.maximum(v, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > e, e / (2 * np.sqrt(v)), np.sqrt(e))


def _rmsprop_bound(u, g, x0, v0, b0, a0, h):
    """Round-off bounds of (x, square_avg, momentum_buffer, grad_avg) after one step."""
    alpha, wd = h["alpha"], h["weight_decay"]
    G = np.abs(g) + wd * np.abs(x0)
    ge = (-g if h["maximize"] else g) + wd * x0
    v = alpha * v0 + (1 - alpha) * ge * ge
    e_v = u * (alpha * np.abs(v0) + (1 - alpha) * G * G)
    e_a = np.zeros_like(g)
    vt, e_vt = v, e_v
    if h["centered"]:
        a = alpha * a0 + (1 - alpha) * ge
        e_a = u * (np.abs(a0) + G)
        vt, e_vt = v - a * a, 2 * (e_v + u * (np.abs(a0) + G) ** 2)
    d = np.sqrt(np.maximum(vt, 0)) + h["eps"]
    e_d = _sqrt_error(vt, e_vt) + u * d
    q = ge / d
    e_q = u * G / d + np.abs(ge) * e_d / d**2 + u * np.abs(q)
    b, e_b = q, e_q
    if h["momentum"] > 0:
        b = h["momentum"] * b0 + q
        e_b = u * (h["momentum"] * np.abs(b0) + np.abs(q)) + e_q
    e_x = u * (np.abs(x0) + h["lr"] * np.abs(b)) + h["lr"] * e_b
    return e_x, e_v, e_b, e_a


def _adagrad_bound(u, g, x0, s0, h, step):
    wd = h["weight_decay"]
    G = np.abs(g) + wd * np.abs(x0)
    ge = (-g if h["maximize"] else g) + wd * x0
    s = s0 + ge * ge
    e_s = u * (np.abs(s0) + G * G)
    d = np.sqrt(s) + h["eps"]
    e_d = _sqrt_error(s, e_s) + u * d
    clr = h["lr"] / (1 + (step - 1) * h["lr_decay"])
    q = ge / d
    e_q = u * G / d + np.abs(ge) * e_d / d**2 + u * np.abs(q)
    e_x = u * (np.abs(x0) + clr * np.abs(q)) + clr * e_q
    return e_x, e_s


def _real(t):
    t = t.detach()
    return (torch.view_as_real(t) if t.is_complex() else t).numpy().astype(np.float64)


# Each result is a few roundings deep, and torch fuses some multiply-adds (one rounding where
# the kernels round twice): allow 8 units. Observed over the conformance tests: at most 2 for
# parameters and averages, 6 for square_avg and sum (alpha = 0 with weight decay).
FEW = 8


def _assert_close(name, ours, theirs, bound):
    diff = np.abs(_real(ours) - _real(theirs))
    worst = float(np.max(diff / np.maximum(bound, np.finfo(np.float64).tiny), initial=0))
    assert worst <= FEW, f"{name}: {worst:.1f} x its round-off bound"


# -- two runs side by side ----------------------------------------------------------------------


def _params(dtype, seed, complex_at=None):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in SHAPES]
    if complex_at is not None:
        ctype = torch.complex64 if dtype == torch.float32 else torch.complex128
        params[complex_at] = torch.randn(SHAPES[complex_at], generator=gen, dtype=ctype)
    return params


def _groups(params, options):
    """Groups over the parameters: options[k] holds group k's hyperparameters."""
    per = np.array_split(np.arange(len(params)), len(options))
    return [dict(params=[params[i] for i in idx], **opt) for idx, opt in zip(per, options)]


def _scheduler(name, opt):
    lrs = torch.optim.lr_scheduler
    if name == "StepLR":
        return lrs.StepLR(opt, step_size=7, gamma=0.5)
    if name == "LambdaLR":
        return lrs.LambdaLR(opt, lambda epoch: 0.95**epoch)
    if name == "CosineAnnealingLR":
        return lrs.CosineAnnealingLR(opt, T_max=25, eta_min=1e-4)
    return lrs.ReduceLROnPlateau(opt, factor=0.5, patience=2)


class Twins:
    """The same parameters trained by ours and by torch.optim."""

    def __init__(self, ours_cls, theirs_cls, dtype, seed, options, defaults, scheduler=None,
                 complex_at=None, theirs_kw=None):
        base = _params(dtype, seed, complex_at)
        self.ours_p = [p.clone().requires_grad_() for p in base]
        self.theirs_p = [p.clone().requires_grad_() for p in base]
        self.ours = ours_cls(_groups(self.ours_p, options), **defaults)
        self.theirs = theirs_cls(_groups(self.theirs_p, options), **defaults, **(theirs_kw or {}))
        self.scheds = [] if scheduler is None else [
            _scheduler(scheduler, self.ours), _scheduler(scheduler, self.theirs)]
        self.plateau = scheduler == "ReduceLROnPlateau"
        self.rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed + 1)
        self.curv = [torch.rand(p.shape, generator=gen, dtype=p.dtype) * 3 + 0.1 for p in base]
        self.group_of = {}
        for k, group in enumerate(self.theirs.param_groups):
            for p in group["params"]:
                self.group_of[id(p)] = k

    def set_grads(self, skip=0.15):
        """Gradients of a noisy quadratic; parameter 0 always has one, the others are None
        with probability ``skip``."""
        for k, (a, b, c) in enumerate(zip(self.ours_p, self.theirs_p, self.curv)):
            if k and self.rng.random() < skip:
                a.grad = b.grad = None
                continue
            noise = torch.from_numpy(self.rng.standard_normal(_real(b).shape)).to(
                torch.view_as_real(b).dtype if b.is_complex() else b.dtype)
            if b.is_complex():
                noise = torch.view_as_complex(noise)
            b.grad = c * b.detach() + 0.1 * noise
            a.grad = b.grad.clone()

    def snapshot(self):
        old = []
        for b in self.theirs_p:
            st = self.theirs.state.get(b, {})
            old.append((_real(b), {k: _real(v) for k, v in st.items() if k != "step"}))
        return old

    def step(self, closure_loss=None):
        self.ours.step()
        self.theirs.step()

    def compare(self, old):
        """Ours against torch after one step from the same point (see the bounds)."""
        for k, (a, b) in enumerate(zip(self.ours_p, self.theirs_p)):
            sa, sb = self.ours.state.get(a, {}), self.theirs.state.get(b, {})
            assert set(sa) == set(sb), f"param {k}: state keys {set(sa)} vs {set(sb)}"
            if "step" in sb:
                assert float(sa["step"]) == float(sb["step"])
                assert sa["step"].dtype == sb["step"].dtype and sa["step"].dim() == 0
            if b.grad is None:
                assert torch.equal(a.detach(), b.detach())
                continue
            h = self.theirs.param_groups[self.group_of[id(b)]]
            x0, st0 = old[k]
            single = b.dtype in (torch.float32, torch.complex64)
            u = np.finfo(np.float32 if single else np.float64).eps / 2
            g = _real(b.grad)
            if "square_avg" in sb:
                zeros = np.zeros_like(x0)
                e_x, e_v, e_b, e_a = _rmsprop_bound(
                    u, g, x0, st0.get("square_avg", zeros), st0.get("momentum_buffer", zeros),
                    st0.get("grad_avg", zeros), h)
                _assert_close(f"param {k}", a, b, e_x)
                _assert_close(f"square_avg {k}", sa["square_avg"], sb["square_avg"], e_v)
                if "momentum_buffer" in sb:
                    _assert_close(f"momentum_buffer {k}", sa["momentum_buffer"],
                                  sb["momentum_buffer"], e_b)
                if "grad_avg" in sb:
                    _assert_close(f"grad_avg {k}", sa["grad_avg"], sb["grad_avg"], e_a)
            else:
                e_x, e_s = _adagrad_bound(u, g, x0, st0["sum"], h, float(sb["step"]))
                _assert_close(f"param {k}", a, b, e_x)
                _assert_close(f"sum {k}", sa["sum"], sb["sum"], e_s)

    def resync(self):
        """Copy torch's values into ours, in place (our tables stay valid)."""
        with torch.no_grad():
            for a, b in zip(self.ours_p, self.theirs_p):
                a.copy_(b)
                for key, value in self.theirs.state.get(b, {}).items():
                    self.ours.state[a][key].copy_(value)

    def schedule(self, t):
        for s in self.scheds:
            if self.plateau:
                s.step(1.0)  # a loss that never improves: the lr is halved every 3 steps
            else:
                s.step()
        for ga, gb in zip(self.ours.param_groups, self.theirs.param_groups):
            assert ga["lr"] == gb["lr"]

    def run(self, steps=STEPS, skip=0.15):
        for t in range(steps):
            self.set_grads(skip)
            old = self.snapshot()
            self.step()
            self.compare(old)
            self.resync()
            self.schedule(t)


DTYPES = st.sampled_from([torch.float32, torch.float64])


@st.composite
def rmsprop_group(draw):
    centered = draw(st.booleans())
    # alpha = 0 with centered divides by the variance of one sample: zero, and where torch's
    # fused multiply-add makes it -1e-17, torch takes the root of a negative number (NaN).
    alphas = [0.5, 0.9, 0.99] if centered else [0.0, 0.5, 0.9, 0.99]
    return dict(
        lr=draw(st.sampled_from([1e-3, 1e-2])), alpha=draw(st.sampled_from(alphas)),
        eps=draw(st.sampled_from([1e-8, 1e-3])), momentum=draw(st.sampled_from([0.0, 0.9])),
        centered=centered, weight_decay=draw(st.sampled_from([0.0, 0.01])),
        maximize=draw(st.booleans()),
    )


@st.composite
def adagrad_group(draw):
    return dict(
        lr=draw(st.sampled_from([1e-2, 5e-2])), lr_decay=draw(st.sampled_from([0.0, 0.05])),
        eps=draw(st.sampled_from([1e-10, 1e-3])), weight_decay=draw(st.sampled_from([0.0, 0.01])),
        maximize=draw(st.booleans()),
    )


@settings(max_examples=12)
@given(dtype=DTYPES, options=st.lists(rmsprop_group(), min_size=1, max_size=3),
       scheduler=st.sampled_from(SCHEDULERS), foreach=st.booleans(),
       complex_at=st.sampled_from([None, 1]), seed=st.integers(0, 2**16))
def test_rmsprop_matches_torch_optim_rmsprop(dtype, options, scheduler, foreach, complex_at,
                                             seed):
    twins = Twins(rt.RMSprop, torch.optim.RMSprop, dtype, seed, options, {}, scheduler,
                  complex_at, theirs_kw=dict(foreach=foreach))
    twins.run()


@settings(max_examples=10)
@given(dtype=DTYPES, options=st.lists(adagrad_group(), min_size=1, max_size=3),
       initial=st.sampled_from([0.0, 0.1]), scheduler=st.sampled_from(SCHEDULERS),
       foreach=st.booleans(), complex_at=st.sampled_from([None, 2]), seed=st.integers(0, 2**16))
def test_adagrad_matches_torch_optim_adagrad(dtype, options, initial, scheduler, foreach,
                                             complex_at, seed):
    # Parameters skipped at random steps reach different step counts: lr_decay then uses
    # each one's own count (one kernel call per count).
    twins = Twins(rt.Adagrad, torch.optim.Adagrad, dtype, seed, options,
                  dict(initial_accumulator_value=initial), scheduler, complex_at,
                  theirs_kw=dict(foreach=foreach))
    twins.run()


@pytest.mark.parametrize("ours_cls, theirs_cls, defaults", [
    (rt.RMSprop, torch.optim.RMSprop, dict(lr=1e-2, momentum=0.9, centered=True,
                                            weight_decay=0.01)),
    (rt.Adagrad, torch.optim.Adagrad, dict(lr=5e-2, lr_decay=0.01, weight_decay=0.01,
                                            initial_accumulator_value=0.1)),
], ids=["RMSprop", "Adagrad"])
def test_a_free_run_stays_with_torch_in_float64(ours_cls, theirs_cls, defaults):
    """No copying between the runs: our state carries from step to step by itself."""
    twins = Twins(ours_cls, theirs_cls, torch.float64, 7, [{}, dict(lr=3e-3)], defaults,
                  "CosineAnnealingLR")
    for t in range(STEPS):
        twins.set_grads()
        twins.step()
        twins.schedule(t)
    for a, b in zip(twins.ours_p, twins.theirs_p):
        np.testing.assert_allclose(_real(a), _real(b), rtol=1e-10, atol=1e-12)
        for key, value in twins.theirs.state.get(b, {}).items():
            np.testing.assert_allclose(_real(twins.ours.state[a][key]), _real(value),
                                       rtol=1e-9, atol=1e-12)


# -- eps inside the root: the book's form, against the NumPy oracle ----------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_eps_in_sqrt_follows_the_reference(dtype):
    x = torch.randn(50, dtype=dtype, generator=torch.Generator().manual_seed(3))
    xr = x.clone().requires_grad_()
    xa = x.clone().requires_grad_()
    rms = rt.RMSprop([xr], lr=0.05, alpha=0.9, eps=1e-6, momentum=0.5, eps_in_sqrt=True)
    ada = rt.Adagrad([xa], lr=0.2, eps=1e-6, lr_decay=0.1, eps_in_sqrt=True)
    ref_r, s, buf = x.numpy().copy(), np.zeros(50, x.numpy().dtype), np.zeros(50, x.numpy().dtype)
    ref_a, sa = x.numpy().copy(), np.zeros(50, x.numpy().dtype)
    for t in range(1, 11):
        xr.grad, xa.grad = 2 * xr.detach(), 2 * xa.detach()
        gr, ga = xr.grad.numpy().copy(), xa.grad.numpy().copy()
        rms.step()
        ada.step()
        ref_r, s, buf, _ = reference.rmsprop(ref_r, gr, s, 0.05, 0.9, 1e-6, momentum=0.5, buf=buf)
        ref_a, sa = reference.adagrad(ref_a, ga, sa, 0.2, 1e-6, lr_decay=0.1, step=t)
        if dtype == torch.float64:
            np.testing.assert_allclose(xr.detach().numpy(), ref_r, rtol=1e-13)
            np.testing.assert_allclose(xa.detach().numpy(), ref_a, rtol=1e-13)
        else:
            np.testing.assert_array_max_ulp(xr.detach().numpy(), ref_r, maxulp=4)
            np.testing.assert_array_max_ulp(xa.detach().numpy(), ref_a, maxulp=4)


# -- state dicts --------------------------------------------------------------------------------


def _roundtrip(state_dict):
    """Through torch.save / torch.load, as a checkpoint travels."""
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    buf.seek(0)
    return torch.load(buf)


@pytest.mark.parametrize("ours_cls, theirs_cls, defaults, options", [
    (rt.RMSprop, torch.optim.RMSprop, dict(lr=1e-2, alpha=0.9),
     [dict(momentum=0.9), dict(centered=True, weight_decay=0.01)]),
    (rt.Adagrad, torch.optim.Adagrad, dict(lr=5e-2, initial_accumulator_value=0.1),
     [dict(lr_decay=0.02), dict(weight_decay=0.01)]),
], ids=["RMSprop", "Adagrad"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_state_dicts_are_interchangeable_both_ways_mid_run(ours_cls, theirs_cls, defaults,
                                                          options, dtype):
    twins = Twins(ours_cls, theirs_cls, dtype, 11, options, defaults)
    twins.run(STEPS // 2)
    mine, theirs = twins.ours.state_dict(), twins.theirs.state_dict()
    # The same structure: state keys and the types of their values, group keys.
    assert mine["state"].keys() == theirs["state"].keys()
    for pid, st_t in theirs["state"].items():
        st_m = mine["state"][pid]
        assert st_m.keys() == st_t.keys()
        for key in st_t:
            assert type(st_m[key]) is type(st_t[key])
            assert (st_m[key].dtype, st_m[key].shape) == (st_t[key].dtype, st_t[key].shape)
    for gm, gt in zip(mine["param_groups"], theirs["param_groups"]):
        assert set(gt) <= set(gm) and set(gm) - set(gt) == {"eps_in_sqrt", "nonfinite", "lazy"}
        assert gm["params"] == gt["params"]
    # Cross over: torch continues from our state, ours from torch's, each on a copy of the
    # parameters of the run it continues.
    torch_from_ours = Twins(ours_cls, theirs_cls, dtype, 11, options, defaults)
    ours_from_torch = Twins(ours_cls, theirs_cls, dtype, 11, options, defaults)
    with torch.no_grad():
        for p, q, a, b in zip(torch_from_ours.theirs_p, ours_from_torch.ours_p, twins.ours_p,
                              twins.theirs_p):
            p.copy_(a)
            q.copy_(b)
    torch_from_ours.theirs.load_state_dict(_roundtrip(mine))
    ours_from_torch.ours.load_state_dict(_roundtrip(theirs))
    for t in range(STEPS // 2):
        twins.set_grads(skip=0)
        for a, b, p, q in zip(twins.ours_p, twins.theirs_p, torch_from_ours.theirs_p,
                              ours_from_torch.ours_p):
            p.grad, q.grad = a.grad.clone(), b.grad.clone()
        for opt in (twins.ours, twins.theirs, torch_from_ours.theirs, ours_from_torch.ours):
            opt.step()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-13)
    for a, b, p, q in zip(twins.ours_p, twins.theirs_p, torch_from_ours.theirs_p,
                          ours_from_torch.ours_p):
        np.testing.assert_allclose(_real(p), _real(a), **tol)  # torch went on as ours would
        np.testing.assert_allclose(_real(q), _real(b), **tol)  # ours went on as torch would
    assert float(ours_from_torch.ours.state[ours_from_torch.ours_p[0]]["step"]) == STEPS


def test_loading_a_state_keeps_our_own_group_keys():
    p = torch.zeros(3, requires_grad=True)
    ours = rt.RMSprop([p], eps_in_sqrt=True, nonfinite="raise")
    theirs = torch.optim.RMSprop([torch.zeros(3, requires_grad=True)], lr=0.5)
    ours.load_state_dict(theirs.state_dict())
    group = ours.param_groups[0]
    assert group["lr"] == 0.5 and group["eps_in_sqrt"] is True and group["nonfinite"] == "raise"


@pytest.mark.parametrize("bad, match", [
    ({"state": {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(3)}}},
     r"keys \['exp_avg'\], which RMSprop does not keep"),
    ({"state": {0: {"step": torch.tensor(1.0), "square_avg": torch.zeros(4)}}},
     r"square_avg of parameter 0 has shape \(4,\); the parameter has shape \(3,\)"),
    ({"state": {5: {"step": torch.tensor(1.0)}}}, r"parameter 5, which is in no saved"),
    ({"param_groups": []}, r"do not match"),
], ids=["adam-state", "shape", "unknown-param", "groups"])
def test_a_state_dict_that_does_not_fit_changes_nothing(bad, match):
    p = torch.ones(3, requires_grad=True)
    opt = rt.RMSprop([p], lr=0.1)
    p.grad = torch.ones(3)
    opt.step()
    before = copy.deepcopy(opt.state_dict())
    good = opt.state_dict()
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(dict(good, **bad))
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    assert torch.equal(after["state"][0]["square_avg"], before["state"][0]["square_avg"])


# -- the torch.optim API ------------------------------------------------------------------------


@pytest.mark.parametrize("cls, theirs_cls", [(rt.RMSprop, torch.optim.RMSprop),
                                             (rt.Adagrad, torch.optim.Adagrad)])
def test_step_returns_the_closures_loss_and_runs_it_with_gradients_on(cls, theirs_cls):
    torch.manual_seed(0)
    X, y = torch.randn(20, 3, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    models = [torch.nn.Linear(3, 1).double() for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [cls(models[0].parameters(), lr=0.01), theirs_cls(models[1].parameters(), lr=0.01)]
    for _ in range(5):
        losses = []
        for model, opt in zip(models, opts):
            def closure(model=model, opt=opt):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(model(X).squeeze(1), y)
                loss.backward()
                return loss
            with torch.no_grad():  # the closure still computes gradients
                losses.append(opt.step(closure))
        assert losses[0].item() == losses[1].item()
    for a, b in zip(*(m.parameters() for m in models)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert opts[0].step() is None


def test_parameters_without_gradient_are_skipped_and_keep_no_step():
    a, b = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    opt = rt.RMSprop([a, b], lr=0.1)
    a.grad = torch.ones(3)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(3)) and len(opt.state[b]) == 0
    assert float(opt.state[a]["step"]) == 1
    ada = rt.Adagrad([a, b], lr=0.1)
    ada.step()
    assert float(ada.state[b]["step"]) == 0  # made by the constructor, as in torch


def test_add_param_group_and_zero_grad():
    a, b = torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)
    opt = rt.RMSprop([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.5, "momentum": 0.9})
    assert opt.param_groups[1]["alpha"] == 0.99 and opt.param_groups[1]["eps_in_sqrt"] is False
    a.grad, b.grad = torch.ones(2), torch.ones(3)
    opt.step()
    assert "momentum_buffer" in opt.state[b] and "momentum_buffer" not in opt.state[a]
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_step_hooks_run_and_the_profiler_sees_the_step():
    from torch.optim.optimizer import register_optimizer_step_post_hook

    p = torch.ones(3, requires_grad=True)
    opt = rt.Adagrad([p], lr=0.1)
    p.grad = torch.ones(3)
    calls = []
    handles = [
        opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o, args))),
        opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", o, args))),
        register_optimizer_step_post_hook(lambda o, args, kwargs: calls.append(("global", o))),
    ]
    opt.step()
    for h in handles:
        h.remove()
    assert calls == [("pre", opt, (opt,)), ("post", opt, (opt,)), ("global", opt)]
    with torch.profiler.profile() as prof:
        opt.step()
    assert "Optimizer.step#Adagrad.step" in {e.name for e in prof.events()}


def test_an_update_is_seen_by_autograd():
    """A graph that saved a parameter refuses to run backward after the step, as after
    torch.optim's in-place updates."""
    p = torch.ones(3, requires_grad=True)
    opt = rt.RMSprop([p], lr=0.1)
    y = (p * p).sum()
    p.grad = torch.ones(3)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


@pytest.mark.parametrize("cls, theirs_cls", [(rt.RMSprop, torch.optim.RMSprop),
                                             (rt.Adagrad, torch.optim.Adagrad)])
def test_channels_last_and_transposed_parameters_are_updated_in_their_layout(cls, theirs_cls):
    gen = torch.Generator().manual_seed(5)
    base = [torch.randn(2, 3, 4, 5, generator=gen).to(memory_format=torch.channels_last),
            torch.randn(6, 4, generator=gen).t()]
    ours_p = [p.clone(memory_format=torch.preserve_format).requires_grad_() for p in base]
    theirs_p = [p.clone(memory_format=torch.preserve_format).requires_grad_() for p in base]
    assert ours_p[0].stride() == base[0].stride() and not ours_p[1].is_contiguous()
    ours, theirs = cls(ours_p, lr=0.01), theirs_cls(theirs_p, lr=0.01)
    for _ in range(5):
        for a, b in zip(ours_p, theirs_p):
            b.grad = torch.sin(b.detach() * 3)  # keeps the parameter's layout
            a.grad = b.grad.clone(memory_format=torch.preserve_format)
        ours.step()
        theirs.step()
    for a, b in zip(ours_p, theirs_p):
        torch.testing.assert_close(a, b, rtol=2e-6, atol=1e-7)


def test_updates_are_in_place_and_the_tables_are_kept_between_steps():
    model = torch.nn.Linear(4, 3)
    opt = rt.RMSprop(model.parameters(), lr=0.01)
    ptrs = [p.data_ptr() for p in model.parameters()]
    plan = None
    for _ in range(3):
        opt.zero_grad(set_to_none=True)  # new gradient tensors every step
        model(torch.randn(8, 4)).sum().backward()
        opt.step()
        assert plan is None or opt._plans[0] is plan
        plan = opt._plans[0]
    assert [p.data_ptr() for p in model.parameters()] == ptrs


def test_new_storage_for_a_parameter_or_its_state_is_followed():
    """p.data = ..., a state tensor replaced, the whole state reset: the tables are rebuilt
    and the results still match torch."""
    twins = Twins(rt.RMSprop, torch.optim.RMSprop, torch.float64, 3, [dict(momentum=0.9)],
                  dict(lr=1e-2))
    twins.run(3)
    plan = twins.ours._plans[0]
    with torch.no_grad():
        for ps in (twins.ours_p, twins.theirs_p):
            ps[0].data = ps[0].data.clone() * 2  # new storage
    twins.run(2)
    assert twins.ours._plans[0] is not plan
    for o in (twins.ours, twins.theirs):
        p = (twins.ours_p if o is twins.ours else twins.theirs_p)[1]
        o.state[p]["square_avg"] = torch.full_like(p, 0.5)
    twins.run(2)
    for o in (twins.ours, twins.theirs):
        o.state = defaultdict(dict)  # a reset, as some training scripts do
    twins.run(2)
    assert float(twins.ours.state[twins.ours_p[0]]["step"]) == 2


def test_a_group_given_other_parameters_updates_those():
    a, b = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    opt = rt.RMSprop([a], lr=0.1)
    a.grad = b.grad = torch.ones(3)
    opt.step()
    opt.param_groups[0]["params"] = [b]  # the same shape of group, another tensor
    opt.step()
    assert float(opt.state[a]["step"]) == 1 and float(opt.state[b]["step"]) == 1
    assert torch.equal(a.detach(), b.detach())


def test_empty_and_scalar_parameters():
    params = [torch.ones(0, 5, requires_grad=True), torch.tensor(2.0, requires_grad=True)]
    twins = [p.detach().clone().requires_grad_() for p in params]
    ours, theirs = rt.Adagrad(params, lr=0.1), torch.optim.Adagrad(twins, lr=0.1)
    for p, q in zip(params, twins):
        p.grad, q.grad = torch.ones_like(p), torch.ones_like(q)
    ours.step()
    theirs.step()
    assert torch.equal(params[1].detach(), twins[1].detach())


@pytest.mark.parametrize("cls, theirs_cls", [(rt.RMSprop, torch.optim.RMSprop),
                                             (rt.Adagrad, torch.optim.Adagrad)])
def test_one_group_of_mixed_dtypes_matches_torch(cls, theirs_cls):
    """float32, float64 and complex64 in one group: one table (one kernel call) per real
    dtype; torch's flags at their default-equivalent values are accepted."""
    gen = torch.Generator().manual_seed(2)
    base = [torch.randn(7, generator=gen), torch.randn(3, 2, generator=gen, dtype=torch.float64),
            torch.randn(4, generator=gen, dtype=torch.complex64)]
    ours_p = [p.clone().requires_grad_() for p in base]
    theirs_p = [p.clone().requires_grad_() for p in base]
    ours = cls(ours_p, lr=0.05, weight_decay=0.1, foreach=False)
    theirs = theirs_cls(theirs_p, lr=0.05, weight_decay=0.1, foreach=False)
    for _ in range(10):
        for a, b in zip(ours_p, theirs_p):
            b.grad = torch.sin(2 * b.detach()) + b.detach()
            a.grad = b.grad.clone()
        ours.step()
        theirs.step()
    assert len(ours._plans[0].buckets) == 2
    for a, b in zip(ours_p, theirs_p):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_momentum_switched_on_later_starts_from_zero():
    p = torch.ones(3, requires_grad=True)
    opt = rt.RMSprop([p], lr=0.1)
    p.grad = torch.ones(3)
    opt.step()
    opt.param_groups[0]["momentum"] = 0.9  # torch.optim.RMSprop raises a KeyError here
    opt.step()
    buf = opt.state[p]["momentum_buffer"]
    v = opt.state[p]["square_avg"]
    torch.testing.assert_close(buf, 1 / (v.sqrt() + 1e-8))


def test_pickling_keeps_the_optimizer_working():
    import pickle

    p = torch.ones(3, requires_grad=True)
    opt = rt.Adagrad([p], lr=0.1, eps_in_sqrt=True)
    p.grad = torch.ones(3)
    opt.step()
    clone = pickle.loads(pickle.dumps(opt))
    assert clone.param_groups[0]["eps_in_sqrt"] is True
    q = clone.param_groups[0]["params"][0]
    q.grad = torch.ones(3)
    clone.step()
    assert float(clone.state[q]["step"]) == 2


def test_one_thread_at_a_time():
    p = torch.ones(3, requires_grad=True)
    opt = rt.RMSprop([p])
    p.grad = torch.ones(3)
    held, done = threading.Event(), threading.Event()

    def hold():
        with opt._exclusive("step"):
            held.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    try:
        with pytest.raises(RuntimeError, match="being used by another thread"):
            opt.step()
    finally:
        done.set()
        thread.join()
    opt.step()


# -- bad input: a clear error, and nothing changes ----------------------------------------------


def _three_groups(cls=rt.RMSprop, **kw):
    params = [torch.ones(4, requires_grad=True) for _ in range(3)]
    opt = cls([{"params": [params[0]]}, {"params": [params[1]]}, {"params": [params[2]]}],
              lr=0.1, **kw)
    for p in params:
        p.grad = torch.ones(4)
    opt.step()
    for p in params:
        p.grad = torch.full((4,), 2.0)
    return opt, params


def _frozen(opt, params):
    return [p.detach().clone() for p in params], copy.deepcopy(opt.state_dict()["state"])


def _unchanged(opt, params, frozen):
    values, state = frozen
    assert all(torch.equal(p.detach(), v) for p, v in zip(params, values))
    now = opt.state_dict()["state"]
    for pid, st in state.items():
        for key, value in st.items():
            assert torch.equal(now[pid][key], value), (pid, key)


@pytest.mark.parametrize("spoil, error, match", [
    (lambda o, ps: o.param_groups[2].__setitem__("lr", -0.1), ValueError,
     r"RMSprop: param_groups\[2\]\['lr'\] must be a finite number >= 0, got -0.1"),
    (lambda o, ps: o.param_groups[1].__setitem__("alpha", 1.0), ValueError,
     r"param_groups\[1\]\['alpha'\] must be in \[0, 1\), got 1.0"),
    (lambda o, ps: o.param_groups[2].__setitem__("eps", float("nan")), ValueError,
     r"param_groups\[2\]\['eps'\] must be a finite number >= 0, got nan"),
    (lambda o, ps: o.param_groups[1].__setitem__("centered", "yes"), TypeError,
     r"param_groups\[1\]\['centered'\] must be True or False, got str"),
    (lambda o, ps: setattr(ps[2], "grad", torch.ones(8)[::2]), ValueError,
     r"the gradient of param_groups\[2\]\['params'\]\[0\] has shape \(4,\) and strides \(2,\)"),
    (lambda o, ps: setattr(ps[1], "grad", ps[0].detach()), ValueError,
     r"the gradient of param_groups\[1\]\['params'\]\[0\] shares memory with a parameter"),
    (lambda o, ps: setattr(ps[2], "grad", torch.sparse_coo_tensor(
        [[1, 4]], [1.0, 1.0], (4,), check_invariants=False)),  # (index 4 is out of range)
     ValueError, r"the gradient of param_groups\[2\]\['params'\]\[0\] has the index 4 at "
                 r"position 1 of its indices, out of range"),
    (lambda o, ps: o.param_groups[1].__setitem__("nonfinite", "ignore"), ValueError,
     r"param_groups\[1\]\['nonfinite'\] must be one of 'propagate', 'raise', 'skip'"),
], ids=["lr", "alpha", "eps-nan", "centered", "strided-grad", "aliased-grad", "sparse-grad",
        "nonfinite"])
def test_bad_input_at_a_step_raises_before_any_parameter_changes(spoil, error, match):
    opt, params = _three_groups()
    spoil(opt, params)
    frozen = _frozen(opt, params)
    with pytest.raises(error, match=match):
        opt.step()
    _unchanged(opt, params, frozen)


def test_a_gradient_of_another_dtype_is_refused():
    p = torch.ones(4, requires_grad=True)
    p.grad_dtype = None  # torch then lets a gradient of any dtype in
    opt = rt.Adagrad([p])
    p.grad = torch.ones(4, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"has dtype torch.float64 but the parameter has "
                                        r"torch.float32"):
        opt.step()
    assert torch.equal(p.detach(), torch.ones(4))


@pytest.mark.parametrize("cls", [rt.RMSprop, rt.Adagrad])
def test_nonfinite_raise_and_skip(cls):
    opt, params = _three_groups(cls, nonfinite="raise")
    params[2].grad[1] = float("inf")
    frozen = _frozen(opt, params)
    with pytest.raises(FloatingPointError, match=r"param_groups\[2\]\['params'\]\[0\] contains "
                                                 r"NaN or infinity; nothing was updated"):
        opt.step()
    _unchanged(opt, params, frozen)
    for group in opt.param_groups:
        group["nonfinite"] = "skip"
    opt.step()
    _unchanged(opt, params, frozen)
    assert opt.skipped_steps == 1
    params[2].grad[1] = 0.0
    opt.step()
    assert float(opt.state[params[0]]["step"]) == 2


@pytest.mark.parametrize("make, error, match", [
    (lambda: rt.RMSprop([torch.ones(3, dtype=torch.float16, requires_grad=True)]), TypeError,
     r"RMSprop: param_groups\[0\]\['params'\]\[0\] has dtype torch.float16; rmsprop_nb.torch "
     r"updates float32, float64"),
    (lambda: rt.Adagrad([torch.ones(3, dtype=torch.bfloat16, requires_grad=True)]), TypeError,
     r"has dtype torch.bfloat16.*or use torch.optim.Adagrad for it"),
    (lambda: rt.RMSprop([torch.ones(8)[::2].requires_grad_()]), ValueError,
     r"param_groups\[0\]\['params'\]\[0\] is not contiguous \(shape \(4,\), strides \(2,\)\)"),
    (lambda: rt.RMSprop([torch.ones(3, device="meta", requires_grad=True)]), TypeError,
     r"is on meta; rmsprop_nb.torch updates CPU and CUDA tensors"),
    (lambda: rt.RMSprop([torch.ones(3, requires_grad=True)], foreach=True), ValueError,
     r"RMSprop: foreach=True is not supported: .*leave it at None"),
    (lambda: rt.Adagrad([torch.ones(3, requires_grad=True)], fused=True), ValueError,
     r"Adagrad: fused=True is not supported"),
    (lambda: rt.RMSprop([torch.ones(3, requires_grad=True)], capturable=True), ValueError,
     r"capturable=True is not supported: the kernels are not CUDA-graph capturable"),
    (lambda: rt.RMSprop([torch.ones(3, requires_grad=True)], differentiable=True), ValueError,
     r"differentiable=True is not supported"),
    (lambda: rt.RMSprop([torch.ones(3, requires_grad=True)], alpha=1.5), ValueError,
     r"RMSprop: alpha must be in \[0, 1\), got 1.5"),
    (lambda: rt.Adagrad([torch.ones(3, requires_grad=True)], lr_decay=-1), ValueError,
     r"Adagrad: lr_decay must be a finite number >= 0, got -1"),
    (lambda: rt.RMSprop([torch.ones(3, requires_grad=True)], nonfinite="warn"), ValueError,
     r"RMSprop: nonfinite must be one of"),
    (lambda: rt.RMSprop([torch.ones(3, requires_grad=True)], lr=torch.ones(2)), ValueError,
     r"a tensor lr must have one element"),
], ids=["float16", "bfloat16", "strided", "meta", "foreach", "fused", "capturable",
        "differentiable", "alpha", "lr_decay", "nonfinite", "lr-tensor"])
def test_construction_refuses_what_the_kernels_cannot_do(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_parameters_sharing_memory_are_refused():
    base = torch.zeros(10)
    a, b = base[:6].requires_grad_(), base[4:].requires_grad_()
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[0\] and "
                                         r"param_groups\[0\]\['params'\]\[1\] share memory"):
        rt.RMSprop([a, b])


def test_add_param_group_with_bad_values_leaves_the_optimizer_unchanged():
    opt = rt.RMSprop([torch.ones(3, requires_grad=True)])
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['momentum'\] must be a finite"):
        opt.add_param_group({"params": [torch.ones(2, requires_grad=True)], "momentum": -1})
    with pytest.raises(TypeError, match=r"param_groups\[1\]\['params'\]\[0\] has dtype "
                                        r"torch.float16"):
        opt.add_param_group({"params": [torch.ones(2, dtype=torch.float16,
                                                   requires_grad=True)]})
    assert len(opt.param_groups) == 1


def test_defaults_follow_torch():
    import inspect

    for ours, theirs in ((rt.RMSprop, torch.optim.RMSprop), (rt.Adagrad, torch.optim.Adagrad)):
        mine = inspect.signature(ours).parameters
        for name, param in inspect.signature(theirs).parameters.items():
            assert name in mine, f"{ours.__name__} lacks torch's {name}"
            assert mine[name].default == param.default, name


# -- torch stays optional -----------------------------------------------------------------------


def _python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
        timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
    )


def test_import_rmsprop_nb_does_not_import_torch():
    r = _python("""
        import sys
        import rmsprop_nb, rmsprop_nb.kernels, rmsprop_nb.optimizers, rmsprop_nb.toy
        import rmsprop_nb.airfoil
        print("torch" in sys.modules)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_without_torch_the_import_says_what_to_install():
    r = _python("""
        import sys
        sys.modules["torch"] = None  # as if torch were not installed
        try:
            import rmsprop_nb.torch
        except ImportError as exc:
            print(exc)
    """)
    assert r.returncode == 0, r.stderr
    assert 'rmsprop_nb.torch needs PyTorch' in r.stdout
    assert 'pip install "rmsprop-nb[torch]"' in r.stdout


def test_no_other_module_imports_torch_when_imported():
    """Only rmsprop_nb/torch.py imports torch at import time (airfoil.py imports it inside
    the function that trains with torch.optim), and nothing imports the package's own
    ``torch`` module relatively, by accident."""
    for path in (ROOT / "rmsprop_nb").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                assert node.module != "torch" and "torch" not in {a.name for a in node.names}
        if path.name == "torch.py":
            continue
        for node in tree.body:  # module level, including try/if blocks
            for inner in ast.walk(node) if not isinstance(
                    node, (ast.FunctionDef, ast.ClassDef)) else []:
                if isinstance(inner, ast.Import):
                    assert all(a.name.split(".")[0] != "torch" for a in inner.names), path.name
                if isinstance(inner, ast.ImportFrom) and inner.level == 0:
                    assert inner.module.split(".")[0] != "torch", path.name


def test_the_extra_installs_a_torch_this_module_supports():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["optional-dependencies"]["torch"] == ["torch>=2.1"]


# -- the benchmark runs (its timings are not looked at: see tests/test_benchmarks.py) ----------


def test_the_torch_benchmark_runs_and_reports_its_targets(tmp_path):
    pytest.importorskip("sklearn")
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "torch_suite.py"), "--quick", "--cases",
         "digits,embedding", "--rounds", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    for text in ("digits MLP 64-64-10, batch 32", "RMSprop vs the faster torch RMSprop",
                 "Adagrad vs torch Adagrad fused", "targets (medians of paired ratios)",
                 "digits MLP: RMSprop step at least 3x faster"):
        assert text in r.stdout
    results = __import__("json").loads((tmp_path / "torch.json").read_text())
    assert set(results["cases"]["digits"]["step"]) == {
        "rms_ours", "rms_single", "rms_foreach", "ada_ours", "ada_single", "ada_foreach",
        "ada_fused"}
    assert set(results["cases"]["embedding"]["step"]) == {
        "ada_ours", "ada_single", "rms_ours", "rms_lazy"}
    sparse = [t for t in results["targets"] if t["target"].startswith("sparse embedding")]
    assert len(sparse) == 1 and sparse[0]["met"] is not None  # measured (met or not)
    assert "RMSprop exact vs RMSprop lazy" in r.stdout
    assert ".. list-table:: digits MLP 64-64-10" in (tmp_path / "torch.rst").read_text()


# -- docstring examples -------------------------------------------------------------------------


# (torch.optim.Adagrad's sparse step, in an example, warns that torch checks no invariants)
@pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")
def test_examples_in_the_docstrings_run():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(rt, "rmsprop_nb.torch") if t.examples]
    assert len(tests) >= 2
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


# -- CUDA ---------------------------------------------------------------------------------------

HAS_NUMBA_CUDA = __import__("importlib").util.find_spec("numba_cuda") is not None

# Run in a child process on Numba's CUDA simulator, which cannot take torch tensors: the
# tensors stay on the CPU and the CUDA buckets see them through simulated device arrays over
# the same memory, so that the launches (one per parameter, on torch's current stream) are
# the code under test.
SIMULATED = """
import numpy as np, torch
from numba import cuda
from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
import rmsprop_nb.cuda as nbcuda
import rmsprop_nb.torch as rt

STREAM = cuda.stream()
streams = []
launch = nbcuda._launch
def spy(kernel, n, stream, *args):
    streams.append(stream)
    return launch(kernel, n, stream, *args)
nbcuda._launch = spy
rt._BUCKETS["cpu"] = rt._CudaBucket
rt._current_stream = lambda device: STREAM
def view(t):
    t = torch.view_as_real(t) if t.is_complex() else t
    return FakeCUDAArray(t.detach().as_strided((t.numel(),), (1,)).numpy())
rt._cuda_view = view
for ours_cls, theirs_cls, kw in [
        (rt.RMSprop, torch.optim.RMSprop, dict(momentum=0.9, centered=True, weight_decay=0.01)),
        (rt.Adagrad, torch.optim.Adagrad, dict(lr_decay=0.05, initial_accumulator_value=0.1))]:
    gen = torch.Generator().manual_seed(0)
    base = [torch.randn(s, generator=gen, dtype=torch.float64) for s in [(3,), (2, 3)]]
    a = [p.clone().requires_grad_() for p in base]
    b = [p.clone().requires_grad_() for p in base]
    oa, ob = ours_cls(a, lr=0.05, **kw), theirs_cls(b, lr=0.05, **kw)
    for t in range(4):
        for k, (x, y) in enumerate(zip(a, b)):
            g = None if (k == 1 and t == 1) else torch.sin(3 * y.detach())
            x.grad, y.grad = (None, None) if g is None else (g.clone(), g.clone())
        oa.step()
        ob.step()
    assert isinstance(oa._plans[0].buckets[0], rt._CudaBucket)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-14)
    # nonfinite="raise" scans the gradients on the GPU first
    oa.param_groups[0]["nonfinite"] = "raise"
    a[1].grad = torch.full_like(a[1], float("nan"))
    try:
        oa.step()
    except FloatingPointError as exc:
        assert "param_groups[0]['params'][1] contains NaN" in str(exc)
    else:
        raise AssertionError("no FloatingPointError")
assert streams and all(s is STREAM for s in streams), streams  # torch's current stream
print("ok", len(streams))
"""


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason='numba-cuda is not installed '
                                              '(pip install "rmsprop-nb[cuda]")')
def test_cuda_buckets_on_the_simulator():
    r = _python(SIMULATED, NUMBA_ENABLE_CUDASIM="1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok")


def test_cuda_without_numba_cuda_says_what_to_install(monkeypatch):
    import rmsprop_nb

    monkeypatch.setitem(sys.modules, "rmsprop_nb.cuda", None)
    monkeypatch.delattr(rmsprop_nb, "cuda", raising=False)
    with pytest.raises(ImportError, match="CUDA tensors are updated by rmsprop_nb.cuda, which "
                                          "needs numba-cuda"):
        rt._cuda_module()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU for torch here")
@pytest.mark.parametrize("ours_cls, theirs_cls", [(rt.RMSprop, torch.optim.RMSprop),
                                                  (rt.Adagrad, torch.optim.Adagrad)])
def test_cuda_tensors_match_torch_optim_on_a_real_gpu(ours_cls, theirs_cls):
    gen = torch.Generator(device="cuda").manual_seed(0)
    base = [torch.randn(s, generator=gen, device="cuda", dtype=torch.float64)
            for s in [(1000,), (30, 40)]]
    a = [p.clone().requires_grad_() for p in base]
    b = [p.clone().requires_grad_() for p in base]
    oa, ob = ours_cls(a, lr=0.01), theirs_cls(b, lr=0.01)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):  # our launches must follow torch's current stream
        for _ in range(10):
            for x, y in zip(a, b):
                y.grad = torch.sin(3 * y.detach())
                x.grad = y.grad.clone()
            oa.step()
            ob.step()
    torch.cuda.synchronize()
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)

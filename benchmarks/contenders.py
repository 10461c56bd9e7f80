"""The implementations that race: rmsprop_nb, the bandwidth ceiling, NumPy and PyTorch.

All of them do the same arithmetic with PyTorch's defaults for placing eps (outside the square
root), so that no one gets an easier problem: RMSProp with ``lr=0.01, gamma=0.99, eps=1e-8``
and AdaGrad with ``lr=0.01, eps=1e-10``. Every contender of a group works on the same
parameter and gradient arrays (PyTorch through ``torch.from_numpy``, without copies), so all
of them meet the same cache state; each keeps its own optimizer state, as it would in use.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

import rmsprop_nb
from rmsprop_nb import AdaGrad, RMSProp, adagrad_step, kernels, rmsprop_step

from timing import Contender

try:
    import torch
except ImportError:  # the PyTorch columns are left out
    torch = None

LR, GAMMA, EPS_RMS, EPS_ADA = 0.01, 0.99, 1e-8, 1e-10


# --------------------------------------------------------------------------------------------
# The bandwidth ceiling: trivial parallel loops with the memory traffic of a step and no math.
# --------------------------------------------------------------------------------------------


@numba.njit(parallel=True, error_model="numpy")
def ceiling_5(x, g, s):
    """3 reads, 2 writes: the traffic of an RMSProp/AdaGrad step."""
    for i in prange(x.size):
        gi = g[i]
        x[i] = x[i] + gi
        s[i] = s[i] + gi


@numba.njit(parallel=True, error_model="numpy")
def ceiling_7(x, g, s, b):
    """4 reads, 3 writes: RMSProp with momentum, or centered."""
    for i in prange(x.size):
        gi = g[i]
        x[i] = x[i] + gi
        s[i] = s[i] + gi
        b[i] = b[i] + gi


@numba.njit(parallel=True, error_model="numpy")
def ceiling_9(x, g, s, b, a):
    """5 reads, 4 writes: RMSProp with momentum and centered."""
    for i in prange(x.size):
        gi = g[i]
        x[i] = x[i] + gi
        s[i] = s[i] + gi
        b[i] = b[i] + gi
        a[i] = a[i] + gi


# --------------------------------------------------------------------------------------------
# NumPy, written two ways.
# --------------------------------------------------------------------------------------------


def numpy_rmsprop_temporaries(x, g, s, lr, gamma, eps):
    """As a user writes it (the book's code with NumPy): every expression makes a temporary."""
    s[:] = gamma * s + (1 - gamma) * np.square(g)
    x -= lr * g / (np.sqrt(s) + eps)


def numpy_rmsprop_inplace(x, g, s, lr, gamma, eps, tmp):
    """The best plain-ufunc version: ``out=`` everywhere, one preallocated scratch array."""
    s *= gamma
    np.multiply(g, g, out=tmp)
    tmp *= 1 - gamma
    s += tmp
    np.sqrt(s, out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    tmp *= lr
    x -= tmp


def numpy_adagrad_temporaries(x, g, s, lr, eps):
    s += np.square(g)
    x -= lr * g / (np.sqrt(s) + eps)


def numpy_adagrad_inplace(x, g, s, lr, eps, tmp):
    np.multiply(g, g, out=tmp)
    s += tmp
    np.sqrt(s, out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    tmp *= lr
    x -= tmp


def numpy_rmsprop_loop(xs, gs, ss, lr, gamma, eps, tmps):
    for x, g, s, tmp in zip(xs, gs, ss, tmps):
        numpy_rmsprop_inplace(x, g, s, lr, gamma, eps, tmp)


def kernel_rmsprop_loop(xs, gs, ss, lr, gamma, eps):
    """One Python-level kernel call per array: what one compiled call per step avoids."""
    for x, g, s in zip(xs, gs, ss):
        rmsprop_step(x, g, s, lr, gamma, eps, False)


# --------------------------------------------------------------------------------------------
# Contender sets.
# --------------------------------------------------------------------------------------------


def _torch_params(xs, gs):
    params = []
    for x, g in zip(xs, gs):
        p = torch.from_numpy(x)  # shares memory with x: the same bytes as everyone else
        p.grad = torch.from_numpy(g)
        params.append(p)
    return params


def data(n, dtype, rng):
    """Parameters, gradients (in [0.5, 1.5): no zeros, no subnormals) and a state array."""
    x = rng.standard_normal(n).astype(dtype)
    g = (rng.random(n) + 0.5).astype(dtype)
    s = np.zeros(n, dtype)
    return x, g, s


def sizes_group(n, dtype, rng, with_torch=True):
    """Everything the size sweep times at one (n, dtype)."""
    x, g, s = data(n, dtype, rng)
    tmp = np.empty_like(x)
    ns = dict(
        x=x, g=g, s=s, tmp=tmp, grads=[g], lr=LR, gamma=GAMMA, eps_r=EPS_RMS, eps_a=EPS_ADA,
        np=np, ceiling_5=ceiling_5, rmsprop_step=rmsprop_step, adagrad_step=adagrad_step,
        numpy_rmsprop_temporaries=numpy_rmsprop_temporaries,
        numpy_rmsprop_inplace=numpy_rmsprop_inplace,
        numpy_adagrad_temporaries=numpy_adagrad_temporaries,
        numpy_adagrad_inplace=numpy_adagrad_inplace,
        rms_opt=RMSProp([x], LR, GAMMA, EPS_RMS, eps_in_sqrt=False),
        ada_opt=AdaGrad([x], LR, EPS_ADA, eps_in_sqrt=False),
    )
    c = [
        Contender("ceiling", "ceiling kernel", "ceiling_5(x, g, s)", ns),
        Contender("copyto", "np.copyto", "np.copyto(tmp, g)", ns, passes=2),
        Contender("rms_kernel", "rmsprop_step", "rmsprop_step(x, g, s, lr, gamma, eps_r, False)", ns),
        Contender("rms_opt", "RMSProp.step", "rms_opt.step(grads)", ns),
        Contender("rms_np_tmp", "NumPy RMSProp (temporaries)",
                  "numpy_rmsprop_temporaries(x, g, s, lr, gamma, eps_r)", ns),
        Contender("rms_np_inplace", "NumPy RMSProp (in place)",
                  "numpy_rmsprop_inplace(x, g, s, lr, gamma, eps_r, tmp)", ns),
        Contender("ada_kernel", "adagrad_step", "adagrad_step(x, g, s, lr, eps_a, False)", ns),
        Contender("ada_opt", "AdaGrad.step", "ada_opt.step(grads)", ns),
        Contender("ada_np_tmp", "NumPy AdaGrad (temporaries)",
                  "numpy_adagrad_temporaries(x, g, s, lr, eps_a)", ns),
        Contender("ada_np_inplace", "NumPy AdaGrad (in place)",
                  "numpy_adagrad_inplace(x, g, s, lr, eps_a, tmp)", ns),
    ]
    if with_torch and torch is not None:
        c += _torch_contenders(_torch_params([x], [g]), ns)
    return c


def _torch_contenders(params, ns):
    ns.update(
        th_rms_foreach=torch.optim.RMSprop(params, lr=LR, alpha=GAMMA, eps=EPS_RMS, foreach=True),
        th_rms_single=torch.optim.RMSprop(params, lr=LR, alpha=GAMMA, eps=EPS_RMS, foreach=False),
        th_ada_foreach=torch.optim.Adagrad(params, lr=LR, eps=EPS_ADA, foreach=True),
        th_ada_fused=torch.optim.Adagrad(params, lr=LR, eps=EPS_ADA, fused=True),
    )
    return [
        Contender("th_rms_foreach", "torch RMSprop foreach", "th_rms_foreach.step()", ns),
        Contender("th_rms_single", "torch RMSprop for-loop", "th_rms_single.step()", ns),
        Contender("th_ada_foreach", "torch Adagrad foreach", "th_ada_foreach.step()", ns),
        Contender("th_ada_fused", "torch Adagrad fused", "th_ada_fused.step()", ns),
    ]


def options_group(n, dtype, rng):
    """RMSProp's options at one size, each next to a ceiling kernel with the same traffic."""
    x, g, s = data(n, dtype, rng)
    b, a = np.zeros_like(x), np.zeros_like(x)
    ns = dict(
        x=x, g=g, s=s, b=b, a=a, grads=[g], ceiling_5=ceiling_5, ceiling_7=ceiling_7,
        ceiling_9=ceiling_9,
    )
    configs = [
        ("plain", {}, 5),
        ("weight_decay", dict(weight_decay=1e-4), 5),
        ("momentum", dict(momentum=0.9), 7),
        ("centered", dict(centered=True), 7),
        ("momentum_centered", dict(momentum=0.9, centered=True), 9),
    ]
    c = [
        Contender("ceiling_5", "ceiling 3R+2W", "ceiling_5(x, g, s)", ns, passes=5),
        Contender("ceiling_7", "ceiling 4R+3W", "ceiling_7(x, g, s, b)", ns, passes=7),
        Contender("ceiling_9", "ceiling 5R+4W", "ceiling_9(x, g, s, b, a)", ns, passes=9),
    ]
    for key, kw, passes in configs:
        ns["opt_" + key] = RMSProp([x], LR, GAMMA, EPS_RMS, eps_in_sqrt=False, **kw)
        label = "RMSProp " + (", ".join(f"{k}={v}" for k, v in kw.items()) or "(no options)")
        c.append(Contender(key, label, f"opt_{key}.step(grads)", ns, passes=passes))
    return c


def many_sizes(count=200, low=10, high=100_000, seed=0):
    """Array sizes drawn log-uniformly in [low, high] (seeded): a model's parameter list."""
    rng = np.random.default_rng(seed)
    return np.exp(rng.uniform(np.log(low), np.log(high), count)).astype(np.int64).tolist()


def many_group(sizes, dtype, rng, with_torch=True):
    """One step over many arrays at once, against the ceiling kernel on the same total bytes."""
    xs, gs, ss = zip(*(data(n, dtype, rng) for n in sizes))
    xs, gs, ss = list(xs), list(gs), list(ss)
    total = sum(sizes)
    cx, cg, cs = data(total, dtype, rng)
    ns = dict(
        xs=xs, gs=gs, ss=ss, tmps=[np.empty_like(x) for x in xs], cx=cx, cg=cg, cs=cs,
        lr=LR, gamma=GAMMA, eps_r=EPS_RMS, ceiling_5=ceiling_5,
        numpy_rmsprop_loop=numpy_rmsprop_loop, kernel_rmsprop_loop=kernel_rmsprop_loop,
        rms_opt=RMSProp(xs, LR, GAMMA, EPS_RMS, eps_in_sqrt=False),
        ada_opt=AdaGrad(xs, LR, EPS_ADA, eps_in_sqrt=False),
        # The same arrays (other copies) in 10 parameter groups, each with its own lr.
        rms_groups=RMSProp(
            [{"params": [x.copy() for x in xs[k::10]], "lr": LR * (1 + k / 10)}
             for k in range(min(10, len(xs)))],
            LR, GAMMA, EPS_RMS, eps_in_sqrt=False,
        ),
        gs_groups=[gs[i] for k in range(min(10, len(xs))) for i in range(k, len(xs), 10)],
    )
    c = [
        Contender("ceiling", "ceiling kernel, same bytes", "ceiling_5(cx, cg, cs)", ns),
        Contender("rms_opt", "RMSProp.step", "rms_opt.step(gs)", ns),
        Contender("ada_opt", "AdaGrad.step", "ada_opt.step(gs)", ns),
        Contender("rms_groups", "RMSProp.step, 10 groups", "rms_groups.step(gs_groups)", ns),
        Contender("rms_kernel_loop", "rmsprop_step per array",
                  "kernel_rmsprop_loop(xs, gs, ss, lr, gamma, eps_r)", ns),
        Contender("rms_np_loop", "NumPy RMSProp (in place) per array",
                  "numpy_rmsprop_loop(xs, gs, ss, lr, gamma, eps_r, tmps)", ns),
    ]
    if with_torch and torch is not None:
        c += _torch_contenders(_torch_params(xs, gs), ns)
    return c


def tiny_group(dtype, with_torch=True):
    """A step on one 1-element parameter: what a call costs when there is nothing to do."""
    return sizes_group(1, dtype, np.random.default_rng(0), with_torch)


# --------------------------------------------------------------------------------------------
# The serial/parallel threshold: the package's two loops, called directly.
# --------------------------------------------------------------------------------------------


def threshold_group(nbytes, dtype, rng):
    """rmsprop_step's serial and parallel entry points (the two it picks between by size) on
    arrays of ``nbytes`` bytes each."""
    x, g, s = data(nbytes // dtype.itemsize, dtype, rng)
    args = "(x, g, s, LR, GAMMA, EPS_RMS, False, 0.0, False, 0.0, None, False, None)"
    ns = dict(x=x, g=g, s=s, LR=LR, GAMMA=GAMMA, EPS_RMS=EPS_RMS,
              serial=kernels._rmsprop_serial, parallel=kernels._rmsprop_parallel)
    return [
        Contender("serial", "serial loop", "serial" + args, ns),
        Contender("parallel", "parallel loop", "parallel" + args, ns),
    ]


def package_info():
    return dict(version=rmsprop_nb.__version__, file=rmsprop_nb.__file__)

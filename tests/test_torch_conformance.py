"""With eps outside the root, the optimizers reproduce torch.optim.RMSprop / Adagrad.

Random option combinations, 60 steps, float32 and float64, with gradients of a noisy quadratic.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rmsprop_nb import AdaGrad, RMSProp

torch = pytest.importorskip("torch", reason="torch is not installed (CI installs torch==2.13.0)")

STEPS = 60
SHAPES = [(5,), (3, 4), (33_000,)]  # together above PARALLEL_MIN_BYTES: the parallel loop


def _run(ours, theirs, params_np, params_t, dtype, seed):
    """Step both side by side; after every step our parameters and state are reset to
    PyTorch's, so that each of the 60 steps compares one update from the same point."""
    rng = np.random.default_rng(seed)
    # s - gbar^2 of few averaged gradients loses most of its float32 digits to cancellation.
    centered_f32 = getattr(ours, "centered", False) and dtype == np.float32
    curv = [rng.uniform(0.1, 3.0, p.shape).astype(dtype) for p in params_np]
    for _ in range(STEPS):
        noise = [rng.standard_normal(p.shape).astype(dtype) * dtype(0.1) for p in params_np]
        grads = [c * p + n for c, p, n in zip(curv, params_np, noise)]
        for pt, c, n in zip(params_t, curv, noise):
            pt.grad = torch.from_numpy(c) * pt.detach() + torch.from_numpy(n)
        before = [p.copy() for p in params_np]
        ours.step(grads)
        theirs.step()
        for p, pt, old in zip(params_np, params_t, before):
            want = pt.detach().numpy()
            # PyTorch fuses some multiply-adds (one rounding where we round twice), which
            # shows where terms nearly cancel (x - lr*buf, mu*buf + g/d, s - gbar^2): compare
            # to a tolerance relative to the parameter and to the largest step taken.
            tol = 1e-12 if dtype == np.float64 else 1e-5 if not centered_f32 else 1e-3
            step = np.max(np.abs(want - old))
            np.testing.assert_allclose(p, want, rtol=tol, atol=tol * step)
            p[...] = want
        mine = ours.state_dict()
        for key, arrays in mine["state"].items():
            for i, a in enumerate(arrays):
                a[...] = theirs.state[params_t[i]][key].numpy()
        ours.load_state_dict(mine)


def _params(dtype, seed):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    return params, tensors


@settings(max_examples=8)
@given(
    dtype=st.sampled_from([np.float32, np.float64]),
    alpha=st.sampled_from([0.0, 0.3, 0.9, 0.99]),
    eps=st.sampled_from([1e-8, 1e-3]),
    momentum=st.sampled_from([0.0, 0.9]),
    centered=st.booleans(),
    weight_decay=st.sampled_from([0.0, 0.01]),
    maximize=st.booleans(),
    foreach=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_rmsprop_matches_torch_optim_rmsprop(dtype, alpha, eps, momentum, centered,
                                            weight_decay, maximize, foreach, seed):
    # gamma = 0 with centered divides by sqrt of pure round-off (the variance of one sample is
    # 0), where PyTorch's fused multiply-add and our plain one differ by design.
    assume(not (centered and alpha == 0.0))
    params, tensors = _params(dtype, seed)
    opts = dict(momentum=momentum, centered=centered, weight_decay=weight_decay, maximize=maximize)
    ours = RMSProp(params, lr=1e-3, gamma=alpha, eps=eps, eps_in_sqrt=False, **opts)
    theirs = torch.optim.RMSprop(tensors, lr=1e-3, alpha=alpha, eps=eps, foreach=foreach, **opts)
    _run(ours, theirs, params, tensors, dtype, seed)


@settings(max_examples=6)
@given(
    dtype=st.sampled_from([np.float32, np.float64]),
    eps=st.sampled_from([1e-10, 1e-3]),
    lr_decay=st.sampled_from([0.0, 0.05]),
    initial=st.sampled_from([0.0, 0.1]),
    weight_decay=st.sampled_from([0.0, 0.01]),
    maximize=st.booleans(),
    foreach=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_adagrad_matches_torch_optim_adagrad(dtype, eps, lr_decay, initial, weight_decay,
                                            maximize, foreach, seed):
    params, tensors = _params(dtype, seed)
    opts = dict(lr_decay=lr_decay, initial_accumulator_value=initial,
                weight_decay=weight_decay, maximize=maximize)
    ours = AdaGrad(params, lr=0.05, eps=eps, eps_in_sqrt=False, **opts)
    theirs = torch.optim.Adagrad(tensors, lr=0.05, eps=eps, foreach=foreach, **opts)
    _run(ours, theirs, params, tensors, dtype, seed)

"""rmsprop_nb.torch with sparse gradients (nn.Embedding(sparse=True), COO).

Adagrad against torch.optim.Adagrad's sparse path; RMSprop (which torch refuses) in its exact
mode against the dense step on the same gradients densified (ours and torch.optim.RMSprop's),
in its lazy mode against a NumPy reference of the rows present; state dicts exchanged with
torch.optim mid-run; the per-row bookkeeping of the exact mode through dense steps, option
changes, pickling and loading; bad input that changes nothing.
"""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (CI installs torch==2.13.0)")

import rmsprop_nb.torch as rt  # noqa: E402

import reference  # noqa: E402

STEPS = 60
VOCAB, DIM, CLASSES = 40, 6, 3
BATCH, TOKENS = 8, 5  # 40 indices into 40 rows a step: repeats, and rows left out

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")


class Bag(torch.nn.Module):
    """Token embeddings (sparse gradients), averaged, then a linear layer (dense ones)."""

    def __init__(self, dtype):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, DIM, sparse=True, dtype=dtype)
        self.head = torch.nn.Linear(DIM, CLASSES, dtype=dtype)

    def forward(self, tokens):
        return self.head(self.embed(tokens).mean(1))


def _batches(seed, steps=STEPS):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randint(0, VOCAB, (BATCH, TOKENS), generator=gen),
             torch.randint(0, CLASSES, (BATCH,), generator=gen)) for _ in range(steps)]


def _models(dtype, seed, n=2):
    torch.manual_seed(seed)
    model = Bag(dtype)
    with torch.no_grad():
        model.embed.weight.mul_(0.3)
    return [copy.deepcopy(model) for _ in range(n)]


def _backward(model, batch, dense=False):
    """Gradients of the cross-entropy on ``batch``; ``dense``: the embedding's densified."""
    model.zero_grad(set_to_none=True)
    tokens, labels = batch
    torch.nn.functional.cross_entropy(model(tokens), labels).backward()
    g = model.embed.weight.grad
    assert g.layout is torch.sparse_coo and not g.is_coalesced()
    if dense:
        model.embed.weight.grad = g.to_dense()


def _set_grads(model, grads):
    for p, g in zip(model.parameters(), grads):
        p.grad = None if g is None else g.clone()


def _roundtrip(state_dict):
    """Through torch.save / torch.load, as a checkpoint travels (the loading optimizer must
    not share tensors with the saving one)."""
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    buf.seek(0)
    return torch.load(buf)


def _ulps(dtype, n):
    return n * torch.finfo(dtype).eps


def _assert_step_close(ours, theirs, before, dtype, ulps=8):
    """``ours`` equals ``theirs`` to a few ulp of the values and of the step taken from
    ``before``."""
    tol = _ulps(dtype, ulps)
    step = (theirs - before).abs().max().item()
    torch.testing.assert_close(ours, theirs, rtol=tol, atol=tol * step)


# -- Adagrad: torch's sparse path ---------------------------------------------------------------

ADAGRAD_OPTIONS = [
    dict(),
    dict(lr=0.05, lr_decay=0.05, eps=1e-6, initial_accumulator_value=0.1),
    dict(lr=0.2, lr_decay=0.01, eps=0.0, initial_accumulator_value=0.5, maximize=True),
]


@pytest.mark.parametrize("options", ADAGRAD_OPTIONS, ids=["defaults", "decay-eps", "maximize"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_sparse_adagrad_matches_torch_optim_adagrad(dtype, options):
    """60 steps of an embedding model, torch's and ours side by side from the same point
    (after each step ours is set to torch's): every step agrees to a few ulp. Now and then
    the embedding takes a dense gradient or none, as a model may give it."""
    ours_m, theirs_m = _models(dtype, 1)
    init = options.get("initial_accumulator_value", 0.0)
    ours = rt.Adagrad(ours_m.parameters(), **options)
    theirs = torch.optim.Adagrad(theirs_m.parameters(), **options)
    rng = np.random.default_rng(0)
    taken = 0  # the embedding's steps
    for batch in _batches(2):
        kind = rng.choice(["sparse"] * 8 + ["dense", "none"])
        taken += kind != "none"
        _backward(theirs_m, batch, dense=kind == "dense")
        if kind == "none":
            theirs_m.embed.weight.grad = None
        _set_grads(ours_m, [p.grad for p in theirs_m.parameters()])
        before = [p.detach().clone() for p in theirs_m.parameters()]
        ours.step()
        theirs.step()
        for a, b, old in zip(ours_m.parameters(), theirs_m.parameters(), before):
            _assert_step_close(a.detach(), b.detach(), old, dtype)
            sa, sb = ours.state[a], theirs.state[b]
            torch.testing.assert_close(sa["sum"], sb["sum"], rtol=_ulps(dtype, 8),
                                       atol=_ulps(dtype, 8) * max(init, 1e-3))
            assert float(sa["step"]) == float(sb["step"])
            with torch.no_grad():  # the next step starts from the same point
                a.copy_(b)
                sa["sum"].copy_(sb["sum"])
    assert float(ours.state[ours_m.embed.weight]["step"]) == taken < STEPS


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_sparse_adagrad_runs_with_torch_for_60_steps(dtype):
    """Without resetting: the two runs stay together (round-off does not grow)."""
    ours_m, theirs_m = _models(dtype, 3)
    ours = rt.Adagrad(ours_m.parameters(), lr=0.1, lr_decay=0.01)
    theirs = torch.optim.Adagrad(theirs_m.parameters(), lr=0.1, lr_decay=0.01)
    for batch in _batches(4):
        _backward(theirs_m, batch)
        _set_grads(ours_m, [p.grad for p in theirs_m.parameters()])
        ours.step()
        theirs.step()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for a, b in zip(ours_m.parameters(), theirs_m.parameters()):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_sparse_gradients_of_more_than_one_sparse_dimension():
    """A COO gradient indexing the first two axes (sparse_dim 2, values of the last axis)
    and one indexing every element: as torch.optim.Adagrad."""
    gen = torch.Generator().manual_seed(5)
    base = [torch.randn(4, 3, 2, generator=gen, dtype=torch.float64),
            torch.randn(5, 2, generator=gen, dtype=torch.float64)]
    a = [p.clone().requires_grad_() for p in base]
    b = [p.clone().requires_grad_() for p in base]
    ours, theirs = rt.Adagrad(a, lr=0.1), torch.optim.Adagrad(b, lr=0.1)
    for _ in range(10):
        i = torch.randint(0, 4, (6,), generator=gen)
        j = torch.randint(0, 3, (6,), generator=gen)
        g0 = torch.sparse_coo_tensor(torch.stack([i, j]), torch.randn(6, 2, generator=gen,
                                     dtype=torch.float64), (4, 3, 2))
        g1 = torch.randn(5, 2, generator=gen, dtype=torch.float64)
        g1 = (g1 * (g1 > 0)).to_sparse()  # sparse_dim 2: one index pair per element
        for ps in (a, b):
            ps[0].grad, ps[1].grad = g0.clone(), g1.clone()
        ours.step()
        theirs.step()
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(ours.state[x]["sum"], theirs.state[y]["sum"], rtol=1e-14,
                                   atol=0)


def test_sparse_adagrad_state_dicts_load_both_ways_mid_run():
    """torch's sparse run saved at step 30 continues in ours as in torch, and ours in torch."""
    dtype = torch.float64
    batches = _batches(6)
    m = _models(dtype, 7, n=4)
    kw = dict(lr=0.1, lr_decay=0.02, initial_accumulator_value=0.05)
    opts = [rt.Adagrad(m[0].parameters(), **kw), torch.optim.Adagrad(m[1].parameters(), **kw)]
    for batch in batches[:30]:
        for model, opt in zip(m, opts):
            _backward(model, batch)
            opt.step()
    # m[2] continues in ours from torch's state, m[3] in torch from ours
    resumed = [rt.Adagrad(m[2].parameters(), **kw), torch.optim.Adagrad(m[3].parameters(), **kw)]
    for target, source in ((2, 1), (3, 0)):
        with torch.no_grad():
            for p, q in zip(m[target].parameters(), m[source].parameters()):
                p.copy_(q)
    resumed[0].load_state_dict(_roundtrip(opts[1].state_dict()))
    resumed[1].load_state_dict(_roundtrip(opts[0].state_dict()))
    opts += resumed
    for batch in batches[30:]:
        for model, opt in zip(m, opts):
            _backward(model, batch)
            opt.step()
    for a, b, c, d in zip(*(model.parameters() for model in m)):
        torch.testing.assert_close(c, b, rtol=1e-12, atol=1e-13)  # ours went on as torch
        torch.testing.assert_close(d, a, rtol=1e-12, atol=1e-13)  # torch went on as ours
    assert float(resumed[0].state[m[2].embed.weight]["step"]) == STEPS


def test_sparse_adagrad_lazy_weight_decay_acts_on_the_rows_present():
    """lazy=True: weight decay on the rows present only (torch refuses weight decay there);
    the same as a dense step over those rows alone."""
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    x0 = x.detach().clone()
    opt = rt.Adagrad([x], lr=0.1, weight_decay=0.5, lazy=True)
    x.grad = torch.sparse_coo_tensor([[4, 1, 4]], torch.ones(3, 3, dtype=torch.float64),
                                     (6, 3))
    opt.step()
    rows = np.array([1, 4])
    g = np.array([[1.0] * 3, [2.0] * 3])
    want, s = reference.adagrad(x0.numpy()[rows], g, np.zeros((2, 3)), 0.1, 1e-10,
                                eps_in_sqrt=False, weight_decay=0.5)
    np.testing.assert_allclose(x.detach().numpy()[rows], want, rtol=1e-15)
    np.testing.assert_allclose(opt.state[x]["sum"].numpy()[rows], s, rtol=1e-15)
    others = [0, 2, 3, 5]
    assert torch.equal(x.detach()[others], x0[others])

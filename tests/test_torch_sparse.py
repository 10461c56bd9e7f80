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


# -- RMSprop, exact mode: the dense step's result -----------------------------------------------

RMSPROP_OPTIONS = [
    dict(lr=0.01),
    dict(lr=0.02, alpha=0.9, centered=True),
    dict(lr=0.01, alpha=0.5, eps=1e-6, maximize=True),
    dict(lr=0.01, alpha=0.9, eps=1e-6, eps_in_sqrt=True),
]


@pytest.mark.parametrize("options", RMSPROP_OPTIONS,
                         ids=["defaults", "centered", "maximize", "eps-in-sqrt"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_sparse_rmsprop_exact_equals_the_dense_step(dtype, options):
    """60 steps with sparse gradients equal 60 dense steps on the same gradients densified,
    ours and (with eps outside the root) torch.optim.RMSprop's, without resetting. Along the
    way the embedding sometimes takes a dense gradient or none, alpha changes at step 30 and
    the state is read at step 40: each of these brings the lagging rows up to date."""
    sparse_m, dense_m, torch_m = _models(dtype, 11, n=3)
    ours = rt.RMSprop(sparse_m.parameters(), **options)
    dense = rt.RMSprop(dense_m.parameters(), **options)
    theirs = None if options.get("eps_in_sqrt") else torch.optim.RMSprop(
        torch_m.parameters(), **options)
    rng = np.random.default_rng(1)
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-6)
    for t, batch in enumerate(_batches(12), start=1):
        kind = rng.choice(["sparse"] * 8 + ["dense", "none"])
        _backward(sparse_m, batch, dense=kind == "dense")
        if kind == "none":
            sparse_m.embed.weight.grad = None
        grads = [None if p.grad is None else p.grad.to_dense() for p in sparse_m.parameters()]
        _set_grads(dense_m, grads)
        _set_grads(torch_m, grads)
        if t == 30:
            for opt in (ours, dense, theirs):
                if opt is not None:
                    opt.param_groups[0]["alpha"] = 0.8
        for opt in (ours, dense, theirs):
            if opt is not None:
                opt.step()
        if t == 40:
            state = ours.state_dict()["state"][0]
            torch.testing.assert_close(state["square_avg"],
                                       dense.state[dense_m.embed.weight]["square_avg"], **tol)
        for a, b in zip(sparse_m.parameters(), dense_m.parameters()):
            torch.testing.assert_close(a, b, **tol)
        if theirs is not None:
            for a, c in zip(sparse_m.parameters(), torch_m.parameters()):
                torch.testing.assert_close(a, c, **tol)
    assert ours._lags  # the rows lag ...
    saved = ours.state_dict()
    assert not ours._lags  # ... until the state is read
    assert set(saved["state"][0]) == set(dense.state_dict()["state"][0])
    for key in ("square_avg", "grad_avg"):
        if key in saved["state"][0]:
            torch.testing.assert_close(saved["state"][0][key],
                                       dense.state[dense_m.embed.weight][key], **tol)


def test_sparse_rmsprop_exact_state_dict_continues_in_torch_optim():
    """The state saved mid-run (every row caught up, torch's keys only) loads into
    torch.optim.RMSprop, which goes on with the gradients densified as ours goes on with the
    sparse ones; and a state saved by torch.optim.RMSprop continues sparsely in ours."""
    dtype = torch.float64
    batches = _batches(13)
    a, b, c = _models(dtype, 14, n=3)
    kw = dict(lr=0.01, alpha=0.9, centered=True)
    ours = rt.RMSprop(a.parameters(), **kw)
    for batch in batches[:30]:
        _backward(a, batch)
        ours.step()
    with torch.no_grad():
        for p, q, r in zip(a.parameters(), b.parameters(), c.parameters()):
            q.copy_(p)
            r.copy_(p)
    theirs = torch.optim.RMSprop(b.parameters(), **kw)
    theirs.load_state_dict(_roundtrip(ours.state_dict()))
    back = rt.RMSprop(c.parameters(), **kw)
    back.load_state_dict(_roundtrip(theirs.state_dict()))
    for batch in batches[30:]:
        _backward(a, batch)
        _backward(b, batch, dense=True)
        _backward(c, batch)
        for opt in (ours, theirs, back):
            opt.step()
    for p, q, r in zip(a.parameters(), b.parameters(), c.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(r, q, rtol=1e-12, atol=1e-13)


def test_pickling_and_copying_bring_the_rows_up_to_date():
    """A pickled or deep-copied optimizer holds the caught-up state (the bookkeeping is not
    pickled): the copy goes on as the original, and both as the dense run."""
    dtype = torch.float64
    a, b = _models(dtype, 15)
    ours = rt.RMSprop(a.parameters(), lr=0.01, alpha=0.9)
    dense = rt.RMSprop(b.parameters(), lr=0.01, alpha=0.9)
    batches = _batches(16, 20)
    for batch in batches[:10]:
        _backward(a, batch)
        _backward(b, batch, dense=True)
        ours.step()
        dense.step()
    assert ours._lags
    clone = pickle.loads(pickle.dumps(ours))
    twin = copy.deepcopy(ours)
    for opt in (clone, twin):
        assert not opt._lags
        weight = opt.param_groups[0]["params"][0]
        torch.testing.assert_close(opt.state[weight]["square_avg"],
                                   dense.state[b.embed.weight]["square_avg"], rtol=1e-13, atol=0)
        model = Bag(dtype)
        with torch.no_grad():
            for p, q in zip(model.parameters(), a.parameters()):
                p.copy_(q)
        model.embed.weight, model.head.weight, model.head.bias = opt.param_groups[0]["params"]
        for batch in batches[10:]:
            _backward(model, batch)
            opt.step()
    for batch in batches[10:]:
        _backward(a, batch)
        _backward(b, batch, dense=True)
        ours.step()
        dense.step()
    for opt in (clone, twin):
        for p, q in zip(opt.param_groups[0]["params"], b.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)


def test_loading_a_state_drops_the_bookkeeping_of_the_old_one():
    dtype = torch.float64
    a, b = _models(dtype, 17)
    ours = rt.RMSprop(a.parameters(), lr=0.01)
    theirs = torch.optim.RMSprop(b.parameters(), lr=0.01)
    batches = _batches(18, 12)
    for batch in batches[:6]:
        _backward(a, batch)
        ours.step()
        _backward(b, batch, dense=True)
        theirs.step()
    assert ours._lags
    with torch.no_grad():
        for p, q in zip(a.parameters(), b.parameters()):
            p.copy_(q)
    ours.load_state_dict(_roundtrip(theirs.state_dict()))
    assert not ours._lags
    for batch in batches[6:]:
        _backward(a, batch)
        ours.step()
        _backward(b, batch, dense=True)
        theirs.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)


# -- RMSprop, lazy mode: the rows present only --------------------------------------------------

LAZY_OPTIONS = [
    dict(lr=0.01, alpha=0.9),
    dict(lr=0.01, alpha=0.9, momentum=0.9, weight_decay=0.01),
    dict(lr=0.02, alpha=0.8, centered=True, maximize=True, momentum=0.5),
    dict(lr=0.01, alpha=0.9, eps=1e-6, eps_in_sqrt=True, weight_decay=0.1),
]


@pytest.mark.parametrize("options", LAZY_OPTIONS,
                         ids=["plain", "momentum-decay", "centered", "eps-in-sqrt"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_sparse_rmsprop_lazy_matches_its_reference(dtype, options):
    """Each step: the repeated rows summed (in the order of the indices), then the dense
    update of torch.optim.RMSprop on the rows present alone (NumPy reference, in the
    parameter's dtype); the other rows and their state do not change."""
    x0 = torch.randn(VOCAB, DIM, generator=torch.Generator().manual_seed(19), dtype=dtype)
    x = x0.clone().requires_grad_()
    opt = rt.RMSprop([x], lazy=True, **options)
    momentum, centered = options.get("momentum", 0.0), options.get("centered", False)
    ref = dict(x=x0.numpy().copy(), s=np.zeros_like(x0.numpy()),
               buf=np.zeros_like(x0.numpy()) if momentum else None,
               gavg=np.zeros_like(x0.numpy()) if centered else None)
    kw = dict(lr=options["lr"], gamma=options["alpha"], eps=options.get("eps", 1e-8),
              eps_in_sqrt=options.get("eps_in_sqrt", False),
              weight_decay=options.get("weight_decay", 0.0),
              maximize=options.get("maximize", False), momentum=momentum, centered=centered)
    rng = np.random.default_rng(20)
    names = ("x", "s", "buf", "gavg")
    for _ in range(STEPS):
        idx = rng.integers(0, VOCAB, 12)
        values = rng.standard_normal((12, DIM)).astype(x0.numpy().dtype)
        x.grad = torch.sparse_coo_tensor(torch.from_numpy(idx)[None], torch.from_numpy(values),
                                         (VOCAB, DIM))
        rows = np.unique(idx)
        g = np.zeros((VOCAB, DIM), values.dtype)
        np.add.at(g, idx, values)
        before = {k: None if v is None else v.copy() for k, v in ref.items()}
        out = reference.rmsprop(
            ref["x"][rows], g[rows], ref["s"][rows], buf=None if ref["buf"] is None else
            ref["buf"][rows], gavg=None if ref["gavg"] is None else ref["gavg"][rows], **kw)
        for name, value in zip(names, out):
            if value is not None:
                ref[name][rows] = value
        opt.step()
        st = opt.state[x]
        ours = dict(x=x.detach(), s=st["square_avg"], buf=st.get("momentum_buffer"),
                    gavg=st.get("grad_avg"))
        for name in names:
            if ref[name] is None:
                continue
            want, old = torch.from_numpy(ref[name]), torch.from_numpy(before[name])
            _assert_step_close(ours[name], want, old, dtype)
            with torch.no_grad():
                ours[name].copy_(want)  # the next step starts from the same point
    assert not opt._lags


def test_lazy_and_exact_can_alternate():
    """Switching a group to lazy brings the lagging rows up to date first (the steps they
    missed were exact ones); switching back starts the bookkeeping afresh."""
    dtype = torch.float64
    a, b = _models(dtype, 21)
    ours = rt.RMSprop(a.parameters(), lr=0.01, alpha=0.9)
    ref = rt.RMSprop(b.parameters(), lr=0.01, alpha=0.9)
    for t, batch in enumerate(_batches(22, 30)):
        lazy = 10 <= t < 20
        for opt in (ours, ref):
            opt.param_groups[0]["lazy"] = lazy
        _backward(a, batch)
        # the reference: dense steps while exact, ours' lazy steps while lazy
        _backward(b, batch, dense=not lazy)
        ours.step()
        ref.step()
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)


# -- bad input: a clear error, and nothing changes ----------------------------------------------


def _two_groups(cls, embed_options=None, **kw):
    """A dense parameter in group 0 (updated first), an embedding table in group 1; one step
    taken (so that exact RMSprop's rows lag), sparse gradients for the next."""
    dense = torch.ones(4, dtype=torch.float64, requires_grad=True)
    table = torch.ones(6, 3, dtype=torch.float64, requires_grad=True)
    opt = cls([{"params": [dense]}, {"params": [table], **(embed_options or {})}], lr=0.1, **kw)
    dense.grad = torch.ones(4, dtype=torch.float64)
    table.grad = _sparse([1, 1, 3], 6)
    opt.step()
    dense.grad = torch.full((4,), 2.0, dtype=torch.float64)
    table.grad = _sparse([0, 5], 6)
    return opt, [dense, table]


def _sparse(rows, n, dtype=torch.float64):
    # (unchecked: some tests need indices out of range)
    return torch.sparse_coo_tensor([rows], torch.ones(len(rows), 3, dtype=dtype), (n, 3),
                                   check_invariants=False)


def _snapshot(opt, params):
    state = {id(p): {k: v.clone() for k, v in st.items()} for p, st in opt.state.items()}
    lags = {id(p): lag.last_step.copy() for p, lag in opt._lags.items()}
    return [p.detach().clone() for p in params], state, lags


def _assert_same(opt, params, snapshot):
    values, state, lags = snapshot
    assert all(torch.equal(p.detach(), v) for p, v in zip(params, values))
    for p, st in opt.state.items():
        for key, value in st.items():  # (a buffer an option switched on may start, at zero)
            was = state[id(p)].get(key, torch.zeros_like(value))
            assert torch.equal(value, was), key
    assert {id(p): lag.last_step.tolist() for p, lag in opt._lags.items()} == {
        k: v.tolist() for k, v in lags.items()}


def _set_grad(i, grad):
    def spoil(opt, ps):
        ps[i].grad_dtype = None  # torch then lets a gradient of any dtype in
        ps[i].grad = grad

    return spoil


def _set_option(key, value):
    return lambda opt, ps: opt.param_groups[1].__setitem__(key, value)


class _Meta:
    """Pretend that the table lives on another device (torch's meta device here), whose
    dense tensors the optimizer would take: its sparse gradient must then be refused."""

    def __init__(self, monkeypatch):
        monkeypatch.setitem(rt._BUCKETS, "meta", rt._CudaBucket)

    def __call__(self, opt, ps):
        table = torch.ones(6, 3, dtype=torch.float64, device="meta", requires_grad=True)
        opt.param_groups[1]["params"] = [table]
        opt.state[table] = {"step": torch.tensor(0.0)}
        table.grad = _sparse([0], 6).to("meta")


BAD = [
    ("adagrad-weight-decay", rt.Adagrad, {}, _set_option("weight_decay", 0.01),
     (RuntimeError, ValueError),
     r"Adagrad.step: weight_decay option is not compatible with sparse gradients \(as in "
     r"torch.optim.Adagrad\): param_groups\[1\]\['weight_decay'\] is 0.01 .* lazy=True"),
    ("rmsprop-momentum", rt.RMSprop, {}, _set_option("momentum", 0.9), ValueError,
     r"the gradient of param_groups\[1\]\['params'\]\[0\] is sparse, but "
     r"param_groups\[1\]\['momentum'\] is 0.9: momentum moves rows that have no gradient.*"
     r"set lazy=True"),
    ("rmsprop-weight-decay", rt.RMSprop, {}, _set_option("weight_decay", 0.1), ValueError,
     r"param_groups\[1\]\['weight_decay'\] is 0.1: weight_decay moves rows .* lazy=True"),
    ("out-of-range", rt.RMSprop, {}, _set_grad(1, _sparse([2, 6], 6)), ValueError,
     r"the gradient of param_groups\[1\]\['params'\]\[0\] has the index 6 at position 1 of "
     r"its indices, out of range for the parameter's shape \(6, 3\)"),
    ("negative", rt.Adagrad, {}, _set_grad(1, _sparse([-1], 6)), ValueError,
     r"has the index -1 at position 0 of its indices, out of range"),
    ("dtype", rt.RMSprop, {}, _set_grad(1, _sparse([1], 6, torch.float32)), TypeError,
     r"has dtype torch.float32 but the parameter has torch.float64"),
    ("nonfinite", rt.RMSprop, dict(nonfinite="raise"),
     _set_grad(1, torch.sparse_coo_tensor([[2]], [[0.0, float("nan"), 1.0]], (6, 3),
                                          dtype=torch.float64, check_invariants=True)),
     FloatingPointError, r"param_groups\[1\]\['params'\]\[0\] contains NaN or infinity"),
]


@pytest.mark.parametrize("name, cls, options, spoil, error, match", BAD,
                         ids=[b[0] for b in BAD])
def test_bad_sparse_input_raises_before_anything_changes(name, cls, options, spoil, error,
                                                         match):
    opt, params = _two_groups(cls, options)
    spoil(opt, params)
    snapshot = _snapshot(opt, params)
    errors = error if isinstance(error, tuple) else (error,)
    with pytest.raises(errors[0], match=match) as info:
        opt.step()
    assert all(isinstance(info.value, e) for e in errors)
    _assert_same(opt, params, snapshot)


def test_adagrad_weight_decay_error_is_torchs():
    """torch.optim.Adagrad raises a RuntimeError with this text (after counting the step)."""
    p = torch.ones(6, 3, dtype=torch.float64, requires_grad=True)
    p.grad = _sparse([1], 6)
    with pytest.raises(RuntimeError, match="weight_decay option is not compatible with "
                                           "sparse gradients"):
        torch.optim.Adagrad([p], weight_decay=0.01).step()


@pytest.mark.parametrize("make, error, match", [
    (lambda: torch.ones(6, 3, dtype=torch.complex128, requires_grad=True), TypeError,
     r"is sparse and the parameter is complex \(torch.complex128\)"),
    (lambda: torch.ones(3, 6, dtype=torch.float64).t().requires_grad_(), ValueError,
     r"is sparse, which needs a contiguous parameter .* strides \(1, 6\)"),
], ids=["complex", "transposed"])
def test_parameters_a_sparse_step_cannot_take_are_refused(make, error, match):
    p = make()
    opt = rt.Adagrad([p], lr=0.1)
    values = torch.ones(1, 3, dtype=p.dtype)
    p.grad = torch.sparse_coo_tensor([[0]], values, (6, 3))
    before = p.detach().clone()
    with pytest.raises(error, match=match):
        opt.step()
    assert torch.equal(p.detach(), before) and float(opt.state[p]["step"]) == 0


def test_sparse_gradients_of_gpu_parameters_point_to_the_cuda_row_kernels(monkeypatch):
    opt, params = _two_groups(rt.RMSprop)
    _Meta(monkeypatch)(opt, params)
    with pytest.raises(TypeError, match=r"rmsprop_nb.torch steps sparse gradients of CPU "
                                        r"parameters only\. On the GPU, call "
                                        r"rmsprop_nb.cuda.rmsprop_step_rows"):
        opt.step()


def test_values_sharing_memory_with_a_parameter_are_refused():
    opt, params = _two_groups(rt.Adagrad)
    shared = torch.sparse_coo_tensor([[0]], params[0].detach()[:3].view(1, 3), (6, 3))
    params[1].grad = shared
    snapshot = _snapshot(opt, params)
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['params'\]\[0\] shares memory "
                                         r"with a parameter"):
        opt.step()
    _assert_same(opt, params, snapshot)


def test_nonfinite_skip_skips_sparse_steps_too():
    opt, params = _two_groups(rt.RMSprop, nonfinite="skip")
    params[1].grad = torch.sparse_coo_tensor([[2]], [[float("inf"), 0.0, 1.0]], (6, 3),
                                             dtype=torch.float64)
    snapshot = _snapshot(opt, params)
    opt.step()
    _assert_same(opt, params, snapshot)
    assert opt.skipped_steps == 1


def test_lazy_is_a_key_of_each_group():
    """One group lazy with momentum, one exact: each steps its table in its own mode; a
    lazy that is not a bool is refused like any flag."""
    gen = torch.Generator().manual_seed(23)
    a, b = (torch.randn(8, 2, generator=gen, dtype=torch.float64, requires_grad=True)
            for _ in range(2))
    opt = rt.RMSprop([{"params": [a], "lazy": True, "momentum": 0.9}, {"params": [b]}],
                     lr=0.01, alpha=0.9)
    for p in (a, b):
        p.grad = torch.sparse_coo_tensor(
            [[1, 5]], torch.ones(2, 2, dtype=torch.float64), (8, 2))
    opt.step()
    assert "momentum_buffer" in opt.state[a] and a not in opt._lags and b in opt._lags
    with pytest.raises(TypeError, match=r"RMSprop: lazy must be True or False, got str"):
        rt.RMSprop([a], lazy="yes")
    with pytest.raises(TypeError, match=r"param_groups\[2\]\['lazy'\] must be True or False"):
        opt.add_param_group({"params": [torch.ones(2, requires_grad=True)], "lazy": 1.0})

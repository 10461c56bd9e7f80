"""The optimizers with row-sparse gradients (SparseGrad): the dense step's results (exact mode),
the lazy mode, parameter groups and schedules, checkpoints that resume bit for bit, the
nonfinite policies, and bad gradients that change nothing."""

import numpy as np
import pytest

from rmsprop_nb import AdaGrad, RMSProp, SparseGrad
from rmsprop_nb.kernels import PARALLEL_MIN_BYTES, rmsprop_step_rows

import reference


def batch(rng, n, k, width, dtype=np.float64):
    """A row-sparse gradient of a table of n rows: k rows (repeats likely), values in [-1, 1)."""
    rows = rng.integers(0, n, k)
    return SparseGrad(rows, rng.uniform(-1, 1, (k, width)).astype(dtype))


def tables(rng, dtype=np.float64, n=40, width=3):
    """An embedding table, a dense weight matrix and a bias."""
    return [rng.standard_normal((n, width)).astype(dtype), rng.standard_normal((5, 2)).astype(dtype),
            rng.standard_normal(2).astype(dtype)]


def dense_grads(rng, params):
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params[1:]]


def assert_close(a, b, steps=1):
    if a.dtype == np.float64:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_array_max_ulp(a, b, maxulp=4 * steps)


RMSPROP_EXACT = [dict(), dict(centered=True, eps_in_sqrt=False, maximize=True),
                 dict(gamma=0.99, eps=1e-8)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opts", RMSPROP_EXACT, ids=lambda o: ",".join(o) or "plain")
def test_exact_rmsprop_with_sparse_gradients_is_the_dense_optimizer(dtype, opts):
    """Sparse steps, then the state read every 10 steps (a catch-up), then a dense step of the
    table now and then: the same parameters and state as dense gradients throughout."""
    rng = np.random.default_rng(0)
    params = tables(rng, dtype)
    sparse, dense = RMSProp([p.copy() for p in params], lr=0.01, **opts), \
        RMSProp([p.copy() for p in params], lr=0.01, **opts)
    steps = 40
    for t in range(1, steps + 1):
        g = batch(rng, 40, int(rng.integers(0, 8)), 3, dtype)
        rest = dense_grads(rng, params)
        sparse.step([g if t % 7 else g.to_dense(40)] + rest)  # every 7th step dense
        dense.step([g.to_dense(40)] + rest)
        if t % 10 == 0:
            sparse.state_dict()
    a, b = sparse.state_dict(), dense.state_dict()
    for key in a["state"]:
        for x, y in zip(a["state"][key], b["state"][key]):
            assert_close(x, y, steps)
    for x, y in zip(sparse.params, dense.params):
        assert_close(x, y, steps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adagrad_with_sparse_gradients_is_the_dense_optimizer_bit_for_bit(dtype):
    rng = np.random.default_rng(1)
    params = tables(rng, dtype)
    kw = dict(lr=0.1, lr_decay=0.05, eps=1e-10, eps_in_sqrt=False, initial_accumulator_value=0.1)
    sparse = AdaGrad([{"params": [p.copy() for p in params[:2]]}], **kw)
    dense = AdaGrad([{"params": [p.copy() for p in params[:2]]}], **kw)
    for t in range(1, 21):
        if t == 6:  # a group added mid-run: its own step count for lr_decay
            for opt in (sparse, dense):
                opt.add_param_group({"params": [params[2].copy()], "lr": 0.05})
        g = batch(rng, 40, 6, 3, dtype)
        rest = dense_grads(rng, params)[:1 if t < 6 else 2]
        sparse.step([g] + rest)
        dense.step([g.to_dense(40)] + rest)
    for x, y in zip(sparse.params, dense.params):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(sparse.state_dict()["state"]["sum"], dense.state_dict()["state"]["sum"]):
        np.testing.assert_array_equal(x, y)


def test_groups_and_schedules_reach_the_row_kernels():
    rng = np.random.default_rng(2)
    E1, E2 = rng.standard_normal((30, 2)), rng.standard_normal((30, 2))
    schedule = lambda t: 0.05 / t  # noqa: E731
    groups = lambda a, b: [{"params": [a], "lr": schedule}, {"params": [b], "gamma": 0.5}]  # noqa: E731
    sparse = RMSProp(groups(E1.copy(), E2.copy()), lr=0.01)
    dense = RMSProp(groups(E1.copy(), E2.copy()), lr=0.01)
    for t in range(1, 16):
        g1, g2 = batch(rng, 30, 4, 2), batch(rng, 30, 3, 2)
        if t == 8:  # a new gamma: rows catch up with the gamma of the steps they missed
            sparse.param_groups[1]["gamma"] = dense.param_groups[1]["gamma"] = 0.8
        sparse.step([g1, g2])
        dense.step([g1.to_dense(30), g2.to_dense(30)])
    a, b = sparse.state_dict(), dense.state_dict()
    for x, y in zip(sparse.params + a["state"]["square_avg"], dense.params + b["state"]["square_avg"]):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("opts", [dict(), dict(momentum=0.9, weight_decay=0.01, centered=True)],
                         ids=["plain", "momentum, weight decay, centered"])
def test_lazy_rmsprop_updates_the_rows_present_as_the_lazy_kernel_does(opts):
    rng = np.random.default_rng(3)
    E = rng.standard_normal((20, 3))
    opt = RMSProp([E.copy()], lr=0.01, lazy=True, **opts)
    x, s = E.copy(), np.zeros_like(E)
    buf = np.zeros_like(E) if opts.get("momentum") else None
    gavg = np.zeros_like(E) if opts.get("centered") else None
    for _ in range(10):
        g = batch(rng, 20, 5, 3)
        opt.step([g])
        rmsprop_step_rows(x, g.rows, g.values, s, 0.01, 0.9, 1e-6, momentum_buffer=buf,
                          grad_avg=gavg, lazy=True, **opts)
    np.testing.assert_array_equal(opt.params[0], x)
    np.testing.assert_array_equal(opt.state_dict()["state"]["square_avg"][0], s)


def test_a_parameter_large_enough_takes_the_parallel_row_loops():
    rng = np.random.default_rng(4)
    n, width = 3000, 32
    k = PARALLEL_MIN_BYTES // (width * 4) + 100
    E = rng.standard_normal((n, width)).astype(np.float32)
    sparse, dense = RMSProp([E.copy()], lr=0.01), RMSProp([E.copy()], lr=0.01)
    for _ in range(3):
        g = batch(rng, n, k, width, np.float32)
        assert g.values.nbytes >= PARALLEL_MIN_BYTES
        sparse.step([g])
        dense.step([g.to_dense(n)])
    np.testing.assert_array_max_ulp(sparse.params[0], dense.params[0], maxulp=12)


# ---------------------------------------------------------------------------------------------
# Checkpoints: the state is brought up to date when read, and a resumed run continues bit for bit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["state_dict", "save"])
@pytest.mark.parametrize("cls, kw", [(RMSProp, dict(centered=True)), (RMSProp, dict(lazy=True)),
                                     (AdaGrad, dict(lr_decay=0.1))],
                         ids=["rmsprop exact", "rmsprop lazy", "adagrad"])
def test_resume_mid_run_continues_bit_for_bit(tmp_path, how, cls, kw):
    rng = np.random.default_rng(5)
    params = tables(rng)
    grads = [[batch(rng, 40, 5, 3)] + dense_grads(rng, params) for _ in range(12)]
    first = cls([p.copy() for p in params], lr=0.02, **kw)
    for g in grads[:6]:
        first.step(g)
    if how == "save":
        first.save(tmp_path / "opt.npz")
    else:
        saved = first.state_dict()
    second = cls([p.copy() for p in first.params], lr=0.02, **kw)
    if how == "save":
        second.load(tmp_path / "opt.npz")
    else:
        second.load_state_dict(saved)
    for g in grads[6:]:
        first.step(g)
        second.step(g)
    for a, b in zip(first.params, second.params):
        np.testing.assert_array_equal(a, b)
    sa, sb = first.state_dict()["state"], second.state_dict()["state"]
    for key in sa:
        for a, b in zip(sa[key], sb[key]):
            if a is not None:
                np.testing.assert_array_equal(a, b)


def test_state_dict_brings_every_row_up_to_date_and_keeps_no_bookkeeping():
    rng = np.random.default_rng(6)
    E = rng.standard_normal((10, 2))
    opt = RMSProp([E], lr=0.1, gamma=0.5)
    opt.step([SparseGrad(np.array([0, 1]), np.ones((2, 2)))])      # step 1: rows 0, 1
    opt.step([SparseGrad(np.array([1]), np.ones((1, 2)))])         # step 2: row 1
    state = opt.state_dict()
    assert set(state["state"]) == {"square_avg"}
    np.testing.assert_allclose(state["state"]["square_avg"][0][:3, 0],
                               [0.25, 0.75, 0.0])  # row 0: 0.5 decayed once; row 1: 0.25 + 0.5
    assert not opt._row_steps  # read: nothing left to catch up


def test_loading_a_state_drops_the_bookkeeping_of_the_state_it_replaces():
    rng = np.random.default_rng(7)
    E = rng.standard_normal((10, 2))
    source = RMSProp([E.copy()], lr=0.1)
    target = RMSProp([E.copy()], lr=0.1)
    target.step([SparseGrad(np.array([3]), np.ones((1, 2)))])  # pending bookkeeping
    source.step([np.zeros((10, 2))])
    target.load_state_dict(source.state_dict())
    g = SparseGrad(np.array([4]), np.ones((1, 2)))
    target.step([g])
    source.step([g])
    np.testing.assert_array_equal(target.state_dict()["state"]["square_avg"][0],
                                  source.state_dict()["state"]["square_avg"][0])


# ---------------------------------------------------------------------------------------------
# The nonfinite policies scan the values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [RMSProp, AdaGrad])
def test_nonfinite_policies_scan_the_values_of_sparse_gradients(cls):
    rng = np.random.default_rng(8)
    params = tables(rng)
    bad = batch(rng, 40, 4, 3)
    bad.values[2, 1] = np.inf
    for policy in ("raise", "skip"):
        opt = cls([p.copy() for p in params], nonfinite=policy)
        before = [p.copy() for p in opt.params]
        grads = [bad] + dense_grads(rng, params)
        if policy == "raise":
            with pytest.raises(FloatingPointError, match=r"grads\[0\] contains NaN or infinity"):
                opt.step(grads)
        else:
            opt.step(grads)
            assert opt.skipped_steps == 1
        assert opt.step_count == 0
        for a, b in zip(opt.params, before):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Bad gradients: a clear error naming the gradient, nothing changed
# ---------------------------------------------------------------------------------------------

BAD = [
    ("rows out of range", lambda E: SparseGrad(np.array([1, 40]), np.ones((2, 3))), ValueError,
     r"RMSProp.step: grads\[0\].rows\[1\] is 40, out of range for params\[0\] with 40 rows"),
    ("negative row", lambda E: SparseGrad(np.array([-1]), np.ones((1, 3))), ValueError,
     r"grads\[0\].rows\[0\] is -1, out of range"),
    ("values of another width", lambda E: SparseGrad(np.array([1]), np.ones((1, 4))), ValueError,
     r"grads\[0\].values has shape \(1, 4\) but params\[0\]\[rows\] has shape \(1, 3\)"),
    ("values float32", lambda E: SparseGrad(np.array([1]), np.ones((1, 3), np.float32)),
     TypeError, r"grads\[0\].values has dtype float32 but params\[0\] has dtype float64"),
    ("values Fortran", lambda E: SparseGrad(np.array([1, 2, 3]), np.asfortranarray(np.ones((3, 3)))),
     ValueError, r"grads\[0\].values is in F order but params\[0\] is in C order"),
    ("rows float after construction", lambda E: _with_rows(np.array([1.0])), TypeError,
     r"grads\[0\].rows must be an array of integers"),
    ("values aliasing the table", lambda E: SparseGrad(np.array([0]), E[:1]), ValueError,
     r"grads\[0\] shares memory with params\[0\]"),
]


def _with_rows(rows):
    g = SparseGrad(np.array([1]), np.ones((1, 3)))
    g.rows = rows
    return g


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_sparse_gradients_change_nothing(case):
    _, make, exc, message = case
    rng = np.random.default_rng(9)
    params = tables(rng)
    opt = RMSProp(params, lr=0.1)
    opt.step([batch(rng, 40, 3, 3)] + dense_grads(rng, params))  # bookkeeping pending
    before = [p.copy() for p in params]
    state = opt.state_dict()
    with pytest.raises(exc, match=message):
        opt.step([make(params[0])] + dense_grads(rng, params))
    assert opt.step_count == 1
    for a, b in zip(params, before):
        np.testing.assert_array_equal(a, b)
    for key, arrays in opt.state_dict()["state"].items():
        for a, b in zip(arrays, state["state"][key]):
            np.testing.assert_array_equal(a, b)


def test_a_sparse_gradient_for_a_fortran_or_0_d_parameter_is_refused():
    opt = AdaGrad([np.asfortranarray(np.ones((4, 3))), np.array(1.0)])
    with pytest.raises(ValueError, match=r"grads\[0\] is a SparseGrad, which needs a parameter "
                                         r"whose rows are contiguous"):
        opt.step([SparseGrad(np.array([1]), np.ones((1, 3))), np.array(0.5)])
    with pytest.raises(ValueError, match=r"grads\[1\] is a SparseGrad, which needs"):
        opt.step([np.asfortranarray(np.ones((4, 3))), SparseGrad(np.array([0]), np.ones(1))])
    np.testing.assert_array_equal(opt.params[0], 1.0)


@pytest.mark.parametrize("cls, kw, message", [
    (RMSProp, dict(momentum=0.9), "momentum is 0.9: momentum moves rows that have no gradient"),
    (RMSProp, dict(weight_decay=0.01),
     "weight_decay is 0.01: weight_decay moves rows that have no gradient"),
    (AdaGrad, dict(weight_decay=0.01),
     "weight_decay is 0.01: weight_decay moves rows that have no gradient"),
])
def test_options_that_move_absent_rows_need_lazy(cls, kw, message):
    E = np.ones((6, 2))
    g = SparseGrad(np.array([1]), np.ones((1, 2)))
    with pytest.raises(ValueError, match=message + ".*construct the optimizer with lazy=True"):
        cls([E], **kw).step([g])
    np.testing.assert_array_equal(E, 1.0)
    cls([E], lazy=True, **kw).step([g])  # lazy: the rows present only
    assert np.all(E[[0, 2, 3, 4, 5]] == 1.0) and np.all(E[1] < 1.0)


def test_lazy_must_be_a_flag():
    with pytest.raises(TypeError, match="RMSProp: lazy must be True or False, got int"):
        RMSProp([np.ones(3)], lazy=1)
    assert AdaGrad([np.ones(3)], lazy=True).lazy is True


def test_sparse_gradient_values_are_checked_once_constructed():
    with pytest.raises(ValueError, match=r"SparseGrad: values has shape \(2, 3\) but rows has 3 "
                                         "entries"):
        SparseGrad(np.array([0, 1, 2]), np.ones((2, 3)))
    with pytest.raises(TypeError, match="SparseGrad: rows must be an array of integers"):
        SparseGrad(np.array([0.5]), np.ones((1, 3)))
    rows, values = SparseGrad(np.array([2]), np.ones((1, 3)))
    assert rows.tolist() == [2] and values.shape == (1, 3)


def test_book_reference_on_the_rows_present():
    """AdaGrad on an embedding through the optimizer: the touched rows follow the book's
    per-element update (the NumPy oracle), the others do not move."""
    E = np.arange(12.0).reshape(6, 2)
    opt = AdaGrad([E], lr=0.3)
    g = SparseGrad(np.array([4, 1, 4]), np.array([[1.0, -2.0], [0.5, 0.5], [1.0, 0.0]]))
    expected = np.arange(12.0).reshape(6, 2)
    x4, _ = reference.adagrad(expected[4], np.array([2.0, -2.0]), np.zeros(2), 0.3, 1e-6)
    x1, _ = reference.adagrad(expected[1], np.array([0.5, 0.5]), np.zeros(2), 0.3, 1e-6)
    opt.step([g])
    expected[4], expected[1] = x4, x1
    np.testing.assert_allclose(E, expected, rtol=1e-15)

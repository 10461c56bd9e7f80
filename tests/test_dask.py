"""rmsprop_nb.dask on a loopback LocalCluster: bit-for-bit agreement with the single-process
optimizers, killed workers, bounded scheduler history with checkpoints, resuming on a new
cluster, deterministic data-parallel gradients, and bad input rejected before any task runs.

One cluster (2 worker processes, 1 thread each, Numba limited to 1 thread per worker, loopback
only) serves the module; a few tests start a second one. Skipped when dask or distributed is
missing (``pip install "rmsprop-nb[dask]"``).
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import rmsprop_nb  # noqa: E402
import rmsprop_nb.dask as rd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def start_cluster(n_workers=2):
    # env= is applied in a worker after it has imported the parent's main module: fine here
    # (pytest's main module does not import Numba; see the docs page for scripts). The HTTP
    # server is bound to loopback too (with dashboard_address=None it takes port 8787, on every
    # interface when processes=False).
    cluster = distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0", env={"NUMBA_NUM_THREADS": "1"},
    )
    client = distributed.Client(cluster)
    client.run(_warm_up)
    return cluster, client


def _warm_up():
    """Load the kernels of every specialization the tests use from Numba's disk cache."""
    for dtype in (np.float32, np.float64):
        for opts in ({}, {"momentum": 0.5}, {"centered": True},
                     {"momentum": 0.5, "centered": True}):
            x = da.ones(3, dtype=dtype, chunks=3)
            opt = rd.RMSProp([x], **opts)
            with dask.config.set(scheduler="synchronous"):
                opt.step([x])
        opt = rd.AdaGrad([x])
        with dask.config.set(scheduler="synchronous"):
            opt.step([x])


@pytest.fixture(scope="module")
def client():
    cluster, client = start_cluster()
    yield client
    client.close()
    cluster.close()


def scheduler_tasks(client):
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))


# -- a problem with a closed-form gradient, the same in NumPy and in Dask -------------------------

SHAPES = [((12, 10), (5, 4), np.float32), ((23,), (7,), np.float64)]  # shape, chunks, dtype


def problem(seed=0):
    rng = np.random.default_rng(seed)
    x0 = [rng.standard_normal(s).astype(d) for s, _, d in SHAPES]
    a = [rng.standard_normal(s).astype(d) for s, _, d in SHAPES]
    c = [rng.standard_normal(s).astype(d) for s, _, d in SHAPES]
    return x0, a, c


def grad(x, a, c, t):
    """Element-wise (+, -, * are correctly rounded): the same bits in NumPy and per chunk."""
    return x * a - c + x.dtype.type(0.01 * t)


def to_dask(arrays):
    return [da.from_array(v, chunks=ch) for v, (_, ch, _) in zip(arrays, SHAPES)]


class Pair:
    """The single-process optimizer and the Dask one, fed the same gradients."""

    def __init__(self, name, opts, seed=0, **dask_opts):
        self.x0, self.a, self.c = problem(seed)
        self.local = getattr(rmsprop_nb, name)([v.copy() for v in self.x0], **opts)
        self.opt = getattr(rd, name)(to_dask(self.x0), **opts, **dask_opts)
        self.da_a, self.da_c = to_dask(self.a), to_dask(self.c)

    def local_step(self, t):
        self.local.step([grad(p, a, c, t) for p, a, c in zip(self.local.params, self.a, self.c)])

    def dask_step(self, t):
        self.opt.step([grad(p, a, c, t) for p, a, c in zip(self.opt.params, self.da_a, self.da_c)])

    def steps(self, first, last, each=None):
        for t in range(first, last + 1):
            self.local_step(t)
            self.dask_step(t)
            if each:
                each(t)

    def assert_same_bits(self):
        got = dask.compute(*self.opt.params)
        for g, want in zip(got, self.local.params):
            assert g.dtype == want.dtype and g.shape == want.shape
            assert np.array_equal(g.view(np.uint8), want.view(np.uint8))
        assert_same_state(self.opt.state_dict(), self.local.state_dict())


def assert_same_state(got, want):
    assert {k: v for k, v in got.items() if k != "state"} == {
        k: v for k, v in want.items() if k != "state"
    }
    assert list(got["state"]) == list(want["state"])
    for name in want["state"]:
        for g, w in zip(got["state"][name], want["state"][name], strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape
            assert np.array_equal(g.view(np.uint8), w.view(np.uint8)), name


# -- bit for bit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("opts", [
    dict(),
    dict(lr=0.02, gamma=0.99, eps=1e-8, eps_in_sqrt=False, momentum=0.9),
    dict(centered=True, weight_decay=0.1),
    dict(maximize=True, momentum=0.5, centered=True, eps_in_sqrt=False),
], ids=str)
def test_rmsprop_equals_the_single_process_optimizer_bit_for_bit(client, opts):
    pair = Pair("RMSProp", opts)

    def schedule(t):  # hyperparameters changed between steps reach both the same way
        if t == 12:
            for o in (pair.local, pair.opt):
                o.lr *= 0.5
                o.weight_decay = 0.05

    pair.steps(1, 25, schedule)
    assert pair.opt.step_count == 25
    pair.assert_same_bits()


@pytest.mark.parametrize("opts", [
    dict(),
    dict(lr=0.1, eps=1e-10, eps_in_sqrt=False, initial_accumulator_value=0.1, lr_decay=0.01),
    dict(weight_decay=0.1, maximize=True, lr_decay=0.5),
], ids=str)
def test_adagrad_equals_the_single_process_optimizer_bit_for_bit(client, opts):
    pair = Pair("AdaGrad", opts)
    pair.steps(1, 25)
    pair.assert_same_bits()


def test_numpy_gradients_and_other_chunks_give_the_same_bits(client):
    pair = Pair("RMSProp", dict(momentum=0.9))
    for t in range(1, 21):
        pair.local_step(t)
        params = dask.compute(*pair.opt.params)
        grads = [grad(p, a, c, t) for p, a, c in zip(params, pair.a, pair.c)]
        # NumPy for one, a Dask array in other chunks (rechunked by the step) for the other
        pair.opt.step([grads[0], da.from_array(grads[1], chunks=5)])
    pair.assert_same_bits()


def test_functional_core_equals_the_optimizer(client):
    x0, a, c = problem()
    x = to_dask(x0)[0]
    opt = rd.RMSProp([x], lr=0.05, momentum=0.9, centered=True)
    packed = da.stack([x] + [da.zeros_like(x)] * 3).rechunk({0: -1})
    for t in range(1, 21):
        g = grad(packed[0], a[0], c[0], t)
        packed = rd.rmsprop_update(packed, g, lr=0.05, momentum=0.9, centered=True).persist()
        opt.step([grad(opt.params[0], a[0], c[0], t)])
    got, want = dask.compute(packed, opt.packed[0])
    assert np.array_equal(got, want)


# -- nonfinite policies --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["RMSProp", "AdaGrad"])
def test_nonfinite_skip_skips_the_same_steps_as_the_single_process_optimizer(client, name):
    opts = dict(nonfinite="skip", lr_decay=0.1) if name == "AdaGrad" else dict(nonfinite="skip")
    pair = Pair(name, opts)
    bad = {4, 9}

    def step(o, params, a, c, t):
        grads = [grad(p, ai, ci, t) for p, ai, ci in zip(params, a, c)]
        if t in bad:
            grads[1] = grads[1] * np.nan
        o.step(grads)

    for t in range(1, 16):
        step(pair.local, pair.local.params, pair.a, pair.c, t)
        step(pair.opt, pair.opt.params, pair.da_a, pair.da_c, t)
    assert pair.opt.skipped_steps == 2 and pair.opt.step_count == 13
    pair.assert_same_bits()


def test_nonfinite_raise_changes_nothing(client):
    pair = Pair("RMSProp", dict(nonfinite="raise"))
    pair.steps(1, 3)
    before = pair.opt.packed
    grads = [grad(p, a, c, 4) for p, a, c in zip(pair.opt.params, pair.da_a, pair.da_c)]
    grads[0] = da.where(grads[0] > 0, np.inf, grads[0])
    with pytest.raises(FloatingPointError, match=r"RMSProp.step: grads\[0\] contains NaN"):
        pair.opt.step(grads)
    assert pair.opt.step_count == 3
    assert [p.name for p in pair.opt.packed] == [p.name for p in before]
    pair.assert_same_bits()


# -- killed workers ----------------------------------------------------------------------------


def kill_a_worker(client):
    pids = client.run(os.getpid)
    address = sorted(pids)[0]
    os.kill(pids[address], signal.SIGKILL)
    return address


def wait_for_two_workers(client, gone):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        if len(workers) == 2 and gone not in workers:
            return
        time.sleep(0.1)
    raise AssertionError(f"the cluster did not get back to two workers: {list(workers)}")


def test_a_worker_killed_between_steps_costs_no_bit(client):
    pair = Pair("RMSProp", dict(momentum=0.9, centered=True))
    pair.steps(1, 10)
    distributed.wait(pair.opt.packed)
    gone = kill_a_worker(client)
    pair.steps(11, 20)
    pair.assert_same_bits()  # the lost chunks were recomputed from their history
    wait_for_two_workers(client, gone)


def test_a_worker_killed_during_a_step_costs_no_bit(client, tmp_path):
    # Larger chunks, so that the step is still running when the worker dies; a checkpoint
    # every 5 steps, so that the lost chunks are recomputed from its files.
    x = np.random.default_rng(1).standard_normal(400_000).astype(np.float32)
    local = rmsprop_nb.AdaGrad([x.copy()], lr=0.1)
    opt = rd.AdaGrad([da.from_array(x, chunks=100_000)], lr=0.1, checkpoint_every=5,
                     checkpoint_dir=str(tmp_path))
    gone = None
    for t in range(1, 16):
        local.step([local.params[0] * np.float32(0.5) - np.float32(t)])
        opt.step([opt.params[0] * np.float32(0.5) - np.float32(t)])
        if t == 8:
            gone = kill_a_worker(client)  # the step's tasks were just submitted
    assert np.array_equal(opt.params[0].compute(), local.params[0])
    assert_same_state(opt.state_dict(), local.state_dict())
    wait_for_two_workers(client, gone)


# -- bounded history -----------------------------------------------------------------------------


def test_checkpoints_keep_the_schedulers_task_count_bounded(client, tmp_path):
    def counts(steps, **kw):
        x = to_dask(problem()[0])[:1]
        opt = rd.RMSProp(x, lr=0.01, **kw)
        seen = []
        for t in range(1, steps + 1):
            opt.step([opt.params[0] * np.float32(0.5) - np.float32(0.01 * t)])
            if t % 10 == 0:
                distributed.wait(opt.packed)
                seen.append(scheduler_tasks(client))
        return opt, seen

    start = scheduler_tasks(client)
    without = counts(40)[1]  # (the optimizer is dropped: its history with it)
    assert without[-1] - without[0] >= 30 * 9  # a record per chunk and per step, never freed
    opt, bounded = counts(200, checkpoint_every=10, checkpoint_dir=str(tmp_path))
    assert max(bounded) - start < 200, bounded
    assert max(bounded[10:]) <= max(bounded[:10]) + 20, bounded  # no growth over 200 steps
    assert sorted(os.listdir(tmp_path)) == ["step-000000200"]  # older checkpoints deleted
    local = rmsprop_nb.RMSProp([problem()[0][0]], lr=0.01)
    for t in range(1, 201):
        local.step([local.params[0] * np.float32(0.5) - np.float32(0.01 * t)])
    assert np.array_equal(opt.params[0].compute(), local.params[0])


# -- moving a state ----------------------------------------------------------------------------


def test_state_moves_between_the_single_process_and_the_dask_optimizer(client):
    pair = Pair("RMSProp", dict(momentum=0.9, centered=True))
    pair.steps(1, 5)
    # single process -> Dask: a new Dask optimizer continues from the local state
    x = to_dask([p.copy() for p in pair.local.params])
    other = rd.RMSProp(x, lr=0.5, momentum=0.1, centered=True)
    other.lr = -1.0  # not checked by load_state_dict, which replaces it (as on one machine)
    other.load_state_dict(pair.local.state_dict())
    assert other.lr == pair.local.lr and other.step_count == 5
    for t in range(6, 11):
        pair.local_step(t)
        other.step([grad(p, a, c, t) for p, a, c in zip(other.params, pair.da_a, pair.da_c)])
    # Dask -> single process
    back = rmsprop_nb.RMSProp([p.compute() for p in other.params], momentum=0.5, centered=True)
    back.load_state_dict(other.state_dict())
    pair.local.step([grad(p, a, c, 11) for p, a, c in zip(pair.local.params, pair.a, pair.c)])
    back.step([grad(p, a, c, 11) for p, a, c in zip(back.params, pair.a, pair.c)])
    for p, q in zip(back.params, pair.local.params):
        assert np.array_equal(p, q)
    assert_same_state(back.state_dict(), pair.local.state_dict())


def test_resume_on_a_new_cluster_is_bit_for_bit(client, tmp_path):
    pair = Pair("AdaGrad", dict(lr_decay=0.1, initial_accumulator_value=0.2))
    pair.steps(1, 10)
    state = pair.opt.state_dict()
    params = dask.compute(*pair.opt.params)
    pair.opt.save(str(tmp_path / "ckpt"))
    pair.steps(11, 20)
    want = pair.local

    cluster, other = start_cluster()
    try:
        with other.as_current():
            # from a state dict and the parameters
            a = rd.AdaGrad(to_dask(params))
            a.load_state_dict(state)
            # from the checkpoint folder alone (placeholders for the parameters)
            b = rd.AdaGrad([da.zeros(s, dtype=d, chunks=-1) for s, _, d in SHAPES])
            assert b.load(str(tmp_path / "ckpt")) == str(tmp_path / "ckpt")
            assert b.step_count == 10 and b.lr_decay == 0.1
            da_a, da_c = to_dask(pair.a), to_dask(pair.c)
            for t in range(11, 21):
                for o in (a, b):
                    o.step([grad(p, ai, ci, t) for p, ai, ci in zip(o.params, da_a, da_c)])
            for o in (a, b):
                for p, q in zip(dask.compute(*o.params), want.params):
                    assert np.array_equal(p, q)
                assert_same_state(o.state_dict(), want.state_dict())
    finally:
        other.close()
        cluster.close()


def test_a_folder_without_manifest_is_not_a_checkpoint(client, tmp_path):
    opt = rd.RMSProp(to_dask(problem()[0]), checkpoint_every=2, checkpoint_dir=str(tmp_path))
    for _ in range(4):
        opt.step([p * 0.5 for p in opt.params])
    (tmp_path / "step-000000006" / "0").mkdir(parents=True)  # an interrupted save
    other = rd.RMSProp(to_dask(problem()[0]))
    assert other.load(str(tmp_path)).endswith("step-000000004")
    assert other.step_count == 4
    with pytest.raises(FileNotFoundError, match="no rmsprop_nb.dask checkpoint"):
        other.load(str(tmp_path / "step-000000006"))
    with pytest.raises(ValueError, match="does not fit: RMSProp.load_state_dict: centered cannot be changed"):
        rd.RMSProp(to_dask(problem()[0]), centered=True).load(str(tmp_path))
    with pytest.raises(ValueError, match="shapes and dtypes"):
        rd.RMSProp(to_dask(problem()[0])[:1]).load(str(tmp_path))


def test_checkpoints_go_to_any_fsspec_url():
    # fsspec's in-memory file system lives in this process: the synchronous scheduler.
    fsspec = pytest.importorskip("fsspec")
    with dask.config.set(scheduler="synchronous"):
        pair = Pair("RMSProp", dict(centered=True), checkpoint_every=3,
                    checkpoint_dir="memory://rmsprop-nb-test/run")
        pair.steps(1, 7)
        assert fsspec.filesystem("memory").ls("/rmsprop-nb-test/run", detail=False) == [
            "/rmsprop-nb-test/run/step-000000006"
        ]
        other = rd.RMSProp(to_dask(problem()[0]), centered=True)
        assert other.load("memory://rmsprop-nb-test/run").endswith("step-000000006")
        pair.opt = other
        pair.local = rmsprop_nb.RMSProp([p.copy() for p in pair.x0], centered=True)
        for t in range(1, 7):  # the single-process optimizer catches up with the checkpoint
            pair.local_step(t)
        pair.local_step(7)
        pair.dask_step(7)
        pair.assert_same_bits()
    fsspec.filesystem("memory").rm("/rmsprop-nb-test", recursive=True)


# -- data-parallel gradients ---------------------------------------------------------------------


def least_squares(Xb, yb, w):
    return Xb.T @ (Xb @ w - yb)


def test_row_block_sum_is_deterministic_and_sums_in_block_order(client):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4000, 16)).astype(np.float32)
    y = rng.standard_normal(4000).astype(np.float32)
    w = rng.standard_normal(16).astype(np.float32)
    dX, dy = da.from_array(X, chunks=(500, 16)), da.from_array(y, chunks=500)
    dX, dy = client.persist([dX, dy])
    first = rd.row_block_sum(least_squares, dX, dy, da.from_array(w)).compute()
    # a second run, after the blocks moved to other workers
    client.rebalance()
    again = rd.row_block_sum(least_squares, dX, dy, w).compute()
    assert np.array_equal(first.view(np.uint8), again.view(np.uint8))
    # the same as a NumPy sum of the blocks' terms from the first to the last
    terms = [least_squares(X[i : i + 500], y[i : i + 500], w) for i in range(0, 4000, 500)]
    total = terms[0].copy()
    for term in terms[1:]:
        total += term
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first, total)


# -- the buffer pool of the tasks ----------------------------------------------------------------


def test_the_buffer_pool_reuses_only_memory_that_nothing_references():
    pool = rd._BufferPool()
    shape = (2, pool.min_bytes // 8 + 1)  # above the pool's threshold, float32
    a = pool.empty(shape, np.float32)
    view, memory = a[1, 10:], memoryview(a[0])
    address = a.__array_interface__["data"][0]
    del a
    b = pool.empty(shape, np.float32)  # a's buffer is still referenced by its views
    assert not np.shares_memory(b, view) and not np.shares_memory(b, np.asarray(memory))
    del view, memory
    c = pool.empty(shape, np.float32)  # now it is free
    assert c.__array_interface__["data"][0] == address
    assert not np.shares_memory(b, c)
    del b, c
    for _ in range(5):  # spares are bounded: nothing in use, one kept
        pool.empty(shape, np.float32)
    assert sum(len(v) for v in pool._buffers.values()) <= 2


# -- bad input -----------------------------------------------------------------------------------


def _no_task_may_run(*args, **kwargs):
    raise AssertionError("a task was submitted")


def single_process_error(fn):
    with pytest.raises((TypeError, ValueError)) as info:
        fn()
    return type(info.value), str(info.value)


@pytest.mark.parametrize("name, kwargs", [
    ("RMSProp", dict(lr=-1.0)), ("RMSProp", dict(gamma=1.0)), ("RMSProp", dict(eps="1")),
    ("RMSProp", dict(centered=1)), ("RMSProp", dict(nonfinite="ignore")),
    ("AdaGrad", dict(lr_decay=float("nan"))), ("AdaGrad", dict(initial_accumulator_value=-1)),
])
def test_bad_hyperparameters_raise_the_single_process_error_before_any_task(name, kwargs):
    want = single_process_error(lambda: getattr(rmsprop_nb, name)([np.zeros(3)], **kwargs))
    with dask.config.set(scheduler=_no_task_may_run):
        got = single_process_error(lambda: getattr(rd, name)([da.zeros(3)], **kwargs))
    assert got == want


def test_bad_steps_raise_the_single_process_error_before_any_task(client):
    local = rmsprop_nb.RMSProp([np.zeros((4, 3), np.float32)])
    opt = rd.RMSProp([da.zeros((4, 3), dtype=np.float32, chunks=2)])
    cases = [
        lambda o, z: o.step([z, z]),                                    # number of gradients
        lambda o, z: o.step([z[:3]]),                                   # shape
        lambda o, z: o.step([z.astype(np.float64)]),                    # dtype
        lambda o, z: o.step([z.astype(np.int64)]),                      # not float
        lambda o, z: setattr(o, "lr", -0.5) or o.step([z]),             # lr changed
        lambda o, z: setattr(o, "lr", "0.1") or o.step([z]),            # lr of the wrong type
        lambda o, z: setattr(o, "momentum", 0.9) or o.step([z]),        # momentum switched on
        lambda o, z: setattr(o, "centered", True) or o.step([z]),       # centered changed
    ]
    for case in cases:
        want = single_process_error(lambda: case(local, np.zeros((4, 3), np.float32)))
        local.lr, local.momentum, local.centered = 0.01, 0.0, False
        with dask.config.set(scheduler=_no_task_may_run):
            got = single_process_error(
                lambda: case(opt, da.zeros((4, 3), dtype=np.float32, chunks=2))
            )
        opt.lr, opt.momentum, opt.centered = 0.01, 0.0, False
        assert got == want
    assert opt.step_count == 0


def test_bad_states_raise_the_single_process_error_and_change_nothing():
    good = rmsprop_nb.RMSProp([np.zeros(10, np.float32)], lr=0.5).state_dict()
    bad_states = [
        {k: v for k, v in good.items() if k != "state"},
        {**good, "algorithm": "AdaGrad"},
        {**good, "step": -1},
        {**good, "hyperparams": {**good["hyperparams"], "lr": -1.0}},
        {**good, "hyperparams": {**good["hyperparams"], "momentum": 0.9}},
        {**good, "state": {**good["state"], "momentum_buffer": good["state"]["square_avg"]}},
        {**good, "state": {"square_avg": good["state"]["square_avg"] * 2}},
        {**good, "state": {"square_avg": [np.zeros(9, np.float32)]}},
        {**good, "state": {"square_avg": [np.zeros(10)]}},
        "not a dict",
    ]
    local = rmsprop_nb.RMSProp([np.zeros(10, np.float32)])
    with dask.config.set(scheduler="synchronous"):
        opt = rd.RMSProp([da.zeros(10, dtype=np.float32, chunks=5)])
    for state in bad_states:
        want = single_process_error(lambda: local.load_state_dict(state))
        with dask.config.set(scheduler=_no_task_may_run):
            assert single_process_error(lambda: opt.load_state_dict(state)) == want
    assert opt.lr == 0.01 and opt.step_count == 0


def test_bad_arrays_raise_before_any_task(client):
    x = da.zeros(10, chunks=5)
    unknown = x[x >= 0]  # the same values, chunk sizes not known
    with dask.config.set(scheduler=_no_task_may_run):
        with pytest.raises(TypeError, match=r"params\[0\] must be a dask.array.Array, got ndarray"):
            rd.RMSProp([np.zeros(3)])
        with pytest.raises(TypeError, match=r"params\[0\] must have dtype float32 or float64, got int64"):
            rd.AdaGrad([da.zeros(3, dtype=np.int64)])
        with pytest.raises(ValueError, match=r"params\[0\] has unknown chunk sizes"):
            rd.RMSProp([da.zeros(10, chunks=5)[da.zeros(10, chunks=5) == 0]])
        with pytest.raises(ValueError, match="checkpoint_every needs a checkpoint_dir"):
            rd.RMSProp([x], checkpoint_every=5)
        with pytest.raises(ValueError, match="checkpoint_every must be None or an integer"):
            rd.RMSProp([x], checkpoint_every=0, checkpoint_dir="somewhere")
    opt = rd.RMSProp([x])
    with dask.config.set(scheduler=_no_task_may_run):
        with pytest.raises(ValueError, match=r"grads\[0\] has unknown chunk sizes, so it cannot be aligned"):
            opt.step([unknown])
        with pytest.raises(TypeError, match=r"grads\[0\] must be a dask.array.Array or a numpy.ndarray, got list"):
            opt.step([[0.0] * 10])
        with pytest.raises(TypeError, match="grads must be a list with one gradient per parameter"):
            opt.step(x)
        with pytest.raises(ValueError, match=r"square_avg\[0\] has dtype float32 and shape \(10,\)"):
            opt.load_state_dict({**rmsprop_nb.RMSProp([np.zeros(10, np.float32)]).state_dict()})
        with pytest.raises(ValueError, match="packed must have shape"):
            rd.rmsprop_update(da.stack([x, x]), x, momentum=0.9)
        with pytest.raises(ValueError, match="rechunk grad like packed"):
            rd.adagrad_update(da.stack([x, x]).rechunk({0: -1}), x.rechunk(2), step=1)
        with pytest.raises(ValueError, match="X has 10 rows but y has 9"):
            rd.row_block_sum(least_squares, da.zeros((10, 2)), da.zeros(9), np.zeros(2))
        with pytest.raises(TypeError, match="y must be a dask.array.Array, got ndarray"):
            rd.row_block_sum(least_squares, da.zeros((10, 2)), np.zeros(10), np.zeros(2))
    assert opt.step_count == 0


def test_one_thread_at_a_time():
    import threading

    with dask.config.set(scheduler="synchronous"):
        opt = rd.RMSProp([da.zeros(10, chunks=5)])
    started, release = threading.Event(), threading.Event()

    def slow_gradient(x):
        if x.size:  # (not for the zero-size array dask may pass to learn the output type)
            started.set()
            release.wait(10)
        return x

    g = da.zeros(10, chunks=5).map_blocks(slow_gradient, meta=np.empty(0))
    with dask.config.set(scheduler="synchronous"):
        worker = threading.Thread(target=opt.step, args=([g],))
        opt.nonfinite = "raise"  # the step computes its reduction in the worker thread
        worker.start()
        assert started.wait(10)
        with pytest.raises(RuntimeError, match="RMSProp.step: this optimizer is being used by another thread"):
            opt.step([da.zeros(10, chunks=5)])
        release.set()
        worker.join(10)
    assert opt.step_count == 1


# -- the package around it -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["RMSProp", "AdaGrad"])
def test_same_hyperparameters_and_defaults_as_the_single_process_class(name):
    local = inspect.signature(getattr(rmsprop_nb, name)).parameters
    # lazy: what row-sparse gradients (SparseGrad) do; the Dask optimizers take dense chunks.
    local = {k: v for k, v in local.items() if k != "lazy"}
    mine = inspect.signature(getattr(rd, name)).parameters
    assert list(mine)[: len(local)] == list(local)
    for k in local:
        assert (mine[k].default, mine[k].kind) == (local[k].default, local[k].kind), k
    assert list(mine)[len(local):] == ["checkpoint_every", "checkpoint_dir"]


def checkout_env():
    """The environment of a subprocess that imports rmsprop_nb from this checkout."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)


def test_import_rmsprop_nb_does_not_import_dask():
    code = "import sys, rmsprop_nb; sys.exit('dask' in sys.modules or 'distributed' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=checkout_env(), timeout=120).returncode == 0


def test_docstring_examples_run():
    code = (
        "import doctest, sys, rmsprop_nb.dask as m; "
        "r = doctest.testmod(m, optionflags=doctest.ELLIPSIS); "
        "sys.exit(r.failed != 0 or r.attempted < 20)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=checkout_env(), capture_output=True, text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

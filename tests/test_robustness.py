"""Robustness: the NaN/inf policies, durable checkpoints, threads and fork, float32 overflow.

Child processes are used where the property is about processes (resume in another process,
SIGKILL during a save, fork, the on-disk cache); each has a timeout and shows its output when
it fails.
"""

import hashlib
import multiprocessing as mp
import json
import os
from queue import Empty
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from rmsprop_nb import AdaGrad, RMSProp, _threads
from rmsprop_nb.kernels import PARALLEL_MIN_BYTES, adagrad_step, rmsprop_step

import reference

ROOT = Path(__file__).resolve().parents[1]
BIG = PARALLEL_MIN_BYTES // 4 * 3  # float32 elements: takes the parallel loops


def run_child(code, *args, timeout=300, env=None):
    """Run Python code in a child process with the package importable; fail with its output."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def mixed_params(seed=0, big=True):
    """Parameters of several kinds (dtypes, ndims, orders), optionally one parallel-sized."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((3, 4)), rng.standard_normal(5).astype(np.float32),
              np.asfortranarray(rng.standard_normal((4, 3))), rng.standard_normal(7)]
    if big:
        params.append(rng.standard_normal(BIG).astype(np.float32))
    return params


def grads_for(params, step, seed=1):
    rng = np.random.default_rng([seed, step])
    return [np.asfortranarray(g) if p.flags.f_contiguous and not p.flags.c_contiguous else g
            for p, g in ((p, rng.standard_normal(p.shape).astype(p.dtype)) for p in params)]


OPTIMIZERS = [
    (RMSProp, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    (RMSProp, dict(lr=0.01, eps_in_sqrt=False)),
    (AdaGrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
]
OPT_IDS = ["rmsprop-momentum-centered", "rmsprop", "adagrad-lr_decay"]


def same_state(a, b):
    """Two state_dicts hold the same numbers, bit for bit."""
    assert (a["algorithm"], a["step"], a["skipped_steps"], a["hyperparams"]) == (
        b["algorithm"], b["step"], b["skipped_steps"], b["hyperparams"])
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        for x, y in zip(a["state"][key], b["state"][key]):
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    return True


# --------------------------------------------------------------------------------------------
# Non-finite gradients
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [RMSProp, AdaGrad])
def test_nonfinite_accepts_only_its_three_policies_as_a_keyword(cls):
    for bad in ("Raise", "ignore", None, 1):
        with pytest.raises(ValueError, match="'propagate', 'raise', 'skip'"):
            cls([np.zeros(3)], nonfinite=bad)
    with pytest.raises(TypeError):
        cls([np.zeros(3)], 0.01, 0.9, 1e-6, "raise")
    opt = cls([np.zeros(3)])
    assert opt.nonfinite == "propagate"
    with pytest.raises(ValueError, match="nonfinite must be one of"):
        opt.nonfinite = "bogus"
    opt.nonfinite = "skip"  # a policy may be changed between steps
    assert opt.nonfinite == "skip"


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 1, 2, 4])  # groups: (0, 3), (1,), (2,), (4,) big
@pytest.mark.parametrize(("cls", "opts"), OPTIMIZERS, ids=OPT_IDS)
def test_nonfinite_raise_names_the_parameter_and_changes_nothing(cls, opts, where, bad_value):
    params = mixed_params()
    opt = cls(params, **opts, nonfinite="raise")
    opt.step(grads_for(params, 0))
    params_before = [p.copy(order="K") for p in params]
    state_before = opt.state_dict()
    grads = grads_for(params, 1)
    grads[where].flat[-1] = bad_value
    with pytest.raises(FloatingPointError, match=rf"grads\[{where}\] contains NaN or infinity"):
        opt.step(grads)
    for p, q in zip(params, params_before):
        assert p.tobytes() == q.tobytes()
    assert same_state(opt.state_dict(), state_before)
    # With finite gradients the step is the default policy's, bit for bit.
    twin_params = [p.copy(order="K") for p in params_before]
    twin = cls(twin_params, **opts)
    twin.load_state_dict(state_before)
    grads[where].flat[-1] = 0.5
    opt.step(grads)
    twin.step(grads)
    for p, q in zip(params, twin_params):
        assert p.tobytes() == q.tobytes()


@pytest.mark.parametrize(("cls", "opts"), OPTIMIZERS, ids=OPT_IDS)
def test_nonfinite_skip_skips_the_whole_step_and_counts_it(cls, opts, tmp_path):
    params = mixed_params()
    opt = cls(params, **opts, nonfinite="skip")
    opt.step(grads_for(params, 0))
    params_before = [p.copy() for p in params]
    state_before = opt.state_dict()
    for k, where in enumerate((4, 1, 3)):
        grads = grads_for(params, 1)
        grads[where].flat[0] = np.nan
        opt.step(grads)
        assert opt.skipped_steps == k + 1 and opt.step_count == 1
    for p, q in zip(params, params_before):
        assert p.tobytes() == q.tobytes()
    state = opt.state_dict()
    assert state["skipped_steps"] == 3
    state["skipped_steps"] = 0
    assert same_state(state, state_before)
    # The count travels with the state, through state_dict and through a checkpoint.
    twin = cls([p.copy() for p in params], **opts, nonfinite="skip")
    twin.load_state_dict(opt.state_dict())
    assert twin.skipped_steps == 3
    opt.save(tmp_path / "ckpt.npz")
    twin = cls([p.copy() for p in params], **opts)
    twin.load(tmp_path / "ckpt.npz")
    assert (twin.step_count, twin.skipped_steps) == (1, 3)


def test_nonfinite_propagate_lets_nan_reach_the_parameters_like_torch():
    x = np.zeros(4)
    opt = RMSProp([x])
    opt.step([np.array([1.0, np.nan, np.inf, -np.inf])])
    assert x[0] != 0 and np.isnan(x[1:]).all()
    assert opt.step_count == 1 and opt.skipped_steps == 0


def test_state_dicts_saved_before_skipped_steps_existed_still_load():
    opt = RMSProp([np.zeros(3)])
    state = opt.state_dict()
    del state["skipped_steps"]
    opt.load_state_dict(state)
    assert opt.skipped_steps == 0
    state["skipped_steps"] = -1
    with pytest.raises(ValueError, match="skipped_steps"):
        opt.load_state_dict(state)


# --------------------------------------------------------------------------------------------
# float32 overflow of g * g
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps_in_sqrt", [True, False])
def test_float32_g_squared_overflow_makes_s_inf_and_freezes_that_coordinate(eps_in_sqrt):
    """In float32, s overflows to inf when (1 - gamma) g^2 > 3.4e38 (RMSProp: |g| > 1.84e19 /
    sqrt(1 - gamma), 5.8e19 for gamma = 0.9; the product is formed as ((1 - gamma) g) g, as in
    torch) or g^2 > 3.4e38 (AdaGrad: |g| > 1.84e19). Then g / sqrt(s) is 0 and the coordinate
    stops moving for good (gamma * inf = inf, inf + g^2 = inf), as in NumPy and torch float32.
    The gradient itself is finite, so even nonfinite="raise" lets it through. Other
    coordinates are unaffected; float64 has room for the same gradient."""
    g = np.array([1e20, -2e20, 2e19, 1.0], dtype=np.float32)
    assert np.isfinite(g).all()
    x, s = np.ones(4, np.float32), np.zeros(4, np.float32)
    with np.errstate(over="ignore"):
        ex, es, _, _ = reference.rmsprop(x, g, s, 0.1, 0.9, 1e-6, eps_in_sqrt)
    rmsprop_step(x, g, s, 0.1, 0.9, 1e-6, eps_in_sqrt)
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(s, es)
    assert np.isinf(s[:2]).all() and (x[:2] == 1).all()
    assert np.isfinite(s[2:]).all() and (x[2:] < 1).all()  # 0.1 * (2e19)^2 = 4e37 still fits
    rmsprop_step(x, np.ones(4, np.float32), s, 0.1, 0.9, 1e-6, eps_in_sqrt)
    assert np.isinf(s[:2]).all() and (x[:2] == 1).all()

    xa, sa = np.ones(4, np.float32), np.zeros(4, np.float32)
    adagrad_step(xa, g, sa, 0.1, 1e-6, eps_in_sqrt)
    assert np.isinf(sa[:3]).all() and (xa[:3] == 1).all() and xa[3] < 1

    p = [np.ones(4, np.float32)]
    opt = RMSProp(p, nonfinite="raise")
    opt.step([g])
    assert (p[0][:2] == 1).all() and opt.step_count == 1

    x64, s64 = np.ones(4), np.zeros(4)
    rmsprop_step(x64, g.astype(np.float64), s64, 0.1, 0.9, 1e-6, eps_in_sqrt)
    assert np.isfinite(s64).all() and (x64 != 1).all()


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------

RESUME_CHILD = """
    import sys
    import numpy as np
    from rmsprop_nb import AdaGrad, RMSProp
    from test_robustness import OPTIMIZERS, grads_for, mixed_params
    k, phase, folder, first, last = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    cls, opts = OPTIMIZERS[k]
    params = mixed_params()
    opt = cls(params, **opts)
    if phase == "resume":
        with np.load(folder + "/params.npz") as z:
            for i, p in enumerate(params):
                p[...] = z[str(i)]
        opt.load(folder + "/opt.npz")
    for t in range(first, last):
        opt.step(grads_for(params, t))
    np.savez(folder + "/params.npz", **{str(i): p for i, p in enumerate(params)})
    opt.save(folder + "/opt.npz")
"""


@pytest.mark.parametrize("k", range(len(OPTIMIZERS)), ids=OPT_IDS)
def test_a_run_resumed_in_another_process_is_bit_for_bit_the_uninterrupted_run(k, tmp_path):
    cls, opts = OPTIMIZERS[k]
    params = mixed_params()
    opt = cls(params, **opts)
    for t in range(7):
        opt.step(grads_for(params, t))
    for phase, first, last in (("start", 0, 3), ("resume", 3, 7)):
        run_child(RESUME_CHILD, k, phase, tmp_path, first, last)
    with np.load(tmp_path / "params.npz") as z:
        for i, p in enumerate(params):
            assert z[str(i)].tobytes() == p.tobytes()
    resumed = cls(mixed_params(), **opts)
    resumed.load(tmp_path / "opt.npz")
    assert same_state(resumed.state_dict(), opt.state_dict())


def test_checkpoint_is_a_plain_npz_with_version_algorithm_hyperparams_steps_and_state(tmp_path):
    params = mixed_params(big=False)
    opt = RMSProp(params, lr=0.02, momentum=0.5)
    opt.step(grads_for(params, 0))
    opt.save(tmp_path / "ckpt")  # used as given: no suffix added
    with np.load(tmp_path / "ckpt", allow_pickle=False) as z:
        assert int(z["format_version"]) == 2 and str(z["algorithm"]) == "RMSProp"
        assert int(z["step"]) == 1 and int(z["skipped_steps"]) == 0
        assert '"lr": 0.02' in str(z["hyperparams"])
        groups = json.loads(str(z["param_groups"]))
        assert groups == [dict(params=[0, 1, 2, 3], step=1, **opt.state_dict()["hyperparams"])]
        assert sorted(z.files) == sorted(
            ["format_version", "algorithm", "step", "skipped_steps", "hyperparams", "param_groups"]
            + [f"state.{n}.{i}" for n in ("square_avg", "momentum_buffer") for i in range(4)])
        np.testing.assert_array_equal(z["state.square_avg.2"], opt.state_dict()["state"]["square_avg"][2])
    assert os.listdir(tmp_path) == ["ckpt"]  # no temporary file left behind


def _corruptions(good: bytes):
    yield "empty file", b""
    yield "not a zip", b"hello, world" * 10
    for cut in (10, len(good) // 3, len(good) - 30):
        yield f"truncated at {cut}", good[:cut]
    data = bytearray(good)
    pos = good.index(b"\x93NUMPY", good.index(b"state.square_avg.0")) + 200
    data[pos] ^= 0xFF
    yield "a flipped byte in an array", bytes(data)


@pytest.mark.parametrize("case", range(6))
def test_a_damaged_checkpoint_gives_a_clear_error_and_changes_nothing(case, tmp_path):
    params = mixed_params(big=False)
    opt = RMSProp(params)
    opt.step(grads_for(params, 0))
    path = tmp_path / "ckpt.npz"
    opt.save(path)
    label, data = list(_corruptions(path.read_bytes()))[case]
    path.write_bytes(data)
    other = RMSProp(mixed_params(big=False))
    before = other.state_dict()
    with pytest.raises(ValueError, match="is not a readable rmsprop_nb checkpoint") as info:
        other.load(path)
    assert str(path) in str(info.value), label
    assert same_state(other.state_dict(), before)


def _write_npz(path, **members):
    with open(path, "wb") as f:
        np.savez(f, **members)


def test_a_checkpoint_that_does_not_fit_gives_a_clear_error_and_changes_nothing(tmp_path):
    params = mixed_params(big=False)
    opt = RMSProp(params, momentum=0.9)
    opt.step(grads_for(params, 0))
    good = tmp_path / "good.npz"
    opt.save(good)
    members = dict(np.load(good))
    cases = {
        "algorithm": (AdaGrad(mixed_params(big=False)), None, "for 'RMSProp', not 'AdaGrad'"),
        "count": (RMSProp(mixed_params(big=False)[:3], momentum=0.9), None, "4 arrays for 3"),
        "shape": (RMSProp([np.zeros((4, 3)), *mixed_params(big=False)[1:]], momentum=0.9),
                  None, r"shape \(3, 4\)"),
        "dtype": (RMSProp([p.astype(np.float32) for p in mixed_params(big=False)], momentum=0.9),
                  None, "dtype float64"),
        "buffers": (RMSProp(mixed_params(big=False)), None, "momentum"),
        "version": (None, dict(members, format_version=np.int64(3)), "format version 3"),
        "missing": (None, {k: v for k, v in members.items() if k != "state.square_avg.1"},
                    r"square_avg\[1\] is missing"),
        "no header": (None, {k: v for k, v in members.items() if k != "algorithm"},
                      "not an rmsprop_nb checkpoint"),
        "pickle": (None, dict(members, hyperparams=np.array([{"lr": 1}], dtype=object)),
                   "not a readable"),
        "stray member": (None, dict(members, extra=np.zeros(2)), "unexpected member"),
        "bad step": (None, dict(members, step=np.int64(-4)), "step must be an integer"),
    }
    for label, (target, files, message) in cases.items():
        target = target or RMSProp(mixed_params(big=False), momentum=0.9)
        path = good
        if files is not None:
            path = tmp_path / f"{label}.npz"
            _write_npz(path, **files)
        before = target.state_dict()
        with pytest.raises((ValueError, TypeError), match=message):
            target.load(path)
        assert same_state(target.state_dict(), before), label
    with pytest.raises(FileNotFoundError):
        opt.load(tmp_path / "absent.npz")


def test_checkpoint_methods_take_keyword_arguments(tmp_path):
    opt = AdaGrad([np.zeros(3)])
    opt.save(path=tmp_path / "c.npz")
    opt.load(path=tmp_path / "c.npz")
    opt.load_state_dict(state_dict=opt.state_dict())


def test_a_failed_save_leaves_the_old_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    params = mixed_params(big=False)
    opt = RMSProp(params)
    path = tmp_path / "ckpt.npz"
    opt.save(path)
    good = path.read_bytes()
    opt.step(grads_for(params, 0))

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        opt.save(path)
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["ckpt.npz"]


KILL_CHILD = """
    import hashlib, sys, time
    import numpy as np
    from rmsprop_nb import RMSProp, _checkpoint
    path = sys.argv[1]
    params = [np.full(1_000_000, 0.5), np.full(1_000_000, 0.25, np.float32)]
    opt = RMSProp(params, momentum=0.9, centered=True)
    opt.step([np.ones(1_000_000), np.ones(1_000_000, np.float32)])
    opt.save(path)
    print("SAVED", hashlib.sha256(open(path, "rb").read()).hexdigest(), flush=True)
    opt.step([np.full(1_000_000, 3.0), np.full(1_000_000, 3.0, np.float32)])

    class SlowWriter:
        # Writes the first MiB, says so, then hangs in the middle of the file.
        def __init__(self, f):
            self.f, self.n = f, 0
        def write(self, data):
            self.n += self.f.write(data)
            if self.n > 1 << 20:
                self.f.flush()
                print("WRITING", flush=True)
                time.sleep(120)
            return len(data)
        def __getattr__(self, name):
            return getattr(self.f, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.f.close()

    real_open = _checkpoint._open_temp
    _checkpoint._open_temp = lambda fd: SlowWriter(real_open(fd))
    opt.save(path)
    print("NOT KILLED", flush=True)
"""


def test_sigkill_during_a_save_leaves_the_previous_checkpoint_loadable_and_intact(tmp_path):
    path = tmp_path / "ckpt.npz"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILL_CHILD), str(path)],
                             env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        saved = child.stdout.readline().split()
        assert saved[:1] == ["SAVED"], child.stderr.read()
        assert child.stdout.readline().strip() == "WRITING", child.stderr.read()
        temps = [p for p in tmp_path.iterdir() if p.name != "ckpt.npz"]
        assert len(temps) == 1 and temps[0].stat().st_size > 1 << 20  # killed mid-write
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == saved[1]
    opt = RMSProp([np.zeros(1_000_000), np.zeros(1_000_000, np.float32)], momentum=0.9,
                  centered=True)
    opt.load(path)
    assert opt.step_count == 1  # the first save's state, not the interrupted second one
    np.testing.assert_allclose(opt.state_dict()["state"]["square_avg"][0], 0.1)
    # The killed writer's temporary file is all that is left; the next save works.
    opt.save(path)
    opt.load(path)


# --------------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------------


def _train(opt, params, seed, steps=15):
    for t in range(steps):
        opt.step(grads_for(params, t, seed))


@pytest.mark.parametrize("cls", [RMSProp, AdaGrad])
def test_threads_stepping_different_optimizers_get_the_sequential_results(cls):
    def make(seed):
        params = mixed_params(seed)
        params.append(np.random.default_rng(seed).standard_normal(3 * BIG))  # float64, parallel
        return params, cls(params, lr=0.01)

    runs = [make(seed) for seed in range(4)]
    for seed, (params, opt) in enumerate(runs):
        _train(opt, params, seed)
    expected = [[p.copy() for p in params] for params, _ in runs]

    runs = [make(seed) for seed in range(4)]
    barrier = threading.Barrier(len(runs))
    errors = []

    def worker(seed, params, opt):
        try:
            barrier.wait()
            _train(opt, params, seed)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed, *run)) for seed, run in enumerate(runs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors and not any(th.is_alive() for th in threads)
    for (params, _), exp in zip(runs, expected):
        for p, q in zip(params, exp):
            assert p.tobytes() == q.tobytes()


class _BlockingGrads(list):
    """A gradient list whose len() waits for an event: holds a step open in its thread."""

    def __init__(self, grads, entered, release):
        super().__init__(grads)
        self.entered, self.release = entered, release

    def __len__(self):
        self.entered.set()
        assert self.release.wait(timeout=60)
        return super().__len__()


def test_one_optimizer_used_from_a_second_thread_at_the_same_time_raises(tmp_path):
    params = mixed_params()
    opt = RMSProp(params)
    entered, release = threading.Event(), threading.Event()
    worker = threading.Thread(
        target=opt.step, args=(_BlockingGrads(grads_for(params, 0), entered, release),))
    worker.start()
    try:
        assert entered.wait(timeout=60)
        before = [p.copy() for p in params]
        for call in (lambda: opt.step(grads_for(params, 1)), opt.state_dict,
                     lambda: opt.save(tmp_path / "c.npz"), lambda: opt.load(tmp_path / "c.npz"),
                     lambda: opt.load_state_dict({})):
            with pytest.raises(RuntimeError, match="being used by another thread"):
                call()
        for p, q in zip(params, before):
            assert p.tobytes() == q.tobytes()
    finally:
        release.set()
        worker.join(timeout=60)
    assert opt.step_count == 1
    opt.step(grads_for(params, 1))  # free again once the other thread is done
    assert opt.step_count == 2


# --------------------------------------------------------------------------------------------
# fork
# --------------------------------------------------------------------------------------------


def _child_steps(queue):
    queue.put(_steps())


def _steps():
    """Kernel and optimizer steps on parallel-sized arrays (run in the parent and a child)."""
    x = np.ones(4 * BIG, np.float32)
    s = np.zeros_like(x)
    rmsprop_step(x, np.full_like(x, 0.5), s, 0.1, 0.9, 1e-6)
    xa = np.ones(4 * BIG)
    sa = np.zeros_like(xa)
    adagrad_step(xa, np.full_like(xa, 2.0), sa, 0.1, 1e-6)
    params = mixed_params()
    opt = RMSProp(params, nonfinite="raise")
    _train(opt, params, 0, steps=3)
    return _threads.PARALLEL, x, s, xa, sa, params


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_forked_child_of_a_process_that_ran_parallel_steps_can_step_too():
    parallel, *expected = _steps()  # here, in the parent: the parallel loops run
    assert parallel
    from numba.np.ufunc import parallel as numba_parallel
    assert numba_parallel._is_initialized  # the OpenMP pool is running in this process

    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_steps, args=(queue,))
    child.start()
    got = None
    try:
        for _ in range(240):  # up to 2 minutes, but give up as soon as the child is gone
            alive = child.is_alive()
            try:
                got = queue.get(timeout=0.5)
                break
            except Empty:
                if not alive:
                    break
    finally:
        child.join(timeout=60)
        if child.is_alive():  # pragma: no cover
            child.kill()
    assert child.exitcode == 0 and got is not None, f"the forked child died: {child.exitcode}"
    parallel, *results = got
    assert parallel is (numba_parallel.threading_layer() != "omp")
    for res, exp in zip(results[:4] + results[4], expected[:4] + expected[4]):
        assert res.tobytes() == exp.tobytes()
    assert _threads.PARALLEL  # the parent keeps its parallel loops


# --------------------------------------------------------------------------------------------
# The on-disk cache (numba#8578)
# --------------------------------------------------------------------------------------------


def test_a_second_cached_specialization_loads_without_crashing(tmp_path):
    """A kernel specialization compiled in a process that had loaded the parallel loop from the
    cache used to segfault when loaded from the cache in turn (rmsprop_step with lr=1 after
    lr=1.0). Three processes sharing one fresh cache folder reproduce that order."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), RMSPROP_NB_CACHE="1")
    code = """
        import sys
        import numpy as np
        from rmsprop_nb.kernels import rmsprop_step
        x = np.ones({n}, np.float32); s = np.zeros_like(x)
        rmsprop_step(x, np.ones_like(x), s, LR, 0.9, 1e-6)
        assert np.allclose(x, 1 - LR / np.sqrt(0.1 + 1e-6))
    """.format(n=BIG)
    for lr in ("1.0", "1", "1"):
        run_child(code.replace("LR", lr), env=env)
        assert any(tmp_path.glob("cache/**/*_rmsprop_parallel*.nbc"))


# --------------------------------------------------------------------------------------------
# The cost of the policies (not a test; timings are never asserted). Run:
#   PYTHONPATH=.:tests python tests/test_robustness.py [sizes...]
# --------------------------------------------------------------------------------------------


def _policy_costs(sizes=(10**3, 10**5, 10**6, 10**7), dtype=np.float32, rounds=30):
    """Median time per step of each policy, alternating the three step by step in one process
    (the machine's drift cancels in the ratios)."""
    import time

    print(f"{'n':>10} {'propagate':>12} {'raise':>16} {'skip':>16}   ({np.dtype(dtype).name}, "
          f"finite gradients, median of {rounds} rounds)")
    for n in sizes:
        reps = max(1, 10**6 // n)
        opts, grads = {}, {}
        for policy in ("propagate", "raise", "skip"):
            params = [np.zeros(n, dtype)]
            opts[policy] = RMSProp(params, nonfinite=policy)
            grads[policy] = [np.random.default_rng(0).standard_normal(n).astype(dtype)]
            opts[policy].step(grads[policy])
        times = {p: [] for p in opts}
        for _ in range(rounds):
            for policy, opt in opts.items():
                g = grads[policy]
                t0 = time.perf_counter()
                for _ in range(reps):
                    opt.step(g)
                times[policy].append((time.perf_counter() - t0) / reps)
        med = {p: float(np.median(t)) for p, t in times.items()}
        ratio = {p: float(np.median(np.array(times[p]) / np.array(times["propagate"])))
                 for p in times}
        print(f"{n:>10} {med['propagate'] * 1e6:>10.1f}us "
              + " ".join(f"{med[p] * 1e6:>8.1f}us x{ratio[p]:.2f}" for p in ("raise", "skip")))


if __name__ == "__main__":
    _policy_costs(tuple(int(float(a)) for a in sys.argv[1:]) or (10**3, 10**5, 10**6, 10**7))

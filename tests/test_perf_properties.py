"""Performance properties that are facts, not timings: what a step allocates, what importing the
package compiles, and how the disk cache behaves when it cannot or must not be written.

Each check runs in a fresh interpreter, because each depends on process-wide state that the
rest of the suite changes (Numba's allocation counters must be switched on before Numba is
imported; "import compiles nothing" needs a process that has compiled nothing yet).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_python(code, env_extra=None, cwd=None, pythonpath=ROOT, drop=()):
    """Run ``code`` in a fresh interpreter; return the JSON object it prints last."""
    env = dict(os.environ)
    for key in drop:
        env.pop(key, None)
    env["PYTHONPATH"] = str(pythonpath)
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd or ROOT,
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Allocations in the hot path.
# --------------------------------------------------------------------------------------------

ALLOCATION_PROBE = """
import json, tracemalloc
import numba
import numpy as np
from numba.core.runtime import rtsys
from rmsprop_nb import AdaGrad, RMSProp, adagrad_step, rmsprop_step

def python_level(step, reps=300):
    step(); step()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    for _ in range(reps):
        step()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return dict(growth=after - before, peak=peak - before)

def nrt_allocations(step, reps=50):
    step()
    a0 = rtsys.get_allocation_stats().alloc
    for _ in range(reps):
        step()
    return (rtsys.get_allocation_stats().alloc - a0) / reps

def nrt_allocations_inside(loop, x, g, s):
    # A call of loop(..., steps) wraps its three arguments (three NRT allocations) whatever
    # the steps; what 20 kernel calls inside it allocate is the difference.
    return nrt_allocations(lambda: loop(x, g, s, 20)) - nrt_allocations(lambda: loop(x, g, s, 0))

@numba.njit
def rmsprop_loop(x, g, s, steps):
    for _ in range(steps):
        rmsprop_step(x, g, s, 0.01, 0.99, 1e-8, False)

@numba.njit
def adagrad_loop(x, g, s, steps):
    for _ in range(steps):
        adagrad_step(x, g, s, 0.01, 1e-10, False)

out = {}
# 100 elements take the serial loop, 2**20 float32 (4 MiB) the parallel one.
for n in (100, 2**20):
    x = np.zeros(n, np.float32); g = np.ones_like(x); s = np.zeros_like(x)
    out[f"kernel_python_{n}"] = [
        python_level(lambda: rmsprop_step(x, g, s, 0.01, 0.99, 1e-8, False)),
        python_level(lambda: adagrad_step(x, g, s, 0.01, 1e-10, False)),
    ]
    out[f"kernel_compiled_{n}"] = [
        nrt_allocations_inside(rmsprop_loop, x, g, s),
        nrt_allocations_inside(adagrad_loop, x, g, s),
    ]
    # The optimizers: one array, and three arrays of two kinds.
    params = [x]
    more = [np.zeros(n // 4), np.zeros(n // 4), np.zeros((n // 8, 4), np.float32)]
    grads, more_grads = [g], [np.ones_like(p) for p in more]
    opts = [(RMSProp(params), grads), (AdaGrad(params), grads), (RMSProp(more), more_grads)]
    out[f"optimizer_python_{n}"] = [python_level(lambda: o.step(gs)) for o, gs in opts]
    out[f"optimizer_nrt_{n}"] = [nrt_allocations(lambda: o.step(gs)) for o, gs in opts]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def allocations():
    return run_python(ALLOCATION_PROBE, {"NUMBA_NRT_STATS": "1"})


@pytest.mark.parametrize("n", [100, 2**20])
def test_kernel_step_allocates_nothing(allocations, n):
    # Called from Python 300 times: nothing outlives a call (less than a byte per call kept,
    # i.e. an interpreter cache at most), and a call's transient bytes do not grow with n.
    for probe in allocations[f"kernel_python_{n}"]:
        assert probe["growth"] < 300
        assert probe["peak"] <= 1024
    # Called from compiled code (no argument unboxing): not a single NRT allocation.
    assert allocations[f"kernel_compiled_{n}"] == [0, 0]


def test_optimizer_step_allocates_a_small_constant(allocations):
    small, large = allocations["optimizer_python_100"], allocations["optimizer_python_1048576"]
    for probe in small + large:
        # Python level: a tuple of the gradients and little else; no growth over 300 steps
        # beyond interpreter caches (a few KiB at most, nothing per element).
        assert probe["peak"] <= 16 * 1024
        assert probe["growth"] <= 16 * 1024
    # Compiled level: the NRT allocations are the wrappers of array arguments (Numba wraps
    # every NumPy array it receives): the same few for 100 elements as for a million, and a
    # number that grows with the count of arrays only.
    arrays = [1, 1, 3]
    small, large = allocations["optimizer_nrt_100"], allocations["optimizer_nrt_1048576"]
    for count, a, b in zip(arrays, small, large):
        assert a == b
        assert a <= 8 + 8 * count


# --------------------------------------------------------------------------------------------
# Start-up: import compiles nothing.
# --------------------------------------------------------------------------------------------

IMPORT_PROBE = """
import json, sys
import numba.core.compiler as compiler
from numba.core.dispatcher import Dispatcher

compiled = []
for name in ("compile_extra", "compile_ir"):
    original = getattr(compiler, name)
    def spy(*args, _original=original, **kwargs):
        compiled.append(repr(args[3] if len(args) > 3 else args))
        return _original(*args, **kwargs)
    setattr(compiler, name, spy)

import rmsprop_nb
from rmsprop_nb import kernels, optimizers

loaded = sorted(
    f"{mod.__name__}.{name}"
    for mod in (kernels, optimizers)
    for name, obj in vars(mod).items()
    if isinstance(obj, Dispatcher) and obj.overloads
)
dispatchers = sum(isinstance(o, Dispatcher) for o in vars(kernels).values())
print(json.dumps(dict(compiled=compiled, loaded=loaded, dispatchers=dispatchers,
                      cuda="rmsprop_nb.cuda" in sys.modules)))
"""


def test_import_compiles_and_loads_nothing():
    out = run_python(IMPORT_PROBE)
    assert out["dispatchers"] > 5  # the probe does see the package's compiled functions
    assert out["compiled"] == []  # nothing compiled ...
    assert out["loaded"] == []  # ... nor loaded from the disk cache
    assert out["cuda"] is False  # and the GPU module stays out until asked for


# --------------------------------------------------------------------------------------------
# The disk cache: a read-only package still works; RMSPROP_NB_CACHE=0 writes nothing.
# --------------------------------------------------------------------------------------------

STEP_PROBE = """
import json, warnings
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import rmsprop_nb
    from rmsprop_nb import RMSProp, rmsprop_step
x = np.array([-5.0, -2.0]); s = np.zeros(2)
rmsprop_step(x, np.array([0.2, 4.0]) * x, s, 0.4, 0.9, 1e-6)
y = np.array([-5.0, -2.0]); opt = RMSProp([y], lr=0.4, gamma=0.9)
opt.step([np.array([0.2, 4.0]) * y])
print(json.dumps(dict(
    file=rmsprop_nb.__file__, x=x.tolist(), y=y.tolist(),
    warnings=[f"{w.category.__name__}: {w.message}" for w in caught],
    cache_enabled=rmsprop_nb._jit.CACHE,
)))
"""

# One RMSProp step from s = 0 with lr 0.4, gamma 0.9, eps 1e-6 inside the root.
EXPECTED = [-5.0 - 0.4 * -1.0 / (0.1 * 1.0 + 1e-6) ** 0.5, -2.0 - 0.4 * -8.0 / (0.1 * 64.0 + 1e-6) ** 0.5]


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def _make_read_only(folder):
    for p in [folder, *Path(folder).rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(folder):
    for p in [folder, *Path(folder).rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_read_only_package_still_imports_and_steps(tmp_path):
    # A copy of the package in a folder nobody can write to, and no writable user cache:
    # Numba finds no place for its cache files. A regular file where a cache folder would go
    # makes that true even for root, who ignores the read-only bits.
    site = tmp_path / "site"
    shutil.copytree(ROOT / "rmsprop_nb", site / "rmsprop_nb",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (site / "rmsprop_nb" / "__pycache__").write_text("not a folder")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("not a folder")
    before = _files(site) + _files(home)
    _make_read_only(site)
    _make_read_only(home)
    try:
        out = run_python(
            STEP_PROBE, {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")},
            cwd=tmp_path, pythonpath=site, drop=("NUMBA_CACHE_DIR", "RMSPROP_NB_CACHE"),
        )
    finally:
        _make_writable(site)
        _make_writable(home)
    assert Path(out["file"]).parent == site / "rmsprop_nb"
    assert out["x"] == pytest.approx(EXPECTED) and out["y"] == pytest.approx(EXPECTED)
    assert any("RuntimeWarning" in w and "will not be cached" in w for w in out["warnings"])
    assert _files(site) + _files(home) == before  # nothing was written anywhere


@pytest.mark.parametrize("setting, writes", [("0", False), ("1", True)])
def test_rmsprop_nb_cache_switch(tmp_path, setting, writes):
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    out = run_python(STEP_PROBE, {"NUMBA_CACHE_DIR": str(cache), "RMSPROP_NB_CACHE": setting})
    assert out["x"] == pytest.approx(EXPECTED)
    assert out["cache_enabled"] is writes
    assert not [w for w in out["warnings"] if "cache" in w]
    index_files = [f for f in _files(cache) if f.endswith(".nbi")]
    assert bool(index_files) is writes

"""The CUDA target, from the main test run (which must keep the CUDA simulator off).

The simulator has to be switched on before numba.cuda is first imported, and real PTX
compilation cannot share a process with it, so the CUDA suites run as child pytest processes:

* ``tests/cuda/gpu_checks.py`` and the doctests of ``rmsprop_nb/cuda.py`` on the simulator
  (``NUMBA_ENABLE_CUDASIM=1``), and again on the real GPU when there is one;
* ``tests/cuda/ptx_checks.py``: every kernel compiled to PTX for sm_90 and assembled by ptxas.

A child's output is shown when it fails. Without numba-cuda (or the PTX toolchain) these tests
are skipped with the reason.
"""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
needs_numba_cuda = pytest.mark.skipif(
    not HAS_NUMBA_CUDA, reason='numba-cuda is not installed (pip install "rmsprop-nb[cuda]")'
)


def _env(simulator):
    return dict(os.environ, NUMBA_ENABLE_CUDASIM="1" if simulator else "0")


def _python(code, simulator=False):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=_env(simulator),
        capture_output=True, text=True, timeout=300,
    )


def _pytest(*args, simulator):
    """Run pytest on ``args`` in a child process; fail with its output, or skip with its
    reason when it skipped everything."""
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
        cwd=ROOT, env=_env(simulator), capture_output=True, text=True, timeout=600,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"child pytest failed ({r.returncode}):\n{out}"
    summary = out.strip().splitlines()[-1]
    if " passed" not in summary:
        reasons = re.findall(r"SKIPPED \[\d+\] [^:]+:\d*:? ?(.*)", out)
        pytest.skip(reasons[0] if reasons else summary)
    return out


@needs_numba_cuda
def test_cuda_target_on_the_simulator():
    """Launchers vs CPU kernels (all options, both dtypes), user kernels, optimizers, errors."""
    _pytest("tests/cuda/gpu_checks.py", "--doctest-modules", "rmsprop_nb/cuda.py",
            simulator=True)


@needs_numba_cuda
def test_kernels_compile_to_ptx_without_float64_in_float32_code():
    out = _pytest("-s", "tests/cuda/ptx_checks.py", simulator=False)
    table = out[out.find("ptxas -arch"):].split("\n\n")[0] if "ptxas -arch" in out else ""
    print(table)  # the register count per kernel, shown with `pytest -s` / `-rP`


@needs_numba_cuda
def test_cuda_target_on_a_real_gpu():
    r = _python("from numba import cuda; print(cuda.is_available())")
    if r.stdout.strip() != "True":
        pytest.skip("no CUDA GPU here (numba.cuda.is_available() is False)")
    _pytest("tests/cuda/gpu_checks.py", "--doctest-modules", "rmsprop_nb/cuda.py",
            simulator=False)


def test_import_rmsprop_nb_imports_no_cuda_module():
    r = _python("""
        import sys
        before = set(sys.modules)
        import rmsprop_nb
        new = sorted(m for m in set(sys.modules) - before if "cuda" in m.lower())
        print(new)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_cuda_module_without_numba_cuda_says_what_to_install():
    r = _python("""
        import sys
        sys.modules["numba_cuda"] = None  # as if numba-cuda were not installed
        try:
            import rmsprop_nb.cuda
        except ImportError as exc:
            print(exc)
        else:
            print("imported")
    """)
    assert r.returncode == 0, r.stderr
    assert 'pip install "rmsprop-nb[cuda]"' in r.stdout


def test_device_arrays_without_numba_cuda_raise_the_install_hint():
    r = _python("""
        import sys
        sys.modules["numba_cuda"] = None
        from rmsprop_nb import RMSProp

        class FakeDeviceArray:
            __cuda_array_interface__ = {}

        try:
            RMSProp([FakeDeviceArray()])
        except ImportError as exc:
            print(exc)
    """)
    assert r.returncode == 0, r.stderr
    assert 'pip install "rmsprop-nb[cuda]"' in r.stdout


@needs_numba_cuda
def test_launch_without_gpu_names_the_simulator_switch():
    r = _python("""
        from numba import cuda
        if cuda.is_available():
            print("GPU")
        else:
            from rmsprop_nb.cuda import rmsprop_step
            try:
                rmsprop_step(None, None, None, 0.1, 0.9, 1e-6)
            except RuntimeError as exc:
                print(exc)
    """)
    assert r.returncode == 0, r.stderr
    if r.stdout.strip() == "GPU":
        pytest.skip("a GPU is present")
    assert "NUMBA_ENABLE_CUDASIM=1" in r.stdout


# -- the checks on __cuda_array_interface__ descriptions (no GPU needed: nothing is launched) ---


class FakeDeviceArray:
    """Only a __cuda_array_interface__, at a made-up address (never dereferenced)."""

    def __init__(self, shape, ptr, typestr="<f8", strides=None, readonly=False):
        self.__cuda_array_interface__ = dict(
            shape=shape, typestr=typestr, data=(ptr, readonly), strides=strides, version=3
        )


def _check(x, g, s, **kwargs):
    from rmsprop_nb import cuda as rcuda

    hyper = dict(dict(lr=0.1, gamma=0.9, eps=1e-6, eps_in_sqrt=True, weight_decay=0.0,
                      maximize=False, momentum=0.0, momentum_buffer=None, centered=False,
                      grad_avg=None), **kwargs)
    return rcuda._check_rmsprop(x, g, s, **hyper)


@needs_numba_cuda
def test_interface_arrays_pass_the_checks_and_give_dtype_hyperparameters():
    base = 1 << 20
    x, g, s = (FakeDeviceArray((2, 3), base + k * 64, "<f4") for k in range(3))
    dev, h = _check(x, g, s)
    assert [d.ptr for d in (dev["x"], dev["g"], dev["s"])] == [base, base + 64, base + 128]
    assert dev["x"].stand_in.flags.c_contiguous and dev["x"].nbytes == 24
    assert {type(v) for v in h if not isinstance(v, bool)} == {np.float32}


@needs_numba_cuda
@pytest.mark.parametrize("case", [
    ("x", dict(readonly=True), ValueError, "rmsprop_step: x is read-only"),
    ("g", dict(typestr="<f2"), TypeError, "rmsprop_step: g must have dtype float32 or float64"),
    ("g", dict(strides=(48, 8)), ValueError, "rmsprop_step: g must be contiguous"),
    ("g", dict(strides=(8, 16)), ValueError, "rmsprop_step: g is in F order but x is in C order"),
    ("s", dict(shape=(3, 2)), ValueError, "rmsprop_step: s has shape (3, 2) but x has shape"),
    ("s", dict(ptr=(1 << 20) + 40), ValueError, "rmsprop_step: x shares memory with g, s"),
], ids=["read-only", "float16", "strided", "order", "shape", "overlap"])
def test_interface_arrays_are_checked_like_numpy_arrays(case):
    which, change, exc, message = case
    args = {}
    for k, name in enumerate("xgs"):
        spec = dict(shape=(2, 3), ptr=(1 << 20) + k * 4096)
        if name == which:
            spec.update(change)
        args[name] = FakeDeviceArray(**spec)
    with pytest.raises(exc) as info:
        _check(args["x"], args["g"], args["s"])
    assert str(info.value).startswith(message)

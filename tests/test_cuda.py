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

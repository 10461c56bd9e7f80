"""Users' journeys, each in fresh processes sharing one fresh disk cache, in the orders people
take them: the command line first, then their own ``@njit`` script, twice; the optimizer first;
their own compiled code first; ``cache=True`` and ``parallel=True`` user functions run again
from the warm cache. Every process must exit 0 and print the book's numbers.

These orders once crashed Python: a cached kernel with a parallel region, linked into a user's
function, lost the initialiser of Numba's threading layer (numba#8578; ``_jit.py``). Each test
starts from an empty cache so that every step meets the cache as a user would.
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BOOK_RMSPROP = "x1 -0.010599, x2 0.000000"  # §7.6, eta 0.4, gamma 0.9, 20 steps
BOOK_ADAGRAD = "x1 -2.382563, x2 -0.158591"  # §7.5, eta 0.4, 20 steps

# float64 and float32 versions of the book's run through each entry point. Large arrays (the
# parallel loops) repeat the book's point in every element.
SCRIPTS = {
    "optimizer": """
        import numpy as np
        from rmsprop_nb import AdaGrad, RMSProp
        for cls, kw in ((RMSProp, dict(gamma=0.9)), (AdaGrad, {})):
            for dtype in (np.float64, np.float32):
                x = np.array([-5.0, -2.0], dtype)
                opt = cls([x], lr=0.4, **kw)
                for _ in range(20):
                    opt.step([np.array([0.2, 4.0], dtype) * x])
                print(cls.__name__, np.dtype(dtype).name, f"x1 {x[0]:f}, x2 {x[1]:f}")
    """,
    "njit": """
        import numba
        import numpy as np
        from rmsprop_nb.kernels import adagrad_step, rmsprop_step

        @numba.njit{decorator}
        def train(x, s, steps, rms):
            for _ in range(steps):
                g = np.empty_like(x)
                g[0::2] = 0.2 * x[0::2]
                g[1::2] = 4.0 * x[1::2]
                if rms:
                    rmsprop_step(x, g, s, 0.4, 0.9, 1e-6)
                else:
                    adagrad_step(x, g, s, 0.4, 1e-6)

        for n in (2, 1 << 16):  # serial, then the parallel loop (128 KiB+ in float32)
            for dtype in (np.float64, np.float32):
                for rms, name in ((True, "RMSProp"), (False, "AdaGrad")):
                    x = np.tile(np.array([-5.0, -2.0], dtype), n // 2)
                    s = np.zeros_like(x)
                    train(x, s, 20, rms)
                    assert (x[0::2] == x[0]).all() and (x[1::2] == x[1]).all()
                    print(name, np.dtype(dtype).name, n, f"x1 {x[0]:f}, x2 {x[1]:f}")
    """,
    "kernel": """
        import numpy as np
        from rmsprop_nb.kernels import adagrad_step, rmsprop_step
        for lr in (0.4, 1, 0.4):  # an int lr is a second specialization, cached beside
            for n in (2, 1 << 16):
                x = np.tile(np.array([-5.0, -2.0]), n // 2)
                s = np.zeros_like(x)
                for _ in range(20):
                    rmsprop_step(x, np.where(np.arange(n) % 2, 4.0, 0.2) * x, s, lr, 0.9, 1e-6)
                print("RMSProp", lr, n, f"x1 {x[0]:f}, x2 {x[1]:f}")
                x = np.tile(np.array([-5.0, -2.0]), n // 2)
                s = np.zeros_like(x)
                for _ in range(20):
                    adagrad_step(x, np.where(np.arange(n) % 2, 4.0, 0.2) * x, s, lr, 1e-6)
                print("AdaGrad", lr, n, f"x1 {x[0]:f}, x2 {x[1]:f}")
    """,
}


def _script(name, decorator=""):
    return textwrap.dedent(SCRIPTS[name]).replace("{decorator}", decorator)


def _run(args, cache, cwd):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), RMSPROP_NB_CACHE="1", MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"{args} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _check_book_numbers(out):
    lines = [ln for ln in out.splitlines() if ln.startswith(("RMSProp", "AdaGrad"))]
    for line in lines:
        book = BOOK_RMSPROP if line.startswith("RMSProp") else BOOK_ADAGRAD
        if " float32" in line:  # float32 arithmetic: the book's point to float32 precision
            x1, x2 = map(float, re.findall(r"x\d (-?\d+\.\d+)", line))
            b1, b2 = map(float, re.findall(r"x\d (-?\d+\.\d+)", book))
            assert abs(x1 - b1) < 2e-4 and abs(x2 - b2) < 2e-4, line
        elif " 1 " in line and line.startswith("RMSProp"):
            assert "nan" not in line, line  # lr=1: a different run, but it must run
        elif " 1 " not in line:
            assert line.endswith(book), line


@pytest.fixture
def user(tmp_path):
    """``user(name)`` runs one of :data:`SCRIPTS` as a file (``python name.py``: Numba caches
    only functions defined in files), ``user("-m", ...)`` a module; all share one fresh cache."""
    cache = tmp_path / "numba-cache"

    def run(*args):
        if args[0] != "-m":
            name, decorator = args[0], (args[1] if len(args) > 1 else "")
            path = tmp_path / f"{name}{'_cached' * ('cache' in decorator)}.py"
            path.write_text(_script(name, decorator))
            args = (path.name,)
        out = _run(args, cache, tmp_path)
        _check_book_numbers(out)
        assert "epoch 20" in out or any(ln.startswith(("RMSProp", "AdaGrad"))
                                        for ln in out.splitlines()), out
        return out

    return run


def test_cli_then_own_njit_script_twice(user):
    out = user("-m", "rmsprop_nb", "--out", "fig.png")
    assert f"epoch 20, {BOOK_RMSPROP}" in out
    for _ in range(2):
        user("njit")


def test_optimizer_first_then_njit_then_kernels(user):
    user("optimizer")
    for _ in range(2):
        user("njit")
        user("kernel")


def test_njit_first_then_cli_and_optimizer(user):
    user("njit")
    user("-m", "rmsprop_nb", "--optimizer", "adagrad", "--out", "fig.png")
    user("njit")
    user("optimizer")


def test_user_function_with_cache_true_runs_again_from_the_cache(user):
    for _ in range(3):
        user("njit", "(cache=True)")


def test_parallel_user_function_with_cache_runs_again(user):
    for _ in range(2):
        user("njit", "(cache=True, parallel=True)")


def test_kernels_first_with_a_second_specialization(user):
    for _ in range(2):
        user("kernel")
        user("njit", "(cache=True)")


WARMED_CALLS = """
    import numba
    import numpy as np
    from numba.core import event
    from rmsprop_nb import AdaGrad
    from rmsprop_nb.kernels import PARALLEL_MIN_BYTES, adagrad_step

    compiled = []

    class Listener(event.Listener):
        def on_start(self, ev):
            # The package's own kernels; the @overload glue inlined into the user's function
            # (a "<locals>" impl) is compiled with it, as part of the user's code.
            fn = getattr(ev.data.get("dispatcher"), "py_func", None)
            name = getattr(fn, "__qualname__", "<locals>")
            if getattr(fn, "__module__", "").startswith("rmsprop_nb") and "<locals>" not in name:
                compiled.append(name)

        def on_end(self, ev):
            pass

    event.register("numba:compile", Listener())

    @numba.njit
    def train(x, g, s):
        for t in range(1, 4):
            adagrad_step(x, g, s, 0.1, 1e-6, step=t)

    for n in (3, PARALLEL_MIN_BYTES // 8):
        x, g, s = np.ones(n), np.ones(n), np.zeros(n)
        adagrad_step(x, g, s, 0.1, 1e-6)
        AdaGrad([x], nonfinite="raise").step([g])
        train(x, g, s)
    print("compiled:", compiled)
"""


def test_after_a_warm_up_first_calls_compile_nothing_of_the_package(tmp_path):
    cache = tmp_path / "numba-cache"
    out = _run(["-m", "rmsprop_nb.warmup", "--dtypes", "float64", "--algorithms", "adagrad"],
               cache, tmp_path)
    assert "in all (8 kinds of call)" in out  # kernel, optimizer, rows, SparseGrad; 2 sizes
    script = tmp_path / "first_calls.py"
    script.write_text(textwrap.dedent(WARMED_CALLS))
    assert "compiled: []" in _run([script.name], cache, tmp_path)
    # The same calls with an empty cache do compile: the check above can fail.
    assert "compiled: []" not in _run([script.name], tmp_path / "empty", tmp_path)


# Top-level modules of the optional extras, and what each needs installed.
EXTRAS = {"torch": ["torch"], "dask": ["dask", "distributed"], "matplotlib": ["matplotlib"]}


def _readme_blocks():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)


@pytest.mark.parametrize("block", range(len(_readme_blocks())))
def test_readme_code_blocks_run_twice_after_the_cli(block, tmp_path):
    """Every Python block of README, as a new user runs it: after `python -m rmsprop_nb`
    warmed the cache, as a file, twice, each time in a new process."""
    code = _readme_blocks()[block]
    # A block for an optional extra (its comment says which) skips where that extra is missing.
    for module in set(re.findall(r"^(?:import|from) (\w+)", code, re.MULTILINE)):
        if module in EXTRAS:
            for needed in EXTRAS[module]:
                pytest.importorskip(needed)
    cache = tmp_path / "numba-cache"
    _run(["-m", "rmsprop_nb", "--out", "fig.png"], cache, tmp_path)
    script = tmp_path / "readme_block.py"
    script.write_text(code)
    outputs = [_run([script.name], cache, tmp_path) for _ in range(2)]
    same = [re.sub(r"\d+\.\d+ sec", "<time> sec", out) for out in outputs]  # timings differ
    assert same[0] == same[1]
    if "print(" in code and "epoch 20" in code:
        assert f"epoch 20, {BOOK_RMSPROP}" in outputs[0]

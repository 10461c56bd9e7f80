"""Real CUDA compilation without a GPU: every launcher kernel to PTX for sm_90, then ptxas.

Run by tests/test_cuda.py in its own process (the simulator must be off here). Needs NVRTC and
NVVM from pip (``pip install "cuda-toolkit[nvvm,nvrtc]==13.0.*"``); ``ptxas`` (CUDA toolkit)
is optional. Skips the module with the reason when the toolchain is absent.
"""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
    pytest.skip("PTX compilation needs the CUDA simulator off", allow_module_level=True)

from numba import cuda, types, typeof  # noqa: E402

from rmsprop_nb import cuda as rcuda  # noqa: E402

CC = (9, 0)


def _toolchain_error():
    try:
        cuda.compile_ptx(lambda a: None, (types.float32[::1],), cc=CC)
    except Exception as exc:  # NVRTC/NVVM missing or unusable: the reason goes to the skip
        return f"{type(exc).__name__}: {exc}"
    return None


_missing = _toolchain_error()
if _missing:
    pytest.skip(
        "no PTX toolchain (pip install \"cuda-toolkit[nvvm,nvrtc]==13.0.*\"): " + _missing,
        allow_module_level=True,
    )

def _flat(dtype):
    return types.Array(typeof(dtype(0)), 1, "C")


def _update_signature(n_arrays, hyper):
    return lambda dt: (_flat(dt),) * n_arrays + (typeof(hyper(dt)),)


# Every kernel the module launches: (name, kernel dispatcher, its signature for a dtype).
UPDATE_KERNELS = [
    (
        f"rmsprop(momentum={m}, centered={c})",
        rcuda._rmsprop_kernel(m, c),
        _update_signature(5, lambda dt: rcuda.rmsprop_hyper(dt, 0.01, 0.9, 1e-6, momentum=0.5)),
    )
    for m in (False, True)
    for c in (False, True)
] + [
    ("adagrad", rcuda._adagrad_kernel(),
     _update_signature(3, lambda dt: rcuda.adagrad_hyper(dt, 0.01, 1e-6))),
]
def _rows2(dtype):
    return types.Array(typeof(dtype(0)), 2, "C")


_I64 = types.int64[::1]

# The row launchers' kernels: tables as 2-D views, then order, starts and rows (int64).
ROW_KERNELS = [
    (
        f"adagrad rows ({'sequential' if q else 'sum'})",
        rcuda._adagrad_rows_kernel(q),
        lambda dt: (_rows2(dt),) * 3 + (_I64,) * 3
        + (typeof(rcuda.adagrad_hyper(dt, 0.01, 1e-6)),),
    )
    for q in (False, True)
] + [
    (
        f"rmsprop rows (momentum={m}, centered={c}, {'exact' if e else 'lazy'}, "
        f"{'sequential' if q else 'sum'})",
        rcuda._rmsprop_rows_kernel(m, c, e, q),
        lambda dt: (_rows2(dt),) * 5 + (_I64,) * 5 + (types.int64,)
        + (typeof(rcuda.rmsprop_hyper(dt, 0.01, 0.9, 1e-6, momentum=0.5)),),
    )
    for m, c, e, q in ((False, False, True, False), (False, True, True, True),
                       (True, True, False, False), (True, False, False, True))
] + [
    (
        f"catch-up (centered={c})",
        rcuda._catch_up_kernel(c),
        lambda dt: (_rows2(dt),) * 2 + (_I64, types.int64)
        + (typeof(rcuda.rmsprop_hyper(dt, 0.01, 0.9, 1e-6)),),
    )
    for c in (False, True)
]

VARIANTS = UPDATE_KERNELS + ROW_KERNELS + [
    ("nonfinite scan", rcuda._nonfinite_kernel(),
     lambda dt: (_flat(dt), types.int32[::1], types.int64)),
    # Integer helpers of the row launchers (the same code for both dtypes).
    ("gather last_step", rcuda._gather_kernel(), lambda dt: (_I64, _I64, _I64)),
    ("set last_step", rcuda._set_steps_kernel(), lambda dt: (_I64, types.int64)),
    ("first row after step", rcuda._first_after_kernel(),
     lambda dt: (_I64, types.int64, _I64)),
]

DTYPES = [np.float32, np.float64]

# Instructions (not declarations) on a 64-bit float operand, e.g. "add.f64", "cvt.f64.f32".
_F64_INSTRUCTION = re.compile(r"^\s*[a-z][a-z0-9_.]*\.f64\b", re.MULTILINE)


@pytest.fixture(scope="module")
def ptx():
    """PTX of every (variant, dtype), compiled once for the module."""
    out = {}
    for name, kernel, signature in VARIANTS:
        for dt in DTYPES:
            code, _ = cuda.compile_ptx(kernel.py_func, signature(dt), cc=CC)
            out[name, np.dtype(dt).name] = code
    return out


@pytest.mark.parametrize("name", [v[0] for v in VARIANTS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kernel_compiles_to_ptx_for_sm90(ptx, name, dtype):
    code = ptx[name, dtype]
    assert ".target sm_90" in code
    assert ".visible .entry" in code


@pytest.mark.parametrize("name", [v[0] for v in VARIANTS])
def test_float32_kernel_has_no_float64_arithmetic(ptx, name):
    code = ptx[name, "float32"]
    assert _F64_INSTRUCTION.findall(code) == []
    assert ".f64" not in code  # not even a float64 parameter or register


@pytest.mark.parametrize("name", [v[0] for v in UPDATE_KERNELS + ROW_KERNELS])
def test_float64_kernel_computes_in_float64(ptx, name):
    # The updates take a square root; the catch-up multiplies by gamma**k.
    pattern = r"mul\.rn\.f64" if name.startswith("catch-up") else r"sqrt\.rn\.f64"
    assert re.search(pattern, ptx[name, "float64"])


def test_float32_kernel_uses_ieee_sqrt_and_division(ptx):
    # No fastmath: correctly rounded sqrt/div keep the GPU within an ulp or two of the CPU.
    code = ptx["rmsprop(momentum=False, centered=False)", "float32"]
    assert "sqrt.rn.f32" in code and "div.rn.f32" in code
    assert "sqrt.approx" not in code and "div.approx" not in code


def _ptxas():
    """ptxas from the pip wheel (cuda-toolkit[nvcc]), else PATH, else the system toolkit."""
    try:
        from cuda.pathfinder import find_nvidia_binary_utility

        found = find_nvidia_binary_utility("ptxas")
    except Exception:  # an older cuda-pathfinder, or none
        found = None
    return found or shutil.which("ptxas") or next(
        (p for p in ("/usr/local/cuda/bin/ptxas",) if os.access(p, os.X_OK)), None
    )


@pytest.mark.skipif(
    _ptxas() is None,
    reason='ptxas not found (pip install "cuda-toolkit[nvcc]==13.0.*", or PATH, '
    "or /usr/local/cuda/bin)",
)
def test_ptxas_assembles_every_kernel_without_spills(ptx, tmp_path):
    lines = []
    for (name, dtype), code in sorted(ptx.items()):
        src = tmp_path / "k.ptx"
        src.write_text(code)
        r = subprocess.run(
            [_ptxas(), "-arch=sm_90", "-v", str(src), "-o", str(tmp_path / "k.cubin")],
            capture_output=True, text=True,
        )
        assert r.returncode == 0, r.stderr
        info = r.stdout + r.stderr
        registers = int(re.search(r"Used (\d+) registers", info).group(1))
        assert "0 bytes spill stores" in info and "0 bytes spill loads" in info, info
        lines.append(f"{name:70s} {dtype:8s} {registers:3d} registers")
    print(f"\nptxas -arch=sm_90 -v ({_ptxas()}):\n" + "\n".join(lines))


def test_user_kernel_with_device_functions_compiles(ptx):
    # The docstring's pattern: tuple targets that are array elements.
    def user_kernel(x, g, s, h):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            x[i], s[i] = rcuda.adagrad_update(x[i], g[i], s[i], h)

    arr = types.float32[::1]
    h = typeof(rcuda.adagrad_hyper(np.float32, 0.1, 1e-6))
    code, _ = cuda.compile_ptx(user_kernel, (arr, arr, arr, h), cc=CC)
    assert ".f64" not in code


@pytest.mark.parametrize("which", ["x", "g", "s"])
def test_device_function_refuses_mixed_dtypes_at_compile_time(which):
    # A float64 literal in a float32 kernel (0.2 * x[i]) makes g float64: refused, not
    # silently computed in float64 and stored back as float32.
    def user_kernel(x, c, s, h):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            g = c[i] * x[i]
            xi, si = rcuda.adagrad_update(x[i], g, s[i], h)
            x[i] = xi
            s[i] = si

    f32, f64 = types.float32[::1], types.float64[::1]
    arrays = {"x": (f64, f32, f64), "g": (f32, f64, f32), "s": (f32, f32, f64)}[which]
    h = typeof(rcuda.adagrad_hyper(np.float32, 0.1, 1e-6))
    with pytest.raises(TypeError, match=rf"{which} is float64 but the hyperparameters are float32"):
        cuda.compile_ptx(user_kernel, arrays + (h,), cc=CC)

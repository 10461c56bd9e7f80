"""Threads and fork: when the parallel loops may run, and one step per optimizer at a time.

Fork. Numba's default threading layer here is GNU OpenMP (``omp``), the fastest one. A child
forked after the parent started that thread pool is killed (SIGTERM, "fork() called from a
process already using GNU OpenMP, this is unsafe") as soon as it enters a parallel region;
serial code is safe. So a forked child of such a parent runs the serial loops only: the hook
below clears the flag in the child, and every path to a parallel loop reads it first: Python
reads :data:`PARALLEL`; compiled code (the kernels called from a user's ``@njit`` function)
calls :func:`parallel_ok`, which reads the same flag from a C variable (one load per call).
The parent keeps the parallel loops, and a parent that never ran one (no thread pool yet)
gives children that may start their own.

Threads. The kernels release the GIL, and the ``omp`` layer accepts parallel regions from several
threads at once, so different optimizers may step in different threads. One optimizer is not
shared: a second thread entering it while it is busy gets a :class:`RuntimeError` (see
:func:`busy_error`) instead of racing on its state.
"""

from __future__ import annotations

import ctypes
import os

from llvmlite import binding, ir
from numba import types
from numba.extending import intrinsic

#: False in a process forked from a parent that had started Numba's OpenMP thread pool.
PARALLEL = True

# The same flag for compiled code, found by symbol name: a cached function that reads it is
# linked to this process's variable when it is loaded.
_FLAG = ctypes.c_int32(1)
_SYMBOL = "rmsprop_nb_parallel_ok"
binding.add_symbol(_SYMBOL, ctypes.addressof(_FLAG))


@intrinsic
def parallel_ok(typingctx):
    """True unless this process is a forked child that must not enter a parallel region."""

    def codegen(context, builder, sig, args):
        module = builder.module
        flag = module.globals.get(_SYMBOL)
        if flag is None:
            flag = ir.GlobalVariable(module, ir.IntType(32), _SYMBOL)
        return builder.icmp_unsigned("!=", builder.load(flag), ir.Constant(ir.IntType(32), 0))

    return types.boolean(), codegen


def _omp_pool_started():
    from numba.np.ufunc import parallel

    if not getattr(parallel, "_is_initialized", False):
        return False
    try:
        return parallel.threading_layer() == "omp"
    except ValueError:
        return False


def _after_fork_in_child():
    global PARALLEL
    if PARALLEL and _omp_pool_started():
        PARALLEL = False
        _FLAG.value = 0


os.register_at_fork(after_in_child=_after_fork_in_child)


def busy_error(name, what):
    return RuntimeError(
        f"{name}.{what}: this optimizer is being used by another thread; an optimizer may be "
        "used by one thread at a time (use one optimizer per thread, or a lock of your own)"
    )

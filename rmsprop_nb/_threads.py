"""Threads and fork: when the parallel loops may run, and one step per optimizer at a time.

Fork. Numba's default threading layer here is GNU OpenMP (``omp``), the fastest one. A child
forked after the parent started that thread pool is killed (SIGTERM, "fork() called from a
process already using GNU OpenMP, this is unsafe") as soon as it enters a parallel region;
serial code is safe. So a forked child of such a parent runs the serial loops only: the hook
below clears :data:`PARALLEL` in the child, and the public kernels and the optimizers read it
(one attribute read per call) to pick their loop. The parent keeps the parallel loops, and a
parent that never ran one (no thread pool yet) gives children that may start their own.

Threads. The kernels release the GIL, and the ``omp`` layer accepts parallel regions from several
threads at once, so different optimizers may step in different threads. One optimizer is not
shared: a second thread entering it while it is busy gets a :class:`RuntimeError` (see
:func:`busy_error`) instead of racing on its state.
"""

from __future__ import annotations

import os

#: False in a process forked from a parent that had started Numba's OpenMP thread pool.
PARALLEL = True


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


os.register_at_fork(after_in_child=_after_fork_in_child)


def busy_error(name, what):
    return RuntimeError(
        f"{name}.{what}: this optimizer is being used by another thread; an optimizer may be "
        "used by one thread at a time (use one optimizer per thread, or a lock of your own)"
    )

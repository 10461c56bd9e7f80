"""Start-up costs in a fresh process, as a new user meets them: import, then first calls.

``python first_call.py SCENARIO`` prints one JSON object of seconds. ``run.py`` runs every
scenario in its own process, twice: with an empty ``NUMBA_CACHE_DIR`` (every kernel is compiled:
the cold start) and again with the same folder (every kernel is loaded from the disk cache).
Each first call includes Numba's own one-time set-up (its typing and target contexts, about
0.3 s here), as it does for a user.

Scenarios:

* ``optimizer``: the first float32 ``RMSProp.step`` on a small array, then each further
  option combination (momentum, centered), AdaGrad, and a large array (the parallel loops);
* ``kernel``: the first ``rmsprop_step`` from Python on small float64 arrays, then
  ``adagrad_step``, then a large float32 array;
* ``njit``: README's ``@njit`` block (a user function calling ``rmsprop_step``), first call.
"""

import json
import sys
import time

t0 = time.perf_counter()
import numpy as np  # noqa: E402

import rmsprop_nb  # noqa: E402

out = {"import rmsprop_nb (with numpy, numba)": time.perf_counter() - t0}


def first(label, fn):
    start = time.perf_counter()
    fn()
    out[label] = time.perf_counter() - start


def optimizer():
    x, g = np.zeros(10, np.float32), np.ones(10, np.float32)
    first("RMSProp.step float32, 10 elements", lambda: rmsprop_nb.RMSProp([x]).step([g]))
    first("+ momentum=0.9", lambda: rmsprop_nb.RMSProp([x], momentum=0.9).step([g]))
    first("+ centered=True", lambda: rmsprop_nb.RMSProp([x], centered=True).step([g]))
    first("AdaGrad.step float32, 10 elements", lambda: rmsprop_nb.AdaGrad([x]).step([g]))
    big, gbig = np.zeros(1 << 20, np.float32), np.ones(1 << 20, np.float32)
    first("RMSProp.step float32, 2^20 elements (parallel)",
          lambda: rmsprop_nb.RMSProp([big]).step([gbig]))


def kernel():
    x, g, s = np.zeros(10), np.ones(10), np.zeros(10)
    first("rmsprop_step float64, 10 elements", lambda: rmsprop_nb.rmsprop_step(
        x, g, s, 0.01, 0.9, 1e-6))
    first("adagrad_step float64, 10 elements", lambda: rmsprop_nb.adagrad_step(
        x, g, s, 0.01, 1e-6))
    big, gbig, sbig = (np.zeros(1 << 20, np.float32) for _ in range(3))
    first("rmsprop_step float32, 2^20 elements (parallel)", lambda: rmsprop_nb.rmsprop_step(
        big, gbig, sbig, 0.01, 0.9, 1e-6))


def njit():
    import numba

    from rmsprop_nb.kernels import rmsprop_step

    @numba.njit
    def train(x, s, steps):
        for _ in range(steps):
            g = np.array([0.2, 4.0]) * x
            rmsprop_step(x, g, s, 0.4, 0.9, 1e-6)

    x, s = np.array([-5.0, -2.0]), np.zeros(2)
    first("README's @njit train(x, s, 20)", lambda: train(x, s, 20))


{"optimizer": optimizer, "kernel": kernel, "njit": njit}[sys.argv[1]]()
out["total"] = time.perf_counter() - t0
json.dump(out, sys.stdout)

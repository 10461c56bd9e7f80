"""Start-up costs in a fresh process: import, then the first call of each public entry point.

Run by ``run.py`` in subprocesses: once with an empty ``NUMBA_CACHE_DIR`` (every kernel is
compiled: the cold start) and once more with the same folder (every kernel is loaded from the
disk cache). Prints one JSON object of seconds.

Numba itself has a one-time set-up on the first call of *any* compiled function, cached or
not (its typing and target contexts, about 0.3-0.6 s here); the first call of a trivial cached
function, made before the package's, measures it so the package's own share can be told apart.
"""

import json
import sys
import time

t0 = time.perf_counter()
import numba  # noqa: E402
import numpy as np  # noqa: E402

t1 = time.perf_counter()
import rmsprop_nb  # noqa: E402

t2 = time.perf_counter()


@numba.njit(cache=True)
def _trivial(a):
    return a + 1.0


def first(label, fn, out):
    start = time.perf_counter()
    fn()
    out[label] = time.perf_counter() - start


out = {"import numba, numpy": t1 - t0, "import rmsprop_nb": t2 - t1}
first("Numba set-up (trivial function)", lambda: _trivial(1.0), out)

# 2**20 float32 elements (4 MiB per array): above the parallel threshold, so the first kernel
# call brings in the serial and the parallel loop.
x = np.zeros(1 << 20, np.float32)
g = np.ones_like(x)
s = np.zeros_like(x)
first("rmsprop_step", lambda: rmsprop_nb.rmsprop_step(x, g, s, 0.01, 0.99, 1e-8, False), out)
first("adagrad_step", lambda: rmsprop_nb.adagrad_step(x, g, s, 0.01, 1e-10, False), out)
first("RMSProp.step", lambda: rmsprop_nb.RMSProp([x]).step([g]), out)
first("AdaGrad.step", lambda: rmsprop_nb.AdaGrad([x]).step([g]), out)
out["total"] = time.perf_counter() - t0
json.dump(out, sys.stdout)

"""Compile ahead of time: ``python -m rmsprop_nb.warmup``, or :func:`warm_up` from Python.

The kernels are compiled on first use, for the types they meet, and cached on disk. A fresh
machine, container or CI runner pays that once per kind of call (see the Benchmarks page for
the figures). Run the warm-up where the cache will be kept (e.g. a ``RUN`` line of a Docker
image, with ``NUMBA_CACHE_DIR`` set to a folder of the image) and later processes load every
kernel from the disk cache in milliseconds.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

__all__ = ["warm_up"]

_ALGORITHMS = ("rmsprop", "adagrad")
_DTYPES = ("float32", "float64")
# RMSProp's state arrays that change the compiled code: (momentum, centered).
_RMSPROP_STATE = ((False, False), (True, False), (False, True), (True, True))


def warm_up(dtypes=_DTYPES, algorithms=_ALGORITHMS, *, parallel=True, rows=True, torch=False,
            progress=None):
    r"""Compile (or load from the disk cache) the kernels that typical calls use.

    For each dtype and algorithm it calls, on throw-away arrays: the kernel
    (:func:`~rmsprop_nb.kernels.rmsprop_step` / :func:`~rmsprop_nb.kernels.adagrad_step`,
    which a user's ``@numba.njit`` function also calls), and the optimizer's step with
    ``nonfinite="raise"`` (which also compiles the NaN/inf scan), for every combination of
    RMSProp's ``momentum`` and ``centered`` state, on a small array and, with ``parallel``, on
    one large enough for the parallel loops (:data:`~rmsprop_nb.kernels.PARALLEL_MIN_BYTES`).
    Calls of the same kinds are then loaded from the cache: the optimizers (any number of
    arrays; a parameter of another number of dimensions adds a small gradient check, about
    0.1 s), and kernel calls with 1-D writeable arrays, float hyperparameters and bool flags.
    Other argument types (an ``int`` learning rate, a read-only gradient, 2-D arrays) are
    compiled on their first use, as without a warm-up.

    Parameters
    ----------
    dtypes : sequence of str, default ("float32", "float64")
        The array dtypes to compile for.
    algorithms : sequence of {"rmsprop", "adagrad"}, default both
        The algorithms to compile.
    parallel : bool, default True
        Also compile the parallel loops (for arrays of at least ``PARALLEL_MIN_BYTES``).
    rows : bool, default True
        Also the row-sparse kernels (:func:`~rmsprop_nb.kernels.adagrad_step_rows`,
        :func:`~rmsprop_nb.kernels.rmsprop_step_rows` exact and lazy,
        :func:`~rmsprop_nb.kernels.rmsprop_catch_up`) and the optimizers' ``SparseGrad`` path,
        on tables of 4 columns and int64 row indices.
    torch : bool, default False
        Also take a step of :mod:`rmsprop_nb.torch`'s optimizers on CPU tensors (needs
        PyTorch; importing it takes about a second).
    progress : callable or None
        Called as ``progress(label, seconds)`` after each item (the command line prints them).

    Returns
    -------
    list of (str, float)
        What was warmed up and the seconds it took: about 0.3-1 s per item when compiled,
        milliseconds when already cached.

    Raises
    ------
    ValueError
        An unknown dtype or algorithm.

    Notes
    -----
    The cache lives where Numba puts it: ``NUMBA_CACHE_DIR`` if set, else ``__pycache__``
    next to the package (or a user cache folder when that is not writable). With
    ``RMSPROP_NB_CACHE=0`` nothing is written and a warm-up only helps the running process.

    Examples
    --------
    >>> from rmsprop_nb.warmup import warm_up
    >>> done = warm_up(["float64"], ["adagrad"],
    ...                parallel=False, rows=False)
    >>> [label for label, seconds in done]
    ['adagrad_step float64 small', 'AdaGrad.step float64 small']
    """
    from . import AdaGrad, RMSProp, kernels

    dtypes = [np.dtype(d).name for d in dtypes]
    for d in dtypes:
        if d not in _DTYPES:
            raise ValueError(f"warm_up: dtypes must be float32 or float64, got {d!r}")
    for a in algorithms:
        if a not in _ALGORITHMS:
            raise ValueError(f"warm_up: algorithms must be 'rmsprop' or 'adagrad', got {a!r}")
    sizes = {"small": 4}
    done = []

    def timed(label, fn):
        start = time.perf_counter()
        fn()
        done.append((label, time.perf_counter() - start))
        if progress is not None:
            progress(*done[-1])

    for dtype in dtypes:
        if parallel:
            sizes["large"] = kernels.PARALLEL_MIN_BYTES // np.dtype(dtype).itemsize
        for size_name, n in sizes.items():
            def arrays(k):
                return [np.zeros(n, dtype) for _ in range(k)]

            label = f"{dtype} {size_name}"
            if "rmsprop" in algorithms:
                for momentum, centered in _RMSPROP_STATE:
                    x, g, s, buf, avg = arrays(5)
                    opts = "" if not (momentum or centered) else (
                        " +" + "+".join(k for k, on in (("momentum", momentum),
                                                        ("centered", centered)) if on))
                    timed(f"rmsprop_step {label}{opts}", lambda: kernels.rmsprop_step(
                        x, g, s, 0.01, 0.9, 1e-6, True, 0.0, False, 0.9 if momentum else 0.0,
                        buf if momentum else None, centered, avg if centered else None,
                    ))
                    timed(f"RMSProp.step {label}{opts}", lambda: RMSProp(
                        [x], momentum=0.9 if momentum else 0.0, centered=centered,
                        nonfinite="raise",
                    ).step([g]))
            if "adagrad" in algorithms:
                x, g, s = arrays(3)
                timed(f"adagrad_step {label}", lambda: kernels.adagrad_step(
                    x, g, s, 0.01, 1e-6, True, 0.0, False, 0.0, 1))
                timed(f"AdaGrad.step {label}",
                      lambda: AdaGrad([x], nonfinite="raise").step([g]))
            if rows:
                _warm_rows(algorithms, dtype, n, label, timed)
            if torch:
                _warm_torch(algorithms, dtype, n, label, timed)
    return done


def _warm_rows(algorithms, dtype, n, label, timed):
    """The row-sparse kernels (and the optimizers' SparseGrad path, which calls them): a
    table of 4 columns, ``n`` elements of gradient (the size decides the loop)."""
    from . import SparseGrad, kernels
    from . import AdaGrad, RMSProp

    k = max(1, n // 4)
    table = lambda: np.zeros((k, 4), dtype)  # noqa: E731
    rows = np.arange(k, dtype=np.int64)
    g = np.ones((k, 4), dtype)
    if "rmsprop" in algorithms:
        x, s, last = table(), table(), np.zeros(k, np.int64)
        timed(f"rmsprop_step_rows {label}", lambda: kernels.rmsprop_step_rows(
            x, rows, g, s, 0.01, 0.9, 1e-6, last_step=last, step=1))
        timed(f"rmsprop_step_rows {label} lazy", lambda: kernels.rmsprop_step_rows(
            x, rows, g, s, 0.01, 0.9, 1e-6, lazy=True))
        timed(f"rmsprop_catch_up {label}", lambda: kernels.rmsprop_catch_up(s, last, 2, 0.9))
        timed(f"RMSProp.step {label} SparseGrad",
              lambda: RMSProp([table()]).step([SparseGrad(rows, g)]))
    if "adagrad" in algorithms:
        x, s = table(), table()
        timed(f"adagrad_step_rows {label}",
              lambda: kernels.adagrad_step_rows(x, rows, g, s, 0.01, 1e-6))
        timed(f"AdaGrad.step {label} SparseGrad",
              lambda: AdaGrad([table()]).step([SparseGrad(rows, g)]))


def _warm_torch(algorithms, dtype, n, label, timed):
    import torch

    import rmsprop_nb.torch as rt

    classes = {"rmsprop": rt.RMSprop, "adagrad": rt.Adagrad}
    for name in algorithms:
        p = torch.zeros(n, dtype=getattr(torch, dtype), requires_grad=True)
        p.grad = torch.ones_like(p)
        opt = classes[name]([p])
        timed(f"rmsprop_nb.torch.{classes[name].__name__} {label}", opt.step)


def main(argv=None):
    """``python -m rmsprop_nb.warmup``: warm the disk cache up, print what took how long."""
    parser = argparse.ArgumentParser(
        prog="python -m rmsprop_nb.warmup",
        description="Compile rmsprop_nb's kernels into Numba's disk cache ahead of time "
        "(e.g. while building a Docker image), so that later processes load them in "
        "milliseconds. The cache folder is NUMBA_CACHE_DIR if set.",
    )
    parser.add_argument("--dtypes", nargs="+", choices=_DTYPES, default=list(_DTYPES),
                        help="array dtypes (default: both)")
    parser.add_argument("--algorithms", nargs="+", choices=_ALGORITHMS,
                        default=list(_ALGORITHMS), help="algorithms (default: both)")
    parser.add_argument("--serial-only", action="store_true",
                        help="skip the parallel loops (for programs with small arrays only)")
    parser.add_argument("--no-rows", action="store_true",
                        help="skip the row-sparse kernels")
    parser.add_argument("--torch", action="store_true",
                        help="also rmsprop_nb.torch's optimizers (needs PyTorch)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    done = warm_up(args.dtypes, args.algorithms, parallel=not args.serial_only,
                   rows=not args.no_rows, torch=args.torch, progress=lambda label, s: print(f"{s:7.2f} s  {label}", flush=True))
    print(f"{time.perf_counter() - start:7.2f} s  in all ({len(done)} kinds of call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

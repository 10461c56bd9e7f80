"""How rmsprop_nb compiles: one place for the Numba options, the disk cache and type errors.

Every compiled function of the package is made by :func:`jit`. It fixes the options that
matter for speed and for float semantics, and it gives the public kernels a Python-level type
check that costs nothing on the hot path: Numba calls ``_compile_for_args`` only when no compiled
specialization matches the argument types, which is exactly when a wrong dtype, a read-only or
non-contiguous array, or a non-array arrives. The check turns what would be a long Numba
``TypingError`` into a ``TypeError``/``ValueError`` that names the argument.

It also mends a Numba bug that makes cached parallel code crash (numba#8578, see
:meth:`_CheckedDispatcher.add_overload`), for the package's own functions and for every user
function that calls them.
"""

from __future__ import annotations

import os
import warnings

from numba.core.dispatcher import OmittedArg
from numba.core.registry import CPUDispatcher

#: Set ``RMSPROP_NB_CACHE=0`` to keep compiled kernels in memory only (no files written).
CACHE = os.environ.get("RMSPROP_NB_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")

# error_model="numpy": the default "python" model inserts a zero-division check that blocks
# SIMD (5-7x slower here) and gives the same NaN/inf results as NumPy.
# No fastmath: it would let LLVM assume away NaN/inf, which the NaN policy relies on.
_OPTIONS = dict(nopython=True, nogil=True, error_model="numpy")


class _CheckedDispatcher(CPUDispatcher):
    """A CPU dispatcher that validates argument types before compiling a new specialization,
    and whose cached code keeps the initialisers it needs."""

    _type_check = None

    def _compile_for_args(self, *args, **kws):
        if self._type_check is not None:
            self._type_check(*(a.value if isinstance(a, OmittedArg) else a for a in args))
        return super()._compile_for_args(*args, **kws)

    def add_overload(self, cres):
        # Numba bug (numba#8578). Code with a parallel loop records an initialiser (start the
        # threading layer and register its symbols, e.g. allocate_sched) in the library's
        # _reload_init, and every function that links that library inherits it when compiled.
        # A library loaded from the disk cache comes back with that set empty (the compile
        # result keeps the list, the library does not), so a function compiled on top of it
        # (ours, or a user's @njit function calling our kernel) links parallel code without the
        # initialiser: "LLVM ERROR: Symbol not found: allocate_sched" when it is compiled, or a
        # segfault when *it* is later loaded from a cache. Giving the library its initialisers
        # back lets them propagate as Numba intends, in every order of first use.
        if cres.reload_init and cres.library is not None:
            cres.library._reload_init.update(cres.reload_init)
        super().add_overload(cres)


def _enable_cache(dispatcher):
    if not CACHE:
        return
    try:
        dispatcher.enable_caching()
    except RuntimeError as exc:  # neither the package folder nor a user cache is writable
        warnings.warn(
            f"rmsprop_nb: compiled kernels will not be cached on disk ({exc}); "
            "set NUMBA_CACHE_DIR to a writable folder to cache them",
            RuntimeWarning,
            stacklevel=3,
        )


def jit(fn=None, *, parallel=False, type_check=None, inline=False):
    """Compile ``fn`` with the package's Numba options (usable as ``@jit`` or ``@jit(...)``).

    ``type_check`` is a factory ``f -> check``; ``check(*args)`` runs in Python before each new
    specialization is compiled and raises ``TypeError``/``ValueError`` for argument types the
    function does not accept. ``inline=True`` inlines ``fn`` into its callers when they are
    compiled (no library of its own to optimise and link: faster first compiles for small
    helpers called in one or two places).
    """

    def wrap(f):
        options = dict(_OPTIONS, parallel=parallel)
        if inline:
            options["inline"] = "always"
        dispatcher = _CheckedDispatcher(py_func=f, locals={}, targetoptions=options)
        dispatcher._type_check = None if type_check is None else type_check(f)
        _enable_cache(dispatcher)
        return dispatcher

    return wrap if fn is None else wrap(fn)

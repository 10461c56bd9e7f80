"""rmsprop_nb: fast, documented Numba kernels for the AdaGrad and RMSProp optimizers.

Public API: the optimizer classes :class:`RMSProp` and :class:`AdaGrad` (NumPy arrays, updated
in place, in parameter groups with schedules if wished; a :class:`SparseGrad` updates only the
rows it names), the kernels in :mod:`rmsprop_nb.kernels` (callable from Python and from
``@njit`` code; dense and row-sparse), the book's 2-D example in :mod:`rmsprop_nb.toy` and its
minibatch runs in :mod:`rmsprop_nb.airfoil`, and :mod:`rmsprop_nb.warmup` to compile ahead of
time. Imported on demand, with their extras: the GPU kernels in :mod:`rmsprop_nb.cuda`
(``numba-cuda``), drop-in ``torch.optim`` optimizers in :mod:`rmsprop_nb.torch` (``torch``) and
the optimizers over Dask arrays in :mod:`rmsprop_nb.dask` (``dask``, ``distributed``).
"""

from . import kernels
from ._sparse import SparseGrad
from .kernels import (
    adagrad_step,
    adagrad_step_rows,
    rmsprop_catch_up,
    rmsprop_step,
    rmsprop_step_rows,
)
from .optimizers import AdaGrad, RMSProp

__version__ = "0.2.0"

__all__ = [
    "RMSProp", "AdaGrad", "SparseGrad", "rmsprop_step", "adagrad_step", "rmsprop_step_rows",
    "adagrad_step_rows", "rmsprop_catch_up", "kernels", "__version__",
]

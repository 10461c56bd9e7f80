"""rmsprop_nb: fast, documented Numba kernels for the AdaGrad and RMSProp optimizers.

Public API: the optimizer classes :class:`RMSProp` and :class:`AdaGrad` (NumPy arrays, updated
in place, in parameter groups with schedules if wished), the kernels in
:mod:`rmsprop_nb.kernels` (callable from Python and from ``@njit`` code), the book's 2-D
example in :mod:`rmsprop_nb.toy` and its minibatch runs in :mod:`rmsprop_nb.airfoil`, and
:mod:`rmsprop_nb.warmup` to compile ahead of time. Imported on demand, with their extras: the
GPU kernels in :mod:`rmsprop_nb.cuda` (``numba-cuda``), drop-in ``torch.optim`` optimizers in
:mod:`rmsprop_nb.torch` (``torch``) and the optimizers over Dask arrays in
:mod:`rmsprop_nb.dask` (``dask``, ``distributed``).
"""

from . import kernels
from .kernels import adagrad_step, rmsprop_step
from .optimizers import AdaGrad, RMSProp

__version__ = "0.2.0"

__all__ = ["RMSProp", "AdaGrad", "rmsprop_step", "adagrad_step", "kernels", "__version__"]

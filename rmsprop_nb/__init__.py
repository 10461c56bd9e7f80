"""rmsprop_nb: fast, documented Numba kernels for the AdaGrad and RMSProp optimizers.

Public API: the optimizer classes :class:`RMSProp` and :class:`AdaGrad` (NumPy arrays, updated
in place), the kernels in :mod:`rmsprop_nb.kernels` (callable from Python and from ``@njit``
code), the book's 2-D example in :mod:`rmsprop_nb.toy` and, optionally, the GPU kernels in
:mod:`rmsprop_nb.cuda` (imported on demand; needs ``numba-cuda``) and drop-in ``torch.optim``
optimizers in :mod:`rmsprop_nb.torch` (imported on demand; needs ``torch``).
"""

from . import kernels
from .kernels import adagrad_step, rmsprop_step
from .optimizers import AdaGrad, RMSProp

__version__ = "0.1.0"

__all__ = ["RMSProp", "AdaGrad", "rmsprop_step", "adagrad_step", "kernels", "__version__"]

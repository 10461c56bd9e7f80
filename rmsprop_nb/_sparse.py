"""A row-sparse gradient for the optimizers: :class:`SparseGrad`."""

from __future__ import annotations

import numpy as np

from . import _validation

__all__ = ["SparseGrad"]


class SparseGrad:
    r"""A row-sparse gradient: ``values[j]`` is the gradient of row ``rows[j]`` of a parameter.

    Pass it to :meth:`RMSProp.step <rmsprop_nb.RMSProp.step>` or
    :meth:`AdaGrad.step <rmsprop_nb.AdaGrad.step>` in place of the dense gradient of a
    parameter whose first axis indexes rows (an embedding table): the step then costs the rows
    present, not the whole table. It stands for the dense gradient :math:`G` with

    .. math:: G_r = \sum_{j:\ \mathrm{rows}_j = r} \mathrm{values}_j

    (zeros on the rows not present; repeated rows are summed, as PyTorch's ``coalesce`` and
    TensorFlow's ``IndexedSlices`` do), which :meth:`to_dense` builds. Nothing is copied:
    the arrays are used as given and only read.

    Parameters
    ----------
    rows : ndarray of int, shape (k,)
        Row indices into the parameter's first axis, any integer dtype, any order, repeats
        allowed.
    values : ndarray, shape (k, ...)
        ``values[j]`` is the gradient of row ``rows[j]``: the dtype of the parameter and the
        shape of ``param[rows]``, C-contiguous.

    Attributes
    ----------
    rows, values : ndarray
        The arrays given (``rows, values = grad`` unpacks them).

    Raises
    ------
    TypeError
        ``rows`` not an integer array, or ``values`` not an array.
    ValueError
        ``rows`` not 1-D, ``values`` without a first axis of ``len(rows)`` entries.

    See Also
    --------
    rmsprop_nb.kernels.adagrad_step_rows, rmsprop_nb.kernels.rmsprop_step_rows : the kernels
        the optimizers call with it.

    Examples
    --------
    The gradient of ``E[ids].sum()`` for an embedding table ``E`` of 5 rows of 2 (each id
    contributes ones to its row):

    >>> import numpy as np
    >>> from rmsprop_nb import SparseGrad
    >>> ids = np.array([3, 0, 3])
    >>> grad = SparseGrad(ids, np.ones((3, 2)))
    >>> grad
    SparseGrad(rows=array([3, 0, 3]), values=<float64 (3, 2)>)
    >>> grad.to_dense(5)
    array([[1., 1.],
           [0., 0.],
           [0., 0.],
           [2., 2.],
           [0., 0.]])
    """

    __slots__ = ("rows", "values")
    __module__ = "rmsprop_nb"  # its public name (documentation, repr of the class, pickle)

    def __init__(self, rows, values):
        _validation._check_index_array("SparseGrad: rows", _validation.describe(rows))
        if not isinstance(values, np.ndarray):
            raise _validation._not_an_array("SparseGrad: values", values)
        if values.ndim == 0 or values.shape[0] != rows.shape[0]:
            raise ValueError(
                f"SparseGrad: values has shape {values.shape} but rows has {rows.shape[0]} "
                "entries; values[j] is the gradient of row rows[j], so values must have "
                f"{rows.shape[0]} rows"
            )
        self.rows = rows
        self.values = values

    def __iter__(self):
        return iter((self.rows, self.values))

    def __repr__(self):
        rows = np.array2string(self.rows, threshold=8, separator=", ")
        v = self.values
        return f"SparseGrad(rows=array({rows}), values=<{v.dtype} {v.shape}>)"

    def to_dense(self, num_rows):
        """The dense gradient this stands for: ``num_rows`` rows, the values of repeated rows
        summed in order, zeros elsewhere (a new array of the values' dtype)."""
        dense = np.zeros((int(num_rows),) + self.values.shape[1:], self.values.dtype)
        np.add.at(dense, self.rows, self.values)
        return dense

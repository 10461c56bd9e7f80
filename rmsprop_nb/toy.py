r"""The book's 2-D harness: the quadratic :func:`f_2d`, :func:`train_2d` and its figure.

*Dive into Deep Learning* (§7.5 AdaGrad, §7.6 RMSProp) shows each optimizer on the
ill-conditioned quadratic :math:`f(x) = 0.1 x_1^2 + 2 x_2^2`, starting at :math:`(-5, -2)`:
20 steps, one printed line, one trajectory drawn over the contours of :math:`f`. This module
reproduces that experiment with the package's own kernels (:mod:`rmsprop_nb.kernels`), so the
book's printed numbers double as an end-to-end check. (The sections' minibatch runs on the
airfoil data are in :mod:`rmsprop_nb.airfoil`.)

matplotlib is optional: only :func:`show_trace_2d` needs it, and imports it when called.
"""

from __future__ import annotations

import numbers

import numpy as np

from .kernels import adagrad_step, rmsprop_step

__all__ = ["f_2d", "f_2d_grad", "train_2d", "show_trace_2d"]

_OPTIMIZERS = ("rmsprop", "adagrad")


def f_2d(x1, x2):
    r"""The book's objective :math:`f(x) = 0.1 x_1^2 + 2 x_2^2`.

    Parameters
    ----------
    x1, x2 : float or ndarray
        Coordinates; arrays are combined element-wise (e.g. a ``np.meshgrid`` for contours).

    Returns
    -------
    float or ndarray
        :math:`0.1 x_1^2 + 2 x_2^2`.

    References
    ----------
    .. [1] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       (PyTorch edition, "AdaGrad"), https://d2l.ai.

    Examples
    --------
    >>> f_2d(-5.0, -2.0)
    10.5
    >>> import numpy as np
    >>> f_2d(np.array([0.0, 10.0]), np.array([1.0, 0.0]))
    array([ 2., 10.])
    """
    return 0.1 * x1**2 + 2 * x2**2


def f_2d_grad(x1, x2):
    r"""The gradient of :func:`f_2d`: :math:`(0.2 x_1, 4 x_2)`.

    Parameters
    ----------
    x1, x2 : float or ndarray
        Coordinates.

    Returns
    -------
    tuple
        ``(0.2 * x1, 4 * x2)``.

    References
    ----------
    .. [1] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       (PyTorch edition, "AdaGrad"), https://d2l.ai.

    Examples
    --------
    >>> f_2d_grad(-5.0, -2.0)
    (-1.0, -8.0)
    """
    return 0.2 * x1, 4 * x2


def train_2d(
    optimizer="rmsprop", *, lr=0.4, gamma=None, eps=1e-6, steps=20, x0=(-5.0, -2.0),
    f_grad=f_2d_grad, verbose=True, **options,
):
    r"""Run an optimizer of this package on a 2-D problem, as the book's ``train_2d`` does.

    Starting at ``x0``, each step evaluates ``f_grad`` at the current point and calls
    :func:`~rmsprop_nb.kernels.rmsprop_step` or :func:`~rmsprop_nb.kernels.adagrad_step` on a
    float64 array of two elements. With the defaults this is the book's RMSProp example:

    .. math::

        s \leftarrow \gamma s + (1 - \gamma)\, g \odot g, \qquad
        x \leftarrow x - \eta\, \frac{g}{\sqrt{s + \epsilon}}

    Parameters
    ----------
    optimizer : {"rmsprop", "adagrad"}, default "rmsprop"
        Which kernel to run.
    lr : float, default 0.4
        Learning rate :math:`\eta`.
    gamma : float or None, default None
        RMSProp's decay rate :math:`\gamma`; None means 0.9 for RMSProp. AdaGrad has no decay
        rate: it must stay None.
    eps : float, default 1e-6
        :math:`\epsilon`, inside the square root unless ``eps_in_sqrt=False`` is passed.
    steps : int, default 20
        Number of steps (the book's epochs), at least 1.
    x0 : pair of float, default (-5.0, -2.0)
        Starting point.
    f_grad : callable, default :func:`f_2d_grad`
        ``f_grad(x1, x2) -> (g1, g2)``, the gradient of the objective.
    verbose : bool, default True
        Print the book's line ``epoch N, x1 ..., x2 ...`` for the last point.
    **options
        Passed on to the kernel: ``eps_in_sqrt``, ``weight_decay``, ``maximize``, and for
        RMSProp ``momentum`` and ``centered`` (their state arrays are created here), for
        AdaGrad ``lr_decay`` (the kernel gets the 1-based step number).

    Returns
    -------
    ndarray of shape (steps + 1, 2)
        The points visited; the first row is ``x0``.

    Raises
    ------
    ValueError
        Unknown ``optimizer``, ``gamma`` given for AdaGrad, ``steps`` not an integer >= 1,
        ``x0`` not two numbers, or a hyperparameter the kernel rejects.

    References
    ----------
    .. [1] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       "AdaGrad" and §7.6 "RMSProp" (PyTorch edition), https://d2l.ai.
    .. [2] T. Tieleman and G. Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for
       Machine Learning, 2012.
    .. [3] J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning
       and Stochastic Optimization", JMLR 12, 2011.

    Examples
    --------
    The book's RMSProp (§7.6) and AdaGrad (§7.5) runs:

    >>> points = train_2d()
    epoch 20, x1 -0.010599, x2 0.000000
    >>> points.shape
    (21, 2)
    >>> points[0]
    array([-5., -2.])
    >>> _ = train_2d("adagrad", lr=2)
    epoch 20, x1 -0.002295, x2 -0.000000

    Options reach the kernel:

    >>> _ = train_2d(momentum=0.5, centered=True)
    epoch 20, x1 -0.002592, x2 0.000364
    """
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {optimizer!r}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    x = np.array(x0, dtype=np.float64)
    if x.shape != (2,):
        raise ValueError(f"x0 must be two numbers (x1, x2), got {x0!r}")
    s = np.zeros(2)

    if optimizer == "rmsprop":
        gamma = 0.9 if gamma is None else gamma
        # Each option is on when its state exists, as in the kernel's signature.
        if options.get("momentum", 0):
            options.setdefault("momentum_buffer", np.zeros(2))
        if options.get("centered", False):
            options.setdefault("grad_avg", np.zeros(2))

        def step(g, t):
            rmsprop_step(x, g, s, lr, gamma, eps, **options)

    else:
        if gamma is not None:
            raise ValueError("gamma is RMSProp's decay rate; AdaGrad takes none (leave it None)")

        def step(g, t):
            adagrad_step(x, g, s, lr, eps, step=t, **options)

    points = np.empty((steps + 1, 2))
    points[0] = x
    for t in range(1, steps + 1):
        step(np.array(f_grad(x[0], x[1]), dtype=np.float64), t)
        points[t] = x
    if verbose:
        print(f"epoch {steps}, x1 {x[0]:f}, x2 {x[1]:f}")
    return points


def show_trace_2d(f, results, ax=None):
    """Draw the book's figure: the path of ``results`` over the contours of ``f``.

    The path is an orange ``-o`` line; the contours of ``f`` are blue, on the grid
    ``x1`` in ``np.arange(-5.5, 1.0, 0.1)``, ``x2`` in ``np.arange(-3.0, 1.0, 0.1)``.

    Parameters
    ----------
    f : callable
        ``f(x1, x2)``, element-wise on arrays (e.g. :func:`f_2d`).
    results : array_like of shape (n, 2)
        Points visited, e.g. the return value of :func:`train_2d`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new 3.5 x 2.5 inch figure (the book's size) by default.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ImportError
        When matplotlib is not installed (``pip install "rmsprop-nb[plot]"``).

    References
    ----------
    .. [1] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       and §7.6 (PyTorch edition), https://d2l.ai.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> trace = train_2d(verbose=False)
    >>> ax = show_trace_2d(f_2d, trace, ax=Figure().add_subplot())
    >>> len(ax.lines[0].get_xdata())
    21
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            'show_trace_2d needs matplotlib: pip install "rmsprop-nb[plot]"'
        ) from exc
    if ax is None:
        ax = plt.figure(figsize=(3.5, 2.5)).add_subplot()
    points = np.asarray(results, dtype=np.float64)
    ax.plot(points[:, 0], points[:, 1], "-o", color="#ff7f0e")
    x1, x2 = np.meshgrid(np.arange(-5.5, 1.0, 0.1), np.arange(-3.0, 1.0, 0.1))
    ax.contour(x1, x2, f(x1, x2), colors="#1f77b4")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    return ax

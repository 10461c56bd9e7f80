r"""The book's minibatch harness on the airfoil data (ch. 7: §7.5 AdaGrad, §7.6 RMSProp).

After its 2-D examples (:mod:`rmsprop_nb.toy`), each section of *Dive into Deep Learning*
trains a linear regression on NASA's airfoil self-noise data twice: "from scratch", with the
book's own update function passed to ``d2l.train_ch7``, and "concisely", with a
``torch.optim`` class passed to ``d2l.train_pytorch_ch7``. This module holds those helpers under
the book's names, so the book's cells run with ``d2l`` replaced by this module::

    from rmsprop_nb import airfoil as d2l
    from rmsprop_nb.airfoil import rmsprop, init_rmsprop_states

    features, labels = d2l.get_data_ch7()
    d2l.train_ch7(rmsprop, init_rmsprop_states(),
                  {'lr': 0.01, 'gamma': 0.9}, features, labels)

* :func:`get_data_ch7` reads the data, which ships with the package (credit: Brooks, Pope and
  Marcolini, NASA RP-1218, 1989, via the UCI Machine Learning Repository, CC BY 4.0; see
  ``rmsprop_nb/data/README.md``).
* :func:`adagrad` / :func:`init_adagrad_states` and :func:`rmsprop` / :func:`init_rmsprop_states`
  are the book's update functions, computed by :mod:`rmsprop_nb.kernels`.
* :func:`train_ch7` runs any update function of the book's form; given :func:`adagrad` or
  :func:`rmsprop` it runs each epoch as one compiled loop that calls the kernels.
* :func:`train_pytorch_ch7` runs any ``torch.optim``-style optimizer class; it imports torch
  when called (torch is optional).

matplotlib (for the book's loss figure) is imported only when a figure is drawn.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping
from importlib import resources
from types import SimpleNamespace

import numpy as np

from ._jit import jit
from .kernels import adagrad_step, rmsprop_step

__all__ = [
    "get_data_ch7",
    "train_ch7",
    "train_pytorch_ch7",
    "adagrad",
    "init_adagrad_states",
    "rmsprop",
    "init_rmsprop_states",
]

_DATA_FILE = "airfoil_self_noise.dat"
_ROWS = 1500  # the book trains on the first 1500 of the 1503 rows
_FEATURES = 5
_RECORD_EVERY = 100  # samples between two recorded losses, as in the book
_BOOK_EPS = 1e-6  # the book's scratch adagrad and rmsprop: inside the square root
_FIGSIZE = (3.5, 2.5)  # d2l.set_figsize()


# --------------------------------------------------------------------------------------------
# The data
# --------------------------------------------------------------------------------------------


def get_data_ch7():
    r"""The airfoil self-noise data as the book prepares it: standardised, first 1500 rows.

    Reads ``airfoil_self_noise.dat`` (shipped with the package, no download) with
    ``np.genfromtxt``, standardises each of the 6 columns over all 1503 rows with the
    population standard deviation, and returns the first 1500 rows, split into the 5 inputs
    and the output (the scaled sound pressure level), as float32:

    .. math::

        z_{ij} = \frac{a_{ij} - \bar a_j}{\sigma_j}, \qquad
        \sigma_j = \sqrt{\tfrac{1}{1503} \textstyle\sum_i (a_{ij} - \bar a_j)^2}

    Returns
    -------
    features : ndarray of float32, shape (1500, 5)
        Frequency, angle of attack, chord length, free-stream velocity and suction-side
        displacement thickness, standardised.
    labels : ndarray of float32, shape (1500,)
        The scaled sound pressure level, standardised.

    Notes
    -----
    The book returns ``torch.Tensor`` objects; these are NumPy arrays (``torch.from_numpy``
    turns them into tensors without a copy). Each call returns new arrays.

    The data: T. F. Brooks, D. S. Pope and M. A. Marcolini, "Airfoil self-noise and
    prediction", NASA Reference Publication 1218, 1989, distributed by the UCI Machine
    Learning Repository under the Creative Commons Attribution 4.0 licence (CC BY 4.0).

    References
    ----------
    .. [1] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, ch. 7
       (PyTorch edition), ``get_data_ch7``, https://d2l.ai.
    .. [2] T. F. Brooks, D. S. Pope and M. A. Marcolini, "Airfoil self-noise and prediction",
       NASA RP-1218, 1989; UCI Machine Learning Repository, "Airfoil Self-Noise".

    Examples
    --------
    >>> features, labels = get_data_ch7()
    >>> features.shape, features.dtype, labels.shape, labels.dtype
    ((1500, 5), dtype('float32'), (1500,), dtype('float32'))
    >>> features[0].round(4), labels[0].round(4)  # doctest: +NORMALIZE_WHITESPACE
    (array([-0.662 , -1.1464,  1.7993,  1.3129, -0.6448],
           dtype=float32), np.float32(0.1979))
    """
    source = resources.files(__package__) / "data" / _DATA_FILE
    with source.open("rb") as f:
        data = np.genfromtxt(f, delimiter="\t")
    data = (data - data.mean(axis=0)) / data.std(axis=0)
    return (
        data[:_ROWS, :-1].astype(np.float32),
        data[:_ROWS, -1].astype(np.float32),
    )


# --------------------------------------------------------------------------------------------
# The book's update functions, on the kernels
# --------------------------------------------------------------------------------------------


def _zero_states():
    return (np.zeros((_FEATURES, 1), dtype=np.float32), np.zeros(1, dtype=np.float32))


def init_adagrad_states():
    r"""AdaGrad's state for the airfoil model: zero accumulators for ``w`` and ``b``.

    Returns
    -------
    tuple of ndarray
        ``(s_w, s_b)``: float32 zeros of shapes (5, 1) and (1,), the shapes of the model's
        weight and bias. :func:`adagrad` updates them in place.

    Notes
    -----
    As in the book, the shapes are those of the airfoil model (5 inputs). For data with
    ``d`` inputs or of another dtype, build the pair yourself:
    ``(np.zeros((d, 1), dtype), np.zeros(1, dtype))``.

    References
    ----------
    .. [1] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       (PyTorch edition, "AdaGrad"), https://d2l.ai.

    Examples
    --------
    >>> s_w, s_b = init_adagrad_states()
    >>> s_w.shape, s_b.shape, s_w.dtype
    ((5, 1), (1,), dtype('float32'))
    """
    return _zero_states()


def init_rmsprop_states():
    r"""RMSProp's state for the airfoil model: zero running averages for ``w`` and ``b``.

    Returns
    -------
    tuple of ndarray
        ``(s_w, s_b)``: float32 zeros of shapes (5, 1) and (1,), the shapes of the model's
        weight and bias. :func:`rmsprop` updates them in place.

    Notes
    -----
    As in the book, the shapes are those of the airfoil model (5 inputs). For data with
    ``d`` inputs or of another dtype, build the pair yourself:
    ``(np.zeros((d, 1), dtype), np.zeros(1, dtype))``.

    References
    ----------
    .. [1] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.6
       (PyTorch edition, "RMSProp"), https://d2l.ai.

    Examples
    --------
    >>> s_w, s_b = init_rmsprop_states()
    >>> s_w.shape, s_b.shape, s_w.dtype
    ((5, 1), (1,), dtype('float32'))
    """
    return _zero_states()


def adagrad(params, states, hyperparams):
    r"""The book's AdaGrad update function (§7.5), on :func:`~rmsprop_nb.kernels.adagrad_step`.

    For each parameter ``p`` and its state ``s``, in place:

    .. math::

        s \leftarrow s + g \odot g, \qquad
        p \leftarrow p - \eta\, \frac{g}{\sqrt{s + \epsilon}}, \qquad \epsilon = 10^{-6}

    Parameters
    ----------
    params : sequence
        Objects with a ``data`` array (the parameter, updated in place) and a ``grad`` array
        (its gradient, same shape and dtype), as :func:`train_ch7` passes them.
    states : sequence of ndarray
        One accumulator per parameter (start at zeros: :func:`init_adagrad_states`); updated
        in place.
    hyperparams : dict
        ``{'lr': eta}``, and optionally ``'eps'`` (default 1e-6, the book's, added inside the
        square root).

    Returns
    -------
    None
        Parameters and states are updated in place.

    Raises
    ------
    KeyError
        ``hyperparams`` has no ``'lr'``.
    TypeError, ValueError
        From the kernel: arrays of different shapes or dtypes, a learning rate or ``eps``
        out of range. Nothing is modified then.

    See Also
    --------
    rmsprop_nb.AdaGrad : the same update as an optimizer class, with PyTorch's options.

    References
    ----------
    .. [1] J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning
       and Stochastic Optimization", JMLR 12, 2011.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.5
       (PyTorch edition, "AdaGrad"), https://d2l.ai.

    Examples
    --------
    Passed to :func:`train_ch7`, as in the book:

    >>> features, labels = get_data_ch7()
    >>> losses = train_ch7(adagrad, init_adagrad_states(),
    ...                    {'lr': 0.1}, features, labels,
    ...                    seed=0, plot=False)  # doctest: +ELLIPSIS
    loss: 0.24..., ... sec per epoch

    Called directly, on any parameter with ``data`` and ``grad``:

    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> p = SimpleNamespace(data=np.array([1.0, 1.0]),
    ...                     grad=np.array([0.5, -2.0]))
    >>> s = np.zeros(2)
    >>> adagrad([p], [s], {'lr': 0.1})
    >>> p.data.round(4), s
    (array([0.9, 1.1]), array([0.25, 4.  ]))
    """
    lr = hyperparams["lr"]
    eps = hyperparams.get("eps", _BOOK_EPS)
    for p, s in zip(params, states):
        adagrad_step(p.data, p.grad, s, lr, eps)


def rmsprop(params, states, hyperparams):
    r"""The book's RMSProp update function (§7.6), on :func:`~rmsprop_nb.kernels.rmsprop_step`.

    For each parameter ``p`` and its state ``s``, in place:

    .. math::

        s \leftarrow \gamma s + (1 - \gamma)\, g \odot g, \qquad
        p \leftarrow p - \eta\, \frac{g}{\sqrt{s + \epsilon}}, \qquad \epsilon = 10^{-6}

    Parameters
    ----------
    params : sequence
        Objects with a ``data`` array (the parameter, updated in place) and a ``grad`` array
        (its gradient, same shape and dtype), as :func:`train_ch7` passes them.
    states : sequence of ndarray
        One running average per parameter (start at zeros: :func:`init_rmsprop_states`);
        updated in place.
    hyperparams : dict
        ``{'lr': eta, 'gamma': gamma}``, and optionally ``'eps'`` (default 1e-6, the book's,
        added inside the square root).

    Returns
    -------
    None
        Parameters and states are updated in place.

    Raises
    ------
    KeyError
        ``hyperparams`` has no ``'lr'`` or no ``'gamma'``.
    TypeError, ValueError
        From the kernel: arrays of different shapes or dtypes, a hyperparameter out of range
        (e.g. ``gamma`` outside [0, 1)). Nothing is modified then.

    See Also
    --------
    rmsprop_nb.RMSProp : the same update as an optimizer class, with PyTorch's options.

    References
    ----------
    .. [1] T. Tieleman and G. Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for
       Machine Learning, 2012.
    .. [2] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, §7.6
       (PyTorch edition, "RMSProp"), https://d2l.ai.

    Examples
    --------
    Passed to :func:`train_ch7`, as in the book:

    >>> features, labels = get_data_ch7()
    >>> losses = train_ch7(rmsprop, init_rmsprop_states(),
    ...                    {'lr': 0.01, 'gamma': 0.9},
    ...                    features, labels, seed=0, plot=False)  # doctest: +ELLIPSIS
    loss: 0.24..., ... sec per epoch

    Called directly, on any parameter with ``data`` and ``grad``:

    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> p = SimpleNamespace(data=np.array([1.0, 1.0]),
    ...                     grad=np.array([0.5, -2.0]))
    >>> s = np.zeros(2)
    >>> rmsprop([p], [s], {'lr': 0.01, 'gamma': 0.9})
    >>> p.data.round(4), s.round(4)
    (array([0.9684, 1.0316]), array([0.025, 0.4  ]))
    """
    lr, gamma = hyperparams["lr"], hyperparams["gamma"]
    eps = hyperparams.get("eps", _BOOK_EPS)
    for p, s in zip(params, states):
        rmsprop_step(p.data, p.grad, s, lr, gamma, eps)


# --------------------------------------------------------------------------------------------
# The model: y_hat = X w + b, loss (y_hat - y)^2 / 2. Compiled, and shared by the compiled and
# the Python epoch loops so that both compute the same float32 numbers.
# --------------------------------------------------------------------------------------------


@jit
def _predict(features, i, w, b):
    acc = w.dtype.type(0)
    for j in range(features.shape[1]):
        acc += features[i, j] * w[j, 0]
    return acc + b[0]


@jit
def _mean_loss(features, labels, w, b):
    # Each row's loss in the data's dtype (as the book's float32 tensors); the sum in float64,
    # so that its rounding stays far below the six printed digits.
    half = w.dtype.type(0.5)
    total = 0.0
    for i in range(features.shape[0]):
        r = _predict(features, i, w, b) - labels[i]
        total += r * r * half
    return total / features.shape[0]


@jit
def _batch_gradient(features, labels, order, lo, hi, w, b, grad_w, grad_b):
    # The gradient of the batch mean of (y_hat - y)^2 / 2. The factor 1/m is rounded to the
    # dtype first and multiplies each residual, as torch's backward of mean() does.
    scale = w.dtype.type(1) / w.dtype.type(hi - lo)
    grad_w[:] = 0
    grad_b[:] = 0
    for k in range(lo, hi):
        i = order[k]
        r = (_predict(features, i, w, b) - labels[i]) * scale
        for j in range(features.shape[1]):
            grad_w[j, 0] += features[i, j] * r
        grad_b[0] += r


@jit
def _records(batch, batch_size):
    # The book records the loss after the batches where (batch + 1) * batch_size is a multiple
    # of 100 (its batch_size is always counted in full, even for a short last batch).
    return (batch + 1) * batch_size % _RECORD_EVERY == 0


@jit
def _compiled_epoch(
    features, labels, order, batch_size, w, b, grad_w, grad_b, s_w, s_b, use_rmsprop, lr, gamma,
    eps, losses, k,
):
    n = order.size
    batch = 0
    for lo in range(0, n, batch_size):
        hi = min(lo + batch_size, n)
        _batch_gradient(features, labels, order, lo, hi, w, b, grad_w, grad_b)
        if use_rmsprop:
            rmsprop_step(w, grad_w, s_w, lr, gamma, eps)
            rmsprop_step(b, grad_b, s_b, lr, gamma, eps)
        else:
            adagrad_step(w, grad_w, s_w, lr, eps)
            adagrad_step(b, grad_b, s_b, lr, eps)
        if _records(batch, batch_size):
            losses[k] = _mean_loss(features, labels, w, b)
            k += 1
        batch += 1
    return k


def _python_epoch(
    optimizer_fn, states, hyperparams, features, labels, order, batch_size, params, losses, k,
):
    w, b = params
    n = order.size
    for batch, lo in enumerate(range(0, n, batch_size)):
        hi = min(lo + batch_size, n)
        _batch_gradient(features, labels, order, lo, hi, w.data, b.data, w.grad, b.grad)
        optimizer_fn(params, states, hyperparams)
        if _records(batch, batch_size):
            losses[k] = _mean_loss(features, labels, w.data, b.data)
            k += 1
    return k


# --------------------------------------------------------------------------------------------
# The harnesses
# --------------------------------------------------------------------------------------------


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_data(features, labels):
    features = np.asarray(features)
    if features.ndim != 2 or features.dtype not in (np.float32, np.float64):
        raise TypeError(
            "features must be a 2-D float32 or float64 array (rows x inputs), "
            f"got {features.ndim}-D {features.dtype}"
        )
    if features.shape[0] < 1 or features.shape[1] < 1:
        raise ValueError(
            f"features must have at least one row and one column, got shape {features.shape}"
        )
    labels = np.asarray(labels)
    if labels.shape != (features.shape[0],):
        raise ValueError(
            f"labels must be 1-D with one value per row of features ({features.shape[0]}), "
            f"got shape {labels.shape}"
        )
    return np.ascontiguousarray(features), np.ascontiguousarray(labels, dtype=features.dtype)


def _loss_axes(plot, name):
    """A new figure of the book's size, or None; checked before training, not after."""
    if not plot:
        return None
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f'{name} draws the book\'s loss figure with matplotlib: pip install "rmsprop-nb[plot]"'
            ", or pass plot=False"
        ) from exc
    # "constrained" keeps the axis labels inside the book's small figure when it is saved
    # without bbox_inches="tight" (Jupyter's inline backend crops; savefig does not).
    return plt.figure(figsize=_FIGSIZE, layout="constrained").add_subplot()


def _report(losses, seconds, num_epochs, verbose, ax):
    if verbose:
        print("loss: %f, %f sec per epoch" % (losses[-1], seconds))
    if ax is not None:
        ax.plot(np.linspace(0, num_epochs, len(losses)), losses)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")


def _seeds(seed):
    """Independent seeds for the initial weights and for the minibatch order."""
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0
    ):
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
    return np.random.SeedSequence(seed).spawn(2)


def _record_count(n, batch_size, num_epochs):
    batches = -(-n // batch_size)
    per_epoch = sum((i + 1) * batch_size % _RECORD_EVERY == 0 for i in range(batches))
    return 1 + num_epochs * per_epoch


def _check_states(states, w, b):
    try:
        s_w, s_b = states
    except (TypeError, ValueError):
        raise ValueError(f"states must be a pair (s_w, s_b) of arrays, got {states!r}") from None
    for name, s, p in (("states[0]", s_w, w), ("states[1]", s_b, b)):
        if not isinstance(s, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(s).__name__}")
        if s.shape != p.shape or s.dtype != p.dtype:
            raise ValueError(
                f"{name} must be {p.dtype} of shape {p.shape} (the parameter's), "
                f"got {s.dtype} of shape {s.shape}"
            )
    return s_w, s_b


def train_ch7(
    optimizer_fn, states, hyperparams, features, labels, batch_size=10, num_epochs=2, *,
    seed=None, verbose=True, plot=True,
):
    r"""Train the book's linear regression with minibatches and an update function of its form.

    The book's ``d2l.train_ch7``: the model :math:`\hat y = X w + b` with
    :math:`w \sim \mathcal N(0, 0.01^2)` of shape (d, 1) and :math:`b = 0`, in the data's
    dtype; the loss :math:`\tfrac12 (\hat y - y)^2`, averaged over each minibatch. Each epoch
    visits the rows in a new random order, ``batch_size`` at a time (the last batch may be
    shorter); after each batch the gradient is computed and ``optimizer_fn(params, states,
    hyperparams)`` updates the parameters. The mean loss over all rows is recorded before
    training and after every 100 samples (31 values for the book's 2 epochs of 1500 rows). At
    the end the book's line ``loss: %f, %f sec per epoch`` is printed (the last recorded loss,
    the time of the last epoch) and the losses are drawn against
    ``np.linspace(0, num_epochs, len(losses))`` in a 3.5 x 2.5 inch figure.

    With this module's :func:`adagrad` or :func:`rmsprop` each epoch runs as one compiled
    loop that calls the kernels; any other ``optimizer_fn`` is called from a Python loop with
    the same gradients, losses and minibatch order, so both give the same numbers.

    Parameters
    ----------
    optimizer_fn : callable
        ``optimizer_fn(params, states, hyperparams)``, called after each minibatch. ``params``
        is ``[w, b]``, two objects whose ``data`` is the parameter array (update it in place,
        or assign a new array to ``data``) and whose ``grad`` is its gradient; the book writes
        ``p.data -= lr * p.grad.data / ...``, here ``p.data -= lr * p.grad / ...``.
    states : object
        Passed to ``optimizer_fn`` unchanged (update its arrays in place). For :func:`adagrad`
        and :func:`rmsprop`: ``(s_w, s_b)``, arrays of the shapes and dtype of ``w`` and ``b``
        (:func:`init_adagrad_states`, :func:`init_rmsprop_states`).
    hyperparams : dict
        Passed to ``optimizer_fn``: ``{'lr': 0.1}`` for :func:`adagrad`,
        ``{'lr': 0.01, 'gamma': 0.9}`` for :func:`rmsprop` in the book.
    features : array_like of float32 or float64, shape (n, d)
        The inputs (:func:`get_data_ch7`); the model computes in their dtype.
    labels : array_like, shape (n,)
        The targets, converted to the dtype of ``features``.
    batch_size : int, default 10
        Rows per minibatch.
    num_epochs : int, default 2
        Passes over the data.
    seed : int or None, default None
        Seeds the initial weights and the minibatch order: the same seed repeats a run exactly.
        None (the book's behaviour) draws fresh entropy each call.
    verbose : bool, default True
        Print the book's line.
    plot : bool, default True
        Draw the book's figure (needs matplotlib).

    Returns
    -------
    ndarray of float64
        The recorded mean losses, the first before training.

    Raises
    ------
    TypeError
        ``optimizer_fn`` is not callable, ``features`` is not a 2-D float32/float64 array, or
        (with :func:`adagrad`/:func:`rmsprop`) ``states`` holds something other than arrays.
    ValueError
        ``labels`` does not match ``features``, ``batch_size`` or ``num_epochs`` is not an
        integer >= 1, ``states`` does not match the parameters, a hyperparameter is missing
        or out of range.
    ImportError
        ``plot=True`` without matplotlib (raised before training).

    Notes
    -----
    The gradient of a batch :math:`B` of :math:`m` rows:

    .. math::

        \nabla_w = \frac1m \sum_{i \in B} x_i (\hat y_i - y_i), \qquad
        \nabla_b = \frac1m \sum_{i \in B} (\hat y_i - y_i)

    References
    ----------
    .. [1] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, ch. 7
       (PyTorch edition), ``train_ch7``; §7.5 "AdaGrad" and §7.6 "RMSProp", https://d2l.ai.

    Examples
    --------
    The book's §7.6 run, from scratch (seeded here, so the loss repeats):

    >>> features, labels = get_data_ch7()
    >>> losses = train_ch7(rmsprop, init_rmsprop_states(),
    ...                    {'lr': 0.01, 'gamma': 0.9},
    ...                    features, labels, seed=0, plot=False)  # doctest: +ELLIPSIS
    loss: 0.24..., ... sec per epoch
    >>> len(losses)
    31

    Any update function of the book's form, here plain minibatch SGD:

    >>> def sgd(params, states, hyperparams):
    ...     for p in params:
    ...         p.data -= hyperparams['lr'] * p.grad
    >>> losses = train_ch7(sgd, None, {'lr': 0.05},
    ...                    features, labels, seed=0,
    ...                    verbose=False, plot=False)
    >>> bool(losses[-1] < 0.25 < losses[0])
    True
    """
    if not callable(optimizer_fn):
        raise TypeError(f"optimizer_fn must be callable, got {type(optimizer_fn).__name__}")
    features, labels = _check_data(features, labels)
    batch_size = _check_count("batch_size", batch_size)
    num_epochs = _check_count("num_epochs", num_epochs)
    init_seed, order_seed = _seeds(seed)
    n, d = features.shape
    w = np.random.default_rng(init_seed).normal(0, 0.01, size=(d, 1)).astype(features.dtype)
    b = np.zeros(1, dtype=features.dtype)
    compiled = optimizer_fn is adagrad or optimizer_fn is rmsprop
    if compiled:
        lr, gamma, eps = _compiled_hyperparams(optimizer_fn, hyperparams)
        s_w, s_b = _check_states(states, w, b)
        grad_w, grad_b = np.zeros_like(w), np.zeros_like(b)
    else:
        params = [SimpleNamespace(data=w, grad=np.zeros_like(w)),
                  SimpleNamespace(data=b, grad=np.zeros_like(b))]
    ax = _loss_axes(plot, "train_ch7")

    order_rng = np.random.default_rng(order_seed)
    losses = np.empty(_record_count(n, batch_size, num_epochs))
    losses[0] = _mean_loss(features, labels, w, b)
    k = 1
    for _ in range(num_epochs):
        start = time.perf_counter()
        order = order_rng.permutation(n)
        if compiled:
            k = _compiled_epoch(
                features, labels, order, batch_size, w, b, grad_w, grad_b, s_w, s_b,
                optimizer_fn is rmsprop, lr, gamma, eps, losses, k,
            )
        else:
            k = _python_epoch(
                optimizer_fn, states, hyperparams, features, labels, order, batch_size, params,
                losses, k,
            )
        seconds = time.perf_counter() - start
    _report(losses, seconds, num_epochs, verbose, ax)
    return losses


def _compiled_hyperparams(optimizer_fn, hyperparams):
    """``(lr, gamma, eps)`` as floats for the compiled loop (gamma unused by AdaGrad)."""
    if not isinstance(hyperparams, Mapping):
        raise TypeError(f"hyperparams must be a dict, got {type(hyperparams).__name__}")
    required = ("lr", "gamma") if optimizer_fn is rmsprop else ("lr",)
    missing = [key for key in required if key not in hyperparams]
    if missing:
        raise ValueError(
            f"hyperparams for {optimizer_fn.__name__} need {', '.join(map(repr, required))}; "
            f"missing {', '.join(map(repr, missing))}"
        )
    values = [hyperparams.get(key, 0.0) for key in ("lr", "gamma")]
    values.append(hyperparams.get("eps", _BOOK_EPS))
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise TypeError(f"hyperparams values must be real numbers, got {hyperparams!r}") from None


def train_pytorch_ch7(
    optimizer_fn, optimizer_hyperparams, features, labels, batch_size=10, num_epochs=2, *,
    seed=None, verbose=True, plot=True,
):
    r"""Train the book's linear regression with a ``torch.optim``-style optimizer class.

    The book's ``d2l.train_pytorch_ch7``: the model ``torch.nn.Linear(d, 1)`` (PyTorch's
    default initialisation), the loss ``torch.nn.MSELoss()(y_hat, y) / 2``, and
    ``optimizer = optimizer_fn(model.parameters(), **optimizer_hyperparams)`` stepped after
    each minibatch; recording, printing and plotting as in :func:`train_ch7`. torch is
    imported when this function is called.

    Parameters
    ----------
    optimizer_fn : type or callable
        A ``torch.optim.Optimizer`` subclass (e.g. ``torch.optim.RMSprop``), or any callable
        ``optimizer_fn(params, **optimizer_hyperparams)`` returning an object with
        ``zero_grad()`` and ``step()``.
    optimizer_hyperparams : dict
        Keyword arguments for ``optimizer_fn``: ``{'lr': 0.1}`` for ``torch.optim.Adagrad``,
        ``{'lr': 0.01, 'alpha': 0.9}`` for ``torch.optim.RMSprop`` in the book.
    features : array_like or torch.Tensor of float32 or float64, shape (n, d)
        The inputs (:func:`get_data_ch7`); the model is built in their dtype.
    labels : array_like or torch.Tensor, shape (n,)
        The targets, converted to the dtype of ``features``.
    batch_size : int, default 10
        Rows per minibatch.
    num_epochs : int, default 2
        Passes over the data.
    seed : int or None, default None
        Seeds the model's initialisation (in a forked torch generator, so torch's global random
        state is left as it was) and the minibatch order: the same seed repeats a run
        exactly. None (the book's behaviour) uses torch's global generator and fresh entropy.
    verbose : bool, default True
        Print the book's line ``loss: %f, %f sec per epoch``.
    plot : bool, default True
        Draw the book's figure (needs matplotlib).

    Returns
    -------
    ndarray of float64
        The recorded mean losses, the first before training.

    Raises
    ------
    ImportError
        torch is not installed, or ``plot=True`` without matplotlib (before training).
    TypeError
        ``optimizer_fn`` is not callable or ``features`` is not a 2-D float array.
    ValueError
        ``labels`` does not match ``features``, or ``batch_size`` or ``num_epochs`` is not an
        integer >= 1.

    References
    ----------
    .. [1] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, *Dive into Deep Learning*, ch. 7
       (PyTorch edition), ``train_pytorch_ch7``; §7.5 "AdaGrad" and §7.6 "RMSProp",
       https://d2l.ai.

    Examples
    --------
    The book's concise §7.6 run (seeded here, so the loss repeats):

    >>> import torch
    >>> features, labels = get_data_ch7()
    >>> losses = train_pytorch_ch7(torch.optim.RMSprop,
    ...                            {'lr': 0.01, 'alpha': 0.9},
    ...                            features, labels, seed=0,
    ...                            plot=False)  # doctest: +ELLIPSIS
    loss: 0.24..., ... sec per epoch
    >>> len(losses)
    31
    """
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "train_pytorch_ch7 needs PyTorch (pip install torch); train_ch7 does not"
        ) from exc
    if not callable(optimizer_fn):
        raise TypeError(f"optimizer_fn must be callable, got {type(optimizer_fn).__name__}")
    features, labels = _check_data(features, labels)
    batch_size = _check_count("batch_size", batch_size)
    num_epochs = _check_count("num_epochs", num_epochs)
    init_seed, order_seed = _seeds(seed)

    n, d = features.shape
    X, y = torch.from_numpy(features), torch.from_numpy(labels)
    if seed is None:
        net = torch.nn.Linear(d, 1, dtype=X.dtype)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init_seed.generate_state(1)[0]))
            net = torch.nn.Linear(d, 1, dtype=X.dtype)
    loss = torch.nn.MSELoss()
    optimizer = optimizer_fn(net.parameters(), **optimizer_hyperparams)
    ax = _loss_axes(plot, "train_pytorch_ch7")

    def mean_loss():
        with torch.no_grad():
            return loss(net(X).view(-1), y).item() / 2

    order_rng = np.random.default_rng(order_seed)
    losses = np.empty(_record_count(n, batch_size, num_epochs))
    losses[0] = mean_loss()
    k = 1
    for _ in range(num_epochs):
        start = time.perf_counter()
        order = torch.from_numpy(order_rng.permutation(n))
        for batch, lo in enumerate(range(0, n, batch_size)):
            rows = order[lo:lo + batch_size]
            batch_loss = loss(net(X[rows]).view(-1), y[rows]) / 2
            optimizer.zero_grad()
            batch_loss.backward()
            optimizer.step()
            if (batch + 1) * batch_size % _RECORD_EVERY == 0:
                losses[k] = mean_loss()
                k += 1
        seconds = time.perf_counter() - start
    _report(losses, seconds, num_epochs, verbose, ax)
    return losses

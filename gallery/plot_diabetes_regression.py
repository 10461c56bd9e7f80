r"""
Minibatch training on real data
===============================

The book's from-scratch sections (§7.5, §7.6) train a linear regression with minibatches of
10 examples for 2 epochs and plot the training loss. We do the same on a real data set that
ships inside scikit-learn, so nothing is downloaded: the *diabetes* data, 442 patients,
10 features, and a disease-progression score as the target.

The three optimizers get the same initial weights and the same shuffled minibatches:

* plain minibatch SGD, :math:`\mathbf{w} \leftarrow \mathbf{w} - \eta\, \mathbf{g}`, with
  :math:`\eta = 0.05`;
* :class:`rmsprop_nb.AdaGrad` with :math:`\eta = 0.1` (the book's setting);
* :class:`rmsprop_nb.RMSProp` with :math:`\eta = 0.01`, :math:`\gamma = 0.9` (the book's
  setting).

The loss is the book's squared loss :math:`\tfrac12 (\hat y - y)^2`, averaged over the
minibatch for the gradient and over the whole data set for the curve.

Needs matplotlib and scikit-learn (for the data set):
``python -m pip install ".[gallery]"``.
"""

# %%
# Data: standardised features and target
# --------------------------------------
import matplotlib.pyplot as plt
import numpy as np

from rmsprop_nb import AdaGrad, RMSProp

try:
    from sklearn.datasets import load_diabetes
except ImportError:  # the data set ships with scikit-learn
    raise SystemExit(
        'needs scikit-learn: python -m pip install ".[gallery]"'
    )

X, y = load_diabetes(return_X_y=True, scaled=False)
X = (X - X.mean(axis=0)) / X.std(axis=0)
y = (y - y.mean()) / y.std()
n, d = X.shape
batch_size, epochs, seed = 10, 2, 0
print(f"{n} examples, {d} features; "
      f"batches of {batch_size}, {epochs} epochs")


def loss(w, b):
    r = X @ w + b - y
    return 0.5 * np.mean(r * r)


def train(make_step):
    """Train from the same start on the same minibatches; the loss
    after every batch."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.01, size=d)
    b = np.zeros(1)
    step = make_step(w, b)
    history = [loss(w, b)]
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            r = X[idx] @ w + b - y[idx]
            step([X[idx].T @ r / len(idx), np.array([r.mean()])])
            history.append(loss(w, b))
    return np.array(history)


# %%
# Three optimizers
# ----------------
# SGD is two lines; the adaptive optimizers are constructed over the parameter arrays and
# update them in place from the list of gradients, like ``torch.optim``.


def sgd(w, b, lr=0.05):
    def step(grads):
        for p, g in zip((w, b), grads):
            p -= lr * g

    return step


def adagrad(w, b):
    return AdaGrad([w, b], lr=0.1).step


def rmsprop(w, b):
    return RMSProp([w, b], lr=0.01, gamma=0.9).step


curves = {
    "SGD, lr 0.05": train(sgd),
    "AdaGrad, lr 0.1": train(adagrad),
    "RMSProp, lr 0.01, gamma 0.9": train(rmsprop),
}
for name, history in curves.items():
    print(f"{name:28s} final loss {history[-1]:.4f}")

# %%
# Loss curves
# -----------
# AdaGrad's large first steps bring the loss down fastest; RMSProp, with a learning rate ten
# times smaller, needs about half an epoch more. All three end near the least-squares loss
# (dotted line), bouncing at the noise level of gradients from 10 examples.
w_best, *_ = np.linalg.lstsq(np.c_[X, np.ones(n)], y,
                             rcond=None)
best = loss(w_best[:-1], w_best[-1])

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
epoch_axis = np.linspace(0, epochs,
                         len(next(iter(curves.values()))))
for name, history in curves.items():
    ax.plot(epoch_axis, history, label=name)
ax.axhline(best, color="0.4", linestyle=":", label="least squares")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.set_title("Linear regression on the diabetes data, "
             "batch size 10")
ax.legend()
plt.show()

r"""
Parameter groups and a learning-rate schedule
=============================================

A training loop rarely treats every parameter alike, nor keeps its learning rate fixed. Here
the book's airfoil regression (§7.5-7.6: NASA's airfoil self-noise data, 5 standardised
inputs, a linear model :math:`\hat y = X\mathbf{w} + b`) is trained with
:class:`rmsprop_nb.RMSProp` twice, from the same start on the same minibatches:

* as in the book: one group, a constant :math:`\eta = 0.01`;
* with two *parameter groups*, a weight decay :math:`\lambda = 0.05` on :math:`\mathbf{w}` but
  none on the bias :math:`b`, and a *schedule*: :math:`\eta_t` rises linearly over 30 steps to
  0.03, then falls along a cosine to 0 at the last step.

The schedule is a plain function of the 1-based step number :math:`t`, given as ``lr``; the
groups are dicts, as in ``torch.optim``. See the user guide's *Parameter groups and schedules*.

Needs matplotlib: ``python -m pip install ".[plot]"`` (README's first command).
"""

# %%
# The data and the model
# ----------------------
import math

import matplotlib.pyplot as plt
import numpy as np

from rmsprop_nb import RMSProp
from rmsprop_nb.airfoil import get_data_ch7

X, y = (a.astype(np.float64) for a in get_data_ch7())
n, d = X.shape
batch, epochs = 10, 2
steps = epochs * n // batch
print(f"{n} examples, {d} inputs; "
      f"{steps} steps of {batch}")


def loss(w, b):
    r = X @ w + b - y
    return 0.5 * np.mean(r * r)


def gradients(w, b, idx):
    r = X[idx] @ w + b - y[idx]
    return [X[idx].T @ r / len(idx), np.array([r.mean()])]


# %%
# The schedule: a warm-up, then a cosine
# --------------------------------------
# One expression of :math:`t`; no schedule object is needed.


def warmup_cosine(t, peak=0.03, warmup=30, total=steps):
    if t <= warmup:
        return peak * t / warmup
    phase = (t - warmup) / (total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * phase))


# %%
# Training, twice
# ---------------
# The optimizer is the only difference between the runs.


def train(make_optimizer, seed=0):
    rng = np.random.default_rng(seed)
    w, b = rng.normal(0.0, 0.01, d), np.zeros(1)
    opt = make_optimizer(w, b)
    history = [loss(w, b)]
    for _ in range(epochs):
        order = rng.permutation(n)
        for k in range(0, n, batch):
            idx = order[k:k + batch]
            opt.step(gradients(w, b, idx))
            history.append(loss(w, b))
    return np.array(history), w, b


def book_optimizer(w, b):
    return RMSProp([w, b], lr=0.01, gamma=0.9)


def grouped_optimizer(w, b):
    return RMSProp(
        [{"params": [w], "weight_decay": 0.05},  # decayed
         {"params": [b]}],                        # not decayed
        lr=warmup_cosine, gamma=0.9,
    )


book, w1, b1 = train(book_optimizer)
grouped, w2, b2 = train(grouped_optimizer)
for name, h, w in (("one group, constant lr", book, w1),
                   ("two groups, schedule", grouped, w2)):
    print(f"{name:24s} loss {h[-1]:.6f}, "
          f"|w| {np.linalg.norm(w):.4f}")

# %%
# What the schedule and the groups did
# ------------------------------------
# Left: the learning rate of each step. Right: the loss over the 1500 examples after each step.
# The schedule's warm-up starts slower; its peak moves faster, and its decay settles the
# weights (kept smaller by the decay) near the minimum instead of jittering around it.

fig, (ax_lr, ax_loss) = plt.subplots(
    1, 2, figsize=(8, 3), layout="constrained")
t = np.arange(1, steps + 1)
ax_lr.plot(t, np.full(steps, 0.01), label="constant 0.01")
ax_lr.plot(t, [warmup_cosine(k) for k in t],
           label="warm-up + cosine")
ax_lr.set(xlabel="step t", ylabel=r"$\eta_t$",
          title="learning rate")
ax_lr.legend(fontsize="small")
ax_loss.plot(book, label="one group, constant lr")
ax_loss.plot(grouped, label="w decayed, b not; schedule")
ax_loss.set(xlabel="step", ylabel="loss", yscale="log",
            title="training loss")
ax_loss.legend(fontsize="small")
plt.show()

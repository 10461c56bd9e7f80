"""
Data-parallel least squares on a Dask cluster
=============================================

A linear model trained with :class:`rmsprop_nb.dask.RMSProp` on data that lives on the
workers of a Dask cluster, cut into blocks of rows. Each block contributes its part of the
gradient where it lives; the parts are added in a fixed order, so the gradient, and the whole
training run, come out the same to the last bit every time, and equal to the single-process
optimizer fed the same gradients.

Needs dask, distributed and matplotlib: ``python -m pip install ".[gallery]"``.
"""

# %%
# A small cluster
# ---------------
# Two workers with one thread each. ``processes=False`` keeps them in this process, which
# starts in a fraction of a second; the diagnostics server listens on the loopback interface
# only. On a real cluster only these lines change (see the user guide's page *Scaling out
# with Dask*).

import dask
import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster

import rmsprop_nb
from rmsprop_nb.dask import RMSProp, row_block_sum

cluster = LocalCluster(
    n_workers=2, threads_per_worker=1,
    processes=False, dashboard_address="127.0.0.1:0",
)
client = Client(cluster)

# %%
# Data made on the workers
# ------------------------
# 40,000 examples with 20 features, in 8 blocks of 5,000 rows. The random generator runs on
# the workers, block by block: the data never passes through this process (a NumPy array
# given to ``da.from_array`` would travel inside the task graph).

n, d = 40_000, 20
rng = da.random.default_rng(42)
X = rng.standard_normal((n, d), chunks=(5_000, d))
w_true = np.linspace(-2.0, 2.0, d)
y = X @ w_true + 0.1 * rng.standard_normal(n, chunks=5_000)
X, y = client.persist([X, y])
print(f"X: {X.shape}, {X.numblocks[0]} row blocks")

# %%
# The gradient, block by block, in a fixed order
# ----------------------------------------------
# For the loss :math:`L(w) = \frac{1}{2n} \lVert X w - y \rVert^2` the gradient is a sum over
# the row blocks :math:`b`:
#
# .. math::
#
#    \nabla L(w) = \frac{1}{n} \sum_{b} X_b^\top (X_b w - y_b).
#
# :func:`~rmsprop_nb.dask.row_block_sum` evaluates each term where its block lives and adds
# the terms from the first block to the last in one task. Floating-point addition is not
# associative: adding the terms as they arrive would change the last bits from run to run.


def block_gradient(Xb, yb, w):
    return Xb.T @ (Xb @ w - yb)


def gradient(w):
    return row_block_sum(block_gradient, X, y, w) / n


w0 = da.zeros(d, chunks=d)
g1, g2 = gradient(w0).compute(), gradient(w0).compute()
same = np.array_equal(g1.view(np.uint8), g2.view(np.uint8))
print("two evaluations, the same bits:", same)

# %%
# Training
# --------
# :class:`rmsprop_nb.dask.RMSProp` keeps the parameters and their state on the workers. Next
# to it, the single-process :class:`rmsprop_nb.RMSProp` on a NumPy copy of the parameters is
# fed the very same gradients (computed on the cluster from its own parameters).

steps = 60
opt = RMSProp([w0], lr=0.1, gamma=0.9)
local = rmsprop_nb.RMSProp([np.zeros(d)], lr=0.1, gamma=0.9)
# small: brought here for the loss curve
Xn, yn = client.compute([X, y], sync=True)


def loss(w):
    r = Xn @ w - yn
    return 0.5 * (r @ r) / n


losses, local_losses = [], []
for step in range(steps):
    # returns at once: the workers compute
    opt.step([gradient(opt.params[0])])
    # One round trip per step: the Dask optimizer's new parameters
    # (for the loss curve) and the gradient for the single-process
    # optimizer.
    w, g = dask.compute(opt.params[0], gradient(local.params[0]))
    local.step([g])
    losses.append(loss(w))
    local_losses.append(loss(local.params[0]))

w = opt.params[0].compute()
print(f"after {steps} steps: loss {losses[-1]:.6f}, "
      f"max |w - w_true| = {np.abs(w - w_true).max():.4f}")
w_local = local.params[0]
same = np.array_equal(w.view(np.uint8), w_local.view(np.uint8))
print("Dask and single-process parameters, the same bits:", same)

# %%
# The loss over the steps
# -----------------------
# The two curves are one: the Dask optimizer updates each chunk with the same compiled kernel
# as the single-process one, element by element.

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogy(losses, lw=2.5, label="rmsprop_nb.dask.RMSProp")
ax.semilogy(local_losses, "k--", lw=1, label="rmsprop_nb.RMSProp")
ax.axhline(0.5 * 0.1**2, color="0.6", lw=0.8, ls=":",
           label="noise floor")
ax.set(xlabel="step", ylabel="loss",
       title="Least squares, 8 row blocks")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# The cluster is closed at the end.

client.close()
cluster.close()

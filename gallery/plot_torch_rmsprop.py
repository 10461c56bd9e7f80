r"""
Training a PyTorch model: one import changed
============================================

The book's concise RMSProp (§7.6) is ``torch.optim.RMSprop``. :class:`rmsprop_nb.torch.RMSprop`
is a drop-in replacement: the same arguments, parameter groups, learning-rate schedulers and
state dict, with the update run by this package's compiled kernel. Here one small network is
trained twice from the same initial weights on the same minibatches, once with each optimizer,
under the same learning-rate schedule:

.. math::

    v \leftarrow \alpha v + (1 - \alpha)\, g \odot g, \qquad
    \theta \leftarrow \theta - \eta_t\, \frac{g}{\sqrt{v} + \epsilon}

with :math:`\alpha = 0.99`, :math:`\epsilon = 10^{-8}` (torch's defaults) and :math:`\eta_t`
from ``CosineAnnealingLR``, falling from 0.01 to 0.0005. The two loss curves are the same
curve; the optimizer steps are not the same length.

Needs matplotlib and torch (PyTorch): ``python -m pip install ".[gallery]"``.
"""

# %%
# The data: three interleaved spirals
# -----------------------------------
# 900 points in the plane, 300 per class, each class an arm of a spiral with some noise; the
# network has to learn curved boundaries.
import copy
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import rmsprop_nb.torch

torch.manual_seed(0)
n, classes = 300, 3
t = torch.linspace(0.2, 1, n).repeat(classes)
label = torch.arange(classes).repeat_interleave(n)
angle = 4 * t + label * (2 * torch.pi / classes)
angle += 0.2 * torch.randn(classes * n)
X = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], dim=1)
print(X.shape, X.dtype, label.bincount().tolist())

# %%
# One network, two optimizers
# ---------------------------
# A multilayer perceptron with two hidden layers of 64 units (4,547 parameters, float32),
# copied so that both runs start from the same weights. The only difference between the two
# runs is the class of the optimizer.
model = torch.nn.Sequential(
    torch.nn.Linear(2, 64), torch.nn.Tanh(),
    torch.nn.Linear(64, 64), torch.nn.Tanh(),
    torch.nn.Linear(64, classes),
)
print(sum(p.numel() for p in model.parameters()), "parameters")

optimizers = {
    "torch.optim.RMSprop": torch.optim.RMSprop,
    "rmsprop_nb.torch.RMSprop": rmsprop_nb.torch.RMSprop,
}

# %%
# Training
# --------
# Minibatches of 32 in a shuffled order drawn once, 30 epochs (840 steps), the learning rate
# annealed along a cosine. The loop is the usual one; ``step()`` alone is timed.
epochs, batch = 30, 32
shuffle = torch.Generator().manual_seed(1)
order = torch.randperm(len(X), generator=shuffle)
batches = [order[i:i + batch] for i in range(0, len(X), batch)]
batches = batches[:len(X) // batch]  # 28 full minibatches
cross_entropy = torch.nn.functional.cross_entropy
CosineAnnealingLR = torch.optim.lr_scheduler.CosineAnnealingLR
losses, step_times = {}, {}
for name, optimizer_class in optimizers.items():
    net = copy.deepcopy(model)
    opt = optimizer_class(net.parameters(), lr=0.01)
    sched = CosineAnnealingLR(opt, T_max=epochs * len(batches),
                              eta_min=5e-4)
    losses[name], step_times[name] = [], []
    for epoch in range(epochs):
        for idx in batches:
            opt.zero_grad()
            loss = cross_entropy(net(X[idx]), label[idx])
            loss.backward()
            start = time.perf_counter()
            opt.step()
            step_times[name].append(time.perf_counter() - start)
            sched.step()
            losses[name].append(loss.item())
    accuracy = (net(X).argmax(1) == label).float().mean().item()
    print(f"{name}: last loss {losses[name][-1]:.6f}, "
          f"accuracy {accuracy:.1%}")

# %%
# The same curve
# --------------
# Both runs do the same arithmetic in the same order, up to the last bit or two of a float32
# operation (torch fuses some multiply-adds); over 840 steps those bits stay invisible.
a, b = (np.array(v) for v in losses.values())
gap = np.max(np.abs(a - b))
print(f"largest difference between the curves: {gap:.1e}")
print(f"largest loss: {max(a.max(), b.max()):.2f}")

# %%
# Step times
# ----------
# Each step of both optimizers was timed; the first one is left out (it may load the compiled
# kernels from the disk cache, or compile them on a first run).
median = {k: np.median(t[1:]) * 1e6 for k, t in step_times.items()}
for name, us in median.items():
    print(f"{name}: median step {us:.1f} us")
torch_us, ours_us = median.values()
print(f"rmsprop_nb.torch: {torch_us / ours_us:.1f}x faster steps")

fig, (left, right) = plt.subplots(
    1, 2, figsize=(9, 3.6), layout="constrained",
    gridspec_kw=dict(width_ratios=[2, 1]))
styles = {"torch.optim.RMSprop": dict(color="0.6", lw=4),
          "rmsprop_nb.torch.RMSprop": dict(color="C0", lw=1.2)}
epoch = np.arange(1, epochs + 1)
for name, curve in losses.items():
    # the average over each epoch, for a readable curve
    per_epoch = np.array(curve).reshape(epochs, -1).mean(1)
    left.plot(epoch, per_epoch, label=name, **styles[name])
left.set(yscale="log", xlabel="epoch", ylabel="mean minibatch loss",
         title="the same loss curve")
left.legend(frameon=False)
names = list(median)
bars = right.barh([k.removesuffix(".RMSprop") for k in names],
                  [median[k] for k in names],
                  color=[styles[k]["color"] for k in names])
right.bar_label(bars, fmt="%.0f us", padding=3)
right.set(xlabel="median optimizer step, us",
          title="RMSprop step time",
          xlim=(0, 1.3 * max(median.values())))
plt.show()

r"""
How far back RMSProp remembers
==============================

§7.6 of *Dive into Deep Learning* describes RMSProp's state :math:`\mathbf{s}_t` as a weighted
average of the squared gradients of roughly the last :math:`1 / (1 - \gamma)` steps. Unrolling
the update from :math:`\mathbf{s}_0 = 0` shows the weights:

.. math::

    \mathbf{s}_t = \gamma\, \mathbf{s}_{t-1} + (1 - \gamma)\, \mathbf{g}_t^2
    = \sum_{k=0}^{t-1} (1 - \gamma)\, \gamma^k\, \mathbf{g}_{t-k}^2 .

The squared gradient :math:`k` steps back weighs :math:`(1 - \gamma)\gamma^k`: the weights
fall off geometrically and sum to :math:`1 - \gamma^t \to 1`. Since
:math:`\gamma^{1/(1-\gamma)} = e^{\ln\gamma / (1 - \gamma)} \approx e^{-1}` for
:math:`\gamma` near 1, the last :math:`1/(1-\gamma)` steps carry about
:math:`1 - e^{-1} \approx 63\%` of the total weight: that is the sentence's "last
:math:`1/(1-\gamma)` steps".

Needs matplotlib: ``python -m pip install ".[plot]"`` (README's first command).
"""

# %%
# The weights, and the kernel's own memory
# ----------------------------------------
# The curves are :math:`(1 - \gamma)\gamma^k`. The dots come from
# :func:`rmsprop_nb.kernels.rmsprop_step` itself: one gradient of 1 followed by zero gradients
# leaves in the state :math:`s`, :math:`k` steps later, the weight of a squared gradient
# :math:`k` steps back (to round-off).
import matplotlib.pyplot as plt
import numpy as np

from rmsprop_nb.kernels import rmsprop_step

steps = np.arange(40)
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
for gamma in (0.95, 0.9, 0.8, 0.7):
    weights = (1 - gamma) * gamma**steps
    (line,) = ax.plot(steps, weights,
                      label=rf"$\gamma = {gamma:.2f}$")

    x, s = np.zeros(1), np.zeros(1)
    memory = []
    for k in steps:
        g = np.full(1, 1.0 if k == 0 else 0.0)  # an impulse, then 0
        rmsprop_step(x, g, s, lr=0.0, gamma=gamma, eps=1e-6)
        memory.append(s[0])
    memory = np.array(memory)
    ax.plot(steps[::3], memory[::3], "o", color=line.get_color(),
            markersize=3)
    np.testing.assert_allclose(memory, weights, rtol=1e-12)

    horizon = round(1 / (1 - gamma))
    share = 1 - gamma**horizon
    ax.axvline(horizon, color=line.get_color(), linestyle=":")
    print(f"gamma {gamma:.2f}: the last 1/(1-gamma) = {horizon:2d} "
          f"steps carry {share:.0%} of the weight")
ax.set_xlabel("k, steps back")
ax.set_ylabel(r"weight $(1 - \gamma)\,\gamma^k$")
ax.legend()
plt.show()

# %%
# A larger :math:`\gamma` spreads the weight thinner over a longer memory (dotted lines at
# :math:`k = 1/(1-\gamma)`: 20, 10, 5 and 3 steps); the book's :math:`\gamma = 0.9`
# averages over about the last 10 minibatches. :math:`\gamma = 0` would keep only the last
# squared gradient (see :ref:`sphx_glr_auto_examples_plot_gamma_sweep.py`).

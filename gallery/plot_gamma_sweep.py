r"""
RMSProp's decay rate :math:`\gamma`
===================================

:math:`\gamma` sets how long RMSProp remembers: :math:`s_t` is an exponentially weighted
average whose weights :math:`(1 - \gamma)\gamma^k` on the gradient :math:`k` steps back sum to
one and fall off over about :math:`1 / (1 - \gamma)` steps (1, 2, 10 and 100 steps for the
values below).

* :math:`\gamma = 0` keeps only the last gradient: :math:`g / \sqrt{g^2 + \epsilon}` is
  nearly :math:`\operatorname{sign}(g)`, so every step has length close to :math:`\eta` and the
  path zig-zags around the minimum instead of settling.
* A large :math:`\gamma` averages over many steps. Because :math:`s_0 = 0`, the first
  averages are too small by the factor :math:`1 - \gamma^t`, which makes the first steps up to
  :math:`1 / \sqrt{1 - \gamma}` times longer: 10 times for :math:`\gamma = 0.99`.

All runs use the book's setting otherwise: :math:`\eta = 0.4`, 20 steps from :math:`(-5, -2)`.
"""

# %%
# Four decay rates
# ----------------
import matplotlib.pyplot as plt

from rmsprop_nb.toy import f_2d, show_trace_2d, train_2d

gammas = (0.0, 0.5, 0.9, 0.99)
runs = {}
for gamma in gammas:
    print(f"gamma = {gamma:<4}", end="  ")
    runs[gamma] = train_2d("rmsprop", lr=0.4, gamma=gamma)

# %%
# :math:`\gamma = 0.9` (the book's value) is the one that settles within 20 steps here; with
# :math:`\gamma = 0.99` the first step overshoots far past the minimum in :math:`x_2`.
fig, axes = plt.subplots(2, 2, figsize=(9, 6.5), layout="constrained")
for ax, gamma in zip(axes.flat, gammas):
    show_trace_2d(f_2d, runs[gamma], ax=ax)
    ax.set_title(rf"$\gamma = {gamma:g}$  (window $\approx {1 / (1 - gamma):.0f}$ steps)")
plt.show()

r"""
RMSProp's decay rate
====================

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

Needs matplotlib: ``python -m pip install ".[plot]"`` (README's first command).
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
# With :math:`\gamma = 0` and :math:`0.5` the memory is too short: the steps stay about
# :math:`\eta` long and the path zig-zags across the valley of :math:`x_2`. The book's
# :math:`\gamma = 0.9` approaches smoothly. :math:`\gamma = 0.99` starts with a step ten times
# too long that overshoots to :math:`x_2 \approx 2`, and then its long memory of those large
# early gradients keeps the later steps short, so it settles anyway.
fig, axes = plt.subplots(2, 2, figsize=(9, 6.5),
                         layout="constrained")
for ax, gamma in zip(axes.flat, gammas):
    show_trace_2d(f_2d, runs[gamma], ax=ax)
    memory = 1 / (1 - gamma)
    ax.set_title(rf"$\gamma = {gamma:g}$,  "
                 rf"$1 / (1 - \gamma) = {memory:.0f}$")
plt.show()

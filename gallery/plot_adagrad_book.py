r"""
The book's AdaGrad figures
==========================

*Dive into Deep Learning* (§7.5) runs AdaGrad on the same quadratic as RMSProp,
:math:`f(\mathbf{x}) = 0.1\, x_1^2 + 2\, x_2^2` from :math:`(-5, -2)`, for 20 steps, twice:
with learning rate :math:`\eta = 0.4` and with :math:`\eta = 2`. AdaGrad divides each
coordinate's step by the root of the *sum* of all its squared gradients so far:

.. math::

    \mathbf{s}_t = \mathbf{s}_{t-1} + \mathbf{g}_t^2, \qquad
    \mathbf{x}_t = \mathbf{x}_{t-1} - \frac{\eta}{\sqrt{\mathbf{s}_t + \epsilon}} \odot \mathbf{g}_t.

Needs matplotlib: ``python -m pip install ".[plot]"`` (README's first command).
"""

# %%
# Two learning rates
# ------------------
import matplotlib.pyplot as plt

from rmsprop_nb.toy import f_2d, show_trace_2d, train_2d

slow = train_2d("adagrad", lr=0.4)
fast = train_2d("adagrad", lr=2.0)

# %%
# Both printed lines match the book. With :math:`\eta = 0.4` the path stops far from the
# minimum: :math:`s_t` only grows, so the effective learning rate
# :math:`\eta / \sqrt{s_t + \epsilon}` only shrinks, and it has become small before
# :math:`x_1` (the flat direction) got anywhere. Five times the learning rate reaches the
# minimum in the same 20 steps.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True,
                         layout="constrained")
for ax, points, lr in zip(axes, (slow, fast), (0.4, 2.0)):
    show_trace_2d(f_2d, points, ax=ax)
    ax.set_title(rf"AdaGrad, $\eta = {lr:g}$")
axes[1].set_ylabel("")
plt.show()

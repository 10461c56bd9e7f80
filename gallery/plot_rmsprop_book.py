r"""
The book's RMSProp figure
=========================

*Dive into Deep Learning* (§7.6) shows RMSProp on the ill-conditioned quadratic

.. math::

    f(\mathbf{x}) = 0.1\, x_1^2 + 2\, x_2^2,

starting at :math:`\mathbf{x}_0 = (-5, -2)`, for 20 steps with learning rate
:math:`\eta = 0.4`, decay rate :math:`\gamma = 0.9` and :math:`\epsilon = 10^{-6}`.
Each coordinate keeps a running average of its squared gradients and divides its step by
the root of that average:

.. math::

    \mathbf{s}_t = \gamma\, \mathbf{s}_{t-1} + (1 - \gamma)\, \mathbf{g}_t^2, \qquad
    \mathbf{x}_t = \mathbf{x}_{t-1} - \frac{\eta}{\sqrt{\mathbf{s}_t + \epsilon}} \odot \mathbf{g}_t.

:func:`rmsprop_nb.toy.train_2d` runs exactly this with
:func:`rmsprop_nb.kernels.rmsprop_step` and prints the book's line.

Needs matplotlib: ``python -m pip install ".[plot]"`` (README's first command).
"""

# %%
# Run the 20 steps
# ----------------
import matplotlib.pyplot as plt

from rmsprop_nb.toy import f_2d, show_trace_2d, train_2d

points = train_2d("rmsprop", lr=0.4, gamma=0.9, eps=1e-6, steps=20)

# %%
# The printed line is the one in the book, digit for digit. Both coordinates reach the
# minimum although their curvatures differ by a factor of 20: dividing by
# :math:`\sqrt{s_t}` puts the two coordinates on the same scale, and the moving average
# (unlike AdaGrad's running sum) lets the step size recover as the gradients shrink.
#
# Draw the path
# -------------
# The orange path over the blue contours of :math:`f`, as in the book.
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
show_trace_2d(f_2d, points, ax=ax)
ax.set_title(r"RMSProp, $\eta = 0.4$, $\gamma = 0.9$, 20 steps")
plt.show()

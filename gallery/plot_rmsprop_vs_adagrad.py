r"""
Why AdaGrad stalls and RMSProp does not
=======================================

Both algorithms scale each coordinate's step by an *effective learning rate*
:math:`\eta / \sqrt{s_t + \epsilon}`; they differ only in :math:`s_t`:

.. math::

    \text{AdaGrad: } s_t = s_{t-1} + g_t^2, \qquad
    \text{RMSProp: } s_t = \gamma\, s_{t-1} + (1 - \gamma)\, g_t^2.

AdaGrad's sum never decreases, so its effective rate can only fall. RMSProp's moving
average forgets gradients older than about :math:`1 / (1 - \gamma)` steps, so when the
gradients shrink near the minimum its effective rate grows again.

Here both run with the same :math:`\eta = 0.4` on the book's quadratic
:math:`f(\mathbf{x}) = 0.1\, x_1^2 + 2\, x_2^2`, and we record :math:`s_t` after every step by
calling the kernels :func:`~rmsprop_nb.kernels.rmsprop_step` and
:func:`~rmsprop_nb.kernels.adagrad_step` directly.

Needs matplotlib: ``python -m pip install ".[plot]"`` (README's first command).
"""

# %%
# Run both, keeping the state
# ---------------------------
import matplotlib.pyplot as plt
import numpy as np

from rmsprop_nb.kernels import adagrad_step, rmsprop_step
from rmsprop_nb.toy import f_2d, f_2d_grad, show_trace_2d

lr, gamma, eps, steps = 0.4, 0.9, 1e-6, 40


def run(update):
    """Points visited, effective learning rates: a row per step."""
    x = np.array([-5.0, -2.0])
    s = np.zeros(2)
    points, rates = [x.copy()], []
    for _ in range(steps):
        g = np.array(f_2d_grad(x[0], x[1]))
        update(x, g, s)
        points.append(x.copy())
        rates.append(lr / np.sqrt(s + eps))
    return np.array(points), np.array(rates)


rms_points, rms_rates = run(
    lambda x, g, s: rmsprop_step(x, g, s, lr, gamma, eps))
ada_points, ada_rates = run(
    lambda x, g, s: adagrad_step(x, g, s, lr, eps))
print(f"after {steps} steps  RMSProp x = {rms_points[-1].round(6)}")
print(f"after {steps} steps  AdaGrad x = {ada_points[-1].round(6)}")

# %%
# Paths and effective learning rates
# ----------------------------------
# Left: RMSProp (orange) reaches the minimum; AdaGrad (green) creeps along :math:`x_1`.
# Right: AdaGrad's effective rates fall during the first steps and then level off: once the
# gradients are small, :math:`s_t` stops growing, but it never shrinks, so the rates never
# recover. RMSProp's rates climb back as the gradients vanish, by a factor
# :math:`1/\sqrt{\gamma}` per step, so its steps stay useful. The rate is large only where the
# gradient is tiny: since :math:`s_t \ge (1 - \gamma)\, g_t^2`, a step is never longer than
# :math:`\eta / \sqrt{1 - \gamma}`.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4),
                                  layout="constrained")
show_trace_2d(f_2d, rms_points, ax=left)
left.plot(ada_points[:, 0], ada_points[:, 1], "-s", color="#2ca02c",
          markersize=4)
left.lines[0].set_label("RMSProp")
left.lines[1].set_label("AdaGrad")
left.legend(loc="lower right")
left.set_title(rf"Same learning rate $\eta = {lr}$, {steps} steps")

t = np.arange(1, steps + 1)
for k, style in ((0, "-"), (1, "--")):
    right.semilogy(t, rms_rates[:, k], style, color="#ff7f0e",
                   label=f"RMSProp, $x_{k + 1}$")
    right.semilogy(t, ada_rates[:, k], style, color="#2ca02c",
                   label=f"AdaGrad, $x_{k + 1}$")
right.set_xlabel("step $t$")
right.set_ylabel(r"effective rate $\eta / \sqrt{s_t + \epsilon}$")
right.set_title("Per-coordinate effective learning rate")
right.legend(fontsize="small")
plt.show()

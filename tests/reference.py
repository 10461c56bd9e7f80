"""A plain NumPy oracle, written straight from the update rules (d2l §7.5/§7.6, torch.optim).

It follows PyTorch's order of operations so that the kernels can be compared with it to the
last bit in float64 and to a few ulp in float32. It returns new arrays and changes nothing.
"""

import numpy as np


def rmsprop(x, g, s, lr, gamma, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
            momentum=0.0, buf=None, centered=False, gavg=None):
    """One RMSProp step; returns (x, s, buf, gavg) (buf/gavg None when off)."""
    t = x.dtype.type
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + t(weight_decay) * x
    w = t(1.0 - gamma)
    s = t(gamma) * s + w * g * g
    v = s
    if centered:
        # torch.lerp(gavg, g, w): a two-sided formula
        gavg = gavg + w * (g - gavg) if w < 0.5 else g - (g - gavg) * t(1.0 - float(w))
        v = np.maximum(s - gavg * gavg, t(0))
    d = np.sqrt(v + t(eps)) if eps_in_sqrt else np.sqrt(v) + t(eps)
    if momentum != 0:
        buf = t(momentum) * buf + g / d
        x = x - t(lr) * buf
    else:
        x = x - t(lr) * g / d
    return x, s, buf, gavg


def adagrad(x, g, s, lr, eps, eps_in_sqrt=True, weight_decay=0.0, maximize=False,
            lr_decay=0.0, step=1):
    """One AdaGrad step; returns (x, s)."""
    t = x.dtype.type
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + t(weight_decay) * x
    clr = t(lr / (1.0 + (step - 1) * lr_decay))
    s = s + g * g
    d = np.sqrt(s + t(eps)) if eps_in_sqrt else np.sqrt(s) + t(eps)
    return x - clr * g / d, s


def book_rmsprop_2d(eta=0.4, gamma=0.9, steps=20):
    """The book's own scalar loop (d2l §7.6), in Python floats."""
    import math

    x1, x2, s1, s2 = -5.0, -2.0, 0.0, 0.0
    for _ in range(steps):
        g1, g2, eps = 0.2 * x1, 4 * x2, 1e-6
        s1 = gamma * s1 + (1 - gamma) * g1 ** 2
        s2 = gamma * s2 + (1 - gamma) * g2 ** 2
        x1 -= eta / math.sqrt(s1 + eps) * g1
        x2 -= eta / math.sqrt(s2 + eps) * g2
    return x1, x2

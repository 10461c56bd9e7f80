r"""The math, once: the per-element updates and their hyperparameters.

:func:`_rmsprop_update` and :func:`_adagrad_update` are plain Python functions of scalars.
Numba compiles them for the CPU (the loops of ``_loops.py``) and ``rmsprop_nb.cuda`` compiles
the very same functions as CUDA device functions; nothing else in the package writes an update.

Their hyperparameters travel as one namedtuple, already cast to the arrays' dtype by
:func:`_rmsprop_hyper` / :func:`_adagrad_hyper`, which also check the ranges. Derived constants
(``1 - gamma``, ``eps`` split into an inside and an outside part) are computed once per call in
float64 and rounded once, as PyTorch does with its Python-float scalars; a float32 update then
computes in float32 only (a Python float literal inside the loop would make it float64).
"""

from __future__ import annotations

import math
from collections import namedtuple

from numba import types
from numba.extending import lower_builtin, type_callable

from ._jit import jit
from ._validation import RULES, OutOfRange

RMSPropHyper = namedtuple(
    "RMSPropHyper",
    "lr gamma one_minus_gamma lerp_keep lerp_low eps_in eps_out weight_decay momentum "
    "maximize zero",
)
AdaGradHyper = namedtuple("AdaGradHyper", "lr eps_in eps_out weight_decay maximize zero")


def _same_dtype(x, g, s, h):
    """Nothing at run time; at compile time, a TypeError unless ``x``, ``g``, ``s`` and the
    hyperparameters are all of one float dtype (a float64 ``g`` would silently make a float32
    update float64). In CUDA's simulator, which runs Python, it checks the values' dtypes."""
    want = getattr(h.zero, "dtype", None)
    for name, v in (("x", x), ("g", g), ("s", s)):
        got = getattr(v, "dtype", None)
        if want is not None and got is not None and got != want:
            raise TypeError(_dtype_message(name, got, want))


def _dtype_message(name, got, want):
    return (
        f"{name} is {got} but the hyperparameters are {want}: an update computes in one dtype "
        "(cast the value, or build the hyperparameters for its dtype)"
    )


# Typed and lowered directly (not an @overload, whose implementation numba-cuda compiles as a
# separate device function, which needs a GPU even for compile_ptx).
@type_callable(_same_dtype)
def _same_dtype_typer(context):
    def typer(x, g, s, h):
        want = h[len(h) - 1]  # h.zero: the hyperparameters' dtype
        for name, t in (("x", x), ("g", g), ("s", s)):
            if types.unliteral(t) != want:
                raise TypeError(_dtype_message(name, types.unliteral(t), want))
        return types.none

    return typer


@lower_builtin(_same_dtype, types.Any, types.Any, types.Any, types.Any)
def _same_dtype_lowering(context, builder, sig, args):
    return context.get_dummy_value()


def _rmsprop_update(x, g, s, buf, gavg, h, use_momentum, centered):
    r"""One element of RMSProp; returns the new ``(x, s, buf, gavg)``.

    .. math:: s \leftarrow \gamma s + (1-\gamma) g^2,\quad
              x \leftarrow x - \eta\, g / (\sqrt{s + \epsilon_{in}} + \epsilon_{out})
    """
    _same_dtype(x, g, s, h)
    if h.maximize:
        g = -g
    if h.weight_decay != h.zero:
        g = g + h.weight_decay * x
    s = h.gamma * s + h.one_minus_gamma * g * g
    v = s
    if centered:
        # gavg + (1 - gamma)(g - gavg), in torch.lerp's two-sided form (exact at both ends)
        if h.lerp_low:
            gavg = gavg + h.one_minus_gamma * (g - gavg)
        else:
            gavg = g - (g - gavg) * h.lerp_keep
        v = s - gavg * gavg
        if v < h.zero:  # round-off only (s >= gavg^2 in exact arithmetic); NaN passes through
            v = h.zero
    # One of eps_in/eps_out is zero, so this is sqrt(v + eps) or sqrt(v) + eps without a branch
    # (adding an exact zero changes nothing).
    d = math.sqrt(v + h.eps_in) + h.eps_out
    if use_momentum:
        buf = h.momentum * buf + g / d
        x = x - h.lr * buf
    else:
        x = x - h.lr * g / d
    return x, s, buf, gavg


def _adagrad_update(x, g, s, h):
    r"""One element of AdaGrad; returns the new ``(x, s)``.

    .. math:: s \leftarrow s + g^2,\quad
              x \leftarrow x - \eta_t\, g / (\sqrt{s + \epsilon_{in}} + \epsilon_{out})
    """
    _same_dtype(x, g, s, h)
    if h.maximize:
        g = -g
    if h.weight_decay != h.zero:
        g = g + h.weight_decay * x
    s = s + g * g
    d = math.sqrt(s + h.eps_in) + h.eps_out
    x = x - h.lr * g / d
    return x, s


def _gamma_power(h, k):
    r"""The decay of ``k`` steps without a gradient, :math:`\gamma^k`, in the dtype.

    ``k`` is given in the dtype too (exact up to :math:`2^{24}` steps in float32). A row of a
    sparse RMSProp step that missed ``k`` steps is brought forward with one multiplication by
    this factor instead of ``k`` (see :func:`_rmsprop_catch_up`).
    """
    return math.pow(h.gamma, k)


def _rmsprop_catch_up(s, gavg, f):
    r"""One element of RMSProp brought forward over steps without a gradient; returns the new
    ``(s, gavg)``, with ``f`` from :func:`_gamma_power`.

    .. math:: s \leftarrow \gamma^k s,\quad \bar g \leftarrow \gamma^k \bar g

    (with :math:`g = 0`, a step makes :math:`s \leftarrow \gamma s` and
    :math:`\bar g \leftarrow \gamma \bar g`, and leaves :math:`x` where it is).
    """
    return s * f, gavg * f


# --------------------------------------------------------------------------------------------
# Hyperparameters: checked (OutOfRange, a ValueError that says what was got) and cast to the
# dtype of ``x``. ``where`` names the caller in the message ("rmsprop_step", "RMSProp.step").
# --------------------------------------------------------------------------------------------

NONNEGATIVE = RULES["nonnegative"]
UNIT = RULES["unit"]


# The checks are written out, not a helper called per name: each string literal would make a
# new compiled specialization of the helper (0.2 s of a first call).


@jit
def _rmsprop_hyper(where, x, lr, gamma, eps, eps_in_sqrt, weight_decay, maximize, momentum):
    if not (lr >= 0 and lr < math.inf):
        raise OutOfRange(where, "lr", lr, NONNEGATIVE)
    if not (gamma >= 0 and gamma < 1):
        raise OutOfRange(where, "gamma", gamma, UNIT)
    if not (eps >= 0 and eps < math.inf):
        raise OutOfRange(where, "eps", eps, NONNEGATIVE)
    if not (weight_decay >= 0 and weight_decay < math.inf):
        raise OutOfRange(where, "weight_decay", weight_decay, NONNEGATIVE)
    if not (momentum >= 0 and momentum < math.inf):
        raise OutOfRange(where, "momentum", momentum, NONNEGATIVE)
    t = x.dtype.type
    w = t(1.0 - gamma)  # PyTorch rounds 1 - alpha (a Python float) once to the tensor dtype
    return RMSPropHyper(
        t(lr), t(gamma), w, t(1.0 - float(w)), float(w) < 0.5,
        t(eps) if eps_in_sqrt else t(0), t(0) if eps_in_sqrt else t(eps),
        t(weight_decay), t(momentum), bool(maximize), t(0),
    )


@jit
def _adagrad_hyper(where, x, lr, eps, eps_in_sqrt, weight_decay, maximize, lr_decay, step):
    if not (lr >= 0 and lr < math.inf):
        raise OutOfRange(where, "lr", lr, NONNEGATIVE)
    if not (eps >= 0 and eps < math.inf):
        raise OutOfRange(where, "eps", eps, NONNEGATIVE)
    if not (weight_decay >= 0 and weight_decay < math.inf):
        raise OutOfRange(where, "weight_decay", weight_decay, NONNEGATIVE)
    if not (lr_decay >= 0 and lr_decay < math.inf):
        raise OutOfRange(where, "lr_decay", lr_decay, NONNEGATIVE)
    if step < 1:
        raise OutOfRange(where, "step", step, ">= 1 (the first step is 1)")
    t = x.dtype.type
    clr = lr / (1.0 + (step - 1) * lr_decay)  # in float64, then rounded once, as PyTorch
    return AdaGradHyper(
        t(clr), t(eps) if eps_in_sqrt else t(0), t(0) if eps_in_sqrt else t(eps),
        t(weight_decay), bool(maximize), t(0),
    )

"""Command line: ``python -m rmsprop_nb`` (or ``rmsprop-nb``) reruns the book's 2-D example.

It prints the book's line (``epoch 20, x1 -0.010599, x2 0.000000`` for the defaults, §7.6
RMSProp) and saves the trajectory figure, in any format matplotlib writes. A thin layer over
:mod:`rmsprop_nb.toy`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

from .toy import f_2d, show_trace_2d, train_2d

_NAMES = {"rmsprop": "RMSProp", "adagrad": "AdaGrad"}
# A step takes microseconds and the figure draws every point: 10^5 epochs run and draw in under
# a second, and far more would only pile markers onto the minimum (or exhaust memory).
MAX_EPOCHS = 100_000
_EPILOG = (
    "Exit status: 0 when the figure was saved; 1 when the run diverged (a coordinate became "
    "infinite or NaN, e.g. a too large --lr): the last line is printed, an error says from "
    "which epoch, and no figure is written; 2 for a bad argument."
)


def _parser():
    parser = argparse.ArgumentParser(
        prog="rmsprop-nb",
        description=(
            "Run RMSProp or AdaGrad on the book's f(x) = 0.1 x1^2 + 2 x2^2 from (-5, -2) "
            "(Dive into Deep Learning, sections 7.5-7.6), print the last point and save the "
            "trajectory figure. Also runs as 'python -m rmsprop_nb'."
        ),
        epilog=_EPILOG,
    )
    parser.add_argument(
        "--optimizer", choices=sorted(_NAMES), default="rmsprop",
        help="the optimizer to run (default: %(default)s)",
    )
    parser.add_argument(
        "--lr", type=float, default=0.4, help="learning rate eta >= 0 (default: %(default)s)"
    )
    parser.add_argument(
        "--gamma", type=float, default=None,
        help="RMSProp decay rate in [0, 1) (default: 0.9; not accepted with adagrad)",
    )
    parser.add_argument(
        "--eps", type=float, default=1e-6,
        help="epsilon >= 0, added inside the square root (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=int, default=20,
        help=f"number of steps, 1 to {MAX_EPOCHS} (default: %(default)s)",
    )
    parser.add_argument(
        "--out", metavar="PATH", default=None,
        help="where to write the figure, in the format its extension names (png, pdf, svg, "
        "jpg, eps, webp, ...: any that matplotlib writes); without an extension, .png is "
        "appended (default: rmsprop_trajectory.png, or adagrad_trajectory.png, in the current "
        "directory)",
    )
    return parser


def _check(parser, args):
    """Turn every bad value into ``parser.error`` (exit status 2) before anything runs."""
    if not (math.isfinite(args.lr) and args.lr >= 0):
        parser.error(f"argument --lr: must be a finite number >= 0, got {args.lr}")
    if args.gamma is not None:
        if args.optimizer != "rmsprop":
            parser.error(f"argument --gamma: applies to rmsprop only, not {args.optimizer}")
        if not 0 <= args.gamma < 1:
            parser.error(f"argument --gamma: must be in [0, 1), got {args.gamma}")
    if not (math.isfinite(args.eps) and args.eps >= 0):
        parser.error(f"argument --eps: must be a finite number >= 0, got {args.eps}")
    if not 1 <= args.epochs <= MAX_EPOCHS:
        parser.error(f"argument --epochs: must be from 1 to {MAX_EPOCHS}, got {args.epochs}")
    if not args.out or os.path.isdir(args.out):
        parser.error(f"argument --out: needs a file name, got {args.out!r}")
    folder = os.path.dirname(args.out) or "."
    if not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
        parser.error(f"argument --out: {folder} is not a writable directory")


def _figure_format(parser, args):
    """The format named by the extension of ``--out`` (``.png`` appended when it has none)."""
    from matplotlib.backend_bases import FigureCanvasBase

    extension = os.path.splitext(args.out)[1]
    if not extension:
        args.out += ".png"  # as matplotlib's own savefig does
        return "png"
    formats = FigureCanvasBase.get_supported_filetypes()
    if extension[1:].lower() not in formats:
        parser.error(
            f"argument --out: matplotlib writes no {extension} files; use one of "
            + ", ".join(f".{f}" for f in sorted(formats))
        )
    return extension[1:].lower()


def _diverged(parser, points):
    """Exit with status 1 when the run left the finite numbers (nothing is saved)."""
    finite = np.isfinite(points).all(axis=1)
    if finite.all():
        return
    epoch = int(np.argmin(finite))  # >= 1: the start point is finite
    x1, x2 = points[epoch - 1]
    parser.exit(
        1,
        f"{parser.prog}: error: the run diverged: x1 {x1:g}, x2 {x2:g} at epoch {epoch - 1}, "
        f"then not finite from epoch {epoch} on; try a smaller --lr. No figure written.\n",
    )


def main(argv=None):
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = f"{args.optimizer}_trajectory.png"
    _check(parser, args)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        parser.error('the figure needs matplotlib: pip install "rmsprop-nb[plot]"')
    fmt = _figure_format(parser, args)

    gamma = 0.9 if args.optimizer == "rmsprop" and args.gamma is None else args.gamma
    points = train_2d(args.optimizer, lr=args.lr, gamma=gamma, eps=args.eps, steps=args.epochs)
    _diverged(parser, points)

    # A Figure on an Agg canvas, not pyplot: no display needed, and no global backend switch
    # when main() is called from a running Python session.
    figure = Figure(figsize=(5, 3.5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = show_trace_2d(f_2d, points, ax=figure.add_subplot())
    hyper = f"lr={args.lr:g}" + ("" if gamma is None else f", gamma={gamma:g}")
    title = f"{_NAMES[args.optimizer]}: {hyper}, eps={args.eps:g}, {args.epochs} epochs"
    ax.set_title(title, fontsize="medium")
    existed = os.path.exists(args.out)
    try:
        figure.savefig(args.out, format=fmt, dpi=150)
    except (OSError, RuntimeError) as exc:  # e.g. .pgf needs a LaTeX installation
        if not existed and os.path.exists(args.out):
            os.remove(args.out)  # no half-written figure
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        parser.error(f"argument --out: cannot write {args.out}: {reason}")
    print(f"saved figure to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

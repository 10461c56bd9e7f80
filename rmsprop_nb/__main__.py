"""Command line: ``python -m rmsprop_nb`` (or ``rmsprop-nb``) reruns the book's 2-D example.

It prints the book's line (``epoch 20, x1 -0.010599, x2 0.000000`` for the defaults, §7.6
RMSProp) and saves the trajectory figure to a PNG file. A thin layer over :mod:`rmsprop_nb.toy`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from .toy import f_2d, show_trace_2d, train_2d

_NAMES = {"rmsprop": "RMSProp", "adagrad": "AdaGrad"}


def _parser():
    parser = argparse.ArgumentParser(
        prog="rmsprop-nb",
        description=(
            "Run RMSProp or AdaGrad on the book's f(x) = 0.1 x1^2 + 2 x2^2 from (-5, -2) "
            "(Dive into Deep Learning, sections 7.5-7.6), print the last point and save the "
            "trajectory figure as a PNG. Also runs as 'python -m rmsprop_nb'."
        ),
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
        "--epochs", type=int, default=20, help="number of steps, >= 1 (default: %(default)s)"
    )
    parser.add_argument(
        "--out", metavar="PATH", default=None,
        help="where to write the PNG figure (default: rmsprop_trajectory.png, or "
        "adagrad_trajectory.png, in the current directory)",
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
    if args.epochs < 1:
        parser.error(f"argument --epochs: must be >= 1, got {args.epochs}")
    if not args.out or os.path.isdir(args.out):
        parser.error(f"argument --out: needs a file name, got {args.out!r}")
    folder = os.path.dirname(args.out) or "."
    if not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
        parser.error(f"argument --out: {folder} is not a writable directory")
    if os.path.splitext(args.out)[1].lower() not in ("", ".png"):
        parser.error(f"argument --out: the figure is a PNG; got {args.out}")


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

    gamma = 0.9 if args.optimizer == "rmsprop" and args.gamma is None else args.gamma
    points = train_2d(args.optimizer, lr=args.lr, gamma=gamma, eps=args.eps, steps=args.epochs)

    # A Figure on an Agg canvas, not pyplot: no display needed, and no global backend switch
    # when main() is called from a running Python session.
    figure = Figure(figsize=(5, 3.5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = show_trace_2d(f_2d, points, ax=figure.add_subplot())
    hyper = f"lr={args.lr:g}" + ("" if gamma is None else f", gamma={gamma:g}")
    title = f"{_NAMES[args.optimizer]}: {hyper}, eps={args.eps:g}, {args.epochs} epochs"
    ax.set_title(title, fontsize="medium")
    try:
        figure.savefig(args.out, format="png", dpi=150)
    except OSError as exc:
        parser.error(f"argument --out: cannot write {args.out}: {exc.strerror or exc}")
    print(f"saved figure to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

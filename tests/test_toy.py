"""The book's 2-D harness (rmsprop_nb.toy) against plain-Python transcriptions of the book."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rmsprop_nb
from rmsprop_nb.toy import f_2d, f_2d_grad, show_trace_2d, train_2d

REPO = Path(rmsprop_nb.__file__).resolve().parents[1]

# The lines the book prints (§7.6 RMSProp; §7.5 AdaGrad with eta = 0.4 and eta = 2).
BOOK_RMSPROP = "epoch 20, x1 -0.010599, x2 0.000000"
BOOK_ADAGRAD = {
    0.4: "epoch 20, x1 -2.382563, x2 -0.158591",
    2.0: "epoch 20, x1 -0.002295, x2 -0.000000",
}


def book_grad(x1, x2):
    return 0.2 * x1, 4 * x2


def book_adagrad(eta, steps=20, eps=1e-6, lr_decay=0.0, grad=book_grad):
    """The book's adagrad_2d, element by element; lr_decay as in torch.optim.Adagrad."""
    x1, x2, s1, s2 = -5.0, -2.0, 0.0, 0.0
    points = [(x1, x2)]
    for t in range(1, steps + 1):
        g1, g2 = grad(x1, x2)
        s1 += g1**2
        s2 += g2**2
        lr = eta / (1 + (t - 1) * lr_decay)
        x1 -= lr / math.sqrt(s1 + eps) * g1
        x2 -= lr / math.sqrt(s2 + eps) * g2
        points.append((x1, x2))
    return np.array(points)


def book_rmsprop(eta, gamma, steps=20, eps=1e-6, eps_in_sqrt=True, momentum=0.0, centered=False):
    """The book's rmsprop_2d for one coordinate at a time, plus torch's momentum/centered."""
    x = [-5.0, -2.0]
    s, buf, avg = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    points = [tuple(x)]
    for _ in range(steps):
        g = book_grad(*x)
        for i in range(2):
            s[i] = gamma * s[i] + (1 - gamma) * g[i] ** 2
            v = s[i]
            if centered:
                avg[i] = gamma * avg[i] + (1 - gamma) * g[i]
                v = max(s[i] - avg[i] ** 2, 0.0)
            denom = math.sqrt(v + eps) if eps_in_sqrt else math.sqrt(v) + eps
            buf[i] = momentum * buf[i] + g[i] / denom
            x[i] -= eta * buf[i]
        points.append(tuple(x))
    return np.array(points)


def line(point, epoch=20):
    return f"epoch {epoch}, x1 {point[0]:f}, x2 {point[1]:f}"


def assert_same_path(points, reference):
    # atol: x2 ends near 1e-14 after cancellations, where relative error means nothing
    np.testing.assert_allclose(points, reference, rtol=1e-10, atol=1e-12)


# --- the book's numbers ------------------------------------------------------------------


def test_rmsprop_defaults_print_the_books_line_and_follow_the_books_path(capsys):
    points = train_2d()
    assert capsys.readouterr().out == BOOK_RMSPROP + "\n"
    reference = book_rmsprop(0.4, 0.9)
    assert line(reference[-1]) == BOOK_RMSPROP
    assert_same_path(points, reference)


@pytest.mark.parametrize("eta", sorted(BOOK_ADAGRAD))
def test_adagrad_prints_the_books_line_and_follows_the_books_path(eta, capsys):
    points = train_2d("adagrad", lr=eta)
    assert capsys.readouterr().out == BOOK_ADAGRAD[eta] + "\n"
    reference = book_adagrad(eta)
    assert line(reference[-1]) == BOOK_ADAGRAD[eta]
    assert_same_path(points, reference)


def test_results_start_at_x0_with_one_row_per_step(capsys):
    points = train_2d(steps=3, x0=(1.5, -0.25), verbose=False)
    assert points.shape == (4, 2)
    assert points.dtype == np.float64
    assert points[0].tolist() == [1.5, -0.25]
    assert np.all(points[1:] != points[:-1])  # every step moved both coordinates
    assert capsys.readouterr().out == ""


def test_the_printed_line_names_the_last_step(capsys):
    points = train_2d("adagrad", steps=np.int64(7))
    assert capsys.readouterr().out == line(points[-1], epoch=7) + "\n"
    assert_same_path(points, book_adagrad(0.4, steps=7))


def test_gamma_is_forwarded_to_rmsprop():
    assert_same_path(train_2d(gamma=0.5, verbose=False), book_rmsprop(0.4, 0.5))


def test_custom_gradient_is_used():
    def grad(x1, x2):
        return 2 * x1, 2 * x2

    assert_same_path(
        train_2d("adagrad", f_grad=grad, verbose=False), book_adagrad(0.4, grad=grad)
    )


# --- options reach the kernels (their state arrays are created here) ----------------------


@pytest.mark.parametrize(
    "options",
    [dict(momentum=0.5), dict(centered=True), dict(momentum=0.5, centered=True),
     dict(eps_in_sqrt=False)],
    ids=lambda o: ",".join(o),
)
def test_rmsprop_options_match_the_reference(options):
    points = train_2d(verbose=False, **options)
    assert_same_path(points, book_rmsprop(0.4, 0.9, **options))
    assert not np.allclose(points, book_rmsprop(0.4, 0.9))  # the option changed the path


def test_adagrad_lr_decay_uses_one_based_steps():
    points = train_2d("adagrad", lr_decay=0.1, verbose=False)
    assert_same_path(points, book_adagrad(0.4, lr_decay=0.1))


def test_maximize_climbs_f():
    points = train_2d(maximize=True, steps=5, verbose=False)
    values = f_2d(points[:, 0], points[:, 1])
    assert np.all(np.diff(values) > 0)


# --- errors --------------------------------------------------------------------------------


def test_adagrad_rejects_gamma():
    with pytest.raises(ValueError, match="gamma"):
        train_2d("adagrad", gamma=0.9)


def test_unknown_optimizer_names_the_choices():
    with pytest.raises(ValueError, match=r"rmsprop.*adagrad.*'sgd'"):
        train_2d("sgd")


@pytest.mark.parametrize("steps", [0, -1, 2.5, True, "20", None])
def test_steps_must_be_a_positive_integer(steps):
    with pytest.raises(ValueError, match="steps"):
        train_2d(steps=steps, verbose=False)


@pytest.mark.parametrize("x0", [(1.0,), (1.0, 2.0, 3.0), ((1.0, 2.0),)])
def test_x0_must_be_two_numbers(x0):
    with pytest.raises(ValueError, match="x0"):
        train_2d(x0=x0, verbose=False)


def test_kernel_checks_still_apply():
    with pytest.raises(ValueError, match="gamma"):
        train_2d(gamma=1.0, verbose=False)
    with pytest.raises(TypeError, match="lr_decay"):  # an AdaGrad option given to RMSProp
        train_2d(lr_decay=0.1, verbose=False)


# --- f_2d and its gradient -----------------------------------------------------------------


def test_f_2d_is_elementwise_on_a_grid():
    x1, x2 = np.meshgrid(np.linspace(-5, 1, 7), np.linspace(-3, 1, 5))
    values = f_2d(x1, x2)
    assert values.shape == (5, 7)
    assert values[2, 3] == 0.1 * x1[2, 3] ** 2 + 2 * x2[2, 3] ** 2


@pytest.mark.parametrize("point", [(-5.0, -2.0), (0.3, 0.7), (2.0, -1.5)])
def test_f_2d_grad_matches_central_differences(point):
    h = 1e-5
    x1, x2 = point
    numeric = (
        (f_2d(x1 + h, x2) - f_2d(x1 - h, x2)) / (2 * h),
        (f_2d(x1, x2 + h) - f_2d(x1, x2 - h)) / (2 * h),
    )
    np.testing.assert_allclose(f_2d_grad(x1, x2), numeric, rtol=1e-8)


# --- the figure ----------------------------------------------------------------------------


@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_show_trace_2d_draws_the_path_over_contours(plt):
    from matplotlib.axes import Axes
    from matplotlib.colors import to_hex
    from matplotlib.contour import ContourSet

    points = train_2d(verbose=False)
    ax = show_trace_2d(f_2d, points)
    assert isinstance(ax, Axes)
    [path] = ax.lines
    assert len(path.get_xdata()) == 21
    np.testing.assert_array_equal(path.get_xydata(), points)
    assert to_hex(path.get_color()) == "#ff7f0e"
    assert (path.get_linestyle(), path.get_marker()) == ("-", "o")
    contours = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert len(contours) == 1
    assert {to_hex(c) for c in contours[0].get_edgecolor()} == {"#1f77b4"}
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
    assert ax.get_xlim()[0] == pytest.approx(-5.5) and ax.get_ylim()[0] == pytest.approx(-3.0)


def test_show_trace_2d_draws_on_the_given_axes(plt):
    fig, ax = plt.subplots()
    assert show_trace_2d(f_2d, [(-5.0, -2.0), (-4.0, -1.0)], ax=ax) is ax
    assert plt.get_fignums() == [fig.number]  # no second figure was opened
    assert len(ax.lines[0].get_xdata()) == 2


def test_show_trace_2d_without_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # makes the import fail
    with pytest.raises(ImportError, match=r'pip install "rmsprop-nb\[plot\]"'):
        show_trace_2d(f_2d, [(0.0, 0.0)])


def test_importing_toy_does_not_import_matplotlib():
    code = "import sys, rmsprop_nb.toy; print(sorted(m for m in sys.modules if 'matplotlib' in m))"
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"

"""The book's ch. 7 harness (rmsprop_nb.airfoil) against the book's data, semantics and numbers.

The book's four printed losses (§7.5 AdaGrad, §7.6 RMSProp; from scratch and concise) come from
unseeded runs; each must lie within the spread of this package's runs over seeds 0-49. The
concise runs use ``torch.optim`` and are skipped when torch is not installed.
"""

from __future__ import annotations

import doctest
import hashlib
import importlib
import math
import os
import re
import statistics
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import rmsprop_nb
from rmsprop_nb import airfoil
from rmsprop_nb.airfoil import (
    adagrad,
    get_data_ch7,
    init_adagrad_states,
    init_rmsprop_states,
    rmsprop,
    train_ch7,
    train_pytorch_ch7,
)

REPO = Path(rmsprop_nb.__file__).resolve().parents[1]
DATA_SHA256 = "10ee06e6cfb27dae6b44213d421d217012fb1f9b697592e73a4e4016b52d425f"
SEEDS = range(50)
BOOK_LINE = re.compile(r"loss: (\d+\.\d{6}), (\d+\.\d{6}) sec per epoch")

# The book's runs: (update function or torch.optim class name, hyperparameters, printed loss).
SCRATCH = {
    "adagrad": (adagrad, init_adagrad_states, {"lr": 0.1}, 0.243675),
    "rmsprop": (rmsprop, init_rmsprop_states, {"lr": 0.01, "gamma": 0.9}, 0.243452),
}
CONCISE = {  # the optimizer class, by its import path
    "torch.optim.Adagrad": ({"lr": 0.1}, 0.243147),
    "torch.optim.RMSprop": ({"lr": 0.01, "alpha": 0.9}, 0.243676),
    "rmsprop_nb.torch.Adagrad": ({"lr": 0.1}, 0.243147),
    "rmsprop_nb.torch.RMSprop": ({"lr": 0.01, "alpha": 0.9}, 0.243676),
}


def optimizer_class(path):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def quiet(*args, **kwargs):
    return train_ch7(*args, verbose=False, plot=False, **kwargs)


@pytest.fixture(scope="module")
def data():
    return get_data_ch7()


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def book_adagrad(params, states, hyperparams):
    """§7.5's adagrad, with NumPy in place of torch."""
    eps = 1e-6
    for p, s in zip(params, states):
        s += p.grad**2
        p.data -= hyperparams["lr"] * p.grad / np.sqrt(s + eps)


def book_rmsprop(params, states, hyperparams):
    """§7.6's rmsprop, with NumPy in place of torch."""
    gamma, eps = hyperparams["gamma"], 1e-6
    for p, s in zip(params, states):
        s[:] = gamma * s + (1 - gamma) * p.grad**2
        p.data -= hyperparams["lr"] * p.grad / np.sqrt(s + eps)


# -- the data ---------------------------------------------------------------------------------


def _raw():
    with (resources.files("rmsprop_nb") / "data" / "airfoil_self_noise.dat").open("rb") as f:
        return np.loadtxt(f)


def test_shipped_data_is_the_books_file_with_its_credit():
    data_dir = resources.files("rmsprop_nb") / "data"
    digest = hashlib.sha256((data_dir / "airfoil_self_noise.dat").read_bytes()).hexdigest()
    assert digest == DATA_SHA256
    credit = (data_dir / "README.md").read_text(encoding="utf-8")
    for words in ("Brooks", "Pope", "Marcolini", "NASA", "UCI", "CC BY 4.0"):
        assert words in credit


def test_wheel_and_sdist_ship_the_data():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "rmsprop_nb.data" in setuptools["packages"]
    patterns = setuptools["package-data"]["rmsprop_nb.data"]
    for name in ("airfoil_self_noise.dat", "README.md"):
        assert any(fnmatch(name, p) for p in patterns), name


def test_loader_returns_the_books_arrays(data):
    features, labels = data
    assert features.shape == (1500, 5) and features.dtype == np.float32
    assert labels.shape == (1500,) and labels.dtype == np.float32
    assert features.flags.c_contiguous
    # The book's get_data_ch7, line for line, on an independent parse of the file.
    raw = _raw()
    assert raw.shape == (1503, 6)
    book = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_array_equal(features, book[:1500, :-1].astype(np.float32))
    np.testing.assert_array_equal(labels, book[:1500, -1].astype(np.float32))


def test_loader_standardises_all_1503_rows_with_the_population_std(data):
    features, labels = data
    raw = _raw()
    # Mean 0 and std 1 hold for the 1503 rows (not for the 1500 returned)...
    whole = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_allclose(whole.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(whole.std(axis=0), 1, rtol=1e-12)
    # ...and the returned rows are those, not a standardisation of 1500 rows or with ddof=1.
    first = raw[:1500]
    for other in ((first - first.mean(0)) / first.std(0), (raw - raw.mean(0)) / raw.std(0, ddof=1)):
        assert not np.array_equal(features, other[:1500, :-1].astype(np.float32))


def test_loader_first_and_last_rows(data):
    """Against plain Python: the file's text, float(), statistics.fmean and pstdev."""
    features, labels = data
    text = (resources.files("rmsprop_nb") / "data" / "airfoil_self_noise.dat").read_text()
    rows = [[float(v) for v in line.split("\t")] for line in text.splitlines()]
    assert len(rows) == 1503 and rows[0] == [800, 0, 0.3048, 71.3, 0.00266337, 126.201]
    columns = list(zip(*rows))
    mean = [statistics.fmean(c) for c in columns]
    std = [statistics.pstdev(c) for c in columns]
    for i in (0, 1499):
        z = [(a - m) / s for a, m, s in zip(rows[i], mean, std)]
        np.testing.assert_allclose(features[i], z[:5], rtol=2e-7)
        np.testing.assert_allclose(labels[i], z[5], rtol=2e-7)
    np.testing.assert_allclose(features[0], [-0.662023, -1.146403, 1.799299, 1.312935, -0.644805],
                               atol=1e-6)
    np.testing.assert_allclose(labels[[0, -1]], [0.197939, -2.259444], atol=1e-6)


# -- the harness's semantics --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["adagrad", "rmsprop"])
def test_same_seed_repeats_a_run_exactly(data, name):
    fn, init, hyper, _ = SCRATCH[name]
    first = quiet(fn, init(), hyper, *data, seed=7)
    assert np.array_equal(first, quiet(fn, init(), hyper, *data, seed=7))
    assert not np.array_equal(first, quiet(fn, init(), hyper, *data, seed=8))
    assert not np.array_equal(quiet(fn, init(), hyper, *data), quiet(fn, init(), hyper, *data))


@pytest.mark.parametrize("name", ["adagrad", "rmsprop"])
@pytest.mark.parametrize("batch_size, num_epochs", [(10, 2), (7, 3), (1500, 2)])
def test_compiled_loop_equals_the_python_loop(data, name, batch_size, num_epochs):
    """The package's own update functions run compiled; wrapped, they run from Python."""
    fn, init, hyper, _ = SCRATCH[name]
    states_c, states_p = init(), init()
    for seed in (0, 1):
        compiled = quiet(fn, states_c, hyper, *data, batch_size, num_epochs, seed=seed)
        python = quiet(lambda p, s, h: fn(p, s, h), states_p, hyper, *data, batch_size,
                       num_epochs, seed=seed)
        assert np.array_equal(compiled, python)
        for s_c, s_p in zip(states_c, states_p):  # the states were updated in place, alike
            assert np.array_equal(s_c, s_p) and np.any(s_c != 0)


@pytest.mark.parametrize("ours, book", [(adagrad, book_adagrad), (rmsprop, book_rmsprop)])
def test_update_functions_agree_with_the_books_written_in_numpy(data, ours, book):
    name = ours.__name__
    _, init, hyper, _ = SCRATCH[name]
    for seed in (0, 1, 2):
        a = quiet(ours, init(), hyper, *data, seed=seed)
        b = quiet(book, init(), hyper, *data, seed=seed)
        # The kernels round (1 - gamma) g g as torch's addcmul does; the book's line rounds
        # (1 - gamma) (g g): a few float32 ulp per step.
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)


def test_each_epoch_visits_every_row_once_in_a_new_order():
    """Identity features make the gradient show which rows a minibatch holds."""
    n, batch_size, num_epochs = 60, 8, 3
    features = np.eye(n, dtype=np.float32)
    labels = np.arange(1, n + 1, dtype=np.float32)
    batches = []

    def record(params, states, hyperparams):
        w, b = params
        rows = np.flatnonzero(w.grad[:, 0])
        # d/dw of mean((x w + b - y)^2 / 2) over the m rows of the batch; 1/m is exact here.
        m = np.float32(len(rows))
        residual = w.data[rows, 0] + b.data[0] - labels[rows]
        np.testing.assert_array_equal(w.grad[rows, 0], residual * (np.float32(1) / m))
        np.testing.assert_allclose(b.grad[0], residual.sum() / m, rtol=1e-6)
        batches.append(rows)

    quiet(record, None, {}, features, labels, batch_size, num_epochs, seed=0)
    per_epoch = math.ceil(n / batch_size)
    assert len(batches) == num_epochs * per_epoch
    assert [len(r) for r in batches[:per_epoch]] == [8] * 7 + [4]
    orders = []
    for e in range(num_epochs):
        epoch = batches[e * per_epoch:(e + 1) * per_epoch]
        assert sorted(np.concatenate(epoch).tolist()) == list(range(n))
        orders.append([tuple(r) for r in epoch])
    assert len(set(map(tuple, orders))) == num_epochs
    assert orders[0] != [tuple(range(i, min(i + 8, n))) for i in range(0, n, 8)]


def test_gradients_and_recorded_losses_follow_the_model(data):
    """Full-batch gradients and the recorded losses against a float64 oracle."""
    features, labels = data
    X, y = features.astype(np.float64), labels.astype(np.float64)

    def loss(w, b):
        return float(np.mean((X @ w[:, 0] + b[0] - y) ** 2 / 2))

    seen = []

    def sgd(params, states, hyperparams):
        w, b = params
        r = X @ w.data[:, 0] + b.data[0] - y
        np.testing.assert_allclose(w.grad[:, 0], X.T @ r / len(r), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(b.grad[0], r.mean(), rtol=1e-4, atol=1e-7)
        if not seen:
            seen.append((w.data.copy(), b.data.copy()))
        for p in params:
            p.data = p.data - hyperparams["lr"] * p.grad  # rebinding data is allowed too
        seen.append((w.data.copy(), b.data.copy()))

    losses = quiet(sgd, None, {"lr": 0.3}, features, labels, batch_size=1500, num_epochs=4)
    assert len(losses) == 1 + 4 == len(seen)  # 1500 is a multiple of 100: one record a batch
    np.testing.assert_allclose(losses, [loss(w, b) for w, b in seen], rtol=1e-6)
    assert np.all(np.diff(losses) < 0)


@pytest.mark.parametrize("batch_size, num_epochs", [(10, 2), (7, 3), (100, 1), (1500, 2), (3, 1)])
def test_losses_are_recorded_where_the_book_records_them(data, batch_size, num_epochs):
    batches = math.ceil(1500 / batch_size)
    expected = 1 + num_epochs * sum((i + 1) * batch_size % 100 == 0 for i in range(batches))
    losses = quiet(adagrad, init_adagrad_states(), {"lr": 0.1}, *data, batch_size, num_epochs,
                   seed=0)
    assert len(losses) == expected
    assert losses.dtype == np.float64 and np.all(np.isfinite(losses))
    if (batch_size, num_epochs) == (10, 2):
        assert expected == 31


def test_printed_line_has_the_books_format(data, capsys):
    losses = train_ch7(rmsprop, init_rmsprop_states(), {"lr": 0.01, "gamma": 0.9}, *data,
                       seed=0, plot=False)
    out = capsys.readouterr().out
    match = BOOK_LINE.fullmatch(out.strip())
    assert match, out
    assert match.group(1) == "%f" % losses[-1]
    assert 0 < float(match.group(2)) < 0.05  # the book's Python loop: about 0.05 s per epoch


def test_figure_is_the_books(data):
    plt = pytest.importorskip("matplotlib.pyplot")
    plt.close("all")
    losses = train_ch7(adagrad, init_adagrad_states(), {"lr": 0.1}, *data, seed=0,
                       verbose=False)
    try:
        fig = plt.gcf()
        np.testing.assert_allclose(fig.get_size_inches(), (3.5, 2.5))
        (ax,) = fig.axes
        (line,) = ax.lines
        np.testing.assert_array_equal(line.get_xdata(), np.linspace(0, 2, 31))
        np.testing.assert_array_equal(line.get_ydata(), losses)
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("epoch", "loss")
    finally:
        plt.close("all")


# -- the book's numbers -------------------------------------------------------------------------


def _least_squares_floor(features, labels):
    X = np.column_stack([features.astype(np.float64), np.ones(len(labels))])
    coef, *_ = np.linalg.lstsq(X, labels.astype(np.float64), rcond=None)
    return float(np.mean((X @ coef - labels) ** 2 / 2))


@pytest.fixture(scope="module")
def scratch_finals(data):
    return {
        name: np.array([quiet(fn, init(), hyper, *data, seed=s)[-1] for s in SEEDS])
        for name, (fn, init, hyper, _) in SCRATCH.items()
    }


@pytest.fixture(scope="module")
def concise_finals(data, torch):
    return {
        name: np.array([
            train_pytorch_ch7(optimizer_class(name), hyper, *data, seed=s, verbose=False,
                              plot=False)[-1]
            for s in SEEDS
        ])
        for name, (hyper, _) in CONCISE.items()
    }


@pytest.mark.parametrize("name", list(SCRATCH))
def test_books_scratch_loss_lies_within_our_spread_over_seeds(scratch_finals, data, name):
    finals, book = scratch_finals[name], SCRATCH[name][3]
    assert finals.min() <= book <= finals.max(), (finals.min(), book, finals.max())
    assert finals.min() >= _least_squares_floor(*data) - 1e-6


@pytest.mark.parametrize("name", list(CONCISE))
def test_books_concise_loss_lies_within_our_spread_over_seeds(concise_finals, data, name):
    finals, book = concise_finals[name], CONCISE[name][1]
    assert finals.min() <= book <= finals.max(), (finals.min(), book, finals.max())
    assert finals.min() >= _least_squares_floor(*data) - 1e-6


def test_least_squares_floor_is_the_issues(data):
    assert round(_least_squares_floor(*data), 4) == 0.2417


# -- train_pytorch_ch7 --------------------------------------------------------------------------


def test_pytorch_seed_repeats_and_leaves_torchs_generator_alone(data, torch):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    hyper = CONCISE["torch.optim.RMSprop"][0]
    first = train_pytorch_ch7(torch.optim.RMSprop, hyper, *data, seed=3, verbose=False, plot=False)
    assert torch.equal(torch.rand(3), expected_next)
    again = train_pytorch_ch7(torch.optim.RMSprop, hyper, *data, seed=3, verbose=False, plot=False)
    other = train_pytorch_ch7(torch.optim.RMSprop, hyper, *data, seed=4, verbose=False, plot=False)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert len(first) == 31


def test_pytorch_harness_takes_any_torch_optim_style_class(data, torch, capsys):
    calls = []

    def sgd_factory(params, lr):
        calls.append(lr)
        return torch.optim.SGD(params, lr=lr)

    for optimizer_fn in (torch.optim.SGD, sgd_factory, torch.optim.Adam):
        losses = train_pytorch_ch7(optimizer_fn, {"lr": 0.01}, *data, batch_size=100,
                                   num_epochs=1, seed=0, plot=False)
        assert len(losses) == 16 and losses[-1] < losses[0]
        assert BOOK_LINE.fullmatch(capsys.readouterr().out.strip())
    assert calls == [0.01]


# -- errors, imports, docs ----------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(hyperparams={"lr": 0.01}), ValueError, "missing 'gamma'"),
    (dict(hyperparams=[0.01, 0.9]), TypeError, "hyperparams must be a dict"),
    (dict(hyperparams={"lr": 0.01, "gamma": 1.5}), ValueError, "gamma"),
    (dict(hyperparams={"lr": "fast", "gamma": 0.9}), TypeError, "real numbers"),
    (dict(states=None), ValueError, "states must be a pair"),
    (dict(states=(np.zeros((5, 1)), np.zeros(1))), ValueError, "states[0] must be float32"),
    (dict(states=(np.zeros((4, 1), np.float32), np.zeros(1, np.float32))), ValueError, "shape"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(num_epochs=1.5), ValueError, "num_epochs"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(features=np.zeros(1500, np.float32)), TypeError, "features must be a 2-D"),
    (dict(features=np.zeros((1500, 5), np.int64)), TypeError, "float32 or float64"),
    (dict(labels=np.zeros(10, np.float32)), ValueError, "labels must be 1-D"),
    (dict(optimizer_fn="rmsprop"), TypeError, "optimizer_fn must be callable"),
])
def test_bad_input_is_named_and_changes_nothing(data, kwargs, error, words):
    args = dict(optimizer_fn=rmsprop, states=init_rmsprop_states(),
                hyperparams={"lr": 0.01, "gamma": 0.9}, features=data[0], labels=data[1])
    args.update(kwargs)
    before = [s.copy() for s in args["states"]] if isinstance(args["states"], tuple) else None
    with pytest.raises(error, match=re.escape(words)):
        quiet(**args)
    if before is not None:
        for s, s0 in zip(args["states"], before):
            assert np.array_equal(s, s0)


def test_plot_without_matplotlib_fails_before_training(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    states = init_adagrad_states()
    with pytest.raises(ImportError, match="plot=False"):
        train_ch7(adagrad, states, {"lr": 0.1}, *data)
    assert not any(s.any() for s in states)
    assert len(train_ch7(adagrad, states, {"lr": 0.1}, *data, plot=False, verbose=False)) == 31


def test_pytorch_harness_without_torch_says_so(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="needs PyTorch"):
        train_pytorch_ch7(object, {}, *data)


def test_importing_the_package_and_training_import_neither_torch_nor_matplotlib():
    code = (
        "import sys, rmsprop_nb, rmsprop_nb.airfoil as d2l\n"
        "features, labels = d2l.get_data_ch7()\n"
        "d2l.train_ch7(d2l.rmsprop, d2l.init_rmsprop_states(), {'lr': 0.01, 'gamma': 0.9},\n"
        "              features, labels, seed=0, plot=False)\n"
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))\n"
    )
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert BOOK_LINE.match(out.splitlines()[0])
    assert out.splitlines()[-1] == "[]"


def test_docstring_examples_run():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    have_torch = _have("torch")
    for test in finder.find(airfoil):
        if "train_pytorch_ch7" in test.name and not have_torch:
            continue
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted >= 20


def _have(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def test_api_reference_lists_every_public_name():
    api = (REPO / "docs" / "api" / "index.rst").read_text(encoding="utf-8")
    section = api.split(".. currentmodule:: rmsprop_nb.airfoil", 1)[1].split("\n---", 1)[0]
    assert set(airfoil.__all__) <= set(re.findall(r"^   (\w+)$", section, re.M))


# -- the chapter page ---------------------------------------------------------------------------

CHAPTER = REPO / "docs" / "chapter.rst"
TABLE_ROWS = {  # the page's table rows: name -> (kind, key)
    "§7.5 AdaGrad, scratch": ("scratch", "adagrad"),
    "§7.5 AdaGrad, torch": ("concise", "torch.optim.Adagrad"),
    "§7.6 RMSProp, scratch": ("scratch", "rmsprop"),
    "§7.6 RMSProp, torch": ("concise", "torch.optim.RMSprop"),
    "§7.5 AdaGrad, rmsprop_nb.torch": ("concise", "rmsprop_nb.torch.Adagrad"),
    "§7.6 RMSProp, rmsprop_nb.torch": ("concise", "rmsprop_nb.torch.RMSprop"),
}


def _table():
    """``{row name: [book, min, median, max, ours lower]}`` from the page's list-table."""
    text = CHAPTER.read_text(encoding="utf-8")
    rows = {}
    for name in TABLE_ROWS:
        cells = re.search(rf"   \* - {re.escape(name)}\n((?:     - .*\n)+)", text).group(1)
        values = re.findall(r"     - (.*)", cells)
        rows[name] = [float(v) for v in values[:4]] + [int(values[4].split(" of ")[0])]
    return rows


def test_chapter_page_credits_the_data_and_shows_every_run():
    text = CHAPTER.read_text(encoding="utf-8")
    for words in ("Brooks", "Marcolini", "NASA", "UCI Machine Learning Repository", "CC BY 4.0"):
        assert words in text
    for _, _, _, book in SCRATCH.values():
        assert f"loss: {book:f}" in text
    for _, book in CONCISE.values():
        assert f"loss: {book:f}" in text
    for script in ("plot_airfoil_adagrad", "plot_airfoil_rmsprop"):
        for figure in ("001", "002", "003", "004"):
            assert f"sphx_glr_{script}_{figure}.png" in text
    assert "sphx_glr_plot_rmsprop_weights_001.png" in text
    index = (REPO / "docs" / "index.rst").read_text(encoding="utf-8")
    assert re.search(r"^   chapter$", index, re.M)  # in the top-level toctree


def test_chapter_page_table_holds_the_book_and_our_scratch_spread(scratch_finals):
    table = _table()
    for name, (kind, key) in TABLE_ROWS.items():
        book = SCRATCH[key][3] if kind == "scratch" else CONCISE[key][1]
        assert table[name][0] == book
        assert table[name][1] <= book <= table[name][3]
        if kind == "scratch":
            finals = scratch_finals[key]
            np.testing.assert_allclose(
                table[name][1:4], [finals.min(), np.median(finals), finals.max()],
                atol=5.01e-7)  # the page rounds to 6 decimals
            assert table[name][4] == np.sum(finals < book)


def test_chapter_page_table_holds_our_torch_spread(concise_finals):
    table = _table()
    for name, (kind, key) in TABLE_ROWS.items():
        if kind == "concise":
            finals = concise_finals[key]
            np.testing.assert_allclose(
                table[name][1:4], [finals.min(), np.median(finals), finals.max()], atol=2e-6)


def test_chapter_page_concise_outputs_are_the_seeded_runs(data, torch):
    """The torch cells are shown, not run, by the docs tests (torch is optional)."""
    text = CHAPTER.read_text(encoding="utf-8")
    cell = (r"losses = d2l\.train_pytorch_ch7\(([\w.]+),[^`]*?seed=0\)\n\n"
            r"\.\. code-block:: text\n\n   loss: (\d\.\d{6}), [\d.]+ sec per epoch\n")
    shown = dict(re.findall(cell, text))
    assert set(shown) == set(CONCISE)
    for path, value in shown.items():
        losses = train_pytorch_ch7(optimizer_class(path), CONCISE[path][0], *data, seed=0,
                                   verbose=False, plot=False)
        assert abs(losses[-1] - float(value)) <= 2e-6, (path, losses[-1], value)

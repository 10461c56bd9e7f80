"""The command line (python -m rmsprop_nb): run as a user runs it, in separate processes."""

import os
import struct
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

import rmsprop_nb
from rmsprop_nb.__main__ import MAX_EPOCHS, main
from rmsprop_nb.toy import train_2d

pytest.importorskip("matplotlib")

REPO = Path(rmsprop_nb.__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BOOK_RMSPROP = "epoch 20, x1 -0.010599, x2 0.000000"
BOOK_ADAGRAD = "epoch 20, x1 -2.382563, x2 -0.158591"

# Each bad input: its arguments and how the one-line message must begin.
BAD_INPUTS = {
    "negative lr": (["--lr", "-1"], "argument --lr"),
    "lr not a number": (["--lr", "abc"], "argument --lr"),
    "lr nan": (["--lr", "nan"], "argument --lr"),
    "lr inf": (["--lr", "inf"], "argument --lr"),
    "gamma 1": (["--gamma", "1"], "argument --gamma"),
    "negative gamma": (["--gamma", "-0.1"], "argument --gamma"),
    "gamma not a number": (["--gamma", "0.9x"], "argument --gamma"),
    "negative eps": (["--eps", "-1e-6"], "argument --eps"),
    "eps inf": (["--eps", "inf"], "argument --eps"),
    "epochs 0": (["--epochs", "0"], "argument --epochs"),
    "epochs not an integer": (["--epochs", "2.5"], "argument --epochs"),
    "epochs above the maximum": (["--epochs", str(MAX_EPOCHS + 1)], "argument --epochs"),
    "epochs beyond any array": (["--epochs", "100000000000000000000"], "argument --epochs"),
    "gamma with adagrad": (["--optimizer", "adagrad", "--gamma", "0.9"], "argument --gamma"),
    "unknown optimizer": (["--optimizer", "sgd"], "argument --optimizer"),
    "missing directory": (["--out", "missing/x.png"], "argument --out"),
    "directory is a file": (["--out", os.path.join(__file__, "x.png")], "argument --out"),
    "out is a directory": (["--out", "."], "argument --out"),
    "out in no format matplotlib writes": (["--out", "x.xyz"], "argument --out"),
}
IN_SUBPROCESS = ["lr not a number", "negative lr", "missing directory", "epochs beyond any array"]

# Every process this module runs; "{cwd}" stands for the run's own temporary directory.
RUNS = {
    "default": ["--out", "{cwd}/x.png"],
    "adagrad": ["--optimizer", "adagrad"],
    "help": ["--help"],
    "diverges": ["--lr", "1e300"],
    "no extension": ["--out", "trajectory"],
    **{name: BAD_INPUTS[name][0] for name in IN_SUBPROCESS},
}

Run = namedtuple("Run", "cwd code out err")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """All of :data:`RUNS`, started at once: each process spends ~0.5 s starting Python,
    Numba and matplotlib, and side by side they finish sooner."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=path)
    started = {}
    for name, args in RUNS.items():
        cwd = tmp_path_factory.mktemp(name.replace(" ", "_"))
        command = [sys.executable, "-m", "rmsprop_nb", *(a.format(cwd=cwd) for a in args)]
        started[name] = cwd, subprocess.Popen(
            command, cwd=cwd, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
    done = {}
    for name, (cwd, process) in started.items():
        out, err = process.communicate(timeout=120)
        done[name] = Run(cwd, process.returncode, out, err)
    return done


def png_size(path):
    """(width, height) from the IHDR chunk, which follows the 8-byte magic."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_default_run_prints_the_books_line_and_saves_a_png(runs):
    run = runs["default"]
    assert run.code == 0, run.err
    out = run.cwd / "x.png"
    assert run.out == f"{BOOK_RMSPROP}\nsaved figure to {out}\n"
    width, height = png_size(out)
    assert 300 <= width <= 3000 and 200 <= height <= 3000
    assert 5_000 < out.stat().st_size < 2_000_000
    assert os.listdir(run.cwd) == ["x.png"]  # nothing else written


def test_adagrad_writes_adagrad_trajectory_png_in_the_current_directory(runs):
    run = runs["adagrad"]
    assert run.code == 0, run.err
    assert run.out == f"{BOOK_ADAGRAD}\nsaved figure to adagrad_trajectory.png\n"
    png_size(run.cwd / "adagrad_trajectory.png")


def test_hyperparameters_reach_train_2d(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    train_2d(lr=0.1, gamma=0.5, eps=1e-3, steps=5)
    expected = capsys.readouterr().out
    assert expected.startswith("epoch 5, ") and expected != BOOK_RMSPROP + "\n"
    args = ["--lr", "0.1", "--gamma", "0.5", "--eps", "0.001", "--epochs", "5"]
    assert main(args) == 0
    assert capsys.readouterr().out == f"{expected}saved figure to rmsprop_trajectory.png\n"
    png_size(tmp_path / "rmsprop_trajectory.png")


def test_help_documents_every_option_and_default(runs):
    run = runs["help"]
    assert run.code == 0 and run.err == ""
    for text in ["--optimizer", "--lr", "--gamma", "--eps", "--epochs", "--out", "rmsprop",
                 "adagrad", "0.4", "0.9", "1e-06", "20", "rmsprop_trajectory.png",
                 "adagrad_trajectory.png", f"1 to {MAX_EPOCHS}", "pdf", "svg", ".png is",
                 "appended", "Exit status", "diverged"]:
        assert text in " ".join(run.out.split())  # argparse wraps the lines
    assert os.listdir(run.cwd) == []


def check_one_line_error(code, out, err, start):
    assert code == 2
    assert "Traceback" not in err
    assert out == ""  # nothing ran
    lines = err.splitlines()
    assert lines[0].startswith("usage: rmsprop-nb")  # argparse's usage, then the message
    assert [line for line in lines if "error:" in line] == [lines[-1]]
    assert lines[-1].startswith(f"rmsprop-nb: error: {start}")


@pytest.mark.parametrize("name", IN_SUBPROCESS)
def test_bad_input_in_a_process_exits_2_without_traceback(runs, name):
    run = runs[name]
    check_one_line_error(run.code, run.out, run.err, BAD_INPUTS[name][1])
    assert os.listdir(run.cwd) == []  # no figure written


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_exits_2_with_a_one_line_error(name, tmp_path, monkeypatch, capsys):
    # In this process, any exception other than SystemExit(2) would fail the test.
    monkeypatch.chdir(tmp_path)
    args, start = BAD_INPUTS[name]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    out, err = capsys.readouterr()
    check_one_line_error(exit_.value.code, out, err, start)
    assert os.listdir(tmp_path) == []


def test_main_returns_0_and_opens_no_pyplot_figure(tmp_path, capsys):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    assert main(["--out", str(tmp_path / "m.png")]) == 0
    assert plt.get_fignums() == before
    assert capsys.readouterr().out == f"{BOOK_RMSPROP}\nsaved figure to {tmp_path / 'm.png'}\n"
    png_size(tmp_path / "m.png")


def test_a_diverging_run_prints_its_line_exits_1_and_writes_nothing(runs):
    run = runs["diverges"]
    assert run.code == 1
    assert run.out == "epoch 20, x1 nan, x2 nan\n"
    assert "Traceback" not in run.err and len(run.err.splitlines()) == 1
    assert run.err.startswith("rmsprop-nb: error: the run diverged: x1 3.16226e+300, x2 "
                              "3.16228e+300 at epoch 1, then not finite from epoch 2 on")
    assert "--lr" in run.err
    assert os.listdir(run.cwd) == []


def test_out_without_an_extension_gets_png_appended(runs):
    run = runs["no extension"]
    assert run.code == 0, run.err
    assert run.out == f"{BOOK_RMSPROP}\nsaved figure to trajectory.png\n"
    png_size(run.cwd / "trajectory.png")
    assert os.listdir(run.cwd) == ["trajectory.png"]


def _formats():
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


# How each kind of file begins (formats not listed: only checked to be non-empty).
MAGIC = {
    "png": [PNG_MAGIC], "pdf": [b"%PDF-"], "svg": [b"<?xml"], "svgz": [b"\x1f\x8b"],
    "jpg": [b"\xff\xd8\xff"], "jpeg": [b"\xff\xd8\xff"], "eps": [b"%!PS-Adobe"],
    "ps": [b"%!PS-Adobe"], "gif": [b"GIF8"], "tif": [b"II*\x00", b"MM\x00*"],
    "tiff": [b"II*\x00", b"MM\x00*"], "webp": [b"RIFF"], "pgf": [b"%%"],
}


@pytest.mark.parametrize("fmt", _formats())
def test_every_format_matplotlib_writes_is_chosen_by_the_extension(fmt, tmp_path, capsys):
    import shutil

    out = tmp_path / f"figure.{fmt.upper() if fmt == 'pdf' else fmt}"  # any case
    if fmt == "pgf" and not any(shutil.which(t) for t in ("xelatex", "pdflatex", "lualatex")):
        # matplotlib's pgf backend needs LaTeX: without it, a clear error and no file.
        with pytest.raises(SystemExit) as exit_:
            main(["--out", str(out)])
        assert exit_.value.code == 2
        assert "argument --out: cannot write" in capsys.readouterr().err
        assert os.listdir(tmp_path) == []
        return
    assert main(["--out", str(out)]) == 0
    assert capsys.readouterr().out == f"{BOOK_RMSPROP}\nsaved figure to {out}\n"
    data = out.read_bytes()
    assert len(data) > 1000
    assert any(data.startswith(m) for m in MAGIC.get(fmt, [b""])), data[:16]
    assert os.listdir(tmp_path) == [out.name]


def test_a_format_that_cannot_be_written_here_exits_2_and_leaves_no_file(tmp_path, monkeypatch,
                                                                         capsys):
    from matplotlib.figure import Figure

    def no_latex(*args, **kwargs):  # as the pgf backend fails without LaTeX
        raise RuntimeError("'xelatex' not found")

    monkeypatch.setattr(Figure, "savefig", no_latex)
    with pytest.raises(SystemExit) as exit_:
        main(["--out", str(tmp_path / "figure.pgf")])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == f"{BOOK_RMSPROP}\n"
    assert err.splitlines()[-1] == (
        f"rmsprop-nb: error: argument --out: cannot write {tmp_path / 'figure.pgf'}: "
        "'xelatex' not found"
    )
    assert os.listdir(tmp_path) == []


def test_the_largest_number_of_epochs_runs_and_draws(tmp_path, capsys):
    out = tmp_path / "long.png"
    assert main(["--epochs", str(MAX_EPOCHS), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"epoch {MAX_EPOCHS}, x1 ")
    png_size(out)

"""The command line (python -m rmsprop_nb): run as a user runs it, in separate processes."""

import os
import struct
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

import rmsprop_nb
from rmsprop_nb.__main__ import main
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
    "gamma with adagrad": (["--optimizer", "adagrad", "--gamma", "0.9"], "argument --gamma"),
    "unknown optimizer": (["--optimizer", "sgd"], "argument --optimizer"),
    "missing directory": (["--out", "missing/x.png"], "argument --out"),
    "directory is a file": (["--out", os.path.join(__file__, "x.png")], "argument --out"),
    "out is a directory": (["--out", "."], "argument --out"),
    "out not a png": (["--out", "x.pdf"], "argument --out"),
}
IN_SUBPROCESS = ["lr not a number", "negative lr", "missing directory"]

# Every process this module runs; "{cwd}" stands for the run's own temporary directory.
RUNS = {
    "default": ["--out", "{cwd}/x.png"],
    "adagrad": ["--optimizer", "adagrad"],
    "help": ["--help"],
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
                 "adagrad_trajectory.png"]:
        assert text in run.out
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

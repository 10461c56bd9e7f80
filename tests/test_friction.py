"""A newcomer's first minutes: the gallery says what each script needs, checkpoints name the
user's path when they cannot be written, the command line bounds what it is asked to do."""

from __future__ import annotations

import ast
import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "gallery"
SCRIPTS = sorted(GALLERY.glob("plot_*.py"))

# Import names whose distribution is named differently.
DISTRIBUTIONS = {"sklearn": "scikit-learn"}
NEEDS = re.compile(r'^Needs (?P<what>[^:]+):\s+``python -m pip install "\.\[(?P<extra>\w+)\]"``',
                   re.MULTILINE)


def _env(**extra):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, MPLBACKEND="Agg", **extra)


# -- gallery -------------------------------------------------------------------------------------


def _project():
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _names(requirements):
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}


def _third_party_imports(tree):
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    return {r for r in roots if r not in sys.stdlib_module_names and r != "rmsprop_nb"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_gallery_script_names_an_extra_that_installs_everything_it_imports(script):
    project = _project()
    tree = ast.parse(script.read_text(encoding="utf-8"))
    needs = NEEDS.search(ast.get_docstring(tree))
    assert needs, f'{script.name}: no line "Needs ...: ``python -m pip install ".[extra]"``"'
    extras = project["optional-dependencies"]
    assert needs["extra"] in extras
    installed = _names(project["dependencies"]) | _names(extras[needs["extra"]])
    wanted = {DISTRIBUTIONS.get(m, m) for m in _third_party_imports(tree)}
    assert wanted <= installed, f"{script.name} imports {sorted(wanted - installed)}"
    named = wanted - _names(project["dependencies"])
    assert named == {w for w in wanted if w in needs["what"]}, "the line names what it needs"


def test_the_gallery_header_says_which_scripts_need_more_than_readmes_install():
    project = _project()
    header = (GALLERY / "GALLERY_HEADER.rst").read_text(encoding="utf-8")
    readme_installs = _names(project["dependencies"]) | _names(
        project["optional-dependencies"]["plot"])
    more = [s for s in SCRIPTS if {DISTRIBUTIONS.get(m, m) for m in _third_party_imports(
        ast.parse(s.read_text(encoding="utf-8")))} - readme_installs]
    assert more  # plot_diabetes_regression.py needs scikit-learn
    for script in more:
        extra = NEEDS.search(ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))))
        assert extra and script.name in header and f'".[{extra["extra"]}]"' in header


def test_diabetes_example_without_scikit_learn_says_what_to_install(tmp_path):
    pytest.importorskip("matplotlib")
    blocked = tmp_path / "sklearn"  # an sklearn that cannot be imported
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('blocked for this test')\n")
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    proc = subprocess.run(
        [sys.executable, str(GALLERY / "plot_diabetes_regression.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        'needs scikit-learn: python -m pip install ".[gallery]"'
    )


# -- checkpoints: errors name the user's path ------------------------------------------------------


def _optimizer():
    from rmsprop_nb import RMSProp

    return RMSProp([np.zeros(3)])


def _names_only(exc, path):
    """The error reads as open(path, "wb")'s would: the user's path, no temporary file."""
    assert exc.filename == os.fspath(path) and exc.filename2 is None
    assert str(exc).endswith(f": {os.fspath(path)!r}")
    assert not re.search(r"\.tmp\b", str(exc))  # no ".ck.npz.abc123.tmp"
    assert exc.__context__ is None or exc.__suppress_context__  # nor in a chained traceback


def test_save_into_a_missing_folder_names_the_users_path(tmp_path):
    path = tmp_path / "missing" / "ck.npz"
    with pytest.raises(FileNotFoundError) as info:
        _optimizer().save(path)
    _names_only(info.value, path)
    assert os.listdir(tmp_path) == []


def test_save_onto_a_folder_names_the_folder_and_writes_nothing(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        _optimizer().save(folder)
    _names_only(info.value, folder)
    assert os.listdir(tmp_path) == ["runs"] and os.listdir(folder) == []


def test_save_below_a_file_names_the_users_path(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    path = str(tmp_path / "notes.txt" / "ck.npz")  # a str path is reported as given
    with pytest.raises(NotADirectoryError) as info:
        _optimizer().save(path)
    _names_only(info.value, path)
    assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_save_into_a_read_only_folder_names_the_users_path(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError) as info:
            _optimizer().save(folder / "ck.npz")
    finally:
        folder.chmod(0o700)
    _names_only(info.value, folder / "ck.npz")


@pytest.mark.parametrize("stage", ["write", "rename"])
def test_a_failure_about_the_temporary_file_is_reported_about_the_users_path(
    stage, tmp_path, monkeypatch
):
    from rmsprop_nb import _checkpoint

    opt = _optimizer()
    path = tmp_path / "ck.npz"
    opt.save(path)
    good = path.read_bytes()
    opt.step([np.ones(3)])
    real_open, real_replace = _checkpoint._open_temp, os.replace

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.f.name)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def busy(src, dst):  # as the real one reports it: both names
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), src, None, dst)

    if stage == "write":
        monkeypatch.setattr(_checkpoint, "_open_temp", lambda fd: FullDisk(real_open(fd)))
    else:
        monkeypatch.setattr(os, "replace", busy)
    with pytest.raises(OSError) as info:
        opt.save(path)
    assert info.value.errno == (errno.ENOSPC if stage == "write" else errno.EBUSY)
    _names_only(info.value, path)
    monkeypatch.setattr(os, "replace", real_replace)
    # Atomic as before: the old checkpoint intact, no temporary file left.
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["ck.npz"]


# ---------------------------------------------------------------------------------------------
# Optimizer and kernel messages: say what was got, name the caller, suggest the fix.
# ---------------------------------------------------------------------------------------------


def test_a_bare_array_for_grads_is_refused_with_the_fix():
    from rmsprop_nb import RMSProp

    x = np.zeros(2)
    opt = RMSProp([x])
    with pytest.raises(TypeError, match=r"RMSProp.step: grads must be a list .* write step\(\[g\]\)"):
        opt.step(np.ones(2))
    two = RMSProp([np.zeros(2), np.zeros(2)])
    with pytest.raises(TypeError, match="grads must be a list"):  # not taken row by row
        two.step(np.ones((2, 2)))
    assert opt.step_count == two.step_count == 0 and not x.any()


def test_a_generator_of_gradients_is_read_once():
    from rmsprop_nb import AdaGrad

    x = np.ones(3)
    opt = AdaGrad([x], lr=0.1)
    opt.step(g for g in [np.ones(3)])
    assert opt.step_count == 1 and (x < 1).all()
    with pytest.raises(ValueError, match="expected 1, got 2"):
        opt.step(g for g in [np.ones(3), np.ones(3)])


@pytest.mark.parametrize("key, value, message", [
    ("lr", -1.0, "RMSProp: lr must be a finite number >= 0, got -1.0"),
    ("gamma", 1.0, "RMSProp: gamma must be in [0, 1), got 1.0"),
    ("eps", float("inf"), "RMSProp: eps must be a finite number >= 0, got inf"),
])
def test_hyperparameter_messages_state_the_range_and_the_value(key, value, message):
    from rmsprop_nb import RMSProp

    with pytest.raises(ValueError) as info:
        RMSProp([np.zeros(2)], **{key: value})
    assert str(info.value) == message


def test_a_bad_value_set_between_steps_names_the_step():
    from rmsprop_nb import AdaGrad, RMSProp

    for cls in (RMSProp, AdaGrad):
        x = np.ones(2)
        opt = cls([x])
        opt.lr = -1.0
        with pytest.raises(ValueError) as info:
            opt.step([np.ones(2)])
        assert str(info.value) == f"{cls.__name__}.step: lr must be a finite number >= 0, got -1.0"
        assert (x == 1).all() and opt.step_count == 0


def test_kernel_messages_say_what_was_got():
    from rmsprop_nb.kernels import adagrad_step, rmsprop_step

    x, s = np.ones(3), np.zeros(3)
    with pytest.raises(ValueError) as info:
        rmsprop_step(x, np.ones(3), s, 0.1, 1.5, 1e-6)
    assert str(info.value) == "rmsprop_step: gamma must be in [0, 1), got 1.5"
    with pytest.raises(ValueError) as info:
        rmsprop_step(x, np.ones(2), s, 0.1, 0.9, 1e-6)
    assert str(info.value) == "rmsprop_step: g has shape (2,) but x has shape (3,)"
    with pytest.raises(ValueError) as info:
        adagrad_step(x, np.ones(3), s, 0.1, 1e-6, step=0)
    assert str(info.value) == "adagrad_step: step must be >= 1 (the first step is 1), got 0"
    assert (x == 1).all() and not s.any()


def test_a_torch_tensor_gets_a_hint():
    torch = pytest.importorskip("torch")
    from rmsprop_nb import RMSProp
    from rmsprop_nb.kernels import rmsprop_step

    t = torch.zeros(3)
    with pytest.raises(TypeError, match=r"got Tensor; to train torch tensors use "
                       r"rmsprop_nb.torch .*; for a CPU tensor pass t.detach\(\).numpy\(\)"):
        RMSProp([t])
    with pytest.raises(TypeError, match=r"rmsprop_step: x must be a numpy.ndarray, got Tensor; "):
        rmsprop_step(t, np.zeros(3), np.zeros(3), 0.1, 0.9, 1e-6)

"""A newcomer's first minutes: the gallery says what each script needs, checkpoints name the
user's path when they cannot be written, the command line bounds what it is asked to do."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

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
        'this example needs scikit-learn: python -m pip install ".[gallery]"'
    )

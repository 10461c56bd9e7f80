"""Sphinx configuration for the rmsprop_nb documentation.

Build (from the repository root, no network needed)::

    python -m sphinx -W -b html docs docs/_build/html

Two things here exist only so that the site builds and renders offline:

* no intersphinx: it fetches inventories over the network, and with ``-W`` a failed fetch
  fails the build;
* MathJax is served from the build itself: the MathJax 3 bundle ``es5/tex-svg.js`` (fonts
  inside) is copied from the installed ``django-static-mathjax`` package into
  ``_static/mathjax/`` of the output, and ``mathjax_path`` points at that copy. It is copied
  at build time, never committed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import shutil
import sys
from pathlib import Path

from sphinx.errors import ConfigError

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# The package is imported from the checkout when it is not installed (``pip install -e .``
# makes this a no-op); the docs folder itself holds the gallery's ordering helper.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

import rmsprop_nb  # noqa: E402

# -- Project -----------------------------------------------------------------------------------

project = "rmsprop_nb"
author = "rmsprop_nb developers"
copyright = "rmsprop_nb developers"
release = rmsprop_nb.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
default_role = "py:obj"
nitpicky = False

# -- autodoc / autosummary / numpydoc ----------------------------------------------------------

autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc's Parameters section already gives the types

numpydoc_show_class_members = False  # methods are documented on the class page itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- Gallery -----------------------------------------------------------------------------------

# Scripts named plot_torch_* need PyTorch: without it they are shown, not run.
HAS_TORCH = importlib.util.find_spec("torch") is not None

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "gallery"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_" if HAS_TORCH else r"/plot_(?!torch_)",
    "within_subsection_order": "_gallery_order.ReadingOrder",
    # The computation-times page pulls jQuery/DataTables from CDNs: keep the site offline.
    "write_computation_times": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "image_scrapers": ("matplotlib",),
}

# -- HTML --------------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"rmsprop_nb {release}"
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    # Nothing on the page reaches the network: no icon links, no version switcher, no
    # analytics, no edit buttons.
    "icon_links": [],
    "navbar_end": ["theme-switcher"],
    "navbar_persistent": ["search-button"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
    "show_prev_next": True,
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_context = {"default_mode": "light"}
# Pages with no sub-pages get no left sidebar: the theme would show an empty "Section
# Navigation" there and take the width from the page's tables.
html_sidebars = {"benchmarks": [], "changelog": [], "chapter": []}
# CSS of our own (the benchmark tables); the figures in _static/ are copied by their pages.
html_static_path = ["_static/css"]
html_css_files = ["rmsprop_nb.css"]

# -- MathJax, served locally -------------------------------------------------------------------

MATHJAX_DIST = "django-static-mathjax"
MATHJAX_FILE = "es5/tex-svg.js"

# Relative to the output's _static folder.
mathjax_path = "mathjax/tex-svg.js"
mathjax3_config = {"options": {"enableMenu": False}}


def _local_mathjax() -> Path:
    """The MathJax 3 bundle shipped by the installed ``django-static-mathjax``."""
    try:
        files = importlib.metadata.files(MATHJAX_DIST) or []
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"the docs need a local MathJax: pip install {MATHJAX_DIST} "
            "(or the package's 'docs' extra)"
        ) from None
    for f in files:
        if str(f).replace("\\", "/").endswith(MATHJAX_FILE):
            return Path(f.locate())
    raise ConfigError(f"{MATHJAX_DIST} is installed but has no {MATHJAX_FILE}")


def _copy_mathjax(app):
    if app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / mathjax_path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_local_mathjax(), target)


# -- The CUDA API page: documented only when rmsprop_nb.cuda imports ---------------------------

CUDA_MARKER = ".. rmsprop-nb-cuda-api::"


def _cuda_api_block() -> str:
    if importlib.util.find_spec("rmsprop_nb.cuda") is None:
        return (
            ".. note::\n\n"
            "   This build of the documentation was made from a version of the package\n"
            "   without the ``rmsprop_nb.cuda`` module.\n"
        )
    try:
        importlib.import_module("rmsprop_nb.cuda")
    except ImportError as exc:
        return (
            ".. note::\n\n"
            "   ``rmsprop_nb.cuda`` could not be imported when this page was built\n"
            f"   (``{type(exc).__name__}: {exc}``), so its reference is not shown here.\n"
            "   Install ``numba-cuda`` and rebuild the documentation to include it.\n"
        )
    return ".. automodule:: rmsprop_nb.cuda\n   :members:\n"


def _fill_cuda_api(app, docname, source):
    if docname == "api/cuda" and CUDA_MARKER in source[0]:
        source[0] = source[0].replace(CUDA_MARKER, _cuda_api_block())


# -- The PyTorch API page: documented only when rmsprop_nb.torch imports (needs torch) ---------

TORCH_MARKER = ".. rmsprop-nb-torch-api::"
TORCH_API = """\
.. automodule:: rmsprop_nb.torch
   :no-members:

.. currentmodule:: rmsprop_nb.torch

.. autoclass:: RMSprop
   :members: step, state_dict, load_state_dict, add_param_group

.. autoclass:: Adagrad
   :members: step, state_dict, load_state_dict, add_param_group
"""


def _torch_api_block() -> str:
    try:
        importlib.import_module("rmsprop_nb.torch")
    except ImportError as exc:
        return (
            ".. note::\n\n"
            "   ``rmsprop_nb.torch`` could not be imported when this page was built\n"
            f"   (``{type(exc).__name__}: {exc}``), so its reference is not shown here.\n"
            "   Install PyTorch and rebuild the documentation to include it.\n"
        )
    return TORCH_API


def _fill_torch_api(app, docname, source):
    if docname == "api/torch" and TORCH_MARKER in source[0]:
        source[0] = source[0].replace(TORCH_MARKER, _torch_api_block())


# -- Dotted names wrap after a dot -------------------------------------------------------------

# The title of an API page is a dotted name with no space in it ("rmsprop_nb.kernels.
# PARALLEL_MIN_BYTES"), often wider than the text column at a title's size and with nowhere to
# wrap. A <wbr> after each dot lets it wrap there, in the page's title and in the previous/next
# links under the page (the navigation and the <title> keep the plain name).
_DOTTED = re.compile(r"[A-Za-z_][\w.]*\.[\w.]+")


def _wrap_after_dots(name: str) -> str:
    return name.replace(".", ".<wbr>")


def _dotted_titles_wrap(app, pagename, templatename, context, doctree):
    if "body" in context:
        context["body"] = re.sub(
            r'<h1>([^<]+)(?=<a class="headerlink")',
            lambda m: "<h1>" + (_wrap_after_dots(m[1]) if _DOTTED.fullmatch(m[1]) else m[1]),
            context["body"], count=1,
        )
    for link in ("prev", "next"):
        if context.get(link) and _DOTTED.fullmatch(context[link].get("title", "")):
            context[link] = dict(context[link], title=_wrap_after_dots(context[link]["title"]))


def setup(app):
    app.connect("builder-inited", _copy_mathjax)
    app.connect("html-page-context", _dotted_titles_wrap)
    app.connect("source-read", _fill_cuda_api)
    app.connect("source-read", _fill_torch_api)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

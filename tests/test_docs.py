"""The documentation site: it builds offline with ``-W``, every gallery script runs, the pages
show the book's numbers and figures, every public name has an API page, and the formulas are
typeset by the local MathJax in a browser that has no network.

The site is built once per session, from a copy of ``docs/`` and ``gallery/`` in a temporary
folder (so the checkout gets no generated files), with the package imported from this checkout.
The browser test needs Debian's ``chromium`` (``apt-get install chromium``); it is skipped
without it.
"""

from __future__ import annotations

import doctest
import html
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GALLERY = ROOT / "gallery"
SCRIPTS = sorted(p.stem for p in GALLERY.glob("plot_*.py"))
RMSPROP_EXAMPLE = "plot_rmsprop_book"
BOOK_LINE = "epoch 20, x1 -0.010599, x2 0.000000"

# What the docs build needs, as (import name, distribution to install).
DOCS_REQUIREMENTS = [
    ("sphinx", "sphinx"),
    ("sphinx_gallery", "sphinx-gallery"),
    ("pydata_sphinx_theme", "pydata-sphinx-theme"),
    ("numpydoc", "numpydoc"),
    ("matplotlib", "matplotlib"),
    ("sklearn", "scikit-learn"),
]
MATHJAX_DIST = "django-static-mathjax"

# Network off for the browser: the TOOLCHAIN flags, plus a proxy that refuses every
# connection and a resolver that finds no host.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=10000",
]


def _missing_docs_requirements():
    missing = [dist for mod, dist in DOCS_REQUIREMENTS if importlib.util.find_spec(mod) is None]
    try:
        importlib.metadata.distribution(MATHJAX_DIST)
    except importlib.metadata.PackageNotFoundError:
        missing.append(MATHJAX_DIST)
    return missing


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """Build the site once: ``python -m sphinx -W -b html`` in a subprocess."""
    missing = _missing_docs_requirements()
    if "sphinx" in missing:
        pytest.skip("sphinx is not installed (pip install '.[docs]')")
    if missing:
        pytest.skip(f"docs requirements not installed: {', '.join(missing)} (pip install '.[docs]')")
    work = tmp_path_factory.mktemp("site")
    generated = shutil.ignore_patterns("_build", "auto_examples", "generated", "__pycache__")
    shutil.copytree(DOCS, work / "docs", ignore=generated)
    shutil.copytree(GALLERY, work / "gallery", ignore=generated)
    out = work / "html"
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         str(work / "docs"), str(out)],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )
    log = proc.stdout + proc.stderr
    problems = [line for line in log.splitlines() if re.search(r"WARNING|ERROR|Error|Traceback", line)]
    assert proc.returncode == 0, (
        "sphinx-build -W failed:\n" + "\n".join(problems[:60]) + "\n...\n" + proc.stderr[-4000:]
    )
    return SimpleNamespace(src=work / "docs", out=out, log=log)


def _page(site, relpath):
    path = site.out / relpath
    assert path.is_file(), f"missing page {relpath}"
    return path.read_text(encoding="utf-8")


# -- gallery ------------------------------------------------------------------------------------


def test_gallery_has_scripts():
    assert RMSPROP_EXAMPLE in SCRIPTS
    assert len(SCRIPTS) >= 6


HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.parametrize("script", SCRIPTS)
def test_gallery_script_ran_and_drew_its_figure(site, script):
    if script.startswith("plot_torch_") and not HAS_TORCH:
        pytest.skip("needs torch (docs/conf.py shows the script without running it)")
    assert (site.src / "auto_examples" / f"{script}.rst").is_file()
    page = _page(site, f"auto_examples/{script}.html")
    assert "Traceback (most recent call last)" not in page
    figure = site.out / "_images" / f"sphx_glr_{script}_001.png"
    assert figure.is_file(), f"{script} made no figure"
    assert f"_images/sphx_glr_{script}_001.png" in page


def test_rmsprop_example_shows_the_book_line_and_figure(site):
    page = _page(site, f"auto_examples/{RMSPROP_EXAMPLE}.html")
    assert BOOK_LINE in html.unescape(page)
    figure = site.out / "_images" / f"sphx_glr_{RMSPROP_EXAMPLE}_001.png"
    with open(figure, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert figure.stat().st_size > 10_000


def test_landing_page_shows_the_rmsprop_figure(site):
    page = _page(site, "index.html")
    assert f"_images/sphx_glr_{RMSPROP_EXAMPLE}_001.png" in page


# -- API reference ------------------------------------------------------------------------------


# Modules whose every name in __all__ has a page under api/generated/ (rmsprop_nb.cuda has
# its own page: tests/test_cuda.py and the site build cover it).
DOCUMENTED_MODULES = ("rmsprop_nb.kernels", "rmsprop_nb.toy", "rmsprop_nb.airfoil",
                      "rmsprop_nb.warmup")


def _public_pages():
    """The API page of every public name, derived from the modules' ``__all__``."""
    import importlib

    import rmsprop_nb

    pages = {}
    for module in map(importlib.import_module, DOCUMENTED_MODULES):
        for name in module.__all__:
            pages[f"{module.__name__}.{name}"] = f"{module.__name__}.{name}"
    for name in rmsprop_nb.__all__:
        obj = getattr(rmsprop_nb, name)
        if name.startswith("__") or type(obj).__name__ == "module":
            continue
        home = getattr(obj, "__module__", "rmsprop_nb")
        # Re-exported kernels are documented where they live.
        key = f"rmsprop_nb.{name}"
        pages[key] = key if home == "rmsprop_nb.optimizers" else f"{home}.{name}"
    return pages


PUBLIC_PAGES = _public_pages()
EXPECTED_NAMES = [
    "rmsprop_nb.RMSProp", "rmsprop_nb.AdaGrad", "rmsprop_nb.kernels.rmsprop_step",
    "rmsprop_nb.kernels.adagrad_step", "rmsprop_nb.kernels.PARALLEL_MIN_BYTES",
    "rmsprop_nb.toy.f_2d", "rmsprop_nb.toy.f_2d_grad", "rmsprop_nb.toy.train_2d",
    "rmsprop_nb.toy.show_trace_2d", "rmsprop_nb.warmup.warm_up", "rmsprop_nb.airfoil.train_ch7",
]


def test_public_names_include_the_documented_api():
    assert set(EXPECTED_NAMES) <= set(PUBLIC_PAGES)


@pytest.mark.parametrize("name", sorted(PUBLIC_PAGES))
def test_api_page_for_every_public_name(site, name):
    page = _page(site, f"api/generated/{PUBLIC_PAGES[name]}.html")
    assert PUBLIC_PAGES[name] in page


@pytest.mark.parametrize("name", ["rmsprop_nb.RMSProp", "rmsprop_nb.kernels.rmsprop_step"])
def test_api_pages_have_numpydoc_sections_and_math(site, name):
    page = _page(site, f"api/generated/{name}.html")
    for section in ("Parameters", "References", "Examples"):
        assert section in page
    assert 'class="math' in page


def _cuda_imports():
    try:
        importlib.import_module("rmsprop_nb.cuda")
    except ImportError:
        return False
    return True


def test_cuda_api_page_exists_with_or_without_numba_cuda(site):
    page = _page(site, "api/cuda.html")
    assert "rmsprop_nb.cuda" in page
    if _cuda_imports():  # the build ran in this environment: the reference must be there
        assert 'id="rmsprop_nb.cuda.rmsprop_step"' in page
        assert 'id="rmsprop_nb.cuda.adagrad_step"' in page
    else:
        assert "could not be imported" in page or "without the" in page


def test_torch_api_page_documents_every_public_name(site):
    page = _page(site, "api/torch.html")
    assert "rmsprop_nb.torch" in page
    if not HAS_TORCH:
        assert "could not be imported" in page
        return
    import rmsprop_nb.torch

    for name in rmsprop_nb.torch.__all__:
        assert f'id="rmsprop_nb.torch.{name}"' in page
    for section in ("Parameters", "References", "Examples"):
        assert section in page
    assert 'class="math' in page
    assert 'id="rmsprop_nb.torch.RMSprop.step"' in page


# -- offline ------------------------------------------------------------------------------------

_EXTERNAL_ASSET = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=[\"'](?:https?:)?//", re.IGNORECASE
)


def test_pages_load_nothing_from_the_network(site):
    offenders = [
        str(p.relative_to(site.out))
        for p in site.out.rglob("*.html")
        if _EXTERNAL_ASSET.search(p.read_text(encoding="utf-8"))
    ]
    assert not offenders, f"pages loading remote scripts, styles or images: {offenders}"


def test_every_page_with_tex_loads_mathjax(site):
    """Raw ``\\(...\\)`` is fine only where MathJax will typeset it (e.g. not in a title
    that also shows up in the navigation of pages without formulas)."""
    offenders = []
    for p in site.out.rglob("*.html"):
        page = p.read_text(encoding="utf-8")
        text = _visible_text(page)
        if ("\\(" in text or "\\[" in text) and "tex-svg.js" not in page:
            offenders.append(str(p.relative_to(site.out)))
    assert not offenders, f"TeX on pages that do not load MathJax: {offenders}"


def test_mathjax_is_served_from_the_build(site):
    page = _page(site, f"auto_examples/{RMSPROP_EXAMPLE}.html")
    src = re.search(r"<script[^>]*\bsrc=\"([^\"]*tex-svg\.js)[^\"]*\"", page)
    assert src, "no MathJax script on the RMSProp example page"
    assert "//" not in src.group(1)
    local = (site.out / "auto_examples" / src.group(1)).resolve()
    assert local.is_file() and local.stat().st_size > 1_000_000


# -- in a browser, offline ----------------------------------------------------------------------


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless browser not found (Debian: apt-get install -y chromium)")


def _dump_dom(page):
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
             page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _visible_text(dom):
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def test_formulas_are_typeset_offline_in_chromium(site):
    page = site.out / "auto_examples" / f"{RMSPROP_EXAMPLE}.html"
    dom = _dump_dom(page)
    # The MathJax script that ran is the local copy: the browser had no network.
    scripts = re.findall(r"<script[^>]*\bsrc=\"([^\"]*)\"", dom)
    mathjax = [s for s in scripts if "tex-svg" in s]
    assert mathjax and all(not re.match(r"(?:https?:)?//", s) for s in mathjax), scripts
    assert dom.count("<mjx-container") >= 5, "MathJax did not typeset the formulas"
    text = _visible_text(dom)
    for delimiter in ("\\(", "\\)", "\\[", "\\]"):
        assert delimiter not in text, f"raw TeX delimiter {delimiter!r} left on the page"
    assert BOOK_LINE in text


# -- the examples written in the pages run --------------------------------------------------------

DOCTEST_PAGES = sorted(
    str(p.relative_to(DOCS)) for p in DOCS.rglob("*.rst")
    if "_build" not in p.parts and "auto_examples" not in p.parts
    and "generated" not in p.parts and ">>>" in p.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("page", DOCTEST_PAGES)
def test_examples_in_the_pages_run(page):
    if ">>> import torch" in (DOCS / page).read_text(encoding="utf-8") and not HAS_TORCH:
        pytest.skip("the page's examples need torch")
    result = doctest.testfile(
        str(DOCS / page), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False,
        report=True,
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {page}"


# -- pages read whole at 1280 px ------------------------------------------------------------------

# Run in the page once MathJax has typeset it. In the text column (the article and the
# previous/next links under it) it reports
# * "scrolls": elements whose content is wider than they are, so that they scroll sideways
#   (the theme gives code blocks, tables and display formulas a scroll bar) or cut it off;
# * "spills": elements that stick out past the right edge of the column (a long word in a
#   title, a signature, an inline formula, an image), the outermost one only;
# * "page": the page is wider than the window;
# and every typeset formula that shows a backslash (a TeX escape MathJax did not understand,
# e.g. \_ inside \texttt). An element is named by its tag, its first class, the anchor of its
# section or API entry, and its text (of a code block: the widest line).
_LAYOUT_PROBE = """<script>
window.addEventListener("load", function () {
  function describe(e, need, have) {
    var lines = e.textContent.split("\\n").map(function (l) { return l.replace(/\\s+$/, ""); });
    var text = lines.reduce(function (a, b) { return b.length > a.length ? b : a; }, "");
    if (e.tagName != "PRE") text = e.textContent.replace(/\\s+/g, " ").trim();
    var entry = e.closest("dl.py"), section = e.closest("section[id]"), anchor = "";
    if (entry && entry.querySelector("dt[id]")) anchor = entry.querySelector("dt[id]").id;
    else if (section) anchor = section.id;
    var name = e.tagName.toLowerCase() + (e.classList.length ? "." + e.classList[0] : "");
    return {element: name, anchor: anchor, need: Math.round(need), have: Math.round(have),
            text: text.slice(0, 100)};
  }
  function report() {
    var scrolls = [], spills = [], escapes = [], spilled = [];
    var column = document.querySelector(".bd-article-container") ||
                 document.querySelector("main");
    var article = column.querySelector("article") || column;
    function box(e) {  /* left and right of the content box */
      var r = e.getBoundingClientRect(), s = getComputedStyle(e);
      return [r.left + parseFloat(s.paddingLeft), r.right - parseFloat(s.paddingRight)];
    }
    function hidden(e) {  /* inside a box that scrolls or clips: that box is the one reported */
      for (var a = e.parentElement; a && a != column; a = a.parentElement)
        if (getComputedStyle(a).overflowX != "visible") return true;
      return false;
    }
    function textRight(e) {  /* of its own text, which may overflow its box */
      var x = -Infinity;
      e.childNodes.forEach(function (n) {
        if (n.nodeType != 3 || !n.textContent.trim()) return;
        var range = document.createRange();
        range.selectNodeContents(n);
        x = Math.max(x, range.getBoundingClientRect().right);
      });
      return x;
    }
    function right(e) {  /* of its box, and of its text unless the box scrolls or clips it */
      var r = e.getBoundingClientRect(), x = r.width > 0 ? r.right : -Infinity;
      if (getComputedStyle(e).overflowX == "visible") x = Math.max(x, textRight(e));
      return x;
    }
    function extent(e) {  /* the right of what it holds (MathJax's hidden MathML aside) */
      var x = textRight(e);
      e.querySelectorAll("*").forEach(function (d) {
        if (!d.closest("mjx-assistive-mml") && !d.closest("svg")) x = Math.max(x, right(d));
      });
      return x;
    }
    column.querySelectorAll("*").forEach(function (e) {
      if (e.closest("mjx-assistive-mml") || e.closest("svg")) return;
      var overflow = getComputedStyle(e).overflowX, r = e.getBoundingClientRect();
      if (overflow == "auto" || overflow == "scroll") {
        if (e.scrollWidth > e.clientWidth + 1)
          scrolls.push(describe(e, e.scrollWidth, e.clientWidth));
      } else if (overflow != "visible" && extent(e) > r.right + 1) {
        scrolls.push(describe(e, extent(e) - r.left, r.width));
      }
      var edges = box(article.contains(e) ? article : column), x = right(e);
      var inside = spilled.some(function (s) { return s.contains(e); });
      if (x > edges[1] + 1 && !hidden(e) && !inside) {
        spilled.push(e);
        spills.push(describe(e, x - edges[0], edges[1] - edges[0]));
      }
    });
    document.querySelectorAll("mjx-container").forEach(function (m) {
      if (m.innerHTML.indexOf('data-c="5C"') >= 0) escapes.push(m.textContent.slice(0, 60));
    });
    var root = document.documentElement;
    var out = document.createElement("pre");
    out.id = "layout-probe";
    out.textContent = JSON.stringify({scrolls: scrolls, spills: spills, escapes: escapes,
      page: [root.scrollWidth, root.clientWidth],
      math: document.querySelectorAll("mjx-container").length});
    document.body.appendChild(out);
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise)
    MathJax.startup.promise.then(report);
  else report();
});
</script>"""

# Pages whose formulas must have been typeset when the probe ran (it waits for MathJax).
MATH_PAGES = ["user_guide/algorithms.html", "api/generated/rmsprop_nb.RMSProp.html",
              "api/generated/rmsprop_nb.AdaGrad.html", f"auto_examples/{RMSPROP_EXAMPLE}.html",
              "user_guide/sparse.html", "api/generated/rmsprop_nb.kernels.rmsprop_step_rows.html"]
# Folders of the build that hold assets, not pages.
NOT_PAGES = {"_static", "_sources", "_images", "_downloads"}


def _site_pages(site):
    """Every HTML page the site builds, as paths relative to the output folder."""
    pages = [p.relative_to(site.out) for p in site.out.rglob("*.html")]
    return sorted(p.as_posix() for p in pages
                  if not NOT_PAGES & set(p.parts) and not p.name.startswith("_probe_"))


def _layout(site, relpath):
    page = site.out / relpath
    probe = page.with_name("_probe_" + page.name)  # next to the page: same relative links
    text = page.read_text(encoding="utf-8").replace("</body>", _LAYOUT_PROBE + "</body>")
    probe.write_text(text, encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run(
                [_chromium(), *CHROMIUM_FLAGS, "--window-size=1280,900",
                 f"--user-data-dir={profile}", "--dump-dom", probe.as_uri()],
                capture_output=True, text=True, timeout=120,
            )
    finally:
        probe.unlink()
    found = re.search(r'<pre id="layout-probe"[^>]*>(.*?)</pre>', proc.stdout, re.DOTALL)
    assert found, f"the layout probe did not run on {relpath}: {proc.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="session")
def layouts(site):
    """The probe's report for every page of the site, at a 1280x900 window."""
    _chromium()
    pages = _site_pages(site)
    with ThreadPoolExecutor(max_workers=2) as pool:  # two browsers at a time: 2 cores
        return dict(zip(pages, pool.map(lambda page: _layout(site, page), pages)))


def test_the_layout_check_covers_every_kind_of_page(site, layouts):
    pages = set(layouts)
    assert {"index.html", "chapter.html", "benchmarks.html", "user_guide/options.html",
            "api/index.html", f"auto_examples/{RMSPROP_EXAMPLE}.html",
            "api/generated/rmsprop_nb.RMSProp.html"} <= pages
    assert {f"auto_examples/{s}.html" for s in SCRIPTS} <= pages
    assert {f"api/generated/{p}.html" for p in PUBLIC_PAGES.values()} <= pages
    sources = [p for p in site.src.rglob("*.rst") if "auto_examples" not in p.parts
               and "generated" not in p.parts]
    assert len(pages) > len(sources), "fewer pages probed than the docs have sources"


_PROBE_TEST_PAGE = """<!DOCTYPE html><html><body style="width: 700px">
<div class="bd-article-container"><article class="bd-article" style="width: 400px">
<section id="{id}"><h1>{title}</h1>
<pre style="overflow-x: auto">{code}</pre>
<div style="overflow: hidden; width: 200px"><span style="white-space: nowrap">{clipped}</span></div>
</section></article></div></body></html>"""


def test_the_layout_probe_sees_what_overflows(tmp_path):
    _chromium()
    site = SimpleNamespace(out=tmp_path)
    wide = dict(id="wide", title="a_title_much_wider_than_its_four_hundred_pixel_column",
                code="short\n" + "x" * 80, clipped="a line of text far wider than its box")
    narrow = dict(id="narrow", title="a title", code="short", clipped="fits")
    for name, page in (("wide.html", wide), ("narrow.html", narrow)):
        (tmp_path / name).write_text(_PROBE_TEST_PAGE.format(**page), encoding="utf-8")
    layout = _layout(site, "wide.html")
    assert [(e["element"], e["anchor"], e["text"]) for e in layout["scrolls"]] == [
        ("pre", "wide", "x" * 80), ("div", "wide", wide["clipped"])]
    assert [(e["element"], e["text"]) for e in layout["spills"]] == [("h1", wide["title"])]
    assert layout["spills"][0]["need"] > layout["spills"][0]["have"] == 400
    layout = _layout(site, "narrow.html")
    assert layout["scrolls"] == layout["spills"] == [] and not layout["escapes"]


@pytest.mark.parametrize("relpath", MATH_PAGES)
def test_the_layout_probe_ran_after_mathjax(layouts, relpath):
    assert layouts[relpath]["math"] > 0, f"no typeset formula on {relpath} when the probe ran"


# Overflows left to another change, as (page, element, its text) -> where it is fixed. An entry
# that no longer overflows fails the test: the list only shrinks.
KNOWN_OVERFLOWS = {}


def test_every_page_fits_a_1280px_window(layouts):
    """Nothing scrolls sideways or sticks out of the text column, on any page of the site.

    The column of a page with both sidebars is about 610 px wide: 68 characters of code (64
    inside an API entry, which is indented)."""
    problems, known = [], set()
    for relpath, layout in layouts.items():
        width, window = layout["page"]
        found = [f"the page is {width} px wide in a {window} px window"] if width > window else []
        for kind, items in (("scrolls sideways or is cut off", layout["scrolls"]),
                            ("sticks out of the column", layout["spills"])):
            for e in items:
                key = (relpath, e["element"], e["text"])
                if key in KNOWN_OVERFLOWS:
                    known.add(key)
                    continue
                anchor = f" at #{e['anchor']}" if e["anchor"] else ""
                found.append(f"<{e['element']}>{anchor} {kind}: needs {e['need']} px, "
                             f"has {e['have']} px: {e['text']!r}")
        if found:
            problems.append("\n".join([relpath, *(f"    {f}" for f in found)]))
    assert not problems, (
        f"{len(problems)} pages do not fit a 1280 px window:\n" + "\n".join(problems)
    )
    fixed = set(KNOWN_OVERFLOWS) - known
    assert not fixed, f"these fit now: remove them from KNOWN_OVERFLOWS: {sorted(fixed)}"


def test_no_formula_shows_a_tex_escape(layouts):
    shown = {page: layout["escapes"] for page, layout in layouts.items() if layout["escapes"]}
    assert not shown, f"formulas showing a TeX backslash, by page: {shown}"


def test_no_page_shows_an_empty_section_navigation(site):
    empty = []
    for p in site.out.rglob("*.html"):
        nav = re.search(r'<nav class="bd-docs-nav.*?</nav>', p.read_text(encoding="utf-8"),
                        re.DOTALL)
        if nav and "<li" not in nav.group(0):
            empty.append(str(p.relative_to(site.out)))
    assert not empty, f"pages with an empty left sidebar (add them to html_sidebars): {empty}"


def test_benchmark_results_are_tables_not_preformatted_text(site):
    page = _page(site, "benchmarks.html")
    tables = re.findall(r"<table\b.*?</table>", page, re.DOTALL)
    assert len(tables) >= 10 and all("benchmark-table" in t for t in tables)
    assert "median time per step" in page
    for block in re.findall(r"<pre\b.*?</pre>", page, re.DOTALL):
        assert "median" not in block and "-----" not in block


def test_the_docs_speak_of_the_project_not_its_issue_tracker(site):
    mentions = []
    for p in site.out.rglob("*.html"):
        text = _visible_text(p.read_text(encoding="utf-8"))
        mentions += [f"{p.relative_to(site.out)}: {m}"
                     for m in re.findall(r".{0,40}\bissues?\s+#?\d+.{0,20}", text, re.IGNORECASE)]
    assert not mentions, mentions


# -- the examples in the docstrings run -----------------------------------------------------------

# (rmsprop_nb itself: SparseGrad, whose home is the package.)
DOCSTRING_MODULES = ("rmsprop_nb", "rmsprop_nb.kernels", "rmsprop_nb.optimizers",
                     "rmsprop_nb.toy", "rmsprop_nb.warmup")


@pytest.mark.parametrize("module", DOCSTRING_MODULES)
def test_examples_in_the_docstrings_run(module, tmp_path, monkeypatch):
    import importlib

    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    mod = importlib.import_module(module)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(mod, module) if t.examples]
    assert tests, f"{module} has no examples"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {module}"

"""Smoke test of the benchmark: ``benchmarks/run.py --quick`` on tiny sizes runs to the end and
writes what it promises. Nothing here looks at a timing: on a shared machine they mean nothing
in a test, and the benchmark exists to measure them, not to pass or fail on them."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_MPL = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    cmd = [
        sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
        "--sizes", "100,1000", "--rounds", "2", "--batch-ms", "0.5", "--many", "12",
        "--sparse-rows", "1000,5000",
        "--out", str(out), "--name", "smoke",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc, out


def test_quick_run_prints_every_table(quick_run):
    proc, _ = quick_run
    for title in (
        "float32: median time per step", "float32: effective bandwidth",
        "float32: paired ratios", "float64: paired ratios", "RMSProp options",
        "12 arrays, float32", "one 1-element float32 parameter", "serial vs parallel loop",
        "start-up in a fresh process", "sparse: 4,096 Zipf(1.1) row indices of 64 float32",
        "sparse: effective bandwidth", "sparse: paired ratios", "sparse: time at n = 5e3",
        "noise:", "targets (medians of paired ratios)",
    ):
        assert title in proc.stdout
    assert "RMSProp.step: fraction of ceiling" in proc.stdout
    assert "adagrad_step_rows vs adagrad_step (dense) (x faster)" in proc.stdout
    if HAS_TORCH:
        assert "RMSProp.step vs faster torch RMSprop" in proc.stdout
        assert "AdaGrad.step vs torch Adagrad fused" in proc.stdout


def test_quick_run_writes_json_with_medians_and_ratios(quick_run):
    _, out = quick_run
    results = json.loads((out / "smoke.json").read_text())
    assert [(g["dtype"], g["n"]) for g in results["sizes"]] == [
        ("float32", 100), ("float32", 1000), ("float64", 100), ("float64", 1000)
    ]
    expected = {"ceiling", "copyto", "rms_kernel", "rms_opt", "ada_kernel", "ada_opt",
                "rms_np_tmp", "rms_np_inplace", "ada_np_tmp", "ada_np_inplace"}
    if HAS_TORCH:
        expected |= {"th_rms_foreach", "th_rms_single", "th_ada_foreach", "th_ada_fused"}
    for group in results["sizes"]:
        assert set(group["timings"]) == expected
        for t in group["timings"].values():
            assert len(t["times"]) == 2 and t["median"] > 0 and t["gbps"] > 0
        assert {"rms_opt/ceiling", "ada_opt/ceiling", "rms_kernel/ceiling"} <= set(group["ratios"])
        if HAS_TORCH:
            assert {"rms_opt/torch_rms_best", "ada_opt/th_ada_fused"} <= set(group["ratios"])
    assert len(results["many"]["sizes"]) == 12
    assert {(r["dtype"], r["kib"]) for r in results["threshold"]} == {
        (d, k) for d in ("float32", "float64") for k in (16, 64, 256)
    }
    assert [e["n"] for e in results["sparse"]] == [1000, 5000]
    sparse = {"ada:ceiling", "ada:ada_rows", "ada:ada_dense", "rms:ceiling", "rms:rms_exact",
              "rms:rms_lazy"} | ({"ada:th_ada", "ada:th_sadam"} if HAS_TORCH else set())
    for entry in results["sparse"]:
        assert set(entry["timings"]) == sparse and entry["bytes"] > 0
        assert {"ada_rows/ceiling", "ada_rows/ada_dense", "rms_lazy/rms_exact"} <= set(
            entry["ratios"])
    assert set(results["compile"]) == {"cold", "cached"}
    cold = results["compile"]["cold"]
    assert cold["RMSProp.step float32, 10 elements"] > 0
    assert cold["python -m rmsprop_nb (whole command)"] > 0
    assert cold.keys() == results["compile"]["cached"].keys()
    assert results["meta"]["threads"] >= 1 and results["meta"]["threading_layer"]
    assert {t["met"] for t in results["targets"]} <= {True, False, None}


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib is not installed")
def test_quick_run_draws_the_plot(quick_run):
    _, out = quick_run
    png = (out / "smoke.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_quick_run_writes_the_tables_as_rst_for_the_docs(quick_run):
    docutils_core = pytest.importorskip("docutils.core")
    proc, out = quick_run
    text = (out / "smoke.rst").read_text(encoding="utf-8")
    tree = docutils_core.publish_doctree(
        text, settings_overrides={"report_level": 2, "halt_level": 2}  # a warning raises
    )
    captions = [t.next_node(lambda n: n.tagname == "title").astext() for t in tree.findall(
        lambda n: n.tagname == "table")]
    printed = [block.splitlines()[0] for block in proc.stdout.split("\n\n")
               if len(block.splitlines()) > 2 and set(block.splitlines()[2]) == {"-"}]
    assert captions == printed


def _report():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import report
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return report


def test_rst_table_keeps_every_cell_text_through_docutils():
    docutils_core = pytest.importorskip("docutils.core")
    report = _report()
    rows = [["rms_kernel_loop *x*", "3,146 ±5%", "-"], [">= 0.9 of `ceiling`|", "1.", "+1"],
            ["- a", "#2", "worst 0.89 (n=3e7)"], ["(a) b", "1.5", "ii) c"]]
    text = report.table("a_b: times, us (± spread)", ["implementation", "1e2", ""], rows)
    tree = docutils_core.publish_doctree(
        report.rst(text), settings_overrides={"report_level": 2, "halt_level": 2}
    )
    (table,) = tree.findall(lambda n: n.tagname == "table")
    assert table.next_node(lambda n: n.tagname == "title").astext() == "a_b: times, us (± spread)"
    cells = [[entry.astext().replace(report.NBSP, " ") for entry in row.children]
             for row in table.findall(lambda n: n.tagname == "row")]
    assert cells == [["implementation", "1e2", ""]] + rows


HAS_DASK = all(importlib.util.find_spec(m) is not None for m in ("dask", "distributed"))


@pytest.mark.skipif(not HAS_DASK, reason="needs the dask extra (dask, distributed)")
def test_dask_suite_runs_every_contender_and_reports_both_ratios(tmp_path):
    out = tmp_path / "dask.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(ROOT / "benchmarks" / "dask_suite.py"), "--quick",
           "--sizes", "40000", "--rounds", "1", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(out.read_text())
    (row,) = results["sizes"]
    assert set(row["median_s"]) == {
        f"{kind}, {n}" for kind, n in [("local", "2 threads"), ("tasks", "2 threads"),
                                       ("dask", "2 workers"), ("local", "1 thread"),
                                       ("tasks", "1 thread"), ("dask", "1 worker")]
    }
    assert all(t > 0 for t in row["median_s"].values())
    assert set(row["ratio"]) == set(row["ceiling"]) == {"1", "2"}
    assert set(results["overhead"]["per_task_s"]) == {"wait", "back to back"}
    assert "| tasks, no Dask |" in proc.stdout and "| ratio without Dask |" in proc.stdout

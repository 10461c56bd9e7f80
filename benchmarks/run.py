"""Benchmark rmsprop_nb against the memory-bandwidth ceiling, NumPy and PyTorch, side by side.

Usage, from the repository root (or anywhere, with rmsprop_nb installed)::

    python benchmarks/run.py            # the full run: a few minutes
    python benchmarks/run.py --quick    # about 30 s: fewer sizes and rounds

What is measured, all in this one process (the start-up suite excepted) and in alternation
(see ``timing.py``):

* ``sizes``: one step on arrays of 1e2 .. 3e7 elements, float32 and float64: rmsprop_nb's
  kernels and optimizer classes, the ceiling kernel (same traffic, no math), ``np.copyto``,
  NumPy with temporaries and in place, ``torch.optim.RMSprop`` (foreach on/off) and
  ``torch.optim.Adagrad`` (foreach, fused), timing ``step()`` only;
* ``options``: RMSProp's momentum, centered and weight decay, next to ceilings with their
  traffic;
* ``many``: one step over 200 arrays of log-uniform sizes (seeded), against PyTorch and the
  ceiling kernel on the same total bytes;
* ``tiny``: one step on a 1-element parameter (the cost of a call);
* ``threshold``: the serial and the parallel loop of the kernels by array size, to place
  ``PARALLEL_MIN_BYTES``;
* ``sparse``: row-sparse steps on an embedding table by table size at fixed k, against the
  dense step, PyTorch's sparse Adagrad and SparseAdam and the bytes touched
  (``sparse_suite.py``; not ``sparse.py``, which would hide the PyPI package of that name);
* ``compile``: import and first-call times in fresh processes, cold and from the disk cache;
* ``noise``: how much the machine's bandwidth moved during the run.

Results: a JSON file, a PNG plot and the tables as reStructuredText (for the docs page) in
``--out`` (default ``benchmarks/results``), and the tables on stdout, ending with the
performance targets. PyTorch is used when it is installed; its thread count is set to Numba's.
``OMP_PROC_BIND=true`` and ``OMP_PLACES=cores`` are set here, before any thread pool starts,
unless already set: on a shared machine they remove most stalls of the parallel regions.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_PROC_BIND", "true")
os.environ.setdefault("OMP_PLACES", "cores")

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
try:
    import rmsprop_nb  # noqa: F401
except ImportError:  # a checkout without an install: use the package next to this folder
    sys.path.insert(0, str(HERE.parent))

import numba  # noqa: E402
import numpy as np  # noqa: E402

import contenders as C  # noqa: E402
import report as R  # noqa: E402
import sparse_suite as S  # noqa: E402
import timing as T  # noqa: E402

SUITES = ("sizes", "options", "many", "tiny", "threshold", "sparse", "compile", "noise")
FULL = dict(
    sizes=[100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 30_000_000],
    dtypes=["float32", "float64"], rounds=15, batch=0.025, options_n=10_000_000, noise_batches=40,
    threshold_kib=[8, 16, 32, 48, 64, 96, 128, 192, 256, 512],
)
QUICK = dict(
    sizes=[1000, 100_000, 1_000_000, 10_000_000],
    dtypes=["float32", "float64"], rounds=5, batch=0.005, options_n=1_000_000, noise_batches=15,
    threshold_kib=[16, 64, 256],
)
FULL.update(S.FULL)
QUICK.update(S.QUICK)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer sizes and rounds (~30 s)")
    p.add_argument("--sizes", help="comma-separated array sizes, e.g. 1e3,1e6 (overrides)")
    p.add_argument("--dtypes", help="comma-separated, e.g. float32 (default: float32,float64)")
    p.add_argument("--sparse-rows", help="comma-separated table sizes of the sparse suite, e.g. "
                                         "1e4,1e6 (overrides)")
    p.add_argument("--rounds", type=int, help="alternation rounds per group")
    p.add_argument("--batch-ms", type=float, help="time per batch of calls, ms")
    p.add_argument("--many", type=int, default=200, help="arrays in the many-arrays suite")
    p.add_argument("--skip", default="", help=f"comma-separated suites to skip: {SUITES}")
    p.add_argument("--threads", type=int, help="Numba and PyTorch threads (default: Numba's)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for JSON and PNG")
    p.add_argument("--name", help="file stem of the outputs (default: quick or full)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--startup-package", metavar="DIR",
                   help="measure the start-up suite on the rmsprop_nb package in DIR (a "
                        "checkout's root), e.g. an older version, instead of this one")
    args = p.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.sizes:
        cfg["sizes"] = [int(float(v)) for v in args.sizes.split(",")]
        cfg["options_n"] = min(cfg["options_n"], max(cfg["sizes"]))
    if args.dtypes:
        cfg["dtypes"] = args.dtypes.split(",")
    if args.sparse_rows:
        cfg["sparse_rows"] = [int(float(v)) for v in args.sparse_rows.split(",")]
    if args.rounds:
        cfg["rounds"] = args.rounds
    if args.batch_ms:
        cfg["batch"] = args.batch_ms / 1e3
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(SUITES):
        p.error(f"unknown suites {sorted(skip - set(SUITES))}; choose from {SUITES}")
    cfg["suites"] = [s for s in SUITES if s not in skip]
    cfg["many"] = args.many
    return args, cfg


class Progress:
    """A progress bar on stderr: tqdm when installed, else a plain one."""

    def __init__(self, total, enabled=True):
        self.total, self.done, self.text, self.enabled = total, 0, "", enabled
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, file=sys.stderr, unit="round", dynamic_ncols=True,
                                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")
            except ImportError:
                pass

    def describe(self, text):
        self.text = text
        if self.bar is not None:
            self.bar.set_description_str(text)
        else:
            self._draw()

    def tick(self, k=1):
        self.done += k
        if self.bar is not None:
            self.bar.update(k)
        else:
            self._draw()

    def _draw(self):
        if not self.enabled:
            return
        frac = min(1.0, self.done / max(self.total, 1))
        bar = "#" * int(30 * frac)
        sys.stderr.write(f"\r[{bar:<30}] {frac:4.0%} {self.text:<40}")
        sys.stderr.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            sys.stderr.write("\n")


def time_group(contenders, cfg, progress):
    """Warm up and calibrate every contender, then time them all in alternation."""
    for c in contenders:
        T.calibrate(c, cfg["batch"])
    progress.tick()
    T.alternate(contenders, cfg["rounds"], progress.tick)
    return {c.key: c for c in contenders}


def timings(group, n_bytes_per_pass):
    out = {}
    for k, c in group.items():
        s = T.summary(c.times)
        s.update(label=c.label, stmt=c.stmt, passes=c.passes, reps=c.reps,
                 gbps=c.passes * n_bytes_per_pass / s["median"] / 1e9, times=c.times)
        out[k] = s
    return out


def ratios(group, pairs):
    """``impl/peer`` -> paired ratio of the peer's time to the implementation's time."""
    out = {}
    for impl, peer in pairs:
        if impl not in group:
            continue
        if peer == "torch_rms_best":
            if "th_rms_foreach" not in group:
                continue
            num = [group["th_rms_foreach"].times, group["th_rms_single"].times]
        elif peer in group:
            num = group[peer].times
        else:
            continue
        out[f"{impl}/{peer}"] = T.paired_ratio(num, group[impl].times)
    return out


def run_sizes(cfg, progress, with_torch):
    rng = np.random.default_rng(0)
    out = []
    for dtype in cfg["dtypes"]:
        for n in cfg["sizes"]:
            progress.describe(f"sizes {dtype} n={R.fmt_n(n)}")
            group = time_group(C.sizes_group(n, np.dtype(dtype), rng, with_torch), cfg, progress)
            nbytes = n * np.dtype(dtype).itemsize
            out.append(dict(dtype=dtype, n=n, timings=timings(group, nbytes),
                            ratios=ratios(group, R.SIZE_RATIOS)))
            del group
            gc.collect()
    return out


def run_options(cfg, progress):
    n, dtype = cfg["options_n"], np.dtype("float32")
    progress.describe(f"options n={R.fmt_n(n)}")
    group = time_group(C.options_group(n, dtype, np.random.default_rng(1)), cfg, progress)
    ceil_for = {5: "ceiling_5", 7: "ceiling_7", 9: "ceiling_9"}
    opts = [k for k in group if not k.startswith("ceiling")]
    res = dict(
        n=n, dtype=dtype.name, timings=timings(group, n * dtype.itemsize),
        ratios={k: T.paired_ratio(group[ceil_for[group[k].passes]].times, group[k].times)
                for k in opts},
        # time of the option / time of the plain step; "free" when it is <= passes / 5
        cost_vs_plain={k: T.paired_ratio(group[k].times, group["plain"].times)["median"]
                       for k in opts},
    )
    return res


def run_many(cfg, progress, with_torch):
    sizes = C.many_sizes(cfg["many"])
    dtype = np.dtype("float32")
    progress.describe(f"{len(sizes)} arrays")
    group = time_group(C.many_group(sizes, dtype, np.random.default_rng(2), with_torch), cfg,
                       progress)
    total = sum(sizes)
    return dict(dtype=dtype.name, sizes=sizes, seed=0, total=total,
                timings=timings(group, total * dtype.itemsize),
                ratios=ratios(group, R.MANY_RATIOS))


def run_tiny(cfg, progress, with_torch):
    progress.describe("1-element step")
    dtype = np.dtype("float32")
    keys = ["rms_kernel", "ada_kernel", "rms_opt", "ada_opt", "rms_np_inplace", "th_rms_single",
            "th_rms_foreach", "th_ada_fused"]
    cs = [c for c in C.tiny_group(dtype, with_torch) if c.key in keys]
    group = time_group(cs, dict(cfg, batch=max(cfg["batch"], 0.01)), progress)
    return dict(dtype=dtype.name, timings=timings(group, dtype.itemsize))


def run_threshold(cfg, progress):
    """Serial vs parallel loop by bytes per array: where the parallel one starts to win."""
    rng = np.random.default_rng(4)
    out = []
    for dtype in cfg["dtypes"]:
        for kib in cfg["threshold_kib"]:
            progress.describe(f"threshold {dtype} {kib} KiB")
            group = time_group(C.threshold_group(kib * 1024, np.dtype(dtype), rng), cfg, progress)
            out.append(dict(
                dtype=dtype, kib=kib, serial=T.summary(group["serial"].times)["median"],
                parallel=T.summary(group["parallel"].times)["median"],
                ratio=T.paired_ratio(group["serial"].times, group["parallel"].times),
            ))
    return out


STARTUP_SCENARIOS = ("optimizer", "kernel", "njit", "cli")


def run_compile(progress, package=None):
    """Import and first calls in fresh processes, one per scenario (see ``first_call.py``),
    each with an empty cache ("cold"), then again with the same cache ("cached").
    ``package``: the folder holding the ``rmsprop_nb`` to measure (default: the one imported
    here), e.g. an older checkout, to compare versions with the same scenarios."""
    import rmsprop_nb

    pkg_parent = package or str(Path(rmsprop_nb.__file__).resolve().parent.parent)
    out = {"cold": {}, "cached": {}}
    for scenario in STARTUP_SCENARIOS:
        with tempfile.TemporaryDirectory(prefix="rmsprop_nb_bench_cache_") as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache, MPLBACKEND="Agg")
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
            env.pop("RMSPROP_NB_CACHE", None)
            for mode in ("cold", "cached"):
                progress.describe(f"start-up: {scenario} ({mode})")
                if scenario == "cli":
                    cmd = [sys.executable, "-m", "rmsprop_nb", "--out",
                           str(Path(cache) / "figure.png")]
                else:
                    cmd = [sys.executable, str(HERE / "first_call.py"), scenario]
                start = time.perf_counter()
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                      timeout=600, cwd=cache)
                wall = time.perf_counter() - start
                if proc.returncode:
                    raise RuntimeError(f"{cmd} failed ({mode}):\n{proc.stderr}")
                if scenario == "cli":
                    out[mode]["python -m rmsprop_nb (whole command)"] = wall
                else:
                    times = json.loads(proc.stdout)
                    times.pop("total")
                    imp = times.pop("import rmsprop_nb (with numpy, numba)")
                    out[mode].setdefault("import rmsprop_nb (with numpy, numba)", imp)
                    out[mode].update(times)
                progress.tick()
    return out


def noise_probe(cfg, progress, when):
    """The ceiling kernel alone in short batches: how far the bandwidth wanders."""
    n = int(min(max(max(cfg["sizes"]), 100_000), 10_000_000))
    dtype = np.dtype("float32")
    progress.describe(f"noise probe ({when})")
    x, g, s = C.data(n, dtype, np.random.default_rng(3))
    c = T.Contender("ceiling", "ceiling kernel", "ceiling_5(x, g, s)",
                    dict(x=x, g=g, s=s, ceiling_5=C.ceiling_5))
    T.calibrate(c, cfg["batch"])
    T.alternate([c], cfg["noise_batches"])
    progress.tick()
    bw = sorted(5 * n * dtype.itemsize / t / 1e9 for t in c.times)
    return dict(n=n, dtype=dtype.name, batches=len(bw), gbps_median=statistics.median(bw),
                gbps_min=bw[0], gbps_max=bw[-1], gbps_p10=T.quantile(bw, 0.1),
                gbps_p90=T.quantile(bw, 0.9))


def noise_summary(results, start, end, load_start):
    big = [g for g in results.get("sizes", []) if g["n"] >= 100_000]
    t_spreads = [t["spread"] for g in big for t in g["timings"].values()] or [0.0]
    r_spreads = [(r["p90"] - r["p10"]) / r["median"] for g in big for r in g["ratios"].values()]
    r_spreads = r_spreads or [0.0]
    return dict(
        start=start, end=end, load_start=load_start,
        load_end=[round(v, 2) for v in os.getloadavg()],
        time_spread_median=statistics.median(t_spreads), time_spread_max=max(t_spreads),
        ratio_spread_median=statistics.median(r_spreads), ratio_spread_max=max(r_spreads),
    )


def evaluate_targets(results):
    """The performance targets, each with the worst case measured in this run."""
    targets = []
    sizes = results.get("sizes", [])

    def worst(name, impls, peer, keep, threshold, fmt="{:.2f}"):
        cases = [
            (g["ratios"][f"{i}/{peer}"]["median"], R.NAMES[i], g["dtype"], R.fmt_n(g["n"]))
            for g in sizes if keep(g["n"]) for i in impls if f"{i}/{peer}" in g["ratios"]
        ]
        if not cases:
            targets.append(dict(target=name, measured="not measured in this run", met=None))
            return
        v, who, dtype, n = min(cases)
        targets.append(dict(target=name, measured=f"worst {fmt.format(v)} ({who}, {dtype}, "
                            f"n={n})", met=v >= threshold, value=v))

    both = ("rms_kernel", "rms_opt", "ada_kernel", "ada_opt")
    worst("n >= 1e7: at least 0.9x the ceiling kernel's speed", both, "ceiling",
          lambda n: n >= 10**7, 0.9)
    worst("n = 1e6: at least 0.65x the ceiling kernel's speed", both, "ceiling",
          lambda n: n == 10**6, 0.65)
    worst("RMSProp, n = 1e3..3e7: at least 4x faster than the faster torch RMSprop",
          ("rms_kernel", "rms_opt"), "torch_rms_best", lambda n: 10**3 <= n <= 3 * 10**7, 4.0)
    worst("AdaGrad, every n: at least as fast as torch Adagrad fused", ("ada_kernel", "ada_opt"),
          "th_ada_fused", lambda n: True, 1.0)
    worst("AdaGrad, n = 1e6: at least 1.3x faster than torch Adagrad fused",
          ("ada_kernel", "ada_opt"), "th_ada_fused", lambda n: n == 10**6, 1.3)
    m = results.get("many")
    if m:
        for key, name, thr in (
            ("rms_opt/th_rms_foreach", "at least 7x faster than torch RMSprop foreach", 7.0),
            ("rms_opt/ceiling", "at least 0.8x the ceiling kernel's speed", 0.8),
            # rms_opt/rms_groups is how many times faster one group is than ten: at most 1.2
            ("rms_opt/rms_groups", "in 10 groups at most 1.2x the time of one group", None),
        ):
            if key in m["ratios"]:
                v = m["ratios"][key]["median"]
                met = v <= 1.2 if thr is None else v >= thr
                targets.append(dict(target=f"RMSProp, {len(m['sizes'])} arrays: {name}",
                                    measured=f"{v:.2f}", met=met, value=v))
    t = results.get("tiny")
    if t:
        for keys, name, limit in ((("rms_opt", "ada_opt"), "optimizer", 3e-6),
                                  (("rms_kernel", "ada_kernel"), "kernel", 1e-6)):
            v, who = max((t["timings"][k]["median"], t["timings"][k]["label"]) for k in keys)
            targets.append(dict(target=f"1-element step, {name}: at most {limit * 1e6:g} us",
                                measured=f"worst {v * 1e6:.2f} us ({who})", met=v <= limit,
                                value=v))
    c = results.get("compile", {}).get("cold")
    if c:
        for keys, name, limit in (
            (("RMSProp.step float32, 10 elements",), "first float32 RMSProp.step", 1.5),
            (("+ momentum=0.9", "+ centered=True"), "each further option combination", 1.0),
            (("rmsprop_step float64, 10 elements",), "first kernel call from Python", 1.5),
        ):
            found = [(c[k], k) for k in keys if k in c]
            if found:
                v, who = max(found)
                targets.append(dict(target=f"cold start, {name}: at most {limit:g} s",
                                    measured=f"worst {v:.2f} s ({who})", met=v <= limit,
                                    value=v))
    return targets


def main(argv=None):
    args, cfg = parse_args(argv)
    if args.threads:
        numba.set_num_threads(args.threads)
    threads = numba.get_num_threads()
    with_torch = C.torch is not None and not args.no_torch
    if with_torch:
        C.torch.set_num_threads(threads)
    suites = cfg["suites"]
    ticks = {
        "sizes": len(cfg["sizes"]) * len(cfg["dtypes"]) * (cfg["rounds"] + 1),
        "options": cfg["rounds"] + 1, "many": cfg["rounds"] + 1, "tiny": cfg["rounds"] + 1,
        "threshold": len(cfg["threshold_kib"]) * len(cfg["dtypes"]) * (cfg["rounds"] + 1),
        "sparse": S.ticks(cfg), "compile": 2 * len(STARTUP_SCENARIOS), "noise": 2,
    }
    progress = Progress(sum(ticks[s] for s in suites), enabled=not args.no_progress)
    started = time.perf_counter()
    load_start = [round(v, 2) for v in os.getloadavg()]
    results = {}
    noise_start = noise_probe(cfg, progress, "start") if "noise" in suites else None
    if "sizes" in suites:
        results["sizes"] = run_sizes(cfg, progress, with_torch)
    if "options" in suites:
        results["options"] = run_options(cfg, progress)
    if "many" in suites:
        results["many"] = run_many(cfg, progress, with_torch)
    if "tiny" in suites:
        results["tiny"] = run_tiny(cfg, progress, with_torch)
    if "threshold" in suites:
        results["threshold"] = run_threshold(cfg, progress)
    if "sparse" in suites:
        results["sparse"] = S.run(cfg, progress, with_torch)
    if "compile" in suites:
        results["compile"] = run_compile(progress, args.startup_package)
    if "noise" in suites:
        noise_end = noise_probe(cfg, progress, "end")
        results["noise"] = noise_summary(results, noise_start, noise_end, load_start)
    progress.close()

    results["meta"] = dict(
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        command=" ".join([Path(sys.executable).name] + sys.argv),
        quick=args.quick, config={k: v for k, v in cfg.items()},
        seconds=round(time.perf_counter() - started, 1),
        cpu=R.machine(), logical_cpus=os.cpu_count(), platform=platform.platform(),
        python=platform.python_version(), numpy=np.__version__, numba=numba.__version__,
        torch=C.torch.__version__ if with_torch else None,
        threads=threads, threading_layer=_threading_layer(),
        env={k: os.environ.get(k) for k in ("OMP_PROC_BIND", "OMP_PLACES", "NUMBA_NUM_THREADS",
                                            "NUMBA_THREADING_LAYER", "OMP_NUM_THREADS")},
        rmsprop_nb=C.package_info(),
        parallel_min_bytes=C.rmsprop_nb.kernels.PARALLEL_MIN_BYTES,
    )
    results["targets"] = evaluate_targets(results) + S.targets(results)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("quick" if args.quick else "full")
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=1))
    text = render(results)
    rst_path = out / f"{stem}.rst"
    rst_path.write_text(R.rst(text), encoding="utf-8")
    print(text)
    print(f"\nresults: {json_path}\ntables for the docs: {rst_path}")
    if "sizes" in results and not args.no_plot:
        try:
            R.plot(results, out / f"{stem}.png")
            print(f"plot: {out / f'{stem}.png'}")
        except ImportError:
            print("plot: skipped (matplotlib is not installed)")
    return results


def _threading_layer():
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel function ran
        return None


def render(results):
    meta = results["meta"]
    head = (
        f"rmsprop_nb {meta['rmsprop_nb']['version']} | {meta['cpu']} | {meta['logical_cpus']} "
        f"logical CPUs | Numba {meta['numba']} ({meta['threads']} threads, "
        f"{meta['threading_layer']} layer) | NumPy {meta['numpy']} | PyTorch {meta['torch']} | "
        f"{meta['seconds']} s\ncommand: {meta['command']}  (OMP_PROC_BIND="
        f"{meta['env']['OMP_PROC_BIND']} OMP_PLACES={meta['env']['OMP_PLACES']})"
    )
    parts = [head]
    parts += [R.sizes_tables(results, d) for d in meta["config"]["dtypes"] if "sizes" in results]
    parts += [R.options_table(results), R.many_table(results), R.tiny_table(results),
              R.threshold_table(results), S.tables(results), R.compile_table(results),
              R.noise_text(results),
              R.targets_table(results["targets"])]
    return "\n\n".join(p for p in parts if p)


if __name__ == "__main__":
    main()

"""What a run prints and draws: tables of medians, GB/s and paired ratios, the targets, a plot,
and the same tables as reStructuredText for the docs page."""

from __future__ import annotations

import math
import platform
import re
from pathlib import Path

# The ratios of issue 5, each as (what, implementation, peer): for "ceiling" the value is the
# fraction of the ceiling kernel's speed reached, for the others how many times faster the
# implementation is than the peer ("torch_rms_best": the faster torch RMSprop, per round).
SIZE_RATIOS = [
    ("rms_kernel", "ceiling"), ("rms_opt", "ceiling"),
    ("rms_kernel", "torch_rms_best"), ("rms_opt", "torch_rms_best"),
    ("rms_opt", "th_rms_foreach"), ("rms_opt", "th_rms_single"),
    ("rms_opt", "rms_np_tmp"), ("rms_opt", "rms_np_inplace"),
    ("ada_kernel", "ceiling"), ("ada_opt", "ceiling"),
    ("ada_kernel", "th_ada_fused"), ("ada_opt", "th_ada_fused"), ("ada_opt", "th_ada_foreach"),
    ("ada_opt", "ada_np_tmp"), ("ada_opt", "ada_np_inplace"),
]
MANY_RATIOS = [
    ("rms_opt", "ceiling"), ("ada_opt", "ceiling"),
    ("rms_opt", "th_rms_foreach"), ("rms_opt", "th_rms_single"),
    ("rms_opt", "rms_kernel_loop"), ("rms_opt", "rms_np_loop"),
    ("ada_opt", "th_ada_foreach"), ("ada_opt", "th_ada_fused"),
    ("rms_opt", "rms_groups"),
]
NAMES = {
    "ceiling": "ceiling", "torch_rms_best": "faster torch RMSprop",
    "rms_kernel": "rmsprop_step", "rms_opt": "RMSProp.step",
    "ada_kernel": "adagrad_step", "ada_opt": "AdaGrad.step",
    "th_rms_foreach": "torch RMSprop foreach", "th_rms_single": "torch RMSprop for-loop",
    "th_ada_foreach": "torch Adagrad foreach", "th_ada_fused": "torch Adagrad fused",
    "rms_np_tmp": "NumPy (temporaries)", "rms_np_inplace": "NumPy (in place)",
    "ada_np_tmp": "NumPy (temporaries)", "ada_np_inplace": "NumPy (in place)",
    "rms_kernel_loop": "rmsprop_step per array", "rms_np_loop": "NumPy per array",
    "rms_groups": "RMSProp.step, 10 groups",
}


def machine():
    """The processor's model name (from /proc/cpuinfo where there is one), for a report's
    header."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ratio_label(impl, peer):
    if peer == "ceiling":
        return f"{NAMES[impl]}: fraction of ceiling"
    return f"{NAMES[impl]} vs {NAMES[peer]} (x faster)"


def fmt_n(n):
    e = math.floor(math.log10(n)) if n > 0 else 0
    m = n / 10**e
    return f"1e{e}" if m == 1 else f"{m:g}e{e}"


def fmt_us(seconds):
    us = seconds * 1e6
    return f"{us:.3g}" if us < 1000 else f"{us:,.0f}"


def table(title, header, rows, first_width=40):
    """A plain text table: a title line, a header and rows (lists of strings)."""
    widths = [first_width] + [
        max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header) if i
    ]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
    )
    out = [title, line(header), "-" * len(line(header))]
    out += [line(r) for r in rows]
    return "\n".join(out)


def sizes_tables(results, dtype):
    groups = [g for g in results["sizes"] if g["dtype"] == dtype]
    if not groups:
        return ""
    header = ["implementation"] + [fmt_n(g["n"]) for g in groups]
    keys = list(groups[0]["timings"])
    label = {k: groups[0]["timings"][k]["label"] for k in keys}
    t_rows = [
        [label[k]] + [
            f"{fmt_us(g['timings'][k]['median'])} ±{g['timings'][k]['spread'] * 50:.0f}%"
            for g in groups
        ]
        for k in keys
    ]
    bw_rows = [[label[k]] + [f"{g['timings'][k]['gbps']:.1f}" for g in groups] for k in keys]
    r_rows = []
    for impl, peer in SIZE_RATIOS:
        cells = [g["ratios"].get(f"{impl}/{peer}") for g in groups]
        if any(cells):
            r_rows.append(
                [ratio_label(impl, peer)] + [f"{c['median']:.2f}" if c else "-" for c in cells]
            )
    return "\n\n".join([
        table(f"{dtype}: median time per step, us (± half the 10-90% spread)", header, t_rows),
        table(f"{dtype}: effective bandwidth, GB/s (5 array passes per step; copyto 2)",
              header, bw_rows),
        table(f"{dtype}: paired ratios (median over rounds)", header, r_rows, first_width=52),
    ])


def options_table(results):
    o = results.get("options")
    if not o:
        return ""
    rows = [
        [t["label"], str(t["passes"]), fmt_us(t["median"]), f"{t['gbps']:.1f}",
         f"{o['ratios'][k]['median']:.2f}" if k in o["ratios"] else "-",
         f"{o['cost_vs_plain'][k]:.2f}" if k in o["cost_vs_plain"] else "-"]
        for k, t in o["timings"].items()
    ]
    return table(
        f"RMSProp options, {o['dtype']}, n = {fmt_n(o['n'])}: time relative to the plain step "
        "vs its extra traffic (passes / 5)",
        ["implementation", "passes", "us", "GB/s", "of same-traffic ceiling", "time / plain"],
        rows,
    )


def many_table(results):
    m = results.get("many")
    if not m:
        return ""
    rows = [
        [t["label"], fmt_us(t["median"]), f"±{t['spread'] * 50:.0f}%", f"{t['gbps']:.1f}"]
        for t in m["timings"].values()
    ]
    ratio_rows = [
        [ratio_label(impl, peer), f"{m['ratios'][f'{impl}/{peer}']['median']:.2f}"]
        for impl, peer in MANY_RATIOS
        if f"{impl}/{peer}" in m["ratios"]
    ]
    title = (
        f"{len(m['sizes'])} arrays, {m['dtype']}, sizes log-uniform in [10, 1e5] "
        f"(seed {m['seed']}), {m['total']:,} elements in all"
    )
    return "\n\n".join([
        table(title + ": median us per step", ["implementation", "us", "spread", "GB/s"], rows),
        table("many arrays: paired ratios", ["ratio", "median"], ratio_rows, first_width=52),
    ])


def tiny_table(results):
    t = results.get("tiny")
    if not t:
        return ""
    rows = [[v["label"], fmt_us(v["median"]), f"±{v['spread'] * 50:.0f}%"]
            for v in t["timings"].values()]
    return table(f"one 1-element {t['dtype']} parameter: median us per step",
                 ["implementation", "us", "spread"], rows)


def threshold_table(results):
    rows_in = results.get("threshold")
    if not rows_in:
        return ""
    limit = results["meta"]["parallel_min_bytes"]
    rows = [
        [f"{r['dtype']}, {r['kib']} KiB", fmt_us(r["serial"]), fmt_us(r["parallel"]),
         f"{r['ratio']['median']:.2f}", "parallel" if r["kib"] * 1024 >= limit else "serial"]
        for r in rows_in
    ]
    return table(
        f"serial vs parallel loop by bytes per array (PARALLEL_MIN_BYTES = {limit // 1024} KiB)",
        ["bytes per array", "serial us", "parallel us", "serial / parallel", "package uses"],
        rows,
    )


def compile_table(results):
    c = results.get("compile")
    if not c:
        return ""
    modes = list(c)
    labels = list(c[modes[0]])
    rows = [[k] + [f"{c[m][k] * 1e3:,.1f}" for m in modes] for k in labels]
    return table("start-up in a fresh process, ms (cold: empty NUMBA_CACHE_DIR; cached: "
                 "the same folder again)", ["step"] + modes, rows)


def noise_text(results):
    nz = results.get("noise")
    if not nz:
        return ""
    lines = ["noise:"]
    for when in ("start", "end"):
        p = nz.get(when)
        if p:
            lines.append(
                f"  ceiling kernel at the {when} ({fmt_n(p['n'])} {p['dtype']}, {p['batches']} "
                f"batches): median {p['gbps_median']:.1f} GB/s, 10-90% {p['gbps_p10']:.1f}-"
                f"{p['gbps_p90']:.1f}, min-max {p['gbps_min']:.1f}-{p['gbps_max']:.1f}"
            )
    lines.append(
        f"  times of one contender, 10-90% spread over rounds (n >= 1e5): median "
        f"{nz['time_spread_median'] * 100:.0f}%, worst {nz['time_spread_max'] * 100:.0f}%"
    )
    lines.append(
        f"  paired ratios, 10-90% spread (n >= 1e5): median {nz['ratio_spread_median'] * 100:.0f}%"
        f", worst {nz['ratio_spread_max'] * 100:.0f}%"
    )
    lines.append(f"  load average at start / end: {nz['load_start']} / {nz['load_end']}")
    return "\n".join(lines)


def targets_table(targets):
    status = {True: "met", False: "MISSED", None: "-"}
    rows = [[t["target"], t["measured"], status[t["met"]]] for t in targets]
    return table("targets (medians of paired ratios)", ["target", "measured", "status"],
                 rows, first_width=max(len(r[0]) for r in rows) if rows else 10)


def rst(text):
    """The printed report (the output of :func:`table` and friends) as reStructuredText.

    Each table becomes a ``list-table`` with its title as the caption and its first column as
    row labels, class ``benchmark-table`` (the docs right-align its numbers); any other block
    becomes a bullet list (under its first line when that ends with a colon). On the docs page
    these are real tables that fit the column, where monospaced text would scroll sideways.
    """
    parts = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        if len(lines) >= 3 and set(lines[2]) == {"-"}:
            parts.append(_rst_table(lines[0], [_cells(line) for line in lines[1:2] + lines[3:]]))
        else:  # e.g. the noise report: "noise:", then indented lines
            head = [_rst_text(lines.pop(0)), ""] if lines[0].endswith(":") else []
            parts.append("\n".join(head + [f"* {_rst_text(line.strip())}" for line in lines]))
    return "\n\n".join(parts) + "\n"


NBSP = "\u00a0"


def _cells(line):
    # table() separates columns by at least two spaces; no cell holds two spaces in a row.
    return re.split(r" {2,}", line.strip())


def _rst_text(cell):
    """A cell as literal text: inline markup characters escaped, and the first character too
    when the cell could read as a list item (``- a``, ``+1``, ``1.``, ``(a)``, ...)."""
    cell = re.sub(r"([\\*`|_])", r"\\\1", cell)
    if cell and (not cell[0].isalnum() and cell[0] not in "\\±"
                 or re.match(r"\w+[.)](\s|$)", cell)):
        cell = "\\" + cell
    return cell


def _rst_table(title, rows):
    width = max(len(r) for r in rows)
    lines = [f".. list-table:: {_rst_text(title)}", "   :header-rows: 1", "   :stub-columns: 1",
             "   :class: benchmark-table", ""]
    for row in rows:
        row = row + [""] * (width - len(row))
        lines.append(f"   * - {_rst_text(row[0])}")
        # A number and its spread ("3,146 ±5%") stay on one line: a no-break space.
        lines += [f"     - {_rst_text(c.replace(' ±', NBSP + '±'))}" if c else "     -"
                  for c in row[1:]]
    return "\n".join(lines)


def plot(results, path):
    """Time per step and effective GB/s vs size, one line per implementation, per dtype."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = sorted({g["dtype"] for g in results["sizes"]})
    fig, axes = plt.subplots(2, len(dtypes), figsize=(6.5 * len(dtypes), 10), squeeze=False)
    # Lines that coincide (RMSProp and AdaGrad take the same time; a kernel and its optimizer
    # class do at large sizes) must all stay visible: RMSProp's are wide, pale and underneath
    # with large open markers, AdaGrad's narrow and on top with small filled ones. Solid lines
    # are the kernels (NumPy: with temporaries; torch: foreach), dashed the second variant, and
    # each variant has its own marker shape.
    under = dict(lw=3.5, alpha=0.5, ms=8, mfc="none", mew=1.5, zorder=2)
    over = dict(lw=1.3, ms=4, zorder=3)
    styles = {
        "ceiling": dict(color="black", ls="--", lw=1.2, zorder=4),
        "copyto": dict(color="gray", ls=":", lw=1.2, zorder=4),
        "rms_kernel": dict(color="tab:blue", marker="o", **under),
        "rms_opt": dict(color="tab:blue", marker="s", ls="--", **under),
        "ada_kernel": dict(color="tab:orange", marker="o", **over),
        "ada_opt": dict(color="tab:orange", marker="s", ls="--", **over),
        "rms_np_tmp": dict(color="tab:green", marker="^", **under),
        "rms_np_inplace": dict(color="tab:green", marker="v", ls="--", **under),
        "ada_np_tmp": dict(color="tab:olive", marker="^", **over),
        "ada_np_inplace": dict(color="tab:olive", marker="v", ls="--", **over),
        "th_rms_foreach": dict(color="tab:red", marker="D", **under),
        "th_rms_single": dict(color="tab:red", marker="P", ls="--", **under),
        "th_ada_foreach": dict(color="tab:purple", marker="D", **over),
        "th_ada_fused": dict(color="tab:purple", marker="P", ls="--", **over),
    }
    for col, dtype in enumerate(dtypes):
        groups = [g for g in results["sizes"] if g["dtype"] == dtype]
        ns = [g["n"] for g in groups]
        for key in groups[0]["timings"]:
            lab = groups[0]["timings"][key]["label"]
            st = styles.get(key, {})
            axes[0][col].loglog(ns, [g["timings"][key]["median"] * 1e6 for g in groups],
                                label=lab, **st)
            axes[1][col].semilogx(ns, [g["timings"][key]["gbps"] for g in groups],
                                  label=lab, **st)
        axes[0][col].set(title=f"{dtype}: time per step", ylabel="median time per step (us)")
        axes[1][col].set(title=f"{dtype}: effective bandwidth", xlabel="elements per array",
                         ylabel="GB/s (5 passes per step)")
        for ax in axes[:, col]:
            ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    meta = results["meta"]
    fig.suptitle(f"rmsprop_nb {meta['rmsprop_nb']['version']} vs NumPy and PyTorch, "
                 f"{meta['cpu']}, {meta['threads']} threads ({meta['threading_layer']})",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""The ``sparse`` suite: row-sparse steps on an embedding table, by table size at fixed k.

Setup: a table of ``n`` rows of 64 float32, 4,096 row indices per step drawn from a
Zipf law (exponent 1.1, duplicates included; the popular ranks are spread over the table by a
fixed permutation), ``n`` from 1e4 to 1e7. Each step takes the next of 32 pre-drawn batches,
so rows change from step to step as in training. Contenders, all on the same table ``x`` (the
PyTorch ones through ``torch.from_numpy``, no copy), each with its own state:

* ``ceiling``: the bytes a sparse step must move and nothing else: a trivial parallel loop
  over the entries of the batch, in order of row (sorted ahead of time, not timed), that reads
  each entry of ``g`` and reads and writes its rows of ``x`` and of a state array (it adds
  ``0 * g``, so no value changes);
* ``adagrad_step_rows``, ``rmsprop_step_rows`` exact (with ``last_step``) and lazy, called
  from Python as a user would, with PyTorch's eps placement (``eps_in_sqrt=False``);
* ``adagrad_step`` on the whole table with the dense gradient (zeros elsewhere, built ahead
  of time), up to ``--sparse-dense-max`` rows;
* ``torch.optim.Adagrad`` with the sparse COO gradient ``nn.Embedding(sparse=True)`` makes
  (built ahead of time; the step coalesces it, as ours groups the rows), and
  ``torch.optim.SparseAdam`` (lazy Adam: the nearest sparse torch optimizer; other math, more
  state), the latter up to ``--sparse-dense-max`` rows.

AdaGrad and RMSProp contenders form two groups per ``n`` (timed in alternation within a group;
ratios are paired within a group), so that the 1e7-row table needs 3 tables of 2.6 GB at a
time, not 7.
"""

from __future__ import annotations

import gc

import numba
import numpy as np
from numba import prange

import report as R
import timing as T
from rmsprop_nb.kernels import adagrad_step, adagrad_step_rows, rmsprop_step_rows
from timing import Contender

try:
    import torch
except ImportError:
    torch = None

WIDTH, K, ZIPF, POOL = 64, 4096, 1.1, 32
LR, GAMMA, EPS_RMS, EPS_ADA = 0.01, 0.99, 1e-8, 1e-10
FULL = dict(sparse_rows=[10_000, 100_000, 1_000_000, 10_000_000], sparse_dense_max=1_000_000)
QUICK = dict(sparse_rows=[10_000, 100_000], sparse_dense_max=100_000)

NAMES = {
    "ceiling": "ceiling (bytes touched)", "ada_rows": "adagrad_step_rows",
    "ada_dense": "adagrad_step (dense)", "th_ada": "torch Adagrad (sparse COO)",
    "th_sadam": "torch SparseAdam", "rms_exact": "rmsprop_step_rows (exact)",
    "rms_lazy": "rmsprop_step_rows (lazy)",
}
# (implementation, peer): how many times faster the implementation is (peer time / its time);
# "ceiling": the fraction of the ceiling's speed it reaches.
RATIOS = [
    ("ada", "ada_rows", "ceiling"), ("ada", "ada_rows", "th_ada"), ("ada", "ada_rows", "th_sadam"),
    ("ada", "ada_rows", "ada_dense"), ("rms", "rms_lazy", "ceiling"),
    ("rms", "rms_exact", "ceiling"), ("rms", "rms_lazy", "rms_exact"),
]


@numba.njit(parallel=True, error_model="numpy")
def ceiling_rows(x, s, g, order, ordered, zero):
    """The traffic of a sparse step and no more: every entry of g read once, the rows of x and
    s it names read and written, the entries in order of row (grouped ahead of time) and shared
    among the threads in equal numbers, so that a row's repeats hit the cache as in a step.
    (``zero`` is 0 at run time: no value changes, and nothing can be optimised away; two
    threads may write the same unchanged row.)"""
    for j in prange(order.size):
        r, e = ordered[j], order[j]
        for c in range(x.shape[1]):
            gi = zero * g[e, c]
            x[r, c] += gi
            s[r, c] += gi


def zipf_batches(n, rng, k=K, a=ZIPF, count=POOL):
    """``count`` batches of ``k`` row indices: Zipf ranks, spread over the table."""
    spread = rng.permutation(n)
    out = []
    for _ in range(count):
        ranks = np.empty(0, np.int64)
        while ranks.size < k:
            draw = rng.zipf(a, 2 * k) - 1
            ranks = np.concatenate([ranks, draw[draw < n]])
        out.append(spread[ranks[:k]].astype(np.int64))
    return out


class Batches:
    """The pre-drawn batches, their grouping (for the ceiling) and a cursor."""

    def __init__(self, n, rng):
        self.rows = zipf_batches(n, rng)
        self.groups = []
        for rows in self.rows:
            order = np.argsort(rows, kind="stable")
            self.groups.append((order, rows[order]))
        self.distinct_rows = [np.unique(rows).size for rows in self.rows]
        self.i = -1

    def next(self):
        self.i = (self.i + 1) % len(self.rows)
        return self.rows[self.i]

    def next_group(self):
        self.i = (self.i + 1) % len(self.rows)
        return self.groups[self.i]

    def distinct(self):
        return float(np.mean(self.distinct_rows))


class Step:
    """The step counter of exact RMSProp (every call is the next step)."""

    def __init__(self):
        self.t = 0

    def next(self):
        self.t += 1
        return self.t


def bytes_touched(b, itemsize=4, width=WIDTH):
    """Bytes a step must move: the entries of g read, the distinct rows of x and of one state
    array read and written (exact RMSProp also reads and writes 8 bytes per distinct row)."""
    return (K + 4 * b.distinct()) * width * itemsize


def groups(n, rng, with_torch, dense_max):
    """The AdaGrad and the RMSProp group of contenders at one table size (built lazily, so that
    only one group's arrays exist at a time)."""
    x = rng.standard_normal((n, WIDTH)).astype(np.float32)
    g = (rng.random((K, WIDTH)) + 0.5).astype(np.float32)
    b = Batches(n, rng)
    base = dict(x=x, g=g, b=b, LR=LR, GAMMA=GAMMA, EPS_RMS=EPS_RMS, EPS_ADA=EPS_ADA,
                ceiling_rows=ceiling_rows, zero=np.float32(0.0))
    ceiling = "ceiling_rows(x, s_ceil, g, *b.next_group(), zero)"

    def adagrad():
        s = np.zeros_like(x)
        ns = dict(base, s=s, s_ceil=s, adagrad_step_rows=adagrad_step_rows)
        c = [Contender("ceiling", NAMES["ceiling"], ceiling, ns),
             Contender("ada_rows", NAMES["ada_rows"],
                       "adagrad_step_rows(x, b.next(), g, s, LR, EPS_ADA, False)", ns)]
        if n <= dense_max:
            dense = [np.zeros_like(x) for _ in range(2)]
            for gd, rows in zip(dense, b.rows):
                np.add.at(gd, rows, g)
            ns.update(dense=dense, s_dense=np.zeros_like(x), adagrad_step=adagrad_step, j=[0])
            c.append(Contender("ada_dense", NAMES["ada_dense"],
                               "j[0] ^= 1; adagrad_step(x, dense[j[0]], s_dense, LR, EPS_ADA, "
                               "False)", ns))
        if with_torch and torch is not None:
            p = torch.nn.Parameter(torch.from_numpy(x))
            gt = torch.from_numpy(g)
            coo = [torch.sparse_coo_tensor(torch.from_numpy(r)[None], gt, (n, WIDTH),
                                           check_invariants=False) for r in b.rows]
            cur = [0]

            def next_grad():
                cur[0] = (cur[0] + 1) % len(coo)
                return coo[cur[0]]

            ns.update(p=p, next_grad=next_grad,
                      th_ada=torch.optim.Adagrad([p], lr=LR, eps=EPS_ADA))
            c.append(Contender("th_ada", NAMES["th_ada"],
                               "p.grad = next_grad(); th_ada.step()", ns))
            if n <= dense_max:
                q = torch.nn.Parameter(torch.from_numpy(x))
                ns.update(q=q, th_sadam=torch.optim.SparseAdam([q], lr=LR))
                c.append(Contender("th_sadam", NAMES["th_sadam"],
                                   "q.grad = next_grad(); th_sadam.step()", ns))
        return c

    def rmsprop():
        # zeros_like and full write their memory now (np.zeros would map it lazily, and the
        # first steps would pay the page faults).
        s_exact, s_lazy = np.zeros_like(x), np.zeros_like(x)
        ns = dict(base, s_exact=s_exact, s_lazy=s_lazy, s_ceil=s_lazy, t=Step(),
                  last=np.full(n, 0, np.int64), rmsprop_step_rows=rmsprop_step_rows)
        return [
            Contender("ceiling", NAMES["ceiling"], ceiling, ns),
            Contender("rms_exact", NAMES["rms_exact"],
                      "rmsprop_step_rows(x, b.next(), g, s_exact, LR, GAMMA, EPS_RMS, False, "
                      "last_step=last, step=t.next())", ns),
            Contender("rms_lazy", NAMES["rms_lazy"],
                      "rmsprop_step_rows(x, b.next(), g, s_lazy, LR, GAMMA, EPS_RMS, False, "
                      "lazy=True)", ns),
        ]

    return b, {"ada": adagrad, "rms": rmsprop}


def run(cfg, progress, with_torch):
    rng = np.random.default_rng(5)
    out = []
    for n in cfg["sparse_rows"]:
        b, makers = groups(n, rng, with_torch, cfg["sparse_dense_max"])
        entry = dict(n=n, width=WIDTH, k=K, zipf=ZIPF, distinct=b.distinct(),
                     bytes=bytes_touched(b), timings={}, ratios={})
        for name, make in makers.items():
            progress.describe(f"sparse {name} n={R.fmt_n(n)}")
            contenders = make()
            for c in contenders:
                T.calibrate(c, cfg["batch"])
            progress.tick()
            T.alternate(contenders, cfg["rounds"], progress.tick)
            group = {c.key: c for c in contenders}
            for key, c in group.items():
                s = T.summary(c.times)
                s.update(label=c.label, stmt=c.stmt, reps=c.reps, times=c.times,
                         gbps=entry["bytes"] / s["median"] / 1e9)
                entry["timings"][f"{name}:{key}"] = s
            for grp, impl, peer in RATIOS:
                if grp == name and impl in group and peer in group:
                    entry["ratios"][f"{impl}/{peer}"] = T.paired_ratio(group[peer].times,
                                                                       group[impl].times)
            del contenders, group
            gc.collect()
        out.append(entry)
        del b, makers
        gc.collect()
    return out


def ticks(cfg):
    return len(cfg["sparse_rows"]) * 2 * (cfg["rounds"] + 1)


def _label(impl, peer):
    if peer == "ceiling":
        return f"{NAMES[impl]}: fraction of ceiling"
    return f"{NAMES[impl]} vs {NAMES[peer]} (x faster)"


def tables(results):
    sp = results.get("sparse")
    if not sp:
        return ""
    header = ["implementation"] + [R.fmt_n(e["n"]) for e in sp]
    keys = list(dict.fromkeys(k for e in sp for k in e["timings"]))

    def cell(e, k, f):
        return f(e["timings"][k]) if k in e["timings"] else "-"

    label = {k: next(e["timings"][k]["label"] for e in sp if k in e["timings"])
             + (" (RMSProp group)" if k == "rms:ceiling" else "") for k in keys}
    title = (f"sparse: {K:,} Zipf({ZIPF}) row indices of {WIDTH} float32 per step, table of n "
             "rows")
    t_rows = [[label[k]]
              + [cell(e, k, lambda t: f"{R.fmt_us(t['median'])} ±{t['spread'] * 50:.0f}%")
                 for e in sp] for k in keys]
    bw_rows = [[label[k]] + [cell(e, k, lambda t: f"{t['gbps']:.1f}") for e in sp]
               for k in keys]
    info = [["distinct rows per step (mean)"] + [f"{e['distinct']:,.0f}" for e in sp],
            ["bytes touched per step (MB)"] + [f"{e['bytes'] / 1e6:.2f}" for e in sp]]
    r_rows = [[_label(impl, peer)] + [f"{e['ratios'][f'{impl}/{peer}']['median']:.2f}"
                                      if f"{impl}/{peer}" in e["ratios"] else "-" for e in sp]
              for _, impl, peer in RATIOS]
    scale = []
    first, last = sp[0], sp[-1]
    if len(sp) > 1:
        for k in keys:
            if k in first["timings"] and k in last["timings"]:
                scale.append([label[k], f"{last['timings'][k]['median'] / first['timings'][k]['median']:.1f}"])
    parts = [
        R.table(title + ": median us per step", header, info + t_rows, first_width=44),
        R.table("sparse: effective bandwidth over the bytes touched, GB/s", header, bw_rows,
                first_width=44),
        R.table("sparse: paired ratios (median over rounds)", header, r_rows, first_width=60),
    ]
    if scale:
        parts.append(R.table(
            f"sparse: time at n = {R.fmt_n(last['n'])} / time at n = {R.fmt_n(first['n'])} "
            f"({last['n'] // first['n']:,}x the rows, the same k)", ["implementation", "ratio"],
            scale, first_width=44))
    return "\n\n".join(parts)


def targets(results):
    sp = results.get("sparse")
    if not sp:
        return []
    out = []

    def worst(name, key, threshold, keep=lambda n: True, lower_is_better=False):
        cases = [(e["ratios"][key]["median"], R.fmt_n(e["n"])) for e in sp
                 if keep(e["n"]) and key in e["ratios"]]
        if not cases:
            out.append(dict(target=name, measured="not measured in this run", met=None))
            return
        v, n = max(cases) if lower_is_better else min(cases)
        met = v <= threshold if lower_is_better else v >= threshold
        out.append(dict(target=name, measured=f"worst {v:.2f} (n={n})", met=met, value=v))

    worst("sparse: adagrad_step_rows at least 3x faster than torch sparse Adagrad",
          "ada_rows/th_ada", 3.0)
    worst("sparse: adagrad_step_rows at least 50x faster than the dense step, n = 1e6",
          "ada_rows/ada_dense", 50.0, keep=lambda n: n == 10**6)
    # rms_lazy/rms_exact is "times faster" of lazy: exact's time over lazy's.
    worst("sparse: exact RMSProp at most 1.5x the time of lazy RMSProp", "rms_lazy/rms_exact",
          1.5, lower_is_better=True)
    first, last = sp[0], sp[-1]
    key = "ada:ada_rows"
    if len(sp) > 1 and key in first["timings"] and key in last["timings"]:
        v = last["timings"][key]["median"] / first["timings"][key]["median"]
        growth = last["n"] // first["n"]
        out.append(dict(
            target=f"sparse: cost grows with k, not n: adagrad_step_rows at n = "
                   f"{R.fmt_n(last['n'])} at most 10x its time at n = {R.fmt_n(first['n'])} "
                   f"({growth:,}x the rows)",
            measured=f"{v:.1f}x", met=v <= 10, value=v))
    return out

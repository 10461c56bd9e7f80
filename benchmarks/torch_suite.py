"""rmsprop_nb.torch against torch.optim on PyTorch models: optimizer step and training step.

Usage, from the repository root (or anywhere, with rmsprop_nb installed)::

    python benchmarks/torch_suite.py            # about 30 s (15 rounds)
    python benchmarks/torch_suite.py --quick    # about 12 s: 5 rounds, shorter batches

Three models, each trained by ``rmsprop_nb.torch.RMSprop`` / ``Adagrad`` and by
``torch.optim.RMSprop`` (foreach off and on) / ``torch.optim.Adagrad`` (foreach off, on, and
fused), float32, torch's defaults (``lr=1e-3``, RMSprop ``alpha=0.99, eps=1e-8``, Adagrad
``eps=1e-10``):

* ``digits``: scikit-learn's digits (8x8 images, 10 classes), an MLP 64-64-10 with ReLU,
  minibatches of 32 (4,810 parameters in 4 tensors);
* ``1e7``: an MLP 1000-5000-1000 (10,006,000 parameters) on random data, batches of 32;
* ``embedding``: ``nn.Embedding(100_000, 64, sparse=True)`` averaged over 20 tokens, then a
  linear layer: sparse gradients (COO) for the table, dense ones for the layer. Against
  ``torch.optim.Adagrad`` (foreach off: fused takes no sparse gradients, foreach steps them
  one by one too); ``torch.optim.RMSprop`` refuses them, so ``rmsprop_nb.torch.RMSprop`` is
  shown in its exact mode (the default) and its lazy one.

Two times per optimizer, each contender on its own copy of the model: ``step`` times
``optimizer.step()`` alone (gradients computed once, before), ``train`` a whole training step
(``zero_grad``, forward, loss, backward, ``step``). Contenders are timed in alternation
(``timing.py``): ratios are medians over rounds of the ratio within a round. The issue's targets
are evaluated at the end. Results go to ``--out`` (default ``benchmarks/results``) as
``torch.json`` and ``torch.rst`` (the tables for the docs' Benchmarks page).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_PROC_BIND", "true")
os.environ.setdefault("OMP_PLACES", "cores")

import argparse  # noqa: E402
import copy  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
try:
    import rmsprop_nb  # noqa: F401
except ImportError:  # a checkout without an install: use the package next to this folder
    sys.path.insert(0, str(HERE.parent))

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import rmsprop_nb.torch as rt  # noqa: E402

sys.path.insert(0, str(HERE))
import report as R  # noqa: E402
import timing as T  # noqa: E402

LR = 1e-3
BATCH = 32

# key -> (label, factory(params) -> optimizer)
OPTIMIZERS = {
    "rms_ours": ("rmsprop_nb.torch.RMSprop", lambda ps: rt.RMSprop(ps, lr=LR)),
    "rms_single": ("torch RMSprop, foreach=False",
                   lambda ps: torch.optim.RMSprop(ps, lr=LR, foreach=False)),
    "rms_foreach": ("torch RMSprop, foreach=True",
                    lambda ps: torch.optim.RMSprop(ps, lr=LR, foreach=True)),
    "ada_ours": ("rmsprop_nb.torch.Adagrad", lambda ps: rt.Adagrad(ps, lr=LR)),
    "ada_single": ("torch Adagrad, foreach=False",
                   lambda ps: torch.optim.Adagrad(ps, lr=LR, foreach=False)),
    "ada_foreach": ("torch Adagrad, foreach=True",
                    lambda ps: torch.optim.Adagrad(ps, lr=LR, foreach=True)),
    "ada_fused": ("torch Adagrad, fused=True",
                  lambda ps: torch.optim.Adagrad(ps, lr=LR, fused=True)),
    "rms_lazy": ("rmsprop_nb.torch.RMSprop, lazy=True",
                 lambda ps: rt.RMSprop(ps, lr=LR, lazy=True)),
}
DENSE_OPTIMIZERS = ("rms_ours", "rms_single", "rms_foreach", "ada_ours", "ada_single",
                    "ada_foreach", "ada_fused")
SPARSE_OPTIMIZERS = ("ada_ours", "ada_single", "rms_ours", "rms_lazy")

TARGETS = [
    # (case, ours, peers (the fastest of them, per round), at least, text)
    ("digits", "rms_ours", ("rms_single", "rms_foreach"), 3.0,
     "digits MLP: RMSprop step at least 3x faster than the faster torch RMSprop"),
    ("1e7", "rms_ours", ("rms_single", "rms_foreach"), 4.0,
     "1e7 parameters: RMSprop step at least 4x faster than the faster torch RMSprop"),
    ("digits", "ada_ours", ("ada_fused",), 1.0,
     "digits MLP: Adagrad step at least as fast as torch's fused Adagrad"),
    ("1e7", "ada_ours", ("ada_fused",), 1.0,
     "1e7 parameters: Adagrad step at least as fast as torch's fused Adagrad"),
    ("embedding", "ada_ours", ("ada_single",), 1.0,
     "sparse embedding: Adagrad step at least as fast as torch's Adagrad"),
]


# --------------------------------------------------------------------------------------------
# The models and their data.
# --------------------------------------------------------------------------------------------


def digits_case():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    batches = [(X[i:i + BATCH], y[i:i + BATCH]) for i in range(0, len(X) - BATCH + 1, BATCH)]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    return model, batches, torch.nn.functional.cross_entropy


def big_case():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1000, 5000), torch.nn.ReLU(),
                                torch.nn.Linear(5000, 1000))
    batches = [(torch.randn(BATCH, 1000), torch.randn(BATCH, 1000)) for _ in range(4)]
    return model, batches, torch.nn.functional.mse_loss


class Bag(torch.nn.Module):
    def __init__(self, vocab=100_000, dim=64, classes=10):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim, sparse=True)
        self.head = torch.nn.Linear(dim, classes)

    def forward(self, tokens):
        return self.head(self.embed(tokens).mean(1))


def embedding_case():
    torch.manual_seed(0)
    model = Bag()
    batches = [(torch.randint(0, 100_000, (BATCH, 20)), torch.randint(0, 10, (BATCH,)))
               for _ in range(8)]
    return model, batches, torch.nn.functional.cross_entropy


CASES = {"digits": digits_case, "1e7": big_case, "embedding": embedding_case}
CASE_TITLES = {
    "digits": "digits MLP 64-64-10, batch 32 (4,810 parameters)",
    "1e7": "MLP 1000-5000-1000, batch 32 (10,006,000 parameters)",
    "embedding": "Embedding(100000, 64, sparse=True) + Linear(64, 10), batch 32 x 20 tokens",
}


# --------------------------------------------------------------------------------------------
# Contenders.
# --------------------------------------------------------------------------------------------


class Trainer:
    """One optimizer on its own copy of the model, cycling through the batches."""

    def __init__(self, model, batches, loss_fn, factory):
        self.model = copy.deepcopy(model)
        self.opt = factory(self.model.parameters())
        self.batches, self.loss_fn, self.k = batches, loss_fn, 0
        self.train()  # every state exists before timing

    def train(self):
        X, y = self.batches[self.k % len(self.batches)]
        self.k += 1
        self.opt.zero_grad(set_to_none=True)
        self.loss_fn(self.model(X), y).backward()
        self.opt.step()


def contenders(case, keys, what):
    model, batches, loss_fn = CASES[case]()
    out = []
    for key in keys:
        label, factory = OPTIMIZERS[key]
        tr = Trainer(model, batches, loss_fn, factory)
        if what == "step":
            X, y = batches[0]
            tr.opt.zero_grad(set_to_none=True)
            tr.loss_fn(tr.model(X), y).backward()
            out.append(T.Contender(key, label, "opt.step()", dict(opt=tr.opt)))
        else:
            out.append(T.Contender(key, label, "tr.train()", dict(tr=tr)))
    return out


def time_case(case, keys, cfg, log):
    result = {}
    for what in ("step", "train"):
        log(f"{case}: {what}")
        group = contenders(case, keys, what)
        for c in group:
            T.calibrate(c, cfg["batch"])
        T.alternate(group, cfg["rounds"])
        result[what] = {c.key: dict(T.summary(c.times), label=c.label, times=c.times,
                                    reps=c.reps) for c in group}
        del group
    return result


def ratio(timings, ours, peers):
    return T.paired_ratio([timings[p]["times"] for p in peers], timings[ours]["times"])


# --------------------------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------------------------


def case_table(case, res):
    step, train = res["step"], res["train"]
    rows = []
    for key in step:
        s, t = step[key], train[key]
        rows.append([s["label"], f"{R.fmt_us(s['median'])} ±{s['spread'] / 2:.0%}",
                     f"{R.fmt_us(t['median'])} ±{t['spread'] / 2:.0%}"])
    title = f"{CASE_TITLES[case]}: median time, us"
    return R.table(title, ["optimizer", "optimizer step", "training step"], rows)


def ratio_table(case, res):
    rows = []
    for ours, peers, name in (
        ("rms_ours", ("rms_single", "rms_foreach"), "RMSprop vs the faster torch RMSprop"),
        ("ada_ours", ("ada_single", "ada_foreach", "ada_fused"),
         "Adagrad vs the fastest torch Adagrad"),
        ("ada_ours", ("ada_fused",), "Adagrad vs torch Adagrad fused"),
        ("ada_ours", ("ada_single",), "Adagrad vs torch Adagrad for-loop"),
        ("rms_ours", ("rms_lazy",), "RMSprop exact vs RMSprop lazy"),
    ):
        keys = set(res["step"])
        if ours not in keys or not set(peers) <= keys:
            continue
        if name.endswith("for-loop") and "ada_fused" in keys:
            continue  # shown for the sparse case only
        s, t = ratio(res["step"], ours, peers), ratio(res["train"], ours, peers)
        rows.append([name, f"{s['median']:.2f} ({s['p10']:.2f}-{s['p90']:.2f})",
                     f"{t['median']:.2f} ({t['p10']:.2f}-{t['p90']:.2f})"])
    title = f"{case}: how many times faster (median of paired ratios, 10-90%)"
    return R.table(title, ["rmsprop_nb.torch", "optimizer step", "training step"], rows)


def evaluate(results):
    out = []
    for case, ours, peers, least, text in TARGETS:
        res = results["cases"].get(case)
        if not res or ours not in res["step"] or not set(peers) <= set(res["step"]):
            out.append(dict(target=text, measured="not measured in this run", met=None))
            continue
        r = ratio(res["step"], ours, peers)
        out.append(dict(target=text, measured=f"{r['median']:.2f}x", met=r["median"] >= least,
                        value=r["median"]))
    return out


def render(results):
    meta = results["meta"]
    parts = [
        f"rmsprop_nb.torch vs torch.optim | {meta['cpu']} | PyTorch {meta['torch']} "
        f"({meta['threads']} threads) | Numba {meta['numba']} | {meta['seconds']} s\n"
        f"command: {meta['command']}"
    ]
    for case, res in results["cases"].items():
        parts += [case_table(case, res), ratio_table(case, res)]
    parts.append(R.targets_table(results["targets"]))
    return "\n\n".join(parts)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds, shorter batches")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {list(CASES)}")
    p.add_argument("--rounds", type=int, help="alternation rounds (default 15, quick 5)")
    p.add_argument("--threads", type=int, help="Numba and PyTorch threads (default: Numba's)")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for torch.json/.rst")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = dict(rounds=5, batch=0.01) if args.quick else dict(rounds=15, batch=0.025)
    if args.rounds:
        cfg["rounds"] = args.rounds
    if args.threads:
        numba.set_num_threads(args.threads)
    threads = numba.get_num_threads()
    torch.set_num_threads(threads)
    started = time.perf_counter()
    results = {"cases": {}}

    def log(text):
        print(f"[{time.perf_counter() - started:6.1f} s] {text}", file=sys.stderr, flush=True)

    for case in args.cases.split(","):
        keys = SPARSE_OPTIMIZERS if case == "embedding" else DENSE_OPTIMIZERS
        results["cases"][case] = time_case(case, list(keys), cfg, log)
    results["meta"] = dict(
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        command=" ".join([Path(sys.executable).name] + sys.argv), config=cfg,
        seconds=round(time.perf_counter() - started, 1), cpu=R.machine(), threads=threads,
        torch=torch.__version__, numba=numba.__version__, numpy=np.__version__,
        load=[round(v, 2) for v in os.getloadavg()],
    )
    results["targets"] = evaluate(results)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "torch.json").write_text(json.dumps(results, indent=1))
    text = render(results)
    (out / "torch.rst").write_text(R.rst(text), encoding="utf-8")
    print(text)
    print(f"\nresults: {out / 'torch.json'}\ntables for the docs: {out / 'torch.rst'}")
    return results


if __name__ == "__main__":
    main()

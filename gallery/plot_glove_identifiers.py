r"""
Word vectors of Python's own identifiers, with sparse AdaGrad
=============================================================

GloVe (Pennington, Socher & Manning, 2014) learns a vector per word from how often words
occur near each other, and trains with AdaGrad: each co-occurrence updates one row of a word
table and one row of a context table, so a minibatch touches a few hundred rows of tables
with thousands. :func:`~rmsprop_nb.kernels.adagrad_step_rows` updates exactly those rows.

The text needs no download: it is the Python standard library's own source, which every
Python installation carries. Its "words" are the parts of its identifiers (``read_bytes`` is
*read* and *bytes*, ``HTTPConnection`` is *http* and *connection*). The whole training loop is
one :func:`numba.njit` function that calls the kernel; it runs in a few seconds. (The
standard library differs a little between Python versions, so your lists may too.)

Needs matplotlib: ``python -m pip install ".[plot]"`` (README's first command).
"""

# %%
# The corpus: identifiers split into words
# ----------------------------------------
# Every module at the top of the standard library; keywords, ``self`` and ``cls`` left out.
import keyword
import re
import sysconfig
import time
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from numba import njit

from rmsprop_nb.kernels import adagrad_step_rows

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# the parts of snake_case and CamelCase names
PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
LEFT_OUT = set(keyword.kwlist) | {"self", "cls"}


def words(text):
    parts = (p.lower() for name in IDENTIFIER.findall(text)
             for p in PART.findall(name))
    return [w for w in parts if len(w) > 1 and w not in LEFT_OUT]


stdlib = Path(sysconfig.get_paths()["stdlib"])
files = sorted(stdlib.glob("*.py"))
documents = [words(f.read_text(encoding="utf-8", errors="replace"))
             for f in files]
V = 2000  # the most frequent words
counts = Counter(w for d in documents for w in d)
vocab = [w for w, _ in counts.most_common(V)]
index = {w: i for i, w in enumerate(vocab)}
total = sum(map(len, documents))
print(f"{len(files)} modules, {total:,} words, vocabulary of {V}")

# %%
# Co-occurrences
# --------------
# Two words co-occur when at most 6 words apart in a module, weighted by 1/distance (the
# words outside the vocabulary are dropped first, as GloVe does). GloVe fits
# :math:`w_i^\top \tilde w_j + b_i + \tilde b_j \approx \log X_{ij}` for every pair with
# :math:`X_{ij} > 0`, each pair weighted by :math:`f(X_{ij}) = \min(1, (X_{ij}/100)^{3/4})`.
window = 6
# the words of every module, then -1s: a gap between modules
ids = np.concatenate([
    np.array([index[w] for w in d if w in index] + [-1] * window)
    for d in documents
])
X = np.zeros(V * V)
for k in range(1, window + 1):
    a, b = ids[:-k], ids[k:]
    near = (a >= 0) & (b >= 0)
    X += np.bincount(a[near] * V + b[near], minlength=V * V) / k
X += X.reshape(V, V).T.ravel()  # both directions
pairs = np.flatnonzero(X)
I, J = pairs // V, pairs % V
log_x = np.log(X[pairs])
f_x = np.minimum(1.0, (X[pairs] / 100.0) ** 0.75)
print(f"{pairs.size:,} word pairs co-occur")

# %%
# The training loop, compiled, with the kernel inside
# ---------------------------------------------------
# Four tables: the word vectors ``W`` and context vectors ``C`` (:math:`V \times 32`) and their
# biases (1-D tables). A minibatch of 256 pairs gives one gradient row per pair for the row
# of its word and of its context: ``rows`` name them, repeats included, and the kernel sums
# the repeats of a row before its update (the minibatch gradient; ``duplicates="sequential"``
# would apply them one after another, as GloVe's own C code does pair by pair). AdaGrad's
# sums start at 1, as in GloVe.


@njit
def train(I, J, log_x, f_x, W, C, b, c, sW, sC, sb, sc, epochs,
          batch, lr, seed):
    np.random.seed(seed)
    d = W.shape[1]
    losses = np.empty(epochs)
    gW, gC = np.empty((batch, d)), np.empty((batch, d))
    gb = np.empty(batch)
    for epoch in range(epochs):
        order = np.random.permutation(I.size)
        total = 0.0
        for lo in range(0, I.size, batch):
            chosen = order[lo:lo + batch]
            m = chosen.size
            rows, cols = I[chosen], J[chosen]
            # the gradient of 0.5 f (w.c + b_i + c_j - log X)^2
            for t in range(m):
                p = chosen[t]
                i, j = rows[t], cols[t]
                diff = b[i] + c[j] - log_x[p]
                for k in range(d):
                    diff += W[i, k] * C[j, k]
                total += 0.5 * f_x[p] * diff * diff
                fd = f_x[p] * diff
                for k in range(d):
                    gW[t, k] = fd * C[j, k]
                    gC[t, k] = fd * W[i, k]
                gb[t] = fd
            adagrad_step_rows(W, rows, gW[:m], sW, lr, 1e-8)
            adagrad_step_rows(C, cols, gC[:m], sC, lr, 1e-8)
            adagrad_step_rows(b, rows, gb[:m], sb, lr, 1e-8)
            adagrad_step_rows(c, cols, gb[:m], sc, lr, 1e-8)
        losses[epoch] = total / I.size
    return losses


rng = np.random.default_rng(0)
d, epochs, batch, lr = 32, 15, 256, 0.05
W, C = ((rng.random((V, d)) - 0.5) / d for _ in range(2))
b, c = np.zeros(V), np.zeros(V)
sums = [np.ones_like(a) for a in (W, C, b, c)]
start = time.perf_counter()
losses = train(I, J, log_x, f_x, W, C, b, c, *sums, epochs, batch,
               lr, 0)
seconds = time.perf_counter() - start
print(f"{epochs} epochs of {pairs.size // batch + 1:,} minibatches "
      f"in {seconds:.1f} s (the first call compiles)")
print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")

# %%
# What a step touches
# -------------------
# A minibatch names at most 256 rows of each 2000-row table, and fewer distinct ones: the
# kernel reads and writes those rows only, where a dense AdaGrad step (a gradient of zeros
# elsewhere: the same result) would walk every row.
samples = [rng.integers(0, I.size, batch) for _ in range(200)]
distinct = np.mean([np.unique(I[s]).size for s in samples])
print(f"distinct word rows per minibatch: {distinct:.0f} of {V}")

# %%
# Nearest neighbours
# ------------------
# GloVe's vector of a word is :math:`w_i + \tilde w_i`; neighbours by cosine similarity.
vectors = W + C
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)


def neighbours(word, count=6):
    similarity = vectors @ vectors[index[word]]
    return [vocab[k] for k in np.argsort(-similarity)[1:count + 1]]


for word in ["encode", "read", "socket", "lock", "path", "year",
             "error", "test"]:
    print(f"{word:>8}: {', '.join(neighbours(word))}")

# %%
# Opposites are neighbours
# ------------------------
# Words used in the same places get similar vectors, and few words share places more than
# opposites do. Left: the loss per epoch. Right: for pairs of opposite words, where the second
# ranks among the first one's neighbours (1: its nearest; a word picked at random ranks about
# 1000th of 2000).
opposites = [
    ("encode", "decode"), ("start", "end"), ("host", "port"),
    ("input", "output"), ("left", "right"), ("true", "false"),
    ("head", "tail"), ("min", "max"), ("first", "last"),
    ("open", "close"), ("key", "value"), ("client", "server"),
    ("read", "write"), ("get", "set"), ("acquire", "release"),
]
opposites = [(a, b) for a, b in opposites
             if a in index and b in index]
similarity = vectors @ vectors.T


def rank(a, b):
    """How many words are nearer to a than b is (a itself: 0)."""
    near_a = similarity[index[a]]
    return int((near_a > near_a[index[b]]).sum())


ranks = [rank(a, b) for a, b in opposites]

fig, (ax_loss, ax_rank) = plt.subplots(1, 2, figsize=(10, 4.4),
                                       layout="constrained")
ax_loss.plot(np.arange(1, epochs + 1), losses, "o-")
ax_loss.set(xlabel="epoch",
            ylabel="weighted squared error per pair",
            title="GloVe loss, AdaGrad on the minibatch's rows")
y = np.arange(len(opposites))[::-1]
ax_rank.barh(y, ranks, color="C1")
ax_rank.axvline(V / 2, color="gray", ls="--", lw=1)
ax_rank.text(V / 2, y[0], "a random word ", color="gray",
             ha="right", va="center", fontsize=9)
ax_rank.set_xscale("log")
labels = [f"{a} → {b}" for a, b in opposites]
ax_rank.set(yticks=y, yticklabels=labels, xlim=(0.8, 2 * V),
            xlabel="rank among the first word's neighbours",
            title="opposites among the nearest neighbours")
plt.show()

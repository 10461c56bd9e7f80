"""Timing in alternation: every contender of a group is timed once per round, round after round.

On a shared machine the memory bandwidth drifts by tens of percent within seconds. Timing A for
ten seconds and then B for ten seconds turns that drift into a false speed difference; timing
A, B, C, A, B, C, ... in short batches exposes every contender to the same drift, and the ratio
of two contenders *within one round* (a paired ratio) stays stable even when the absolute times
do not. That is why ratios are computed per round and then summarised by their median.

A contender is a Python statement plus the names it uses, timed with :mod:`timeit` (which
compiles the loop around the statement and switches the garbage collector off), so nothing but
the statement itself is measured: no lambda or wrapper call is added to a 1 us step.
"""

from __future__ import annotations

import dataclasses
import statistics
import timeit
from typing import Callable


@dataclasses.dataclass
class Contender:
    """One implementation of one step, ready to time.

    ``stmt`` is run with ``namespace`` as its globals. ``passes`` is the number of array
    passes (reads + writes of an ``n``-element array) the step needs at the least, used for
    the effective bandwidth: a NumPy version that makes temporaries moves more bytes than that,
    but gets no credit for them.
    """

    key: str
    label: str
    stmt: str
    namespace: dict
    passes: int = 5
    times: list = dataclasses.field(default_factory=list)
    reps: int = 1

    def run(self, reps):
        return timeit.Timer(self.stmt, globals=self.namespace).timeit(reps) / reps


def calibrate(contender, batch_seconds, max_reps=200_000):
    """Warm up (JIT, lazy state) and choose how many calls make one batch of ~batch_seconds."""
    contender.run(1)  # compiles / allocates torch state: never timed
    reps = 1
    while True:
        t = contender.run(reps) * reps
        if t >= batch_seconds / 4 or reps >= max_reps:
            break
        reps *= 10 if t < batch_seconds / 100 else 2
    per_call = t / reps
    contender.reps = max(1, min(max_reps, round(batch_seconds / max(per_call, 1e-9))))


def alternate(contenders, rounds, tick: Callable[[], None] = lambda: None):
    """Time every contender once per round, rotating the order so no one always goes first."""
    k = len(contenders)
    for r in range(rounds):
        for j in range(k):
            c = contenders[(r + j) % k]
            c.times.append(c.run(c.reps))
        tick()


def summary(times):
    """Median, the 10th/90th percentiles and the relative spread of a list of times."""
    s = sorted(times)
    med = statistics.median(s)
    lo, hi = quantile(s, 0.1), quantile(s, 0.9)
    return dict(median=med, p10=lo, p90=hi, min=s[0], spread=(hi - lo) / med if med else 0.0)


def paired_ratio(num, den):
    """Median over rounds of ``num[r] / den[r]``, with the 10th/90th percentiles.

    ``num`` and ``den`` are lists of times from the same rounds; a list of lists for ``num``
    means "the fastest of these in each round" (e.g. the faster torch variant).
    """
    if num and isinstance(num[0], list):
        num = [min(ts) for ts in zip(*num)]
    r = sorted(a / b for a, b in zip(num, den))
    return dict(median=statistics.median(r), p10=quantile(r, 0.1), p90=quantile(r, 0.9))


def quantile(sorted_values, q):
    """Linear-interpolation quantile of an already sorted list."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = q * (len(sorted_values) - 1)
    i = int(pos)
    j = min(i + 1, len(sorted_values) - 1)
    return sorted_values[i] + (sorted_values[j] - sorted_values[i]) * (pos - i)

"""Measure what the key/value cache saves: the time of one decoder step, cached vs recomputed.

``uncached_step`` re-runs the decoder over the whole prefix, so a step at prefix length n
costs about n token passes. ``cached_step`` feeds only the newest token and reads the keys and
values of the others from the cache, so a step costs about the same at any length. Each length
is timed on a fresh cache that already holds the prefix (filled untimed, in one call).
Wall-clock times on a shared CPU are noisy: each is taken ``repeats`` times, the fastest kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from s2t_edu.decoding.loop import Memory, cached_step, new_cache, uncached_step


@dataclass
class StepTimes:
    """Seconds for one step at each prefix length, and the largest logit difference seen."""

    lengths: list[int]  # tokens in the prefix, start token included
    cached: list[float]
    uncached: list[float]
    max_logit_difference: float


def _timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


@torch.no_grad()
def time_steps(
    model, memory: Memory, tokens: torch.Tensor, lengths: list[int], repeats: int = 3
) -> StepTimes:
    """For each length n: time the step that reads ``tokens[:, :n]``, with and without a cache."""
    cached, uncached, worst = [], [], 0.0
    for n in lengths:
        prefix, best_fast, best_slow = tokens[:, :n], float("inf"), float("inf")
        for _ in range(repeats):
            cache = new_cache(model)
            if n > 1:
                cached_step(model, prefix[:, :-1], memory, cache)  # fill the cache, untimed
            fast, seconds_fast = _timed(cached_step, model, prefix, memory, cache)
            slow, seconds_slow = _timed(uncached_step, model, prefix, memory)
            best_fast, best_slow = min(best_fast, seconds_fast), min(best_slow, seconds_slow)
            worst = max(worst, float((fast - slow).abs().max()))
        cached.append(best_fast)
        uncached.append(best_slow)
    return StepTimes(list(lengths), cached, uncached, worst)


def plot_step_times(times: StepTimes) -> Figure:
    """Left: milliseconds per step vs prefix length, both ways. Right: how many times faster."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.3))
    for values, label, colour in (
        (times.uncached, "no cache: the whole prefix again", "#C44E52"),
        (times.cached, "KV cache: the newest token only", "#4C72B0"),
    ):
        left.plot(times.lengths, [1000 * v for v in values], "o-", color=colour, label=label)
    left.set_xlabel("tokens in the prefix")
    left.set_ylabel("ms for one step")
    left.set_ylim(bottom=0)
    left.set_title("one decoder step (fastest of a few runs)", fontsize=10)
    left.legend(fontsize=8)
    ratio = [u / c for u, c in zip(times.uncached, times.cached, strict=True)]
    right.plot(times.lengths, ratio, "o-", color="#55A868")
    right.axhline(1.0, color="#BBBBBB", lw=0.8)
    right.set_xlabel("tokens in the prefix")
    right.set_ylabel("uncached / cached")
    right.set_ylim(bottom=0)
    right.set_title("how many times faster the cached step is", fontsize=10)
    fig.tight_layout()
    return fig

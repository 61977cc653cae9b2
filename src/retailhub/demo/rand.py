"""Deterministic randomness for the demo generator.

Two kinds of randomness are used, for two reasons:

* Small, whole-table decisions (the order plan, the customer master, the defect plan) use a
  NumPy ``Generator`` seeded from ``SeedSequence([seed, stream, ...])``. Each table gets its
  own stream, so changing one table (say the defect rate) never shifts the draws of another.
* Per-line decisions of the big datasets (which product a line sells, its quantity) use a
  counter-based hash of ``(seed, stream, global line index)``. The value of line ``i`` is then
  independent of how the lines are cut into chunks, so the output bytes do not depend on the
  chunk size, and the lines of any earlier order can be regenerated on demand (cancellations
  copy them) without keeping them in memory.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


class Stream(IntEnum):
    """One id per independent random stream; never renumber (it would change every output)."""

    CUSTOMERS = 1
    PRODUCTS = 2
    SS_PRODUCTS = 3
    ORDERS = 10
    LINE_PRODUCT = 11
    LINE_QTY = 12
    LINE_DEDUPE = 13  # + iteration number, keep 13..29 free
    OR_DEFECTS = 30
    OR_DEFECT_VALUE = 31
    SS_ORDERS = 40
    SS_LINE_PRODUCT = 41
    SS_LINE_QTY = 42
    SS_LINE_DISCOUNT = 43
    SS_LINE_DEDUPE = 44  # + iteration number, keep 44..59 free
    CATALOG = 60
    CATALOG_DEFECTS = 61
    BEHAVIOUR = 70
    BEHAVIOUR_DEFECTS = 71


def generator(seed: int, *stream: int) -> np.random.Generator:
    """A NumPy generator for one named stream of one seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, *[int(s) for s in stream]]))


def _splitmix_scalar(x: int) -> int:
    z = (x + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def hash_u64(seed: int, stream: int, index: np.ndarray) -> np.ndarray:
    """SplitMix64 of ``index`` under a key derived from ``(seed, stream)``; vectorised."""
    key = _splitmix_scalar(_splitmix_scalar(seed & _MASK64) ^ (int(stream) * 0x100000001B3))
    z = np.asarray(index).astype(np.uint64, copy=True)
    z *= np.uint64(_GOLDEN)
    z += np.uint64(key)
    z ^= z >> np.uint64(30)
    z *= np.uint64(_MIX1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(_MIX2)
    z ^= z >> np.uint64(31)
    return z


def hash_uniform(seed: int, stream: int, index: np.ndarray) -> np.ndarray:
    """Uniform floats in [0, 1), one per index, reproducible for any subset of indices."""
    return (hash_u64(seed, stream, index) >> np.uint64(11)).astype(np.float64) * (2.0**-53)


def hash_int(seed: int, stream: int, index: np.ndarray, high: int) -> np.ndarray:
    """Integers in [0, high), one per index (tiny modulo bias is irrelevant here)."""
    return (hash_u64(seed, stream, index) % np.uint64(high)).astype(np.int64)


def pick_weighted(cum_weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling: map uniforms to indices with the given cumulative weights."""
    idx = np.searchsorted(cum_weights, u * cum_weights[-1], side="right")
    return np.minimum(idx, len(cum_weights) - 1)


class Picker:
    """``pick_weighted`` for one fixed weight table, several times faster on big inputs.

    A guide table maps each of ``16 * n`` equal cells of [0, 1) to the first index that can
    be hit from that cell; a short vectorised walk finishes the search. The result is exactly
    ``pick_weighted(cum_weights, u)`` (same floating-point comparisons), only without a
    cache-unfriendly binary search per draw.
    """

    def __init__(self, weights: np.ndarray) -> None:
        self.cum = np.cumsum(np.asarray(weights, dtype=np.float64))
        self.total = self.cum[-1]
        self.cells = 16 * len(self.cum)
        edges = np.arange(self.cells, dtype=np.float64) / self.cells * self.total
        self.guide = np.searchsorted(self.cum, edges, side="right")
        self.last = len(self.cum) - 1
        self._cum_ext = np.append(self.cum, np.inf)

    def __call__(self, u: np.ndarray) -> np.ndarray:
        x = u * self.total
        cell = np.minimum((u * self.cells).astype(np.int64), self.cells - 1)
        idx = self.guide[cell]
        todo = np.flatnonzero(self._cum_ext[idx] <= x)
        while len(todo):
            idx[todo] += 1
            todo = todo[self._cum_ext[idx[todo]] <= x[todo]]
        return np.minimum(idx, self.last)


def pareto_weights(rng: np.random.Generator, n: int, alpha: float) -> np.ndarray:
    """Pareto popularity weights, shuffled over the ``n`` items.

    Quantiles of the Pareto law are used instead of random draws so the shape (a few items
    carry most of the volume) holds even for small ``n``; the shuffle decides who is popular.
    """
    ranks = (np.arange(n) + 0.5) / n
    weights = ranks ** (-1.0 / alpha)
    return rng.permutation(weights)

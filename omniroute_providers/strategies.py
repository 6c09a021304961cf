"""Balancing strategies: pure functions that order candidates (combo targets, or one provider's accounts).

A strategy only decides the order of first choice; the routing loop then walks that order, skipping what is
unhealthy, so every strategy still falls back through all candidates. Each function is O(n) in the number of
candidates (p2c and weighted draw from the given RNG) and touches no disk.

    priority        configured order (fill-first: always the first healthy one)
    round-robin     rotate the starting point, staying on one candidate for `sticky` requests
    weighted        draw the first in proportion to weight; the rest by weight, heaviest first
    random          shuffle
    least-used      fewest recent requests first
    p2c             power of two choices: of two random candidates, the one with fewer requests in flight
                    (then lower recent latency) goes first
    cost-optimized  cheapest catalog price first (unknown price last)
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

STRATEGIES = ("priority", "round-robin", "weighted", "random", "least-used", "p2c", "cost-optimized")
ALIASES = {
    "fill-first": "priority",
    "roundrobin": "round-robin",
    "cost": "cost-optimized",
    "power-of-two": "p2c",
}


@dataclass(frozen=True, slots=True)
class Candidate:
    weight: float = 1.0
    cost: float | None = None  # $ per 1M tokens (blended input+output), None = unknown
    uses: int = 0  # recent requests
    in_flight: int = 0
    latency_ms: float = 0.0  # recent (EWMA) latency


class RoundRobin:
    """The rotation counter of one combo (or one provider's accounts)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


def normalize(strategy: str) -> str:
    s = strategy.strip().lower()
    s = ALIASES.get(s, s)
    if s not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
    return s


def order(
    strategy: str,
    candidates: Sequence[Candidate],
    *,
    rng: random.Random,
    rr: RoundRobin | None = None,
    sticky: int = 1,
) -> list[int]:
    """Indices of `candidates` in the order they should be tried."""
    n = len(candidates)
    idx = list(range(n))
    if n < 2 or strategy == "priority":
        return idx
    if strategy == "round-robin":
        counter = rr or RoundRobin()
        start = (counter.count // max(1, sticky)) % n
        counter.count += 1
        return idx[start:] + idx[:start]
    if strategy == "random":
        rng.shuffle(idx)
        return idx
    if strategy == "weighted":
        weights = [max(0.0, c.weight) for c in candidates]
        total = sum(weights)
        first = rng.choices(idx, weights=weights)[0] if total > 0 else rng.randrange(n)
        rest = sorted((i for i in idx if i != first), key=lambda i: -weights[i])
        return [first, *rest]
    if strategy == "least-used":
        return sorted(idx, key=lambda i: candidates[i].uses)
    if strategy == "cost-optimized":
        return sorted(idx, key=lambda i: _cost(candidates[i]))
    if strategy == "p2c":
        a, b = rng.sample(idx, 2)
        ca, cb = candidates[a], candidates[b]
        best = a if (ca.in_flight, ca.latency_ms) <= (cb.in_flight, cb.latency_ms) else b
        return [best, *(i for i in idx if i != best)]
    return idx


def _cost(c: Candidate) -> float:
    return math.inf if c.cost is None else c.cost

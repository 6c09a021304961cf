"""The runtime side of routing: which target and account to try next, and what each outcome teaches us.

It owns the mutable state the pure modules describe: health (breakers, cooldowns, limiters, stats), quotas,
budgets, round-robin counters, the retry budget. The pipeline asks it for an ordered list of targets and, per
target, the accounts worth trying now; it reports every attempt back. Every question is answered from memory.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from omniroute import JsonObj, Store, dumps_str, kv_get, kv_set, loads
from omniroute_providers.health import HealthBook, HealthConfig
from omniroute_providers.quotas import BudgetBook, QuotaBook
from omniroute_providers.registry import Account, Registry
from omniroute_providers.routing import Plan, Target, order
from omniroute_providers.strategies import Candidate, RoundRobin
from omniroute_providers.strategies import order as strategy_order

log = logging.getLogger("omniroute.balancer")

RETRY_TOKENS_PER_REQUEST = 0.2  # retries may add at most ~20% to upstream traffic ...
RETRY_TOKENS_MIN = 3.0  # ... but a quiet gateway may always retry a few
RETRY_TOKENS_MAX = 20.0
PERSIST_DEBOUNCE_S = 1.0


@dataclass(slots=True)
class BalancerConfig:
    account_strategy: str = "priority"
    retries_per_account: int = 1
    wait_for_cooldown_s: float = 30.0
    rate_limit_wait_s: float = 10.0
    health: HealthConfig | None = None
    quota_reset_hour: int = 0


class RetryBudget:
    """Token bucket: each request earns a fifth of a retry, each retry spends one (Envoy-style budget:
    retries cannot snowball into a storm when a provider is failing for everyone)."""

    def __init__(self) -> None:
        self.tokens = RETRY_TOKENS_MIN

    def earn(self) -> None:
        self.tokens = min(RETRY_TOKENS_MAX, self.tokens + RETRY_TOKENS_PER_REQUEST)

    def spend(self) -> bool:
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def wall_clock() -> Callable[[], float]:
    """A clock in wall-clock seconds that advances with trio's clock, so trio's MockClock drives health and
    quotas in tests while persisted deadlines still mean wall time. The offset is fixed at the first call
    made inside a trio run; outside one it is plain time.time()."""
    offset: float | None = None

    def now() -> float:
        nonlocal offset
        try:
            trio_now = trio.current_time()
        except RuntimeError:
            return time.time()
        if offset is None:
            offset = time.time() - trio_now
        return offset + trio_now

    return now


class Balancer:
    def __init__(
        self, clock: Callable[[], float], config: BalancerConfig | None = None, seed: int | None = None
    ) -> None:
        self.clock = clock
        self.config = config or BalancerConfig()
        self.health = HealthBook(clock, self.config.health)
        self.quotas = QuotaBook(clock, self.config.quota_reset_hour)
        self.budgets = BudgetBook(clock, self.config.quota_reset_hour)
        self.rng = random.Random(seed)  # noqa: S311 - ordering, not secrets
        self.rotations: dict[str, RoundRobin] = {}
        self.retry_budget = RetryBudget()
        self._store: Store | None = None
        self._dirty = False

    # persistence -----------------------------------------------------------------------------------------

    def attach(self, store: Store, registry: Registry) -> None:
        """Restore persisted health, rebuild quota and budget counters from usage, persist future changes."""
        self._store = store

        def load(db: object) -> str | None:
            self.quotas.load(db)  # type: ignore[arg-type]
            self.budgets.load(db)  # type: ignore[arg-type]
            return kv_get(db, "health_state")  # type: ignore[arg-type]

        raw = store.read(load)
        if raw:
            try:
                self.health.restore(loads(raw))
            except Exception:
                log.exception("stored health state is unreadable; starting fresh")
        self.budgets.configure(registry.budgets)
        self.health.on_change = self._mark_dirty

    def _mark_dirty(self) -> None:
        self._dirty = True

    async def persist_loop(self) -> None:
        """Write the health snapshot at most once a second, only when it changed (off the request path)."""
        while True:
            await trio.sleep(PERSIST_DEBOUNCE_S)
            self.persist()

    def persist(self) -> None:
        if self._dirty and self._store is not None:
            self._dirty = False
            snapshot = dumps_str(self.health.snapshot())
            self._store.submit(lambda db: kv_set(db, "health_state", snapshot))

    def configure(self, registry: Registry) -> None:
        self.budgets.configure(registry.budgets)

    # ordering --------------------------------------------------------------------------------------------

    def _candidate(self, registry: Registry, target: Target) -> Candidate:
        uses = in_flight = 0
        latency = 0.0
        for a in target.accounts:
            st = self.health.stats.get(a.id)
            if st is not None:
                uses += len(st.recent)
                in_flight += st.in_flight
                latency = st.ewma_ms if not latency else min(latency, st.ewma_ms or latency)
        price = registry.price(target.provider.id, target.model)
        cost = None if price is None else price.input + price.output
        return Candidate(cost=cost, uses=uses, in_flight=in_flight, latency_ms=latency)

    def order_targets(self, registry: Registry, plan: Plan) -> list[Target]:
        return order(plan, lambda t: self._candidate(registry, t), self.rng, self.rotations)

    def order_accounts(self, registry: Registry, target: Target) -> list[Account]:
        accounts = target.accounts
        strategy = self.config.account_strategy
        if strategy == "priority" or len(accounts) < 2:
            return list(accounts)
        cands = []
        for a in accounts:
            st = self.health.stats.get(a.id)
            cands.append(
                Candidate(
                    weight=_weight(a),
                    cost=float(a.priority),  # one provider's accounts cost the same: cheapest = first in line
                    uses=len(st.recent) if st else 0,
                    in_flight=st.in_flight if st else 0,
                    latency_ms=st.ewma_ms if st else 0.0,
                )
            )
        rr = self.rotations.setdefault(f"accounts:{target.provider.id}", RoundRobin())
        return [accounts[i] for i in strategy_order(strategy, cands, rng=self.rng, rr=rr)]

    def blocked_until(self, target: Target, account: Account) -> float | None:
        """Why not now: cooldown, open breaker or spent quota -> the time it ends; None = go."""
        until = self.health.account_blocked(account.id, target.provider.id, target.model)
        quota = self.quotas.exhausted_until(account.id, account.limits)
        if quota is not None:
            until = max(until or 0.0, quota)
        return until

    # views -----------------------------------------------------------------------------------------------

    def health_view(self, registry: Registry) -> list[JsonObj]:
        now = self.clock()
        out = []
        for provider_id, accounts in registry.accounts.items():
            breaker = self.health.provider_breakers.get(provider_id)
            out.append(
                {
                    "id": provider_id,
                    "breaker": breaker.view(now)
                    if breaker
                    else {"state": "closed", "failures": 0, "opened_until": None},
                    "accounts": [
                        {"id": a.id, "name": a.name, "enabled": a.enabled, **self.health.account_view(a.id)}
                        for a in accounts
                    ],
                }
            )
        return out

    def quota_view(self, registry: Registry) -> list[JsonObj]:
        return [
            {
                "id": a.id,
                "provider": a.provider,
                "name": a.name,
                "exhausted_until": self.quotas.exhausted_until(a.id, a.limits),
                "windows": self.quotas.view(a.id, a.limits),
                "reported": self.quotas.reported.get(a.id, {}),
            }
            for accounts in registry.accounts.values()
            for a in accounts
        ]


def _weight(account: Account) -> float:
    w = account.limits.get("weight", 1)
    return float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 else 1.0

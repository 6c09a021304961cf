"""Health of providers and accounts: circuit breakers, cooldowns, rate limiters and latency statistics.

Small state machines driven by an injected clock (`now` in wall-clock seconds, so persisted deadlines mean
the same thing after a restart). Nothing here does I/O except `AccountLimiter.acquire`, which waits (bounded)
for a slot. The routing loop asks `HealthBook` whether a target or account may be tried, and reports every
outcome back; `snapshot()`/`restore()` move the persistent part (breakers, cooldowns) to and from the store.

Failure classes (kernel vocabulary) and what they do here:
    rate_limit   cooldown on the account for the upstream's hint, else an exponential schedule; never
                 counts towards a breaker (a busy provider is not a broken one)
    quota        cooldown on the account until the hinted reset, else QUOTA_COOLDOWN_S
    credential   cooldown on the account for CREDENTIAL_COOLDOWN_S (cleared when the account is edited)
    model_access cooldown on the (provider, model) pair for MODEL_COOLDOWN_S
    transient    counts towards the account x model breaker and the provider breaker
    unknown      same as transient
    caller_fault nothing (the request was wrong, not the provider)
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from omniroute import GatewayError, JsonObj

if TYPE_CHECKING:
    from omniroute_providers.routing import Target

Clock = Callable[[], float]

RATE_LIMIT_BASE_S = 2.0  # first cooldown after a 429 without a hint; doubles per consecutive 429
RATE_LIMIT_MAX_S = 300.0  # and stops growing here
QUOTA_COOLDOWN_S = 3600.0  # "insufficient quota" without a reset hint: try again in an hour
CREDENTIAL_COOLDOWN_S = 24 * 3600.0  # a rejected key stays out until someone fixes it (edit clears it)
MODEL_COOLDOWN_S = 600.0  # a provider that said "no such model" is not asked again for 10 minutes
MAX_HINT_S = 7 * 24 * 3600.0  # an absurd reset hint is clamped

BREAKER_FAILURES = 5  # failures within the window that open a breaker
BREAKER_WINDOW_S = 30.0
BREAKER_OPEN_S = 30.0  # how long an open breaker stays open before letting one probe through
BREAKER_MAX_OPEN_S = 600.0  # reopening after a failed probe doubles the open time up to this

PROBE_WAIT_S = 0.25  # while a half-open probe is out, others check back this often
LATENCY_SAMPLES = 200  # recent requests kept per account for percentiles and success rate


# ----------------------------------------------------------------------------------------------------------
# circuit breaker
# ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class BreakerState:
    state: str = "closed"  # closed | open | half-open
    failures: list[float] = field(default_factory=list)  # times of recent counted failures
    opened_until: float = 0.0
    open_s: float = BREAKER_OPEN_S
    probing: bool = False  # a half-open probe is in flight (single flight: everyone else waits it out)


class Breaker:
    """closed -> open after `threshold` failures within `window_s`; open -> half-open when `open_s` has
    passed, letting exactly one probe through; the probe's success closes it, its failure reopens it for
    twice as long (up to BREAKER_MAX_OPEN_S)."""

    def __init__(
        self,
        threshold: int = BREAKER_FAILURES,
        window_s: float = BREAKER_WINDOW_S,
        open_s: float = BREAKER_OPEN_S,
        state: BreakerState | None = None,
    ) -> None:
        self.threshold = threshold
        self.window_s = window_s
        self.base_open_s = open_s
        self.s = state or BreakerState(open_s=open_s)

    def allow(self, now: float) -> bool:
        """May a request go through now? In half-open, only the first asker (the probe) gets True."""
        s = self.s
        if s.state == "closed":
            return True
        if s.state == "open" and now >= s.opened_until:
            s.state, s.probing = "half-open", False
        if s.state == "half-open" and not s.probing:
            s.probing = True
            return True
        return False

    def would_allow(self, now: float) -> bool:
        """allow() without taking the probe slot (for ordering and display)."""
        s = self.s
        return (
            s.state == "closed"
            or (s.state == "open" and now >= s.opened_until)
            or (s.state == "half-open" and not s.probing)
        )

    def blocked_until(self, now: float) -> float | None:
        """When to ask again: the end of the open period, or (while a half-open probe is out) shortly,
        to hear its verdict. None when a request may go now."""
        s = self.s
        if s.state == "closed":
            return None
        if s.state == "open" and now < s.opened_until:
            return s.opened_until
        if s.probing:
            return now + PROBE_WAIT_S
        return None

    def success(self) -> None:
        s = self.s
        s.state, s.probing, s.failures, s.open_s = "closed", False, [], self.base_open_s

    def failure(self, now: float) -> None:
        s = self.s
        if s.state == "half-open":
            s.open_s = min(BREAKER_MAX_OPEN_S, s.open_s * 2)
            s.state, s.probing, s.opened_until = "open", False, now + s.open_s
            return
        s.failures = [t for t in s.failures if now - t < self.window_s]
        s.failures.append(now)
        if s.state == "closed" and len(s.failures) >= self.threshold:
            s.state, s.opened_until, s.failures = "open", now + s.open_s, []

    def release_probe(self) -> None:
        """The probe ended without a verdict (cancelled, caller fault): let another request probe."""
        self.s.probing = False

    def view(self, now: float) -> JsonObj:
        s = self.s
        state = "half-open" if s.state == "open" and now >= s.opened_until else s.state
        return {
            "state": state,
            "failures": len([t for t in s.failures if now - t < self.window_s]),
            "opened_until": s.opened_until if s.state != "closed" else None,
        }


# ----------------------------------------------------------------------------------------------------------
# cooldowns
# ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Cooldown:
    until: float = 0.0
    reason: str = ""
    level: int = 0  # consecutive rate limits without a hint: the exponential schedule's step
    error: GatewayError | None = None  # model_access: what the provider said, repeated while cooling

    def active(self, now: float) -> bool:
        return now < self.until


def rate_limit_cooldown(hint: float | None, level: int) -> float:
    """Seconds to rest after a 429: the upstream's hint when it gave one, else 2, 4, 8 ... 300 s."""
    if hint is not None and hint > 0:
        return min(hint, MAX_HINT_S)
    return min(RATE_LIMIT_MAX_S, RATE_LIMIT_BASE_S * 2.0 ** min(level, 30))


# ----------------------------------------------------------------------------------------------------------
# per-account rate limiter
# ----------------------------------------------------------------------------------------------------------


class AccountLimiter:
    """Requests per minute, a minimum gap between requests, and a cap on concurrent requests.

    `acquire(wait_s)` waits up to `wait_s` for a slot and returns False if none came: the caller then falls
    through to the next account or target instead of queueing without bound.
    """

    def __init__(
        self, rpm: int | None = None, min_gap_s: float = 0.0, max_concurrent: int | None = None
    ) -> None:
        self.rpm = rpm
        self.min_gap_s = min_gap_s
        self.max_concurrent = max_concurrent
        self.starts: deque[float] = deque()
        self.last_start = -math.inf
        self.in_flight = 0
        self._freed = trio.Event()

    @property
    def unlimited(self) -> bool:
        return not self.rpm and not self.min_gap_s and not self.max_concurrent

    def _delay(self, now: float) -> float:
        """Seconds until a request could start (0 = now; inf = when a running one finishes)."""
        wait = max(0.0, self.last_start + self.min_gap_s - now)
        if self.rpm:
            while self.starts and now - self.starts[0] >= 60.0:
                self.starts.popleft()
            if len(self.starts) >= self.rpm:
                wait = max(wait, self.starts[0] + 60.0 - now)
        if self.max_concurrent and self.in_flight >= self.max_concurrent:
            wait = math.inf
        return wait

    async def acquire(self, wait_s: float, clock: Clock) -> bool:
        deadline = trio.current_time() + wait_s
        while True:
            now = clock()
            delay = self._delay(now)
            if delay <= 0:
                self.starts.append(now)
                self.last_start = now
                self.in_flight += 1
                return True
            remaining = deadline - trio.current_time()
            if remaining <= 0 or (delay > remaining and not math.isinf(delay)):
                return False
            with trio.move_on_after(min(delay, remaining)):
                await self._freed.wait()

    def release(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self._freed.set()
        self._freed = trio.Event()


# ----------------------------------------------------------------------------------------------------------
# latency and outcome statistics
# ----------------------------------------------------------------------------------------------------------


class Stats:
    """Recent outcomes of one account: success rate, latency percentiles, in-flight count, EWMA latency."""

    def __init__(self) -> None:
        self.recent: deque[tuple[bool, float, float]] = deque(maxlen=LATENCY_SAMPLES)  # ok, ms, ttfb ms
        self.requests = 0
        self.in_flight = 0
        self.ewma_ms = 0.0

    def record(self, ok: bool, ms: float, ttfb_ms: float) -> None:
        self.requests += 1
        self.recent.append((ok, ms, ttfb_ms))
        if ok:
            self.ewma_ms = ms if self.ewma_ms == 0 else 0.8 * self.ewma_ms + 0.2 * ms

    def view(self) -> JsonObj:
        oks = [r for r in self.recent if r[0]]
        lat = sorted(r[1] for r in oks)
        ttfb = sorted(r[2] for r in oks)
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "success_rate": round(len(oks) / len(self.recent), 4) if self.recent else None,
            "p50_ms": _pct(lat, 0.5),
            "p95_ms": _pct(lat, 0.95),
            "p99_ms": _pct(lat, 0.99),
            "ttfb_p50_ms": _pct(ttfb, 0.5),
        }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


# ----------------------------------------------------------------------------------------------------------
# the book
# ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class HealthConfig:
    breaker_failures: int = BREAKER_FAILURES
    breaker_window_s: float = BREAKER_WINDOW_S
    breaker_open_s: float = BREAKER_OPEN_S


class HealthBook:
    """All health state of the running gateway, keyed by provider id, account id and model."""

    def __init__(self, clock: Clock, config: HealthConfig | None = None) -> None:
        self.clock = clock
        self.config = config or HealthConfig()
        self.provider_breakers: dict[str, Breaker] = {}
        self.model_breakers: dict[tuple[int, str], Breaker] = {}  # account x model
        self.account_cooldowns: dict[int, Cooldown] = {}
        self.model_cooldowns: dict[tuple[str, str], Cooldown] = {}  # provider x model
        self.limiters: dict[int, AccountLimiter] = {}
        self.stats: dict[int, Stats] = {}
        self.on_change: Callable[[], None] = lambda: None  # persistence hook

    def _breaker(self, table: dict, key: object) -> Breaker:  # type: ignore[type-arg]
        b = table.get(key)
        if b is None:
            c = self.config
            b = table[key] = Breaker(c.breaker_failures, c.breaker_window_s, c.breaker_open_s)
        return b

    def provider_breaker(self, provider: str) -> Breaker:
        return self._breaker(self.provider_breakers, provider)

    def model_breaker(self, account: int, model: str) -> Breaker:
        return self._breaker(self.model_breakers, (account, model))

    def stats_for(self, account: int) -> Stats:
        s = self.stats.get(account)
        if s is None:
            s = self.stats[account] = Stats()
        return s

    def limiter(self, account: int, limits: dict[str, object] | None) -> AccountLimiter:
        lim = self.limiters.get(account)
        rpm, gap, conc = _limits(limits or {})
        if lim is None or (lim.rpm, lim.min_gap_s, lim.max_concurrent) != (rpm, gap, conc):
            fresh = AccountLimiter(rpm, gap, conc)
            if lim is not None:
                fresh.in_flight, fresh.starts, fresh.last_start = lim.in_flight, lim.starts, lim.last_start
            lim = self.limiters[account] = fresh
        return lim

    # questions -------------------------------------------------------------------------------------------

    def account_blocked(self, account: int, provider: str, model: str) -> float | None:
        """The time until which this account may not serve this model, or None when it may."""
        now = self.clock()
        until = 0.0
        cd = self.account_cooldowns.get(account)
        if cd is not None and cd.active(now):
            until = cd.until
        mcd = self.model_cooldowns.get((provider, model))
        if mcd is not None and mcd.active(now):
            until = max(until, mcd.until)
        b = self.model_breakers.get((account, model))
        blocked = b.blocked_until(now) if b is not None else None
        if blocked is not None:
            until = max(until, blocked)
        return until or None

    def provider_blocked(self, provider: str) -> float | None:
        b = self.provider_breakers.get(provider)
        return b.blocked_until(self.clock()) if b is not None else None

    # outcomes --------------------------------------------------------------------------------------------

    def record_failure(self, provider: str, account: int, model: str, err: GatewayError) -> None:
        now = self.clock()
        failure = err.failure
        if failure == "rate_limit":
            cd = self.account_cooldowns.setdefault(account, Cooldown())
            cd.level = cd.level + 1 if cd.reason == "rate_limit" else 0
            cd.until = now + rate_limit_cooldown(err.retry_after, cd.level)
            cd.reason = "rate_limit"
        elif failure == "quota":
            hint = err.retry_after if err.retry_after and err.retry_after > 0 else QUOTA_COOLDOWN_S
            self.account_cooldowns[account] = Cooldown(now + min(hint, MAX_HINT_S), "quota")
        elif failure == "credential":
            self.account_cooldowns[account] = Cooldown(now + CREDENTIAL_COOLDOWN_S, "credential")
        elif failure == "model_access":
            self.model_cooldowns[(provider, model)] = Cooldown(
                now + MODEL_COOLDOWN_S, "model_access", error=err
            )
        elif failure in ("transient", "unknown"):
            self.model_breaker(account, model).failure(now)
            self.provider_breaker(provider).failure(now)
        else:  # caller fault: not the provider's doing, but a probe slot it held must be freed
            self._release_probes(provider, account, model)
            return
        self.on_change()

    def remembered_error(self, targets: Iterable[Target]) -> GatewayError | None:
        """When every target is out only because its provider denied the model lately, that denial."""
        now = self.clock()
        errors = []
        for t in targets:
            cd = self.model_cooldowns.get((t.provider.id, t.model))
            if cd is None or not cd.active(now) or cd.error is None:
                return None
            errors.append(cd.error)
        return errors[0] if errors else None

    def record_success(self, provider: str, account: int, model: str) -> None:
        changed = False
        cd = self.account_cooldowns.get(account)
        if cd is not None and cd.reason == "rate_limit":
            cd.level = 0
        for b in (self.provider_breakers.get(provider), self.model_breakers.get((account, model))):
            if b is not None and (b.s.state != "closed" or b.s.failures):
                b.success()
                changed = True
        if changed:
            self.on_change()

    def _release_probes(self, provider: str, account: int, model: str) -> None:
        for b in (self.provider_breakers.get(provider), self.model_breakers.get((account, model))):
            if b is not None:
                b.release_probe()

    def release(self, provider: str, account: int, model: str) -> None:
        """An attempt ended without a verdict (cancelled): free any probe slot it held."""
        self._release_probes(provider, account, model)

    def clear_account(self, account: int) -> None:
        """The account was edited (new key, re-enabled): forget its cooldown and breakers."""
        self.account_cooldowns.pop(account, None)
        for key in [k for k in self.model_breakers if k[0] == account]:
            del self.model_breakers[key]
        self.on_change()

    def reset(self, provider: str | None = None, account: int | None = None) -> None:
        if account is not None:
            self.clear_account(account)
            return
        if provider is not None:
            self.provider_breakers.pop(provider, None)
            for key in [k for k in self.model_cooldowns if k[0] == provider]:
                del self.model_cooldowns[key]
        else:
            self.provider_breakers.clear()
            self.model_breakers.clear()
            self.account_cooldowns.clear()
            self.model_cooldowns.clear()
        self.on_change()

    # persistence -----------------------------------------------------------------------------------------

    def snapshot(self) -> JsonObj:
        now = self.clock()

        def breaker(b: Breaker) -> JsonObj:
            s = b.s
            return {
                "state": s.state,
                "failures": s.failures,
                "opened_until": s.opened_until,
                "open_s": s.open_s,
            }

        return {
            "providers": {k: breaker(b) for k, b in self.provider_breakers.items() if b.s.state != "closed"},
            "models": [
                [a, m, breaker(b)] for (a, m), b in self.model_breakers.items() if b.s.state != "closed"
            ],
            "accounts": {
                str(a): [c.until, c.reason, c.level]
                for a, c in self.account_cooldowns.items()
                if c.active(now)
            },
            "model_cooldowns": [
                [p, m, c.until, c.reason] for (p, m), c in self.model_cooldowns.items() if c.active(now)
            ],
        }

    def restore(self, data: JsonObj) -> None:
        def breaker(raw: JsonObj) -> Breaker:
            state = "open" if raw.get("state") in ("open", "half-open") else "closed"
            c = self.config
            return Breaker(
                c.breaker_failures,
                c.breaker_window_s,
                c.breaker_open_s,
                BreakerState(
                    state=state,
                    opened_until=float(raw.get("opened_until") or 0),
                    open_s=float(raw.get("open_s") or c.breaker_open_s),
                ),
            )

        for pid, raw in (data.get("providers") or {}).items():
            self.provider_breakers[str(pid)] = breaker(raw)
        for a, m, raw in data.get("models") or []:
            self.model_breakers[(int(a), str(m))] = breaker(raw)
        for a, (until, reason, level) in (data.get("accounts") or {}).items():
            self.account_cooldowns[int(a)] = Cooldown(float(until), str(reason), int(level))
        for p, m, until, reason in data.get("model_cooldowns") or []:
            self.model_cooldowns[(str(p), str(m))] = Cooldown(float(until), str(reason))

    # views -----------------------------------------------------------------------------------------------

    def account_view(self, account: int, models: list[str] | None = None) -> JsonObj:
        now = self.clock()
        cd = self.account_cooldowns.get(account)
        worst: JsonObj = {"state": "closed", "failures": 0, "opened_until": None}
        for (acc, _model), b in self.model_breakers.items():
            if acc == account and b.view(now)["state"] != "closed":
                worst = b.view(now)
        stats = self.stats_for(account).view()
        lim = self.limiters.get(account)
        stats["in_flight"] = lim.in_flight if lim is not None else self.stats_for(account).in_flight
        return {
            "breaker": worst,
            "cooldown_until": cd.until if cd is not None and cd.active(now) else None,
            "cooldown_reason": cd.reason if cd is not None and cd.active(now) else None,
            **stats,
        }


def _limits(limits: dict[str, object]) -> tuple[int | None, float, int | None]:
    def num(key: str) -> float | None:
        v = limits.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None

    rpm = num("rpm")
    gap = num("min_gap_ms")
    conc = num("max_concurrent")
    return (int(rpm) if rpm else None, (gap or 0.0) / 1000.0, int(conc) if conc else None)


def jittered_backoff(
    attempt: int, base_s: float = 0.25, cap_s: float = 4.0, rng: random.Random | None = None
) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^attempt)] (spreads retries of many clients apart)."""
    r = rng or random
    return r.uniform(0, min(cap_s, base_s * (2**attempt)))

"""Quotas per account (tokens/requests over windows) and budgets (USD per period) per client key and provider.

Windows: "5h" is rolling (the last five hours); "daily", "weekly" and "monthly" are calendar windows in UTC
starting at `reset_hour` (weeks start on Monday, months on the 1st). Counters live in memory, are rebuilt from
the usage table at start (so they survive restarts without a table of their own) and move with every request.
An account whose window is spent is skipped until the window resets; a provider over its budget is skipped
(a combo then falls through to the next, cheaper or free, tier); a key over its budget is refused (402).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from omniroute import Db, JsonObj

Clock = Callable[[], float]

WINDOWS = ("5h", "daily", "weekly", "monthly")
PERIODS = ("day", "week", "month")
ROLLING_S = 5 * 3600.0
ROLLING_BUCKET_S = 60.0
_PERIOD_WINDOW = {"day": "daily", "week": "weekly", "month": "monthly"}


# (window, reset_hour) -> the calendar window last computed, (start, end): every request records into
# three windows, and working a start out with datetime each time was a measurable part of a request's CPU
_spans: dict[tuple[str, int], tuple[float, float]] = {}


def window_start(window: str, now: float, reset_hour: int = 0) -> float:
    """Start of the calendar window containing `now` (for "5h": now - 5 h)."""
    if window == "5h":
        return now - ROLLING_S
    span = _spans.get((window, reset_hour))
    if span is not None and span[0] <= now < span[1]:
        return span[0]
    start = _calendar_start(window, now, reset_hour)
    _spans[(window, reset_hour)] = (start, _calendar_end(window, start))
    return start


def window_reset(window: str, now: float, reset_hour: int = 0, oldest: float | None = None) -> float:
    """When the window containing `now` ends (for "5h": when the oldest counted request leaves it)."""
    if window == "5h":
        return (oldest if oldest is not None else now) + ROLLING_S
    return _calendar_end(window, window_start(window, now, reset_hour))


def _calendar_start(window: str, now: float, reset_hour: int) -> float:
    t = dt.datetime.fromtimestamp(now, dt.timezone.utc) - dt.timedelta(hours=reset_hour)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "weekly":
        day -= dt.timedelta(days=day.weekday())
    elif window == "monthly":
        day = day.replace(day=1)
    return (day + dt.timedelta(hours=reset_hour)).timestamp()


def _calendar_end(window: str, start_ts: float) -> float:
    start = dt.datetime.fromtimestamp(start_ts, dt.timezone.utc)
    if window == "daily":
        end = start + dt.timedelta(days=1)
    elif window == "weekly":
        end = start + dt.timedelta(days=7)
    else:
        end = (start.replace(day=1) + dt.timedelta(days=32)).replace(day=1, hour=start.hour)
    return end.timestamp()


@dataclass(slots=True)
class _Counter:
    start: float = 0.0
    tokens: int = 0
    requests: int = 0


@dataclass(slots=True)
class _AccountQuota:
    # the 5 h window in one-minute buckets, [first request's time, minute, tokens, requests], oldest first:
    # a request per entry grew by megabytes a minute under load and made every check O(requests in 5 h)
    rolling: deque[list[float]] = field(default_factory=deque)
    windows: dict[str, _Counter] = field(default_factory=dict)


def parse_quota(limits: Mapping[str, object]) -> dict[str, tuple[int | None, int | None]]:
    """account.limits["quota"] = {"5h": {"tokens": N, "requests": M}, ...} -> {window: (tokens, requests)}."""
    raw = limits.get("quota")
    out: dict[str, tuple[int | None, int | None]] = {}
    if not isinstance(raw, Mapping):
        return out
    for window, spec in raw.items():
        if window in WINDOWS and isinstance(spec, Mapping):
            tok, req = spec.get("tokens"), spec.get("requests")
            out[str(window)] = (
                int(tok) if isinstance(tok, (int, float)) and tok > 0 else None,
                int(req) if isinstance(req, (int, float)) and req > 0 else None,
            )
    return out


class QuotaBook:
    def __init__(self, clock: Clock, reset_hour: int = 0) -> None:
        self.clock = clock
        self.reset_hour = reset_hour
        self.accounts: dict[int, _AccountQuota] = {}
        self.reported: dict[int, dict[str, str]] = {}  # the provider's own rate-limit headers, latest

    def _acct(self, account: int) -> _AccountQuota:
        q = self.accounts.get(account)
        if q is None:
            q = self.accounts[account] = _AccountQuota()
        return q

    def _counter(self, q: _AccountQuota, window: str, now: float) -> _Counter:
        start = window_start(window, now, self.reset_hour)
        c = q.windows.get(window)
        if c is None or c.start != start:
            c = q.windows[window] = _Counter(start)
        return c

    @staticmethod
    def _expire(q: _AccountQuota, now: float) -> None:
        """Drop the buckets whose first request left the 5 h window (its later ones, at most a minute
        younger, leave with it: the window may free up to a minute early, never late)."""
        while q.rolling and now - q.rolling[0][0] >= ROLLING_S:
            q.rolling.popleft()

    def record(self, account: int, tokens: int, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        q = self._acct(account)
        minute = now // ROLLING_BUCKET_S
        last = q.rolling[-1] if q.rolling else None
        if last is not None and last[1] == minute:
            last[2] += tokens
            last[3] += 1
        else:
            q.rolling.append([now, minute, tokens, 1])
        self._expire(q, now)
        for window in WINDOWS[1:]:
            c = self._counter(q, window, now)
            c.tokens += tokens
            c.requests += 1

    def used(self, account: int, window: str, now: float | None = None) -> tuple[int, int]:
        """(tokens, requests) used in the window containing now."""
        now = self.clock() if now is None else now
        q = self._acct(account)
        if window == "5h":
            self._expire(q, now)
            return int(sum(b[2] for b in q.rolling)), int(sum(b[3] for b in q.rolling))
        c = self._counter(q, window, now)
        return c.tokens, c.requests

    def exhausted_until(self, account: int, limits: Mapping[str, object]) -> float | None:
        quota = parse_quota(limits)
        if not quota:
            return None
        now = self.clock()
        until = 0.0
        for window, (max_tokens, max_requests) in quota.items():
            tokens, requests = self.used(account, window, now)
            if (max_tokens is not None and tokens >= max_tokens) or (
                max_requests is not None and requests >= max_requests
            ):
                until = max(until, self._reset(account, window, now))
        return until or None

    def _reset(self, account: int, window: str, now: float) -> float:
        q = self._acct(account)
        self._expire(q, now)
        oldest = q.rolling[0][0] if q.rolling else None
        return window_reset(window, now, self.reset_hour, oldest)

    def view(self, account: int, limits: Mapping[str, object]) -> list[JsonObj]:
        now = self.clock()
        quota = parse_quota(limits)
        out = []
        for window in WINDOWS:
            tokens, requests = self.used(account, window, now)
            max_tokens, max_requests = quota.get(window, (None, None))
            out.append(
                {
                    "window": window,
                    "limit_tokens": max_tokens,
                    "limit_requests": max_requests,
                    "used_tokens": tokens,
                    "used_requests": requests,
                    "resets_at": self._reset(account, window, now),
                }
            )
        return out

    def note_headers(self, account: int, headers: Mapping[str, str]) -> None:
        """Keep the provider's own view of its limits (x-ratelimit-*, anthropic-ratelimit-*), when given."""
        seen = {k: v for k, v in headers.items() if k.startswith(("x-ratelimit-", "anthropic-ratelimit-"))}
        if seen:
            self.reported[account] = seen

    def load(self, db: Db) -> None:
        """Rebuild the counters from the usage table (the start of the longest window onwards)."""
        now = self.clock()
        since = min(window_start(w, now, self.reset_hour) for w in WINDOWS)
        rows = db.execute(
            "SELECT account_id, ts, input_tokens + output_tokens FROM usage "
            "WHERE ts >= ? AND account_id IS NOT NULL AND outcome != 'error' ORDER BY ts",
            (since,),
        )
        for account, ts, tokens in rows:
            self.record(int(account), int(tokens or 0), float(ts))


# ----------------------------------------------------------------------------------------------------------
# budgets
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Budget:
    scope: str  # "key" | "provider"
    id: str  # key id (as text) or provider id
    period: str  # "day" | "week" | "month"
    limit_usd: float


class BudgetBook:
    """USD spent per key and per provider in the current day/week/month, against configured limits."""

    def __init__(self, clock: Clock, reset_hour: int = 0) -> None:
        self.clock = clock
        self.reset_hour = reset_hour
        self.budgets: list[Budget] = []
        self._spent: dict[tuple[str, str, str], _Counter] = {}  # (scope, id, period) -> cost in .tokens

    def configure(self, budgets: Iterable[Budget]) -> None:
        self.budgets = list(budgets)

    def _counter(self, scope: str, ident: str, period: str, now: float) -> _Counter:
        start = window_start(_PERIOD_WINDOW[period], now, self.reset_hour)
        c = self._spent.get((scope, ident, period))
        if c is None or c.start != start:
            c = self._spent[(scope, ident, period)] = _Counter(start)
        return c

    def spent(self, scope: str, ident: str, period: str) -> float:
        return self._counter(scope, ident, period, self.clock()).tokens / 1e9

    def record(
        self, key_id: int | None, provider: str | None, cost_usd: float | None, now: float | None = None
    ) -> None:
        if not cost_usd:
            return
        now = self.clock() if now is None else now
        nano = round(cost_usd * 1e9)  # integer nano-dollars: sums do not drift
        for period in PERIODS:
            if key_id is not None:
                self._counter("key", str(key_id), period, now).tokens += nano
            if provider is not None:
                self._counter("provider", provider, period, now).tokens += nano

    def over(self, scope: str, ident: str) -> Budget | None:
        """The first budget of this key/provider that is spent, if any."""
        for b in self.budgets:
            if b.scope == scope and b.id == ident and self.spent(scope, ident, b.period) >= b.limit_usd:
                return b
        return None

    def resets_at(self, period: str) -> float:
        return window_reset(_PERIOD_WINDOW[period], self.clock(), self.reset_hour)

    def view(self) -> list[JsonObj]:
        return [
            {
                "scope": b.scope,
                "id": b.id,
                "period": b.period,
                "limit_usd": b.limit_usd,
                "spent_usd": round(self.spent(b.scope, b.id, b.period), 6),
                "resets_at": self.resets_at(b.period),
            }
            for b in self.budgets
        ]

    def load(self, db: Db) -> None:
        now = self.clock()
        since = min(window_start(_PERIOD_WINDOW[p], now, self.reset_hour) for p in PERIODS)
        for key_id, provider, ts, cost in db.execute(
            "SELECT key_id, provider, ts, cost_usd FROM usage "
            "WHERE ts >= ? AND cost_usd IS NOT NULL ORDER BY ts",
            (since,),
        ):
            self.record(key_id, provider, float(cost), float(ts))

"""Usage records: one row per client request, written off the request path through the store's queue."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from omniroute import Db, dumps_str
from omniroute_providers.ir import Usage
from omniroute_providers.payloads import PayloadRecord

log = logging.getLogger("omniroute.records")


@dataclass(slots=True)
class AttemptRecord:
    provider: str
    account: int
    model: str
    status: int = 0  # HTTP status from the provider (0: no answer)
    failure: str = ""  # failure class when it failed
    error: str = ""
    ms: float = 0.0


@dataclass(slots=True)
class UsageRecord:
    request_id: str
    endpoint: str
    client_format: str
    model_requested: str
    stream: bool
    key_id: int | None = None
    ts: float = field(default_factory=time.time)
    provider: str | None = None
    account_id: int | None = None
    model_served: str | None = None
    status: int = 0
    outcome: str = "error"  # ok | error | partial (stream broke after content) | cancelled (client left)
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    error: str | None = None
    payloads: PayloadRecord | None = None  # kept only when payload logging applies to this request

    def insert(self, db: Db) -> None:
        u = self.usage or Usage()
        db.execute(
            "INSERT INTO usage (ts, request_id, key_id, endpoint, client_format, model_requested, provider, "
            "account_id, model_served, stream, status, outcome, latency_ms, ttfb_ms, input_tokens, "
            "output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, tokens_estimated, cost_usd, "
            "attempts, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.ts,
                self.request_id,
                self.key_id,
                self.endpoint,
                self.client_format,
                self.model_requested,
                self.provider,
                self.account_id,
                self.model_served,
                int(self.stream),
                self.status,
                self.outcome,
                round(self.latency_ms, 3),
                None if self.ttfb_ms is None else round(self.ttfb_ms, 3),
                u.input_tokens,
                u.output_tokens,
                u.cached_tokens,
                u.cache_write_tokens,
                u.reasoning_tokens,
                int(u.estimated),
                self.cost_usd,
                dumps_str(self.attempts),
                self.error,
            ),
        )
        if self.payloads is not None:
            try:
                self.payloads.insert(db, db.last_rowid(), self.request_id, self.ts)
            except Exception as exc:  # a debugging aid must not cost the usage row
                log.warning("could not keep the payloads of request %s: %s", self.request_id, exc)


SUMMARY_GROUPS = {
    "provider": "COALESCE(provider, '-')",
    "model": "COALESCE(model_served, model_requested)",
    "key": "COALESCE(CAST(key_id AS TEXT), '-')",
    "day": "date(ts, 'unixepoch')",
    "account": "COALESCE(provider || '#' || account_id, '-')",
}


def usage_summary(db: Db, *, since: float, by: str = "provider") -> list[dict[str, object]]:
    """Totals per group since a time: requests, errors, tokens, cost (None when any cost was unknown)."""
    group = SUMMARY_GROUPS[by]  # KeyError for an unknown grouping: callers validate `by`
    rows = db.execute(
        f"SELECT {group} AS g, COUNT(*), SUM(outcome != 'ok'), SUM(input_tokens), SUM(output_tokens), "  # noqa: S608 - group is from a fixed table
        "SUM(cached_tokens), SUM(reasoning_tokens), SUM(cost_usd), SUM(cost_usd IS NULL AND outcome = 'ok'), "
        "AVG(latency_ms), AVG(ttfb_ms) FROM usage WHERE ts >= ? GROUP BY g ORDER BY COUNT(*) DESC",
        (since,),
    )
    return [
        {
            by: g,
            "requests": int(n),
            "errors": int(err or 0),
            "input_tokens": int(inp or 0),
            "output_tokens": int(out or 0),
            "cached_tokens": int(cached or 0),
            "reasoning_tokens": int(reasoning or 0),
            "cost_usd": None if cost is None and unknown else round(float(cost or 0.0), 6),
            "unpriced_requests": int(unknown or 0),
            "avg_latency_ms": round(float(lat or 0.0), 1),
            "avg_ttfb_ms": None if ttfb is None else round(float(ttfb), 1),
        }
        for g, n, err, inp, out, cached, reasoning, cost, unknown, lat, ttfb in rows
    ]

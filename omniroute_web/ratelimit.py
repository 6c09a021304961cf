"""Per-client-address limits: a request rate (token bucket) and a cap on open connections.

Both key clients by address, with IPv6 clients grouped by /64: one host usually owns a whole /64, so
keying by full address would let it rotate addresses past any limit. IPv4-mapped IPv6 peers count as
their IPv4 address.

Memory is bounded whatever the traffic: the rate limiter tracks at most `max_clients` addresses (the one
seen longest ago is forgotten first, which only ever makes a limit more lenient, never stricter), and the
connection counter holds only addresses with an open connection (bounded by the server's global cap).
Both are plain state machines with an injected clock, no I/O.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from omniroute import RateLimitError

MAX_TRACKED_CLIENTS = 10_000  # ~100 bytes each: about 1 MB at most, more addresses than a gateway sees
IPV6_GROUP_PREFIX = 64


def client_key(client: str) -> str:
    """The bucket an address counts against: IPv4 as is, IPv6 by its /64, unreadable peers together."""
    try:
        addr = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return "?"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, IPV6_GROUP_PREFIX), strict=False))
    return str(addr)


class RateLimiter:
    """A token bucket per client: `per_minute` requests a minute sustained, bursts up to `burst`
    (default: a minute's worth). `per_minute` <= 0 turns it off."""

    __slots__ = ("_buckets", "burst", "clock", "max_clients", "per_minute", "rate")

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0  # tokens per second
        self.burst = float(burst if burst is not None else per_minute)
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def hit(self, client: str) -> float:
        """Take one request from `client`'s bucket. 0.0 when allowed, else the seconds until it would be."""
        if not self.enabled:
            return 0.0
        key = client_key(client)
        now = self.clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)  # re-inserted: most recently seen last
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait

    def check(self, client: str) -> None:
        """RateLimitError (429, with retry-after) when `client` is over its rate."""
        wait = self.hit(client)
        if wait > 0.0:
            raise RateLimitError(
                f"too many requests from this address (limit {self.per_minute} a minute)",
                retry_after=float(max(1, math.ceil(wait))),
                code="ip_rate_limited",
            )


class ConnectionCounter:
    """Open connections per client, refused past `limit` (<= 0: unlimited)."""

    __slots__ = ("_open", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._open)

    def acquire(self, client: str) -> bool:
        """Count a new connection; False (and nothing counted) when `client` is at its limit."""
        if self.limit <= 0:
            return True
        key = client_key(client)
        count = self._open.get(key, 0)
        if count >= self.limit:
            return False
        self._open[key] = count + 1
        return True

    def release(self, client: str) -> None:
        """Uncount a connection that `acquire` accepted."""
        if self.limit <= 0:
            return
        key = client_key(client)
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

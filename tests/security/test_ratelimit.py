"""Per-address limits: a request rate answered with 429 + retry-after in the client's format, a cap on open
connections, bounded memory, and a gateway that keeps serving everyone else."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from omniroute import RateLimitError
from omniroute_web.ratelimit import ConnectionCounter, RateLimiter, client_key
from tests.conftest import MakeGateway
from tests.security.helpers import OTHER_IP, client_from, raw_exchange, requests_by_format, statuses


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ----------------------------------------------------------------------------------------------------------
# the token bucket
# ----------------------------------------------------------------------------------------------------------


def test_a_burst_of_a_minutes_worth_then_the_sustained_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)  # one a second, bursts of 60
    assert all(limiter.hit("10.0.0.1") == 0.0 for _ in range(60))
    wait = limiter.hit("10.0.0.1")
    assert wait == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.hit("10.0.0.1") == pytest.approx(0.5)  # refused requests do not dig the hole deeper
    clock.now += 0.5
    assert limiter.hit("10.0.0.1") == 0.0
    assert limiter.hit("10.0.0.2") == 0.0  # another address has its own bucket


def test_refusal_carries_a_whole_second_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(600, burst=1, clock=clock)  # one every 0.1 s
    limiter.check("10.0.0.1")
    with pytest.raises(RateLimitError) as exc:
        limiter.check("10.0.0.1")
    assert exc.value.status == 429
    assert exc.value.retry_after == 1.0
    assert exc.value.code == "ip_rate_limited"


def test_a_long_idle_client_gets_only_one_burst_back() -> None:
    clock = Clock()
    limiter = RateLimiter(10, clock=clock)
    for _ in range(10):
        limiter.check("10.0.0.1")
    clock.now += 3600
    for _ in range(10):
        limiter.check("10.0.0.1")
    with pytest.raises(RateLimitError):
        limiter.check("10.0.0.1")


def test_zero_turns_it_off() -> None:
    limiter = RateLimiter(0)
    for _ in range(10_000):
        limiter.check("10.0.0.1")
    assert len(limiter) == 0


def test_memory_stays_bounded_under_address_rotation() -> None:
    clock = Clock()
    limiter = RateLimiter(5, clock=clock, max_clients=100)
    for i in range(10_000):
        limiter.hit(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert len(limiter) == 100
    # A busy client that keeps coming back stays tracked (least recently seen goes first).
    for _ in range(5):
        limiter.hit("192.0.2.1")
        for i in range(50):
            limiter.hit(f"198.51.100.{i}")
    assert limiter.hit("192.0.2.1") > 0.0


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),  # same /64: one host rotating addresses
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:10.0.0.1", "10.0.0.1", True),
        ("10.0.0.1", "10.0.0.2", False),
        ("fe80::1%eth0", "fe80::2%eth1", True),
    ],
)
def test_ipv6_clients_are_grouped_by_their_64(a: str, b: str, same: bool) -> None:
    assert (client_key(a) == client_key(b)) is same


def test_ipv6_rotation_inside_a_64_does_not_escape_the_limit() -> None:
    limiter = RateLimiter(3, clock=Clock())
    for i in range(3):
        limiter.check(f"2001:db8::{i + 1}")
    with pytest.raises(RateLimitError):
        limiter.check("2001:db8::ffff")


def test_connection_counter_caps_and_forgets() -> None:
    counter = ConnectionCounter(2)
    assert counter.acquire("10.0.0.1")
    assert counter.acquire("10.0.0.1")
    assert not counter.acquire("10.0.0.1")
    assert counter.acquire("10.0.0.2")
    counter.release("10.0.0.1")
    assert counter.acquire("10.0.0.1")
    for ip in ("10.0.0.1", "10.0.0.1", "10.0.0.2"):
        counter.release(ip)
    assert len(counter) == 0  # nothing kept for addresses without connections


# ----------------------------------------------------------------------------------------------------------
# through a gateway
# ----------------------------------------------------------------------------------------------------------


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await trio.sleep(0.01)
    raise AssertionError("condition not reached in 5 s")


@pytest.mark.parametrize("fmt", ["openai-chat", "openai-responses", "anthropic", "gemini"])
async def test_over_the_rate_is_429_with_retry_after_in_the_client_format(
    fmt: str, make_gateway: MakeGateway
) -> None:
    h = await make_gateway(demo=True, rate_limit_per_ip_rpm=3)
    path, body = requests_by_format("echo")[fmt]
    async with h.http, client_from(h, OTHER_IP) as other:
        for _ in range(3):
            assert (await other.post(path, json=body)).status_code == 200
        r = await other.post(path, json=body)
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) >= 1
        data = r.json()
        assert (data["type"] == "error") if fmt == "anthropic" else ("error" in data)
        # Everyone else is still served.
        assert (await h.http.post(path, json=body)).status_code == 200
        # And the limited client again once its bucket refills.
        limiter = h.gw.rate_limiter
        real = limiter.clock
        limiter.clock = lambda: real() + 60
        assert (await other.post(path, json=body)).status_code == 200


async def test_the_rate_limit_applies_before_authentication(make_gateway: MakeGateway) -> None:
    h = await make_gateway(rate_limit_per_ip_rpm=2)
    async with client_from(h, OTHER_IP, authorization="Bearer omr_wrong_guess") as guesser:
        codes = [(await guesser.get("/v1/models")).status_code for _ in range(4)]
    assert codes == [401, 401, 429, 429]  # key guessing is throttled like everything else
    async with h.http:
        assert (await h.http.get("/v1/models")).status_code == 200


async def test_connection_cap_per_address_answers_429_and_others_are_served(
    make_gateway: MakeGateway,
) -> None:
    h = await make_gateway(demo=True, max_connections_per_ip=2)
    port = h.gw.server.ports[0]
    held = [await trio.open_tcp_stream("127.0.0.1", port, local_address=OTHER_IP) for _ in range(2)]
    await _until(lambda: h.gw.server.per_ip._open.get(OTHER_IP, 0) == 2)
    refused = await raw_exchange(port, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n", source=OTHER_IP)
    assert statuses(refused) == [429], refused[:200]
    assert b"retry-after: 1" in refused.lower()
    async with h.http:
        assert (await h.http.get("/health")).status_code == 200  # another address
        await held[0].aclose()
        await _until(lambda: h.gw.server.per_ip._open.get(OTHER_IP, 0) == 1)
        again = await raw_exchange(
            port, b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", source=OTHER_IP
        )
        assert statuses(again) == [200]
    await held[1].aclose()

"""HTTP corners the fuzzers found or the limits rely on. The xfail(strict) tests record defects outside this
package's files (server.py, messages.py): each turns into a failure the day the defect is fixed, so its
marker gets removed with the fix."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Harness, MakeGateway
from tests.security.helpers import OTHER_IP, client_from, raw_exchange, statuses


def _port(h: Harness) -> int:
    return h.gw.server.ports[0]


@pytest.mark.parametrize("path", ["/health", "/v1/models", "/v1/chat/completions", "/nope"])
async def test_head_requests_are_answered(path: str, gateway: Harness) -> None:
    raw = await raw_exchange(
        _port(gateway), f"HEAD {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode(), eof=False, read_timeout=2
    )
    assert statuses(raw), raw[:200]
    assert statuses(raw)[0] < 500, raw[:200]


async def test_head_on_a_parameterised_route_answers_like_get_without_a_body(gateway: Harness) -> None:
    request = (
        b"HEAD /v1/models/openai/gpt-4o-mini HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "
        + gateway.key.encode()
        + b"\r\n\r\n"
    )
    raw = await raw_exchange(_port(gateway), request, eof=False, read_timeout=2)
    assert statuses(raw) == [404], raw[:300]  # what GET says (no account configured), not 405
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert rest == b"" and b"content-length:" in head.lower()  # GET's headers, no body


async def test_connection_close_requests_are_closed_right_after_the_answer(gateway: Harness) -> None:
    body = b'{"model": "nope/x", "messages": []}'
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
        b"authorization: Bearer " + gateway.key.encode() + b"\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    t0 = time.perf_counter()
    raw = await raw_exchange(_port(gateway), request + body, eof=False)
    assert statuses(raw) == [404]
    assert time.perf_counter() - t0 < 0.5


async def test_connection_close_answer_itself_is_immediate(gateway: Harness) -> None:
    """The response is complete at once (Content-Length), so clients that honour it are not slowed."""
    r = await gateway.http.get("/health", headers={"connection": "close"})
    assert r.status_code == 200
    assert r.elapsed.total_seconds() < 0.5


async def test_a_rate_limited_admin_request_is_told_when_to_retry(make_gateway: MakeGateway) -> None:
    h = await make_gateway(rate_limit_per_ip_rpm=1)
    async with client_from(h, OTHER_IP, authorization=f"Bearer {h.admin_token}") as admin:
        assert (await admin.get("/api/keys")).status_code == 200
        r = await admin.get("/api/keys")
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "ip_rate_limited"
        assert int(r.headers["retry-after"]) >= 1


async def test_a_rate_limited_admin_request_gets_a_429_in_the_admin_shape(make_gateway: MakeGateway) -> None:
    h = await make_gateway(rate_limit_per_ip_rpm=1)
    async with client_from(h, OTHER_IP, authorization=f"Bearer {h.admin_token}") as admin:
        assert (await admin.get("/api/keys")).status_code == 200
        r = await admin.get("/api/keys")
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "ip_rate_limited"

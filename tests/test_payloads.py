"""Payload logging over real sockets: what the client sent, what the upstream received (translated, its key
redacted), what it answered and what the client got back — kept only when log_payloads is on or the request
carries x-omniroute-debug, capped, readable through the admin API, deleted with the request log."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from omniroute import REDACTED
from omniroute_providers.payloads import DEBUG_CAPTURES_PER_MIN, PAYLOAD_CAP_BYTES, DebugBudget
from tests.conftest import Harness, MakeGateway
from tests.fakes.fixtures import MakeFake
from tests.fakes.reply import DEFAULT_TEXT, Reply

PROVIDER_KEY = "canary-provider-secret-7f3a9c2e"  # no key-like shape: only exact-secret redaction catches it
DEBUG = {"x-omniroute-debug": "1"}
CHAT = "/v1/chat/completions"


def admin(h: Harness) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=h.url, headers={"authorization": f"Bearer {h.admin_token}"}, timeout=30)


def chat_body(model: str, text: str = "hi", stream: bool = False) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}


async def kept(h: Harness, response: httpx.Response) -> dict[str, Any]:
    """The request-log row of a response (found by its x-request-id), with its payloads."""
    await h.usage_rows()
    async with admin(h) as http:
        rows = (await http.get(f"/api/logs/requests?request_id={response.headers['x-request-id']}")).json()
        (row,) = rows["requests"]
        detail = (await http.get(f"/api/logs/requests/{row['id']}")).json()
    assert isinstance(detail["request"], dict)
    return detail["request"]


def stored_rows(h: Harness) -> list[tuple[Any, ...]]:
    return list(h.gw.store.read(lambda db: db.execute("SELECT * FROM payloads")))


async def test_nothing_is_kept_without_the_setting_or_the_debug_header(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    gateway.add_account("openai", base_url=fake.base_url, key=PROVIDER_KEY)
    await gateway.reload()
    r = await gateway.http.post(CHAT, json=chat_body("openai/gpt-4o-mini"))
    assert r.status_code == 200
    row = await kept(gateway, r)
    assert row["payloads"] is None
    assert stored_rows(gateway) == []


async def test_debug_header_keeps_the_translated_upstream_request_without_any_key(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    gateway.add_account("anthropic", base_url=fake.base_url, key=PROVIDER_KEY)
    await gateway.reload()
    sent = {
        "model": "anthropic/claude-sonnet-4-6",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    }
    r = await gateway.http.post(CHAT, json=sent, headers=DEBUG)
    assert r.status_code == 200, r.text
    assert fake.requests[0].credential == PROVIDER_KEY  # the upstream did get the key ...
    row = await kept(gateway, r)
    p = row["payloads"]
    assert p["client_request"] == {"body": sent, "truncated": False}
    up = p["upstream_request"]
    assert up["method"] == "POST"
    assert up["url"] == fake.base_url + "/messages"
    assert up["body"] == fake.requests[0].json  # exactly what the upstream received: an Anthropic body
    assert up["body"]["system"]
    assert up["body"]["max_tokens"]
    assert [m["role"] for m in up["body"]["messages"]] == ["user"]  # the system prompt moved to `system`
    assert up["headers"]["x-api-key"] == REDACTED
    assert up["headers"]["anthropic-version"]
    assert up["headers"]["content-length"] == str(len(fake.requests[0].body))
    answer = p["upstream_response"]
    assert answer["status"] == 200
    assert answer["body"]["type"] == "message"  # the upstream's own format ...
    assert answer["headers"]["content-type"].startswith("application/json")
    assert p["client_response"]["body"] == r.json()  # ... and the client's, translated
    assert p["client_response"]["body"]["object"] == "chat.completion"
    # ... but nothing kept, nor anything the API returns, carries the provider's key or the client's key
    everything = json.dumps(row) + repr(stored_rows(gateway))
    assert PROVIDER_KEY not in everything
    assert gateway.key not in everything


async def test_streams_are_kept_as_raw_sse_on_both_sides(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    h = await make_gateway(log_payloads=True)  # on for every request: no header needed
    h.add_account("anthropic", base_url=fake.base_url, key=PROVIDER_KEY)
    await h.reload()
    async with h.http:
        r = await h.http.post(CHAT, json=chat_body("anthropic/claude-sonnet-4-6", stream=True))
        assert r.status_code == 200
        p = (await kept(h, r))["payloads"]
    assert p["upstream_request"]["body"]["stream"] is True
    upstream_sse = p["upstream_response"]["body"]
    assert isinstance(upstream_sse, str)
    assert "event: message_start" in upstream_sse
    assert "event: message_stop" in upstream_sse
    assert p["upstream_response"]["headers"]["content-type"].startswith("text/event-stream")
    assert p["client_response"]["body"] == r.text  # every byte the client got, in order
    assert "chat.completion.chunk" in r.text
    assert "data: [DONE]" in r.text
    assert PROVIDER_KEY not in repr(stored_rows(h))


async def test_each_payload_is_cut_at_the_cap_and_says_so(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(text="y" * (PAYLOAD_CAP_BYTES + 5000))
    gateway.add_account("openai", base_url=fake.base_url, key=PROVIDER_KEY)
    await gateway.reload()
    long_prompt = "x" * (PAYLOAD_CAP_BYTES + 1000)
    r = await gateway.http.post(CHAT, json=chat_body("openai/gpt-4o-mini", long_prompt), headers=DEBUG)
    assert r.status_code == 200
    p = (await kept(gateway, r))["payloads"]
    for part in (p["client_request"], p["upstream_request"], p["upstream_response"], p["client_response"]):
        assert part["truncated"] is True
        assert isinstance(part["body"], str)  # cut JSON is kept as text
        assert len(part["body"].encode()) == PAYLOAD_CAP_BYTES
    assert p["client_request"]["body"].startswith('{"model":"openai/gpt-4o-mini"')


async def test_the_failed_attempt_and_the_error_the_client_got_are_kept(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(status=400, error="messages: bad role")
    gateway.add_account("openai", base_url=fake.base_url, key=PROVIDER_KEY)
    await gateway.reload()
    r = await gateway.http.post(CHAT, json=chat_body("openai/gpt-4o-mini"), headers=DEBUG)
    assert r.status_code == 400
    p = (await kept(gateway, r))["payloads"]
    assert p["upstream_response"]["status"] == 400
    assert p["upstream_response"]["body"]["error"]["message"] == "messages: bad role"
    assert p["client_response"]["body"] == r.json()
    assert p["upstream_request"]["headers"]["authorization"] == REDACTED


async def test_a_later_attempt_replaces_the_failed_one(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.per_key["sk-first-account-000"] = Reply(status=401, error="invalid key")
    gateway.add_account("openai", base_url=fake.base_url, key="sk-first-account-000", priority=0)
    gateway.add_account("openai", base_url=fake.base_url, key=PROVIDER_KEY, priority=1)
    await gateway.reload()
    r = await gateway.http.post(CHAT, json=chat_body("openai/gpt-4o-mini"), headers=DEBUG)
    assert r.status_code == 200
    row = await kept(gateway, r)
    assert len(row["attempts"]) == 2
    p = row["payloads"]
    assert p["upstream_response"]["status"] == 200
    assert p["upstream_response"]["body"]["choices"][0]["message"]["content"] == DEFAULT_TEXT


async def test_turning_payload_logging_on_in_the_dashboard_applies_at_once(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    gateway.add_account("openai", base_url=fake.base_url, key=PROVIDER_KEY)
    await gateway.reload()
    async with admin(gateway) as http:
        r = await http.put("/api/dashboard/settings", json={"values": {"log_payloads": True}})
        assert r.status_code == 200
    r = await gateway.http.post(CHAT, json=chat_body("openai/gpt-4o-mini"))
    row = await kept(gateway, r)
    assert row["payloads"]["client_response"]["body"] == r.json()


async def test_payloads_leave_with_their_request_rows(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    gateway.add_account("openai", base_url=fake.base_url, key=PROVIDER_KEY)
    await gateway.reload()
    for _ in range(2):
        r = await gateway.http.post(CHAT, json=chat_body("openai/gpt-4o-mini"), headers=DEBUG)
        assert r.status_code == 200
    await gateway.usage_rows()
    assert len(stored_rows(gateway)) == 2
    old = time.time() - 40 * 86400
    gateway.gw.store.write(lambda db: db.execute("UPDATE usage SET ts = ? WHERE id = 1", (old,)))
    async with admin(gateway) as http:
        r = await http.post("/api/logs/purge", json={})  # the default retention: 30 days
        assert r.json()["deleted"] == 1
    (left,) = stored_rows(gateway)
    assert left[0] == 2  # usage_id: the recent request keeps its payloads


def test_the_debug_header_keeps_a_bounded_number_of_requests_a_minute() -> None:
    budget = DebugBudget()
    assert all(budget.allow(100.0 + i * 0.1) for i in range(DEBUG_CAPTURES_PER_MIN))
    assert not budget.allow(130.0)  # any client may send the header: it cannot fill the disk
    assert budget.allow(160.0)  # a new minute

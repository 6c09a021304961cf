"""An OpenAI client through the gateway to OpenAI-compatible provider accounts (fake upstreams on sockets):
answers, streaming, failover before the first byte, none after it, cancellation, errors, usage records."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from tests.conftest import Harness, MakeGateway
from tests.fakes.fixtures import MakeFake
from tests.fakes.reply import Reply, Usage

CHAT = "/v1/chat/completions"


def chat(model: str = "openai/gpt-4o-mini", stream: bool = False, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream, **extra}


async def sse_lines(resp: httpx.Response) -> list[str]:
    return [line async for line in resp.aiter_lines() if line.startswith("data: ")]


def answer_text(r: httpx.Response) -> str:
    """The assistant text of a chat completion, JSON or SSE."""
    if r.headers["content-type"].startswith("application/json"):
        return str(r.json()["choices"][0]["message"]["content"])
    pieces = []
    for line in r.text.splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:]).get("choices", []):
                pieces.append(choice["delta"].get("content") or "")
    return "".join(pieces)


async def test_chat_completion_is_served_by_the_account_with_its_key(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    gateway.add_account("openai", base_url=fake.base_url, key="sk-account-one-1234")
    await gateway.reload()

    r = await gateway.http.post(CHAT, json=chat())

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "Hello from the fake upstream"
    assert r.headers["x-omniroute-served-by"].startswith("openai/gpt-4o-mini")
    (req,) = fake.requests
    assert req.path == "/v1/chat/completions"
    assert req.json["model"] == "gpt-4o-mini"  # the provider prefix is gone
    assert req.credential == "sk-account-one-1234"
    assert "authorization" in req.headers and gateway.key not in req.headers["authorization"]


async def test_usage_record_has_tokens_and_catalog_cost(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(usage=Usage(input=1000, output=500, cached=200))
    gateway.add_account("openai", base_url=fake.base_url)
    await gateway.reload()

    r = await gateway.http.post(CHAT, json=chat())
    assert r.status_code == 200

    (row,) = await gateway.usage_rows()
    assert (row["provider"], row["model_served"], row["outcome"], row["status"]) == ("openai", "gpt-4o-mini", "ok", 200)
    assert (row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == (1000, 500, 200)
    price = gateway.gw.registry.catalog.provider("openai").model("gpt-4o-mini").price  # type: ignore[union-attr]
    assert price is not None
    cached_price = price.cached_input if price.cached_input is not None else price.input
    expected = (800 * price.input + 200 * cached_price + 500 * price.output) / 1e6
    assert row["cost_usd"] == pytest.approx(expected)
    assert row["key_id"] is not None


async def test_stream_arrives_incrementally_not_buffered(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(text="one two three four five", chunks=5, pace_s=0.25)
    gateway.add_account("openai", base_url=fake.base_url)
    await gateway.reload()

    arrivals: list[float] = []
    start = trio.current_time()
    async with gateway.http.stream("POST", CHAT, json=chat(stream=True)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if '"content":"' in line and '"content":""' not in line:
                arrivals.append(trio.current_time() - start)
    assert len(arrivals) == 5
    assert arrivals[0] < 0.6  # the first piece is not held back until the end
    assert arrivals[-1] - arrivals[0] > 0.7  # the pieces were forwarded as they came


async def test_a_fast_stream_leaves_in_a_few_writes_and_its_end_is_not_held(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    """A provider sending faster than stream_coalesce_ms is relayed at most once per interval (one write
    instead of one per event), the answer intact; the end of the answer is sent at once, not held."""
    h = await make_gateway(stream_coalesce_ms=300)
    async with h.http:
        fake = await make_fake_upstream(prefix="/v1")
        fake.default = Reply(text="w" * 100, chunks=50)  # no pacing: one burst
        h.add_account("openai", base_url=fake.base_url)
        await h.reload()

        arrivals: list[bytes] = []
        start = trio.current_time()
        async with h.http.stream("POST", CHAT, json=chat(stream=True)) as r:
            assert r.status_code == 200
            async for piece in r.aiter_raw():
                arrivals.append(piece)
        took = trio.current_time() - start

    lines = b"".join(arrivals).decode().splitlines()
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in lines if line.startswith("data: {")]
    assert "".join(d.get("content") or "" for d in deltas) == "w" * 100
    assert lines[-2:] == ["data: [DONE]", ""]
    assert len(arrivals) <= 4  # 50 events, one read each if relayed as they came
    # held once for the burst (0.3 s), not per event (50 x 0.3 s), and not again after the answer's end
    assert took < 0.55


async def test_stream_usage_chunk_only_when_the_client_asks(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    gateway.add_account("openai", base_url=fake.base_url)
    await gateway.reload()

    async with gateway.http.stream("POST", CHAT, json=chat(stream=True)) as r:
        plain = await sse_lines(r)
    async with gateway.http.stream(
        "POST", CHAT, json=chat(stream=True, stream_options={"include_usage": True})
    ) as r:
        with_usage = await sse_lines(r)

    assert plain[-1] == "data: [DONE]" and with_usage[-1] == "data: [DONE]"
    assert not any('"usage":{' in line for line in plain)
    assert any('"choices":[]' in line and '"usage":{' in line for line in with_usage)
    # the gateway asked the provider for usage both times, so both requests were accounted
    assert all(req.json["stream_options"]["include_usage"] for req in fake.requests)
    rows = await gateway.usage_rows()
    assert [r["input_tokens"] for r in rows] == [12, 12]


FAILURES = {
    "429-retry-after": Reply(status=429, error="Rate limit reached", error_type="requests", headers={"retry-after": "20"}),
    "500": Reply(status=500, error="internal"),
    "503": Reply(status=503, error="overloaded"),
    "401": Reply(status=401, error="Incorrect API key provided", error_type="invalid_request_error"),
    "403": Reply(status=403, error="forbidden"),
    "drop": Reply(drop=True),
}


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("stream", [False, True])
async def test_next_account_takes_over_before_the_first_byte(
    gateway: Harness, make_fake_upstream: MakeFake, failure: str, stream: bool
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.per_key["sk-first-aaaaaaaa"] = FAILURES[failure]
    fake.per_key["sk-second-bbbbbbb"] = Reply(text="from the second account")
    gateway.add_account("openai", base_url=fake.base_url, key="sk-first-aaaaaaaa", priority=0)
    second = gateway.add_account("openai", base_url=fake.base_url, key="sk-second-bbbbbbb", priority=1)
    await gateway.reload()

    r = await gateway.http.post(CHAT, json=chat(stream=stream))

    assert r.status_code == 200, r.text
    assert answer_text(r) == "from the second account"
    # a transient failure (5xx, dropped connection) earns one jittered retry on the same account first;
    # rate limits and rejected credentials move on at once
    first_tries = 2 if failure in ("500", "503", "drop") else 1
    expected = ["sk-first-aaaaaaaa"] * first_tries + ["sk-second-bbbbbbb"]
    assert [q.credential for q in fake.requests] == expected
    (row,) = await gateway.usage_rows()
    assert row["account_id"] == second
    attempts = json.loads(row["attempts"])
    assert len(attempts) == len(expected) and all(a["failure"] for a in attempts[:-1])
    assert not attempts[-1]["failure"]


async def test_refused_connection_falls_over_to_the_next_account(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    dead = await make_fake_upstream(prefix="/v1")
    dead.refuse()
    alive = await make_fake_upstream(prefix="/v1")
    gateway.add_account("openai", base_url=dead.base_url, priority=0)
    gateway.add_account("openai", base_url=alive.base_url, priority=1)
    await gateway.reload()

    r = await gateway.http.post(CHAT, json=chat())

    assert r.status_code == 200
    assert len(alive.requests) == 1


async def test_hanging_account_times_out_then_next_serves(make_gateway: MakeGateway, make_fake_upstream: MakeFake) -> None:
    h = await make_gateway(upstream_first_byte_timeout_s=0.5)
    fake = await make_fake_upstream(prefix="/v1")
    fake.per_key["sk-hangs-aaaaaaaaa"] = Reply(hang=True)
    h.add_account("openai", base_url=fake.base_url, key="sk-hangs-aaaaaaaaa", priority=0)
    h.add_account("openai", base_url=fake.base_url, key="sk-works-bbbbbbbbb", priority=1)
    await h.reload()
    async with h.http:
        r = await h.http.post(CHAT, json=chat())
    assert r.status_code == 200
    attempts = json.loads((await h.usage_rows())[0]["attempts"])
    assert attempts[0]["failure"] == "transient"


async def test_no_failover_after_the_first_byte_ends_with_an_error_event(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.per_key["sk-breaks-aaaaaaaa"] = Reply(text="a b c d e f", chunks=6, reset_after_chunks=3)
    gateway.add_account("openai", base_url=fake.base_url, key="sk-breaks-aaaaaaaa", priority=0)
    gateway.add_account("openai", base_url=fake.base_url, key="sk-spare-bbbbbbbbb", priority=1)
    await gateway.reload()

    async with gateway.http.stream("POST", CHAT, json=chat(stream=True)) as r:
        assert r.status_code == 200
        lines = await sse_lines(r)

    assert any('"content":"a' in line for line in lines)  # content came through first
    assert '"error"' in lines[-1]  # then the terminal error event
    assert "[DONE]" not in lines[-1]
    assert [q.credential for q in fake.requests] == ["sk-breaks-aaaaaaaa"]  # never spliced another account in
    (row,) = await gateway.usage_rows()
    assert row["outcome"] == "partial"


async def test_client_leaving_mid_stream_cancels_the_upstream(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(text="x" * 200, chunks=40, pace_s=0.1)
    gateway.add_account("openai", base_url=fake.base_url)
    await gateway.reload()

    async with gateway.http.stream("POST", CHAT, json=chat(stream=True)) as r:
        async for line in r.aiter_lines():
            if '"content":"x' in line:
                break
    left = trio.current_time()
    seen = await fake.wait_for_disconnect(timeout=3)
    assert seen - left < 1.0
    await trio.sleep(0.2)
    (row,) = await gateway.usage_rows()
    assert row["outcome"] == "cancelled"


async def test_client_leaving_before_the_first_byte_cancels_the_upstream(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(first_byte_delay_s=30)
    gateway.add_account("openai", base_url=fake.base_url)
    await gateway.reload()

    with trio.move_on_after(0.5):
        await gateway.http.post(CHAT, json=chat())
    await fake.wait_for_disconnect(timeout=3)


async def test_upstream_caller_error_is_returned_without_fallback(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(status=400, error="Invalid value for 'temperature'", error_type="invalid_request_error")
    gateway.add_account("openai", base_url=fake.base_url, priority=0)
    gateway.add_account("openai", base_url=fake.base_url, key="sk-other-account-x", priority=1)
    await gateway.reload()

    r = await gateway.http.post(CHAT, json=chat(temperature=9))

    assert r.status_code == 400
    err = r.json()["error"]
    assert "temperature" in err["message"] and err["type"] == "invalid_request_error"
    assert len(fake.requests) == 1


async def test_every_account_failing_gives_a_real_status_not_a_stack_trace(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(status=503, error="upstream overloaded")
    gateway.add_account("openai", base_url=fake.base_url)
    await gateway.reload()

    r = await gateway.http.post(CHAT, json=chat(stream=True))

    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/json")
    assert "overloaded" in r.json()["error"]["message"]
    assert "Traceback" not in r.text


async def test_context_length_error_keeps_its_openai_code(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(
        status=400,
        error="This model's maximum context length is 128000 tokens",
        error_code="context_length_exceeded",
        error_type="invalid_request_error",
    )
    gateway.add_account("openai", base_url=fake.base_url)
    await gateway.reload()

    r = await gateway.http.post(CHAT, json=chat())

    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"


async def test_model_resolution_forms(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    gateway.add_account("openai", base_url=fake.base_url)
    gateway.add_account("openrouter", base_url=fake.base_url, key="sk-or-xxxxxxxxxxxxx")
    await gateway.reload()

    for model, served in [
        ("openai/gpt-4o-mini", "gpt-4o-mini"),  # provider id / model
        ("gpt-4o-mini", "gpt-4o-mini"),  # bare model id from the catalog
        ("openai/some-brand-new-model", "some-brand-new-model"),  # provider/* passthrough of any id
        ("openrouter/meta-llama/llama-3.1-8b-instruct", "meta-llama/llama-3.1-8b-instruct"),  # slashes kept
    ]:
        r = await gateway.http.post(CHAT, json=chat(model=model))
        assert r.status_code == 200, (model, r.text)
        assert fake.requests[-1].json["model"] == served

    r = await gateway.http.post(CHAT, json=chat(model="no-such-model-anywhere"))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"
    r = await gateway.http.post(CHAT, json=chat(model="deepseek/deepseek-chat"))  # no account for it
    assert r.status_code == 404
    assert "omniroute provider add deepseek" in r.json()["error"]["message"]


async def test_models_list_shows_configured_providers(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    gateway.add_account("openai", base_url=fake.base_url)
    await gateway.reload()

    r = await gateway.http.get("/v1/models")

    ids = {m["id"] for m in r.json()["data"]}
    assert "openai/gpt-4o-mini" in ids
    assert not any(i.startswith("anthropic/") for i in ids)  # not configured


async def test_bad_input_gets_openai_errors_and_the_server_keeps_serving(gateway: Harness) -> None:
    cases = [
        (b"{not json", 400),
        (b"[1,2]", 400),
        (json.dumps({"messages": []}).encode(), 400),  # no model
        (json.dumps({"model": "echo", "messages": [], "stream": "yes"}).encode(), 400),
        (b"[" * 5000 + b"]" * 5000, 400),  # absurd nesting
    ]
    for payload, status in cases:
        r = await gateway.http.post(CHAT, content=payload, headers={"content-type": "application/json"})
        assert r.status_code == status, payload[:40]
        assert r.json()["error"]["message"]
    assert (await gateway.http.get("/health")).status_code == 200


async def test_request_id_is_echoed_or_generated(gateway: Harness) -> None:
    r = await gateway.http.get("/health", headers={"x-request-id": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"
    r = await gateway.http.get("/health", headers={"x-request-id": "bad id with spaces"})
    assert len(r.headers["x-request-id"]) == 32


async def test_demo_echo_provider_answers_without_network(make_gateway: MakeGateway) -> None:
    h = await make_gateway(demo=True)
    async with h.http:
        r = await h.http.post(CHAT, json={"model": "echo", "messages": [{"role": "user", "content": "ping pong"}]})
        assert r.json()["choices"][0]["message"]["content"] == "ping pong"
        async with h.http.stream("POST", CHAT, json={"model": "echo", "stream": True,
                                                      "messages": [{"role": "user", "content": "a longer message to stream"}]}) as s:
            pieces = [json.loads(line[6:])["choices"][0]["delta"].get("content", "")
                      for line in await sse_lines(s) if line != "data: [DONE]"]
    assert "".join(pieces) == "a longer message to stream"
    assert len([p for p in pieces if p]) > 1

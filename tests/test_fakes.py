"""The fake upstreams are the oracle for the gateway's tests, so they are checked against the real thing:
the official SDKs must read the scripted text, tool calls and usage from every format, and each
injected fault must look to an HTTP client the way the scenario says."""

from __future__ import annotations

import dataclasses
import json
import selectors
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import httpx
import openai
import pytest
import trio
from google import genai
from google.genai import types as genai_types
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.render import ANTHROPIC, FORMATS, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES, render
from tests.fakes.reply import Reply, Usage
from tests.fakes.upstream import FakeUpstream
from tests.fakes.wire import RenderContext

pytest_plugins = ["tests.fakes.fixtures"]

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
SIGNATURE = "c2lnbmF0dXJlLWJ5dGVz"  # Gemini's SDK insists on base64
TOOLS = (("get_weather", {"city": "Paris", "days": [1, 2]}), ("get_time", {"tz": "UTC"}))
RICH = Reply(
    text="Bonjour, here is the plan ✓",
    thinking="First, think about the weather.",
    signature=SIGNATURE,
    tool_calls=TOOLS,
    usage=Usage(input=100, output=40, cached=30, reasoning=10),
)
USER: Any = [{"role": "user", "content": "hi"}]  # Any: each SDK has its own message TypedDict
STREAM_PATHS = {
    OPENAI_CHAT: "/v1/chat/completions",
    OPENAI_RESPONSES: "/v1/responses",
    ANTHROPIC: "/v1/messages",
    GEMINI: "/v1beta/models/gemini-x:streamGenerateContent?alt=sse",
}


async def in_thread(fn: Callable[[], T]) -> T:
    return await trio.to_thread.run_sync(fn)


def stream_body(fmt: str) -> dict[str, Any]:
    if fmt == GEMINI:
        return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    return {"model": "m", "stream": True, "max_tokens": 50, "messages": USER, "input": "hi"}


async def collect(client: httpx.AsyncClient, path: str, body: dict[str, Any], sink: list[bytes]) -> None:
    """Stream a POST, appending each raw piece as it arrives (kept if the stream then fails)."""
    async with client.stream("POST", path, json=body) as r:
        assert r.status_code == 200
        async for piece in r.aiter_raw():
            sink.append(piece)


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) per frame; the fakes write one `data:` line per frame."""
    out: list[tuple[str | None, str]] = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((fields.get("event"), fields["data"]))
    return out


def streamed_text(fmt: str, raw: bytes) -> str:
    """The visible text a client would assemble from one of the fake's streams."""
    pieces: list[str] = []
    for _, data in sse_events(raw):
        if data == "[DONE]":
            continue
        obj = json.loads(data)
        if fmt == OPENAI_CHAT:
            pieces += [c["delta"].get("content") or "" for c in obj["choices"]]
        elif fmt == OPENAI_RESPONSES and obj["type"] == "response.output_text.delta":
            pieces.append(obj["delta"])
        elif (
            fmt == ANTHROPIC and obj["type"] == "content_block_delta" and obj["delta"]["type"] == "text_delta"
        ):
            pieces.append(obj["delta"]["text"])
        elif fmt == GEMINI:
            parts = obj["candidates"][0]["content"].get("parts", [])
            pieces += [p.get("text", "") for p in parts if not p.get("thought")]
    return "".join(pieces)


# ---- the official SDKs read every format -------------------------------------------------------------


@pytest.mark.clients
async def test_openai_sdk_reads_chat_completion_and_stream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.default = RICH
    client = openai.OpenAI(base_url=fake_upstream.base_url + "/v1", api_key="sk-a", max_retries=0)

    def run() -> tuple[Any, Any]:
        plain = client.chat.completions.create(model="gpt-x", messages=USER)
        with client.chat.completions.stream(
            model="gpt-x",
            messages=USER,
            stream_options={"include_usage": True},
        ) as stream:
            for _ in stream:
                pass
            return plain, stream.get_final_completion()

    for completion in await in_thread(run):
        message = completion.choices[0].message
        assert message.content == RICH.text
        assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == list(
            TOOLS
        )
        assert completion.choices[0].finish_reason == "tool_calls"
        assert completion.model == "gpt-x"
        usage = completion.usage
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 40, 140)
        assert usage.prompt_tokens_details.cached_tokens == 30
        assert usage.completion_tokens_details.reasoning_tokens == 10
    assert [r.json["stream"] for r in fake_upstream.requests if r.json.get("stream")] == [True]


@pytest.mark.clients
async def test_openai_sdk_parses_interleaved_split_tool_call_chunks(fake_upstream: FakeUpstream) -> None:
    # Not OpenAI's own habit (the SDK's .stream() helper cannot take a nameless first fragment), but
    # OpenAI-compatible servers do it: each chunk still parses, and accumulating by index recovers the calls.
    fake_upstream.default = Reply(
        text="", tool_calls=TOOLS, interleave_tool_calls=True, split_id_and_name=True
    )
    client = openai.OpenAI(base_url=fake_upstream.base_url + "/v1", api_key="sk-a", max_retries=0)

    def run() -> list[Any]:
        stream = client.chat.completions.create(model="m", messages=USER, stream=True)
        return [d for chunk in stream for d in chunk.choices[0].delta.tool_calls or []]

    fragments = await in_thread(run)
    assert [f.index for f in fragments[:4]] == [0, 1, 0, 1]
    assert (fragments[0].id, fragments[0].function) == ("call_" + fragments[0].id[5:], None)
    calls: dict[int, dict[str, str]] = {}
    for f in fragments:
        call = calls.setdefault(f.index, {"id": "", "name": "", "arguments": ""})
        call["id"] += f.id or ""
        if f.function:
            call["name"] += f.function.name or ""
            call["arguments"] += f.function.arguments or ""
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == list(TOOLS)
    assert calls[0]["id"] != calls[1]["id"]


@pytest.mark.clients
async def test_openai_sdk_reads_responses_create_and_stream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.default = RICH
    client = openai.OpenAI(base_url=fake_upstream.base_url + "/v1", api_key="sk-a", max_retries=0)

    def run() -> tuple[Any, Any, list[str]]:
        created = client.responses.create(model="gpt-x", input="hi")
        with client.responses.stream(model="gpt-x", input="hi") as stream:
            deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
            return created, stream.get_final_response(), deltas

    created, streamed, deltas = await in_thread(run)
    assert "".join(deltas) == RICH.text
    assert len(deltas) == RICH.chunks
    for response in (created, streamed):
        assert response.output_text == RICH.text
        assert [o.type for o in response.output] == ["reasoning", "message", "function_call", "function_call"]
        reasoning = response.output[0]
        assert reasoning.summary[0].text == RICH.thinking
        assert reasoning.encrypted_content == SIGNATURE
        calls = [(o.name, json.loads(o.arguments)) for o in response.output if o.type == "function_call"]
        assert calls == list(TOOLS)
        assert response.usage.input_tokens == 100
        assert response.usage.input_tokens_details.cached_tokens == 30
        assert response.usage.output_tokens_details.reasoning_tokens == 10


@pytest.mark.clients
async def test_anthropic_sdk_reads_message_and_stream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.default = dataclasses.replace(RICH, ping_every=3)
    client = anthropic.Anthropic(base_url=fake_upstream.base_url, api_key="ak-a", max_retries=0)

    def run() -> tuple[Any, Any, str, int]:
        created = client.messages.create(model="claude-x", max_tokens=100, messages=USER)
        with client.messages.stream(model="claude-x", max_tokens=100, messages=USER) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        count = client.messages.count_tokens(model="claude-x", messages=USER)
        return created, final, text, count.input_tokens

    created, streamed, text, counted = await in_thread(run)
    assert text == RICH.text
    assert counted == 100  # the default reply's input tokens
    for message in (created, streamed):
        kinds = [b.type for b in message.content]
        assert kinds == ["thinking", "text", "tool_use", "tool_use"]
        assert (message.content[0].thinking, message.content[0].signature) == (RICH.thinking, SIGNATURE)
        assert message.content[1].text == RICH.text
        assert [(b.name, b.input) for b in message.content[2:]] == list(TOOLS)
        assert message.stop_reason == "tool_use"
        # Anthropic's input_tokens excludes the cache read.
        assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (70, 30)
        assert message.usage.output_tokens == 40


@pytest.mark.clients
async def test_genai_sdk_reads_generate_content_and_stream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.default = RICH
    options = genai_types.HttpOptions(base_url=fake_upstream.base_url, api_version="v1beta")
    client = genai.Client(api_key="gk-a", http_options=options)

    def run() -> tuple[Any, list[Any], Any]:
        whole = client.models.generate_content(model="gemini-x", contents="hi")
        chunks = list(client.models.generate_content_stream(model="gemini-x", contents="hi"))
        return whole, chunks, client.models.count_tokens(model="gemini-x", contents="hi")

    whole, chunks, counted = await in_thread(run)
    assert counted.total_tokens == 100
    parts = whole.candidates[0].content.parts
    assert [p.text for p in parts if p.thought] == [RICH.thinking]
    assert "".join(p.text for p in parts if p.text and not p.thought) == RICH.text
    assert [(c.name, c.args) for c in whole.function_calls] == list(TOOLS)
    assert parts[2].thought_signature is not None  # on the first functionCall part
    streamed_text = "".join(
        p.text for c in chunks for p in c.candidates[0].content.parts if p.text and not p.thought
    )
    assert streamed_text == RICH.text
    assert [(c.name, c.args) for c in chunks[-1].function_calls] == list(TOOLS)
    for usage in (whole.usage_metadata, chunks[-1].usage_metadata):
        # Gemini's candidates exclude thoughts; the prompt count includes the cache.
        assert (usage.prompt_token_count, usage.cached_content_token_count) == (100, 30)
        assert (usage.candidates_token_count, usage.thoughts_token_count, usage.total_token_count) == (
            30,
            10,
            140,
        )
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert [r.credential for r in fake_upstream.requests] == ["gk-a", "gk-a", "gk-a"]
    assert fake_upstream.requests[1].query == {"alt": "sse"}


@pytest.mark.clients
async def test_sdks_raise_their_own_errors_from_the_fake_error_bodies(fake_upstream: FakeUpstream) -> None:
    oc = openai.OpenAI(base_url=fake_upstream.base_url + "/v1", api_key="k", max_retries=0)
    ac = anthropic.Anthropic(base_url=fake_upstream.base_url, api_key="k", max_retries=0)
    gc = genai.Client(
        api_key="k",
        http_options=genai_types.HttpOptions(base_url=fake_upstream.base_url, api_version="v1beta"),
    )
    fake_upstream.queue(
        Reply(status=429, error_code="insufficient_quota", error_type="insufficient_quota"),
        Reply(status=529),
        Reply(status=429, retry_delay="17s"),
    )

    def run() -> list[Exception]:
        caught: list[Exception] = []
        for call in (
            lambda: oc.chat.completions.create(model="m", messages=USER),
            lambda: ac.messages.create(model="m", max_tokens=5, messages=USER),
            lambda: gc.models.generate_content(model="g", contents="hi"),
        ):
            with pytest.raises(Exception) as info:
                call()
            caught.append(info.value)
        return caught

    openai_err, anthropic_err, genai_err = await in_thread(run)
    assert isinstance(openai_err, openai.RateLimitError)
    assert openai_err.code == "insufficient_quota"
    assert isinstance(anthropic_err, anthropic.APIStatusError)
    assert anthropic_err.status_code == 529
    assert anthropic_err.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert isinstance(genai_err, genai.errors.ClientError)
    assert genai_err.code == 429
    assert genai_err.status == "RESOURCE_EXHAUSTED"


# ---- fault injection, seen through httpx -------------------------------------------------------------


async def test_rate_limit_answer_carries_headers_and_openai_error_body(fake_upstream: FakeUpstream) -> None:
    hints = {"retry-after": "20", "retry-after-ms": "20000", "x-ratelimit-reset-requests": "6m0s"}
    fake_upstream.default = Reply(
        status=429, error="Rate limit reached. Please try again in 20s.", headers=hints
    )
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        r = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True})
    assert r.status_code == 429
    assert {k: r.headers[k] for k in hints} == hints
    assert r.json()["error"] == {
        "message": "Rate limit reached. Please try again in 20s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }


async def test_anthropic_overload_and_gemini_retry_info_bodies(fake_upstream: FakeUpstream) -> None:
    reset = {"anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z"}
    fake_upstream.queue(
        Reply(status=529, headers=reset),
        Reply(status=429, retry_delay="17s", error_code="RATE_LIMIT_EXCEEDED"),
        Reply(status=503),
    )
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        overloaded = await client.post("/v1/messages", json={"model": "c", "max_tokens": 5, "messages": USER})
        limited = await client.post("/v1beta/models/g:generateContent", json={"contents": []})
        wrapped = await client.post("/v1beta/models/g:streamGenerateContent", json={"contents": []})
    assert overloaded.status_code == 529
    assert (
        overloaded.headers["anthropic-ratelimit-requests-reset"]
        == reset["anthropic-ratelimit-requests-reset"]
    )
    assert overloaded.json()["type"] == "error"
    assert overloaded.json()["error"]["type"] == "overloaded_error"
    error = limited.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"} in error["details"]
    # Without alt=sse Gemini's stream is a JSON array, errors included.
    assert wrapped.status_code == 503
    assert wrapped.json()[0]["error"]["status"] == "UNAVAILABLE"


async def test_gemini_stream_without_sse_is_one_json_array(fake_upstream: FakeUpstream) -> None:
    fake_upstream.default = Reply(text="abcdef", chunks=3)
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        r = await client.post("/v1beta/models/g:streamGenerateContent", json={"contents": []})
    chunks = r.json()
    assert r.headers["content-type"] == "application/json"
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks] == ["ab", "cd", "ef"]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] == 19


async def test_reset_after_chunks_cuts_the_stream_with_a_tcp_reset(fake_upstream: FakeUpstream) -> None:
    fake_upstream.default = Reply(chunks=10, pace_s=0.02, reset_after_chunks=3)
    received: list[bytes] = []
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await collect(client, "/v1/chat/completions", stream_body(OPENAI_CHAT), received)
    events = sse_events(b"".join(received))
    assert len(events) == 3
    assert "[DONE]" not in [data for _, data in events]
    assert fake_upstream.disconnects == 0  # the fake cut it, the client did not leave


async def test_hang_times_out_the_client_and_counts_its_disconnect(fake_upstream: FakeUpstream) -> None:
    fake_upstream.default = Reply(hang=True)
    async with httpx.AsyncClient(base_url=fake_upstream.base_url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/v1/messages", json={"model": "c", "max_tokens": 5, "messages": USER})
    await fake_upstream.wait_for_disconnect(timeout=5)
    assert fake_upstream.disconnects == 1
    assert len(fake_upstream.requests) == 1  # the request was read in full


async def test_stall_keeps_the_connection_open_without_frames(fake_upstream: FakeUpstream) -> None:
    fake_upstream.default = Reply(stall_after_chunks=2)
    received: list[bytes] = []
    async with httpx.AsyncClient(base_url=fake_upstream.base_url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await collect(client, "/v1/messages", stream_body(ANTHROPIC), received)
    assert [name for name, _ in sse_events(b"".join(received))] == ["message_start", "content_block_start"]
    await fake_upstream.wait_for_disconnect(timeout=5)


async def test_malformed_line_is_sent_and_the_stream_goes_on(fake_upstream: FakeUpstream) -> None:
    fake_upstream.default = Reply(chunks=3, malformed_after_chunks=2)
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        r = await client.post("/v1/chat/completions", json=stream_body(OPENAI_CHAT))
    datas = [data for _, data in sse_events(r.content)]
    with pytest.raises(json.JSONDecodeError):
        json.loads(datas[2])
    good = [json.loads(d) for d in datas[:2] + datas[3:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in good) == Reply().text
    assert datas[-1] == "[DONE]"


async def test_anthropic_pings_are_interleaved(fake_upstream: FakeUpstream) -> None:
    fake_upstream.default = Reply(ping_every=2)
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        r = await client.post("/v1/messages", json=stream_body(ANTHROPIC))
    names = [name for name, _ in sse_events(r.content)]
    assert names[:5] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
    ]
    assert names.count("ping") == (len(names) - names.count("ping") - 1) // 2
    assert names[-1] == "message_stop"


@pytest.mark.parametrize("fmt", FORMATS)
async def test_midstream_error_is_the_formats_in_band_error(fake_upstream: FakeUpstream, fmt: str) -> None:
    fake_upstream.default = Reply(midstream_error_after_chunks=3, error="boom")
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        r = await client.post(STREAM_PATHS[fmt], json=stream_body(fmt))
    events = sse_events(r.content)
    assert len(events) == 4
    name, data = events[-1]
    last = json.loads(data)
    if fmt == OPENAI_CHAT:
        assert (name, last["error"]["message"]) == (None, "boom")
    elif fmt == OPENAI_RESPONSES:
        assert (name, last["response"]["status"], last["response"]["error"]["message"]) == (
            "response.failed",
            "failed",
            "boom",
        )
        assert last["sequence_number"] == 3
    elif fmt == ANTHROPIC:
        assert (name, last["error"]["type"], last["error"]["message"]) == (
            "error",
            "overloaded_error",
            "boom",
        )
    else:
        assert (name, last["error"]["status"], last["error"]["message"]) == (None, "INTERNAL", "boom")


async def test_refuse_then_accept_on_the_same_port(fake_upstream: FakeUpstream) -> None:
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        assert (await client.get("/v1/models")).status_code == 200
        port = fake_upstream.port
        fake_upstream.refuse()
        with pytest.raises(httpx.ConnectError):
            await client.get("/v1/models")
        fake_upstream.accept()
        assert fake_upstream.port == port
        r = await client.get("/v1/models")
    assert r.json()["data"][0]["id"] == "fake-model"


async def test_client_leaving_mid_stream_is_counted_and_its_connection_closed(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.default = Reply(chunks=50, pace_s=0.02)
    async with (
        httpx.AsyncClient(base_url=fake_upstream.base_url) as client,
        client.stream("POST", "/v1/responses", json=stream_body(OPENAI_RESPONSES)) as r,
    ):
        # Leave after the headers, unread: httpx then closes the connection mid-stream.
        assert r.status_code == 200
        assert fake_upstream.open_connections == 1
    left_at = await fake_upstream.wait_for_disconnect(timeout=5)
    assert left_at >= fake_upstream.requests[0].time
    await fake_upstream.wait_for_connections(0)
    assert fake_upstream.disconnects == 1


async def test_per_key_replies_answer_by_any_credential_style(fake_upstream: FakeUpstream) -> None:
    fake_upstream.per_key["key-a"] = Reply(status=429, error="A is limited")
    fake_upstream.per_key["key-b"] = Reply(text="from B")
    fake_upstream.per_key["key-c"] = [Reply(text="C once")]
    body = {"model": "m", "max_tokens": 5, "messages": USER}
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        a = await client.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer key-a"})
        b = await client.post("/v1/messages", json=body, headers={"x-api-key": "key-b"})
        g = await client.post(
            "/v1beta/models/g:generateContent", json={}, headers={"x-goog-api-key": "key-b"}
        )
        q = await client.post("/v1beta/models/g:generateContent?key=key-b", json={})
        c1 = await client.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer key-c"})
        c2 = await client.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer key-c"})
    assert (a.status_code, a.json()["error"]["message"]) == (429, "A is limited")
    assert b.json()["content"][0]["text"] == "from B"
    assert g.json()["candidates"][0]["content"]["parts"][0]["text"] == "from B"
    assert q.json()["candidates"][0]["content"]["parts"][0]["text"] == "from B"
    assert c1.json()["choices"][0]["message"]["content"] == "C once"
    assert c2.json()["choices"][0]["message"]["content"] == Reply().text  # list used up: the default
    assert [r.credential for r in fake_upstream.requests] == [
        "key-a",
        "key-b",
        "key-b",
        "key-b",
        "key-c",
        "key-c",
    ]


async def test_byte_split_frames_arrive_in_small_writes(fake_upstream: FakeUpstream) -> None:
    reply = Reply(text="héllo wörld ✓ ünïcode", sse_split=5)
    fake_upstream.default = reply
    pieces: list[bytes] = []
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        await collect(client, "/v1/messages", stream_body(ANTHROPIC), pieces)
    assert max(map(len, pieces)) <= 5
    expected = render(reply, ANTHROPIC, True, RenderContext("m", False))
    assert b"".join(pieces) == b"".join(expected.frames)
    assert streamed_text(ANTHROPIC, b"".join(pieces)) == reply.text


async def test_queue_is_consumed_in_order_then_default_and_requests_are_recorded(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.queue(Reply(text="one"), Reply(text="two"))
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        texts = []
        for _ in range(3):
            r = await client.post(
                "/v1/chat/completions?trace=1",
                json={"model": "m", "messages": USER},
                headers={"X-Trace": "t"},
            )
            texts.append(r.json()["choices"][0]["message"]["content"])
        assert fake_upstream.open_connections == 1  # keep-alive: one connection served all three
    assert texts == ["one", "two", Reply().text]
    rec = fake_upstream.requests[0]
    assert (rec.method, rec.path, rec.query) == ("POST", "/v1/chat/completions", {"trace": "1"})
    assert rec.headers["x-trace"] == "t"
    assert json.loads(rec.body) == rec.json == {"model": "m", "messages": USER}
    assert (rec.format, rec.model, rec.stream, rec.credential) == (OPENAI_CHAT, "m", False, None)


async def test_raw_and_drop_replies(fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(
        Reply(raw=b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 3\r\n\r\nbad"), Reply(drop=True)
    )
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        r = await client.post("/v1/responses", json={"model": "m", "input": "hi"})
        assert (r.status_code, r.content) == (502, b"bad")
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await client.post("/v1/responses", json={"model": "m", "input": "hi"})


async def test_openai_usage_chunk_follows_stream_options_unless_overridden(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.queue(
        Reply(), Reply(), Reply(include_usage=True), Reply(content_and_finish_in_one_chunk=True)
    )
    with_usage = {**stream_body(OPENAI_CHAT), "stream_options": {"include_usage": True}}
    async with httpx.AsyncClient(base_url=fake_upstream.base_url) as client:
        bodies = [
            (await client.post("/v1/chat/completions", json=body)).content
            for body in (
                stream_body(OPENAI_CHAT),
                with_usage,
                stream_body(OPENAI_CHAT),
                stream_body(OPENAI_CHAT),
            )
        ]
    chunks = [[json.loads(d) for _, d in sse_events(b)[:-1]] for b in bodies]
    assert [any(c.get("usage") for c in cs) for cs in chunks] == [False, True, True, False]
    assert chunks[1][-1]["choices"] == []
    last = chunks[3][-1]["choices"][0]
    assert (last["delta"], last["finish_reason"]) == ({"content": "tream"}, "stop")


async def test_delays_and_pacing_follow_trio_time(fake_upstream: FakeUpstream, autojump_clock: Any) -> None:
    fake_upstream.default = Reply(chunks=3, first_byte_delay_s=10, first_chunk_delay_s=5, pace_s=1)
    arrivals: list[float] = []
    async with httpx.AsyncClient(base_url=fake_upstream.base_url, timeout=60) as client:
        start = trio.current_time()
        async with client.stream("POST", "/v1/chat/completions", json=stream_body(OPENAI_CHAT)) as r:
            headers_at = trio.current_time() - start
            async for _ in r.aiter_raw():
                arrivals.append(trio.current_time() - start)
    assert headers_at == pytest.approx(10, abs=0.01)
    # role chunk, 3 content chunks, finish chunk, [DONE]: one write each, a second apart.
    assert arrivals == pytest.approx([15, 16, 17, 18, 19, 20], abs=0.01)


async def test_hang_under_mock_clock_waits_for_the_client_deadline(
    fake_upstream: FakeUpstream, autojump_clock: Any
) -> None:
    fake_upstream.default = Reply(hang=True)
    async with httpx.AsyncClient(base_url=fake_upstream.base_url, timeout=120) as client:
        start = trio.current_time()
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    assert await fake_upstream.wait_for_disconnect(timeout=5) - start == pytest.approx(120, abs=0.01)


async def test_several_fakes_from_the_factory(make_fake_upstream: Callable[..., Any]) -> None:
    openai_like = await make_fake_upstream(prefix="/v1")
    gemini_like = await make_fake_upstream(prefix="/v1beta")
    assert openai_like.port != gemini_like.port
    assert openai_like.base_url.endswith("/v1")
    async with httpx.AsyncClient() as client:
        r = await client.post(gemini_like.base_url + "/models/g:generateContent", json={})
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == Reply().text
    assert openai_like.requests == []


async def test_expect_100_continue_is_answered_before_the_body(fake_upstream: FakeUpstream) -> None:
    body = json.dumps({"model": "m", "messages": USER}).encode()
    stream = await trio.open_tcp_stream("127.0.0.1", fake_upstream.port)
    async with stream:
        head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
        await stream.send_all(head + b"content-length: %d\r\n\r\n" % len(body))
        interim = await stream.receive_some(1024)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        await stream.send_all(body)
        answer = await stream.receive_some(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert fake_upstream.requests[0].json == {"model": "m", "messages": USER}


def test_command_line_mode_prints_its_port_and_serves() -> None:
    cmd = [sys.executable, "-m", "tests.fakes.upstream", "--port", "0", "--print-port", "--text", "bench"]
    with subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                assert sel.select(timeout=20), "the fake printed no port"
            port = int(proc.stdout.readline())
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions", json={"model": "m", "messages": USER}
            )
            assert r.json()["choices"][0]["message"]["content"] == "bench"
        finally:
            proc.terminate()


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("length", ("length", "max_output_tokens", "max_tokens", "MAX_TOKENS")),
        ("content_filter", ("content_filter", "content_filter", "refusal", "SAFETY")),
        ("tool_calls", ("tool_calls", None, "tool_use", "STOP")),
    ],
)
def test_stop_reasons_use_each_formats_vocabulary(stop: str, expected: tuple[str | None, ...]) -> None:
    reply = Reply(stop_reason=stop, tool_calls=TOOLS[:1] if stop == "tool_calls" else ())
    ctx = RenderContext("m", False)
    chat, responses, messages, gemini = (
        json.loads(render(reply, f, False, ctx).body or b"") for f in FORMATS
    )
    incomplete = responses["incomplete_details"]
    assert (
        chat["choices"][0]["finish_reason"],
        incomplete and incomplete["reason"],
        messages["stop_reason"],
        gemini["candidates"][0]["finishReason"],
    ) == expected
    assert responses["status"] == ("completed" if incomplete is None else "incomplete")


# ---- the renderers agree with themselves however the text is cut -----------------------------------------


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40), chunks=st.integers(1, 12), fmt=st.sampled_from(FORMATS))
def test_streams_reassemble_the_scripted_text(text: str, chunks: int, fmt: str) -> None:
    reply = Reply(text=text, chunks=chunks)
    raw = b"".join(render(reply, fmt, True, RenderContext("m", True)).frames)
    assert streamed_text(fmt, raw) == text
    events = sse_events(raw)
    if fmt == OPENAI_RESPONSES:
        assert [json.loads(d)["sequence_number"] for _, d in events] == list(range(len(events)))
    if fmt == OPENAI_CHAT:
        assert events[-1][1] == "[DONE]"

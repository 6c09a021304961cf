"""The parametrized core: every client mode x every upstream format."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance import clients as c
from tests.conformance.clients import MODES, Mode
from tests.conformance.conftest import PROVIDERS, Mesh
from tests.conformance.upstreams import system_of, turns_of
from tests.fakes.reply import Reply, Usage

UPSTREAMS = list(PROVIDERS)

KNOWN: dict[tuple[str, str], str] = {}  # (mode, upstream) -> reason of a known bug (strict xfail)


def matrix(modes: tuple[Mode, ...] = MODES, *, known: bool = True) -> list[Any]:
    """(mode, upstream) params; `known` marks the combinations with a known bug as strict xfails."""
    out = []
    for mode in modes:
        for upstream in UPSTREAMS:
            reason = KNOWN.get((mode.id, upstream)) if known else None
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            out.append(pytest.param(mode, upstream, id=f"{mode.id}-{upstream}", marks=marks))
    return out


def reasoning_request(fmt: str) -> dict[str, Any]:
    """What each client format sends to ask for visible reasoning."""
    if fmt == c.OC:
        return {"reasoning_effort": "medium"}
    if fmt == c.OR:
        return {
            "reasoning": {"effort": "medium", "summary": "auto"},
            "include": ["reasoning.encrypted_content"],
        }
    if fmt == c.AM:
        return {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 4096}
    return {"generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2048}}}


def usage_request(mode: Mode) -> dict[str, Any]:
    return {"stream_options": {"include_usage": True}} if mode.client == c.OC and mode.stream else {}


@pytest.mark.parametrize(("mode", "upstream"), matrix())
async def test_text_and_usage(mesh: Mesh, mode: Mode, upstream: str) -> None:
    """Text arrives whole, the stop reason is a natural end, and usage keeps its meaning (cases 54-56:
    once normalised to OpenAI's definition, input includes the cache and output includes reasoning)."""
    mesh.fakes[upstream].default = Reply(
        text="Bonjour, le monde", chunks=4, usage=Usage(input=1000, output=100, cached=600, reasoning=60)
    )
    body = c.body_for(mode.client, [c.user("say hi")], system="be brief", **usage_request(mode))
    ans = await mesh.send(mode, upstream, body)
    assert ans.status == 200, ans.raw
    assert ans.text == "Bonjour, le monde"
    assert ans.stop == "stop"
    req = mesh.last(upstream)
    assert [(t.kind, t.text) for t in turns_of(upstream, req.json)] == [("user", "say hi")]
    assert system_of(upstream, req.json) == ["be brief"]
    assert ans.usage is not None
    assert (ans.usage["input"], ans.usage["output"], ans.usage["cached"]) == (1000, 100, 600)
    if "total" in ans.usage:
        assert ans.usage["total"] == 1100
    if mode.client != c.AM and upstream != c.AM:  # Anthropic has no reasoning-token count
        assert ans.usage["reasoning"] == 60


WEATHER_ARGS = {"city": "Paris", "unit": "c"}


@pytest.mark.parametrize(("mode", "upstream"), matrix())
async def test_tool_call_round_trip(mesh: Mesh, mode: Mode, upstream: str) -> None:
    fake = mesh.fakes[upstream]
    fake.default = Reply(text="", tool_calls=[("get_weather", WEATHER_ARGS)], args_chunks=4)
    tools = [c.tool_spec(mode.client)]
    ask = c.user("weather in Paris?")
    ans = await mesh.send(mode, upstream, c.body_for(mode.client, [ask], tools=tools))
    assert ans.status == 200, ans.raw
    (got,) = ans.calls
    assert (got.name, got.arguments) == ("get_weather", WEATHER_ARGS)
    assert ans.stop == "tool_calls"
    assert ans.text == ""
    if mode.client != c.GG:
        assert got.id, "the client can answer the call by id"
    first = mesh.last(upstream).json
    assert _tool_names(upstream, first) == ["get_weather"]

    # the client sends the result back under the id (Gemini: the name) it was given
    fake.default = Reply(text="It is 18C in Paris.")
    signature = ans.signatures[0] if mode.client == c.GG and ans.signatures else None
    history = [ask, c.call(got.id, got.name, WEATHER_ARGS, signature), c.result(got.id, got.name, "18C")]
    ans2 = await mesh.send(mode, upstream, c.body_for(mode.client, history, tools=tools))
    assert ans2.status == 200, ans2.raw
    assert ans2.text == "It is 18C in Paris."
    turns = turns_of(upstream, mesh.last(upstream).json)
    assert [t.kind for t in turns] == ["user", "call", "result"]
    sent_call, sent_result = turns[1], turns[2]
    assert (sent_call.name, sent_call.args) == ("get_weather", WEATHER_ARGS)
    assert sent_result.name in ("get_weather", "")
    assert "18C" in sent_result.text
    if upstream != c.GG:
        assert sent_call.call_id == sent_result.call_id, "the result answers the call it follows"


def _tool_names(fmt: str, body: dict[str, Any]) -> list[str]:
    tools = body.get("tools") or []
    if fmt == c.OC:
        return [t["function"]["name"] for t in tools]
    if fmt == c.GG:
        return [d["name"] for t in tools for d in t.get("functionDeclarations", [])]
    return [t["name"] for t in tools]


THOUGHT = "The user wants a greeting; keep it short."


def reasoning_on_upstream(fmt: str, body: dict[str, Any]) -> bool:
    if fmt == c.OC:
        return body.get("reasoning_effort") not in (None, "none")
    if fmt == c.OR:
        return (body.get("reasoning") or {}).get("effort") not in (None, "none")
    if fmt == c.AM:
        return (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    config = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
    return config.get("includeThoughts") is True and config.get("thinkingBudget", 1) != 0


@pytest.mark.parametrize(("mode", "upstream"), matrix())
async def test_reasoning(mesh: Mesh, mode: Mode, upstream: str) -> None:
    mesh.fakes[upstream].default = Reply(text="Hi!", thinking=THOUGHT, signature="c2lnLXRva2VuLTE=", chunks=3)
    body = c.body_for(mode.client, [c.user("greet me")], **reasoning_request(mode.client))
    ans = await mesh.send(mode, upstream, body)
    assert ans.status == 200, ans.raw
    assert ans.reasoning == THOUGHT
    assert ans.text == "Hi!"
    assert reasoning_on_upstream(upstream, mesh.last(upstream).json), "the reasoning request was translated"
    if upstream != c.OC:  # an OpenAI Chat upstream mints no token
        assert ans.signatures, "the reasoning token reaches the client so it can send it back"


@pytest.mark.parametrize(("mode", "upstream"), matrix())
async def test_stop_reasons(mesh: Mesh, mode: Mode, upstream: str) -> None:
    """Cases 59/60 across the matrix: a token limit and a safety stop keep their meaning in every format."""
    for reason in ("length", "content_filter", "stop"):
        mesh.fakes[upstream].default = Reply(text="partial answer", stop_reason=reason)
        ans = await mesh.send(mode, upstream, c.body_for(mode.client, [c.user("go on")]))
        assert ans.status == 200, ans.raw
        assert ans.text == "partial answer"
        assert ans.stop == reason, (reason, ans.stop_raw)


# upstream error -> (client status, OpenAI code, Anthropic type, Gemini status)
ERRORS = {
    "bad-request": (
        Reply(status=400, error="messages: field required"),
        400,
        "invalid_request_error",
        "invalid_request_error",
        "INVALID_ARGUMENT",
    ),
    "rate-limit": (
        Reply(status=429, error="slow down", headers={"retry-after": "7"}, retry_delay="7s"),
        429,
        "rate_limit_exceeded",
        "rate_limit_error",
        "RESOURCE_EXHAUSTED",
    ),
}


@pytest.mark.parametrize("error", list(ERRORS))
@pytest.mark.parametrize(("mode", "upstream"), matrix(known=False))
async def test_error_before_first_byte_in_client_format(
    mesh: Mesh, mode: Mode, upstream: str, error: str
) -> None:
    """Case 70 (first half): the client gets a real status and its own error body, never a 200."""
    reply, status, oc_code, am_type, gg_status = ERRORS[error]
    mesh.fakes[upstream].default = reply
    ans = await mesh.send(mode, upstream, c.body_for(mode.client, [c.user("hi")]))
    assert ans.status == status, ans.raw
    assert ans.error is not None
    assert not ans.error_in_stream
    assert reply.error
    assert reply.error in ans.error["message"], "the provider's own message is passed on"
    if mode.client in (c.OC, c.OR):
        assert oc_code in (ans.error["code"], ans.error["type"]), ans.error
    elif mode.client == c.AM:
        assert ans.error["type"] == am_type, ans.error
    else:
        assert ans.error["type"] == gg_status, ans.error
    if error == "rate-limit":
        assert ans.headers.get("retry-after") == "7"


# frames each fake sends before its second text delta is out (start events included)
AFTER_TWO_TEXT_FRAMES = {c.OC: 3, c.OR: 6, c.AM: 4, c.GG: 2}


@pytest.mark.parametrize(("mode", "upstream"), matrix(c.STREAM_MODES))
async def test_error_mid_stream_is_the_client_formats_error_event(
    mesh: Mesh, mode: Mode, upstream: str
) -> None:
    """Case 70 (second half): after the first byte the stream ends with the client format's error event."""
    mesh.fakes[upstream].default = Reply(
        text="one two three four five six",
        chunks=6,
        midstream_error_after_chunks=AFTER_TWO_TEXT_FRAMES[upstream],
        error="upstream broke",
    )
    ans = await mesh.send(mode, upstream, c.body_for(mode.client, [c.user("hi")]))
    assert ans.status == 200
    assert ans.text, "what came before the error reached the client"
    assert "one two three four five six".startswith(ans.text), ans.text
    assert ans.error_in_stream, ans.raw
    assert ans.stop is None or mode.client == c.OR


SIGNATURE = "c2lnLXJvdW5kLXRyaXA="


def echo_reasoning(mode: Mode, ans: c.Answer) -> list[c.Turn]:
    """The assistant turn as the client format writes it back: reasoning (with the token where the
    format has a place for it) followed by the call."""
    if mode.client == c.GG:  # google-genai keeps the model's content, thought parts included, verbatim
        return [c.Turn("parts", extra={"parts": ans.extra["model_parts"]})]
    (got,) = ans.calls
    token = ans.signatures[0] if ans.signatures else None
    turns: list[c.Turn] = []
    if mode.client == c.OC:
        blocks = [{"type": "thinking", "thinking": ans.reasoning, "signature": token}] if token else []
        turns.append(c.Turn("reasoning", ans.reasoning, extra={"thinking_blocks": blocks} if blocks else {}))
    else:
        turns.append(c.reasoning(ans.reasoning, token))
    turns.append(c.call(got.id, got.name, WEATHER_ARGS))
    return turns


@pytest.mark.parametrize(("mode", "upstream"), matrix())
async def test_reasoning_with_tool_call_round_trip(mesh: Mesh, mode: Mode, upstream: str) -> None:
    """Interleaved thinking + tool use (formats.md §4 cases 1-2): the reasoning token minted by the upstream
    goes back to that upstream, in its own slot, when the client echoes the turn in its own format."""
    fake = mesh.fakes[upstream]
    fake.default = Reply(
        text="", thinking=THOUGHT, signature=SIGNATURE, tool_calls=[("get_weather", WEATHER_ARGS)]
    )
    tools = [c.tool_spec(mode.client)]
    ask = c.user("weather in Paris?")
    extra = reasoning_request(mode.client)
    ans = await mesh.send(mode, upstream, c.body_for(mode.client, [ask], tools=tools, **extra))
    assert ans.status == 200, ans.raw
    assert ans.reasoning == THOUGHT
    (got,) = ans.calls

    fake.default = Reply(text="18C it is.")
    history = [ask, *echo_reasoning(mode, ans), c.result(got.id, got.name, "18C")]
    ans2 = await mesh.send(mode, upstream, c.body_for(mode.client, history, tools=tools, **extra))
    assert ans2.status == 200, ans2.raw
    assert ans2.text == "18C it is."
    sent = mesh.last(upstream).json
    turns = turns_of(upstream, sent)
    assert [t.kind for t in turns if t.kind != "reasoning"] == ["user", "call", "result"]
    if upstream == c.AM:
        assert [t.kind for t in turns][:3] == ["user", "reasoning", "call"], "thinking first in its turn"
        assert turns[1].signature == SIGNATURE
        assert sent["thinking"]["type"] == "enabled", "the tool loop keeps thinking on"
    elif upstream == c.GG:
        call = next(t for t in turns if t.kind == "call")
        assert call.signature == SIGNATURE, "Gemini gets its own thoughtSignature back on the call"
    elif upstream == c.OR:
        (item,) = [t for t in turns if t.kind == "reasoning"]
        assert item.signature == SIGNATURE, "encrypted_content goes back to the Responses API"

"""Property tests, sans-I/O, on the format modules directly (no gateway, no sockets).

* A -> B -> A keeps what both formats can express, for requests and for responses, for every pair.
* Stream translation (upstream SSE parser -> client renderer) gives the same answer however the upstream
  bytes are split, and that answer passes the client format's SDK types and stream grammar.
* Translators never raise on valid input, and what they render passes the target API's request rules.

"What both can express" is the common subset of formats.md §2: one system text, alternating user and
assistant turns with text, function calls with JSON-object arguments and their text results, function
tools, max_tokens, temperature in [0, 1], stop sequences (not through Responses, which has none),
tool_choice; for answers: text, reasoning text, calls, the stop reason, usage. Call ids are compared up to
a consistent renaming (Gemini has none of its own).
"""

from __future__ import annotations

import itertools
import json
import string
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute_providers.catalog import load_catalog
from omniroute_providers.formats import get_format
from omniroute_providers.formats.common import marked_events, stream_ended
from omniroute_providers.formats.sse import SSEDecoder, parse_events
from omniroute_providers.ir import (
    ChatRequest,
    ChatResponse,
    Context,
    ImagePart,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    arguments_object,
)
from tests.conformance import clients as c
from tests.conformance.clients import AM, FORMATS, GG, OC, OR, Mode
from tests.conformance.conftest import PROVIDERS
from tests.conformance.upstreams import check_body
from tests.fakes import render as fake_render
from tests.fakes.reply import Reply
from tests.fakes.reply import Usage as FakeUsage
from tests.fakes.wire import RenderContext

PAIRS = [(a, b) for a in FORMATS for b in FORMATS]
PROPERTY_SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
_CATALOG = load_catalog()


def ctx(client: str, upstream: str, **kw: Any) -> Context:
    provider_id, model, _ = PROVIDERS[upstream]
    provider = _CATALOG.provider(provider_id)
    assert provider is not None
    return Context(
        client_format=client,
        upstream_format=upstream,
        provider=provider_id,
        upstream_model=model,
        client_model=model,
        caps=_CATALOG.caps_for(provider, model),
        response_id="resp_fixed",
        created=1_700_000_000,
        **kw,
    )


# ----------------------------------------------------------------------------------------------------------
# strategies
# ----------------------------------------------------------------------------------------------------------

# Printable text with the characters translators get wrong: quotes, backslashes, braces, newlines, non-ASCII.
TEXT = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + ' .,:;"\\{}[]\n\té漢🙂'),
    min_size=1,
    max_size=24,
).filter(lambda s: s.strip() == s and s != "")
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
JSON_SCALARS = st.one_of(st.integers(-1000, 1000), st.booleans(), TEXT, st.none())
ARGS = st.dictionaries(NAMES, st.one_of(JSON_SCALARS, st.lists(JSON_SCALARS, max_size=3)), max_size=3)


@st.composite
def tool_specs(draw: st.DrawFn) -> list[ToolSpec]:
    names = draw(st.lists(NAMES, min_size=0, max_size=3, unique=True))
    out = []
    for name in names:
        props = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
        schema = {
            "type": "object",
            "properties": {p: {"type": "string"} for p in props},
            "required": props[:1],
        }
        out.append(ToolSpec(name=name, description=draw(st.one_of(st.none(), TEXT)), parameters=schema))
    return out


PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def images() -> st.SearchStrategy[list[Part]]:
    return st.lists(st.just(ImagePart(media_type="image/png", data=PNG_B64)), max_size=1)


@st.composite
def conversations(draw: st.DrawFn, tool_names: list[str]) -> list[Message]:
    """user, then rounds of (assistant text | assistant calls + their results), ending on a user turn or
    on results (Gemini cannot continue a trailing model turn)."""
    msgs = [Message("user", [TextPart(draw(TEXT)), *draw(images())])]
    counter = 0
    for _ in range(draw(st.integers(0, 3))):
        if bool(tool_names) and draw(st.booleans()):
            calls: list[Part] = []
            for _ in range(draw(st.integers(1, 2))):
                counter += 1
                args = json.dumps(draw(ARGS))
                calls.append(
                    ToolCallPart(
                        id=f"call_{counter}x", name=draw(st.sampled_from(tool_names)), arguments=args
                    )
                )
            lead: list[Part] = [TextPart(draw(TEXT))] if draw(st.booleans()) else []
            msgs.append(Message("assistant", lead + calls))
            results = [
                ToolResultPart(call_id=p.id, content=[TextPart(draw(TEXT))], name=p.name)
                for p in calls
                if isinstance(p, ToolCallPart)
            ]
            msgs.append(Message("tool", list(results)))
            if draw(st.booleans()):
                msgs.append(Message("user", [TextPart(draw(TEXT))]))
        else:
            msgs.append(Message("assistant", [TextPart(draw(TEXT))]))
            msgs.append(Message("user", [TextPart(draw(TEXT)), *draw(images())]))
    return msgs


@st.composite
def requests(draw: st.DrawFn, with_stop: bool) -> ChatRequest:
    tools = draw(tool_specs())
    choice = None
    if tools:
        mode = draw(st.sampled_from(["auto", "none", "required", "tool", None]))
        if mode is not None:
            choice = ToolChoice(mode, name=tools[0].name if mode == "tool" else None)  # type: ignore[arg-type]
    return ChatRequest(
        model="m",
        system=[TextPart(draw(TEXT))] if draw(st.booleans()) else [],
        messages=draw(conversations([t.name for t in tools])),
        tools=tools,
        tool_choice=choice,
        max_tokens=draw(st.integers(1, 8192)),
        temperature=draw(st.one_of(st.none(), st.sampled_from([0.0, 0.25, 0.5, 1.0]))),
        stop=draw(st.lists(TEXT, max_size=3, unique=True)) if with_stop else [],
    )


# ----------------------------------------------------------------------------------------------------------
# projections onto the common subset
# ----------------------------------------------------------------------------------------------------------


def _renamer() -> Any:
    seen: dict[str, int] = {}

    def index(call_id: str) -> int:
        return seen.setdefault(call_id, len(seen))

    return index


def project_request(req: ChatRequest) -> dict[str, Any]:
    index = _renamer()
    items: list[tuple[Any, ...]] = []
    for m in req.messages:
        for p in m.parts:
            if isinstance(p, TextPart):
                items.append((m.role, p.text))
            elif isinstance(p, ToolCallPart):
                items.append(("call", index(p.id), p.name, arguments_object(p.arguments)))
            elif isinstance(p, ToolResultPart):
                text = "".join(x.text for x in p.content if isinstance(x, TextPart))
                items.append(("result", index(p.call_id), text))
            elif isinstance(p, ImagePart):
                items.append(("image", p.media_type, p.data, p.url))
            else:
                items.append(("other", type(p).__name__))
    choice = req.tool_choice
    return {
        "system": "\n\n".join(p.text for p in req.system),
        "items": items,
        "tools": [
            (t.name, t.description, sorted((t.parameters or {}).get("properties", {}))) for t in req.tools
        ],
        "tool_choice": None if choice is None or choice.mode == "auto" else (choice.mode, choice.name),
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "stop": req.stop,
    }


def _through(req: ChatRequest, source: str, fmt: str) -> tuple[dict[str, Any], ChatRequest]:
    """Render `req` (parsed from `source`) for an upstream of `fmt`, check it, parse it back as `fmt`."""
    wire = get_format(fmt).render_request(req, ctx(source, fmt))
    check_body(fmt, {**wire, "stream": False} if fmt in (OC, OR, AM) else wire)
    return wire, get_format(fmt).parse_request(wire)


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_request_a_to_b_to_a_keeps_the_common_subset(a: str, b: str) -> None:
    @PROPERTY_SETTINGS
    @given(requests(with_stop=OR not in (a, b)))
    def check(req: ChatRequest) -> None:
        req.source_format = a
        _, first = _through(req, a, a)  # the request as a client of format `a` writes it
        first.source_format = a
        _, there = _through(first, a, b)
        there.source_format = b
        _, back = _through(there, b, a)
        expected, got = project_request(first), project_request(back)
        if (a == GG or b == GG) and first.tool_choice is not None and first.tool_choice.mode == "required":
            expected["tool_choice"] = got[
                "tool_choice"
            ]  # Gemini ANY: "required" and a one-tool "tool" coincide
        assert got == expected

    check()


# ----------------------------------------------------------------------------------------------------------
# responses
# ----------------------------------------------------------------------------------------------------------


@st.composite
def responses(draw: st.DrawFn) -> ChatResponse:
    parts: list[Part] = []
    if draw(st.booleans()):
        parts.append(ThinkingPart(text=draw(TEXT)))
    if draw(st.booleans()):
        parts.append(TextPart(draw(TEXT)))
    calls = draw(st.lists(st.tuples(NAMES, ARGS), max_size=2))
    parts += [
        ToolCallPart(id=f"call_r{i}", name=n, arguments=json.dumps(a)) for i, (n, a) in enumerate(calls)
    ]
    stop = draw(st.sampled_from(["stop", "length", "content_filter"]))
    if calls and stop == "stop":
        stop = "tool_calls"
    cached = draw(st.integers(0, 500))
    reasoning = draw(st.integers(0, 50))
    usage = Usage(
        input_tokens=cached + draw(st.integers(1, 500)),
        output_tokens=reasoning + draw(st.integers(1, 500)),
        cached_tokens=cached,
        reasoning_tokens=reasoning,
    )
    return ChatResponse(id="r1", model="m", parts=parts, stop_reason=stop, usage=usage)  # type: ignore[arg-type]


def project_response(resp: ChatResponse, with_reasoning_tokens: bool) -> dict[str, Any]:
    u = resp.usage or Usage()
    return {
        "text": "".join(p.text for p in resp.parts if isinstance(p, TextPart)),
        "thinking": "".join(p.text for p in resp.parts if isinstance(p, ThinkingPart)),
        "calls": [(p.name, arguments_object(p.arguments)) for p in resp.parts if isinstance(p, ToolCallPart)],
        "stop": resp.stop_reason,
        "usage": (
            u.input_tokens,
            u.output_tokens,
            u.cached_tokens,
            u.reasoning_tokens if with_reasoning_tokens else 0,
        ),
    }


def _answer_through(resp: ChatResponse, source: str, fmt: str) -> ChatResponse:
    """Render `resp` (from an upstream of `source`) to a client of `fmt`, then read it back as `fmt`."""
    wire = get_format(fmt).render_response(resp, ctx(fmt, source))
    return get_format(fmt).parse_response(wire, ctx(fmt, fmt))


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_response_a_to_b_to_a_keeps_the_common_subset(a: str, b: str) -> None:
    @PROPERTY_SETTINGS
    @given(responses())
    def check(resp: ChatResponse) -> None:
        first = _answer_through(resp, a, a)
        back = _answer_through(_answer_through(first, a, b), b, a)
        reasoning_tokens = AM not in (a, b)  # Anthropic has no reasoning-token count
        expected = project_response(first, reasoning_tokens)
        got = project_response(back, reasoning_tokens)
        if (
            GG in (a, b)
            and not expected["text"]
            and not expected["calls"]
            and first.stop_reason == "content_filter"
        ):
            # gemini.py policy: a non-success finish with no content gets an explanatory text
            assert "finishReason" in got.pop("text")
            expected.pop("text")
        assert got == expected

    check()


# ----------------------------------------------------------------------------------------------------------
# streams: split invariance and validity
# ----------------------------------------------------------------------------------------------------------


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    calls = draw(st.lists(st.tuples(NAMES, ARGS), max_size=2))
    text = draw(st.one_of(st.just(""), TEXT)) if calls else draw(TEXT)
    return Reply(
        text=text,
        chunks=draw(st.integers(1, 4)),
        thinking=draw(st.one_of(st.none(), TEXT)),
        signature=draw(st.one_of(st.none(), st.just("c2lnbmF0dXJl"))),
        tool_calls=calls,
        args_chunks=draw(st.integers(1, 4)),
        usage=FakeUsage(input=draw(st.integers(1, 99)), output=draw(st.integers(1, 99))),
        stop_reason=draw(st.sampled_from([None, "length", "content_filter"])),
        interleave_tool_calls=draw(st.booleans()),
    )


def upstream_bytes(reply: Reply, fmt: str) -> bytes:
    rendered = fake_render.render(reply, fmt, True, RenderContext("m", include_usage=True))
    return b"".join(rendered.frames)


def translate(data: bytes, cuts: list[int], upstream: str, mode: Mode) -> bytes:
    """What the pipeline's IR path does with one upstream stream, fed in pieces cut at `cuts`."""
    context = ctx(mode.client, upstream, include_usage=True, json_array_stream=mode.array)
    decoder = SSEDecoder()
    parser = get_format(upstream).StreamParser(context)
    renderer = get_format(mode.client).StreamRenderer(context)
    out: list[bytes] = []
    bounds = [0, *sorted(set(cuts)), len(data)]
    for lo, hi in itertools.pairwise(bounds):
        for event in decoder.feed(data[lo:hi]):
            out += [renderer.feed(e) for e in parser.feed(event)]
    for event in decoder.close():
        out += [renderer.feed(e) for e in parser.feed(event)]
    out += [renderer.feed(e) for e in parser.close()]
    out.append(renderer.close())
    return b"".join(out)


def read_stream(mode: Mode, body: bytes) -> c.Answer:
    ctype = "application/json" if mode.array else "text/event-stream"
    return c.read(mode, httpx.Response(200, headers={"content-type": ctype}, content=body))


def answer_shape(ans: c.Answer) -> tuple[Any, ...]:
    calls = [(call.name, call.arguments) for call in ans.calls]
    return ans.text, ans.reasoning, calls, ans.stop, ans.usage, ans.refusal


STREAM_PAIRS = [(m, u) for m in c.STREAM_MODES for u in FORMATS]


@pytest.mark.parametrize(("mode", "upstream"), STREAM_PAIRS, ids=[f"{m}-{u}" for m, u in STREAM_PAIRS])
def test_stream_translation_does_not_depend_on_how_the_bytes_are_split(mode: Mode, upstream: str) -> None:
    @PROPERTY_SETTINGS
    @given(replies(), st.data())
    def check(reply: Reply, data: st.DataObject) -> None:
        raw = upstream_bytes(reply, upstream)
        whole = read_stream(mode, translate(raw, [], upstream, mode))
        cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
        pieces = read_stream(mode, translate(raw, cuts, upstream, mode))
        bytewise = read_stream(mode, translate(raw, list(range(len(raw))), upstream, mode))
        assert answer_shape(pieces) == answer_shape(whole)
        assert answer_shape(bytewise) == answer_shape(whole)
        kinds = [e.get("type") if isinstance(e, dict) else None for e in whole.raw]
        assert [e.get("type") if isinstance(e, dict) else None for e in pieces.raw] == kinds
        # and the answer is the one the upstream gave
        assert whole.text == reply.text
        assert [call.name for call in whole.calls] == [name for name, _ in reply.tool_calls]
        assert [call.arguments for call in whole.calls] == [dict(args) for _, args in reply.tool_calls]

    check()


# ----------------------------------------------------------------------------------------------------------
# never raise on valid input
# ----------------------------------------------------------------------------------------------------------


@st.composite
def client_turns(draw: st.DrawFn) -> list[c.Turn]:
    turns = [c.user(draw(TEXT))]
    n = 0
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["text", "call"]))
        if kind == "text":
            turns += [c.assistant(draw(TEXT)), c.user(draw(TEXT))]
        else:
            n += 1
            turns += [
                c.call(f"call_{n}", "get_weather", {"city": draw(TEXT)}),
                c.result(f"call_{n}", "get_weather", draw(TEXT)),
            ]
    return turns


@pytest.mark.parametrize("client", FORMATS)
def test_any_client_request_renders_a_valid_request_for_every_upstream(client: str) -> None:
    @PROPERTY_SETTINGS
    @given(client_turns(), st.one_of(st.none(), TEXT), st.booleans())
    def check(turns: list[c.Turn], system: str | None, with_tools: bool) -> None:
        tools = [c.tool_spec(client)] if with_tools else None
        body = c.body_for(client, turns, system=system, tools=tools)
        if client == GG:
            body.pop("stream", None)
        else:
            body["model"] = "m"
        req = get_format(client).parse_request(body)
        req.model = req.model or "m"
        for upstream in FORMATS:
            wire = get_format(upstream).render_request(req, ctx(client, upstream))
            check_body(upstream, {**wire, "stream": False} if upstream in (OC, OR, AM) else wire)

    check()


@pytest.mark.parametrize("upstream", FORMATS)
def test_passthrough_relay_skips_no_event_that_ends_the_stream_or_carries_usage(upstream: str) -> None:
    """A passthrough relay parses only the events of a piece that hold a usage or end marker
    (formats/common.marked_events). However the bytes are split, it must reach the same usage and see the
    same end as looking at every event, and forward exactly the bytes it was given."""

    @PROPERTY_SETTINGS
    @given(replies(), st.data())
    def check(reply: Reply, data: st.DataObject) -> None:
        raw = upstream_bytes(reply, upstream)  # its ids count up, so its length varies between runs:
        cuts = [n % (len(raw) + 1) for n in data.draw(st.lists(st.integers(0, 1 << 16), max_size=12))]
        bounds = [0, *sorted(set(cuts)), len(raw)]
        fmt = get_format(upstream)
        every, guarded = fmt.UsageTap(), fmt.UsageTap()
        ended_every = ended_guarded = False
        decoder = SSEDecoder()
        relayed = [decoder.split(raw[lo:hi]) for lo, hi in itertools.pairwise(bounds)]
        whole = raw.replace(b"\r\n", b"\n")
        complete = b"".join(relayed)
        assert whole.startswith(complete)  # in order, nothing lost or added
        relayed.append(whole[len(complete) :])  # what the end of the stream delivers
        assert parse_events(relayed[-1]) == decoder.close()
        for blob in relayed:
            for event in parse_events(blob):
                every.feed(event)
                ended_every = ended_every or stream_ended(upstream, event)
            for event in marked_events(upstream, blob):
                guarded.feed(event)
                ended_guarded = ended_guarded or stream_ended(upstream, event)
        assert ended_every
        assert ended_guarded
        assert every.usage is not None
        assert guarded.usage == every.usage

    check()

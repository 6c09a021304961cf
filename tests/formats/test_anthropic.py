"""Anthropic Messages: requests, responses, streams and errors, checked against the official SDK types.

Case numbers refer to formats.md §5; only the Anthropic half of each case is tested here.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import Message as SdkMessage
from anthropic.types import RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from omniroute import (
    ContextLengthError,
    GatewayError,
    InvalidRequestError,
    JsonObj,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamAuthError,
    UpstreamError,
    dumps,
    loads,
)
from omniroute_providers.formats import anthropic as am
from omniroute_providers.formats.sse import SSEDecoder, encode
from omniroute_providers.ir import (
    ChatRequest,
    ChatResponse,
    Context,
    FilePart,
    Finish,
    ImagePart,
    Message,
    OpaqueBlock,
    OpaquePart,
    ReasoningConfig,
    RedactedThinking,
    RefusalDelta,
    RefusalPart,
    ResponseFormat,
    StreamAccumulator,
    StreamEvent,
    StreamStart,
    TargetCaps,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    UsageUpdate,
    response_events,
    tag_signature,
)

MODEL = "claude-sonnet-4-6"  # a model the SDK does not warn about (warnings are errors here)
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
JPEG_B64 = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAP//////////////////////////////////////////////////////////"


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------


def am_ctx(**caps: Any) -> Context:
    """An Anthropic client in front of an Anthropic upstream."""
    caps.setdefault("cache_control", True)
    caps.setdefault("max_tool_name", 128)
    return Context(
        client_format="anthropic",
        upstream_format="anthropic",
        provider="anthropic",
        upstream_model=MODEL,
        client_model=MODEL,
        caps=TargetCaps(**caps),
    )


def up_ctx(client: str = "openai-chat", **caps: Any) -> Context:
    """Some other client format in front of an Anthropic upstream."""
    return Context(
        client_format=client,
        upstream_format="anthropic",
        provider="anthropic",
        upstream_model=MODEL,
        client_model="my-alias",
        caps=TargetCaps(**caps),
    )


def client_ctx(upstream: str = "openai-chat", provider: str = "openai") -> Context:
    """An Anthropic client in front of an upstream of another format."""
    return Context(client_format="anthropic", upstream_format=upstream, provider=provider, client_model=MODEL)


def foreign(**kw: Any) -> ChatRequest:
    """A request as another format's parser would have produced it."""
    kw.setdefault("model", "my-alias")
    kw.setdefault("source_format", "openai-chat")
    return ChatRequest(**kw)


def user(*parts: Any) -> Message:
    return Message(role="user", parts=[TextPart(p) if isinstance(p, str) else p for p in parts])


def assistant(*parts: Any) -> Message:
    return Message(role="assistant", parts=[TextPart(p) if isinstance(p, str) else p for p in parts])


def sse(*events: JsonObj) -> bytes:
    return b"".join(encode(dumps(e), e["type"]) for e in events)


def decode_frames(raw: bytes) -> list[tuple[str | None, JsonObj]]:
    decoder = SSEDecoder()
    return [(e.event, loads(e.data)) for e in decoder.feed(raw) + decoder.close()]


def parse_stream(chunks: list[bytes], ctx: Context) -> list[StreamEvent]:
    decoder = SSEDecoder()
    parser = am.StreamParser(ctx)
    out: list[StreamEvent] = []
    for chunk in chunks:
        for event in decoder.feed(chunk):
            out += parser.feed(event)
    for event in decoder.close():
        out += parser.feed(event)
    return out + parser.close()


def render_stream(events: list[StreamEvent], ctx: Context) -> bytes:
    renderer = am.StreamRenderer(ctx)
    return b"".join(renderer.feed(e) for e in events) + renderer.close()


def check_stream(raw: bytes) -> list[JsonObj]:
    """Every frame named after its type, valid for the SDK, blocks sequential and never interleaved."""
    frames = decode_frames(raw)
    datas = []
    open_index: int | None = None
    next_index = 0
    for name, data in frames:
        assert name == data["type"]
        if name != "error":
            EVENT_ADAPTER.validate_python(data)
        if name == "content_block_start":
            assert open_index is None, "a block opened while another was open"
            assert data["index"] == next_index
            open_index = data["index"]
        elif name == "content_block_delta":
            assert data["index"] == open_index
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index, next_index = None, next_index + 1
        datas.append(data)
    assert open_index is None
    return datas


def sdk_final_message(raw: bytes) -> Any:
    """Feed rendered SSE bytes to the official SDK's stream helper and return its final message."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    client = anthropic.Anthropic(
        api_key="test",
        base_url="http://gateway.test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        return s.get_final_message()


# ----------------------------------------------------------------------------------------------------------
# parse_request
# ----------------------------------------------------------------------------------------------------------


def test_system_string_and_blocks_with_cache_control() -> None:
    req = am.parse_request({"model": MODEL, "max_tokens": 5, "system": "Be brief.", "messages": []})
    assert [p.text for p in req.system] == ["Be brief."]
    req = am.parse_request(
        {
            "model": MODEL,
            "system": [
                {"type": "text", "text": "A"},
                {"type": "text", "text": ""},
                {"type": "text", "text": "B", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            ],
            "messages": [],
        }
    )
    assert [(p.text, p.cache_control) for p in req.system] == [
        ("A", None),
        ("B", {"type": "ephemeral", "ttl": "1h"}),
    ]
    assert req.max_tokens is None  # count_tokens-style bodies have none: lenient


def test_billing_header_leaves_the_system_prompt_but_returns_to_anthropic() -> None:
    billing = {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330; cc_entrypoint=cli"}
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "system": [billing, {"type": "text", "text": "You are Claude Code."}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    req = am.parse_request(body)
    assert [p.text for p in req.system] == ["You are Claude Code."]  # case 3: other formats never see it
    assert req.extras[am.X_BILLING_HEADER] == billing
    assert am.render_request(req, am_ctx())["system"][0] == billing
    req.source_format = "openai-chat"
    assert am.render_request(req, up_ctx())["system"] == [{"type": "text", "text": "You are Claude Code."}]


def test_system_role_inside_messages_stays_in_place() -> None:
    req = am.parse_request(
        {
            "model": MODEL,
            "max_tokens": 10,
            "messages": [
                {"role": "system", "content": "leading"},
                {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "text", "text": "<env>linux</env>"}]},
            ],
        }
    )
    assert [p.text for p in req.system] == ["leading"]  # before any turn: the system prompt
    assert [m.role for m in req.messages] == ["user", "system"]
    assert req.messages[1].parts == [TextPart("<env>linux</env>")]


def test_tool_results_split_from_user_text_in_order() -> None:
    """Case 23: [tool_result A, tool_result B, text] -> tool A, tool B, then the user text."""
    req = am.parse_request(
        {
            "model": MODEL,
            "max_tokens": 10,
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "toolu_A", "name": "read", "input": {"p": "a"}},
                        {"type": "tool_use", "id": "toolu_B", "name": "grep", "input": {}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_A", "content": "a-data"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_B",
                            "content": [{"type": "text", "text": "b-data"}],
                            "is_error": True,
                            "cache_control": {"type": "ephemeral"},
                        },
                        {"type": "text", "text": "thanks"},
                    ],
                },
            ],
        }
    )
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "user"]
    results = req.messages[2].parts
    assert all(isinstance(p, ToolResultPart) for p in results)
    a, b = results
    assert isinstance(a, ToolResultPart)
    assert isinstance(b, ToolResultPart)
    assert (a.call_id, a.content, a.is_error, a.name) == ("toolu_A", [TextPart("a-data")], False, "read")
    assert (b.call_id, b.is_error, b.cache_control, b.name) == (
        "toolu_B",
        True,
        {"type": "ephemeral"},
        "grep",
    )
    assert req.messages[3].parts == [TextPart("thanks")]
    call = req.messages[1].parts[0]
    assert isinstance(call, ToolCallPart)
    assert loads(call.arguments) == {"p": "a"}


def test_text_before_tool_result_keeps_its_place() -> None:
    req = am.parse_request(
        {
            "model": MODEL,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "note"},
                        {"type": "tool_result", "tool_use_id": "t1"},
                        {"type": "text", "text": "after"},
                    ],
                }
            ],
        }
    )
    assert [m.role for m in req.messages] == ["user", "tool", "user"]


def test_assistant_blocks_thinking_tool_use_and_server_blocks() -> None:
    server_use = {
        "type": "server_tool_use",
        "id": "srvtoolu_1",
        "name": "web_search",
        "input": {"query": "x"},
    }
    server_result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    req = am.parse_request(
        {
            "model": MODEL,
            "messages": [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "EqQBsig"},
                        {"type": "thinking", "thinking": "", "signature": "EqOmitted"},  # display: omitted
                        {"type": "redacted_thinking", "data": "EmwKredacted"},
                        {"type": "text", "text": ""},  # Claude Code writes these; Anthropic rejects them
                        server_use,
                        server_result,
                        {
                            "type": "text",
                            "text": "answer",
                            "citations": [{"type": "char_location", "cited_text": "c"}],
                        },
                        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -la"}},
                    ],
                },
            ],
        }
    )
    parts = req.messages[1].parts
    assert parts[0] == ThinkingPart(text="hmm", signature="EqQBsig")
    assert parts[1] == ThinkingPart(text="", signature="EqOmitted")
    assert parts[2] == ThinkingPart(signature="EmwKredacted", redacted=True)
    assert parts[3] == OpaquePart("anthropic", server_use)
    assert parts[4] == OpaquePart("anthropic", server_result)
    assert isinstance(parts[5], TextPart)
    assert parts[5].citations == [{"type": "char_location", "cited_text": "c"}]
    assert parts[6] == ToolCallPart(id="toolu_1", name="Bash", arguments='{"command":"ls -la"}')
    assert len(parts) == 7  # the empty text block is gone


def test_tagged_signatures_keep_their_origin() -> None:
    """A token another upstream minted comes back tagged; parse_request splits origin from token."""
    req = am.parse_request(
        {
            "model": MODEL,
            "messages": [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "thinking",
                            "thinking": "r",
                            "signature": tag_signature("gAAAAenc", "openai"),
                        },
                        {"type": "redacted_thinking", "data": tag_signature("blob", "gemini")},
                    ],
                },
            ],
        }
    )
    assert req.messages[1].parts == [
        ThinkingPart(text="r", signature="gAAAAenc", origin="openai"),
        ThinkingPart(signature="blob", redacted=True, origin="gemini"),
    ]


def test_images_and_documents() -> None:
    req = am.parse_request(
        {
            "model": MODEL,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG_B64},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                        {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
                        {
                            "type": "document",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
                            "title": "spec",
                            "cache_control": {"type": "ephemeral"},
                        },
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "plain"},
                        },
                        {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}},
                        {"type": "document", "source": {"type": "file", "file_id": "file_2"}},
                        {"type": "search_result", "source": "s", "title": "t", "content": []},
                    ],
                }
            ],
        }
    )
    parts = req.messages[0].parts
    assert parts[0] == ImagePart(media_type="image/jpeg", data=JPEG_B64)  # case 9/13: AM half
    assert parts[1] == ImagePart(url="https://x.test/a.png")
    assert isinstance(parts[2], OpaquePart)  # a Files API image means nothing to another provider
    assert parts[3] == FilePart(
        media_type="application/pdf", data="JVBERi0x", title="spec", cache_control={"type": "ephemeral"}
    )
    assert parts[4] == FilePart(media_type="text/plain", text="plain")
    assert parts[5] == FilePart(url="https://x.test/a.pdf")
    assert parts[6] == FilePart(file_id="file_2")
    assert isinstance(parts[7], OpaquePart)


def test_tools_custom_and_server() -> None:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {}}
    req = am.parse_request(
        {
            "model": MODEL,
            "messages": [],
            "tools": [
                {
                    "name": "Read",
                    "description": "read",
                    "input_schema": schema,
                    "cache_control": {"type": "ephemeral"},
                },
                {
                    "name": "mcp__srv__" + "t" * 70,
                    "input_schema": schema,
                    "defer_loading": True,
                    "strict": True,
                },
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            ],
        }
    )
    read, mcp, search = req.tools
    assert (read.kind, read.parameters, read.cache_control, read.raw) == (
        "function",
        schema,
        {"type": "ephemeral"},
        None,
    )
    assert (mcp.kind, mcp.strict, mcp.raw_format) == ("function", True, "anthropic")
    assert mcp.raw is not None
    assert mcp.raw["defer_loading"] is True
    assert len(mcp.name) > 64  # accepted as sent
    assert (search.kind, search.name, search.raw_format) == ("builtin", "web_search", "anthropic")


@pytest.mark.parametrize(
    ("wire", "choice", "parallel"),
    [
        ({"type": "auto"}, ToolChoice("auto"), None),
        ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice("required"), False),
        ({"type": "none"}, ToolChoice("none"), None),
        ({"type": "tool", "name": "Read"}, ToolChoice("tool", "Read"), None),
        ({"type": "something_new"}, ToolChoice("auto"), None),
    ],
)
def test_tool_choice(wire: JsonObj, choice: ToolChoice, parallel: bool | None) -> None:
    req = am.parse_request({"model": MODEL, "messages": [], "tool_choice": wire})
    assert (req.tool_choice, req.parallel_tool_calls) == (choice, parallel)


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        ({"type": "enabled", "budget_tokens": 4000}, ReasoningConfig(enabled=True, budget_tokens=4000)),
        (
            {"type": "adaptive", "display": "omitted"},
            ReasoningConfig(enabled=True, adaptive=True, display="omitted"),
        ),
        ({"type": "disabled"}, ReasoningConfig(enabled=False)),
        ({"type": "between_tools"}, ReasoningConfig(enabled=True, adaptive=True)),
    ],
)
def test_thinking(thinking: JsonObj, expected: ReasoningConfig) -> None:
    req = am.parse_request({"model": MODEL, "messages": [], "thinking": thinking})
    assert req.reasoning == expected


def test_output_config_effort_and_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    req = am.parse_request(
        {
            "model": MODEL,
            "messages": [],
            "output_config": {"effort": "xhigh", "format": {"type": "json_schema", "schema": schema}},
        }
    )
    assert req.reasoning == ReasoningConfig(effort="xhigh")
    assert req.response_format == ResponseFormat(kind="json_schema", schema=schema)
    legacy = am.parse_request(
        {"model": MODEL, "messages": [], "output_format": {"type": "json_schema", "schema": schema}}
    )
    assert legacy.response_format == ResponseFormat(kind="json_schema", schema=schema)


def test_metadata_user_id() -> None:
    short = am.parse_request({"model": MODEL, "messages": [], "metadata": {"user_id": "alice"}})
    assert short.user == "alice"
    as_json = '{"device_id":"d1","account_uuid":"acc-1","session_id":"%s"}'
    one = am.parse_request({"model": MODEL, "messages": [], "metadata": {"user_id": as_json % "s1"}})
    two = am.parse_request({"model": MODEL, "messages": [], "metadata": {"user_id": as_json % "s2"}})
    assert one.user is not None
    assert len(one.user) <= 64
    assert one.user == two.user  # a new session is the same user
    assert "acc-1" not in one.user  # the account id is not handed to other providers
    assert one.metadata == {"user_id": as_json % "s1"}  # kept for Anthropic
    legacy = "user_" + "a" * 64 + "_account_" + "b" * 36 + "_session_" + "c" * 36
    parsed = am.parse_request({"model": MODEL, "messages": [], "metadata": {"user_id": legacy}})
    assert parsed.user is not None
    assert len(parsed.user) <= 64


def test_scalars_and_extras() -> None:
    req = am.parse_request(
        {
            "model": MODEL,
            "max_tokens": 32000,
            "messages": [],
            "stop_sequences": ["END"],
            "temperature": 0.3,
            "top_p": 0.9,
            "top_k": 40,
            "stream": True,
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "service_tier": "auto",
            "container": "c1",
            "cache_control": {"type": "ephemeral"},
            "mcp_servers": [{"type": "url", "url": "https://m.test", "name": "m"}],
        }
    )
    assert (req.max_tokens, req.stop, req.temperature, req.top_p, req.top_k, req.stream) == (
        32000,
        ["END"],
        0.3,
        0.9,
        40,
        True,
    )
    assert set(req.extras) == {
        "context_management",
        "service_tier",
        "container",
        "cache_control",
        "mcp_servers",
    }
    assert am.parse_request({"model": MODEL, "messages": []}).stream is False


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"messages": []}, "model"),
        ({"model": MODEL}, "messages"),
        ({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"model": MODEL, "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages.0.content.0",
        ),
        ({"model": MODEL, "messages": [], "max_tokens": "many"}, "max_tokens"),
        ({"model": MODEL, "messages": [], "system": [{"type": "image"}]}, "system.0"),
        ({"model": MODEL, "messages": [], "tools": [{"input_schema": {}}]}, "tools.0.name"),
        (
            {
                "model": MODEL,
                "messages": [{"role": "assistant", "content": [{"type": "tool_use", "input": {}}]}],
            },
            "tool_use",
        ),
    ],
)
def test_shape_errors_say_what_is_wrong(body: JsonObj, words: str) -> None:
    with pytest.raises(InvalidRequestError, match=words):
        am.parse_request(body)


def test_parse_never_mutates_the_body() -> None:
    body = claude_code_request()
    before = copy.deepcopy(body)
    am.render_request(am.parse_request(body), am_ctx())
    assert body == before


def test_count_tokens() -> None:
    """Case 76 (AM half): count_tokens bodies parse without max_tokens; the answer shape."""
    req = am.parse_count_tokens_request({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert req.messages == [user("hi")]
    assert am.render_count_tokens(42) == {"input_tokens": 42}
    body = am.render_count_tokens_request(req, am_ctx())
    assert "max_tokens" not in body
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


# ----------------------------------------------------------------------------------------------------------
# same-format identity (Claude Code)
# ----------------------------------------------------------------------------------------------------------


def claude_code_request() -> JsonObj:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
        "additionalProperties": False,
    }
    return {
        "model": MODEL,
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.1.330.abc; cc_entrypoint=sdk-cli;",
            },
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Tools policy...", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                    {"type": "text", "text": "list files"},
                ],
            },
            {"role": "system", "content": [{"type": "text", "text": "<env>Platform: linux</env>"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "", "signature": "EqMDCkYIBxgCKkB"},
                    {"type": "tool_use", "id": "toolu_01ABC", "name": "Bash", "input": {"command": "ls"}},
                    {
                        "type": "tool_use",
                        "id": "toolu_01DEF",
                        "name": "mcp__filesystem__read_text_file_with_a_really_long_descriptive_name_suffix",
                        "input": {"path": "/tmp/a", "head": 10},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01ABC", "content": "a.txt\nb.txt"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01DEF",
                        "content": "hello",
                        "is_error": True,
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            },
        ],
        "tools": [
            {"name": "Bash", "description": "Run a command", "input_schema": schema},
            {
                "name": "mcp__filesystem__read_text_file_with_a_really_long_descriptive_name_suffix",
                "description": "Read",
                "input_schema": schema,
                "defer_loading": True,
            },
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        ],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": '{"device_id":"abc","account_uuid":"","session_id":"5f0c"}'},
        "temperature": 1,
    }


def test_claude_code_request_round_trips_exactly() -> None:
    """Case 72 (AM half): everything Claude Code sends survives parse -> render to an Anthropic upstream."""
    body = claude_code_request()
    ctx = am_ctx()
    out = am.render_request(am.parse_request(body), ctx)
    assert out == body
    assert ctx.tool_names == {}
    assert ctx.call_ids == {}


def test_claude_code_request_to_a_64_char_upstream_renames_long_tools_consistently() -> None:
    body = claude_code_request()
    ctx = am_ctx(max_tool_name=64)
    out = am.render_request(am.parse_request(body), ctx)
    long_name = body["tools"][1]["name"]
    short = out["tools"][1]["name"]
    assert len(short) <= 64
    assert ctx.tool_names == {short: long_name}
    assert out["messages"][2]["content"][2]["name"] == short


# ----------------------------------------------------------------------------------------------------------
# render_request from other formats
# ----------------------------------------------------------------------------------------------------------


def test_system_prompts_become_top_level_blocks_and_max_tokens_default() -> None:
    """Cases 1 and 4: system + developer in source order; default max_tokens injected."""
    req = foreign(system=[TextPart("sys"), TextPart("dev")], messages=[user("hi")])
    body = am.render_request(req, up_ctx(default_max_tokens=32000))
    assert body["system"] == [{"type": "text", "text": "sys"}, {"type": "text", "text": "dev"}]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert body["max_tokens"] == 32000
    assert body["model"] == MODEL
    req.max_tokens = 100_000
    assert am.render_request(req, up_ctx(max_output_tokens=64000))["max_tokens"] == 64000


def test_mid_conversation_system_becomes_a_reminder_in_the_user_turn() -> None:
    req = foreign(
        messages=[
            user("a"),
            assistant("b"),
            Message(role="system", parts=[TextPart("be careful")]),
            user("c"),
        ]
    )
    body = am.render_request(req, up_ctx())
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == [
        {"type": "text", "text": "<system-reminder>\nbe careful\n</system-reminder>"},
        {"type": "text", "text": "c"},
    ]


def test_system_only_request_gets_a_user_turn() -> None:
    body = am.render_request(foreign(system=[TextPart("only system")]), up_ctx())
    assert body["messages"][0]["role"] == "user"


def test_system_as_user_caps() -> None:
    req = foreign(system=[TextPart("rules")], messages=[user("hi")])
    body = am.render_request(req, up_ctx(system_as_user=True))
    assert "system" not in body
    assert body["messages"][0]["content"][0] == {"type": "text", "text": "rules"}


def test_consecutive_turns_merge_and_empty_text_disappears() -> None:
    """Case 33 and role alternation: two user messages merge; assistant "" + tool call -> no empty text."""
    req = foreign(
        messages=[
            user("one"),
            user("two"),
            assistant("", ToolCallPart(id="call_1", name="f", arguments='{"x":1}')),
            Message(role="tool", parts=[ToolResultPart("call_1", [TextPart("ok")])]),
        ]
    )
    body = am.render_request(req, up_ctx())
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two"},
    ]
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}}
    ]


def test_images_by_data_and_url() -> None:
    """Case 8: PNG data -> base64 image/png; https URL -> url source; unsupported -> a text note."""
    req = foreign(
        messages=[
            user(
                ImagePart(media_type="image/png", data=PNG_B64, detail="high"),
                ImagePart(url="https://x.test/cat.jpg"),
                ImagePart(url=f"data:image/png;base64,{PNG_B64}"),
                ImagePart(data=JPEG_B64),  # no media type: sniffed
                ImagePart(url="gs://bucket/cat.png"),
            )
        ]
    )
    content = am.render_request(req, up_ctx())["messages"][0]["content"]
    assert content[0] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
    }
    assert content[1] == {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}}
    assert content[2] == content[0]
    assert content[3]["source"]["media_type"] == "image/jpeg"
    assert content[4]["type"] == "text"


def test_pdf_file_becomes_a_document() -> None:
    """Case 11: a PDF data part -> document base64 application/pdf."""
    req = foreign(
        messages=[
            user(
                FilePart(media_type="application/pdf", data="JVBERi0x", filename="spec.pdf"),
                FilePart(media_type="text/markdown", data="IyBoZWxsbw=="),
                FilePart(file_id="file-openai-1"),
                FilePart(media_type="image/png", data=PNG_B64),
            )
        ]
    )
    content = am.render_request(req, up_ctx())["messages"][0]["content"]
    assert content[0] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
        "title": "spec.pdf",
    }
    assert content[1]["source"] == {"type": "text", "media_type": "text/plain", "data": "# hello"}
    assert content[2]["type"] == "text"  # another provider's file id means nothing here: a visible note
    assert content[3]["type"] == "image"


def test_input_schema_root_is_an_object() -> None:
    """Case 17: a strict tool whose root is anyOf of two objects -> root type object, merged properties."""
    params = {
        "anyOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]},
        ]
    }
    req = foreign(messages=[user("x")], tools=[ToolSpec("f", parameters=params, strict=True), ToolSpec("g")])
    tools = am.render_request(req, up_ctx())["tools"]
    assert tools[0]["input_schema"]["type"] == "object"
    assert set(tools[0]["input_schema"]["properties"]) == {"a", "b"}
    assert "anyOf" not in tools[0]["input_schema"]
    assert tools[0]["strict"] is True
    assert tools[1]["input_schema"] == {"type": "object", "properties": {}}


def test_custom_tool_becomes_an_object_tool_with_one_string() -> None:
    """Case 18 (AM half): Codex apply_patch -> one string property; history calls -> input.input."""
    grammar = {"type": "grammar", "syntax": "lark", "definition": "start: patch"}
    req = foreign(
        source_format="openai-responses",
        messages=[
            user("patch it"),
            assistant(
                ToolCallPart(id="call_p", name="apply_patch", arguments="*** Begin Patch", kind="custom")
            ),
            Message(role="tool", parts=[ToolResultPart("call_p", [TextPart("done")], kind="custom")]),
        ],
        tools=[ToolSpec("apply_patch", description="Apply a patch", kind="custom", grammar=grammar)],
    )
    body = am.render_request(req, up_ctx("openai-responses"))
    tool = body["tools"][0]
    assert tool["name"] == "apply_patch"
    assert tool["input_schema"]["properties"]["input"]["type"] == "string"
    assert tool["input_schema"]["required"] == ["input"]
    assert "start: patch" in tool["input_schema"]["properties"]["input"]["description"]
    assert body["messages"][1]["content"][0]["input"] == {"input": "*** Begin Patch"}


def test_builtin_tools_only_when_written_for_anthropic() -> None:
    raw = {"type": "web_search_20250305", "name": "web_search"}
    req = foreign(
        messages=[user("x")],
        tools=[
            ToolSpec("web_search", kind="builtin", raw=raw, raw_format="anthropic"),
            ToolSpec("web_search", kind="builtin", raw={"type": "web_search"}, raw_format="openai-responses"),
        ],
    )
    assert am.render_request(req, up_ctx())["tools"] == [raw]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (ToolChoice("required"), None, {"type": "any"}),
        (ToolChoice("tool", "f"), None, {"type": "tool", "name": "f"}),
        (ToolChoice("none"), None, {"type": "none"}),
        (ToolChoice("auto"), False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_tool_choice_mapping(
    choice: ToolChoice | None, parallel: bool | None, expected: JsonObj | None
) -> None:
    """Case 19."""
    req = foreign(messages=[user("x")], tools=[ToolSpec("f"), ToolSpec("g")], tool_choice=choice)
    req.parallel_tool_calls = parallel
    assert am.render_request(req, up_ctx()).get("tool_choice") == expected


def test_allowed_tools_filter_the_tool_list() -> None:
    req = foreign(
        messages=[user("x")],
        tools=[ToolSpec("f"), ToolSpec("g")],
        tool_choice=ToolChoice("required", allowed=["g"]),
    )
    body = am.render_request(req, up_ctx())
    assert [t["name"] for t in body["tools"]] == ["g"]
    assert body["tool_choice"] == {"type": "any"}


def test_no_tools_means_no_tool_choice() -> None:
    req = foreign(messages=[user("x")], tool_choice=ToolChoice("required"))
    assert "tool_choice" not in am.render_request(req, up_ctx())


def test_effort_with_forced_tool_and_temperature_stays_valid() -> None:
    """Case 21: reasoning high + required + temperature 0.2 -> thinking on, auto, no temperature."""
    req = foreign(
        messages=[user("x")],
        tools=[ToolSpec("f")],
        tool_choice=ToolChoice("required"),
        temperature=0.2,
        top_p=0.5,
        top_k=10,
        reasoning=ReasoningConfig(effort="high"),
    )
    body = am.render_request(req, up_ctx())
    assert body["thinking"] == {"type": "enabled", "budget_tokens": am.EFFORT_BUDGET_TOKENS["high"]}
    assert body["thinking"]["budget_tokens"] < body["max_tokens"]
    assert body["tool_choice"] == {"type": "auto"}
    assert "temperature" not in body
    assert "top_p" not in body
    assert "top_k" not in body


@pytest.mark.parametrize(("effort", "budget"), sorted(am.EFFORT_BUDGET_TOKENS.items()))
def test_effort_table(effort: str, budget: int) -> None:
    req = foreign(messages=[user("x")], reasoning=ReasoningConfig(effort=effort))
    body = am.render_request(req, up_ctx(default_max_tokens=128_000))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}


def test_budget_fits_inside_max_tokens() -> None:
    # no client limit: max_tokens grows to budget + room
    req = foreign(messages=[user("x")], reasoning=ReasoningConfig(budget_tokens=40000))
    body = am.render_request(req, up_ctx(default_max_tokens=32000))
    assert body["max_tokens"] == 40000 + am.ANSWER_ROOM_TOKENS
    # the growth stops at the model's output limit; the budget shrinks instead
    body = am.render_request(req, up_ctx(default_max_tokens=32000, max_output_tokens=32000))
    assert body["max_tokens"] == 32000
    assert body["thinking"]["budget_tokens"] < 32000
    # an explicit client limit is kept; the budget shrinks to fit it
    req = foreign(messages=[user("x")], max_tokens=5000, reasoning=ReasoningConfig(effort="high"))
    body = am.render_request(req, up_ctx())
    assert body["max_tokens"] == 5000
    assert 1024 <= body["thinking"]["budget_tokens"] < 5000
    # too small to think at all
    req = foreign(messages=[user("x")], max_tokens=1000, reasoning=ReasoningConfig(effort="low"))
    assert "thinking" not in am.render_request(req, up_ctx())


def test_reasoning_off_and_effort_style() -> None:
    off = foreign(messages=[user("x")], reasoning=ReasoningConfig(effort="none"))
    assert am.render_request(off, up_ctx())["thinking"] == {"type": "disabled"}
    req = foreign(messages=[user("x")], reasoning=ReasoningConfig(effort="minimal"))
    body = am.render_request(req, up_ctx(thinking_style="effort"))
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": "low"}
    assert "thinking" not in am.render_request(req, up_ctx(thinking_style="none"))


def test_temperature_clamped_and_stop_sequences() -> None:
    req = foreign(messages=[user("x")], temperature=1.7, stop=["END", "  ", "\n\nHuman:"])
    body = am.render_request(req, up_ctx())
    assert body["temperature"] == 1
    assert body["stop_sequences"] == ["END", "\n\nHuman:"]


def test_tool_results_come_first_in_one_user_message() -> None:
    """Case 24: two tool messages after one assistant with two calls -> one user message, results first."""
    req = foreign(
        messages=[
            user("go"),
            assistant(
                ToolCallPart(id="call_1", name="f", arguments="{}"),
                ToolCallPart(id="call_2", name="g", arguments="{}"),
            ),
            Message(role="tool", parts=[ToolResultPart("call_1", [TextPart("r1")])]),
            Message(role="tool", parts=[ToolResultPart("call_2", [TextPart("r2")], is_error=True)]),
            user("and now?"),
        ]
    )
    msgs = am.render_request(req, up_ctx())["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "r1"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "r2", "is_error": True},
        {"type": "text", "text": "and now?"},
    ]


def test_reminder_between_tool_call_and_result_does_not_break_pairing() -> None:
    req = foreign(
        messages=[
            user("go"),
            assistant(ToolCallPart(id="call_1", name="f", arguments="{}")),
            Message(role="system", parts=[TextPart("note")]),
            Message(role="tool", parts=[ToolResultPart("call_1", [TextPart("r1")])]),
        ]
    )
    msgs = am.render_request(req, up_ctx())["messages"]
    assert msgs[2]["content"][0]["type"] == "tool_result"


def test_system_message_between_call_and_result_keeps_the_pair_for_anthropic_clients() -> None:
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "go"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}],
            },
            {"role": "system", "content": [{"type": "text", "text": "<env/>"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}]},
        ],
    }
    assert am.render_request(am.parse_request(body), am_ctx()) == body


def test_tool_result_with_image() -> None:
    req = foreign(
        messages=[
            user("go"),
            assistant(ToolCallPart(id="c", name="shot", arguments="{}")),
            Message(
                role="tool",
                parts=[
                    ToolResultPart("c", [TextPart("see"), ImagePart(media_type="image/png", data=PNG_B64)])
                ],
            ),
        ]
    )
    result = am.render_request(req, up_ctx())["messages"][2]["content"][0]
    assert [b["type"] for b in result["content"]] == ["text", "image"]


def test_call_ids_sanitized_identically_and_mapped_back() -> None:
    """Case 31: `call.abc:1` -> `call_abc_1` in tool_use and tool_result; responses show the original."""
    req = foreign(
        messages=[
            user("go"),
            assistant(ToolCallPart(id="call.abc:1", name="f", arguments="{}")),
            Message(role="tool", parts=[ToolResultPart("call.abc:1", [TextPart("ok")])]),
        ]
    )
    ctx = up_ctx()
    msgs = am.render_request(req, ctx)["messages"]
    assert msgs[1]["content"][0]["id"] == "call_abc_1"
    assert msgs[2]["content"][0]["tool_use_id"] == "call_abc_1"
    assert ctx.call_ids == {"call_abc_1": "call.abc:1"}


def test_colliding_ids_stay_distinct() -> None:
    req = foreign(
        messages=[
            user("go"),
            assistant(
                ToolCallPart(id="a.1", name="f", arguments="{}"),
                ToolCallPart(id="a:1", name="f", arguments="{}"),
            ),
            Message(
                role="tool",
                parts=[ToolResultPart("a.1", [TextPart("x")]), ToolResultPart("a:1", [TextPart("y")])],
            ),
        ]
    )
    msgs = am.render_request(req, up_ctx())["messages"]
    ids = [b["id"] for b in msgs[1]["content"]]
    assert len(set(ids)) == 2
    assert [b["tool_use_id"] for b in msgs[2]["content"]] == ids


def test_orphan_results_and_missing_results_are_repaired() -> None:
    """Case 35: an orphan result becomes text; an unanswered call gets an is_error result."""
    req = foreign(
        messages=[
            user("go"),
            assistant(
                ToolCallPart(id="call_1", name="f", arguments="{}"),
                ToolCallPart(id="call_2", name="f", arguments="{}"),
            ),
            Message(
                role="tool",
                parts=[
                    ToolResultPart("call_1", [TextPart("r1")]),
                    ToolResultPart("call_zzz", [TextPart("lost")]),
                ],
            ),
            assistant("done?"),
            assistant(ToolCallPart(id="call_3", name="f", arguments="{}")),
        ]
    )
    msgs = am.render_request(req, up_ctx())["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    settled = msgs[2]["content"]
    assert settled[0] == {"type": "tool_result", "tool_use_id": "call_1", "content": "r1"}
    assert settled[1] == {
        "type": "tool_result",
        "tool_use_id": "call_2",
        "content": am.MISSING_RESULT_TEXT,
        "is_error": True,
    }
    assert settled[2]["type"] == "text"
    assert "call_zzz" in settled[2]["text"]
    assert "lost" in settled[2]["text"]
    assert msgs[4]["content"][0]["tool_use_id"] == "call_3"
    assert_valid_pairing(msgs)


def test_duplicate_results_keep_the_last() -> None:
    req = foreign(
        messages=[
            user("go"),
            assistant(ToolCallPart(id="c", name="f", arguments="{}")),
            Message(
                role="tool",
                parts=[ToolResultPart("c", [TextPart("old")]), ToolResultPart("c", [TextPart("new")])],
            ),
        ]
    )
    assert am.render_request(req, up_ctx())["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c", "content": "new"}
    ]


def test_thinking_kept_for_its_minter_first_in_the_message() -> None:
    """Case 45: [text, tool call, thinking(signed by this provider)] -> [thinking, text, tool_use]."""
    req = foreign(
        messages=[
            user("go"),
            assistant(
                "let me look",
                ToolCallPart(id="c", name="f", arguments="{}"),
                ThinkingPart(text="plan", signature="sig", origin="anthropic"),
            ),
            Message(role="tool", parts=[ToolResultPart("c", [TextPart("r")])]),
        ],
        reasoning=ReasoningConfig(effort="medium"),
    )
    body = am.render_request(req, up_ctx())
    assert [b["type"] for b in body["messages"][1]["content"]] == ["thinking", "text", "tool_use"]
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "plan", "signature": "sig"}
    assert body["thinking"]["type"] == "enabled"


def test_foreign_thinking_dropped_and_thinking_disabled_in_a_tool_loop() -> None:
    """Case 51 mirror: signatures from another provider never reach Anthropic; without them the tool
    loop cannot carry thinking, so thinking is switched off instead of drawing a 400."""
    req = foreign(
        messages=[
            user("go"),
            assistant(
                ThinkingPart(text="r", signature="gAAAA", origin="openai"),
                ThinkingPart(text="unsigned reasoning"),
                ToolCallPart(id="c", name="f", arguments="{}"),
            ),
            Message(role="tool", parts=[ToolResultPart("c", [TextPart("r")])]),
        ],
        reasoning=ReasoningConfig(effort="high"),
    )
    body = am.render_request(req, up_ctx())
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use"]
    assert body["thinking"] == {"type": "disabled"}


def test_same_format_thinking_history_is_byte_exact() -> None:
    """Case 46: thinking (incl. an empty-text signed block) and redacted_thinking echoed exactly, in order."""
    blocks = [
        {"type": "thinking", "thinking": "", "signature": "EqA"},
        {"type": "text", "text": "checking"},
        {"type": "redacted_thinking", "data": "EmwK"},
        {"type": "thinking", "thinking": "more", "signature": "EqB"},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
    ]
    body = {
        "model": MODEL,
        "max_tokens": 2000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "go"}]},
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}]},
        ],
    }
    assert am.render_request(am.parse_request(body), am_ctx()) == body


def test_response_format() -> None:
    """Case 64 (AM half): json_schema -> output_config.format; json_object -> a {type: object} schema."""
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    req = foreign(messages=[user("x")], response_format=ResponseFormat("json_schema", schema, "out", True))
    assert am.render_request(req, up_ctx())["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }
    req.response_format = ResponseFormat("json_object")
    assert am.render_request(req, up_ctx())["output_config"]["format"]["schema"] == {"type": "object"}


def test_cache_control_only_when_understood_and_at_most_four() -> None:
    cc = {"type": "ephemeral"}
    req = foreign(
        system=[TextPart("s1", cache_control=cc), TextPart("s2", cache_control=cc)],
        tools=[ToolSpec("f", cache_control=cc)],
        messages=[
            user(TextPart("u1", cache_control=cc)),
            assistant("a"),
            user(TextPart("u2", cache_control=cc)),
        ],
    )
    plain = am.render_request(req, up_ctx())
    assert b"cache_control" not in dumps(plain)
    capped = am.render_request(req, up_ctx(cache_control=True))
    assert dumps(capped).count(b"cache_control") == 4
    assert "cache_control" not in capped["tools"][0]  # the earliest breakpoint is the one dropped
    assert capped["messages"][2]["content"][0]["cache_control"] == cc


def test_message_level_cache_control_lands_on_the_last_block() -> None:
    msg = user("a", "b")
    msg.cache_control = {"type": "ephemeral"}
    body = am.render_request(foreign(messages=[msg]), up_ctx(cache_control=True))
    assert body["messages"][0]["content"][1]["cache_control"] == {"type": "ephemeral"}


def test_user_id_and_no_foreign_extras() -> None:
    req = foreign(messages=[user("x")], user="u-1", metadata={"k": "v"})
    req.extras = {"logit_bias": {"1": 2}}
    body = am.render_request(req, up_ctx())
    assert body["metadata"] == {"user_id": "u-1"}
    assert "logit_bias" not in body
    assert "stream" not in body
    req.stream = True
    assert am.render_request(req, up_ctx())["stream"] is True


def test_long_tool_names_shortened_everywhere_and_restored() -> None:
    """Case 16 (AM-upstream half): an 80-char name is shortened in tools, history and tool_choice."""
    long_name = "mcp__server__" + "x" * 67
    req = foreign(
        messages=[
            user("go"),
            assistant(ToolCallPart(id="c", name=long_name, arguments="{}")),
            Message(role="tool", parts=[ToolResultPart("c", [TextPart("r")])]),
        ],
        tools=[ToolSpec(long_name), ToolSpec("ns.tool")],
        tool_choice=ToolChoice("tool", long_name),
    )
    ctx = up_ctx(max_tool_name=64)
    body = am.render_request(req, ctx)
    short = body["tools"][0]["name"]
    assert len(short) <= 64
    assert body["tools"][1]["name"] == "ns_tool"
    assert body["messages"][1]["content"][0]["name"] == short
    assert body["tool_choice"] == {"type": "tool", "name": short}
    assert ctx.tool_names == {short: long_name, "ns_tool": "ns.tool"}
    resp = am.parse_response(
        {
            "id": "msg_1",
            "model": MODEL,
            "content": [{"type": "tool_use", "id": "toolu_9", "name": short, "input": {}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
        ctx,
    )
    call = resp.parts[0]
    assert isinstance(call, ToolCallPart)
    assert call.name == long_name


def test_render_never_mutates_the_ir() -> None:
    req = foreign(
        messages=[user(TextPart("a", cache_control={"type": "ephemeral"})) for _ in range(6)],
        tools=[ToolSpec("f", parameters={"anyOf": [{"type": "object"}]})],
    )
    before = copy.deepcopy(req)
    am.render_request(req, up_ctx(cache_control=True))
    assert req == before


# ----------------------------------------------------------------------------------------------------------
# hypothesis: parse -> render identity for Anthropic requests
# ----------------------------------------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s != "")
_cc = st.none() | st.just({"type": "ephemeral"})
_ids = st.from_regex(r"toolu_[A-Za-z0-9]{4,10}", fullmatch=True)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def _with_cc(block: JsonObj, cc: JsonObj | None) -> JsonObj:
    return {**block, "cache_control": cc} if cc is not None else block


@st.composite
def _exchange(draw: st.DrawFn) -> list[JsonObj]:
    """A user turn, an assistant turn, and (when it called tools) the user turn with every result."""
    user_blocks = [
        _with_cc({"type": "text", "text": draw(_text)}, draw(_cc)) for _ in range(draw(st.integers(1, 2)))
    ]
    if draw(st.booleans()):
        user_blocks.append(
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
        )
    asst: list[JsonObj] = []
    if draw(st.booleans()):
        asst.append({"type": "thinking", "thinking": draw(st.text(max_size=10)), "signature": draw(_text)})
    if draw(st.booleans()):
        asst.append({"type": "text", "text": draw(_text)})
    ids = draw(st.lists(_ids, max_size=3, unique=True))
    for call_id in ids:
        args = draw(st.dictionaries(st.text(min_size=1, max_size=5), _json_values, max_size=3))
        asst.append(
            {
                "type": "tool_use",
                "id": call_id,
                "name": draw(st.sampled_from(["Read", "Bash"])),
                "input": args,
            }
        )
    if not asst:
        asst.append({"type": "text", "text": draw(_text)})
    turns = [{"role": "user", "content": user_blocks}, {"role": "assistant", "content": asst}]
    if ids:
        results: list[JsonObj] = []
        for call_id in ids:
            result: JsonObj = {"type": "tool_result", "tool_use_id": call_id}
            if draw(st.booleans()):
                result["content"] = draw(_text)
            if draw(st.booleans()):
                result["is_error"] = True
            results.append(_with_cc(result, draw(_cc)))
        turns.append({"role": "user", "content": results})
    return turns


@st.composite
def anthropic_requests(draw: st.DrawFn) -> JsonObj:
    exchanges = draw(st.lists(_exchange(), min_size=1, max_size=3))
    messages: list[JsonObj] = []
    for turns in exchanges:
        if messages and messages[-1]["role"] == "user":
            messages[-1]["content"] = messages[-1]["content"] + turns[0]["content"]
            turns = turns[1:]
        messages.extend(turns)
    body: JsonObj = {"model": MODEL, "max_tokens": draw(st.integers(1, 64000)), "messages": messages}
    if draw(st.booleans()):
        body["system"] = [_with_cc({"type": "text", "text": draw(_text)}, draw(_cc))]
    if draw(st.booleans()):
        body["tools"] = [
            {"name": "Read", "input_schema": {"type": "object", "properties": {"p": {"type": "string"}}}},
            {"name": "Bash", "description": "run", "input_schema": {"type": "object"}, "strict": True},
        ]
        body["tool_choice"] = draw(st.sampled_from([{"type": "auto"}, {"type": "none"}]))
    if draw(st.booleans()):
        body["temperature"] = draw(st.sampled_from([0, 0.5, 1]))
    if draw(st.booleans()):
        body["stop_sequences"] = [draw(_text)]
    if draw(st.booleans()):
        body["stream"] = True
    if draw(st.booleans()):
        body["metadata"] = {"user_id": draw(_text)}
    return body


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(anthropic_requests())
def test_parse_render_identity(body: JsonObj) -> None:
    marks = dumps(body).count(b"cache_control")
    out = am.render_request(am.parse_request(body), am_ctx())
    if marks <= am.MAX_CACHE_BREAKPOINTS:
        assert out == body
    else:
        assert dumps(out).count(b"cache_control") == am.MAX_CACHE_BREAKPOINTS
    assert_valid_pairing(out["messages"])


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(anthropic_requests())
def test_requests_from_anthropic_render_valid_for_other_sources(body: JsonObj) -> None:
    """The same IR marked as another format's: still a valid Anthropic request (no empty text, pairing)."""
    req = am.parse_request(body)
    req.source_format = "openai-chat"
    out = am.render_request(req, up_ctx())
    assert_valid_pairing(out["messages"])
    assert b'"text":""' not in dumps(out)
    assert all(
        b["type"] not in ("thinking", "redacted_thinking") for m in out["messages"] for b in m["content"]
    )


_WIRE_KEYS = st.sampled_from(
    [
        "role",
        "content",
        "type",
        "text",
        "source",
        "media_type",
        "data",
        "url",
        "tool_use_id",
        "id",
        "name",
        "input",
        "signature",
        "thinking",
        "is_error",
        "cache_control",
        "citations",
        "title",
        "file_id",
        "budget_tokens",
        "display",
        "effort",
        "format",
        "schema",
        "user_id",
        "input_schema",
        "disable_parallel_tool_use",
        "strict",
    ]
)
_WIRE_WORDS = st.sampled_from(
    [
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "base64",
        "url",
        "file",
        "content",
        "user",
        "assistant",
        "system",
        "enabled",
        "adaptive",
        "disabled",
        "auto",
        "any",
        "tool",
        "none",
        "json_schema",
        "image/png",
        "application/pdf",
        "",
    ]
)
_junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _WIRE_WORDS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_WIRE_KEYS, inner, max_size=5),
    max_leaves=20,
)


_BLOCK_TYPES = st.sampled_from(
    [
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "search_result",
    ]
)
_odd_blocks = st.tuples(_BLOCK_TYPES, st.dictionaries(_WIRE_KEYS, _junk | _WIRE_WORDS, max_size=5)).map(
    lambda pair: {**pair[1], "type": pair[0]}
)
_odd_messages = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system"]),
        "content": _WIRE_WORDS | st.lists(_odd_blocks, max_size=4),
    }
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_odd_messages | _junk, max_size=5),
    st.dictionaries(
        st.sampled_from(
            [
                "system",
                "tools",
                "tool_choice",
                "thinking",
                "output_config",
                "output_format",
                "metadata",
                "stop_sequences",
                "max_tokens",
                "temperature",
                "top_k",
            ]
        ),
        _junk,
    ),
)
def test_odd_requests_raise_only_invalid_request_errors(messages: list[Any], fields: JsonObj) -> None:
    """Parsers never crash on what a client may send; whatever parses also renders, for both sources."""
    try:
        req = am.parse_request({"model": MODEL, "messages": messages, **fields})
    except InvalidRequestError:
        return
    dumps(am.render_request(req, am_ctx()))
    req.source_format = "openai-chat"
    dumps(am.render_request(req, up_ctx(cache_control=True)))


def assert_valid_pairing(messages: list[JsonObj]) -> None:
    """Anthropic's rules: roles alternate; each tool_use answered first thing in the next user turn;
    no tool_result without a call just before it."""
    for prev, cur in itertools.pairwise(messages):
        assert prev["role"] != cur["role"] or prev["role"] == "system"
    pending: list[str] = []
    for msg in messages:
        blocks = msg["content"]
        if msg["role"] == "user":
            n = len(pending)
            assert [b.get("tool_use_id") for b in blocks[:n]] == pending or sorted(
                b.get("tool_use_id") or "" for b in blocks[:n]
            ) == sorted(pending)
            assert all(b["type"] != "tool_result" for b in blocks[n:])
            pending = []
        elif msg["role"] == "assistant":
            assert not pending
            pending = [b["id"] for b in blocks if b["type"] == "tool_use"]
    assert not pending


# ----------------------------------------------------------------------------------------------------------
# parse_response / render_response
# ----------------------------------------------------------------------------------------------------------


def upstream_message(**kw: Any) -> JsonObj:
    body: JsonObj = {
        "id": "msg_01XYZ",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 100,
            "cache_read_input_tokens": 900,
            "cache_creation_input_tokens": 50,
            "output_tokens": 30,
        },
    }
    body.update(kw)
    return body


def test_parse_response_usage_includes_cache() -> None:
    """Case 54 (AM half): IR input = input + cache_read + cache_creation."""
    resp = am.parse_response(upstream_message(), up_ctx())
    assert resp.usage == Usage(input_tokens=1050, output_tokens=30, cached_tokens=900, cache_write_tokens=50)
    assert am.response_usage(upstream_message()) == resp.usage


@pytest.mark.parametrize(
    ("wire", "ir"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop_sequence"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause"),
        ("model_context_window_exceeded", "context_window"),
        ("a_reason_from_2030", "stop"),
        (None, "stop"),
    ],
)
def test_stop_reasons(wire: str | None, ir: str) -> None:
    assert am.parse_response(upstream_message(stop_reason=wire), up_ctx()).stop_reason == ir


def test_parse_response_blocks() -> None:
    ctx = up_ctx()
    ctx.tool_names["f_short"] = "f.long"
    ctx.call_ids["call_1"] = "call.1"
    body = upstream_message(
        content=[
            {"type": "thinking", "thinking": "t", "signature": "EqSig"},
            {"type": "redacted_thinking", "data": "EmwK"},
            {"type": "text", "text": "x", "citations": [{"type": "char_location"}]},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "tool_use", "id": "call_1", "name": "f_short", "input": {"a": [1, 2]}},
            {"type": "text", "text": ""},
        ],
        stop_reason="stop_sequence",
        stop_sequence="END",
    )
    resp = am.parse_response(body, ctx)
    assert resp.parts[0] == ThinkingPart(text="t", signature="EqSig", origin="anthropic")
    assert resp.parts[1] == ThinkingPart(signature="EmwK", redacted=True, origin="anthropic")
    assert resp.parts[2] == TextPart("x", citations=[{"type": "char_location"}])
    assert isinstance(resp.parts[3], OpaquePart)
    assert resp.parts[4] == ToolCallPart(id="call.1", name="f.long", arguments='{"a":[1,2]}')
    assert len(resp.parts) == 5
    assert (resp.stop_reason, resp.stop_sequence) == ("stop_sequence", "END")  # case 62


def test_custom_tool_call_comes_back_as_raw_text() -> None:
    """Case 18 (AM half): tool_use input.input -> ToolCallPart(kind custom, arguments = the string)."""
    ctx = up_ctx("openai-responses")
    ctx.request = foreign(tools=[ToolSpec("apply_patch", kind="custom")])
    body = upstream_message(
        content=[
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "apply_patch",
                "input": {"input": "*** Begin Patch\n"},
            }
        ],
        stop_reason="tool_use",
    )
    call = am.parse_response(body, ctx).parts[0]
    assert call == ToolCallPart(
        id="toolu_1", name="apply_patch", arguments="*** Begin Patch\n", kind="custom"
    )


def render_ir(resp: ChatResponse, ctx: Context | None = None) -> JsonObj:
    out = am.render_response(resp, ctx or client_ctx())
    SdkMessage.model_validate(out)
    return out


def test_render_response_usage_excludes_cache() -> None:
    """Case 55: OC usage {prompt 1000, cached 800, completion 50} -> AM input 200, cache_read 800."""
    resp = ChatResponse(
        id="chatcmpl-1",
        model="gpt-x",
        parts=[TextPart("hi")],
        usage=Usage(input_tokens=1000, output_tokens=50, cached_tokens=800, reasoning_tokens=20),
    )
    out = render_ir(resp)
    assert out["usage"] == {
        "input_tokens": 200,
        "cache_read_input_tokens": 800,
        "cache_creation_input_tokens": 0,
        "output_tokens": 50,
    }
    assert out["id"].startswith("msg_")
    assert out["stop_reason"] == "end_turn"


def test_render_response_tool_calls_win_the_stop_reason() -> None:
    """Case 61 (AM half): upstream said stop, but there is a tool call -> tool_use."""
    resp = ChatResponse(id="x", model="m", parts=[ToolCallPart(id="call_1", name="f", arguments='{"a":1}')])
    out = render_ir(resp)
    assert out["stop_reason"] == "tool_use"
    assert out["content"] == [{"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}]
    resp.stop_reason = "length"  # truncated inside the call: the truncation stays visible (case 43)
    assert render_ir(resp)["stop_reason"] == "max_tokens"


def test_render_response_refusal() -> None:
    """Case 63 (AM half): a refusal part -> text + stop_reason refusal."""
    resp = ChatResponse(
        id="x", model="m", parts=[RefusalPart("I can't help with that.")], stop_reason="content_filter"
    )
    out = render_ir(resp)
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"
    resp.stop_reason = "stop"
    assert render_ir(resp)["stop_reason"] == "refusal"


def test_render_response_stop_sequence_value() -> None:
    resp = ChatResponse(
        id="x", model="m", parts=[TextPart("a")], stop_reason="stop_sequence", stop_sequence="END"
    )
    out = render_ir(resp)
    assert (out["stop_reason"], out["stop_sequence"]) == ("stop_sequence", "END")


def test_render_response_signatures_tagged_for_foreign_upstreams_raw_for_anthropic() -> None:
    parts: list[Any] = [
        ThinkingPart(text="r", signature="gAAAAenc", origin="openai"),
        ThinkingPart(signature="blob", redacted=True, origin="openai"),
        ThinkingPart(text="no token"),
    ]
    out = render_ir(ChatResponse(id="x", model="m", parts=parts), client_ctx("openai-responses"))
    assert out["content"][0]["signature"] == tag_signature("gAAAAenc", "openai")
    assert out["content"][1] == {"type": "redacted_thinking", "data": tag_signature("blob", "openai")}
    # unsigned reasoning still carries whose it was
    assert out["content"][2] == {
        "type": "thinking",
        "thinking": "no token",
        "signature": tag_signature("", "openai"),
    }
    # ...and the next request gives the origin back, so only that upstream sees the token again
    req = am.parse_request({"model": MODEL, "messages": [{"role": "assistant", "content": out["content"]}]})
    assert req.messages[0].parts[0] == ThinkingPart(text="r", signature="gAAAAenc", origin="openai")
    assert req.messages[0].parts[2] == ThinkingPart(text="no token", origin="openai")
    native = render_ir(ChatResponse(id="x", model="m", parts=parts[:1]), am_ctx())
    assert native["content"][0]["signature"] == "gAAAAenc"


def test_anthropic_round_trip_response() -> None:
    body = upstream_message(
        content=[
            {"type": "thinking", "thinking": "t", "signature": "EqSig"},
            {"type": "text", "text": "x"},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
        ],
        stop_reason="tool_use",
    )
    ctx = am_ctx()
    out = render_ir(am.parse_response(body, ctx), ctx)
    assert out == body


# ----------------------------------------------------------------------------------------------------------
# StreamParser
# ----------------------------------------------------------------------------------------------------------

TOOL_FRAGMENTS = ['{"path": "C:', "\\\\", 'tmp\\"', 'x\\u00e9"', ', "n": 1}']


def upstream_stream(stop_reason: str = "tool_use") -> bytes:
    return sse(
        {
            "type": "message_start",
            "message": {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 100,
                    "cache_read_input_tokens": 900,
                    "cache_creation_input_tokens": 50,
                    "output_tokens": 1,
                },
            },
        },
        {"type": "ping"},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Let me "},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "think."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "EqQBsig"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Reading."}},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "citations_delta", "citation": {"type": "char_location"}},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_up", "name": "read_up", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
        *[
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": f},
            }
            for f in TOOL_FRAGMENTS
        ],
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"type": "message_delta", "stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 42},
        },
        {"type": "message_stop"},
    )


def test_stream_parser_events() -> None:
    """Cases 36/44 (AM half), 58, 71: thinking + signature, text, tool arguments forwarded untouched,
    ping ignored, usage converted."""
    ctx = up_ctx()
    ctx.tool_names["read_up"] = "read"
    ctx.call_ids["toolu_up"] = "call.1"
    events = parse_stream([upstream_stream()], ctx)
    assert events[0] == StreamStart(
        id="msg_01",
        model=MODEL,
        usage=Usage(input_tokens=1050, output_tokens=1, cached_tokens=900, cache_write_tokens=50),
    )
    assert events[1:4] == [
        ThinkingDelta("Let me "),
        ThinkingDelta("think."),
        ThinkingSignature("EqQBsig", "anthropic"),
    ]
    assert events[4] == TextDelta("Reading.")
    assert events[5] == ToolCallStart(0, "call.1", "read")
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [d.arguments for d in deltas] == TOOL_FRAGMENTS
    assert loads("".join(TOOL_FRAGMENTS)) == {"path": 'C:\\tmp"xé', "n": 1}
    assert events[-3:] == [
        ToolCallEnd(0),
        Finish("tool_calls"),
        UsageUpdate(Usage(input_tokens=1050, output_tokens=42, cached_tokens=900, cache_write_tokens=50)),
    ]


def test_stream_parser_truncated_tool_call() -> None:
    """Case 43 (AM half): max_tokens inside a tool_use -> length, arguments not rewritten."""
    raw = sse(
        {
            "type": "message_start",
            "message": {"id": "m", "model": MODEL, "usage": {"input_tokens": 1, "output_tokens": 1}},
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"a": "unfini'},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}},
    )
    acc = StreamAccumulator()
    for event in parse_stream([raw], up_ctx()):
        acc.feed(event)
    resp = acc.result()
    assert resp.stop_reason == "length"
    assert resp.parts == [ToolCallPart(id="t", name="f", arguments='{"a": "unfini')]


@settings(max_examples=100)
@given(st.lists(st.integers(min_value=1, max_value=2000), max_size=30))
def test_stream_parser_invariant_to_byte_splits(cuts: list[int]) -> None:
    raw = upstream_stream().replace(b"\n", b"\r\n")
    points = sorted({c % len(raw) for c in cuts})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert parse_stream(chunks, up_ctx()) == parse_stream([raw], up_ctx())


def test_stream_parser_error_event() -> None:
    """Case 66 (AM half): `event: error` overloaded_error -> a 503-class gateway error."""
    parser = am.StreamParser(up_ctx())
    frame = SSEDecoder().feed(
        sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    )[0]
    with pytest.raises(ServiceUnavailableError) as info:
        parser.feed(frame)
    assert info.value.status == 503
    assert info.value.code == "overloaded"
    frame = SSEDecoder().feed(
        sse({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})
    )[0]
    with pytest.raises(RateLimitError):
        parser.feed(frame)


def test_stream_parser_custom_tool_server_blocks_and_cut_stream() -> None:
    ctx = up_ctx("openai-responses")
    ctx.request = foreign(tools=[ToolSpec("apply_patch", kind="custom")])
    raw = sse(
        {
            "type": "message_start",
            "message": {"id": "m", "model": MODEL, "usage": {"input_tokens": 1, "output_tokens": 1}},
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"query": '},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '"cats"}'},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "redacted_thinking", "data": "EmwK"},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "apply_patch", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"input": "*** Be'},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": 'gin\\n"}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "content_block_start",
            "index": 3,
            "content_block": {"type": "tool_use", "id": "toolu_2", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 3,
            "delta": {"type": "input_json_delta", "partial_json": '{"a'},
        },
    )
    events = parse_stream([raw], ctx)
    assert events[1] == OpaqueBlock(
        "anthropic",
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "cats"}},
    )
    assert events[2] == RedactedThinking("EmwK", "anthropic")
    assert events[3:6] == [
        ToolCallStart(0, "toolu_1", "apply_patch", "custom"),
        ToolCallDelta(0, "*** Begin\n"),
        ToolCallEnd(0),
    ]
    assert events[-3:] == [
        ToolCallStart(1, "toolu_2", "f"),
        ToolCallDelta(1, '{"a'),
        ToolCallEnd(1),
    ]  # closed by close()


def test_stream_parser_ignores_noise() -> None:
    parser = am.StreamParser(up_ctx())
    assert parser.feed(SSEDecoder().feed(b"event: ping\ndata: {}\n\n")[0]) == []
    assert parser.feed(SSEDecoder().feed(b"data: not json\n\n")[0]) == []
    assert parser.feed(SSEDecoder().feed(b'event: future\ndata: {"type":"future"}\n\n')[0]) == []


# ----------------------------------------------------------------------------------------------------------
# StreamRenderer
# ----------------------------------------------------------------------------------------------------------


def test_stream_renderer_through_the_sdk() -> None:
    """Cases 37, 39, 58: blocks sequential; tool_use start carries id + name with input {}; argument
    fragments split between a backslash and a quote concatenate into valid JSON."""
    events: list[StreamEvent] = [
        StreamStart(id="chatcmpl-1", model="gpt-x", usage=Usage(input_tokens=1000, cached_tokens=800)),
        ThinkingDelta("hmm"),
        ThinkingSignature("gAAAAenc", "openai"),
        TextDelta("Hello"),
        TextDelta(" world"),
        ToolCallStart(0, "call_1", "read"),
        ToolCallDelta(0, '{"p": "a\\'),
        ToolCallDelta(0, '"b"}'),
        ToolCallEnd(0),
        ToolCallStart(1, "call_2", "grep"),
        ToolCallDelta(1, '{"q": 1}'),
        ToolCallEnd(1),
        Finish("stop"),
        UsageUpdate(Usage(input_tokens=1000, output_tokens=77, cached_tokens=800)),
    ]
    raw = render_stream(events, client_ctx())
    frames = check_stream(raw)
    assert frames[0]["message"]["usage"]["input_tokens"] == 200  # case 58: a usage object up front
    starts = [f for f in frames if f["type"] == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["thinking", "text", "tool_use", "tool_use"]
    assert starts[2]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "read", "input": {}}
    assert frames[-2]["delta"]["stop_reason"] == "tool_use"
    assert frames[-2]["usage"]["output_tokens"] == 77
    assert frames[-1] == {"type": "message_stop"}
    message = sdk_final_message(raw)
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[0].signature == tag_signature("gAAAAenc", "openai")
    assert message.content[1].text == "Hello world"
    assert message.content[2].input == {"p": 'a"b'}
    assert message.content[3].input == {"q": 1}
    assert message.stop_reason == "tool_use"
    assert (
        message.usage.input_tokens,
        message.usage.cache_read_input_tokens,
        message.usage.output_tokens,
    ) == (
        200,
        800,
        77,
    )


def test_stream_renderer_signature_only_and_redacted_blocks() -> None:
    """Case 48/50 (AM half): a signature without text still makes a thinking block; same-format tokens raw."""
    events: list[StreamEvent] = [
        StreamStart(id="msg_1", model=MODEL),
        ThinkingSignature("EqSig", "anthropic"),
        RedactedThinking("EmwK", "anthropic"),
        TextDelta("x"),
        Finish("stop"),
    ]
    raw = render_stream(events, am_ctx())
    check_stream(raw)
    message = sdk_final_message(raw)
    assert message.content[0].type == "thinking"
    assert message.content[0].signature == "EqSig"
    assert message.content[1].type == "redacted_thinking"
    assert message.content[1].data == "EmwK"


def test_unsigned_streamed_reasoning_returns_only_to_its_upstream() -> None:
    """Case 53 (AM half): DeepSeek-style reasoning without a signature -> a thinking block whose tag
    names the upstream; replayed to that upstream's format, never to Anthropic."""
    ctx = client_ctx("openai-chat", provider="deepseek")
    raw = render_stream([StreamStart(id="x", model="m"), ThinkingDelta("why"), TextDelta("answer")], ctx)
    check_stream(raw)
    message = sdk_final_message(raw)
    assert message.content[0].signature == tag_signature("", "deepseek")
    history = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": message.model_dump(exclude_none=True)["content"]},
    ]
    req = am.parse_request({"model": MODEL, "messages": [*history, {"role": "user", "content": "more"}]})
    assert req.messages[1].parts[0] == ThinkingPart(text="why", origin="deepseek")
    body = am.render_request(req, am_ctx())
    assert [b["type"] for b in body["messages"][1]["content"]] == ["text"]


def test_stream_renderer_custom_tool_and_refusal() -> None:
    events: list[StreamEvent] = [
        StreamStart(id="resp_1", model="gpt-x"),
        ToolCallStart(0, "call_1", "apply_patch", "custom"),
        ToolCallDelta(0, '*** Begin "quoted"\n'),
        ToolCallDelta(0, "\\ end"),
        ToolCallEnd(0),
    ]
    message = sdk_final_message(render_stream(events, client_ctx("openai-responses")))
    assert message.content[0].input == {"input": '*** Begin "quoted"\n\\ end'}
    refusal = render_stream(
        [StreamStart(id="x", model="m"), RefusalDelta("No."), Finish("stop")], client_ctx()
    )
    frames = check_stream(refusal)
    assert frames[-2]["delta"]["stop_reason"] == "refusal"  # case 63


def test_stream_renderer_without_start_or_content() -> None:
    raw = render_stream([Finish("length")], client_ctx())
    frames = check_stream(raw)
    assert [f["type"] for f in frames] == ["message_start", "message_delta", "message_stop"]
    assert frames[1]["delta"]["stop_reason"] == "max_tokens"
    assert sdk_final_message(raw).content == []


def test_stream_renderer_fail_writes_one_error_frame() -> None:
    """Case 70 (AM half): mid-stream failure -> `event: error` {type: error, error: {type, message}}."""
    renderer = am.StreamRenderer(client_ctx())
    out = renderer.feed(StreamStart(id="x", model="m")) + renderer.feed(TextDelta("partial"))
    error = ServiceUnavailableError("upstream overloaded", code="overloaded")
    tail = renderer.fail(error)
    assert decode_frames(tail) == [
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "upstream overloaded"}})
    ]
    assert renderer.feed(TextDelta("more")) == b""
    assert renderer.close() == b""
    with pytest.raises(anthropic.APIStatusError, match="upstream overloaded"):
        sdk_final_message(out + tail)


def test_stream_renderer_drops_foreign_opaque_blocks() -> None:
    raw = render_stream(
        [
            StreamStart(id="x", model="m"),
            OpaqueBlock("openai-responses", {"type": "web_search_call"}),
            TextDelta("a"),
        ],
        client_ctx(),
    )
    assert [f["type"] for f in check_stream(raw) if f["type"] == "content_block_start"] == [
        "content_block_start"
    ]


_ir_stream_items = st.lists(
    st.one_of(
        st.builds(TextDelta, st.text(max_size=8)),
        st.builds(ThinkingDelta, st.text(max_size=8)),
        st.builds(ThinkingSignature, st.text(min_size=1, max_size=8), st.just("openai")),
        st.builds(RedactedThinking, st.text(min_size=1, max_size=8), st.just("openai")),
        st.builds(RefusalDelta, st.text(max_size=8)),
        st.tuples(st.sampled_from(["function", "custom"]), st.lists(st.text(max_size=6), max_size=4)),
        st.builds(UsageUpdate, st.builds(Usage, st.integers(0, 500), st.integers(0, 500))),
    ),
    max_size=12,
)


def _ir_stream(items: list[Any], stop: str) -> list[StreamEvent]:
    """Hypothesis items -> a grammar-valid IR stream (tool calls expanded into start/delta*/end)."""
    events: list[StreamEvent] = [StreamStart(id="up-1", model="m")]
    tool = 0
    for item in items:
        if isinstance(item, tuple):
            kind, fragments = item
            events.append(ToolCallStart(tool, f"call_{tool}", "f", kind))
            if kind == "function":
                fragments = [dumps({"v": "".join(fragments)}).decode()]
            events.extend(ToolCallDelta(tool, f) for f in fragments)
            events.append(ToolCallEnd(tool))
            tool += 1
        else:
            events.append(item)
    events.append(Finish(stop))  # type: ignore[arg-type]
    return events


@settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(_ir_stream_items, st.sampled_from(["stop", "length", "tool_calls", "content_filter", "pause"]))
def test_stream_renderer_output_always_accepted_by_the_sdk(items: list[Any], stop: str) -> None:
    events = _ir_stream(items, stop)
    raw = render_stream(events, client_ctx())
    check_stream(raw)
    message = sdk_final_message(raw)
    # what the SDK assembled is what the IR said (read back through our own parser)
    acc_in, acc_out = StreamAccumulator(), StreamAccumulator()
    for e in events:
        acc_in.feed(e)
    for e in parse_stream([raw], am_ctx()):
        acc_out.feed(e)
    want, got = acc_in.result(), acc_out.result()
    assert _segments(got.parts) == _segments(want.parts)
    assert len(message.content) == len(got.parts)


def _segments(parts: list[Any]) -> list[tuple[str, Any]]:
    """Visible content in order: adjacent text merged, empty text and thinking left out, custom tool
    input read back from its {"input": ...} wrapper."""
    out: list[tuple[str, Any]] = []
    for part in parts:
        if isinstance(part, (TextPart, RefusalPart)):
            if not part.text:
                continue
            if out and out[-1][0] == "text":
                out[-1] = ("text", out[-1][1] + part.text)
            else:
                out.append(("text", part.text))
        elif isinstance(part, ToolCallPart):
            value = part.arguments if part.kind == "custom" else loads(part.arguments)
            if isinstance(value, dict) and set(value) == {"input"}:
                value = value["input"]
            out.append(("tool", value))
    return out


def test_response_events_render_like_the_response() -> None:
    """A non-streaming upstream behind a streaming Anthropic client: same content either way."""
    resp = ChatResponse(
        id="x",
        model="m",
        parts=[
            ThinkingPart("t", "sig", origin="openai"),
            TextPart("hello"),
            ToolCallPart("c", "f", '{"a":1}'),
        ],
        usage=Usage(input_tokens=10, output_tokens=5),
    )
    streamed = sdk_final_message(render_stream(response_events(resp), client_ctx()))
    direct = render_ir(resp)
    assert streamed.model_dump(exclude_none=True)["content"] == direct["content"]


# ----------------------------------------------------------------------------------------------------------
# UsageTap
# ----------------------------------------------------------------------------------------------------------


def test_usage_tap_reads_only_usage_events() -> None:
    tap = am.UsageTap()
    decoder = SSEDecoder()
    for event in decoder.feed(upstream_stream()):
        tap.feed(event)
    assert tap.usage == Usage(input_tokens=1050, output_tokens=42, cached_tokens=900, cache_write_tokens=50)
    tap = am.UsageTap()
    tap.feed(
        SSEDecoder().feed(b'event: content_block_delta\ndata: {"usage": "text mentioning usage"}\n\n')[0]
    )
    assert tap.usage is None


# ----------------------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------------------


def error_body(err_type: str, message: str) -> bytes:
    return dumps({"type": "error", "error": {"type": err_type, "message": message}, "request_id": "req_1"})


def test_parse_error_overloaded_with_retry_after() -> None:
    """Case 66 (AM half): 529 overloaded_error -> 503-class error carrying the retry hint."""
    err = am.parse_error(529, error_body("overloaded_error", "Overloaded"), {"retry-after": "7"})
    assert isinstance(err, ServiceUnavailableError)
    assert (err.status, err.code, err.retry_after, err.upstream_status) == (503, "overloaded", 7.0, 529)


def test_parse_error_rate_limit_reset_headers() -> None:
    headers = {
        "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": "2099-01-01T00:00:00Z",
    }
    err = am.parse_error(429, error_body("rate_limit_error", "slow down"), headers)
    assert isinstance(err, RateLimitError)
    assert err.retry_after is not None
    assert err.retry_after > 0


@pytest.mark.parametrize(
    ("status", "err_type", "message", "cls"),
    [
        (
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
            ContextLengthError,
        ),
        (400, "invalid_request_error", "messages.1: bad", InvalidRequestError),
        (401, "authentication_error", "invalid x-api-key", UpstreamAuthError),
        (500, "api_error", "boom", UpstreamError),
    ],
)
def test_parse_error_classes(status: int, err_type: str, message: str, cls: type[GatewayError]) -> None:
    err = am.parse_error(status, error_body(err_type, message), {})
    assert type(err) is cls
    assert message in err.message


def test_parse_error_without_json() -> None:
    err = am.parse_error(502, b"<html>Bad gateway</html>", {})
    assert isinstance(err, UpstreamError)
    assert "Bad gateway" in err.message


@pytest.mark.parametrize(
    ("error", "status", "err_type"),
    [
        (InvalidRequestError("bad"), 400, "invalid_request_error"),
        (UpstreamAuthError("no"), 502, "api_error"),
        (RateLimitError("slow", retry_after=2.5), 429, "rate_limit_error"),
        (ServiceUnavailableError("busy", code="overloaded"), 529, "overloaded_error"),
        (ServiceUnavailableError("draining"), 529, "overloaded_error"),
        (UpstreamError("eh"), 502, "api_error"),
        (GatewayError("x"), 500, "api_error"),
    ],
)
def test_render_error(error: GatewayError, status: int, err_type: str) -> None:
    code, headers, body = am.render_error(error)
    assert code == status
    data = loads(body)
    assert data == {"type": "error", "error": {"type": err_type, "message": error.message}}
    ErrorResponse.model_validate(data)
    if error.retry_after:
        assert headers["retry-after"] == "3"


def test_render_error_other_statuses() -> None:
    from omniroute import (
        AuthenticationError,
        BudgetExceededError,
        ModelNotFoundError,
        PayloadTooLargeError,
        PermissionDeniedError,
        UpstreamTimeoutError,
    )

    table = {
        AuthenticationError("k"): (401, "authentication_error"),
        BudgetExceededError("b"): (402, "billing_error"),
        PermissionDeniedError("p"): (403, "permission_error"),
        ModelNotFoundError("m"): (404, "not_found_error"),
        PayloadTooLargeError("big"): (413, "request_too_large"),
        UpstreamTimeoutError("t"): (504, "timeout_error"),
    }
    for error, (status, err_type) in table.items():
        code, _, body = am.render_error(error)
        assert (code, loads(body)["error"]["type"]) == (status, err_type)


def test_context_errors_keep_the_wording_claude_code_knows() -> None:
    """Case 69 (AM half): whoever overflowed, an Anthropic client reads "prompt is too long"."""
    _, _, body = am.render_error(ContextLengthError("The input token count (300000) exceeds the maximum"))
    assert loads(body)["error"]["message"].startswith("prompt is too long")


def test_sdk_maps_our_overload_answer_to_its_overloaded_error() -> None:
    """Case 66: an Anthropic client sees 529 overloaded_error with retry-after."""
    status, headers, body = am.render_error(ServiceUnavailableError("busy", retry_after=1))

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers=headers, content=body)

    client = anthropic.Anthropic(
        api_key="k",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])


# ----------------------------------------------------------------------------------------------------------
# protocol surface
# ----------------------------------------------------------------------------------------------------------


def test_module_surface() -> None:
    from omniroute_providers.formats import get_format

    fmt = get_format("anthropic")
    assert fmt.FORMAT_ID == "anthropic"
    assert fmt.STREAM_CONTENT_TYPE == "text/event-stream"
    assert fmt.request_path(MODEL, True) == "/messages"
    body = {"model": MODEL}
    assert fmt.prepare_passthrough(body) is body

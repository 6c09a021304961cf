"""OpenAI Chat Completions wire format: what an OpenAI-speaking client or upstream notices.

Sans-I/O: dicts and bytes in, dicts and bytes out. Client-facing output is validated with the real
`openai` SDK types (and its stream accumulator); the §5 conformance cases of formats.md are tested at this
module's boundary (the OC half of each pair).
"""

from __future__ import annotations

import copy
from typing import Any

import httpx2
import openai
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import CompletionCreateParamsStreaming

from omniroute import (
    BudgetExceededError,
    ContextLengthError,
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamAuthError,
    UpstreamError,
    dumps,
    loads,
)
from omniroute_providers.formats import get_format
from omniroute_providers.formats import openai_chat as oc
from omniroute_providers.formats.sse import SSEDecoder, SSEEvent
from omniroute_providers.ir import (
    AudioPart,
    ChatRequest,
    ChatResponse,
    Context,
    FilePart,
    Finish,
    ImagePart,
    Message,
    OpaquePart,
    ReasoningConfig,
    RedactedThinking,
    RefusalDelta,
    RefusalPart,
    SignatureCache,
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

# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------


def make_ctx(**kw: Any) -> Context:
    base: dict[str, Any] = {
        "client_format": "openai-chat",
        "upstream_format": "openai-chat",
        "provider": "openai",
        "upstream_model": "gpt-up",
        "client_model": "my-model",
        "response_id": "abc123",
        "created": 1_700_000_000,
    }
    base.update(kw)
    return Context(**base)


def body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": list(messages), **fields}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **top: Any) -> dict[str, Any]:
    choices = (
        []
        if delta is None and finish is None
        else [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    )
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion.chunk",
        "model": "gpt-up",
        "choices": choices,
        **top,
    }


def tool_chunk(*calls: dict[str, Any]) -> dict[str, Any]:
    return chunk({"tool_calls": list(calls)})


def parse_stream(ctx: Context, chunks: list[dict[str, Any]], *, done: bool = True) -> list[StreamEvent]:
    parser = oc.StreamParser(ctx)
    events: list[StreamEvent] = []
    for c in chunks:
        events.extend(parser.feed(SSEEvent(dumps(c))))
    if done:
        events.extend(parser.feed(SSEEvent(b"[DONE]")))
    events.extend(parser.close())
    return events


def render_stream(ctx: Context, events: list[StreamEvent]) -> bytes:
    renderer = oc.StreamRenderer(ctx)
    return b"".join(renderer.feed(e) for e in events) + renderer.close()


def frames(raw: bytes) -> list[Any]:
    """SSE bytes -> decoded data payloads ("[DONE]" stays a string)."""
    decoder = SSEDecoder()
    events = decoder.feed(raw) + decoder.close()
    return ["[DONE]" if e.data == b"[DONE]" else loads(e.data) for e in events]


def tool_args(events: list[StreamEvent]) -> dict[int, str]:
    out: dict[int, str] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            out[e.index] = out.get(e.index, "") + e.arguments
    return out


def check_grammar(events: list[StreamEvent]) -> None:
    """The IR stream grammar of ir.py: StreamStart first; tool calls never interleave; Finish then usage."""
    assert events, "a stream has events"
    assert isinstance(events[0], StreamStart)
    assert sum(isinstance(e, StreamStart) for e in events) == 1
    open_call: int | None = None
    next_index = 0
    finished = False
    for e in events[1:]:
        if finished:
            assert isinstance(e, UsageUpdate), f"only usage after Finish, got {e}"
            continue
        if isinstance(e, ToolCallStart):
            assert open_call is None
            assert e.index == next_index
            open_call, next_index = e.index, next_index + 1
        elif isinstance(e, ToolCallDelta):
            assert e.index == open_call
        elif isinstance(e, ToolCallEnd):
            assert e.index == open_call
            open_call = None
        else:
            assert open_call is None, f"{e} inside tool call {open_call}"
            finished = isinstance(e, Finish)
    assert open_call is None


MESSAGE_KEYS = {
    "role",
    "content",
    "refusal",
    "tool_calls",
    "annotations",
    "reasoning_content",
    "thinking_blocks",
}

# ----------------------------------------------------------------------------------------------------------
# module shape
# ----------------------------------------------------------------------------------------------------------


def test_module_is_the_openai_chat_format() -> None:
    fmt = get_format("openai-chat")
    assert fmt is oc  # type: ignore[comparison-overlap]
    assert fmt.FORMAT_ID == "openai-chat"
    assert fmt.STREAM_CONTENT_TYPE == "text/event-stream"
    assert fmt.request_path("gpt-4o", True) == "/chat/completions"
    assert fmt.request_path("gpt-4o", False) == "/chat/completions"
    original = body(user("hi"), stream=True)
    assert fmt.prepare_passthrough(original) == body(user("hi"), stream=True)


# ----------------------------------------------------------------------------------------------------------
# request: parse
# ----------------------------------------------------------------------------------------------------------


def test_leading_system_and_developer_become_system_in_source_order() -> None:
    req = oc.parse_request(
        body(
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            user("hi"),
            {"role": "system", "content": "Now be verbose."},
        )
    )
    assert [p.text for p in req.system] == ["You are terse.", "Use metric."]
    assert [m.role for m in req.messages] == ["user", "system"]
    assert req.messages[1].parts == [TextPart("Now be verbose.")]
    assert req.source_format == "openai-chat"
    assert req.stream is False


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": []}, "model"),
        ({"model": 3, "messages": []}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"model": "m", "messages": [], "tools": {}}, "tools"),
        (
            {"model": "m", "messages": [], "tools": [{"type": "function", "function": {}}]},
            "tools[0].function.name",
        ),
        ({"model": "m", "messages": [], "stop": 5}, "stop"),
        ({"model": "m", "messages": [], "stream": "yes"}, "stream"),
        ({"model": "m", "messages": [], "max_tokens": "10"}, "max_tokens"),
        ({"model": "m", "messages": [], "temperature": "hot"}, "temperature"),
        (
            {"model": "m", "messages": [], "stream_options": {"include_usage": 1}},
            "stream_options.include_usage",
        ),
    ],
)
def test_malformed_request_is_rejected_naming_the_field(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        oc.parse_request(payload)
    assert exc.value.param == param
    assert exc.value.status == 400


def test_user_content_parts_become_ir_parts() -> None:
    req = oc.parse_request(
        body(
            user(
                [
                    {"type": "text", "text": "Look:"},
                    {"type": "text", "text": ""},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                    },
                    {"type": "file", "file": {"file_id": "file-123"}},
                    {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "report.pdf"}},
                    {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}},
                ]
            )
        )
    )
    assert req.messages[0].parts == [
        TextPart("Look:"),
        ImagePart(media_type="image/png", data="iVBORw0KGgo=", detail="high"),
        ImagePart(url="https://example.com/cat.jpg"),
        AudioPart(data="UklGRg==", format="wav"),
        FilePart(media_type="application/pdf", data="JVBERi0=", filename="a.pdf"),
        FilePart(file_id="file-123"),
        FilePart(media_type="application/pdf", data="JVBERi0=", filename="report.pdf"),
        OpaquePart("openai-chat", {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}}),
    ]


def test_opencode_json_quoted_prompt_passes_through_verbatim() -> None:
    req = oc.parse_request(
        body(user('"Say PONG"'), max_tokens=32000, stream=True, stream_options={"include_usage": True})
    )
    assert req.messages[0].parts == [TextPart('"Say PONG"')]
    assert req.max_tokens == 32000
    assert req.stream is True
    assert req.include_usage is True
    out = oc.render_request(req, make_ctx())
    assert out["messages"] == [{"role": "user", "content": '"Say PONG"'}]


def test_assistant_history_keeps_argument_strings_and_reasoning() -> None:
    args = '{ "city" : "Paris",\n "unit": "c" }'  # odd spacing must survive byte for byte
    req = oc.parse_request(
        body(
            user("weather?"),
            {
                "role": "assistant",
                "content": "",
                "reasoning_content": "need the weather tool",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": args},
                    }
                ],
            },
        )
    )
    assistant = req.messages[1]
    assert assistant.parts == [
        ThinkingPart(text="need the weather tool"),
        ToolCallPart(id="call_1", name="get_weather", arguments=args),
    ]


def test_thinking_blocks_extension_carries_signatures_with_their_origin() -> None:
    tagged = tag_signature("EqQBsig", "anthropic")
    req = oc.parse_request(
        body(
            user("q"),
            {
                "role": "assistant",
                "content": "answer",
                "reasoning_content": "ignored: the blocks are the source of truth",
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "step 1", "signature": tagged},
                    {"type": "redacted_thinking", "data": "opaque=="},
                ],
            },
        )
    )
    assert req.messages[1].parts == [
        ThinkingPart(text="step 1", signature="EqQBsig", origin="anthropic"),
        ThinkingPart(signature="opaque==", redacted=True, origin=None),
        TextPart("answer"),
    ]


def test_case_45_signature_only_block_gets_the_text_a_streaming_client_kept_in_reasoning_content() -> None:
    req = oc.parse_request(
        body(
            user("q"),
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "full reasoning",
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "", "signature": tag_signature("sig", "claude")}
                ],
                "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
        )
    )
    assert req.messages[1].parts == [
        ThinkingPart(text="full reasoning", signature="sig", origin="claude"),
        ToolCallPart("toolu_1", "f", "{}"),
    ]


def test_consecutive_tool_messages_become_one_ir_tool_message_in_order() -> None:
    req = oc.parse_request(
        body(
            user("two things"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": "A"},
            {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "B"}]},
            user("thanks"),
        )
    )
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "user"]
    assert req.messages[2].parts == [
        ToolResultPart(call_id="a", content=[TextPart("A")]),
        ToolResultPart(call_id="b", content=[TextPart("B")]),
    ]


def test_tools_choice_and_response_format_are_parsed() -> None:
    req = oc.parse_request(
        body(
            user("x"),
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        "description": "d",
                        "parameters": {"type": "object"},
                        "strict": True,
                    },
                },
                {
                    "type": "custom",
                    "custom": {
                        "name": "apply_patch",
                        "format": {
                            "type": "grammar",
                            "grammar": {"syntax": "lark", "definition": "start: x"},
                        },
                    },
                },
                {"type": "web_search_preview"},
            ],
            tool_choice={"type": "function", "function": {"name": "f"}},
            parallel_tool_calls=False,
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "out",
                    "schema": {"type": "object"},
                    "strict": True,
                    "description": "o",
                },
            },
        )
    )
    assert req.tools[0] == ToolSpec(name="f", description="d", parameters={"type": "object"}, strict=True)
    assert req.tools[1].kind == "custom"
    assert req.tools[1].grammar == {"type": "grammar", "syntax": "lark", "definition": "start: x"}
    assert req.tools[2].kind == "builtin"
    assert req.tools[2].raw == {"type": "web_search_preview"}
    assert req.tool_choice == ToolChoice(mode="tool", name="f")
    assert req.parallel_tool_calls is False
    assert req.response_format is not None
    assert (req.response_format.kind, req.response_format.name, req.response_format.strict) == (
        "json_schema",
        "out",
        True,
    )


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", ToolChoice(mode="none")),
        ("auto", ToolChoice(mode="auto")),
        ("required", ToolChoice(mode="required")),
        ("sometimes", ToolChoice(mode="auto")),
        ({"type": "function", "function": {"name": "f"}}, ToolChoice(mode="tool", name="f")),
        ({"type": "custom", "custom": {"name": "apply_patch"}}, ToolChoice(mode="tool", name="apply_patch")),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "f"}}],
                },
            },
            ToolChoice(mode="required", allowed=["f"]),
        ),
    ],
)
def test_tool_choice_forms(choice: Any, expected: ToolChoice) -> None:
    assert oc.parse_request(body(user("x"), tool_choice=choice)).tool_choice == expected


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [({"type": "text"}, "text"), ({"type": "json_object"}, "json_object"), ({"type": "odd"}, "text")],
)
def test_response_format_kinds(fmt: dict[str, Any], kind: str) -> None:
    rf = oc.parse_request(body(user("x"), response_format=fmt)).response_format
    assert rf is not None
    assert rf.kind == kind


def test_generation_parameters_and_passthrough_extras() -> None:
    original = body(
        user("x"),
        max_tokens=100,
        max_completion_tokens=200,
        temperature=0.2,
        top_p=0.9,
        stop="END",
        seed=7,
        n=2,
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        reasoning_effort="high",
        user="u-1",
        metadata={"k": "v"},
        prompt_cache_key="ck",
        store=False,
        logprobs=True,
        top_logprobs=3,
        service_tier="flex",
        stream_options={"include_usage": False, "include_obfuscation": False},
    )
    snapshot = copy.deepcopy(original)
    req = oc.parse_request(original)
    assert original == snapshot, "the caller's body is never mutated"
    assert req.max_tokens == 200  # max_completion_tokens wins
    assert (req.temperature, req.top_p, req.stop, req.seed, req.n) == (0.2, 0.9, ["END"], 7, 2)
    assert (req.frequency_penalty, req.presence_penalty) == (0.5, -0.5)
    assert req.reasoning == ReasoningConfig(effort="high")
    assert (req.user, req.metadata, req.cache_key, req.store) == ("u-1", {"k": "v"}, "ck", False)
    assert req.include_usage is False
    assert req.extras == {
        "logprobs": True,
        "top_logprobs": 3,
        "service_tier": "flex",
        "stream_options": {"include_obfuscation": False},
    }


def test_safety_identifier_is_the_user_when_user_is_absent() -> None:
    assert oc.parse_request(body(user("x"), safety_identifier="sid")).user == "sid"
    req = oc.parse_request(body(user("x"), user="u", safety_identifier="sid"))
    assert req.user == "u"
    assert req.extras == {"safety_identifier": "sid"}


def test_reasoning_effort_none_means_explicitly_off() -> None:
    assert oc.parse_request(body(user("x"), reasoning_effort="none")).reasoning == ReasoningConfig(
        effort="none", enabled=False
    )


# ----------------------------------------------------------------------------------------------------------
# request: render (OC upstream)
# ----------------------------------------------------------------------------------------------------------

_request_adapter = pydantic.TypeAdapter(CompletionCreateParamsStreaming)


def assert_valid_openai_request(payload: dict[str, Any]) -> None:
    """Check the body against the SDK's own request TypedDicts (extensions stripped first)."""
    clean = copy.deepcopy(payload)
    for m in clean["messages"]:
        m.pop("reasoning_content", None)
        for tc in m.get("tool_calls") or []:
            tc.pop("extra_content", None)
    clean["stream"] = True
    _request_adapter.validate_python(clean)


def test_case_2_system_blocks_become_one_system_message_without_cache_control() -> None:
    req = ChatRequest(
        model="claude",
        system=[TextPart("a"), TextPart("b"), TextPart("c", cache_control={"type": "ephemeral"})],
        messages=[Message("user", [TextPart("hi", cache_control={"type": "ephemeral"})])],
        source_format="anthropic",
    )
    out = oc.render_request(req, make_ctx(client_format="anthropic"))
    assert out["model"] == "gpt-up"
    assert out["messages"] == [
        {"role": "system", "content": "a\n\nb\n\nc"},
        {"role": "user", "content": "hi"},
    ]
    assert b"cache_control" not in dumps(out)
    assert_valid_openai_request(out)


def test_system_as_user_provider_gets_system_text_as_user_messages() -> None:
    req = ChatRequest(
        model="m",
        system=[TextPart("rules")],
        messages=[Message("user", [TextPart("hi")]), Message("system", [TextPart("reminder")])],
    )
    out = oc.render_request(req, make_ctx(caps=TargetCaps(system_as_user=True)))
    assert [m["role"] for m in out["messages"]] == ["user", "user", "user"]
    assert out["messages"][0]["content"] == "rules"
    assert out["messages"][2]["content"] == "reminder"


def test_mid_conversation_system_message_stays_in_place() -> None:
    req = oc.parse_request(body(user("a"), {"role": "system", "content": "b"}, user("c")))
    out = oc.render_request(req, make_ctx())
    assert [(m["role"], m["content"]) for m in out["messages"]] == [
        ("user", "a"),
        ("system", "b"),
        ("user", "c"),
    ]


def test_media_parts_render_as_openai_parts() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message(
                "user",
                [
                    TextPart("see"),
                    ImagePart(media_type="image/jpeg", data="/9j/4AAQ"),
                    ImagePart(url="https://x/y.png", detail="low"),
                    FilePart(media_type="application/pdf", data="JVBERi0=", filename="spec.pdf"),
                    FilePart(media_type="application/pdf", data="JVBERi0="),
                    AudioPart(data="UklGRg==", format="wav"),
                    FilePart(text="plain doc", title="Notes"),
                ],
            )
        ],
        source_format="anthropic",
    )
    content = oc.render_request(req, make_ctx())["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "see"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "spec.pdf"},
        },
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "document.pdf"},
        },
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "text", "text": "Notes\n\nplain doc"},
    ]


def test_case_22_23_tool_history_renders_calls_then_tool_messages_then_user_text() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message("user", [TextPart("go")]),
            Message(
                "assistant",
                [
                    TextPart("calling"),
                    ToolCallPart("toolu_A", "lookup", '{"q":1}'),
                    ToolCallPart("toolu_B", "lookup", '{"q":2}'),
                ],
            ),
            Message(
                "tool",
                [
                    ToolResultPart("toolu_A", [TextPart("one")]),
                    ToolResultPart("toolu_B", [TextPart("boom")], is_error=True),
                ],
            ),
            Message("user", [TextPart("and now?")]),
        ],
        source_format="anthropic",
    )
    msgs = oc.render_request(req, make_ctx(client_format="anthropic"))["messages"]
    assert msgs[1] == {
        "role": "assistant",
        "content": "calling",
        "tool_calls": [
            {"id": "toolu_A", "type": "function", "function": {"name": "lookup", "arguments": '{"q":1}'}},
            {"id": "toolu_B", "type": "function", "function": {"name": "lookup", "arguments": '{"q":2}'}},
        ],
    }
    assert msgs[2] == {"role": "tool", "tool_call_id": "toolu_A", "content": "one"}
    assert msgs[3] == {"role": "tool", "tool_call_id": "toolu_B", "content": "Error: boom"}  # case 28: noted
    assert msgs[4] == {"role": "user", "content": "and now?"}


def test_case_30_tool_result_images_go_to_a_user_message_after_the_tool_messages() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message("user", [TextPart("screenshot both")]),
            Message("assistant", [ToolCallPart("c1", "shot", "{}"), ToolCallPart("c2", "shot", "{}")]),
            Message(
                "tool",
                [
                    ToolResultPart("c1", [TextPart("here"), ImagePart(media_type="image/png", data="AAAA")]),
                    ToolResultPart("c2", [TextPart("also")]),
                ],
            ),
        ],
        source_format="openai-responses",
    )
    msgs = oc.render_request(req, make_ctx(client_format="openai-responses"))["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "tool", "user"]
    assert msgs[2]["content"] == "here"
    assert isinstance(msgs[3]["content"], str)
    assert msgs[4]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert "c1" in msgs[4]["content"][0]["text"]
    assert_valid_openai_request(oc.render_request(req, make_ctx()))


def test_assistant_thinking_is_dropped_for_ordinary_openai_upstreams() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message("user", [TextPart("q")]),
            Message("assistant", [ThinkingPart("hmm", signature="sig", origin="anthropic"), TextPart("a")]),
            Message("assistant", [ThinkingPart("only thinking")]),
        ],
        source_format="anthropic",
    )
    msgs = oc.render_request(req, make_ctx())["messages"]
    assert msgs == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


def test_case_53_deepseek_gets_reasoning_content_back_on_tool_call_turns() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message("user", [TextPart("q")]),
            Message(
                "assistant",
                [ThinkingPart("I should call it", origin="deepseek"), ToolCallPart("call_1", "f", "{}")],
            ),
            Message("tool", [ToolResultPart("call_1", [TextPart("r")])]),
            Message("assistant", [ToolCallPart("call_2", "f", "{}")]),
            Message("tool", [ToolResultPart("call_2", [TextPart("r2")])]),
        ],
        source_format="anthropic",
    )
    ctx = make_ctx(provider="deepseek", caps=TargetCaps(reasoning_content_replay=True))
    msgs = oc.render_request(req, ctx)["messages"]
    assert msgs[1]["reasoning_content"] == "I should call it"
    assert msgs[3]["reasoning_content"] == ""  # required even when the history has none


def test_case_16_72_tool_names_sanitized_and_recorded_schema_meta_stripped() -> None:
    long_name = "mcp__" + "very_long_server_name__" * 3 + "tool"
    req = ChatRequest(
        model="m",
        messages=[
            Message("user", [TextPart("q")]),
            Message("assistant", [ToolCallPart("c1", "files.read", "{}")]),
            Message("tool", [ToolResultPart("c1", [TextPart("ok")])]),
        ],
        tools=[
            ToolSpec(
                name="files.read",
                parameters={
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {},
                },
                cache_control={"type": "ephemeral"},
            ),
            ToolSpec(name=long_name, description="d"),
        ],
        tool_choice=ToolChoice(mode="tool", name="files.read"),
        source_format="anthropic",
    )
    ctx = make_ctx(client_format="anthropic")
    out = oc.render_request(req, ctx)
    names = [t["function"]["name"] for t in out["tools"]]
    assert names[0] == "files_read"
    assert len(names[1]) <= 64
    assert out["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert out["messages"][1]["tool_calls"][0]["function"]["name"] == "files_read"
    assert out["tool_choice"] == {"type": "function", "function": {"name": "files_read"}}
    assert ctx.tool_names == {"files_read": "files.read", names[1]: long_name}
    assert b"cache_control" not in dumps(out)
    assert b"$schema" not in dumps(out)


def test_case_72_long_json_user_id_is_hashed_to_64_chars() -> None:
    claude_code_user = '{"device_id":"' + "d" * 64 + '","account_uuid":"acc","session_id":"sess"}'
    req = ChatRequest(model="m", messages=[Message("user", [TextPart("q")])], user=claude_code_user)
    out = oc.render_request(req, make_ctx())
    assert len(out["user"]) == 64
    assert out["user"] == oc.render_request(req, make_ctx())["user"], "stable across requests"
    short = ChatRequest(model="m", messages=[Message("user", [TextPart("q")])], user="alice")
    assert oc.render_request(short, make_ctx())["user"] == "alice"


def test_streaming_upstream_request_always_asks_for_usage() -> None:
    req = oc.parse_request(body(user("q"), stream=True))
    assert req.include_usage is False
    out = oc.render_request(req, make_ctx())
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}
    assert "stream" not in oc.render_request(oc.parse_request(body(user("q"))), make_ctx())


def test_stream_options_extras_are_merged_for_same_format_clients() -> None:
    req = oc.parse_request(body(user("q"), stream=True, stream_options={"include_obfuscation": False}))
    out = oc.render_request(req, make_ctx())
    assert out["stream_options"] == {"include_obfuscation": False, "include_usage": True}


@pytest.mark.parametrize(
    ("field", "max_output", "expected"),
    [
        ("max_tokens", None, ("max_tokens", 5000)),
        ("max_completion_tokens", 4096, ("max_completion_tokens", 4096)),
    ],
)
def test_max_tokens_field_and_clamp_follow_the_catalog(
    field: str, max_output: int | None, expected: tuple[str, int]
) -> None:
    req = ChatRequest(model="m", messages=[Message("user", [TextPart("q")])], max_tokens=5000)
    out = oc.render_request(
        req, make_ctx(caps=TargetCaps(max_tokens_field=field, max_output_tokens=max_output))
    )
    assert (expected[0], out[expected[0]]) == expected
    other = "max_tokens" if expected[0] == "max_completion_tokens" else "max_completion_tokens"
    assert other not in out


@pytest.mark.parametrize(
    ("reasoning", "effort"),
    [
        (ReasoningConfig(budget_tokens=1024), "low"),
        (ReasoningConfig(budget_tokens=8192), "medium"),
        (ReasoningConfig(budget_tokens=10000), "high"),
        (ReasoningConfig(enabled=True, budget_tokens=500), "low"),
        (ReasoningConfig(effort="max"), "max"),
        (ReasoningConfig(effort="xhigh"), "xhigh"),
        (ReasoningConfig(effort="none", enabled=False), "none"),
        (ReasoningConfig(effort="turbo"), "medium"),
        (ReasoningConfig(enabled=False), None),
        (ReasoningConfig(adaptive=True), None),
        (ReasoningConfig(budget_tokens=-1), None),
        (None, None),
    ],
)
def test_reasoning_maps_to_reasoning_effort(reasoning: ReasoningConfig | None, effort: str | None) -> None:
    req = ChatRequest(model="m", messages=[Message("user", [TextPart("q")])], reasoning=reasoning)
    assert oc.render_request(req, make_ctx()).get("reasoning_effort") == effort


def test_no_reasoning_effort_for_models_without_reasoning() -> None:
    req = ChatRequest(
        model="m", messages=[Message("user", [TextPart("q")])], reasoning=ReasoningConfig(effort="high")
    )
    assert "reasoning_effort" not in oc.render_request(req, make_ctx(caps=TargetCaps(thinking_style="none")))


def test_extras_only_reach_an_upstream_of_the_clients_format() -> None:
    extras = {"logprobs": True, "service_tier": "flex"}
    same = ChatRequest(
        model="m", messages=[Message("user", [TextPart("q")])], extras=extras, source_format="openai-chat"
    )
    other = ChatRequest(
        model="m", messages=[Message("user", [TextPart("q")])], extras=extras, source_format="anthropic"
    )
    assert oc.render_request(same, make_ctx())["service_tier"] == "flex"
    assert "service_tier" not in oc.render_request(other, make_ctx())
    assert "logprobs" not in oc.render_request(other, make_ctx())


def test_tool_choice_and_parallel_flag_need_tools() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("q")])],
        tool_choice=ToolChoice(mode="required"),
        parallel_tool_calls=False,
    )
    out = oc.render_request(req, make_ctx())
    assert "tool_choice" not in out
    assert "parallel_tool_calls" not in out
    req.tools = [ToolSpec(name="f")]
    out = oc.render_request(req, make_ctx())
    assert (out["tool_choice"], out["parallel_tool_calls"]) == ("required", False)


def test_allowed_tools_become_a_filtered_tool_list() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("q")])],
        tools=[ToolSpec(name="a"), ToolSpec(name="b"), ToolSpec(name="c")],
        tool_choice=ToolChoice(mode="required", allowed=["a", "c"]),
    )
    out = oc.render_request(req, make_ctx())
    assert [t["function"]["name"] for t in out["tools"]] == ["a", "c"]
    assert out["tool_choice"] == "required"


def test_response_format_json_schema_renders_nested_with_a_name() -> None:
    from omniroute_providers.ir import ResponseFormat

    req = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("q")])],
        response_format=ResponseFormat("json_schema", schema={"$schema": "x", "type": "object"}, strict=True),
        source_format="openai-chat",
    )
    out = oc.render_request(req, make_ctx())
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": {"type": "object"}, "strict": True},
    }


def test_case_65_anthropic_output_format_becomes_a_strict_named_response_format() -> None:
    from omniroute_providers.ir import ResponseFormat

    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
    }
    req = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("q")])],
        response_format=ResponseFormat("json_schema", schema=schema),
        tools=[ToolSpec(name="f", parameters=schema, strict=True)],
        source_format="anthropic",
    )
    out = oc.render_request(req, make_ctx(client_format="anthropic"))
    spec = out["response_format"]["json_schema"]
    assert spec["name"]
    assert spec["strict"] is True
    assert spec["schema"]["additionalProperties"] is False
    assert spec["schema"]["required"] == ["a", "b"]
    assert out["tools"][0]["function"]["parameters"]["required"] == ["a", "b"]
    assert schema["required"] == ["a"], "the IR's schema is not mutated"
    assert_valid_openai_request(out)


def test_custom_tools_travel_as_function_tools_and_come_back_custom() -> None:
    grammar = {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}
    req = ChatRequest(
        model="m",
        messages=[
            Message("user", [TextPart("patch it")]),
            Message("assistant", [ToolCallPart("c0", "apply_patch", "*** Begin Patch", kind="custom")]),
            Message("tool", [ToolResultPart("c0", [TextPart("done")], kind="custom")]),
        ],
        tools=[ToolSpec(name="apply_patch", kind="custom", grammar=grammar)],
        source_format="openai-responses",
    )
    ctx = make_ctx(client_format="openai-responses", request=req)
    out = oc.render_request(req, ctx)
    fn = out["tools"][0]["function"]
    assert out["tools"][0]["type"] == "function"
    assert fn["parameters"]["properties"]["input"]["type"] == "string"
    assert "start: /.+/" in fn["description"]
    assert out["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"input":"*** Begin Patch"}'
    assert_valid_openai_request(out)
    reply = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "apply_patch", "arguments": '{"input":"*** End Patch\\n"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    resp = oc.parse_response(reply, ctx)
    assert resp.parts == [ToolCallPart("call_9", "apply_patch", "*** End Patch\n", kind="custom")]
    events = parse_stream(
        ctx,
        [
            tool_chunk(
                {"index": 0, "id": "call_9", "function": {"name": "apply_patch", "arguments": '{"inp'}}
            ),
            tool_chunk({"index": 0, "function": {"arguments": 'ut":"x\\ny"}'}}),
            chunk({}, "tool_calls"),
        ],
    )
    assert ToolCallStart(0, "call_9", "apply_patch", "custom") in events
    assert tool_args(events) == {0: "x\ny"}


def test_gemini_signature_replayed_only_to_the_provider_that_minted_it() -> None:
    call = ToolCallPart("c1", "f", "{}", signature="gsig", origin="gemini")
    req = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("q")]), Message("assistant", [call])],
        source_format="anthropic",
    )
    to_gemini = oc.render_request(req, make_ctx(provider="gemini"))
    assert to_gemini["messages"][1]["tool_calls"][0]["extra_content"] == {
        "google": {"thought_signature": "gsig"}
    }
    to_openai = oc.render_request(req, make_ctx(provider="openai"))
    assert "extra_content" not in to_openai["messages"][1]["tool_calls"][0]
    cache = SignatureCache()
    cache.put("c2", "cached-sig", "gemini")
    req2 = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("q")]), Message("assistant", [ToolCallPart("c2", "f", "{}")])],
    )
    out = oc.render_request(req2, make_ctx(provider="gemini", signatures=cache))
    assert out["messages"][1]["tool_calls"][0]["extra_content"]["google"]["thought_signature"] == "cached-sig"


def test_long_call_ids_are_shortened_identically_in_calls_and_results() -> None:
    long_id = "toolu_" + "x" * 60
    req = ChatRequest(
        model="m",
        messages=[
            Message("user", [TextPart("q")]),
            Message("assistant", [ToolCallPart(long_id, "f", "")]),
            Message("tool", [ToolResultPart(long_id, [TextPart("r")])]),
        ],
    )
    msgs = oc.render_request(req, make_ctx())["messages"]
    call_id = msgs[1]["tool_calls"][0]["id"]
    assert len(call_id) <= 40
    assert msgs[2]["tool_call_id"] == call_id
    assert msgs[1]["tool_calls"][0]["function"]["arguments"] == "{}"  # an empty string is not JSON


# ----------------------------------------------------------------------------------------------------------
# response: parse (OC upstream)
# ----------------------------------------------------------------------------------------------------------


def completion(
    message: dict[str, Any], finish: str | None = "stop", usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-up-2025",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def test_response_content_refusal_and_reasoning_are_parsed() -> None:
    ctx = make_ctx(provider="deepseek")
    resp = oc.parse_response(
        completion({"content": "Hi", "refusal": "no", "reasoning_content": "thinking..."}), ctx
    )
    assert resp.parts == [ThinkingPart("thinking...", origin="deepseek"), TextPart("Hi"), RefusalPart("no")]
    assert (resp.id, resp.model, resp.created) == ("chatcmpl-up", "gpt-up-2025", 1)
    openrouter = oc.parse_response(completion({"content": "x", "reasoning": "r"}), ctx)
    assert openrouter.parts[0] == ThinkingPart("r", origin="deepseek")


def test_think_tags_in_content_become_reasoning_when_the_model_writes_them() -> None:
    msg = {"content": "<think>\nchain\n</think>\n\nfinal"}
    with_tags = oc.parse_response(
        completion(msg), make_ctx(provider="together", caps=TargetCaps(think_tags=True))
    )
    assert with_tags.parts == [ThinkingPart("chain", origin="together"), TextPart("final")]
    without = oc.parse_response(completion(msg), make_ctx())
    assert without.parts == [TextPart(msg["content"])]


def test_response_tool_calls_come_back_under_the_clients_names() -> None:
    ctx = make_ctx(tool_names={"files_read": "files.read"})
    resp = oc.parse_response(
        completion(
            {
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "files_read", "arguments": '{"p":"/"}'},
                    }
                ],
            },
            "tool_calls",
        ),
        ctx,
    )
    assert resp.parts == [ToolCallPart("call_1", "files.read", '{"p":"/"}')]
    assert resp.stop_reason == "tool_calls"


@pytest.mark.parametrize(
    ("finish", "has_tools", "expected"),
    [
        ("stop", False, "stop"),
        ("length", False, "length"),
        ("tool_calls", True, "tool_calls"),
        ("function_call", True, "tool_calls"),
        ("content_filter", False, "content_filter"),
        ("stop", True, "tool_calls"),  # case 61: named tool_choice answers "stop" with tool calls
        ("length", True, "length"),  # case 43: truncation stays visible
        (None, False, "stop"),
        ("weird_new_reason", False, "stop"),
    ],
)
def test_finish_reasons_from_an_openai_upstream(finish: str | None, has_tools: bool, expected: str) -> None:
    msg: dict[str, Any] = {"content": "x"}
    if has_tools:
        msg["tool_calls"] = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    assert oc.parse_response(completion(msg, finish), make_ctx()).stop_reason == expected


def test_case_55_usage_from_an_openai_upstream_follows_the_ir_definition() -> None:
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 50,
        "total_tokens": 1050,
        "prompt_tokens_details": {"cached_tokens": 800, "cache_write_tokens": 30},
        "completion_tokens_details": {"reasoning_tokens": 20},
    }
    resp = oc.parse_response(completion({"content": "x"}, usage=usage), make_ctx())
    assert resp.usage == Usage(
        input_tokens=1000, output_tokens=50, cached_tokens=800, cache_write_tokens=30, reasoning_tokens=20
    )
    assert oc.response_usage(completion({"content": "x"}, usage=usage)) == resp.usage


def test_deepseek_cache_hits_and_reasoning_outside_completion_are_counted() -> None:
    deepseek = {
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "total_tokens": 110,
        "prompt_cache_hit_tokens": 64,
    }
    assert oc.response_usage({"usage": deepseek}) == Usage(
        input_tokens=100, output_tokens=10, cached_tokens=64
    )
    exclusive = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 45,
        "completion_tokens_details": {"reasoning_tokens": 30},
    }
    assert oc.response_usage({"usage": exclusive}) == Usage(
        input_tokens=10, output_tokens=35, reasoning_tokens=30
    )
    assert oc.response_usage({"usage": None}) is None


def test_error_body_with_status_200_raises_the_mapped_error() -> None:
    with pytest.raises(RateLimitError):
        oc.parse_response({"error": {"message": "slow down", "type": "rate_limit_exceeded"}}, make_ctx())
    with pytest.raises(UpstreamError):
        oc.parse_response({"choices": []}, make_ctx())


def test_gemini_compat_signature_is_kept_with_its_origin_and_cached() -> None:
    cache = SignatureCache()
    ctx = make_ctx(provider="gemini", signatures=cache)
    tc = {
        "id": "fc_1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": "gsig"}},
    }
    resp = oc.parse_response(completion({"content": None, "tool_calls": [tc]}, "tool_calls"), ctx)
    assert resp.parts == [ToolCallPart("fc_1", "f", "{}", signature="gsig", origin="gemini")]
    assert cache.get("fc_1") == ("gsig", "gemini")


# ----------------------------------------------------------------------------------------------------------
# response: render (OC client)
# ----------------------------------------------------------------------------------------------------------


def test_rendered_response_validates_with_the_openai_sdk() -> None:
    resp = ChatResponse(
        id="msg_1",
        model="claude-x",
        parts=[TextPart("Hello "), TextPart("world"), ToolCallPart("toolu_1", "f", '{"a":1}')],
        stop_reason="tool_calls",
        usage=Usage(input_tokens=10, output_tokens=5),
    )
    out = oc.render_response(resp, make_ctx(upstream_format="anthropic"))
    cc = ChatCompletion.model_validate(out)
    assert cc.id == "chatcmpl-abc123"
    assert cc.object == "chat.completion"
    assert cc.model == "my-model"
    choice = cc.choices[0]
    assert choice.message.content == "Hello world"
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert (call.id, call.function.name, call.function.arguments) == ("toolu_1", "f", '{"a":1}')
    assert set(out["choices"][0]["message"]) <= MESSAGE_KEYS
    assert set(out) == {"id", "object", "created", "model", "choices", "usage"}


def test_only_tool_calls_means_null_content() -> None:
    resp = ChatResponse(id="r", model="m", parts=[ToolCallPart("c", "f", "{}")], stop_reason="stop")
    out = oc.render_response(resp, make_ctx())
    assert out["choices"][0]["message"]["content"] is None
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in out


def test_reasoning_goes_to_reasoning_content_and_signatures_to_thinking_blocks() -> None:
    resp = ChatResponse(
        id="r",
        model="m",
        parts=[
            ThinkingPart("step", signature="EqSig", origin="anthropic"),
            ThinkingPart(signature="redact==", redacted=True, origin="anthropic"),
            TextPart("answer"),
        ],
    )
    cross = oc.render_response(resp, make_ctx(upstream_format="anthropic", provider="anthropic"))
    message = cross["choices"][0]["message"]
    assert message["reasoning_content"] == "step"
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "step", "signature": tag_signature("EqSig", "anthropic")},
        {"type": "redacted_thinking", "data": tag_signature("redact==", "anthropic")},
    ]
    ChatCompletion.model_validate(cross)
    same = oc.render_response(resp, make_ctx())
    assert same["choices"][0]["message"]["thinking_blocks"][0]["signature"] == "EqSig"
    # and the client's next request hands the tagged token back to the IR with its origin
    again = oc.parse_request(body(user("q"), {"role": "assistant", **message}, user("more")))
    assert again.messages[1].parts[0] == ThinkingPart("step", signature="EqSig", origin="anthropic")


def test_unsigned_reasoning_has_no_thinking_blocks() -> None:
    resp = ChatResponse(id="r", model="m", parts=[ThinkingPart("r1", origin="deepseek"), TextPart("a")])
    message = oc.render_response(resp, make_ctx(upstream_format="anthropic"))["choices"][0]["message"]
    assert message["reasoning_content"] == "r1"
    assert "thinking_blocks" not in message


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("stop_sequence", "stop"),  # case 62
        ("content_filter", "content_filter"),  # cases 60, 63
        ("context_window", "length"),
        ("pause", "stop"),
        ("error", "stop"),
        ("tool_calls", "stop"),  # no tool call was emitted: claiming tool_calls would confuse the client
    ],
)
def test_cases_59_63_finish_reason_for_an_openai_client(stop: Any, finish: str) -> None:
    resp = ChatResponse(id="r", model="m", parts=[TextPart("x")], stop_reason=stop)
    out = oc.render_response(resp, make_ctx())
    assert out["choices"][0]["finish_reason"] == finish
    ChatCompletion.model_validate(out)


def test_case_63_refusal_text_and_content_filter() -> None:
    resp = ChatResponse(
        id="r", model="m", parts=[RefusalPart("I can't help with that.")], stop_reason="content_filter"
    )
    out = oc.render_response(resp, make_ctx(upstream_format="anthropic"))
    message = ChatCompletion.model_validate(out).choices[0].message
    assert message.refusal == "I can't help with that."
    assert message.content is None
    assert out["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # case 54: AM {input 100, cache_read 900, cache_creation 50, output 30}, converted by the AM parser
        (
            Usage(input_tokens=1050, output_tokens=30, cached_tokens=900, cache_write_tokens=50),
            {
                "prompt_tokens": 1050,
                "completion_tokens": 30,
                "total_tokens": 1080,
                "cached": 900,
                "reasoning": 0,
            },
        ),
        # case 56: GG {prompt 1000, cached 600, candidates 40, thoughts 60}, converted by the GG parser
        (
            Usage(input_tokens=1000, output_tokens=100, cached_tokens=600, reasoning_tokens=60),
            {
                "prompt_tokens": 1000,
                "completion_tokens": 100,
                "total_tokens": 1100,
                "cached": 600,
                "reasoning": 60,
            },
        ),
    ],
)
def test_cases_54_56_usage_rendered_for_an_openai_client(usage: Usage, expected: dict[str, int]) -> None:
    resp = ChatResponse(id="r", model="m", parts=[TextPart("x")], usage=usage)
    cc = ChatCompletion.model_validate(oc.render_response(resp, make_ctx()))
    assert cc.usage is not None
    assert cc.usage.prompt_tokens == expected["prompt_tokens"]
    assert cc.usage.completion_tokens == expected["completion_tokens"]
    assert cc.usage.total_tokens == expected["total_tokens"]
    assert cc.usage.prompt_tokens_details is not None
    assert cc.usage.prompt_tokens_details.cached_tokens == expected["cached"]
    assert cc.usage.completion_tokens_details is not None
    assert cc.usage.completion_tokens_details.reasoning_tokens == expected["reasoning"]


def test_openai_annotations_survive_an_openai_to_openai_round_trip() -> None:
    note = {
        "type": "url_citation",
        "url_citation": {"start_index": 0, "end_index": 2, "title": "t", "url": "https://u"},
    }
    resp = oc.parse_response(completion({"content": "hi", "annotations": [note]}), make_ctx())
    out = oc.render_response(resp, make_ctx())
    assert out["choices"][0]["message"]["annotations"] == [note]
    assert (
        "annotations"
        not in oc.render_response(resp, make_ctx(upstream_format="anthropic"))["choices"][0]["message"]
    )


# ----------------------------------------------------------------------------------------------------------
# stream: parse (OC upstream)
# ----------------------------------------------------------------------------------------------------------


def test_text_stream_with_usage_chunk() -> None:
    events = parse_stream(
        make_ctx(),
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            chunk(None, usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}),
        ],
    )
    assert events == [
        StreamStart(id="chatcmpl-up", model="gpt-up"),
        TextDelta("Hel"),
        TextDelta("lo"),
        Finish("stop"),
        UsageUpdate(Usage(input_tokens=5, output_tokens=2)),
    ]


def test_content_and_finish_reason_in_one_chunk_and_usage_on_it() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    events = parse_stream(
        make_ctx(), [chunk({"role": "assistant", "content": "All at once"}, "length", usage=usage)]
    )
    assert events[1:] == [TextDelta("All at once"), Finish("length"), UsageUpdate(Usage(3, 1))]
    check_grammar(events)


def test_case_37_belated_tool_start_when_id_and_name_arrive_apart() -> None:
    events = parse_stream(
        make_ctx(),
        [
            chunk({"role": "assistant", "content": None}),
            tool_chunk({"index": 0, "function": {"name": "search", "arguments": ""}}),
            tool_chunk({"index": 0, "function": {"arguments": '{"q": "say \\'}}),
            tool_chunk({"index": 0, "id": "call_abc", "type": "function"}),
            tool_chunk({"index": 0, "function": {"arguments": '"hi\\""}'}}),
            chunk({}, "tool_calls"),
        ],
    )
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert starts == [ToolCallStart(0, "call_abc", "search")]
    assert loads(tool_args(events)[0]) == {"q": 'say "hi"'}
    assert isinstance(events[-1], Finish)
    assert events[-1].stop_reason == "tool_calls"
    check_grammar(events)


def test_case_38_interleaved_parallel_calls_are_serialised() -> None:
    events = parse_stream(
        make_ctx(),
        [
            tool_chunk(
                {"index": 0, "id": "c0", "type": "function", "function": {"name": "a", "arguments": ""}}
            ),
            tool_chunk(
                {"index": 1, "id": "c1", "type": "function", "function": {"name": "b", "arguments": ""}}
            ),
            tool_chunk({"index": 0, "function": {"arguments": '{"x":'}}),
            tool_chunk({"index": 1, "function": {"arguments": '{"y":'}}),
            tool_chunk({"index": 0, "function": {"arguments": "1}"}}),
            tool_chunk({"index": 1, "function": {"arguments": "2}"}}),
            chunk({}, "tool_calls"),
        ],
    )
    check_grammar(events)
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.index, s.id, s.name) for s in starts] == [(0, "c0", "a"), (1, "c1", "b")]
    assert {i: loads(a) for i, a in tool_args(events).items()} == {0: {"x": 1}, 1: {"y": 2}}
    # the first call streamed live: its first fragment left before the second call's fragments arrived
    first_delta = next(i for i, e in enumerate(events) if isinstance(e, ToolCallDelta))
    assert events[first_delta] == ToolCallDelta(0, '{"x":')


def test_tool_calls_are_keyed_by_index_not_by_array_position() -> None:
    events = parse_stream(
        make_ctx(),
        [
            tool_chunk(
                {"index": 1, "id": "c1", "function": {"name": "b", "arguments": "{}"}},
                {"index": 0, "id": "c0", "function": {"name": "a", "arguments": ""}},
            ),
            tool_chunk({"index": 0, "function": {"arguments": "{}"}}),
            chunk({}, "tool_calls"),
        ],
    )
    check_grammar(events)
    assert {s.id: s.name for s in events if isinstance(s, ToolCallStart)} == {"c1": "b", "c0": "a"}
    assert tool_args(events) == {0: "{}", 1: "{}"}


def test_tool_call_without_id_gets_one_and_missing_index_continues_the_call() -> None:
    events = parse_stream(
        make_ctx(),
        [
            tool_chunk({"function": {"name": "f", "arguments": '{"a"'}}),
            tool_chunk({"function": {"arguments": ":1}"}}),
            chunk({}, "stop"),
        ],
    )
    check_grammar(events)
    start = next(e for e in events if isinstance(e, ToolCallStart))
    assert start.id.startswith("call_")
    assert tool_args(events) == {0: '{"a":1}'}
    assert isinstance(events[-1], Finish)
    assert events[-1].stop_reason == "tool_calls"


def test_calls_without_index_or_id_are_told_apart_by_their_names() -> None:
    events = parse_stream(
        make_ctx(),
        [
            tool_chunk(
                {"function": {"name": "a", "arguments": "{}"}}, {"function": {"name": "b", "arguments": "{}"}}
            ),
            chunk({}, "tool_calls"),
        ],
    )
    check_grammar(events)
    assert [e.name for e in events if isinstance(e, ToolCallStart)] == ["a", "b"]
    assert tool_args(events) == {0: "{}", 1: "{}"}


def test_case_53_deepseek_reasoning_then_tool_call() -> None:
    events = parse_stream(
        make_ctx(provider="deepseek"),
        [
            chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
            chunk({"reasoning_content": "Let me "}),
            chunk({"reasoning_content": "look."}),
            tool_chunk(
                {"index": 0, "id": "call_0", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ),
            chunk({"content": ""}, "tool_calls"),
        ],
    )
    check_grammar(events)
    assert events[1:3] == [ThinkingDelta("Let me "), ThinkingDelta("look.")]
    assert not any(isinstance(e, ThinkingSignature) for e in events)


def test_openrouter_reasoning_field_and_litellm_signatures() -> None:
    events = parse_stream(
        make_ctx(provider="litellm"),
        [
            chunk({"reasoning": "r1"}),
            chunk(
                {
                    "reasoning_content": "r2",
                    "thinking_blocks": [{"type": "thinking", "thinking": "r2", "signature": "S"}],
                }
            ),
            chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": "D"}]}),
            chunk({"content": "ok"}, "stop"),
        ],
    )
    assert events[1:] == [
        ThinkingDelta("r1"),
        ThinkingDelta("r2"),
        ThinkingSignature("S", "litellm"),
        RedactedThinking("D", "litellm"),
        TextDelta("ok"),
        Finish("stop"),
    ]


def test_text_that_arrives_during_a_tool_call_is_emitted_after_it() -> None:
    events = parse_stream(
        make_ctx(),
        [
            tool_chunk({"index": 0, "id": "c0", "function": {"name": "f", "arguments": "{"}}),
            chunk({"content": "\n\n"}),
            tool_chunk({"index": 0, "function": {"arguments": "}"}}),
            chunk({}, "tool_calls"),
        ],
    )
    check_grammar(events)
    assert events[-2] == TextDelta("\n\n")


def test_think_tags_split_across_chunks_become_reasoning() -> None:
    events = parse_stream(
        make_ctx(provider="vllm", caps=TargetCaps(think_tags=True)),
        [
            chunk({"content": "<th"}),
            chunk({"content": "ink>plan"}),
            chunk({"content": "</think>\n\nDo"}),
            chunk({"content": "ne"}, "stop"),
        ],
    )
    assert events[1:] == [ThinkingDelta("plan"), TextDelta("Do"), TextDelta("ne"), Finish("stop")]


def test_stream_start_once_and_done_without_finish_reason_still_finishes() -> None:
    events = parse_stream(make_ctx(), [chunk({"content": "a"}), chunk({"content": "b"})])
    assert sum(isinstance(e, StreamStart) for e in events) == 1
    assert events[-1] == Finish("stop")


def test_stream_cut_before_done_reports_no_finish() -> None:
    events = parse_stream(make_ctx(), [chunk({"content": "a"})], done=False)
    assert not any(isinstance(e, Finish) for e in events)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            {
                "message": "Rate limit reached. Please try again in 2s.",
                "type": "requests",
                "code": "rate_limit_exceeded",
            },
            RateLimitError,
        ),
        (
            {
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            },
            QuotaExhaustedError,
        ),
        ({"message": "The server had an error", "type": "server_error", "code": None}, UpstreamError),
        ({"message": "Overloaded", "type": "overloaded_error"}, ServiceUnavailableError),
        (
            {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"},
            ContextLengthError,
        ),
    ],
)
def test_in_band_stream_error_raises_the_mapped_gateway_error(
    error: dict[str, Any], kind: type[GatewayError]
) -> None:
    parser = oc.StreamParser(make_ctx())
    parser.feed(SSEEvent(dumps(chunk({"content": "partial"}))))
    with pytest.raises(kind) as exc:
        parser.feed(SSEEvent(dumps({"error": error})))
    if kind is RateLimitError:
        assert exc.value.retry_after == 2.0


def test_non_json_stream_event_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        oc.StreamParser(make_ctx()).feed(SSEEvent(b"{not json"))


# -- hypothesis: a random OpenAI stream, split anywhere, parses to the same events --------------------------


@st.composite
def upstream_streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[int, str], str]:
    """A plausible upstream stream: text/reasoning, then tool calls (maybe interleaved), finish, usage."""
    chunks: list[dict[str, Any]] = [chunk({"role": "assistant", "content": ""})]
    text = ""
    for piece in draw(st.lists(st.text(max_size=8), max_size=5)):
        if draw(st.booleans()):
            chunks.append(chunk({"reasoning_content": piece}))
        else:
            chunks.append(chunk({"content": piece}))
            text += piece
    n_calls = draw(st.integers(0, 3))
    pending: list[tuple[int, dict[str, Any]]] = []
    expected: dict[int, str] = {}
    for index in range(n_calls):
        args = dumps_obj(draw(st.dictionaries(st.text(max_size=4), st.text(max_size=6), max_size=3)))
        expected[index] = args
        cuts = sorted(draw(st.lists(st.integers(0, len(args)), max_size=4)))
        frags = [args[a:b] for a, b in zip([0, *cuts], [*cuts, len(args)], strict=True)]
        pending.append(
            (
                index,
                {
                    "index": index,
                    "id": f"call_{index}",
                    "type": "function",
                    "function": {"name": f"t{index}", "arguments": ""},
                },
            )
        )
        pending.extend((index, {"index": index, "function": {"arguments": f}}) for f in frags)
    if draw(st.booleans()):  # interleave calls (stable per call, so each call's fragments stay in order)
        order = draw(st.permutations(range(len(pending))))
        by_call: dict[int, list[dict[str, Any]]] = {}
        for i, tc in pending:
            by_call.setdefault(i, []).append(tc)
        picks = [pending[j][0] for j in order]
        pending = [(i, by_call[i].pop(0)) for i in picks]
    chunks.extend(tool_chunk(tc) for _, tc in pending)
    chunks.append(chunk({}, "tool_calls" if n_calls else "stop"))
    chunks.append(chunk(None, usage={"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}))
    return chunks, expected, text


def dumps_obj(value: Any) -> str:
    return dumps(value).decode()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(upstream_streams(), st.data())
def test_stream_parsing_is_invariant_to_how_the_sse_bytes_are_split(
    stream: tuple[list[dict[str, Any]], dict[int, str], str], data: st.DataObject
) -> None:
    chunks, expected_args, expected_text = stream
    raw = b"".join(b"data: " + dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]

    def run(parts: list[bytes]) -> list[StreamEvent]:
        decoder, parser = SSEDecoder(), oc.StreamParser(make_ctx())
        out: list[StreamEvent] = []
        for part in parts:
            for ev in decoder.feed(part):
                out.extend(parser.feed(ev))
        for ev in decoder.close():
            out.extend(parser.feed(ev))
        return out + parser.close()

    events = run(pieces)
    assert events == run([raw])
    check_grammar(events)
    ids = {e.index: e.id for e in events if isinstance(e, ToolCallStart)}
    assert sorted(ids.values()) == [f"call_{i}" for i in sorted(expected_args)]
    # IR indices follow the order calls started in, which may differ from the upstream's index order
    assert {ids[i]: a for i, a in tool_args(events).items()} == {
        f"call_{i}": a for i, a in expected_args.items() if a
    }
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == expected_text
    assert isinstance(events[-2], Finish)
    assert events[-1] == UsageUpdate(Usage(input_tokens=9, output_tokens=4))


# ----------------------------------------------------------------------------------------------------------
# stream: render (OC client)
# ----------------------------------------------------------------------------------------------------------


def test_case_36_tool_call_deltas_for_an_openai_client() -> None:
    fragments = ['{"path": "a', "\\", '"b.txt\\"', '", "n": 1', "}"]
    events: list[StreamEvent] = [
        StreamStart("msg_1", "claude"),
        ToolCallStart(0, "toolu_1", "write"),
        *(ToolCallDelta(0, f) for f in fragments),
        ToolCallEnd(0),
        Finish("tool_calls"),
        UsageUpdate(Usage(input_tokens=10, output_tokens=3)),
    ]
    out = frames(render_stream(make_ctx(upstream_format="anthropic"), events))
    assert out[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(f) for f in out[:-1]]
    assert {(c.id, c.created, c.model) for c in chunks} == {("chatcmpl-abc123", 1_700_000_000, "my-model")}
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert out[1]["choices"][0]["delta"] == {
        "tool_calls": [
            {"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "write", "arguments": ""}}
        ]
    }
    later = [f["choices"][0]["delta"]["tool_calls"][0] for f in out[2:7]]
    assert all(set(tc) == {"index", "function"} and set(tc["function"]) == {"arguments"} for tc in later)
    assert "".join(tc["function"]["arguments"] for tc in later) == "".join(fragments)
    assert out[7]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
    assert len(out) == 9, "no usage chunk: the client did not ask for it"
    assert all("usage" not in f for f in out[:-1])


def test_openai_sdk_accumulates_the_rendered_stream() -> None:
    events: list[StreamEvent] = [
        StreamStart("x", "m"),
        ThinkingDelta("hmm"),
        TextDelta("Hi "),
        TextDelta("there"),
        ToolCallStart(0, "c0", "f"),
        ToolCallDelta(0, '{"a":'),
        ToolCallDelta(0, "1}"),
        ToolCallEnd(0),
        ToolCallStart(1, "c1", "g"),
        ToolCallDelta(1, "{}"),
        ToolCallEnd(1),
        Finish("stop"),
        UsageUpdate(Usage(input_tokens=7, output_tokens=9, reasoning_tokens=2)),
    ]
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for f in frames(render_stream(make_ctx(include_usage=True), events))[:-1]:
        state.handle_chunk(ChatCompletionChunk.model_validate(f))
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Hi there"
    assert message.tool_calls is not None
    assert [(t.id, t.function.name, t.function.arguments) for t in message.tool_calls] == [
        ("c0", "f", '{"a":1}'),
        ("c1", "g", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens, final.usage.total_tokens) == (7, 9, 16)


def test_case_44_thinking_then_signature_then_text() -> None:
    events: list[StreamEvent] = [
        StreamStart("msg", "claude"),
        ThinkingDelta("Let me "),
        ThinkingDelta("think."),
        ThinkingSignature("EqSig", "anthropic"),
        TextDelta("Answer."),
        Finish("stop"),
    ]
    out = frames(render_stream(make_ctx(upstream_format="anthropic", provider="anthropic"), events))
    deltas = [f["choices"][0]["delta"] for f in out[1:-2]]
    assert deltas == [
        {"reasoning_content": "Let me "},
        {"reasoning_content": "think."},
        {
            "thinking_blocks": [
                {
                    "type": "thinking",
                    "thinking": "Let me think.",
                    "signature": tag_signature("EqSig", "anthropic"),
                }
            ]
        },
        {"content": "Answer."},
    ]
    assert not any("signature" in dumps_obj(d) for d in deltas[:2] + deltas[3:])
    for f in out[:-1]:
        ChatCompletionChunk.model_validate(f)


def test_case_57_usage_chunk_only_when_the_client_asked() -> None:
    events: list[StreamEvent] = [
        StreamStart("x", "m"),
        TextDelta("hi"),
        Finish("stop"),
        UsageUpdate(Usage(input_tokens=1050, output_tokens=30, cached_tokens=900)),
    ]
    with_usage = frames(render_stream(make_ctx(include_usage=True), events))
    assert with_usage[-1] == "[DONE]"
    usage_chunk = with_usage[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 1050
    assert usage_chunk["usage"]["total_tokens"] == 1080
    assert usage_chunk["usage"]["prompt_tokens_details"] == {"cached_tokens": 900}
    assert all(f["usage"] is None for f in with_usage[:-2]), "OpenAI puts usage: null on the other chunks"
    for f in with_usage[:-1]:
        ChatCompletionChunk.model_validate(f)
    without = frames(render_stream(make_ctx(), events))
    assert len(without) == len(with_usage) - 1
    assert all("usage" not in f for f in without[:-1])


def test_case_43_truncated_tool_call_reports_length() -> None:
    events: list[StreamEvent] = [
        StreamStart("x", "m"),
        ToolCallStart(0, "c", "f"),
        ToolCallDelta(0, '{"a": "tru'),
        ToolCallEnd(0),
        Finish("length"),
    ]
    out = frames(render_stream(make_ctx(), events))
    assert out[-2]["choices"][0]["finish_reason"] == "length"
    assert out[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] == '{"a": "tru'


def test_refusal_and_custom_tool_deltas() -> None:
    events: list[StreamEvent] = [
        StreamStart("x", "m"),
        RefusalDelta("No."),
        ToolCallStart(0, "c", "apply_patch", "custom"),
        ToolCallDelta(0, "*** Begin"),
        ToolCallEnd(0),
        Finish("tool_calls"),
    ]
    out = frames(render_stream(make_ctx(), events))
    assert out[1]["choices"][0]["delta"] == {"refusal": "No."}
    assert out[2]["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 0,
        "id": "c",
        "type": "custom",
        "custom": {"name": "apply_patch", "input": ""},
    }
    assert out[3]["choices"][0]["delta"]["tool_calls"][0] == {"index": 0, "custom": {"input": "*** Begin"}}


def test_case_70_mid_stream_failure_writes_an_error_frame_and_nothing_after() -> None:
    renderer = oc.StreamRenderer(make_ctx(include_usage=True))
    started = renderer.feed(StreamStart("x", "m")) + renderer.feed(TextDelta("part"))
    tail = renderer.fail(ServiceUnavailableError("the provider is overloaded", retry_after=3))
    assert frames(tail) == [
        {
            "error": {
                "message": "the provider is overloaded",
                "type": "service_unavailable",
                "param": None,
                "code": "service_unavailable",
            }
        }
    ]
    assert renderer.feed(TextDelta("late")) == b""
    assert renderer.close() == b""
    assert len(frames(started)) == 2


def test_close_without_events_still_makes_a_valid_stream() -> None:
    out = frames(oc.StreamRenderer(make_ctx()).close())
    assert out[-1] == "[DONE]"
    assert out[-2]["choices"][0]["finish_reason"] == "stop"
    for f in out[:-1]:
        ChatCompletionChunk.model_validate(f)


@settings(max_examples=60)
@given(st.lists(st.sampled_from(["text", "think", "call", "refusal"]), max_size=8), st.booleans())
def test_every_rendered_chunk_validates(kinds: list[str], include_usage: bool) -> None:
    resp = ChatResponse(id="r", model="m")
    for i, kind in enumerate(kinds):
        if kind == "text":
            resp.parts.append(TextPart(f"t{i}"))
        elif kind == "think":
            resp.parts.append(ThinkingPart(f"r{i}", signature=f"s{i}", origin="anthropic"))
        elif kind == "refusal":
            resp.parts.append(RefusalPart(f"no{i}"))
        else:
            resp.parts.append(ToolCallPart(f"c{i}", f"f{i}", "{}"))
    resp.usage = Usage(input_tokens=3, output_tokens=4)
    raw = render_stream(
        make_ctx(upstream_format="anthropic", include_usage=include_usage), response_events(resp)
    )
    out = frames(raw)
    assert out[-1] == "[DONE]"
    for f in out[:-1]:
        ChatCompletionChunk.model_validate(f)
    finishes = [
        f["choices"][0]["finish_reason"]
        for f in out[:-1]
        if f["choices"] and f["choices"][0]["finish_reason"]
    ]
    assert finishes == ["tool_calls" if "call" in kinds else "stop"]


def test_openai_to_openai_stream_round_trip_keeps_the_content() -> None:
    """Upstream OC chunks -> IR -> client OC chunks: the SDK sees the same message."""
    up = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Sure: "}),
        tool_chunk(
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"k"'}}
        ),
        tool_chunk({"index": 0, "function": {"arguments": ':"v"}'}}),
        chunk({}, "tool_calls"),
        chunk(None, usage={"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}),
    ]
    ctx = make_ctx(include_usage=True)
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for f in frames(render_stream(ctx, parse_stream(ctx, up)))[:-1]:
        state.handle_chunk(ChatCompletionChunk.model_validate(f))
    final = state.get_final_completion()
    assert final.choices[0].message.content == "Sure: "
    assert final.choices[0].message.tool_calls is not None
    assert final.choices[0].message.tool_calls[0].function.arguments == '{"k":"v"}'
    assert final.usage is not None
    assert final.usage.total_tokens == 10


# ----------------------------------------------------------------------------------------------------------
# usage tap
# ----------------------------------------------------------------------------------------------------------


def test_usage_tap_reads_only_usage_events() -> None:
    tap = oc.UsageTap()
    tap.feed(SSEEvent(b"not json at all, but no usage either"))
    tap.feed(SSEEvent(dumps(chunk({"content": "x"}, usage=None))))
    assert tap.usage is None
    tap.feed(
        SSEEvent(dumps(chunk(None, usage={"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15})))
    )
    tap.feed(SSEEvent(b"[DONE]"))
    assert tap.usage == Usage(input_tokens=12, output_tokens=3)


# ----------------------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------------------


def test_case_67_rate_limit_with_retry_after_ms() -> None:
    raw = dumps(
        {
            "error": {
                "message": "Rate limit reached for requests",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
    )
    err = oc.parse_error(429, raw, {"Retry-After-Ms": "1500", "x-ratelimit-remaining-requests": "0"})
    assert isinstance(err, RateLimitError)
    assert not isinstance(err, QuotaExhaustedError)
    assert err.retry_after == 1.5
    status, headers, out = oc.render_error(err)
    assert status == 429
    assert headers["retry-after"] == "2"
    assert loads(out)["error"]["type"] == "rate_limit_error"


def test_case_67_ratelimit_reset_headers_give_the_retry_hint() -> None:
    headers = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}
    err = oc.parse_error(
        429, b'{"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}', headers
    )
    assert err.retry_after == 360.0


def test_case_68_retry_hint_from_any_upstream_reaches_the_openai_client() -> None:
    status, headers, _ = oc.render_error(RateLimitError("Resource exhausted", retry_after=17.0))
    assert (status, headers["retry-after"]) == (429, "17")


def test_quota_exhausted_429_is_insufficient_quota() -> None:
    raw = dumps(
        {
            "error": {
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            }
        }
    )
    err = oc.parse_error(429, raw, {})
    assert isinstance(err, QuotaExhaustedError)
    assert loads(oc.render_error(err)[2])["error"] == {
        "message": "You exceeded your current quota",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }


def test_case_69_context_overflow_keeps_code_and_param() -> None:
    raw = dumps(
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }
    )
    err = oc.parse_error(400, raw, {})
    assert isinstance(err, ContextLengthError)
    assert err.param == "messages"
    status, _, out = oc.render_error(err)
    assert status == 400
    assert loads(out)["error"]["code"] == "context_length_exceeded"
    assert loads(out)["error"]["type"] == "invalid_request_error"


def test_case_66_overloaded_becomes_a_503_json_error_with_retry_after() -> None:
    err = oc.parse_error(
        529,
        b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
        {"retry-after": "7"},
    )
    assert isinstance(err, ServiceUnavailableError)
    status, headers, out = oc.render_error(err)
    assert status == 503
    assert headers == {"content-type": "application/json", "retry-after": "7"}
    assert loads(out)["error"]["type"] == "service_unavailable"


@pytest.mark.parametrize(
    ("status", "raw", "kind"),
    [
        (502, b"<html><body>Bad gateway</body></html>", UpstreamError),
        (503, b"upstream connect error", ServiceUnavailableError),
        (401, b'{"error": "invalid key"}', UpstreamAuthError),
        (404, b'[{"error": {"code": 404, "message": "model gpt-x not found"}}]', ModelNotFoundError),
        (422, b'{"detail": [{"loc": ["body", "messages"], "msg": "field required"}]}', InvalidRequestError),
        (400, b'{"message": "bad things"}', InvalidRequestError),
        (429, b"", RateLimitError),
    ],
)
def test_error_bodies_of_any_shape_map_to_typed_errors(
    status: int, raw: bytes, kind: type[GatewayError]
) -> None:
    err = oc.parse_error(status, raw, {})
    assert isinstance(err, kind)
    assert "<html" not in err.message


@pytest.mark.parametrize(
    ("error", "status", "err_type"),
    [
        (InvalidRequestError("bad"), 400, "invalid_request_error"),
        (BudgetExceededError("over budget"), 402, "insufficient_quota"),
        (PermissionDeniedError("no"), 403, "permission_error"),
        (ModelNotFoundError("nope"), 404, "not_found_error"),
        (RateLimitError("slow"), 429, "rate_limit_error"),
        (QuotaExhaustedError("broke"), 429, "insufficient_quota"),
        (UpstreamError("bad"), 502, "server_error"),
        (ServiceUnavailableError("busy"), 503, "service_unavailable"),
        (InvalidRequestError("too big", status=413), 413, "invalid_request_error"),
    ],
)
def test_error_type_follows_the_status(error: GatewayError, status: int, err_type: str) -> None:
    got_status, headers, out = oc.render_error(error)
    assert got_status == status
    assert "retry-after" not in headers
    payload = loads(out)["error"]
    assert payload["type"] == err_type
    assert payload["code"] == error.code
    assert set(payload) == {"message", "type", "param", "code"}


def _sdk_client(handler: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url="http://gateway.test/v1",
        api_key="k",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


def test_openai_sdk_recognises_rendered_errors() -> None:
    status, headers, out = oc.render_error(
        ContextLengthError("prompt is too long: 250000 tokens > 200000 maximum")
    )
    client = _sdk_client(lambda request: httpx2.Response(status, headers=headers, content=out))
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert exc.value.code == "context_length_exceeded"
    assert exc.value.status_code == 400


def test_openai_sdk_raises_on_a_mid_stream_error_frame() -> None:
    renderer = oc.StreamRenderer(make_ctx())
    raw = (
        renderer.feed(StreamStart("x", "m"))
        + renderer.feed(TextDelta("par"))
        + renderer.fail(UpstreamError("connection reset"))
    )

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    seen: list[str] = []

    def consume() -> None:
        stream = _sdk_client(handler).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        )
        seen.extend(c.choices[0].delta.content or "" for c in stream)

    with pytest.raises(openai.APIError, match="connection reset"):
        consume()
    assert "".join(seen) == "par"


def test_openai_sdk_reads_a_rendered_response() -> None:
    resp = ChatResponse(
        id="r", model="m", parts=[TextPart("pong")], usage=Usage(input_tokens=2, output_tokens=1)
    )
    payload = dumps(oc.render_response(resp, make_ctx()))
    client = _sdk_client(
        lambda request: httpx2.Response(200, headers={"content-type": "application/json"}, content=payload)
    )
    result = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "ping"}])
    assert result.choices[0].message.content == "pong"
    assert result.usage is not None
    assert result.usage.total_tokens == 3


# ----------------------------------------------------------------------------------------------------------
# legacy completions
# ----------------------------------------------------------------------------------------------------------


def test_legacy_prompt_becomes_one_user_message() -> None:
    req = oc.parse_legacy_completion(
        {
            "model": "m",
            "prompt": "Once upon",
            "max_tokens": 5,
            "echo": False,
            "logprobs": 2,
            "best_of": 1,
            "suffix": "x",
        }
    )
    assert req.messages == [Message("user", [TextPart("Once upon")])]
    assert req.max_tokens == 5
    assert req.extras == {}, "legacy-only fields never reach a chat upstream"
    listed = oc.parse_legacy_completion({"model": "m", "prompt": ["a", "b"]})
    assert listed.messages == [Message("user", [TextPart("a"), TextPart("b")])]
    chat = oc.parse_legacy_completion({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.messages == [Message("user", [TextPart("hi")])]
    with pytest.raises(InvalidRequestError) as exc:
        oc.parse_legacy_completion({"model": "m", "prompt": [1, 2, 3]})
    assert exc.value.param == "prompt"


def test_legacy_completion_response_validates() -> None:
    resp = ChatResponse(
        id="r",
        model="m",
        parts=[ThinkingPart("x"), TextPart("Once upon a time")],
        stop_reason="length",
        usage=Usage(3, 4),
    )
    out = oc.render_legacy_completion(resp, make_ctx())
    c = Completion.model_validate(out)
    assert c.object == "text_completion"
    assert c.id.startswith("cmpl-")
    assert c.choices[0].text == "Once upon a time"
    assert c.choices[0].finish_reason == "length"
    assert c.usage is not None
    assert c.usage.total_tokens == 7


def test_legacy_stream_renders_text_completion_chunks() -> None:
    renderer = oc.LegacyCompletionRenderer(make_ctx(include_usage=True))
    events: list[StreamEvent] = [
        StreamStart("x", "m"),
        ThinkingDelta("ignored"),
        TextDelta("Once"),
        TextDelta(" upon"),
        ToolCallStart(0, "c", "f"),
        ToolCallEnd(0),
        Finish("tool_calls"),
        UsageUpdate(Usage(2, 2)),
    ]
    out = frames(b"".join(renderer.feed(e) for e in events) + renderer.close())
    assert out[-1] == "[DONE]"
    assert [f["choices"][0]["text"] for f in out[:-2]] == ["Once", " upon", ""]
    assert [f["choices"][0]["finish_reason"] for f in out[:-2]] == [None, None, "stop"]
    assert {(f["id"], f["object"]) for f in out[:-1]} == {("cmpl-abc123", "text_completion")}
    Completion.model_validate(
        out[2]
    )  # the SDK type (intermediate chunks have finish_reason null, as OpenAI's)
    Completion.model_validate(out[3])
    assert out[-2]["choices"] == []
    assert out[-2]["usage"]["total_tokens"] == 4
    assert renderer.fail(UpstreamError("x")) == b""


# ----------------------------------------------------------------------------------------------------------
# hypothesis: parse -> render -> parse is the identity; parsers never crash on odd-but-valid input
# ----------------------------------------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=12)
_ident = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_-]{0,10}", fullmatch=True)
_json_text = st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3).map(
    dumps_obj
)


@st.composite
def user_content(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return draw(_text)
    parts = draw(
        st.lists(
            st.one_of(
                _text.map(lambda t: {"type": "text", "text": t}),
                st.just(
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                    }
                ),
                st.just({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}),
                st.just({"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}}),
                st.just(
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "x.pdf"},
                    }
                ),
            ),
            min_size=2,
            max_size=4,
        )
    )
    return parts


@st.composite
def chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(_text)})
    call_no = 0
    for _ in range(draw(st.integers(1, 4))):
        messages.append({"role": "user", "content": draw(user_content())})
        kind = draw(st.sampled_from(["text", "tools", "none"]))
        if kind == "text":
            messages.append({"role": "assistant", "content": draw(_text)})
        elif kind == "tools":
            ids = []
            calls = []
            for _ in range(draw(st.integers(1, 3))):
                call_no += 1
                ids.append(f"call_{call_no}")
                calls.append(
                    {
                        "id": ids[-1],
                        "type": "function",
                        "function": {"name": draw(_ident), "arguments": draw(_json_text)},
                    }
                )
            msg: dict[str, Any] = {
                "role": "assistant",
                "content": draw(st.none() | _text),
                "tool_calls": calls,
            }
            if draw(st.booleans()):
                msg["reasoning_content"] = draw(_text)
            messages.append(msg)
            messages.extend(
                {"role": "tool", "tool_call_id": i, "content": draw(st.text(max_size=8))} for i in ids
            )
    out: dict[str, Any] = {"model": draw(_ident), "messages": messages}
    optional = {
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "max_tokens": st.integers(1, 10**6),
        "stop": st.lists(_text, min_size=1, max_size=4),
        "seed": st.integers(0, 2**31),
        "n": st.integers(1, 4),
        "frequency_penalty": st.floats(-2, 2),
        "presence_penalty": st.floats(-2, 2),
        "stream": st.booleans(),
        "user": _ident,
        "metadata": st.dictionaries(_ident, _ident, max_size=3),
        "prompt_cache_key": _ident,
        "store": st.booleans(),
        "reasoning_effort": st.sampled_from(["none", "minimal", "low", "medium", "high", "xhigh", "max"]),
        "tools": st.lists(
            st.builds(
                lambda n, d: {
                    "type": "function",
                    "function": {
                        "name": n,
                        "description": d,
                        "parameters": {"type": "object", "properties": {}},
                    },
                },
                _ident,
                _text,
            ),
            min_size=1,
            max_size=3,
        ),
        "logprobs": st.booleans(),
        "service_tier": st.sampled_from(["auto", "flex"]),
        "response_format": st.sampled_from(
            [
                {"type": "json_object"},
                {
                    "type": "json_schema",
                    "json_schema": {"name": "o", "schema": {"type": "object"}, "strict": True},
                },
            ]
        ),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            out[key] = draw(strategy)
    if "tools" in out:
        out["tool_choice"] = draw(
            st.sampled_from(
                [
                    "auto",
                    "none",
                    "required",
                    {"type": "function", "function": {"name": out["tools"][0]["function"]["name"]}},
                ]
            )
        )
        if draw(st.booleans()):
            out["parallel_tool_calls"] = draw(st.booleans())
    if out.get("stream") and draw(st.booleans()):
        out["stream_options"] = {"include_usage": draw(st.booleans())}
    return out


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(chat_bodies())
def test_parse_render_parse_is_the_identity(payload: dict[str, Any]) -> None:
    first = oc.parse_request(payload)
    ctx = make_ctx(upstream_model=first.model, caps=TargetCaps(reasoning_content_replay=True))
    rendered = oc.render_request(first, ctx)
    second = oc.parse_request(rendered)
    second.include_usage = first.include_usage  # the gateway always asks its upstream for usage
    assert second == first
    assert (
        oc.render_request(
            second, make_ctx(upstream_model=first.model, caps=TargetCaps(reasoning_content_replay=True))
        )
        == rendered
    )
    assert_valid_openai_request(rendered)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
_field_names = st.sampled_from(
    [
        "role",
        "content",
        "type",
        "text",
        "image_url",
        "url",
        "tool_calls",
        "tool_call_id",
        "function",
        "name",
        "arguments",
        "id",
        "file",
        "thinking_blocks",
        "reasoning_content",
        "refusal",
    ]
)
_odd_messages = st.lists(
    st.dictionaries(
        _field_names,
        _json_values | st.sampled_from(["user", "assistant", "tool", "system", "text", "function"]),
    ),
    max_size=4,
)


@settings(max_examples=300)
@given(
    _odd_messages,
    st.dictionaries(
        st.sampled_from(
            ["tools", "tool_choice", "stop", "response_format", "stream_options", "max_tokens", "metadata"]
        ),
        _json_values,
    ),
)
def test_parse_request_raises_only_invalid_request_errors(
    messages: list[Any], fields: dict[str, Any]
) -> None:
    try:
        req = oc.parse_request({"model": "m", "messages": messages, **fields})
    except InvalidRequestError:
        return
    oc.render_request(req, make_ctx())  # whatever parses also renders


_chunk_fields = st.sampled_from(
    [
        "content",
        "reasoning_content",
        "reasoning",
        "refusal",
        "tool_calls",
        "thinking_blocks",
        "function_call",
        "role",
    ]
)
_tool_call_fragments = st.fixed_dictionaries(
    {},
    optional={
        "index": st.integers(0, 3) | st.none() | st.text(max_size=2),
        "id": st.sampled_from(["c0", "c1", "", None]),
        "type": st.sampled_from(["function", "custom", None]),
        "function": st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["f", "g", "", None]),
                "arguments": st.text(max_size=4) | st.none(),
            },
        )
        | _json_values,
    },
)
_odd_deltas = st.dictionaries(_chunk_fields, _json_values | st.lists(_tool_call_fragments, max_size=3))
_odd_chunks = st.fixed_dictionaries(
    {},
    optional={
        "id": _json_values,
        "model": _json_values,
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "index": st.sampled_from([0, 1, None]),
                    "delta": _odd_deltas | _json_values,
                    "finish_reason": st.sampled_from(["stop", "tool_calls", "length", "", None, "odd"]),
                },
            ),
            max_size=2,
        )
        | _json_values,
        "usage": _json_values,
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_odd_chunks, min_size=1, max_size=6), st.booleans())
def test_stream_parser_survives_odd_upstream_chunks_and_keeps_the_grammar(
    chunks: list[dict[str, Any]], think_tags: bool
) -> None:
    ctx = make_ctx(caps=TargetCaps(think_tags=think_tags))
    try:
        events = parse_stream(ctx, chunks)
    except GatewayError:
        return
    check_grammar(events)
    render_stream(make_ctx(include_usage=True), events)  # and the client side accepts what came out


@settings(max_examples=300)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "choices": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "message": _odd_deltas | _json_values,
                        "finish_reason": _json_values,
                        "index": _json_values,
                    },
                ),
                max_size=2,
            ),
            "usage": _json_values,
            "id": _json_values,
            "created": _json_values,
        },
    )
)
def test_parse_response_survives_odd_upstream_bodies(payload: dict[str, Any]) -> None:
    try:
        resp = oc.parse_response(payload, make_ctx())
    except GatewayError:
        return
    ChatCompletion.model_validate(oc.render_response(resp, make_ctx()))

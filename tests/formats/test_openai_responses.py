"""OpenAI Responses wire format: what Codex, opencode, Qwen and the OpenAI SDK send and expect to read.

Sans-I/O throughout: dicts and bytes in, dicts and bytes out. Client-facing output is validated with the
official SDK's pydantic types (`Response`, `ResponseStreamEvent`).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from omniroute import (
    ContextLengthError,
    GatewayError,
    InvalidRequestError,
    QuotaExhaustedError,
    RateLimitError,
    UpstreamAuthError,
    UpstreamError,
    dumps,
    loads,
)
from omniroute_providers.formats import get_format
from omniroute_providers.formats import openai_responses as orf
from omniroute_providers.formats.sse import SSEDecoder, SSEEvent
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
    tag_signature,
)

EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
OR = "openai-responses"
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
PDF_B64 = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK"

APPLY_PATCH_GRAMMAR = (
    'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\nend_patch: "*** End Patch" LF?\n'
    'hunk: "*** Update File: " filename LF change+\nfilename: /(.+)/\nchange: /(.*)/ LF\n%import common.LF\n'
)


def codex_request() -> dict[str, Any]:
    """A Codex CLI 0.169-shaped request: developer items instead of instructions, ids on every item,
    reasoning with encrypted content, shell + apply_patch + namespace + web_search tools, store false."""
    schema = {
        "type": "object",
        "properties": {"command": {"type": "array", "items": {"type": "string"}}},
        "required": ["command"],
        "additionalProperties": False,
    }
    task_schema = {"type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]}
    return {
        "model": "gpt-5.1-codex",
        "input": [
            {
                "type": "message",
                "id": "msg_dev1",
                "role": "developer",
                "content": [{"type": "input_text", "text": "You are Codex, a coding agent."}],
            },
            {
                "type": "message",
                "id": "msg_dev2",
                "role": "developer",
                "content": [{"type": "input_text", "text": "<permissions>sandbox: read-only</permissions>"}],
            },
            {
                "type": "message",
                "id": "msg_u1",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "<environment_context>cwd=/repo</environment_context>"},
                    {"type": "input_text", "text": "fix the failing test"},
                ],
            },
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [
                    {"type": "summary_text", "text": "**Looking at tests**\n\nI will run them."},
                    {"type": "summary_text", "text": "**Plan**"},
                ],
                "encrypted_content": "gAAAAABenc-one",
            },
            {
                "type": "message",
                "id": "msg_a1",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Running the tests first."}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_abc",
                "name": "shell",
                "arguments": '{"command":["pytest","-q"]}',
            },
            {"type": "function_call_output", "id": "fco_1", "call_id": "call_abc", "output": "1 failed"},
            {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "gAAAAABenc-two"},
            {
                "type": "custom_tool_call",
                "id": "ctc_1",
                "call_id": "call_patch",
                "name": "apply_patch",
                "input": "*** Begin Patch\n*** Update File: a.py\n-x = 1\n+x = 2\n*** End Patch\n",
            },
            {"type": "custom_tool_call_output", "call_id": "call_patch", "output": "Success. Updated a.py"},
            {
                "type": "function_call",
                "id": "fc_2",
                "call_id": "call_spawn",
                "name": "spawn_agent",
                "namespace": "multi_agent_v1",
                "arguments": '{"task":"review"}',
            },
            {
                "type": "function_call_output",
                "id": "fco_2",
                "call_id": "call_spawn",
                "output": "agent started",
            },
            {
                "type": "web_search_call",
                "id": "ws_1",
                "status": "completed",
                "action": {"type": "search", "query": "pytest docs"},
            },
            {"type": "reasoning", "id": "rs_stale", "summary": []},
            {"type": "item_reference", "id": "msg_old"},
            {
                "type": "message",
                "id": "msg_dev3",
                "role": "developer",
                "content": [
                    {"type": "input_text", "text": "<collaboration_mode>default</collaboration_mode>"}
                ],
            },
            {
                "type": "message",
                "id": "msg_u2",
                "role": "user",
                "content": [{"type": "input_text", "text": "thanks, continue"}],
            },
        ],
        "tools": [
            {
                "type": "function",
                "name": "shell",
                "description": "Runs a shell command",
                "strict": False,
                "parameters": schema,
            },
            {
                "type": "custom",
                "name": "apply_patch",
                "description": "Use apply_patch to edit files",
                "format": {"type": "grammar", "syntax": "lark", "definition": APPLY_PATCH_GRAMMAR},
            },
            {
                "type": "namespace",
                "name": "multi_agent_v1",
                "description": "Sub-agents",
                "tools": [
                    {
                        "type": "function",
                        "name": "spawn_agent",
                        "description": "Start a sub-agent",
                        "strict": False,
                        "parameters": task_schema,
                    },
                    {"type": "function", "name": "wait", "description": "Wait for agents", "strict": False},
                ],
            },
            {"type": "web_search", "external_web_access": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "019a7c1e-session",
        "client_metadata": {"x-codex-turn": "1"},
        "text": {"verbosity": "low"},
    }


def ctx_for(
    client: str = OR,
    upstream: str = OR,
    *,
    provider: str = "openai",
    request: ChatRequest | None = None,
    caps: TargetCaps | None = None,
) -> Context:
    return Context(
        client_format=client,
        upstream_format=upstream,
        provider=provider,
        upstream_model="gpt-5.1",
        client_model="gpt-5.1",
        request=request,
        caps=caps or TargetCaps(),
    )


def anthropic_request(**fields: Any) -> ChatRequest:
    return ChatRequest(model="claude-sonnet-4-6", source_format="anthropic", **fields)


def decode_frames(data: bytes) -> list[dict[str, Any]]:
    """SSE bytes -> event dicts, checking the `event:` name equals the data's `type`."""
    dec = SSEDecoder()
    out = []
    for ev in [*dec.feed(data), *dec.close()]:
        obj = loads(ev.data)
        assert ev.event == obj["type"]
        out.append(obj)
    return out


def validate_event(obj: dict[str, Any]) -> None:
    if obj["type"] == "response.failed":
        # The SDK's ResponseError.code enum lacks the codes the API (and Codex) use for context and
        # quota failures; check everything else against the SDK and the code separately.
        obj = copy.deepcopy(obj)
        obj["response"]["error"]["code"] = "server_error"
    EVENT_ADAPTER.validate_python(obj)


def check_stream(data: bytes) -> list[dict[str, Any]]:
    """The Responses stream grammar a client relies on, asserted event by event."""
    events = decode_frames(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[0]["response"]["status"] == "in_progress"
    done_items: list[dict[str, Any]] = []
    open_item: dict[str, Any] | None = None
    deltas: dict[tuple[str, int], list[str]] = {}
    for e in events:
        validate_event(e)
        kind = e["type"]
        if kind == "response.output_item.added":
            assert open_item is None, "items never overlap"
            assert e["output_index"] == len(done_items)
            open_item = e["item"]
        elif kind == "response.output_item.done":
            assert open_item is not None
            assert e["output_index"] == len(done_items)
            assert e["item"]["id"] == open_item["id"]
            done_items.append(e["item"])
            open_item = None
        elif kind.endswith(".delta") and "item_id" in e:
            assert open_item is not None
            assert e["item_id"] == open_item["id"]
            assert e["output_index"] == len(done_items)
            deltas.setdefault((e["item_id"], e.get("content_index", e.get("summary_index", 0))), []).append(
                e["delta"]
            )
        elif kind == "response.output_text.done":
            assert "".join(deltas.get((e["item_id"], e["content_index"]), [])) == e["text"]
        elif kind == "response.function_call_arguments.done":
            assert "".join(deltas.get((e["item_id"], 0), [])) == e["arguments"]
    terminal = events[-1]
    assert terminal["type"] in ("response.completed", "response.incomplete", "response.failed")
    if terminal["type"] != "response.failed":
        assert open_item is None
        assert terminal["response"]["output"] == done_items
        Response.model_validate(terminal["response"])
    return events


def feed_all(parser: orf.StreamParser, data: bytes, splits: list[int] | None = None) -> list[StreamEvent]:
    dec = SSEDecoder()
    chunks = [data]
    if splits:
        cuts = sorted({s % (len(data) + 1) for s in splits})
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    out: list[StreamEvent] = []
    for chunk in chunks:
        for ev in dec.feed(chunk):
            out.extend(parser.feed(ev))
    for ev in dec.close():
        out.extend(parser.feed(ev))
    out.extend(parser.close())
    return out


def render_events(ctx: Context, events: list[StreamEvent], *, fail: GatewayError | None = None) -> bytes:
    r = orf.StreamRenderer(ctx)
    data = b"".join(r.feed(e) for e in events)
    return data + (r.fail(fail) if fail is not None else r.close())


# ==========================================================================================================
# the module as a whole
# ==========================================================================================================


def test_registry_resolves_the_module_with_every_protocol_member() -> None:
    mod = get_format(OR)
    assert mod.FORMAT_ID == OR
    assert mod.STREAM_CONTENT_TYPE == "text/event-stream"
    for name in (
        "parse_request",
        "render_request",
        "parse_response",
        "render_response",
        "parse_error",
        "render_error",
        "response_usage",
        "request_path",
        "prepare_passthrough",
        "StreamParser",
        "StreamRenderer",
        "UsageTap",
    ):
        assert callable(getattr(mod, name)), name
    assert mod.request_path("gpt-5.1", True) == mod.request_path("gpt-5.1", False) == "/responses"


# ==========================================================================================================
# parse_request
# ==========================================================================================================


def test_instructions_then_leading_developer_items_become_the_system_prompt_in_order() -> None:
    # formats.md case 4 (OR half)
    req = orf.parse_request(
        {
            "model": "m",
            "instructions": "Be terse.",
            "input": [
                {"role": "developer", "content": "Repo rules."},
                {"role": "system", "content": [{"type": "input_text", "text": "Also this."}]},
                {"role": "user", "content": "hello"},
            ],
        }
    )
    assert [p.text for p in req.system] == ["Be terse.", "Repo rules.", "Also this."]
    assert [(m.role, [p.text for p in m.parts if isinstance(p, TextPart)]) for m in req.messages] == [
        ("user", ["hello"])
    ]
    assert req.source_format == OR
    assert req.stream is False


def test_string_input_is_one_user_message() -> None:
    req = orf.parse_request({"model": "m", "input": "Say PONG"})
    assert len(req.messages) == 1
    assert req.messages[0].role == "user"
    assert req.messages[0].parts == [TextPart("Say PONG")]


def test_developer_item_after_the_conversation_started_stays_in_place_as_system() -> None:
    req = orf.parse_request(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "hi"},
                {"type": "message", "role": "developer", "content": "mode changed"},
                {"role": "user", "content": "go"},
            ],
        }
    )
    assert req.system == []
    assert [m.role for m in req.messages] == ["user", "system", "user"]
    assert req.messages[1].parts == [TextPart("mode changed")]


def test_content_parts_become_ir_parts() -> None:
    # formats.md case 12 (OR half): PDF file -> FilePart application/pdf; image detail kept for the IR
    req = orf.parse_request(
        {
            "model": "m",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_text", "text": ""},
                        {
                            "type": "input_image",
                            "image_url": f"data:image/png;base64,{PNG_B64}",
                            "detail": "high",
                        },
                        {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "low"},
                        {"type": "input_image", "file_id": "file-img1", "detail": "auto"},
                        {
                            "type": "input_file",
                            "file_data": f"data:application/pdf;base64,{PDF_B64}",
                            "filename": "a.pdf",
                        },
                        {"type": "input_file", "file_data": PDF_B64, "filename": "b.pdf"},
                        {"type": "input_file", "file_url": "https://example.com/c.pdf"},
                        {"type": "input_file", "file_id": "file-abc", "filename": "d.pdf"},
                    ],
                }
            ],
        }
    )
    parts = req.messages[0].parts
    assert parts[0] == TextPart("look")
    assert parts[1] == ImagePart(media_type="image/png", data=PNG_B64, detail="high")
    assert parts[2] == ImagePart(url="https://example.com/cat.jpg", detail="low")
    assert parts[3] == OpaquePart(OR, {"type": "input_image", "file_id": "file-img1", "detail": "auto"})
    assert parts[4] == FilePart(media_type="application/pdf", data=PDF_B64, filename="a.pdf")
    assert parts[5] == FilePart(media_type="application/pdf", data=PDF_B64, filename="b.pdf")
    assert parts[6] == FilePart(url="https://example.com/c.pdf", media_type="application/pdf")
    assert parts[7] == FilePart(file_id="file-abc", filename="d.pdf", media_type="application/pdf")
    assert len(parts) == 8  # the empty text part is dropped, never carried


def test_assistant_output_message_keeps_annotations_and_refusals() -> None:
    ann = [{"type": "url_citation", "url": "https://x.org", "title": "X", "start_index": 0, "end_index": 3}]
    req = orf.parse_request(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "q"},
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": "Yes", "annotations": ann},
                        {"type": "refusal", "refusal": "Not that part."},
                    ],
                },
            ],
        }
    )
    assert req.messages[1].role == "assistant"
    assert req.messages[1].parts == [TextPart("Yes", citations=ann), RefusalPart("Not that part.")]


def test_function_calls_join_their_assistant_turn_and_outputs_become_one_tool_message() -> None:
    req = orf.parse_request(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "weather in two cities"},
                {"role": "assistant", "content": "Checking."},
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": "w",
                    "arguments": '{"c":"a"}',
                },
                {
                    "type": "function_call",
                    "id": "fc_2",
                    "call_id": "call_2",
                    "name": "w",
                    "arguments": '{"c":"b"}',
                },
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "call_2", "output": ""},
            ],
        }
    )
    assert [m.role for m in req.messages] == ["user", "assistant", "tool"]
    assistant = req.messages[1].parts
    assert assistant[0] == TextPart("Checking.")
    assert assistant[1] == ToolCallPart("call_1", "w", '{"c":"a"}', item_id="fc_1")
    assert assistant[2] == ToolCallPart("call_2", "w", '{"c":"b"}', item_id="fc_2")
    assert req.messages[2].parts == [
        ToolResultPart("call_1", [TextPart("sunny")], name="w"),
        ToolResultPart("call_2", [], name="w"),
    ]


def test_function_call_output_with_parts_keeps_text_and_image() -> None:
    # formats.md case 30 (OR half): the IR keeps both; the OC renderer decides where the image goes
    req = orf.parse_request(
        {
            "model": "m",
            "input": [
                {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
                {
                    "type": "function_call_output",
                    "call_id": "c1",
                    "output": [
                        {"type": "input_text", "text": "screenshot:"},
                        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}"},
                    ],
                },
            ],
        }
    )
    result = req.messages[1].parts[0]
    assert isinstance(result, ToolResultPart)
    assert result.content == [TextPart("screenshot:"), ImagePart(media_type="image/png", data=PNG_B64)]


def test_custom_tool_call_is_kind_custom_with_raw_input() -> None:
    # formats.md case 18 (OR half): apply_patch input is free text, not JSON
    patch = "*** Begin Patch\n*** Add File: x\n+hi\n*** End Patch"
    req = orf.parse_request(
        {
            "model": "m",
            "input": [
                {"type": "custom_tool_call", "call_id": "c9", "name": "apply_patch", "input": patch},
                {"type": "custom_tool_call_output", "call_id": "c9", "output": "Done"},
            ],
        }
    )
    call = req.messages[0].parts[0]
    assert call == ToolCallPart("c9", "apply_patch", patch, kind="custom")
    assert req.messages[1].parts == [
        ToolResultPart("c9", [TextPart("Done")], name="apply_patch", kind="custom")
    ]


def test_reasoning_item_becomes_thinking_with_its_token() -> None:
    req = orf.parse_request(
        {
            "model": "m",
            "input": [
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "A"}, {"type": "summary_text", "text": "B"}],
                    "encrypted_content": "gAAAAAB-native",
                },
                {
                    "type": "reasoning",
                    "summary": [],
                    "encrypted_content": tag_signature("EqSig", "anthropic"),
                },
                {
                    "type": "reasoning",
                    "summary": [],
                    "encrypted_content": tag_signature("redacted:opaque", "anthropic"),
                },
                {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "raw"}]},
            ],
        }
    )
    parts = req.messages[0].parts
    assert parts[0] == ThinkingPart("A\n\nB", "gAAAAAB-native", item_id="rs_1")
    assert parts[1] == ThinkingPart("", "EqSig", origin="anthropic")
    assert parts[2] == ThinkingPart("", "opaque", redacted=True, origin="anthropic")
    assert parts[3] == ThinkingPart("raw")


def test_items_the_ir_cannot_read_are_carried_opaque() -> None:
    items: list[dict[str, Any]] = [
        {"type": "item_reference", "id": "msg_9"},
        {"type": "local_shell_call", "id": "lsh_1", "call_id": "c", "status": "completed", "action": {}},
        {"type": "compaction", "encrypted_content": "zzz"},
    ]
    req = orf.parse_request({"model": "m", "input": [{"role": "user", "content": "x"}, *items]})
    assert req.messages[1].parts == [OpaquePart(OR, item) for item in items]


def test_tools_function_custom_namespace_and_hosted() -> None:
    grammar = {"type": "grammar", "syntax": "lark", "definition": APPLY_PATCH_GRAMMAR}
    req = orf.parse_request(codex_request())
    assert req.tools[0] == ToolSpec(
        "shell", "Runs a shell command", parameters=req.tools[0].parameters, strict=False
    )
    assert req.tools[1] == ToolSpec(
        "apply_patch", "Use apply_patch to edit files", kind="custom", grammar=grammar
    )
    # namespace members are flattened to <namespace>__<member> so every format can call them
    assert [t.name for t in req.tools[2:4]] == ["multi_agent_v1__spawn_agent", "multi_agent_v1__wait"]
    assert req.tools[2].kind == "function"
    assert req.tools[4].kind == "builtin"
    assert req.tools[4].raw == {"type": "web_search", "external_web_access": False}
    assert req.tools[4].raw_format == OR
    # the namespaced call in history carries the flattened name and its namespace
    spawn = next(
        p for m in req.messages for p in m.parts if isinstance(p, ToolCallPart) and p.id == "call_spawn"
    )
    assert spawn.name == "multi_agent_v1__spawn_agent"
    assert spawn.namespace == "multi_agent_v1"


@pytest.mark.parametrize(
    ("wire", "expected", "extra"),
    [
        ("auto", ToolChoice("auto"), None),
        ("none", ToolChoice("none"), None),
        ("required", ToolChoice("required"), None),
        ({"type": "function", "name": "w"}, ToolChoice("tool", name="w"), None),
        ({"type": "custom", "name": "apply_patch"}, ToolChoice("tool", name="apply_patch"), None),
        (
            {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "w"}]},
            ToolChoice("required", allowed=["w"]),
            None,
        ),
        ({"type": "web_search"}, None, {"type": "web_search"}),
    ],
)
def test_tool_choice_forms(wire: Any, expected: ToolChoice | None, extra: Any) -> None:
    req = orf.parse_request({"model": "m", "input": "x", "tool_choice": wire})
    assert req.tool_choice == expected
    assert req.extras.get("tool_choice") == extra


def test_top_level_fields_map_to_the_ir_and_the_rest_to_extras() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    req = orf.parse_request(
        {
            "model": "m",
            "input": "x",
            "parallel_tool_calls": False,
            "reasoning": {"effort": "high", "summary": "detailed", "context": "all_turns"},
            "text": {
                "format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True},
                "verbosity": "low",
            },
            "max_output_tokens": 500,
            "temperature": 0.2,
            "top_p": 0.9,
            "store": False,
            "include": ["reasoning.encrypted_content"],
            "previous_response_id": "resp_prev",
            "prompt_cache_key": "k1",
            "safety_identifier": "u-1",
            "metadata": {"a": "b"},
            "stream": True,
            "client_metadata": {"c": 1},
            "truncation": "auto",
            "service_tier": "priority",
            "conversation": "conv_1",
            "background": False,
        }
    )
    assert req.parallel_tool_calls is False
    assert req.reasoning == ReasoningConfig(enabled=True, effort="high", summary="detailed")
    assert req.response_format == ResponseFormat("json_schema", schema=schema, name="out", strict=True)
    assert (req.max_tokens, req.temperature, req.top_p) == (500, 0.2, 0.9)
    assert req.store is False
    assert req.include == ["reasoning.encrypted_content"]
    assert req.previous_response_id == "resp_prev"  # formats.md case 74: parsed, never silently dropped
    assert req.cache_key == "k1"
    assert req.user == "u-1"
    assert req.metadata == {"a": "b"}
    assert req.stream is True
    extras = {k: v for k, v in req.extras.items() if k != orf.PRIVATE_KEY}
    assert extras == {
        "client_metadata": {"c": 1},
        "truncation": "auto",
        "service_tier": "priority",
        "conversation": "conv_1",
        "background": False,
        "text": {"verbosity": "low"},
        "reasoning": {"context": "all_turns"},
    }


def test_effort_none_means_reasoning_off() -> None:
    req = orf.parse_request({"model": "m", "input": "x", "reasoning": {"effort": "none"}})
    assert req.reasoning is not None
    assert req.reasoning.enabled is False


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m", "input": 5}, "input must be"),
        ({"model": "m", "input": ["hi"]}, "input[0]"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "call_id"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "image_url or file_id",
        ),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": 3}]}]}, "text"),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "m", "input": "x", "tools": {"type": "function"}}, "tools must be"),
        ({"model": "m", "input": "x", "temperature": "hot"}, "temperature"),
        ({"model": "m", "input": "x", "max_output_tokens": True}, "max_output_tokens"),
        ({"model": "m", "input": "x", "include": "all"}, "include"),
        ({"model": "m", "input": "x", "reasoning": "high"}, "reasoning"),
    ],
)
def test_shape_errors_say_what_is_wrong(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        orf.parse_request(body)
    assert fragment in info.value.message
    assert info.value.status == 400


def test_parse_request_does_not_mutate_the_body() -> None:
    body = codex_request()
    before = copy.deepcopy(body)
    orf.parse_request(body)
    assert body == before


# ==========================================================================================================
# render_request (IR -> Responses upstream)
# ==========================================================================================================


def test_anthropic_user_text_and_image_become_input_parts() -> None:
    # formats.md case 13
    req = anthropic_request(
        system=[TextPart("sys A"), TextPart("sys B")],
        messages=[
            Message("user", [TextPart("what is this"), ImagePart(media_type="image/png", data=PNG_B64)])
        ],
        max_tokens=1000,
    )
    body = orf.render_request(req, ctx_for("anthropic", OR))
    assert body["model"] == "gpt-5.1"
    assert body["instructions"] == "sys A\n\nsys B"
    assert body["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "what is this"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}", "detail": "auto"},
            ],
        }
    ]
    assert body["max_output_tokens"] == 1000
    assert body["store"] is False


def test_claude_thinking_is_dropped_and_budget_maps_to_effort() -> None:
    # formats.md case 51
    req = anthropic_request(
        messages=[
            Message("user", [TextPart("q")]),
            Message("assistant", [ThinkingPart("hmm", "EqClaudeSig"), TextPart("a")]),
            Message("user", [TextPart("more")]),
        ],
        reasoning=ReasoningConfig(enabled=True, budget_tokens=10000),
    )
    body = orf.render_request(req, ctx_for("anthropic", OR))
    assert all(item.get("type") != "reasoning" for item in body["input"])
    assert "EqClaudeSig" not in dumps(body).decode()
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]


def test_openai_reasoning_comes_back_to_its_provider_without_rs_id() -> None:
    # formats.md case 50: minted by provider "openai", replayed statelessly to "openai"
    req = anthropic_request(
        messages=[
            Message("user", [TextPart("q")]),
            Message(
                "assistant",
                [ThinkingPart("plan", "gAAAAABtoken", origin="openai", item_id="rs_abc"), TextPart("a")],
            ),
            Message("user", [TextPart("next")]),
        ]
    )
    body = orf.render_request(req, ctx_for("anthropic", OR, provider="openai"))
    reasoning = [i for i in body["input"] if i.get("type") == "reasoning"]
    assert reasoning == [
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "plan"}],
            "encrypted_content": "gAAAAABtoken",
        }
    ]
    # the same token is never sent to another provider's Responses endpoint
    other = orf.render_request(req, ctx_for("anthropic", OR, provider="azure"))
    assert all(i.get("type") != "reasoning" for i in other["input"])


def test_long_call_ids_are_shortened_identically_for_call_and_output() -> None:
    # formats.md case 32
    long_id = "toolu_" + "x" * 90
    req = anthropic_request(
        messages=[
            Message("user", [TextPart("q")]),
            Message("assistant", [ToolCallPart(long_id, "lookup", '{"q":1}')]),
            Message("tool", [ToolResultPart(long_id, [TextPart("r")])]),
        ]
    )
    ctx = ctx_for("anthropic", OR)
    body = orf.render_request(req, ctx)
    call, output = body["input"][1], body["input"][2]
    assert call["type"] == "function_call"
    assert output == {"type": "function_call_output", "call_id": call["call_id"], "output": "r"}
    assert len(call["call_id"]) <= 64
    assert call["call_id"] != long_id
    assert ctx.call_ids[call["call_id"]] == long_id
    # ... and the response maps it back to the client's id
    resp = orf.parse_response(
        {
            "id": "resp_1",
            "status": "completed",
            "model": "gpt-5.1",
            "output": [
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": call["call_id"],
                    "name": "lookup",
                    "arguments": "{}",
                }
            ],
        },
        ctx,
    )
    assert isinstance(resp.parts[0], ToolCallPart)
    assert resp.parts[0].id == long_id


def test_structured_output_becomes_flat_text_format() -> None:
    # formats.md case 64 (OR half)
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    req = ChatRequest(
        model="m",
        source_format="openai-chat",
        messages=[Message("user", [TextPart("x")])],
        response_format=ResponseFormat("json_schema", schema=schema, name="answer", strict=True),
    )
    body = orf.render_request(req, ctx_for("openai-chat", OR))
    assert body["text"] == {
        "format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}
    }


def test_parameters_responses_has_no_place_for_are_dropped() -> None:
    req = ChatRequest(
        model="m",
        source_format="openai-chat",
        messages=[Message("user", [TextPart("x")])],
        stop=["END"],
        n=2,
        seed=7,
        frequency_penalty=0.5,
        presence_penalty=0.5,
        top_k=40,
        temperature=0.3,
        top_p=0.8,
        user="end-user",
        cache_key="ck",
        metadata={"k": "v"},
        extras={"logit_bias": {"1": 2}},
    )
    body = orf.render_request(req, ctx_for("openai-chat", OR))
    for absent in ("stop", "n", "seed", "frequency_penalty", "presence_penalty", "top_k", "logit_bias"):
        assert absent not in body
    assert (body["temperature"], body["top_p"]) == (0.3, 0.8)
    assert (body["user"], body["prompt_cache_key"], body["metadata"]) == ("end-user", "ck", {"k": "v"})


@pytest.mark.parametrize(
    ("reasoning", "effort"),
    [
        (ReasoningConfig(enabled=True, budget_tokens=512), "low"),
        (ReasoningConfig(enabled=True, budget_tokens=1024), "low"),
        (ReasoningConfig(enabled=True, budget_tokens=5000), "medium"),
        (ReasoningConfig(enabled=True, budget_tokens=8192), "medium"),
        (ReasoningConfig(enabled=True, budget_tokens=10000), "high"),
        (ReasoningConfig(enabled=False), "none"),
        (ReasoningConfig(effort="max"), "max"),
        (ReasoningConfig(effort="minimal"), "minimal"),
        (ReasoningConfig(effort="turbo"), "medium"),
        (ReasoningConfig(enabled=True, adaptive=True), None),
    ],
)
def test_reasoning_effort_mapping(reasoning: ReasoningConfig, effort: str | None) -> None:
    req = anthropic_request(messages=[Message("user", [TextPart("x")])], reasoning=reasoning)
    body = orf.render_request(req, ctx_for("anthropic", OR))
    assert body["reasoning"].get("effort") == effort
    assert ("include" in body) == (effort != "none")


def test_no_reasoning_block_for_models_that_do_not_reason() -> None:
    req = anthropic_request(
        messages=[Message("user", [TextPart("x")])], reasoning=ReasoningConfig(effort="high")
    )
    body = orf.render_request(req, ctx_for("anthropic", OR, caps=TargetCaps(thinking_style="none")))
    assert "reasoning" not in body
    assert "include" not in body


def test_cross_format_tools_are_flat_with_explicit_strict() -> None:
    req = ChatRequest(
        model="m",
        source_format="openai-chat",
        messages=[Message("user", [TextPart("x")])],
        tools=[
            ToolSpec(
                "w",
                "weather",
                parameters={
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"c": {"type": "string"}},
                },
            ),
            ToolSpec(
                "s", None, parameters={"type": "object", "properties": {"a": {"type": "string"}}}, strict=True
            ),
            ToolSpec("noargs"),
            ToolSpec(
                "patch",
                kind="custom",
                grammar={"type": "grammar", "grammar": {"syntax": "lark", "definition": "start: /x/"}},
            ),
            ToolSpec(
                "web_search_20250305",
                kind="builtin",
                raw={"type": "web_search_20250305"},
                raw_format="anthropic",
            ),
        ],
        tool_choice=ToolChoice("tool", name="patch"),
    )
    body = orf.render_request(req, ctx_for("openai-chat", OR))
    assert body["tools"] == [
        {
            "type": "function",
            "name": "w",
            "description": "weather",
            "parameters": {"type": "object", "properties": {"c": {"type": "string"}}},
            "strict": False,
        },
        {
            "type": "function",
            "name": "s",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": False,
                "required": ["a"],
            },
            "strict": True,
        },
        {
            "type": "function",
            "name": "noargs",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        },
        {
            "type": "custom",
            "name": "patch",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: /x/"},
        },
    ]
    assert body["tool_choice"] == {"type": "custom", "name": "patch"}


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice("auto"), "auto"),
        (ToolChoice("none"), "none"),
        (ToolChoice("required"), "required"),
        (ToolChoice("tool", name="w"), {"type": "function", "name": "w"}),
        (
            ToolChoice("auto", allowed=["w"]),
            {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "w"}]},
        ),
    ],
)
def test_tool_choice_is_rendered_flat(choice: ToolChoice, wire: Any) -> None:
    req = anthropic_request(
        messages=[Message("user", [TextPart("x")])], tools=[ToolSpec("w")], tool_choice=choice
    )
    assert orf.render_request(req, ctx_for("anthropic", OR))["tool_choice"] == wire


def test_illegal_tool_names_are_renamed_and_restored_on_the_way_back() -> None:
    long_name = "mcp__" + "server_" * 12 + "tool"
    req = anthropic_request(
        messages=[
            Message("user", [TextPart("x")]),
            Message("assistant", [ToolCallPart("c1", long_name, "{}")]),
            Message("tool", [ToolResultPart("c1", [TextPart("ok")])]),
        ],
        tools=[ToolSpec(long_name, parameters={"type": "object"})],
    )
    ctx = ctx_for("anthropic", OR)
    body = orf.render_request(req, ctx)
    sent = body["tools"][0]["name"]
    assert len(sent) <= 64
    assert re.fullmatch(r"[A-Za-z0-9_-]+", sent)
    assert body["input"][1]["name"] == sent
    assert ctx.tool_names[sent] == long_name
    parser = orf.StreamParser(ctx)
    added = {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {"type": "function_call", "id": "fc_1", "call_id": "c2", "name": sent, "arguments": ""},
    }
    events = parser.feed(SSEEvent(dumps(added), "response.output_item.added"))
    assert any(isinstance(e, ToolCallStart) and e.name == long_name for e in events)


def test_tool_error_results_are_noted_because_responses_has_no_error_flag() -> None:
    req = anthropic_request(
        messages=[
            Message("assistant", [ToolCallPart("c1", "f", "{}")]),
            Message("tool", [ToolResultPart("c1", [TextPart("file not found")], is_error=True)]),
        ]
    )
    body = orf.render_request(req, ctx_for("anthropic", OR))
    assert body["input"][1]["output"] == "Error: file not found"


def test_tool_result_with_media_becomes_an_output_list() -> None:
    req = anthropic_request(
        messages=[
            Message("assistant", [ToolCallPart("c1", "shot", "{}")]),
            Message(
                "tool",
                [ToolResultPart("c1", [TextPart("here"), ImagePart(media_type="image/jpeg", data="/9j/")])],
            ),
        ]
    )
    body = orf.render_request(req, ctx_for("anthropic", OR))
    assert body["input"][1]["output"] == [
        {"type": "input_text", "text": "here"},
        {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/", "detail": "auto"},
    ]


def test_documents_render_as_input_file_with_a_filename() -> None:
    req = anthropic_request(
        messages=[
            Message(
                "user", [FilePart(media_type="application/pdf", data=PDF_B64), FilePart(text="plain doc")]
            )
        ]
    )
    content = orf.render_request(req, ctx_for("anthropic", OR))["input"][0]["content"]
    assert content[0] == {
        "type": "input_file",
        "file_data": f"data:application/pdf;base64,{PDF_B64}",
        "filename": "document.pdf",
    }
    assert content[1] == {"type": "input_text", "text": "plain doc"}


def test_extras_and_private_bookkeeping_only_go_back_to_a_responses_upstream_from_a_responses_client() -> (
    None
):
    req = anthropic_request(
        messages=[Message("user", [TextPart("x")])], extras={"container": {"id": "c"}, "_responses": {}}
    )
    body = orf.render_request(req, ctx_for("anthropic", OR))
    assert "container" not in body
    assert "_responses" not in body
    own = orf.parse_request({"model": "m", "input": "x", "truncation": "auto", "safety_identifier": "s"})
    body = orf.render_request(own, ctx_for(OR, OR))
    assert body["truncation"] == "auto"
    assert body["safety_identifier"] == "s"
    assert "_responses" not in body


def test_previous_response_id_is_passed_to_a_responses_upstream() -> None:
    # formats.md case 74 (the Responses-upstream half; the pipeline handles the others)
    req = orf.parse_request({"model": "m", "input": "more", "previous_response_id": "resp_9"})
    assert orf.render_request(req, ctx_for(OR, OR))["previous_response_id"] == "resp_9"


def test_system_as_user_caps_moves_system_text_into_user_messages() -> None:
    req = anthropic_request(system=[TextPart("rules")], messages=[Message("user", [TextPart("x")])])
    body = orf.render_request(req, ctx_for("anthropic", OR, caps=TargetCaps(system_as_user=True)))
    assert "instructions" not in body
    assert body["input"][0] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "rules"}],
    }


def test_render_request_does_not_mutate_the_ir() -> None:
    req = orf.parse_request(codex_request())
    before = copy.deepcopy(req)
    orf.render_request(req, ctx_for(OR, OR))
    assert req == before


# ==========================================================================================================
# prepare_passthrough and the Codex round trip
# ==========================================================================================================


def test_passthrough_with_store_false_strips_ids_and_unresolvable_items() -> None:
    # hard case 10, formats.md case 75
    body = codex_request()
    before = copy.deepcopy(body)
    out = orf.prepare_passthrough(body)
    assert body == before, "the caller's dict is not touched"
    items = out["input"]
    assert all("id" not in i for i in items if i.get("type") != "web_search_call")
    assert next(i for i in items if i.get("type") == "web_search_call")["id"] == "ws_1"  # its schema needs it
    assert all(i.get("type") != "item_reference" for i in items)
    assert [i["encrypted_content"] for i in items if i.get("type") == "reasoning"] == [
        "gAAAAABenc-one",
        "gAAAAABenc-two",
    ]
    assert {k: v for k, v in out.items() if k != "input"} == {k: v for k, v in before.items() if k != "input"}


def test_passthrough_keeps_ids_when_the_client_stores() -> None:
    body = {**codex_request(), "store": True}
    assert orf.prepare_passthrough(body) == body
    no_store_field = {k: v for k, v in codex_request().items() if k != "store"}
    assert orf.prepare_passthrough(no_store_field) == no_store_field


def test_codex_request_survives_parse_and_render_to_a_responses_upstream_without_loss() -> None:
    body = codex_request()
    req = orf.parse_request(body)
    assert [p.text for p in req.system] == [
        "You are Codex, a coding agent.",
        "<permissions>sandbox: read-only</permissions>",
    ]
    rendered = orf.render_request(req, ctx_for(OR, OR))
    assert rendered == {**orf.prepare_passthrough(body), "model": "gpt-5.1"}  # only the model is rewritten


def test_codex_request_to_another_format_keeps_reasoning_only_for_openai() -> None:
    # formats.md case 73 (request half): the developer prompt, calls and results survive the IR
    req = orf.parse_request(codex_request())
    calls = [p for m in req.messages for p in m.parts if isinstance(p, ToolCallPart)]
    results = [p for m in req.messages for p in m.parts if isinstance(p, ToolResultPart)]
    assert [c.id for c in calls] == [r.call_id for r in results]
    assert calls[1].kind == "custom"
    assert results[1].kind == "custom"
    thinking = [p for m in req.messages for p in m.parts if isinstance(p, ThinkingPart) and p.signature]
    assert all(
        t.origin is None for t in thinking
    )  # native to Responses: only a Responses upstream keeps them


# ==========================================================================================================
# parse_response (Responses upstream -> IR)
# ==========================================================================================================


def upstream_response(**over: Any) -> dict[str, Any]:
    body = {
        "id": "resp_up1",
        "object": "response",
        "created_at": 1_750_000_000,
        "status": "completed",
        "model": "gpt-5.1-2026",
        "output": [
            {
                "type": "reasoning",
                "id": "rs_u1",
                "summary": [{"type": "summary_text", "text": "S1"}, {"type": "summary_text", "text": "S2"}],
                "encrypted_content": "gAAAAABup",
            },
            {
                "type": "message",
                "id": "msg_u1",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {
                        "type": "output_text",
                        "text": "See X.",
                        "annotations": [
                            {
                                "type": "url_citation",
                                "url": "https://x",
                                "title": "x",
                                "start_index": 4,
                                "end_index": 5,
                            }
                        ],
                    },
                    {"type": "refusal", "refusal": "not that"},
                ],
            },
            {
                "type": "function_call",
                "id": "fc_u1",
                "call_id": "call_u1",
                "name": "w",
                "arguments": '{"c":"a"}',
                "status": "completed",
            },
            {
                "type": "custom_tool_call",
                "id": "ctc_u1",
                "call_id": "call_u2",
                "name": "apply_patch",
                "input": "*** Begin Patch",
            },
            {
                "type": "web_search_call",
                "id": "ws_1",
                "status": "completed",
                "action": {"type": "search", "query": "q"},
            },
        ],
        "usage": {
            "input_tokens": 1050,
            "input_tokens_details": {"cached_tokens": 900},
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": 12},
            "total_tokens": 1080,
        },
    }
    body.update(over)
    return body


def test_response_output_items_become_ir_parts() -> None:
    ctx = ctx_for("anthropic", OR, provider="openai")
    resp = orf.parse_response(upstream_response(), ctx)
    assert resp.id == "resp_up1"
    assert resp.model == "gpt-5.1-2026"
    assert resp.created == 1_750_000_000
    thinking, text, refusal, call, custom, opaque = resp.parts
    assert thinking == ThinkingPart("S1\n\nS2", "gAAAAABup", origin="openai", item_id="rs_u1")
    assert isinstance(text, TextPart)
    assert text.text == "See X."
    assert text.citations
    assert refusal == RefusalPart("not that")
    assert call == ToolCallPart("call_u1", "w", '{"c":"a"}', item_id="fc_u1")  # the call id, not fc_
    assert custom == ToolCallPart(
        "call_u2", "apply_patch", "*** Begin Patch", kind="custom", item_id="ctc_u1"
    )
    assert opaque == OpaquePart(OR, upstream_response()["output"][4])
    assert resp.stop_reason == "tool_calls"
    assert resp.usage == Usage(input_tokens=1050, output_tokens=30, cached_tokens=900, reasoning_tokens=12)
    assert orf.response_usage(upstream_response()) == resp.usage


@pytest.mark.parametrize(
    ("status", "details", "stop"),
    [
        ("completed", None, "stop"),
        ("incomplete", {"reason": "max_output_tokens"}, "length"),
        ("incomplete", {"reason": "content_filter"}, "content_filter"),
    ],
)
def test_response_status_maps_to_stop_reason(status: str, details: Any, stop: str) -> None:
    body = upstream_response(
        status=status,
        incomplete_details=details,
        output=[{"type": "message", "content": [{"type": "output_text", "text": "hi"}]}],
    )
    assert orf.parse_response(body, ctx_for()).stop_reason == stop


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        (
            {"code": "context_length_exceeded", "message": "Your input exceeds the context window."},
            ContextLengthError,
        ),
        (
            {"code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 9.8s."},
            RateLimitError,
        ),
        ({"code": "insufficient_quota", "message": "You exceeded your current quota."}, QuotaExhaustedError),
        ({"code": "server_error", "message": "boom"}, UpstreamError),
        ({"code": "invalid_prompt", "message": "bad prompt"}, InvalidRequestError),
    ],
)
def test_failed_response_raises_the_matching_gateway_error(
    error: dict[str, str], cls: type[GatewayError]
) -> None:
    with pytest.raises(cls) as info:
        orf.parse_response(upstream_response(status="failed", error=error, output=[]), ctx_for())
    assert info.value.message == error["message"]
    if cls is RateLimitError:
        assert info.value.retry_after == pytest.approx(9.8)


# ==========================================================================================================
# render_response (IR -> Responses client)
# ==========================================================================================================


def test_rendered_response_validates_and_carries_codex_usage_details() -> None:
    # formats.md case 54 (OR half): Anthropic usage {input 100, cache_read 900, cache_creation 50, output 30}
    req = orf.parse_request(codex_request())
    ctx = ctx_for(OR, "anthropic", provider="anthropic", request=req)
    resp = ChatResponse(
        id="msg_01",
        model="claude-sonnet-4-6",
        parts=[
            ThinkingPart("thought", "EqSig", origin="anthropic"),
            TextPart("answer"),
            ToolCallPart("toolu_1", "shell", '{"command":["ls"]}'),
            ToolCallPart("toolu_2", "apply_patch", "*** Begin Patch", kind="custom"),
            ToolCallPart("toolu_3", "multi_agent_v1__wait", "{}"),
        ],
        stop_reason="tool_calls",
        usage=Usage(input_tokens=1050, output_tokens=30, cached_tokens=900, cache_write_tokens=50),
    )
    out = orf.render_response(resp, ctx)
    parsed = Response.model_validate(out)
    assert parsed.id.startswith("resp_")
    assert parsed.status == "completed"
    assert out["usage"] == {
        "input_tokens": 1050,
        "input_tokens_details": {"cached_tokens": 900, "cache_write_tokens": 50},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 1080,
    }
    reasoning, message, call, custom, namespaced = out["output"]
    assert reasoning["id"].startswith("rs_")
    assert reasoning["summary"] == [{"type": "summary_text", "text": "thought"}]
    assert reasoning["encrypted_content"] == tag_signature("EqSig", "anthropic")  # foreign: tagged
    assert message["id"].startswith("msg_")
    assert message["content"][0]["text"] == "answer"
    assert call["id"].startswith("fc_")
    assert call["call_id"] == "toolu_1"
    assert call["status"] == "completed"
    assert custom["type"] == "custom_tool_call"
    assert custom["id"].startswith("ctc_")
    assert custom["input"] == "*** Begin Patch"
    assert (namespaced["namespace"], namespaced["name"]) == ("multi_agent_v1", "wait")
    # the request echo the SDK expects
    assert out["tools"] == codex_request()["tools"]
    assert out["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert out["store"] is False
    assert out["parallel_tool_calls"] is True
    assert out["tool_choice"] == "auto"
    assert out["instructions"] is None  # Codex sent developer items, not instructions


def test_rendered_reasoning_token_is_raw_when_client_and_upstream_are_both_responses() -> None:
    ctx = ctx_for(OR, OR, request=orf.parse_request({"model": "m", "input": "x", "instructions": "be nice"}))
    resp = orf.parse_response(upstream_response(), ctx)
    out = orf.render_response(resp, ctx)
    Response.model_validate(out)
    assert out["output"][0]["encrypted_content"] == "gAAAAABup"
    assert out["output"][0]["id"] == "rs_u1"
    assert out["output"][2]["id"] == "fc_u1"
    assert out["instructions"] == "be nice"
    assert out["output"][1]["content"][0]["annotations"][0]["url"] == "https://x"


def test_redacted_thinking_round_trips_through_a_responses_client() -> None:
    ctx = ctx_for(OR, "anthropic", provider="anthropic")
    resp = ChatResponse(
        id="m",
        model="c",
        parts=[ThinkingPart("", "opaque-data", redacted=True, origin="anthropic"), TextPart("hi")],
    )
    out = orf.render_response(resp, ctx)
    back = orf.parse_request({"model": "m", "input": [{"role": "user", "content": "x"}, out["output"][0]]})
    part = back.messages[1].parts[0]
    assert isinstance(part, ThinkingPart)
    assert (part.signature, part.redacted, part.origin) == ("opaque-data", True, "anthropic")


@pytest.mark.parametrize(
    ("stop", "status", "reason"),
    [
        ("stop", "completed", None),
        ("stop_sequence", "completed", None),
        ("length", "incomplete", "max_output_tokens"),  # formats.md case 59
        ("context_window", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),  # formats.md case 60
    ],
)
def test_stop_reason_maps_to_status(stop: Any, status: str, reason: str | None) -> None:
    resp = ChatResponse(id="x", model="m", parts=[TextPart("t")], stop_reason=stop)
    out = orf.render_response(resp, ctx_for(OR, "gemini"))
    Response.model_validate(out)
    assert out["status"] == status
    assert out["incomplete_details"] == ({"reason": reason} if reason else None)


def test_refusal_becomes_a_refusal_content_part() -> None:
    # formats.md case 63 (OR half)
    resp = ChatResponse(
        id="x", model="m", parts=[RefusalPart("I can't help with that.")], stop_reason="content_filter"
    )
    out = orf.render_response(resp, ctx_for(OR, "anthropic"))
    Response.model_validate(out)
    assert out["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help with that."}]


# ==========================================================================================================
# StreamParser (Responses upstream SSE -> IR)
# ==========================================================================================================


def sse(*events: dict[str, Any], named: bool = True) -> bytes:
    out = b""
    for n, e in enumerate(events):
        data = dumps({**e, "sequence_number": n})
        out += (b"event: " + e["type"].encode() + b"\n" if named else b"") + b"data: " + data + b"\n\n"
    return out


def upstream_stream() -> bytes:
    resp = {"id": "resp_s1", "object": "response", "status": "in_progress", "model": "gpt-5.1", "output": []}
    rs = {"type": "reasoning", "id": "rs_s1", "summary": []}
    msg = {"type": "message", "id": "msg_s1", "role": "assistant", "status": "in_progress", "content": []}
    fc = {
        "type": "function_call",
        "id": "fc_s1",
        "call_id": "call_s1",
        "name": "w",
        "arguments": "",
        "status": "in_progress",
    }
    done_usage = {
        "input_tokens": 120,
        "input_tokens_details": {"cached_tokens": 100},
        "output_tokens": 40,
        "output_tokens_details": {"reasoning_tokens": 20},
        "total_tokens": 160,
    }
    return sse(
        {"type": "response.created", "response": resp},
        {"type": "response.in_progress", "response": resp},
        {"type": "response.output_item.added", "output_index": 0, "item": rs},
        {
            "type": "response.reasoning_summary_part.added",
            "item_id": "rs_s1",
            "output_index": 0,
            "summary_index": 0,
            "part": {"type": "summary_text", "text": ""},
        },
        {
            "type": "response.reasoning_summary_text.delta",
            "item_id": "rs_s1",
            "output_index": 0,
            "summary_index": 0,
            "delta": "First",
        },
        {
            "type": "response.reasoning_summary_text.delta",
            "item_id": "rs_s1",
            "output_index": 0,
            "summary_index": 0,
            "delta": " part",
        },
        {
            "type": "response.reasoning_summary_text.done",
            "item_id": "rs_s1",
            "output_index": 0,
            "summary_index": 0,
            "text": "First part",
        },
        {
            "type": "response.reasoning_summary_part.added",
            "item_id": "rs_s1",
            "output_index": 0,
            "summary_index": 1,
            "part": {"type": "summary_text", "text": ""},
        },
        {
            "type": "response.reasoning_summary_text.delta",
            "item_id": "rs_s1",
            "output_index": 0,
            "summary_index": 1,
            "delta": "Second",
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {
                **rs,
                "summary": [
                    {"type": "summary_text", "text": "First part"},
                    {"type": "summary_text", "text": "Second"},
                ],
                "encrypted_content": "gAAAAABstream",
            },
        },
        {"type": "response.output_item.added", "output_index": 1, "item": msg},
        {
            "type": "response.content_part.added",
            "item_id": "msg_s1",
            "output_index": 1,
            "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []},
        },
        {
            "type": "response.output_text.delta",
            "item_id": "msg_s1",
            "output_index": 1,
            "content_index": 0,
            "delta": "Hel",
            "logprobs": [],
        },
        {
            "type": "response.output_text.delta",
            "item_id": "msg_s1",
            "output_index": 1,
            "content_index": 0,
            "delta": "lo ✓",
            "logprobs": [],
        },
        {
            "type": "response.output_text.done",
            "item_id": "msg_s1",
            "output_index": 1,
            "content_index": 0,
            "text": "Hello ✓",
            "logprobs": [],
        },
        {
            "type": "response.output_item.done",
            "output_index": 1,
            "item": {
                **msg,
                "status": "completed",
                "content": [{"type": "output_text", "text": "Hello ✓", "annotations": []}],
            },
        },
        {"type": "response.output_item.added", "output_index": 2, "item": fc},
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_s1",
            "output_index": 2,
            "delta": '{"c":"a\\',
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_s1",
            "output_index": 2,
            "delta": '"b"}',
        },
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc_s1",
            "output_index": 2,
            "arguments": '{"c":"a\\"b"}',
        },
        {
            "type": "response.output_item.done",
            "output_index": 2,
            "item": {**fc, "arguments": '{"c":"a\\"b"}', "status": "completed"},
        },
        {"type": "response.completed", "response": {**resp, "status": "completed", "usage": done_usage}},
    )


def test_stream_parser_turns_a_responses_stream_into_ir_events() -> None:
    # formats.md case 41: the IR tool id is the call_id, not the fc_ item id; case 50: the token is kept
    events = feed_all(orf.StreamParser(ctx_for("openai-chat", OR, provider="openai")), upstream_stream())
    assert events == [
        StreamStart(id="resp_s1", model="gpt-5.1"),
        ThinkingDelta("First"),
        ThinkingDelta(" part"),
        ThinkingDelta("\n\nSecond"),
        ThinkingSignature("gAAAAABstream", origin="openai"),
        TextDelta("Hel"),
        TextDelta("lo ✓"),
        ToolCallStart(0, "call_s1", "w"),
        ToolCallDelta(0, '{"c":"a\\'),
        ToolCallDelta(0, '"b"}'),
        ToolCallEnd(0),
        UsageUpdate(Usage(input_tokens=120, output_tokens=40, cached_tokens=100, reasoning_tokens=20)),
        Finish("tool_calls"),
    ]


def test_stream_parser_works_without_event_names_and_tolerates_done() -> None:
    data = upstream_stream()
    unnamed = b"".join(
        b"\n".join(line for line in frame.split(b"\n") if not line.startswith(b"event:")) + b"\n\n"
        for frame in data.split(b"\n\n")
        if frame
    )
    ctx = ctx_for(provider="openai")
    assert feed_all(orf.StreamParser(ctx), unnamed + b"data: [DONE]\n\n") == feed_all(
        orf.StreamParser(ctx), data
    )


def test_stream_parser_uses_the_complete_item_when_no_deltas_came() -> None:
    fc = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": ""}
    custom = {
        "type": "custom_tool_call",
        "id": "ctc_1",
        "call_id": "call_2",
        "name": "apply_patch",
        "input": "",
    }
    data = sse(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "response.output_item.added", "output_index": 0, "item": fc},
        {"type": "response.output_item.done", "output_index": 0, "item": {**fc, "arguments": '{"x":1}'}},
        {"type": "response.output_item.added", "output_index": 1, "item": custom},
        {
            "type": "response.custom_tool_call_input.delta",
            "item_id": "ctc_1",
            "output_index": 1,
            "delta": "*** Begin",
        },
        {"type": "response.output_item.done", "output_index": 1, "item": {**custom, "input": "*** Begin"}},
        {
            "type": "response.output_item.done",
            "output_index": 2,
            "item": {"type": "message", "content": [{"type": "output_text", "text": "late"}]},
        },
        {
            "type": "response.incomplete",
            "response": {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
        },
    )
    events = feed_all(orf.StreamParser(ctx_for()), data)
    assert events == [
        StreamStart(id="r", model="m"),
        ToolCallStart(0, "call_1", "f"),
        ToolCallDelta(0, '{"x":1}'),
        ToolCallEnd(0),
        ToolCallStart(1, "call_2", "apply_patch", kind="custom"),
        ToolCallDelta(1, "*** Begin"),
        ToolCallEnd(1),
        TextDelta("late"),
        Finish("length"),  # formats.md case 43: truncation stays visible even with tool calls
    ]


def test_stream_parser_closes_calls_left_open_when_the_stream_breaks() -> None:
    fc = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": ""}
    data = sse(
        {"type": "response.created", "response": {"id": "r", "model": "m"}},
        {"type": "response.output_item.added", "output_index": 0, "item": fc},
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_1",
            "output_index": 0,
            "delta": '{"x',
        },
    )
    events = feed_all(orf.StreamParser(ctx_for()), data)
    assert events[-1] == ToolCallEnd(0)


@pytest.mark.parametrize(
    ("event", "cls", "retry"),
    [
        (
            {
                "type": "response.failed",
                "response": {
                    "status": "failed",
                    "error": {
                        "code": "context_length_exceeded",
                        "message": "Your input exceeds the context window of this model.",
                    },
                },
            },
            ContextLengthError,
            None,
        ),
        (
            {
                "type": "response.failed",
                "response": {
                    "status": "failed",
                    "error": {
                        "code": "rate_limit_exceeded",
                        "message": "Rate limit reached for gpt-5.1. Please try again in 1.5s.",
                    },
                },
            },
            RateLimitError,
            1.5,
        ),
        (
            {
                "type": "response.failed",
                "response": {
                    "status": "failed",
                    "error": {"code": "insufficient_quota", "message": "You exceeded your current quota."},
                },
            },
            QuotaExhaustedError,
            None,
        ),
        (
            {"type": "error", "code": "server_error", "message": "The server had an error", "param": None},
            UpstreamError,
            None,
        ),
        (
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                    "message": "too long",
                },
            },
            ContextLengthError,
            None,
        ),
        ({"type": "response.failed", "response": {"status": "failed", "error": None}}, UpstreamError, None),
    ],
)
def test_stream_parser_raises_in_band_failures(
    event: dict[str, Any], cls: type[GatewayError], retry: float | None
) -> None:
    # formats.md case 69: Codex-style codes become the matching typed errors
    parser = orf.StreamParser(ctx_for())
    parser.feed(
        SSEEvent(
            dumps({"type": "response.created", "response": {"id": "r", "model": "m"}}), "response.created"
        )
    )
    with pytest.raises(cls) as info:
        parser.feed(SSEEvent(dumps(event), event["type"]))
    assert info.value.retry_after == retry


def test_stream_parser_rejects_non_json_data_as_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        orf.StreamParser(ctx_for()).feed(
            SSEEvent(b'{"type":"response.output_text.delta","delta":"unterminated')
        )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=25))
def test_stream_parsing_does_not_depend_on_how_bytes_are_split(splits: list[int]) -> None:
    data = upstream_stream()
    ctx = ctx_for(provider="openai")
    assert feed_all(orf.StreamParser(ctx), data, splits) == feed_all(orf.StreamParser(ctx), data)


# ==========================================================================================================
# StreamRenderer (IR -> Responses SSE for the client)
# ==========================================================================================================


def test_stream_renderer_emits_the_grammar_codex_reads() -> None:
    # formats.md cases 42 and 73: complete items in output_item.done, completed with usage details
    req = orf.parse_request(codex_request())
    ctx = ctx_for(OR, "anthropic", provider="anthropic", request=req)
    events: list[StreamEvent] = [
        StreamStart("msg_1", "claude-sonnet-4-6", usage=Usage(input_tokens=1050, cached_tokens=900)),
        ThinkingDelta("Let me "),
        ThinkingDelta("look."),
        ThinkingSignature("EqSig", origin="anthropic"),
        TextDelta("Running "),
        TextDelta("tests."),
        ToolCallStart(0, "toolu_1", "shell"),
        ToolCallDelta(0, '{"command":'),
        ToolCallDelta(0, '["pytest"]}'),
        ToolCallEnd(0),
        ToolCallStart(1, "toolu_2", "apply_patch", kind="custom"),
        ToolCallDelta(1, "*** Begin Patch\n"),
        ToolCallDelta(1, "*** End Patch"),
        ToolCallEnd(1),
        Finish("tool_calls"),
        UsageUpdate(Usage(input_tokens=1050, output_tokens=30, cached_tokens=900, reasoning_tokens=10)),
    ]
    frames = check_stream(render_events(ctx, events))
    kinds = [f["type"] for f in frames]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.output_item.done",
        "response.completed",
    ]
    items = [f["item"] for f in frames if f["type"] == "response.output_item.done"]
    assert items[0]["encrypted_content"] == tag_signature("EqSig", "anthropic")
    assert items[0]["summary"] == [{"type": "summary_text", "text": "Let me look."}]
    assert items[1]["content"][0]["text"] == "Running tests."
    assert items[2] == {
        "id": items[2]["id"],
        "type": "function_call",
        "status": "completed",
        "call_id": "toolu_1",
        "name": "shell",
        "arguments": '{"command":["pytest"]}',
    }
    assert items[3]["input"] == "*** Begin Patch\n*** End Patch"
    added_call = next(
        f
        for f in frames
        if f["type"] == "response.output_item.added" and f["item"]["type"] == "function_call"
    )
    assert (added_call["item"]["call_id"], added_call["item"]["name"], added_call["item"]["arguments"]) == (
        "toolu_1",
        "shell",
        "",
    )
    completed = frames[-1]["response"]
    assert completed["id"] == frames[0]["response"]["id"]
    assert completed["usage"] == {
        "input_tokens": 1050,
        "input_tokens_details": {"cached_tokens": 900, "cache_write_tokens": 0},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 10},
        "total_tokens": 1080,
    }


def test_stream_renderer_reports_truncation_inside_a_tool_call_as_incomplete() -> None:
    # formats.md case 43 (OR half)
    events: list[StreamEvent] = [
        StreamStart("m", "m"),
        ToolCallStart(0, "toolu_1", "write"),
        ToolCallDelta(0, '{"content":"abc'),
        ToolCallEnd(0),
        Finish("length"),
    ]
    frames = check_stream(render_events(ctx_for(OR, "anthropic"), events))
    assert frames[-1]["type"] == "response.incomplete"
    assert frames[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert frames[-1]["response"]["output"][0]["arguments"] == '{"content":"abc'  # not "repaired"


def test_stream_renderer_content_filter_and_refusal() -> None:
    events: list[StreamEvent] = [
        StreamStart("m", "m"),
        TextDelta("Sure, "),
        RefusalDelta("no."),
        Finish("content_filter"),
    ]
    frames = check_stream(render_events(ctx_for(OR, "gemini"), events))
    assert frames[-1]["type"] == "response.incomplete"
    assert frames[-1]["response"]["incomplete_details"] == {"reason": "content_filter"}
    assert frames[-1]["response"]["output"][0]["content"] == [
        {"type": "output_text", "text": "Sure, ", "annotations": [], "logprobs": []},
        {"type": "refusal", "refusal": "no."},
    ]
    assert "response.refusal.done" in [f["type"] for f in frames]


def test_stream_renderer_writes_namespaced_calls_the_way_the_client_declared_them() -> None:
    ctx = ctx_for(OR, "anthropic", request=orf.parse_request(codex_request()))
    events: list[StreamEvent] = [
        StreamStart("m", "m"),
        ToolCallStart(0, "toolu_9", "multi_agent_v1__spawn_agent"),
        ToolCallDelta(0, "{}"),
        ToolCallEnd(0),
    ]
    frames = check_stream(render_events(ctx, events))
    item = frames[-1]["response"]["output"][0]
    assert (item["namespace"], item["name"]) == ("multi_agent_v1", "spawn_agent")


@pytest.mark.parametrize(
    ("error", "code", "retry_text"),
    [
        (
            ContextLengthError("prompt is too long: 300000 tokens > 200000 maximum"),
            "context_length_exceeded",
            False,
        ),
        (RateLimitError("rate limited", retry_after=17), "rate_limit_exceeded", True),
        (QuotaExhaustedError("credit balance is too low"), "insufficient_quota", False),
        (UpstreamError("connection reset"), "server_error", False),
    ],
)
def test_stream_renderer_failure_is_an_error_event_then_response_failed(
    error: GatewayError, code: str, retry_text: bool
) -> None:
    # formats.md cases 69 and 70: Codex classifies response.failed by error.code; no [DONE]
    events: list[StreamEvent] = [
        StreamStart("m", "m"),
        TextDelta("partial"),
        ToolCallStart(0, "c", "f"),
        ToolCallDelta(0, '{"a'),
    ]
    data = render_events(ctx_for(OR, "anthropic"), events, fail=error)
    assert b"[DONE]" not in data
    frames = check_stream(data)
    err_event, failed = frames[-2], frames[-1]
    assert err_event["type"] == "error"
    assert err_event["code"] == code
    assert err_event["param"] is None
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == code
    assert ("try again in 17s" in failed["response"]["error"]["message"]) is retry_text
    # the half-written tool call is not presented as a finished item
    assert [i["type"] for i in failed["response"]["output"]] == ["message"]


def test_stream_renderer_ignores_events_after_the_end() -> None:
    r = orf.StreamRenderer(ctx_for(OR, "anthropic"))
    r.feed(StreamStart("m", "m"))
    assert r.close()
    assert r.close() == b""
    assert r.feed(TextDelta("late")) == b""
    assert r.fail(UpstreamError("x")) == b""


def test_stream_renderer_starts_even_without_stream_start_and_with_nothing_to_say() -> None:
    frames = check_stream(orf.StreamRenderer(ctx_for(OR, "gemini")).close())
    assert [f["type"] for f in frames] == ["response.created", "response.in_progress", "response.completed"]
    assert frames[-1]["response"]["usage"]["total_tokens"] == 0


def test_stream_renderer_passes_opaque_responses_items_and_redacted_thinking() -> None:
    ctx = ctx_for(OR, "anthropic", provider="anthropic")
    events: list[StreamEvent] = [
        StreamStart("m", "m"),
        RedactedThinking("opaque", origin="anthropic"),
        OpaqueBlock(
            OR,
            {
                "type": "web_search_call",
                "id": "ws_1",
                "status": "completed",
                "action": {"type": "search", "query": "q"},
            },
        ),
        OpaqueBlock("anthropic", {"type": "server_tool_use", "id": "srvtoolu_1"}),
        TextDelta("done"),
    ]
    frames = check_stream(render_events(ctx, events))
    output = frames[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["reasoning", "web_search_call", "message"]
    assert output[0]["encrypted_content"] == tag_signature("redacted:opaque", "anthropic")


# -- hypothesis: any grammar-valid IR stream renders to a valid Responses stream ----------------------------

_text = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12)


@st.composite
def ir_streams(draw: st.DrawFn) -> list[StreamEvent]:
    events: list[StreamEvent] = [StreamStart("up_1", "model-x")]
    calls = 0
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        kind = draw(
            st.sampled_from(["text", "refusal", "thinking", "signature", "call", "custom", "usage", "opaque"])
        )
        if kind == "text":
            events.extend(TextDelta(t) for t in draw(st.lists(_text, min_size=1, max_size=3)))
        elif kind == "refusal":
            events.extend(RefusalDelta(t) for t in draw(st.lists(_text, min_size=1, max_size=2)))
        elif kind == "thinking":
            events.extend(ThinkingDelta(t) for t in draw(st.lists(_text, min_size=1, max_size=3)))
            if draw(st.booleans()):
                events.append(ThinkingSignature(draw(_text), origin="up"))
        elif kind == "signature":
            events.append(ThinkingSignature(draw(_text), origin="up"))
        elif kind in ("call", "custom"):
            events.append(
                ToolCallStart(
                    calls, f"call_{calls}", f"tool{calls}", kind="custom" if kind == "custom" else "function"
                )
            )
            events.extend(ToolCallDelta(calls, t) for t in draw(st.lists(_text, max_size=3)))
            events.append(ToolCallEnd(calls))
            calls += 1
        elif kind == "usage":
            events.append(
                UsageUpdate(
                    Usage(input_tokens=draw(st.integers(0, 10**6)), output_tokens=draw(st.integers(0, 10**6)))
                )
            )
        else:
            events.append(
                OpaqueBlock(
                    OR,
                    {
                        "type": "web_search_call",
                        "id": f"ws_{len(events)}",
                        "status": "completed",
                        "action": {"type": "search", "query": "q"},
                    },
                )
            )
    if draw(st.booleans()):
        events.append(
            Finish(
                draw(
                    st.sampled_from(
                        ["stop", "length", "tool_calls", "content_filter", "stop_sequence", "pause"]
                    )
                )
            )
        )
    return events


def _accumulate(events: list[StreamEvent]) -> list[tuple[str, str]]:
    acc = StreamAccumulator()
    for e in events:
        acc.feed(e)
    summary = []
    for p in acc.result().parts:
        if isinstance(p, TextPart):
            summary.append(("text", p.text))
        elif isinstance(p, RefusalPart):
            summary.append(("refusal", p.text))
        elif isinstance(p, ThinkingPart):
            summary.append(("thinking", f"{p.text}|{p.signature}"))
        elif isinstance(p, ToolCallPart):
            summary.append((p.kind, f"{p.id}|{p.name}|{p.arguments}"))
        elif isinstance(p, OpaquePart):
            summary.append(("opaque", p.data["type"]))
    return summary


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ir_streams(), st.sampled_from([None, "rate", "context"]))
def test_any_ir_stream_renders_to_a_valid_responses_stream(
    events: list[StreamEvent], failure: str | None
) -> None:
    error = {
        None: None,
        "rate": RateLimitError("slow down", retry_after=2.5),
        "context": ContextLengthError("too long"),
    }[failure]
    ctx = ctx_for(OR, OR, provider="up")
    frames = check_stream(render_events(ctx, events, fail=error))
    assert [f["sequence_number"] for f in frames] == list(range(len(frames)))
    if error is None:
        # Reading our own stream back gives the same content (text merged per run, tokens raw).
        back = feed_all(orf.StreamParser(ctx_for(provider="up")), render_events(ctx, events))
        assert _accumulate(back) == _accumulate(events)


# ==========================================================================================================
# hypothesis: parse -> render identity for Responses requests
# ==========================================================================================================

_id = st.text(alphabet="abcdef0123456789", min_size=4, max_size=8)
_tool_name = st.text(alphabet="abcdefghij_", min_size=1, max_size=8).map(lambda s: "t_" + s)


def _message(role: str, part_type: str) -> st.SearchStrategy[dict[str, Any]]:
    parts = st.lists(_text.map(lambda t: {"type": part_type, "text": t}), min_size=1, max_size=3)
    return parts.map(lambda ps: {"type": "message", "role": role, "content": ps})


_user_message = st.lists(
    st.one_of(
        _text.map(lambda t: {"type": "input_text", "text": t}),
        st.sampled_from(["auto", "low", "high"]).map(
            lambda d: {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}", "detail": d}
        ),
        st.just({"type": "input_image", "image_url": "https://example.com/x.png", "detail": "auto"}),
        st.just({"type": "input_file", "file_id": "file-1"}),
    ),
    min_size=1,
    max_size=3,
).map(lambda ps: {"type": "message", "role": "user", "content": ps})


@st.composite
def _call(draw: st.DrawFn) -> dict[str, Any]:
    custom = draw(st.booleans())
    item: dict[str, Any] = {
        "type": "custom_tool_call" if custom else "function_call",
        "call_id": "call_" + draw(_id),
        "name": draw(_tool_name),
    }
    item["input" if custom else "arguments"] = draw(st.text(max_size=20))
    if draw(st.booleans()):
        item["id"] = ("ctc_" if custom else "fc_") + draw(_id)
    if not custom and draw(st.booleans()):
        item["namespace"] = "ns1"
    return item


@st.composite
def _output(draw: st.DrawFn) -> dict[str, Any]:
    custom = draw(st.booleans())
    output: Any = draw(
        st.one_of(
            st.text(max_size=20),
            st.lists(_text.map(lambda t: {"type": "input_text", "text": t}), min_size=2, max_size=3),
        )
    )
    return {
        "type": "custom_tool_call_output" if custom else "function_call_output",
        "call_id": "call_" + draw(_id),
        "output": output,
    }


@st.composite
def _reasoning(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "reasoning",
        "summary": draw(
            st.lists(st.text(max_size=10).map(lambda t: {"type": "summary_text", "text": t}), max_size=3)
        ),
    }
    has_id, has_token = draw(st.sampled_from([(True, False), (False, True), (True, True)]))
    if has_id:
        item["id"] = "rs_" + draw(_id)
    if has_token:
        item["encrypted_content"] = "gAAAA" + draw(_id)
    if draw(st.booleans()):
        item["content"] = [{"type": "reasoning_text", "text": draw(_text)}]
    return item


_later_item = st.one_of(
    _user_message,
    _message("assistant", "output_text"),
    _message("developer", "input_text"),
    _call(),
    _output(),
    _reasoning(),
    st.just({"type": "web_search_call", "id": "ws_1", "status": "completed"}),
    st.just({"type": "item_reference", "id": "msg_1"}),
)

_tool = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("function"), "name": _tool_name},
        optional={
            "description": _text,
            "parameters": st.just({"type": "object", "properties": {"a": {"type": "string"}}}),
            "strict": st.booleans(),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("custom"), "name": _tool_name},
        optional={
            "description": _text,
            "format": st.just({"type": "grammar", "syntax": "regex", "definition": "[a-z]+"}),
        },
    ),
    st.just(
        {
            "type": "namespace",
            "name": "ns1",
            "description": "d",
            "tools": [{"type": "function", "name": "m1"}, {"type": "function", "name": "m2"}],
        }
    ),
    st.just({"type": "web_search", "external_web_access": False}),
)


@st.composite
def responses_requests(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-5.1"}
    if draw(st.booleans()):
        body["instructions"] = draw(_text)
    leading = draw(
        st.lists(st.one_of(_message("developer", "input_text"), _message("system", "input_text")), max_size=2)
    )
    later = draw(st.lists(_later_item, max_size=8))
    if later and later[0].get("role") in ("developer", "system"):
        later = later[1:]
    body["input"] = leading + later
    for n, item in enumerate(
        body["input"]
    ):  # item ids and reasoning tokens are unique in a real conversation
        if "id" in item and item["type"] in ("reasoning", "function_call", "custom_tool_call"):
            item["id"] = f"{item['id'].split('_')[0]}_{n}"
        if "encrypted_content" in item:
            item["encrypted_content"] = f"gAAAA{n}"
    optional: dict[str, st.SearchStrategy[Any]] = {
        "tools": st.lists(_tool, min_size=1, max_size=4, unique_by=lambda t: t.get("name", t["type"])),
        "tool_choice": st.sampled_from(["auto", "none", "required", {"type": "function", "name": "t_x"}]),
        "parallel_tool_calls": st.booleans(),
        "reasoning": st.fixed_dictionaries(
            {},
            optional={
                "effort": st.sampled_from(sorted(orf._EFFORTS)),
                "summary": st.sampled_from(["auto", "concise", "detailed"]),
                "generate_summary": st.just("auto"),
            },
        ),
        "text": st.fixed_dictionaries(
            {},
            optional={
                "format": st.sampled_from(
                    [
                        {"type": "text"},
                        {"type": "json_object"},
                        {"type": "json_schema", "name": "o", "schema": {"type": "object"}, "strict": True},
                    ]
                ),
                "verbosity": st.sampled_from(["low", "high"]),
            },
        ),
        "max_output_tokens": st.integers(1, 100_000),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "store": st.booleans(),
        "include": st.just(["reasoning.encrypted_content"]),
        "previous_response_id": st.just("resp_prev"),
        "prompt_cache_key": _id,
        "user": _id,
        "safety_identifier": _id,
        "metadata": st.dictionaries(_id, _text, max_size=2),
        "stream": st.just(True),
        "truncation": st.sampled_from(["auto", "disabled"]),
        "client_metadata": st.dictionaries(_id, _id, max_size=2),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            body[key] = draw(strategy)
    return body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses_requests())
def test_responses_request_renders_back_to_itself(body: dict[str, Any]) -> None:
    """Responses -> IR -> Responses gives back the body, after the stateless rules when store is off."""
    rendered = orf.render_request(orf.parse_request(body), ctx_for(OR, OR))
    expected = orf.prepare_passthrough({**body, "store": body.get("store", False)})
    assert rendered == expected


# ==========================================================================================================
# usage tap and errors
# ==========================================================================================================


def test_usage_tap_reads_only_the_terminal_event() -> None:
    tap = orf.UsageTap()
    for ev in SSEDecoder().feed(upstream_stream()):
        tap.feed(ev)
    assert tap.usage == Usage(input_tokens=120, output_tokens=40, cached_tokens=100, reasoning_tokens=20)
    unnamed = orf.UsageTap()
    unnamed.feed(
        SSEEvent(
            dumps(
                {
                    "type": "response.incomplete",
                    "response": {"usage": {"input_tokens": 5, "output_tokens": 7}},
                }
            )
        )
    )
    unnamed.feed(SSEEvent(b'{"type":"response.output_text.delta","delta":"x"}'))
    assert unnamed.usage == Usage(input_tokens=5, output_tokens=7)


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "retry"),
    [
        (
            429,
            {
                "error": {
                    "message": "Rate limit reached",
                    "type": "tokens",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            {"retry-after-ms": "1500"},
            RateLimitError,
            1.5,
        ),
        (
            429,
            {
                "error": {
                    "message": "You exceeded your current quota",
                    "type": "insufficient_quota",
                    "param": None,
                    "code": "insufficient_quota",
                }
            },
            {},
            QuotaExhaustedError,
            None,
        ),
        (
            400,
            {
                "error": {
                    "message": "maximum context length is 128000 tokens",
                    "type": "invalid_request_error",
                    "param": "input",
                    "code": "context_length_exceeded",
                }
            },
            {},
            ContextLengthError,
            None,
        ),
        (
            401,
            {
                "error": {
                    "message": "Incorrect API key provided",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            {},
            UpstreamAuthError,
            None,
        ),
        (500, None, {"retry-after": "3"}, UpstreamError, 3.0),
    ],
)
def test_parse_error_maps_openai_errors(
    status: int, body: Any, headers: dict[str, str], cls: type[GatewayError], retry: float | None
) -> None:
    raw = dumps(body) if body is not None else b"<html>bad gateway</html>"
    err = orf.parse_error(status, raw, headers)
    assert type(err) is cls
    assert err.retry_after == retry
    assert err.upstream_status == status
    if body is None:
        assert "bad gateway" in err.message
    elif body["error"].get("param"):
        assert err.param == "input"


def test_render_error_is_an_openai_error_body_codex_can_classify() -> None:
    status, headers, body = orf.render_error(RateLimitError("Too many requests.", retry_after=4.2))
    assert status == 429
    assert headers["retry-after"] == "5"
    assert headers["content-type"] == "application/json"
    err = loads(body)["error"]
    assert err["code"] == "rate_limit_exceeded"
    assert err["type"] == "rate_limit_error"
    assert err["param"] is None
    assert "try again in 4.2s" in err["message"]
    status, _, body = orf.render_error(ContextLengthError("prompt is too long", param="input"))
    assert status == 400
    assert loads(body)["error"] == {
        "message": "prompt is too long",
        "type": "invalid_request_error",
        "param": "input",
        "code": "context_length_exceeded",
    }
    _, _, body = orf.render_error(QuotaExhaustedError("no credit"))
    assert loads(body)["error"]["type"] == "insufficient_quota"
    status, _, body = orf.render_error(UpstreamError("upstream broke"))
    assert status == 502
    assert loads(body)["error"]["type"] == "server_error"

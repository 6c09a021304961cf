"""Gemini generateContent wire format: what a Gemini client sees, and what a Gemini upstream accepts.

Rendered requests are checked against the google-genai SDK's own pydantic models (extra fields
forbidden) and the API's documented rules (no empty text, no empty contents, call/response counts);
rendered responses and stream chunks are validated with GenerateContentResponse.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
from typing import Any

import pytest
from google.genai import types as gtypes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute import (
    ContextLengthError,
    GatewayError,
    InvalidRequestError,
    QuotaExhaustedError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamAuthError,
    dumps,
    loads,
)
from omniroute_providers.formats import gemini as g
from omniroute_providers.formats import get_format
from omniroute_providers.formats.sse import SSEDecoder, SSEEvent
from omniroute_providers.ir import (
    ChatRequest,
    ChatResponse,
    Context,
    FilePart,
    Finish,
    ImagePart,
    Message,
    OpaquePart,
    ReasoningConfig,
    RefusalPart,
    ResponseFormat,
    SignatureCache,
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
    effective_stop_reason,
    response_events,
    tag_signature,
)

SIG = "EqQBCqEBAdHtim9yZXNpZ25hdHVyZQ=="  # looks like a real Gemini signature (base64 protobuf)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PDF = base64.b64encode(b"%PDF-1.4 tiny").decode()


def upstream_ctx(**kw: Any) -> Context:
    """A request going TO a Gemini upstream (provider id "gemini")."""
    kw.setdefault("client_format", "openai-chat")
    kw.setdefault("upstream_format", "gemini")
    kw.setdefault("provider", "gemini")
    return Context(**kw)


def client_ctx(**kw: Any) -> Context:
    """A response going back to a Gemini client."""
    kw.setdefault("client_format", "gemini")
    kw.setdefault("upstream_format", "anthropic")
    kw.setdefault("provider", "anthropic")
    return Context(**kw)


def gemini_ctx(**kw: Any) -> Context:
    kw.setdefault("caps", TargetCaps(thinking_style="level"))
    return Context(client_format="gemini", upstream_format="gemini", provider="gemini", **kw)


def assert_valid_request(body: dict[str, Any]) -> None:
    """What the Gemini API checks before it looks at the prompt."""
    assert body["contents"], "Gemini rejects a request with no contents"
    for content in body["contents"]:
        gtypes.Content.model_validate(content)
        assert content["role"] in ("user", "model")
        assert content["parts"], "empty contents are rejected"
        for part in content["parts"]:
            assert part.get("text") != "", "empty text parts are rejected"
            data_fields = set(part) - {"thoughtSignature", "thought"}
            assert len(data_fields) == 1, f"a part holds exactly one data field: {part}"
    roles = [c["role"] for c in body["contents"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), "consecutive same-role contents are merged"
    assert roles[-1] == "user"
    for i, content in enumerate(body["contents"]):
        calls = [p for p in content["parts"] if "functionCall" in p]
        if calls and i + 1 < len(body["contents"]):
            responses = [p for p in body["contents"][i + 1]["parts"] if "functionResponse" in p]
            assert len(responses) == len(calls), "function response count must equal call count"
    if "systemInstruction" in body:
        gtypes.Content.model_validate(body["systemInstruction"])
    for tool in body.get("tools", ()):
        gtypes.Tool.model_validate(tool)
    if "toolConfig" in body:
        gtypes.ToolConfig.model_validate(body["toolConfig"])
    if "generationConfig" in body:
        gen = gtypes.GenerationConfig.model_validate(body["generationConfig"])
        assert not (gen.response_schema is not None and gen.response_json_schema is not None)
        thinking = body["generationConfig"].get("thinkingConfig", {})
        assert not ("thinkingBudget" in thinking and "thinkingLevel" in thinking), "never both"


def assert_valid_response(body: dict[str, Any]) -> gtypes.GenerateContentResponse:
    return gtypes.GenerateContentResponse.model_validate(body)


# ----------------------------------------------------------------------------------------------------------
# a Gemini CLI request (shape from clients.md): parses, and re-renders without loss to a Gemini upstream
# ----------------------------------------------------------------------------------------------------------

GEMINI_CLI_REQUEST: dict[str, Any] = {
    "contents": [
        {
            "role": "user",
            "parts": [{"text": "<session_context>cwd: /w</session_context>"}, {"text": "list files"}],
        },
        {
            "role": "model",
            "parts": [
                {"text": "Let me look.", "thought": True},
                {
                    "functionCall": {"id": "call-1", "name": "list_directory", "args": {"dir_path": "."}},
                    "thoughtSignature": SIG,
                },
                {"functionCall": {"id": "call-2", "name": "read_file", "args": {"file_path": "a.txt"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "call-1",
                        "name": "list_directory",
                        "response": {"output": "a.txt\nb.txt"},
                    }
                },
                {"functionResponse": {"id": "call-2", "name": "read_file", "response": {"output": "hello"}}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"id": "call-3", "name": "run_shell_command", "args": {"command": "ls"}},
                    "thoughtSignature": g.SKIP_SIGNATURE,
                }
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "call-3",
                        "name": "run_shell_command",
                        "response": {"error": "denied"},
                    }
                }
            ],
        },
    ],
    "systemInstruction": {"role": "user", "parts": [{"text": "You are an interactive CLI agent."}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "list_directory",
                    "description": "Lists a directory.",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"dir_path": {"type": "string", "description": "path"}},
                        "required": ["dir_path"],
                    },
                },
                {
                    "name": "read_file",
                    "description": "Reads a file.",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"file_path": {"type": "string"}, "offset": {"type": "number"}},
                        "required": ["file_path"],
                    },
                },
                {
                    "name": "run_shell_command",
                    "description": "Runs a shell command.",
                    "parametersJsonSchema": {"type": "object", "properties": {"command": {"type": "string"}}},
                },
            ]
        }
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
    "generationConfig": {
        "temperature": 1,
        "topP": 0.95,
        "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "HIGH"},
        "responseMimeType": "application/json",
        "responseJsonSchema": {
            "type": "OBJECT",
            "properties": {
                "reasoning": {"type": "STRING"},
                "model_choice": {"type": "STRING", "enum": ["a", "b"]},
            },
            "required": ["reasoning", "model_choice"],
        },
    },
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
}


def _lower_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def test_gemini_cli_request_rerenders_without_loss() -> None:
    before = copy.deepcopy(GEMINI_CLI_REQUEST)
    req = g.parse_request(GEMINI_CLI_REQUEST)
    assert before == GEMINI_CLI_REQUEST, "parse_request mutated the client's body"
    assert req.model == ""
    body = g.render_request(req, gemini_ctx())
    assert_valid_request(body)
    expected = copy.deepcopy(GEMINI_CLI_REQUEST)
    del expected["systemInstruction"]["role"]  # role is ignored on systemInstruction
    # upper-case JSON Schema types come back lower-case (same meaning; non-Gemini targets need it)
    gen = expected["generationConfig"]
    gen["responseJsonSchema"] = _lower_types(gen["responseJsonSchema"])
    assert body == expected


def test_gemini_cli_request_maps_into_the_ir() -> None:
    req = g.parse_request(GEMINI_CLI_REQUEST)
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "assistant", "tool"]
    assert [p.text for p in req.system] == ["You are an interactive CLI agent."]
    thinking, call1, call2 = req.messages[1].parts
    assert isinstance(thinking, ThinkingPart)
    assert thinking.text == "Let me look."
    assert isinstance(call1, ToolCallPart)
    assert (call1.id, call1.name, call1.arguments, call1.signature) == (
        "call-1",
        "list_directory",
        '{"dir_path":"."}',
        SIG,
    )
    assert isinstance(call2, ToolCallPart)
    assert call2.signature is None
    sentinel_call = req.messages[3].parts[0]
    assert isinstance(sentinel_call, ToolCallPart)
    assert sentinel_call.signature is None, "the bypass sentinel means no signature"
    results = req.messages[2].parts
    assert [(r.call_id, r.name) for r in results if isinstance(r, ToolResultPart)] == [
        ("call-1", "list_directory"),
        ("call-2", "read_file"),
    ]
    error = req.messages[4].parts[0]
    assert isinstance(error, ToolResultPart)
    assert error.is_error
    assert error.content == [TextPart("denied")]
    assert [t.name for t in req.tools] == ["list_directory", "read_file", "run_shell_command"]
    assert req.tool_choice == ToolChoice(mode="auto")
    assert req.reasoning == ReasoningConfig(enabled=True, effort="high", include_thoughts=True)
    assert req.response_format is not None
    assert req.response_format.kind == "json_schema"
    assert req.response_format.schema is not None
    assert req.response_format.schema["properties"]["reasoning"] == {"type": "string"}
    assert req.extras == {"safetySettings": GEMINI_CLI_REQUEST["safetySettings"]}
    assert req.temperature == 1
    assert req.top_p == 0.95


def test_snake_case_request_parses_like_camel_case() -> None:
    camel = {
        "contents": [
            {
                "role": "user",
                "parts": [{"inlineData": {"mimeType": "image/png", "data": PNG}}, {"text": "hi"}],
            },
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": SIG}],
            },
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "ok"}}}]},
        ],
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object"}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        "generationConfig": {
            "maxOutputTokens": 100,
            "stopSequences": ["x"],
            "thinkingConfig": {"thinkingBudget": 512},
        },
    }
    snake = {
        "contents": [
            {
                "role": "user",
                "parts": [{"inline_data": {"mime_type": "image/png", "data": PNG}}, {"text": "hi"}],
            },
            {
                "role": "model",
                "parts": [{"function_call": {"name": "f", "args": {"a": 1}}, "thought_signature": SIG}],
            },
            {"role": "user", "parts": [{"function_response": {"name": "f", "response": {"output": "ok"}}}]},
        ],
        "system_instruction": {"parts": [{"text": "sys"}]},
        "tools": [{"function_declarations": [{"name": "f", "parameters_json_schema": {"type": "object"}}]}],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}},
        "generation_config": {
            "max_output_tokens": 100,
            "stop_sequences": ["x"],
            "thinking_config": {"thinking_budget": 512},
        },
    }
    assert g.parse_request(snake) == g.parse_request(camel)
    req = g.parse_request(snake)
    assert req.extras == {}
    assert req.max_tokens == 100
    assert req.tool_choice == ToolChoice(mode="tool", name="f")
    assert req.reasoning == ReasoningConfig(enabled=True, budget_tokens=512)


# ----------------------------------------------------------------------------------------------------------
# parse_request details
# ----------------------------------------------------------------------------------------------------------


def test_roles_and_system_instruction_map_to_ir_roles() -> None:
    # case 5 (GG -> OC): systemInstruction + user/model -> system/user/assistant
    req = g.parse_request(
        {
            "systemInstruction": {"parts": [{"text": "be brief"}, {"text": ""}]},
            "contents": [
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"text": "hello"}, {"text": ""}]},
                {"parts": [{"text": "no role means user"}]},
            ],
        }
    )
    assert [p.text for p in req.system] == ["be brief"]
    assert [(m.role, m.parts) for m in req.messages] == [
        ("user", [TextPart("hi")]),
        ("assistant", [TextPart("hello")]),
        ("user", [TextPart("no role means user")]),
    ]


def test_signatures_on_text_and_empty_parts_become_signature_only_thinking() -> None:
    tagged = tag_signature("claude-sig", "anthropic")
    req = g.parse_request(
        {
            "contents": [
                {"role": "user", "parts": [{"text": "q"}]},
                {
                    "role": "model",
                    "parts": [
                        {"text": "answer", "thoughtSignature": SIG},
                        {"text": "", "thought": True, "thoughtSignature": tagged},
                        {"thoughtSignature": g.SKIP_SIGNATURE},
                    ],
                },
                {"role": "user", "parts": [{"text": "next"}]},
            ]
        }
    )
    assert req.messages[1].parts == [
        TextPart("answer"),
        ThinkingPart(signature=SIG),
        ThinkingPart(signature="claude-sig", origin="anthropic"),
    ], "a part holding only the bypass sentinel carries nothing"


def test_base64_tagged_signature_from_a_gemini_client_is_untagged() -> None:
    # the plain tagged form earlier gateway versions put on thought parts still reads back
    part = {
        "text": "hmm",
        "thought": True,
        "thoughtSignature": base64.b64encode(b"omr1.anthropic.claude-sig").decode(),
    }
    req = g.parse_request(
        {"contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [part]}]}
    )
    assert req.messages[1].parts == [ThinkingPart("hmm", signature="claude-sig", origin="anthropic")]


def test_media_parts_map_by_mime_type() -> None:
    req = g.parse_request(
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"inlineData": {"mimeType": "image/png", "data": PNG}},
                        {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
                        {"inlineData": {"mimeType": "audio/mpeg", "data": "AAAA"}},
                        {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://b/cat.jpg"}},
                        {
                            "fileData": {
                                "mimeType": "application/pdf",
                                "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc",
                            }
                        },
                        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                    ],
                }
            ]
        }
    )
    image, pdf, audio, gs, files_api, code = req.messages[0].parts
    assert image == ImagePart(media_type="image/png", data=PNG)
    assert pdf == FilePart(media_type="application/pdf", data=PDF)
    assert (audio.data, audio.format) == ("AAAA", "mp3")  # type: ignore[union-attr]
    assert gs == ImagePart(media_type="image/jpeg", url="gs://b/cat.jpg")
    assert isinstance(files_api, FilePart)
    assert files_api.url is not None
    assert code == OpaquePart("gemini", {"executableCode": {"language": "PYTHON", "code": "print(1)"}})


def test_calls_without_ids_get_deterministic_ids_shared_with_their_responses() -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "weather in two cities"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "time", "args": {}}},
                    {"functionCall": {"name": "weather", "args": {"city": "Rome"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    # responses in a different order than the calls: paired by name, then order
                    {"functionResponse": {"name": "time", "response": {"output": "noon"}}},
                    {"functionResponse": {"name": "weather", "response": {"output": "sunny"}}},
                    {"functionResponse": {"name": "weather", "response": {"output": "rain"}}},
                ],
            },
        ]
    }
    req = g.parse_request(body)
    calls = req.messages[1].parts
    results = req.messages[2].parts
    assert all(isinstance(c, ToolCallPart) for c in calls)
    ids = [c.id for c in calls]  # type: ignore[union-attr]
    assert len(set(ids)) == 3
    assert all(i.startswith("call_") for i in ids)
    assert [r.call_id for r in results] == [ids[1], ids[0], ids[2]]  # type: ignore[union-attr]
    assert g.parse_request(body) == req, "the same history must give the same ids on every turn"


def test_function_response_shapes() -> None:
    req = g.parse_request(
        {
            "contents": [
                {"role": "model", "parts": [{"functionCall": {"id": "a", "name": "f", "args": {}}}]},
                {
                    "role": "user",
                    "parts": [
                        {
                            "functionResponse": {
                                "id": "a",
                                "name": "f",
                                "response": {"temperature": 20},
                                "parts": [{"inlineData": {"mimeType": "image/png", "data": PNG}}],
                            }
                        },
                        {"text": "and also this"},
                    ],
                },
            ]
        }
    )
    result = req.messages[1].parts[0]
    assert isinstance(result, ToolResultPart)
    assert result.content == [TextPart('{"temperature":20}'), ImagePart(media_type="image/png", data=PNG)]
    assert req.messages[2] == Message(role="user", parts=[TextPart("and also this")])


def test_tools_tool_config_and_generation_config() -> None:
    req = g.parse_request(
        {
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "f",
                            "description": "d",
                            "parameters": {
                                "type": "OBJECT",
                                "properties": {"a": {"type": "STRING", "nullable": True}},
                            },
                        }
                    ]
                },
                {"googleSearch": {}},
                {"code_execution": {}},
            ],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f", "g"]}},
            "generationConfig": {
                "temperature": 0.3,
                "topP": 0.9,
                "topK": 40,
                "candidateCount": 2,
                "maxOutputTokens": "256",
                "stopSequences": ["END"],
                "seed": 7,
                "presencePenalty": 0.1,
                "frequencyPenalty": 0.2,
                "responseMimeType": "application/json",
                "responseModalities": ["TEXT"],
                "thinkingConfig": {"thinkingBudget": 0},
            },
            "cachedContent": "cachedContents/abc",
        }
    )
    assert req.tools[0] == ToolSpec(
        name="f",
        description="d",
        parameters={"type": "object", "properties": {"a": {"type": ["string", "null"]}}},
    )
    assert req.tools[1] == ToolSpec(
        name="googleSearch", kind="builtin", raw={"googleSearch": {}}, raw_format="gemini"
    )
    assert req.tools[2].raw == {"code_execution": {}}
    assert req.tool_choice == ToolChoice(mode="required", allowed=["f", "g"])
    assert (req.temperature, req.top_p, req.top_k, req.n, req.max_tokens) == (0.3, 0.9, 40, 2, 256)
    assert (req.stop, req.seed, req.presence_penalty, req.frequency_penalty) == (["END"], 7, 0.1, 0.2)
    assert req.response_format == ResponseFormat(kind="json_object")
    assert req.reasoning == ReasoningConfig(enabled=False, budget_tokens=0)
    assert req.extras == {
        "cachedContent": "cachedContents/abc",
        "generationConfig": {"responseModalities": ["TEXT"]},
    }


@pytest.mark.parametrize(
    ("mode", "names", "expected"),
    [
        ("NONE", None, ToolChoice(mode="none")),
        ("AUTO", None, ToolChoice(mode="auto")),
        ("AUTO", ["f"], ToolChoice(mode="auto", allowed=["f"])),
        ("ANY", None, ToolChoice(mode="required")),
        ("ANY", ["f"], ToolChoice(mode="tool", name="f")),
        ("VALIDATED", None, ToolChoice(mode="auto")),
        ("SOMETHING_NEW", None, ToolChoice(mode="auto")),
    ],
)
def test_function_calling_modes(mode: str, names: list[str] | None, expected: ToolChoice) -> None:
    cfg: dict[str, Any] = {"mode": mode}
    if names is not None:
        cfg["allowedFunctionNames"] = names
    req = g.parse_request({"contents": [], "toolConfig": {"functionCallingConfig": cfg}})
    assert req.tool_choice == expected


@pytest.mark.parametrize(
    "body",
    [
        {"contents": {"role": "user"}},
        {"contents": ["hello"]},
        {"contents": [{"role": "user", "parts": "hello"}]},
        {"contents": [{"role": "user", "parts": [{"text": 5}]}]},
        {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
        {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": [1]}}]}]},
        {"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]},
        {"contents": [], "generationConfig": {"temperature": "hot"}},
        {"contents": [], "generationConfig": {"maxOutputTokens": 1.5}},
        {"contents": [], "tools": [{"functionDeclarations": [{"name": "f", "parameters": "x"}]}]},
    ],
)
def test_malformed_requests_raise_invalid_request(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        g.parse_request(body)


def test_count_tokens_request_shapes() -> None:
    plain = g.parse_count_tokens_request({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    wrapped = g.parse_count_tokens_request(
        {
            "generateContentRequest": {
                "model": "models/x",
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            }
        }
    )
    assert plain.messages == wrapped.messages == [Message(role="user", parts=[TextPart("hi")])]
    assert wrapped.extras == {}
    assert g.render_count_tokens(12) == {"totalTokens": 12}


# ----------------------------------------------------------------------------------------------------------
# render_request (IR from another client format -> Gemini upstream)
# ----------------------------------------------------------------------------------------------------------


def oc_request(**kw: Any) -> ChatRequest:
    kw.setdefault("model", "gemini-2.5-pro")
    kw.setdefault("source_format", "openai-chat")
    return ChatRequest(**kw)


def test_consecutive_users_merge_and_empty_assistant_vanishes() -> None:
    # case 6
    req = oc_request(
        messages=[
            Message("user", [TextPart("one")]),
            Message("user", [TextPart("two"), TextPart("")]),
            Message("assistant", [TextPart("")]),
            Message("user", [TextPart("three")]),
        ]
    )
    body = g.render_request(req, upstream_ctx())
    assert_valid_request(body)
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}, {"text": "three"}]}
    ]


def test_trailing_assistant_prefill_is_dropped() -> None:
    # case 7: Gemini cannot continue a model turn
    req = oc_request(messages=[Message("user", [TextPart("hi")]), Message("assistant", [TextPart("Sure, ")])])
    body = g.render_request(req, upstream_ctx())
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_system_mid_conversation_becomes_user_text_and_system_as_user_cap() -> None:
    req = oc_request(
        system=[TextPart("top")],
        messages=[
            Message("user", [TextPart("a")]),
            Message("assistant", [TextPart("b")]),
            Message("system", [TextPart("reminder")]),
            Message("user", [TextPart("c")]),
        ],
    )
    body = g.render_request(req, upstream_ctx())
    assert body["systemInstruction"] == {"parts": [{"text": "top"}]}
    assert body["contents"][-1] == {"role": "user", "parts": [{"text": "reminder"}, {"text": "c"}]}
    gemma = g.render_request(req, upstream_ctx(caps=TargetCaps(system_as_user=True)))
    assert "systemInstruction" not in gemma
    assert gemma["contents"][0] == {"role": "user", "parts": [{"text": "top"}, {"text": "a"}]}


def test_images_inline_data_urls_and_gcs_but_refuse_unfetched_http() -> None:
    # case 10
    req = oc_request(
        messages=[
            Message(
                "user",
                [
                    ImagePart(url=f"data:image/png;base64,{PNG}", detail="high"),
                    ImagePart(data=PNG),
                    ImagePart(url="gs://bucket/x.jpg", media_type="image/jpeg"),
                ],
            )
        ]
    )
    body = g.render_request(req, upstream_ctx())
    assert_valid_request(body)
    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/x.jpg"}},
    ]
    remote = oc_request(messages=[Message("user", [ImagePart(url="https://example.com/cat.png")])])
    with pytest.raises(InvalidRequestError, match="inline"):
        g.render_request(remote, upstream_ctx())


def test_pdf_becomes_inline_pdf_and_detail_is_dropped() -> None:
    # case 12 (OR -> GG)
    req = oc_request(
        source_format="openai-responses",
        messages=[
            Message(
                "user",
                [
                    FilePart(media_type="application/pdf", data=PDF, filename="a.pdf"),
                    FilePart(url=f"data:application/pdf;base64,{PDF}"),
                    ImagePart(media_type="image/png", data=PNG, detail="high"),
                ],
            )
        ],
    )
    parts = g.render_request(req, upstream_ctx())["contents"][0]["parts"]
    assert parts == [
        {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
        {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
    ]


TRICKY_PARAMS = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "mode": {"const": "fast"},
        "limit": {"type": ["integer", "null"]},
        "target": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["url"],
    "strict": True,
}


def test_tool_schema_goes_as_cleaned_parameters_json_schema_by_default() -> None:
    # case 14
    req = oc_request(
        messages=[Message("user", [TextPart("go")])],
        tools=[ToolSpec(name="fetch", description="Fetch a URL", parameters=TRICKY_PARAMS, strict=True)],
    )
    body = g.render_request(req, upstream_ctx())
    assert_valid_request(body)
    decl = body["tools"][0]["functionDeclarations"][0]
    assert decl["name"] == "fetch"
    schema = decl["parametersJsonSchema"]
    assert "$schema" not in schema
    assert "strict" not in schema
    assert schema["properties"]["limit"] == {"type": ["integer", "null"]}


def test_tool_schema_goes_as_openapi_parameters_when_the_target_needs_it() -> None:
    req = oc_request(
        messages=[Message("user", [TextPart("go")])],
        tools=[ToolSpec(name="fetch", parameters=TRICKY_PARAMS)],
    )
    body = g.render_request(req, upstream_ctx(caps=TargetCaps(gemini_schema="openapi")))
    assert_valid_request(body)
    params = body["tools"][0]["functionDeclarations"][0]["parameters"]
    gtypes.Schema.model_validate(params)
    assert params["properties"]["limit"] == {"type": "INTEGER", "nullable": True}
    assert params["properties"]["mode"] == {"type": "STRING", "enum": ["fast"]}


@pytest.mark.parametrize("style", ["json_schema", "openapi"])
def test_tool_with_empty_object_schema_is_a_valid_declaration(style: str) -> None:
    # case 15 (AM -> GG): input_schema {type: object} without properties
    req = oc_request(
        source_format="anthropic",
        messages=[Message("user", [TextPart("go")])],
        tools=[ToolSpec(name="now", description="current time", parameters={"type": "object"})],
    )
    body = g.render_request(req, upstream_ctx(caps=TargetCaps(gemini_schema=style)))
    assert_valid_request(body)
    assert body["tools"][0]["functionDeclarations"] == [{"name": "now", "description": "current time"}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (
            ToolChoice(mode="tool", name="get_weather"),
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
        (ToolChoice(mode="required"), {"mode": "ANY"}),
        (ToolChoice(mode="none"), {"mode": "NONE"}),
        (ToolChoice(mode="auto"), {"mode": "AUTO"}),
        (
            ToolChoice(mode="auto", allowed=["get_weather"]),
            {"mode": "AUTO", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice_becomes_function_calling_config(choice: ToolChoice, expected: dict[str, Any]) -> None:
    # case 20 (AM tool_choice {type: tool, name} -> ANY + allowedFunctionNames)
    req = oc_request(
        source_format="anthropic",
        messages=[Message("user", [TextPart("weather?")])],
        tools=[
            ToolSpec(
                name="get_weather", parameters={"type": "object", "properties": {"c": {"type": "string"}}}
            )
        ],
        tool_choice=choice,
    )
    body = g.render_request(req, upstream_ctx())
    assert_valid_request(body)
    assert body["toolConfig"] == {"functionCallingConfig": expected}


def _parallel_history(results: list[ToolResultPart]) -> ChatRequest:
    return oc_request(
        messages=[
            Message("user", [TextPart("weather in Paris and Rome")]),
            Message(
                "assistant",
                [
                    TextPart(""),
                    ToolCallPart(id="call_a", name="get_weather", arguments='{"city":"Paris"}'),
                    ToolCallPart(id="call_b", name="get_time", arguments='{"city": "Rome"'),  # truncated JSON
                ],
            ),
            Message("tool", results),
        ],
        tools=[ToolSpec(name="get_weather"), ToolSpec(name="get_time")],
    )


def test_parallel_calls_and_results_render_as_one_content_each_with_recovered_names() -> None:
    # case 25: OC tool messages carry only the id; the name comes from the assistant's call
    req = _parallel_history(
        [
            ToolResultPart(call_id="call_a", content=[TextPart('{"temp": 21}')]),
            ToolResultPart(call_id="call_b", content=[TextPart("12:00")]),
        ]
    )
    body = g.render_request(req, upstream_ctx())
    assert_valid_request(body)
    model, user = body["contents"][1], body["contents"][2]
    assert model == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_a"},
                "thoughtSignature": g.SKIP_SIGNATURE,
            },
            {"functionCall": {"name": "get_time", "args": {}, "id": "call_b"}},
        ],
    }
    assert user == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}, "id": "call_a"}},
            {"functionResponse": {"name": "get_time", "response": {"output": "12:00"}, "id": "call_b"}},
        ],
    }


def test_error_result_goes_under_response_error() -> None:
    # case 28 (AM is_error -> GG response.error)
    req = _parallel_history(
        [
            ToolResultPart(call_id="call_a", content=[TextPart("city not found")], is_error=True),
            ToolResultPart(call_id="call_b", content=[]),
        ]
    )
    responses = g.render_request(req, upstream_ctx())["contents"][2]["parts"]
    assert responses[0]["functionResponse"]["response"] == {"error": "city not found"}
    assert responses[1]["functionResponse"]["response"] == {"output": ""}


def test_result_media_goes_under_function_response_parts() -> None:
    # case 29: [text, image] in a 2-call turn -> exactly 2 functionResponse parts, no sibling parts
    req = _parallel_history(
        [
            ToolResultPart(
                call_id="call_a", content=[TextPart("see chart"), ImagePart(media_type="image/png", data=PNG)]
            ),
            ToolResultPart(call_id="call_b", content=[TextPart("ok")]),
        ]
    )
    body = g.render_request(req, upstream_ctx())
    assert_valid_request(body)
    parts = body["contents"][2]["parts"]
    assert len(parts) == 2
    assert all(set(p) == {"functionResponse"} for p in parts)
    assert parts[0]["functionResponse"]["response"] == {"output": "see chart"}
    assert parts[0]["functionResponse"]["parts"] == [{"inlineData": {"mimeType": "image/png", "data": PNG}}]


def test_claude_code_history_sends_no_anthropic_signature_and_a_sentinel_per_turn() -> None:
    # cases 34 and 47: [thinking(sig), text "", tool_use] from Claude Code, two turns
    def turn(call_id: str) -> Message:
        return Message(
            "assistant",
            [
                ThinkingPart("I should list files", signature="ErUBCkYIBxgCKkD..."),
                TextPart(""),
                ToolCallPart(id=call_id, name="Bash", arguments='{"command":"ls"}'),
                ToolCallPart(id=call_id + "x", name="Bash", arguments='{"command":"pwd"}'),
            ],
        )

    def results(call_id: str) -> Message:
        return Message(
            "tool",
            [
                ToolResultPart(call_id=call_id, content=[TextPart("a b")]),
                ToolResultPart(call_id=call_id + "x", content=[TextPart("/w")]),
            ],
        )

    req = oc_request(
        source_format="anthropic",
        messages=[
            Message("user", [TextPart("hi")]),
            turn("toolu_1"),
            results("toolu_1"),
            turn("toolu_2"),
            results("toolu_2"),
        ],
    )
    body = g.render_request(req, upstream_ctx(client_format="anthropic"))
    assert_valid_request(body)
    for model in (body["contents"][1], body["contents"][3]):
        assert [p.get("thoughtSignature") for p in model["parts"]] == [g.SKIP_SIGNATURE, None]
        assert all("functionCall" in p for p in model["parts"]), "thinking text of another origin is dropped"
    assert "ErUBCkYIBxgCKkD" not in dumps(body).decode()


def test_gemini_signature_is_restored_from_the_cache_for_a_client_that_dropped_it() -> None:
    # cases 26, 27, 49: GG -> OC -> GG
    cache = SignatureCache()
    ctx = upstream_ctx(signatures=cache)
    resp = g.parse_response(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": SIG},
                            {"functionCall": {"name": "b", "args": {}}},
                        ],
                    },
                    "finishReason": "STOP",
                }
            ]
        },
        ctx,
    )
    calls = [p for p in resp.parts if isinstance(p, ToolCallPart)]
    assert len(calls) == 2
    assert calls[0].id != calls[1].id
    assert resp.stop_reason == "tool_calls"
    # the OC client keeps only ids, names and arguments
    history = oc_request(
        messages=[
            Message("user", [TextPart("go")]),
            Message("assistant", [ToolCallPart(id=c.id, name=c.name, arguments=c.arguments) for c in calls]),
            Message("tool", [ToolResultPart(call_id=c.id, content=[TextPart("done")]) for c in calls]),
        ]
    )
    body = g.render_request(history, upstream_ctx(signatures=cache))
    assert_valid_request(body)
    model = body["contents"][1]["parts"]
    assert model[0]["thoughtSignature"] == SIG
    assert "thoughtSignature" not in model[1]
    assert [p["functionResponse"]["name"] for p in body["contents"][2]["parts"]] == ["a", "b"]


def test_signature_from_another_gemini_provider_is_not_replayed() -> None:
    req = oc_request(
        messages=[
            Message("user", [TextPart("q")]),
            Message("assistant", [ToolCallPart(id="c", name="f", signature=SIG, origin="vertex")]),
            Message("tool", [ToolResultPart(call_id="c", content=[TextPart("r")])]),
        ]
    )
    parts = g.render_request(req, upstream_ctx(provider="gemini"))["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == g.SKIP_SIGNATURE


@pytest.mark.parametrize(
    ("style", "reasoning", "expected"),
    [
        ("budget", ReasoningConfig(effort="low"), {"thinkingBudget": 1024, "includeThoughts": True}),
        ("budget", ReasoningConfig(effort="minimal"), {"thinkingBudget": 512, "includeThoughts": True}),
        ("budget", ReasoningConfig(effort="medium"), {"thinkingBudget": 8192, "includeThoughts": True}),
        ("budget", ReasoningConfig(effort="high"), {"thinkingBudget": 24576, "includeThoughts": True}),
        ("budget", ReasoningConfig(effort="xhigh"), {"thinkingBudget": 32768, "includeThoughts": True}),
        ("budget", ReasoningConfig(effort="none"), {"thinkingBudget": 0, "includeThoughts": False}),
        (
            "budget",
            ReasoningConfig(enabled=True, budget_tokens=5000),
            {"thinkingBudget": 5000, "includeThoughts": True},
        ),
        ("budget", ReasoningConfig(adaptive=True), {"thinkingBudget": -1, "includeThoughts": True}),
        ("level", ReasoningConfig(effort="low"), {"thinkingLevel": "LOW", "includeThoughts": True}),
        ("level", ReasoningConfig(effort="max"), {"thinkingLevel": "HIGH", "includeThoughts": True}),
        ("level", ReasoningConfig(enabled=False), {"thinkingLevel": "LOW", "includeThoughts": False}),
        (
            "level",
            ReasoningConfig(enabled=True, budget_tokens=10000),
            {"thinkingLevel": "HIGH", "includeThoughts": True},
        ),
        ("none", ReasoningConfig(effort="high"), None),
    ],
)
def test_reasoning_maps_to_one_thinking_knob(
    style: str, reasoning: ReasoningConfig, expected: dict[str, Any] | None
) -> None:
    # case 52
    req = oc_request(messages=[Message("user", [TextPart("think")])], reasoning=reasoning)
    body = g.render_request(req, upstream_ctx(caps=TargetCaps(thinking_style=style)))  # type: ignore[arg-type]
    assert_valid_request(body)
    assert body.get("generationConfig", {}).get("thinkingConfig") == expected


def test_response_format_json_schema_and_json_object() -> None:
    # case 64
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "strict": True,
    }
    req = oc_request(
        messages=[Message("user", [TextPart("json please")])],
        response_format=ResponseFormat(kind="json_schema", schema=schema, name="out", strict=True),
    )
    gen = g.render_request(req, upstream_ctx())["generationConfig"]
    assert gen == {
        "responseMimeType": "application/json",
        "responseJsonSchema": {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        },
    }
    openapi = g.render_request(req, upstream_ctx(caps=TargetCaps(gemini_schema="openapi")))[
        "generationConfig"
    ]
    assert openapi["responseSchema"]["propertyOrdering"] == ["a", "b"]
    assert "responseJsonSchema" not in openapi
    req.response_format = ResponseFormat(kind="json_object")
    assert g.render_request(req, upstream_ctx())["generationConfig"] == {
        "responseMimeType": "application/json"
    }


def test_generation_parameters_stop_limit_and_token_clamp() -> None:
    req = oc_request(
        messages=[Message("user", [TextPart("x")])],
        temperature=0.5,
        top_p=0.9,
        top_k=20,
        n=2,
        seed=1,
        max_tokens=100_000,
        stop=["a", "b", "c", "d", "e", "f"],
        presence_penalty=0.5,
        frequency_penalty=0.1,
        user="u1",
        metadata={"k": "v"},
    )
    body = g.render_request(req, upstream_ctx(caps=TargetCaps(max_output_tokens=65536)))
    assert_valid_request(body)
    assert body["generationConfig"] == {
        "temperature": 0.5,
        "topP": 0.9,
        "topK": 20,
        "candidateCount": 2,
        "seed": 1,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.1,
        "maxOutputTokens": 65536,
        "stopSequences": ["a", "b", "c", "d", "e"],
    }
    assert set(body) == {"contents", "generationConfig"}


def test_extras_return_only_to_a_gemini_upstream_from_a_gemini_client() -> None:
    req = g.parse_request(
        {
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}],
            "generationConfig": {"temperature": 0.1, "responseModalities": ["TEXT", "IMAGE"]},
        }
    )
    same = g.render_request(req, gemini_ctx())
    assert same["safetySettings"] == [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}]
    assert same["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"], "temperature": 0.1}
    req.source_format = "openai-chat"
    other = g.render_request(req, upstream_ctx())
    assert "safetySettings" not in other
    assert other["generationConfig"] == {"temperature": 0.1}


def test_tool_names_are_made_gemini_legal_and_mapped_back() -> None:
    long_name = "mcp__" + "very_long_server_name__" * 4 + "tool"
    req = oc_request(
        source_format="anthropic",
        messages=[
            Message("user", [TextPart("go")]),
            Message("assistant", [ToolCallPart(id="c1", name="my tool/v2", arguments="{}")]),
            Message("tool", [ToolResultPart(call_id="c1", content=[TextPart("ok")])]),
        ],
        tools=[
            ToolSpec(name="my tool/v2"),
            ToolSpec(name="my_tool_v2"),
            ToolSpec(name=long_name),
            ToolSpec(name="ns.read:file"),
        ],
        tool_choice=ToolChoice(mode="tool", name="my tool/v2"),
    )
    ctx = upstream_ctx(client_format="anthropic")
    body = g.render_request(req, ctx)
    assert_valid_request(body)
    names = [d["name"] for d in body["tools"][0]["functionDeclarations"]]
    assert names[0] == "my_tool_v2"
    assert names[1] != names[0], "a client name that collides with a rename stays distinct"
    assert len(names[2]) <= 64
    assert names[3] == "ns.read:file", "dots and colons are legal in Gemini names"
    assert body["contents"][1]["parts"][0]["functionCall"]["name"] == "my_tool_v2"
    assert body["contents"][2]["parts"][0]["functionResponse"]["name"] == "my_tool_v2"
    assert body["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"] == ["my_tool_v2"]
    resp = g.parse_response(
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": names[2], "args": {}}}]}}]}, ctx
    )
    call = resp.parts[0]
    assert isinstance(call, ToolCallPart)
    assert call.name == long_name


def test_custom_tools_are_wrapped_as_one_string_property() -> None:
    req = oc_request(
        source_format="openai-responses",
        messages=[
            Message("user", [TextPart("patch it")]),
            Message(
                "assistant",
                [ToolCallPart(id="c", name="apply_patch", arguments="*** Begin Patch", kind="custom")],
            ),
            Message("tool", [ToolResultPart(call_id="c", content=[TextPart("done")], kind="custom")]),
        ],
        tools=[ToolSpec(name="apply_patch", kind="custom", description="patch")],
    )
    ctx = upstream_ctx(client_format="openai-responses", request=req)
    body = g.render_request(req, ctx)
    assert_valid_request(body)
    decl = body["tools"][0]["functionDeclarations"][0]
    assert decl["parametersJsonSchema"]["required"] == ["input"]
    assert body["contents"][1]["parts"][0]["functionCall"]["args"] == {"input": "*** Begin Patch"}
    resp = g.parse_response(
        {
            "candidates": [
                {"content": {"parts": [{"functionCall": {"name": "apply_patch", "args": {"input": "P"}}}]}}
            ]
        },
        ctx,
    )
    assert resp.parts[0] == ToolCallPart(
        id=resp.parts[0].id, name="apply_patch", arguments="P", kind="custom"
    )  # type: ignore[union-attr]


def test_builtin_tools_go_only_where_they_exist() -> None:
    req = oc_request(
        messages=[Message("user", [TextPart("search")])],
        tools=[
            ToolSpec(
                name="web_search", kind="builtin", raw={"type": "web_search"}, raw_format="openai-responses"
            ),
            ToolSpec(
                name="file_search", kind="builtin", raw={"type": "file_search"}, raw_format="openai-responses"
            ),
            ToolSpec(name="urlContext", kind="builtin", raw={"urlContext": {}}, raw_format="gemini"),
        ],
    )
    assert g.render_request(req, upstream_ctx())["tools"] == [{"googleSearch": {}}, {"urlContext": {}}]


# ----------------------------------------------------------------------------------------------------------
# parse_response (Gemini upstream -> IR)
# ----------------------------------------------------------------------------------------------------------


def test_usage_converts_at_the_edge() -> None:
    # case 56: candidates exclude thoughts; prompt includes the cached part
    meta = {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 600,
        "candidatesTokenCount": 40,
        "thoughtsTokenCount": 60,
        "totalTokenCount": 1100,
    }
    assert g.usage_from_metadata(meta) == Usage(
        input_tokens=1000, output_tokens=100, cached_tokens=600, reasoning_tokens=60
    )
    # the inclusive variant: candidates already count the thoughts (prompt + candidates == total)
    inclusive = {
        "promptTokenCount": 10,
        "candidatesTokenCount": 100,
        "thoughtsTokenCount": 60,
        "totalTokenCount": 110,
    }
    assert g.usage_from_metadata(inclusive).output_tokens == 100
    tool_prompt = {"promptTokenCount": 10, "toolUsePromptTokenCount": 5, "candidatesTokenCount": 1}
    assert g.usage_from_metadata(tool_prompt).input_tokens == 15
    assert g.response_usage({"usageMetadata": meta}) == g.usage_from_metadata(meta)
    assert g.response_usage({}) is None


def test_usage_metadata_round_trips() -> None:
    usage = Usage(input_tokens=1000, output_tokens=100, cached_tokens=600, reasoning_tokens=60)
    meta = g.usage_metadata(usage)
    assert meta == {
        "promptTokenCount": 1000,
        "candidatesTokenCount": 40,
        "totalTokenCount": 1100,
        "thoughtsTokenCount": 60,
        "cachedContentTokenCount": 600,
    }
    assert g.usage_from_metadata(meta) == usage


@pytest.mark.parametrize(
    ("reason", "stop"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),  # case 59
        ("SAFETY", "content_filter"),  # case 60
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("OTHER", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("BRAND_NEW_REASON", "stop"),
    ],
)
def test_finish_reasons(reason: str, stop: str) -> None:
    body = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "partial"}]}, "finishReason": reason}]
    }
    assert g.parse_response(body, upstream_ctx()).stop_reason == stop


def test_filtered_finish_without_content_explains_itself() -> None:
    resp = g.parse_response(
        {"candidates": [{"finishReason": "SAFETY", "finishMessage": "unsafe"}]}, upstream_ctx()
    )
    assert resp.stop_reason == "content_filter"
    assert resp.parts == [TextPart("The response was stopped by Gemini (finishReason SAFETY). unsafe")]
    malformed = g.parse_response(
        {"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL"}]}, upstream_ctx()
    )
    assert malformed.stop_reason == "error"
    assert "MALFORMED_FUNCTION_CALL" in malformed.parts[0].text  # type: ignore[union-attr]


def test_blocked_prompt_is_content_filter_with_reason_not_an_empty_success() -> None:
    # case 60
    resp = g.parse_response(
        {
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        },
        upstream_ctx(),
    )
    assert resp.stop_reason == "content_filter"
    assert resp.parts == [TextPart("The prompt was blocked by Gemini (blockReason PROHIBITED_CONTENT).")]
    assert resp.usage == Usage(input_tokens=7)


def test_response_parts_thoughts_signatures_and_calls() -> None:
    cache = SignatureCache()
    ctx = upstream_ctx(signatures=cache, provider="gemini-main")
    resp = g.parse_response(
        {
            "responseId": "abc",
            "modelVersion": "gemini-3-pro",
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "plan", "thought": True},
                            {"text": "Here", "thoughtSignature": "S1"},
                            {
                                "functionCall": {"id": "fc1", "name": "f", "args": {"a": [1]}},
                                "thoughtSignature": "S2",
                            },
                            {"text": "", "thoughtSignature": "S3"},
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
        },
        ctx,
    )
    assert (resp.id, resp.model) == ("abc", "gemini-3-pro")
    assert resp.parts == [
        ThinkingPart("plan", origin="gemini-main"),
        TextPart("Here"),
        ThinkingPart(signature="S1", origin="gemini-main"),
        ToolCallPart(id="fc1", name="f", arguments='{"a":[1]}', signature="S2", origin="gemini-main"),
        ThinkingPart(signature="S3", origin="gemini-main"),
    ]
    assert resp.stop_reason == "tool_calls"  # case 61: STOP + functionCall
    assert cache.get("fc1") == ("S2", "gemini-main")


# ----------------------------------------------------------------------------------------------------------
# render_response (IR -> Gemini client)
# ----------------------------------------------------------------------------------------------------------


def test_render_response_validates_and_splits_thoughts_out_of_candidates() -> None:
    resp = ChatResponse(
        id="msg_1",
        model="claude-x",
        parts=[
            ThinkingPart("thinking...", signature="claude-sig", origin="anthropic"),
            TextPart("The answer"),
            ToolCallPart(id="toolu_1", name="get_weather", arguments='{"city":"Paris"}'),
        ],
        stop_reason="tool_calls",
        usage=Usage(input_tokens=1050, output_tokens=30, cached_tokens=900, reasoning_tokens=10),
    )
    body = g.render_response(resp, client_ctx(client_model="gemini-alias"))
    parsed = assert_valid_response(body)
    assert parsed.candidates is not None
    assert parsed.candidates[0].finish_reason == gtypes.FinishReason.STOP  # case 61
    assert parsed.text == "The answer"
    assert parsed.function_calls is not None
    assert parsed.function_calls[0].id == "toolu_1"
    assert parsed.function_calls[0].args == {"city": "Paris"}
    assert body["usageMetadata"] == {
        "promptTokenCount": 1050,
        "candidatesTokenCount": 20,
        "totalTokenCount": 1080,
        "thoughtsTokenCount": 10,
        "cachedContentTokenCount": 900,
    }
    assert body["modelVersion"] == "gemini-alias"
    assert body["responseId"] == "msg_1"
    thought, text, call = body["candidates"][0]["content"]["parts"]
    assert thought == {"text": "thinking...", "thought": True}, "Gemini CLI drops thought parts"
    decoded = base64.b64decode(text["thoughtSignature"])
    assert decoded == b'omr1.anthropic.[{"s":"claude-sig","t":"thinking..."}]', "the next part carries it"
    assert "thoughtSignature" not in call


@pytest.mark.parametrize(
    ("stop", "finish"),
    [("stop_sequence", "STOP"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY"), ("error", "OTHER")],
)
def test_render_response_finish_reasons(stop: str, finish: str) -> None:
    # case 62: stop_sequence -> STOP
    resp = ChatResponse(id="r", model="m", parts=[TextPart("x")], stop_reason=stop)  # type: ignore[arg-type]
    body = g.render_response(resp, client_ctx())
    assert_valid_response(body)
    assert body["candidates"][0]["finishReason"] == finish


def test_refusal_is_text_with_safety() -> None:
    resp = ChatResponse(id="r", model="m", parts=[RefusalPart("I can't help with that.")], stop_reason="stop")
    body = g.render_response(resp, client_ctx())
    assert_valid_response(body)
    assert body["candidates"][0]["content"]["parts"] == [{"text": "I can't help with that."}]
    assert body["candidates"][0]["finishReason"] == "SAFETY"


def test_native_gemini_response_round_trips_through_the_ir() -> None:
    native = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "plan", "thought": True},
                        {"text": "Calling.", "thoughtSignature": SIG},
                        {
                            "functionCall": {"id": "x1", "name": "f", "args": {"q": "a"}},
                            "thoughtSignature": SIG,
                        },
                        {"executableCode": {"language": "PYTHON", "code": "1+1"}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 5,
            "candidatesTokenCount": 3,
            "totalTokenCount": 10,
            "thoughtsTokenCount": 2,
        },
        "modelVersion": "gemini-3-flash",
        "responseId": "rid",
    }
    ctx = gemini_ctx(client_model="gemini-3-flash")
    body = g.render_response(g.parse_response(native, ctx), ctx)
    assert_valid_response(body)
    assert body == native


# ----------------------------------------------------------------------------------------------------------
# stream parsing (Gemini upstream SSE -> IR events)
# ----------------------------------------------------------------------------------------------------------


def sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + dumps(c) + b"\r\n\r\n" for c in chunks)


def parse_stream(raw: bytes, ctx: Context, splits: list[int] | None = None) -> list[StreamEvent]:
    decoder = SSEDecoder()
    parser = g.StreamParser(ctx)
    events: list[StreamEvent] = []
    pieces = (
        [raw]
        if splits is None
        else [raw[a:b] for a, b in zip([0, *splits], [*splits, len(raw)], strict=True)]
    )
    for piece in pieces:
        for ev in decoder.feed(piece):
            events.extend(parser.feed(ev))
    for ev in decoder.close():
        events.extend(parser.feed(ev))
    return events + parser.close()


def chunk(
    *parts: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [cand], "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"}
    if usage:
        out["usageMetadata"] = usage
    return out


STREAM = sse(
    chunk({"text": "Let me think", "thought": True}, usage={"promptTokenCount": 9}),
    chunk({"text": "", "thoughtSignature": "SIGT"}),
    chunk({"text": "Hello "}),
    chunk({"text": "world"}),
    chunk(
        {"functionCall": {"name": "a", "args": {"x": 'é"\\'}}, "thoughtSignature": "SIGA"},
        {"functionCall": {"name": "b", "args": {}}},
    ),
    chunk(
        {"text": ""},
        finish="STOP",
        usage={
            "promptTokenCount": 9,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 3,
            "totalTokenCount": 17,
        },
    ),
)


def test_stream_events_follow_the_grammar() -> None:
    # case 39: two functionCall parts in one chunk -> two calls, each start + one full delta + end
    events = parse_stream(STREAM, upstream_ctx(provider="gemini"))
    start = events[0]
    assert start == StreamStart(id="resp-1", model="gemini-2.5-flash")
    body = [e for e in events[1:] if not isinstance(e, UsageUpdate)]
    a_id = body[4].id  # type: ignore[union-attr]
    b_id = body[7].id  # type: ignore[union-attr]
    assert a_id != b_id
    assert body == [
        ThinkingDelta("Let me think"),
        ThinkingSignature("SIGT", "gemini"),
        TextDelta("Hello "),
        TextDelta("world"),
        ToolCallStart(0, a_id, "a"),
        ToolCallDelta(0, '{"x":"é\\"\\\\"}'),
        ToolCallEnd(0, "SIGA", "gemini"),
        ToolCallStart(1, b_id, "b"),
        ToolCallDelta(1, "{}"),
        ToolCallEnd(1, None, None),
        Finish("tool_calls"),
    ]
    assert events[-1] == UsageUpdate(Usage(input_tokens=9, output_tokens=8, reasoning_tokens=3))
    assert isinstance(events[-2], Finish)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_stream_parsing_is_invariant_to_byte_splits(cuts: list[int]) -> None:
    whole = parse_stream(STREAM, upstream_ctx())
    split = parse_stream(STREAM, upstream_ctx(), sorted(cuts))
    strip_ids = [e for e in whole if not isinstance(e, (ToolCallStart, StreamStart))]
    assert [e for e in split if not isinstance(e, (ToolCallStart, StreamStart))] == strip_ids
    assert [(e.index, e.name) for e in split if isinstance(e, ToolCallStart)] == [(0, "a"), (1, "b")]


def test_stream_without_response_id_synthesizes_one_and_max_tokens_is_length() -> None:
    raw = sse({"candidates": [{"content": {"parts": [{"text": "cut"}]}, "finishReason": "MAX_TOKENS"}]})
    ctx = upstream_ctx(upstream_model="gemini-2.5-pro")
    events = parse_stream(raw, ctx)
    assert events == [
        StreamStart(id=ctx.response_id, model="gemini-2.5-pro"),
        TextDelta("cut"),
        Finish("length"),
    ]


def test_stream_blocked_prompt_and_trailing_usage() -> None:
    raw = sse(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}},
    )
    events = parse_stream(raw, upstream_ctx())
    assert events[1:] == [
        TextDelta("The prompt was blocked by Gemini (blockReason SAFETY)."),
        Finish("content_filter"),
        UsageUpdate(Usage(input_tokens=4)),
    ]


def test_stream_usage_only_at_the_end_when_no_finish() -> None:
    events = parse_stream(sse(chunk({"text": "a"}, usage={"promptTokenCount": 3})), upstream_ctx())
    assert events[1:] == [TextDelta("a"), UsageUpdate(Usage(input_tokens=3))]


def test_stream_error_chunk_raises_a_typed_error() -> None:
    raw = sse(
        chunk({"text": "partial"}),
        {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
    )
    with pytest.raises(ServiceUnavailableError, match="overloaded"):
        parse_stream(raw, upstream_ctx())


def test_stream_non_json_event_is_an_upstream_error() -> None:
    parser = g.StreamParser(upstream_ctx())
    with pytest.raises(GatewayError):
        parser.feed(SSEEvent(b"{not json"))


def test_vertex_partial_args_are_assembled_into_one_call() -> None:
    raw = sse(
        chunk({"functionCall": {"name": "get_weather", "willContinue": True}, "thoughtSignature": "SV"}),
        chunk(
            {
                "functionCall": {
                    "partialArgs": [{"jsonPath": "$.location", "stringValue": "San ", "willContinue": True}],
                    "willContinue": True,
                }
            }
        ),
        chunk(
            {
                "functionCall": {
                    "partialArgs": [{"jsonPath": "$.location", "stringValue": "Francisco"}],
                    "willContinue": True,
                }
            }
        ),
        chunk(
            {
                "functionCall": {
                    "partialArgs": [{"jsonPath": "$.days[0]", "numberValue": 3}],
                    "willContinue": True,
                }
            }
        ),
        chunk({"functionCall": {}}, finish="STOP"),
    )
    events = parse_stream(raw, upstream_ctx(provider="vertex"))
    calls = [e for e in events if isinstance(e, (ToolCallStart, ToolCallDelta, ToolCallEnd))]
    assert len(calls) == 3
    assert calls[0].name == "get_weather"  # type: ignore[union-attr]
    assert loads(calls[1].arguments) == {"location": "San Francisco", "days": [3]}  # type: ignore[union-attr]
    assert calls[2] == ToolCallEnd(0, "SV", "vertex")
    assert events[-1] == Finish("tool_calls")


# ----------------------------------------------------------------------------------------------------------
# stream rendering (IR events -> Gemini client)
# ----------------------------------------------------------------------------------------------------------


def render_stream(events: list[StreamEvent], ctx: Context) -> bytes:
    renderer = g.StreamRenderer(ctx)
    return b"".join(renderer.feed(e) for e in events) + renderer.close()


def sse_objects(raw: bytes) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    events = decoder.feed(raw) + decoder.close()
    return [loads(e.data) for e in events]


AM_EVENTS: list[StreamEvent] = [
    StreamStart(id="msg_1", model="claude", usage=Usage(input_tokens=10)),
    ThinkingDelta("hmm"),
    ThinkingSignature("claude-sig", "anthropic"),
    TextDelta("Checking"),
    ToolCallStart(0, "toolu_1", "get_weather"),
    ToolCallDelta(0, '{"ci'),
    ToolCallDelta(0, 'ty": "Par'),
    ToolCallDelta(0, 'is"}'),
    ToolCallEnd(0),
    Finish("tool_calls"),
    UsageUpdate(Usage(input_tokens=10, output_tokens=20)),
]


def test_streamed_tool_use_becomes_one_function_call_part_after_block_stop() -> None:
    # case 40 (S AM -> GG)
    raw = render_stream(AM_EVENTS, client_ctx(client_model="gemini-2.5-pro"))
    assert raw.endswith(b"\n\n")
    chunks = sse_objects(raw)
    for c in chunks:
        assert_valid_response(c)
    parts = [p for c in chunks for p in c["candidates"][0].get("content", {}).get("parts", [])]
    assert parts[0] == {"text": "hmm", "thought": True}
    # the signature (with its thinking text) rides the next non-thought part, which Gemini CLI keeps
    assert parts[1]["text"] == "Checking"
    decoded = base64.b64decode(parts[1]["thoughtSignature"])
    assert decoded == b'omr1.anthropic.[{"s":"claude-sig","t":"hmm"}]'
    assert parts[2] == {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "toolu_1"}}
    assert len(parts) == 3
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"] == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 20,
        "totalTokenCount": 30,
    }
    assert all(c["responseId"] == "msg_1" and c["modelVersion"] == "gemini-2.5-pro" for c in chunks)


def test_json_array_stream_is_one_json_array() -> None:
    ctx = client_ctx(json_array_stream=True)
    assert g.stream_content_type(ctx) == "application/json"
    assert g.stream_content_type(client_ctx()) == g.STREAM_CONTENT_TYPE == "text/event-stream"
    value = loads(render_stream(AM_EVENTS, ctx))
    assert isinstance(value, list)
    assert len(value) == 4
    for c in value:
        assert_valid_response(c)
    empty = g.StreamRenderer(client_ctx(json_array_stream=True))
    assert len(loads(empty.close())) == 1


def test_stream_fail_writes_an_error_frame() -> None:
    renderer = g.StreamRenderer(client_ctx())
    renderer.feed(StreamStart(id="x", model="m"))
    out = renderer.feed(TextDelta("par")) + renderer.fail(RateLimitError("slow down", retry_after=3))
    objs = sse_objects(out)
    assert objs[-1] == {
        "error": {
            "code": 429,
            "message": "slow down",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}],
        }
    }
    assert renderer.close() == b""
    array = g.StreamRenderer(client_ctx(json_array_stream=True))
    data = array.feed(TextDelta("a")) + array.fail(ServiceUnavailableError("gone"))
    assert loads(data)[-1]["error"]["status"] == "UNAVAILABLE"


def test_same_format_stream_keeps_raw_signatures() -> None:
    events = parse_stream(STREAM, gemini_ctx())
    chunks = sse_objects(render_stream(events, gemini_ctx()))
    sigs = [
        p.get("thoughtSignature")
        for c in chunks
        for p in c["candidates"][0].get("content", {}).get("parts", [])
    ]
    assert [s for s in sigs if s] == ["SIGT", "SIGA"]


_text = st.text(min_size=1, max_size=8)
_event_runs = st.lists(
    st.one_of(
        _text.map(TextDelta),
        _text.map(ThinkingDelta),
        st.just("sig"),
        st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2).map(lambda d: ("call", d)),
    ),
    max_size=8,
)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(_event_runs, st.sampled_from(["stop", "length", "tool_calls"]))
def test_stream_render_then_parse_preserves_the_response(runs: list[Any], reason: str) -> None:
    events: list[StreamEvent] = [StreamStart(id="r1", model="m")]
    index = 0
    for item in runs:
        if item == "sig":
            events.append(ThinkingSignature("S" + str(len(events)), "gemini"))
        elif isinstance(item, tuple):
            events += [
                ToolCallStart(index, f"c{index}", "f"),
                ToolCallDelta(index, dumps(item[1]).decode()),
                ToolCallEnd(index),
            ]
            index += 1
        else:
            events.append(item)
    events += [Finish(reason), UsageUpdate(Usage(input_tokens=3, output_tokens=4))]  # type: ignore[arg-type]
    ctx = gemini_ctx()
    raw = render_stream(events, ctx)
    back = parse_stream(raw, gemini_ctx())
    want, got = StreamAccumulator(), StreamAccumulator()
    for e in events:
        want.feed(e)
    for e in back:
        got.feed(e)
    expected, actual = want.result(), got.result()
    for p in expected.parts:  # origin is this provider's id after a parse
        if isinstance(p, (ThinkingPart, ToolCallPart)) and p.signature:
            p.origin = "gemini"
    assert actual.parts == expected.parts
    assert actual.usage == expected.usage
    assert actual.stop_reason == effective_stop_reason(reason, bool(index))  # type: ignore[arg-type]


def test_usage_tap_keeps_only_the_last_usage_and_decodes_lazily() -> None:
    tap = g.UsageTap()
    decoder = SSEDecoder()
    for ev in decoder.feed(STREAM):
        tap.feed(ev)
    tap.feed(SSEEvent(b'{"candidates": []}'))
    assert tap.usage == Usage(input_tokens=9, output_tokens=8, reasoning_tokens=3)
    assert tap.usage == Usage(input_tokens=9, output_tokens=8, reasoning_tokens=3)
    assert g.UsageTap().usage is None


# ----------------------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------------------


def test_rate_limit_with_retry_info_keeps_the_delay() -> None:
    # case 68
    body = dumps(
        [
            {
                "error": {
                    "code": 429,
                    "message": "You exceeded your current quota, please check your plan and billing details.",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"},
                    ],
                }
            }
        ]
    )
    err = g.parse_error(429, body, {})
    assert type(err) is RateLimitError, "a per-minute quota that resets in 17s is a rate limit"
    assert err.retry_after == 17.0
    daily = dumps(
        {
            "error": {
                "code": 429,
                "message": "Quota exceeded for metric: generate_requests_per_day",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "metadata": {"quotaResetDelay": "6h0m0s"},
                    }
                ],
            }
        }
    )
    quota = g.parse_error(429, daily, {})
    assert isinstance(quota, QuotaExhaustedError)
    assert quota.retry_after == 6 * 3600


def test_context_overflow_is_context_length_error() -> None:
    # case 69
    body = dumps(
        {
            "error": {
                "code": 400,
                "message": "The input token count (1200000) exceeds the maximum number of tokens allowed"
                " (1048576).",
                "status": "INVALID_ARGUMENT",
            }
        }
    )
    err = g.parse_error(400, body, {})
    assert isinstance(err, ContextLengthError)
    assert err.code == "context_length_exceeded"


def test_invalid_api_key_is_a_credential_failure_not_a_caller_fault() -> None:
    body = dumps(
        {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
                ],
            }
        }
    )
    err = g.parse_error(400, body, {})
    assert isinstance(err, UpstreamAuthError)
    assert err.failure == "credential"


def test_error_bodies_that_are_not_json() -> None:
    err = g.parse_error(502, b"<html>Bad Gateway</html>", {"retry-after": "5"})
    assert err.status == 502
    assert "Bad Gateway" in err.message
    assert err.retry_after == 5.0
    assert g.parse_error(404, b"", {}).status == 404


@pytest.mark.parametrize(
    ("error", "status", "rpc"),
    [
        (InvalidRequestError("bad"), 400, "INVALID_ARGUMENT"),
        (GatewayError("x", status=401), 401, "UNAUTHENTICATED"),
        (GatewayError("x", status=402), 402, "PERMISSION_DENIED"),
        (GatewayError("x", status=403), 403, "PERMISSION_DENIED"),
        (GatewayError("x", status=404), 404, "NOT_FOUND"),
        (GatewayError("x", status=413), 413, "INVALID_ARGUMENT"),
        (GatewayError("x", status=500), 500, "INTERNAL"),
        (GatewayError("x", status=502), 502, "INTERNAL"),
        (ServiceUnavailableError("overloaded"), 503, "UNAVAILABLE"),
        (ServiceUnavailableError("overloaded", status=529), 503, "UNAVAILABLE"),  # case 66
        (GatewayError("x", status=504), 504, "DEADLINE_EXCEEDED"),
    ],
)
def test_render_error_statuses(error: GatewayError, status: int, rpc: str) -> None:
    code, headers, body = g.render_error(error)
    assert code == status
    assert headers["content-type"] == "application/json"
    assert loads(body) == {"error": {"code": status, "message": error.message, "status": rpc}}


def test_render_error_rate_limit_carries_retry_info_and_header() -> None:
    code, headers, body = g.render_error(RateLimitError("slow", retry_after=16.2))
    assert code == 429
    assert headers["retry-after"] == "17"
    assert loads(body)["error"]["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}
    ]
    # the SDK's error mapping understands the body
    assert g.parse_error(code, body, headers).retry_after == 17.0


# ----------------------------------------------------------------------------------------------------------
# misc
# ----------------------------------------------------------------------------------------------------------


def test_module_implements_the_wire_format_protocol() -> None:
    fmt = get_format("gemini")
    assert fmt.FORMAT_ID == "gemini"
    assert fmt.request_path("gemini-2.5-pro", False) == "/models/gemini-2.5-pro:generateContent"
    assert fmt.request_path("gemini-2.5-pro", True) == "/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    body = {"contents": []}
    assert fmt.prepare_passthrough(body) is body


def test_model_list_shape() -> None:
    out = g.render_model_list([("gemini-2.5-pro", "Gemini 2.5 Pro", 1048576), ("alias", "", None)])
    assert out == {
        "models": [
            {
                "name": "models/gemini-2.5-pro",
                "displayName": "Gemini 2.5 Pro",
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
                "inputTokenLimit": 1048576,
            },
            {
                "name": "models/alias",
                "displayName": "alias",
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
            },
        ]
    }
    for m in out["models"]:  # the SDK calls the methods list supported_actions; the REST API does not
        gtypes.Model.model_validate({k: v for k, v in m.items() if k != "supportedGenerationMethods"})


# ----------------------------------------------------------------------------------------------------------
# properties: parse -> render identity within the format; rendering never raises on valid IR
# ----------------------------------------------------------------------------------------------------------

_words = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)
_args = st.dictionaries(
    st.sampled_from(["a", "b", "path"]), st.one_of(st.integers(), _words, st.booleans()), max_size=3
)
_sigs = st.one_of(st.none(), st.just(g.SKIP_SIGNATURE), st.sampled_from([SIG, "Q0FGRQ==", "c2lnbmF0dXJl"]))


@st.composite
def gemini_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Canonical Gemini requests: alternating turns ending with the user, every call answered, first call
    of a turn signed (or the sentinel), ids present, objects as results."""
    contents: list[dict[str, Any]] = [{"role": "user", "parts": [{"text": draw(_words)}]}]
    n = 0
    for _ in range(draw(st.integers(0, 3))):
        model_parts: list[dict[str, Any]] = []
        if draw(st.booleans()):
            model_parts.append({"text": draw(_words), "thought": True})
        if draw(st.booleans()):
            text_part: dict[str, Any] = {"text": draw(_words)}
            sig = draw(st.sampled_from([None, SIG]))
            if sig:
                text_part["thoughtSignature"] = sig
            model_parts.append(text_part)
        calls = draw(st.integers(0 if model_parts else 1, 3))
        names = [draw(st.sampled_from(["f", "g", "h.x"])) for _ in range(calls)]
        for i, name in enumerate(names):
            part: dict[str, Any] = {"functionCall": {"name": name, "args": draw(_args), "id": f"id{n + i}"}}
            if i == 0:
                part["thoughtSignature"] = draw(st.sampled_from([g.SKIP_SIGNATURE, SIG]))
            model_parts.append(part)
        contents.append({"role": "model", "parts": model_parts})
        user_parts: list[dict[str, Any]] = []
        for i, name in enumerate(names):
            kind = draw(st.sampled_from(["output", "error", "object"]))
            response = (
                {"output": draw(_words)}
                if kind == "output"
                else {"error": draw(_words)}
                if kind == "error"
                else {"value": draw(st.integers())}
            )
            user_parts.append({"functionResponse": {"name": name, "response": response, "id": f"id{n + i}"}})
        n += len(names)
        if not user_parts or draw(st.booleans()):
            user_parts.append({"text": draw(_words)})
        contents.append({"role": "user", "parts": user_parts})
    body: dict[str, Any] = {"contents": contents}
    if draw(st.booleans()):
        body["systemInstruction"] = {"parts": [{"text": draw(_words)}]}
    if draw(st.booleans()):
        body["tools"] = [
            {
                "functionDeclarations": [
                    {
                        "name": "f",
                        "description": "F",
                        "parametersJsonSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
                    },
                    {
                        "name": "g",
                        "parametersJsonSchema": {
                            "type": "object",
                            "properties": {"b": {"type": ["string", "null"]}},
                        },
                    },
                ]
            }
        ]
        body["toolConfig"] = {
            "functionCallingConfig": draw(
                st.sampled_from(
                    [{"mode": "AUTO"}, {"mode": "NONE"}, {"mode": "ANY", "allowedFunctionNames": ["f"]}]
                )
            )
        }
    gen = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "temperature": st.floats(0, 2),
                "topK": st.integers(1, 100),
                "maxOutputTokens": st.integers(1, 10000),
                "stopSequences": st.lists(_words, min_size=1, max_size=5),
                "thinkingConfig": st.sampled_from(
                    [
                        {"thinkingLevel": "HIGH", "includeThoughts": True},
                        {"thinkingLevel": "LOW"},
                        {"includeThoughts": True},
                    ]
                ),
                "responseModalities": st.just(["TEXT"]),
            },
        )
    )
    if gen:
        body["generationConfig"] = gen
    if draw(st.booleans()):
        body["safetySettings"] = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    return body


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(gemini_requests())
def test_request_parse_then_render_is_identity_within_gemini(body: dict[str, Any]) -> None:
    before = copy.deepcopy(body)
    out = g.render_request(g.parse_request(body), gemini_ctx())
    assert body == before
    assert_valid_request(out)
    assert out == body


_ir_parts = st.one_of(
    _words.map(TextPart),
    st.just(TextPart("")),
    st.builds(
        ThinkingPart,
        text=st.one_of(st.just(""), _words),
        signature=_sigs,
        origin=st.sampled_from([None, "gemini", "anthropic"]),
    ),
    st.builds(ImagePart, media_type=st.just("image/png"), data=st.just(PNG)),
    st.builds(RefusalPart, _words),
    st.builds(
        OpaquePart,
        format=st.sampled_from(["gemini", "anthropic"]),
        data=st.just({"executableCode": {"code": "1"}}),
    ),
)


@st.composite
def ir_requests(draw: st.DrawFn) -> ChatRequest:
    messages: list[Message] = []
    call_n = 0
    for _ in range(draw(st.integers(1, 5))):
        role = draw(st.sampled_from(["user", "assistant", "tool", "system"]))
        if role == "tool":
            ids = [f"c{i}" for i in range(call_n)] or ["orphan"]
            parts: list[Any] = [
                ToolResultPart(
                    call_id=draw(st.sampled_from(ids)),
                    content=draw(st.lists(_words.map(TextPart), max_size=2)),
                    is_error=draw(st.booleans()),
                )
            ]
        else:
            parts = draw(st.lists(_ir_parts, max_size=3))
            if role == "assistant":
                for _ in range(draw(st.integers(0, 2))):
                    parts.append(
                        ToolCallPart(
                            id=f"c{call_n}",
                            name=draw(st.sampled_from(["f", "bad name!", "mcp__x__y"])),
                            arguments=draw(st.sampled_from(["{}", '{"a":1}', "not json", "[1]", ""])),
                            signature=draw(_sigs),
                            origin=draw(st.sampled_from([None, "gemini", "other"])),
                        )
                    )
                    call_n += 1
        messages.append(Message(role=role, parts=parts))  # type: ignore[arg-type]
    messages.append(Message("user", [TextPart("end")]))
    return ChatRequest(
        model="m",
        messages=messages,
        system=draw(st.lists(st.one_of(_words.map(TextPart), st.just(TextPart(""))), max_size=2)),
        tools=[
            ToolSpec(
                name="f",
                parameters=draw(
                    st.sampled_from(
                        [
                            None,
                            {"type": "object"},
                            {"type": "object", "properties": {"a": {"type": ["integer", "null"]}}},
                        ]
                    )
                ),
            )
        ],
        reasoning=draw(
            st.one_of(
                st.none(),
                st.builds(
                    ReasoningConfig,
                    effort=st.sampled_from([None, "low", "none", "weird"]),
                    budget_tokens=st.sampled_from([None, -1, 0, 2048]),
                ),
            )
        ),
        source_format=draw(st.sampled_from(["openai-chat", "anthropic", "gemini"])),
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(ir_requests(), st.sampled_from(["budget", "level"]), st.sampled_from(["json_schema", "openapi"]))
def test_rendering_valid_ir_never_raises_and_is_accepted(req: ChatRequest, style: str, schema: str) -> None:
    before = copy.deepcopy(req)
    body = g.render_request(req, upstream_ctx(caps=TargetCaps(thinking_style=style, gemini_schema=schema)))  # type: ignore[arg-type]
    assert req == before, "render_request mutated the IR"
    assert_valid_request(body)
    for content in body["contents"]:
        if content["role"] == "model":
            calls = [p for p in content["parts"] if "functionCall" in p]
            signed = [p for p in calls if "thoughtSignature" in p]
            assert not calls or signed, "every model turn with calls carries a signature or the sentinel"
            sentinels = [p for p in calls if p.get("thoughtSignature") == g.SKIP_SIGNATURE]
            assert len(sentinels) <= 1
            if sentinels:
                assert calls[0] is sentinels[0], "the sentinel goes on the first call only"


def test_unanswered_calls_get_an_error_response_and_orphan_results_become_text() -> None:
    req = oc_request(
        messages=[
            Message("user", [TextPart("go")]),
            Message(
                "assistant",
                [
                    ToolCallPart(id="c1", name="f", arguments="{}"),
                    ToolCallPart(id="c2", name="g", arguments="{}"),
                ],
            ),
            Message("tool", [ToolResultPart(call_id="c2", content=[TextPart("g done")])]),
            Message("user", [TextPart("and?")]),
            Message("tool", [ToolResultPart(call_id="nowhere", name="h", content=[TextPart("stray")])]),
        ]
    )
    body = g.render_request(req, upstream_ctx())
    assert_valid_request(body)
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"error": g.UNANSWERED_CALL}, "id": "c1"}},
        {"functionResponse": {"name": "g", "response": {"output": "g done"}, "id": "c2"}},
        {"text": 'Result of tool h: {"output":"stray"}'},
        {"text": "and?"},
    ]


def test_a_conversation_with_no_user_turn_gets_a_minimal_one() -> None:
    req = oc_request(system=[TextPart("You are terse.")], messages=[Message("assistant", [TextPart("Hi")])])
    body = g.render_request(req, upstream_ctx())
    assert_valid_request(body)
    assert body["contents"] == [{"role": "user", "parts": [{"text": g.MINIMAL_USER_TEXT}]}]


def test_audio_input_goes_inline_with_a_gemini_mime_type() -> None:
    req = g.parse_request(
        {"contents": [{"parts": [{"inlineData": {"mimeType": "audio/wav", "data": "UklG"}}]}]}
    )
    body = g.render_request(req, gemini_ctx())
    assert body["contents"][0]["parts"] == [{"inlineData": {"mimeType": "audio/wav", "data": "UklG"}}]


def test_stream_signature_after_text_rides_a_plain_empty_part() -> None:
    events: list[StreamEvent] = [
        StreamStart(id="r", model="m"),
        ThinkingDelta("t"),
        ThinkingSignature("A", "gemini"),
        TextDelta("x"),
        ThinkingSignature("B", "gemini"),
        Finish("stop"),
    ]
    chunks = sse_objects(render_stream(events, gemini_ctx()))
    parts = [p for c in chunks for p in c["candidates"][0].get("content", {}).get("parts", [])]
    assert parts == [
        {"text": "t", "thought": True},
        {"text": "", "thoughtSignature": "A", "thought": True},
        {"text": "x"},
        {"text": "", "thoughtSignature": "B"},
    ]


def test_streamed_thoughts_and_call_signature_replay_on_the_same_call_next_turn() -> None:
    # case 48: S GG -> AM, then the AM client's next turn goes back to Gemini
    raw = sse(
        chunk({"text": "weighing options", "thought": True}),
        chunk(
            {"functionCall": {"name": "search", "args": {"q": "x"}}, "thoughtSignature": SIG}, finish="STOP"
        ),
    )
    acc = StreamAccumulator()
    for ev in parse_stream(raw, upstream_ctx(client_format="anthropic", provider="gemini")):
        acc.feed(ev)
    resp = acc.result()
    assert resp.stop_reason == "tool_calls"
    thinking, call = resp.parts
    assert thinking == ThinkingPart("weighing options")
    assert isinstance(call, ToolCallPart)
    assert (call.signature, call.origin) == (SIG, "gemini")
    # the Anthropic client sends the blocks back; its parser untags the origin ("gemini")
    history = oc_request(
        source_format="anthropic",
        messages=[
            Message("user", [TextPart("find x")]),
            Message("assistant", [ThinkingPart("weighing options", origin="gemini"), call]),
            Message("tool", [ToolResultPart(call_id=call.id, content=[TextPart("found")])]),
        ],
    )
    body = g.render_request(history, upstream_ctx(client_format="anthropic", provider="gemini"))
    assert_valid_request(body)
    model = body["contents"][1]["parts"]
    assert model[0] == {"text": "weighing options", "thought": True}
    assert model[1]["thoughtSignature"] == SIG
    assert model[1]["functionCall"]["name"] == "search"


_json_leaf = st.one_of(  # what JSON can carry: no NaN, no infinity
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
_json = st.recursive(
    _json_leaf,
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=4), c, max_size=3)),
    max_leaves=8,
)
_part_keys = [
    "text",
    "thought",
    "thoughtSignature",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "inline_data",
]
_sub_keys = [
    "mimeType",
    "data",
    "fileUri",
    "name",
    "args",
    "id",
    "response",
    "parts",
    "partialArgs",
    "willContinue",
]


def _fuzzy(keys: list[str], inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), st.one_of(_json, inner), max_size=4)


_fuzzy_part = _fuzzy(_part_keys, _fuzzy(_sub_keys, _json))
_fuzzy_body = st.fixed_dictionaries(
    {},
    optional={
        "contents": st.one_of(
            _json,
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "role": st.one_of(st.sampled_from(["user", "model"]), _json),
                        "parts": st.one_of(_json, st.lists(_fuzzy_part, max_size=3)),
                    },
                ),
                max_size=3,
            ),
        ),
        "systemInstruction": st.one_of(
            _json, st.fixed_dictionaries({"parts": st.lists(_fuzzy_part, max_size=2)})
        ),
        "tools": st.one_of(
            _json,
            st.lists(
                _fuzzy(
                    ["functionDeclarations", "googleSearch"],
                    st.lists(_fuzzy(["name", "parameters", "parametersJsonSchema", "description"], _json)),
                ),
                max_size=2,
            ),
        ),
        "toolConfig": st.one_of(
            _json,
            st.fixed_dictionaries({"functionCallingConfig": _fuzzy(["mode", "allowedFunctionNames"], _json)}),
        ),
        "generationConfig": st.one_of(
            _json,
            _fuzzy(
                [
                    "temperature",
                    "topK",
                    "maxOutputTokens",
                    "stopSequences",
                    "responseMimeType",
                    "responseSchema",
                    "thinkingConfig",
                    "seed",
                ],
                _fuzzy(["thinkingBudget", "thinkingLevel", "includeThoughts", "type"], _json),
            ),
        ),
    },
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_fuzzy_body)
def test_parse_request_raises_only_invalid_request_errors(body: dict[str, Any]) -> None:
    try:
        req = g.parse_request(body)
    except InvalidRequestError:
        return
    with contextlib.suppress(InvalidRequestError):  # e.g. a fileData URL Gemini cannot read
        g.render_request(req, gemini_ctx())


_fuzzy_response = st.fixed_dictionaries(
    {},
    optional={
        "candidates": st.one_of(
            _json,
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "content": st.one_of(
                            _json, st.fixed_dictionaries({"parts": st.lists(_fuzzy_part, max_size=3)})
                        ),
                        "finishReason": st.one_of(_json, st.sampled_from(["STOP", "SAFETY", "MAX_TOKENS"])),
                    },
                ),
                max_size=2,
            ),
        ),
        "usageMetadata": st.one_of(
            _json,
            _fuzzy(
                ["promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount"], _json
            ),
        ),
        "promptFeedback": _json,
        "responseId": _json,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_fuzzy_response, min_size=1, max_size=4))
def test_upstream_responses_and_streams_never_crash_the_translators(chunks: list[dict[str, Any]]) -> None:
    # Unknown part kinds are carried verbatim (OpaquePart), so garbage parts may come out as garbage;
    # what must hold is that nothing raises and every frame is a well-formed chunk.
    ctx = upstream_ctx(signatures=SignatureCache())
    for body in chunks:
        resp = g.parse_response(body, ctx)
        rendered = g.render_response(resp, gemini_ctx())
        assert rendered["candidates"][0]["content"]["role"] == "model"
    parser = g.StreamParser(ctx)
    renderer = g.StreamRenderer(client_ctx())
    out = b""
    for body in chunks:
        for ev in parser.feed(SSEEvent(dumps(body))):
            out += renderer.feed(ev)
    for ev in parser.close():
        out += renderer.feed(ev)
    frames = sse_objects(out + renderer.close())
    assert frames[-1]["candidates"][0]["finishReason"]


def test_redacted_thinking_survives_a_round_trip_through_a_gemini_client() -> None:
    ctx = client_ctx()
    resp = ChatResponse(
        id="r",
        model="m",
        parts=[
            TextPart("a"),
            ThinkingPart(signature="OPAQUE", redacted=True, origin="anthropic"),
            TextPart("b"),
        ],
    )
    body = g.render_response(resp, ctx)
    assert_valid_response(body)
    parts = body["candidates"][0]["content"]["parts"]
    assert len(parts) == 2, "no thought part: the redacted block rides the next text part"
    assert base64.b64decode(parts[1]["thoughtSignature"]) == b'omr1.anthropic.[{"s":"OPAQUE","r":1}]'
    stream = render_stream([StreamStart(id="r", model="m"), *response_events(resp)[1:]], ctx)
    streamed = [
        p for c in sse_objects(stream) for p in c["candidates"][0].get("content", {}).get("parts", [])
    ]
    assert streamed == parts
    req = g.parse_request(
        {"contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": parts}]}
    )
    assert req.messages[1].parts == resp.parts


@pytest.mark.parametrize(("model", "ceiling"), [("gemini-2.5-flash", 24576), ("gemini-2.5-pro", 32768)])
def test_a_foreign_thinking_budget_is_held_to_the_gemini_models_ceiling(model: str, ceiling: int) -> None:
    # Claude budgets go to 128k (and the adaptive policy can ask for that much); Gemini 2.5 answers 400 past
    # its model's maximum, while a Gemini client's own budget is its own business
    reasoning = ReasoningConfig(enabled=True, budget_tokens=131072)
    req = oc_request(messages=[Message("user", [TextPart("think")])], reasoning=reasoning)
    ctx = upstream_ctx(caps=TargetCaps(thinking_style="budget"), upstream_model=model)
    assert g.render_request(req, ctx)["generationConfig"]["thinkingConfig"]["thinkingBudget"] == ceiling
    small = oc_request(
        messages=[Message("user", [TextPart("think")])],
        reasoning=ReasoningConfig(enabled=True, budget_tokens=2000),
    )
    assert g.render_request(small, ctx)["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 2000
    native = g.parse_request(
        {
            "contents": [{"role": "user", "parts": [{"text": "think"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 40000}},
        }
    )
    assert g.render_request(native, ctx)["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 40000

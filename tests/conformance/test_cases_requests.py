"""formats.md §5, request side: what the upstream receives when a client of another format asks.

Each test sends a real client request through the gateway to a fake upstream and asserts on the recorded
upstream request (after `mesh.last` checked it against the upstream API's own rules), and, where the case
has a way back, on what the client got. Case numbers are §5's.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.conformance import clients as c
from tests.conformance.clients import AM, GG, OC, OR, Mode
from tests.conformance.conftest import Mesh
from tests.conformance.upstreams import system_of, turns_of
from tests.fakes.reply import Reply

CHAT, RESPONSES, MESSAGES, GEMINI = Mode(OC), Mode(OR), Mode(AM), Mode(GG)
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
JPEG_B64 = base64.b64encode(b"\xff\xd8\xff\xe0fake-jpeg").decode()
PDF_B64 = base64.b64encode(b"%PDF-1.4 fake").decode()


def upstream_body(mesh: Mesh, fmt: str) -> dict[str, Any]:
    body = mesh.last(fmt).json
    assert isinstance(body, dict)
    return body


async def ok(mesh: Mesh, mode: Mode, upstream: str, body: dict[str, Any], **kw: Any) -> c.Answer:
    ans = await mesh.send(mode, upstream, body, **kw)
    assert ans.status == 200, ans.raw
    return ans


# ----------------------------------------------------------------------------------------------------------
# roles, system, turns (1-7)
# ----------------------------------------------------------------------------------------------------------


async def test_case_01_chat_system_and_developer_become_anthropic_system_blocks(mesh: Mesh) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": "hi"},
        ],
        "max_completion_tokens": 300,
    }
    await ok(mesh, CHAT, AM, body)
    sent = upstream_body(mesh, AM)
    assert system_of(AM, sent) == ["You are terse.", "Answer in French."]
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert sent["max_tokens"] == 300

    await ok(mesh, CHAT, AM, {"messages": [{"role": "user", "content": "hi"}]})
    assert upstream_body(mesh, AM)["max_tokens"] > 0, "a default max_tokens is injected"


async def test_case_02_anthropic_system_blocks_cache_control_only_to_claude(mesh: Mesh) -> None:
    system = [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two"},
        {"type": "text", "text": "three", "cache_control": {"type": "ephemeral"}},
    ]
    body = c.body_for(AM, [c.user("hi")], system=None) | {"system": system}
    await ok(mesh, MESSAGES, OC, body)
    sent = upstream_body(mesh, OC)
    systems = [m for m in sent["messages"] if m["role"] == "system"]
    assert len(systems) == 1
    assert [w for w in ("one", "two", "three") if w in systems[0]["content"]] == ["one", "two", "three"]
    assert "cache_control" not in json.dumps(sent)

    await ok(mesh, MESSAGES, AM, body)
    assert upstream_body(mesh, AM)["system"][2]["cache_control"] == {"type": "ephemeral"}


async def test_case_03_billing_header_block_is_not_sent_to_gemini(mesh: Mesh) -> None:
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cc_entrypoint=cli"},
        {"type": "text", "text": "You are Claude Code."},
    ]
    await ok(mesh, MESSAGES, GG, c.body_for(AM, [c.user("hi")]) | {"system": system})
    sent = upstream_body(mesh, GG)
    assert system_of(GG, sent) == ["You are Claude Code."]
    assert "billing-header" not in json.dumps(sent)


async def test_case_04_instructions_then_developer_item_become_anthropic_system_in_order(mesh: Mesh) -> None:
    body = {
        "instructions": "Be helpful.",
        "input": [{"role": "developer", "content": "Use metric units."}, {"role": "user", "content": "hi"}],
    }
    await ok(mesh, RESPONSES, AM, body)
    sent = upstream_body(mesh, AM)
    assert system_of(AM, sent) == ["Be helpful.", "Use metric units."]
    assert [(t.kind, t.text) for t in turns_of(AM, sent)] == [("user", "hi")]


async def test_case_05_gemini_system_and_turns_become_chat_messages(mesh: Mesh) -> None:
    turns = [c.user("hello"), c.assistant("hi there"), c.user("how are you?")]
    await ok(mesh, GEMINI, OC, c.body_for(GG, turns, system="be kind"))
    sent = upstream_body(mesh, OC)
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", "be kind"),
        ("user", "hello"),
        ("assistant", "hi there"),
        ("user", "how are you?"),
    ]


async def test_case_06_no_empty_parts_or_contents_reach_gemini(mesh: Mesh) -> None:
    body = {
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "user", "content": "second"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "third"},
        ]
    }
    await ok(mesh, CHAT, GG, body)
    sent = upstream_body(mesh, GG)  # checked: no empty parts, no empty contents, roles alternate
    texts = [t.text for t in turns_of(GG, sent)]
    assert texts == ["first", "second", "third"]


async def test_case_07_prefill_kept_for_anthropic_dropped_for_gemini(mesh: Mesh) -> None:
    body = {"messages": [{"role": "user", "content": "Write JSON"}, {"role": "assistant", "content": "{"}]}
    await ok(mesh, CHAT, AM, body)
    sent = upstream_body(mesh, AM)
    assert sent["messages"][-1]["role"] == "assistant"
    assert [(t.kind, t.text) for t in turns_of(AM, sent)][-1] == ("assistant", "{")

    await ok(mesh, CHAT, GG, body)
    assert [c["role"] for c in upstream_body(mesh, GG)["contents"]] == ["user"]


# ----------------------------------------------------------------------------------------------------------
# content parts (8-13)
# ----------------------------------------------------------------------------------------------------------


def chat_parts(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, *parts]}]}


async def test_case_08_chat_images_become_anthropic_base64_and_url_sources(mesh: Mesh) -> None:
    body = chat_parts(
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
    )
    await ok(mesh, CHAT, AM, body)
    blocks = upstream_body(mesh, AM)["messages"][0]["content"]
    images = [b["source"] for b in blocks if b["type"] == "image"]
    assert images == [
        {"type": "base64", "media_type": "image/png", "data": PNG_B64},
        {"type": "url", "url": "https://example.com/cat.png"},
    ]


async def test_case_09_anthropic_jpeg_becomes_a_chat_data_url(mesh: Mesh) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG_B64}}
    body = {
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [image, {"type": "text", "text": "?"}]}],
    }
    await ok(mesh, MESSAGES, OC, body)
    parts = upstream_body(mesh, OC)["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert urls == [f"data:image/jpeg;base64,{JPEG_B64}"]


async def test_case_10_chat_images_to_gemini_inline_or_policy_error(mesh: Mesh) -> None:
    data_url = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}
    await ok(mesh, CHAT, GG, chat_parts(data_url))
    parts = upstream_body(mesh, GG)["contents"][0]["parts"]
    assert {"inlineData": {"mimeType": "image/png", "data": PNG_B64}} in parts

    # a remote image is fetched by the gateway and inlined; one that cannot be fetched is the documented
    # policy error, in the client's format, and nothing (least of all a bare fileData) goes upstream
    before = len(mesh.fakes[GG].requests)
    remote = {"type": "image_url", "image_url": {"url": "https://images.example.invalid/cat.png"}}
    ans = await mesh.send(CHAT, GG, chat_parts(remote))
    assert ans.status == 400, ans.raw
    assert ans.error is not None
    assert "images.example.invalid" in ans.error["message"]
    assert len(mesh.fakes[GG].requests) == before


async def test_case_11_chat_pdf_file_becomes_an_anthropic_document(mesh: Mesh) -> None:
    pdf = {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{PDF_B64}", "filename": "a.pdf"},
    }
    await ok(mesh, CHAT, AM, chat_parts(pdf))
    blocks = upstream_body(mesh, AM)["messages"][0]["content"]
    docs = [b for b in blocks if b["type"] == "document"]
    assert [d["source"] for d in docs] == [
        {"type": "base64", "media_type": "application/pdf", "data": PDF_B64}
    ]


async def test_case_12_responses_pdf_and_detailed_image_to_gemini(mesh: Mesh) -> None:
    content = [
        {"type": "input_text", "text": "summarise"},
        {"type": "input_file", "file_data": f"data:application/pdf;base64,{PDF_B64}", "filename": "a.pdf"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}", "detail": "high"},
    ]
    await ok(mesh, RESPONSES, GG, {"input": [{"role": "user", "content": content}]})
    parts = upstream_body(mesh, GG)["contents"][0]["parts"]
    inline = [p["inlineData"] for p in parts if "inlineData" in p]
    assert inline == [
        {"mimeType": "application/pdf", "data": PDF_B64},
        {"mimeType": "image/png", "data": PNG_B64},
    ]
    assert "detail" not in json.dumps(parts)


async def test_case_13_anthropic_text_and_image_become_responses_input_parts(mesh: Mesh) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
    body = {
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}],
    }
    await ok(mesh, MESSAGES, OR, body)
    (item,) = upstream_body(mesh, OR)["input"]
    assert item["role"] == "user"
    assert [p["type"] for p in item["content"]] == ["input_text", "input_image"]
    assert item["content"][1]["image_url"] == f"data:image/png;base64,{PNG_B64}"


# ----------------------------------------------------------------------------------------------------------
# tool definitions and choice (14-21)
# ----------------------------------------------------------------------------------------------------------

HOSTILE_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "note": {"type": ["string", "null"]},
        "kind": {"const": "fetch"},
        "target": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["url"],
}


async def test_case_14_json_schema_features_gemini_rejects_are_cleaned(mesh: Mesh) -> None:
    tools = [
        {"type": "function", "function": {"name": "fetch", "parameters": HOSTILE_SCHEMA, "strict": True}}
    ]
    await ok(mesh, CHAT, GG, c.body_for(OC, [c.user("go")], tools=tools))
    (decl,) = upstream_body(mesh, GG)["tools"][0]["functionDeclarations"]  # SDK-validated by mesh.last
    schema = decl.get("parametersJsonSchema") or decl["parameters"]
    text = json.dumps(schema)
    assert "$schema" not in text
    assert '"strict"' not in text
    if "parameters" in decl:  # the OpenAPI subset: no type arrays, const as enum, no oneOf
        assert "oneOf" not in text
        assert "const" not in text
        assert not any(isinstance(p.get("type"), list) for p in schema["properties"].values())
    assert schema["properties"]["url"]["type"] in ("string", "STRING")


async def test_case_15_object_schema_without_properties_is_a_valid_gemini_declaration(mesh: Mesh) -> None:
    tools = [{"name": "ping", "description": "ping", "input_schema": {"type": "object"}}]
    await ok(mesh, MESSAGES, GG, c.body_for(AM, [c.user("go")], tools=tools))
    (decl,) = upstream_body(mesh, GG)["tools"][0]["functionDeclarations"]
    if "parameters" in decl:  # the OpenAPI subset rejects an OBJECT with empty properties
        assert decl["parameters"].get("properties")
    # else: parametersJsonSchema takes {type: object}, and no schema at all means "no arguments"


async def test_case_16_long_mcp_tool_name_is_shortened_and_restored(mesh: Mesh) -> None:
    long_name = "mcp__" + "server_with_a_long_name__" + "tool_" * 10
    assert len(long_name) > 64
    fake = mesh.fakes[OC]
    fake.responder = lambda rec: Reply(
        text="", tool_calls=[(rec.json["tools"][0]["function"]["name"], {"q": 1})]
    )
    tools = [{"name": long_name, "description": "mcp", "input_schema": {"type": "object", "properties": {}}}]
    ans = await ok(mesh, MESSAGES, OC, c.body_for(AM, [c.user("go")], tools=tools))
    upstream_name = upstream_body(mesh, OC)["tools"][0]["function"]["name"]
    assert len(upstream_name) <= 64
    (call,) = ans.calls
    assert call.name == long_name, "the client sees its own tool name"


async def test_case_17_strict_any_of_root_becomes_an_object_for_anthropic(mesh: Mesh) -> None:
    schema = {
        "anyOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]},
        ]
    }
    tools = [{"type": "function", "function": {"name": "pick", "parameters": schema, "strict": True}}]
    await ok(mesh, CHAT, AM, c.body_for(OC, [c.user("go")], tools=tools))
    (tool,) = upstream_body(mesh, AM)["tools"]
    assert tool["input_schema"]["type"] == "object"
    assert set(tool["input_schema"]["properties"]) == {"a", "b"}


APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hello\n*** End Patch"


async def test_case_18_codex_custom_tool_round_trips_through_anthropic(mesh: Mesh) -> None:
    mesh.fakes[AM].default = Reply(text="", tool_calls=[("apply_patch", {"input": PATCH})])
    body = {"input": [{"role": "user", "content": "add a file"}], "tools": [APPLY_PATCH]}
    ans = await ok(mesh, RESPONSES, AM, body)
    (tool,) = upstream_body(mesh, AM)["tools"]
    props = tool["input_schema"]["properties"]
    assert list(props) == ["input"]
    assert props["input"]["type"] == "string"
    (call,) = ans.calls
    assert (call.kind, call.name, call.arguments) == ("custom", "apply_patch", PATCH)


async def test_case_19_chat_tool_choice_and_parallel_flag_for_anthropic(mesh: Mesh) -> None:
    tools = [c.tool_spec(OC)]
    expectations = [
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ]
    for choice, expected in expectations:
        body = c.body_for(OC, [c.user("go")], tools=tools, tool_choice=choice, parallel_tool_calls=False)
        await ok(mesh, CHAT, AM, body)
        sent = upstream_body(mesh, AM)
        assert sent["tool_choice"] == {**expected, "disable_parallel_tool_use": True}
    await ok(mesh, CHAT, AM, c.body_for(OC, [c.user("go")], tools=tools, tool_choice="none"))
    sent = upstream_body(mesh, AM)
    assert sent.get("tool_choice", {"type": "none"}) == {"type": "none"} or not sent.get("tools")


async def test_case_20_named_tool_choice_becomes_gemini_any_with_allowed_names(mesh: Mesh) -> None:
    tools = [c.tool_spec(AM), c.tool_spec(AM, "get_time")]
    body = c.body_for(AM, [c.user("go")], tools=tools, tool_choice={"type": "tool", "name": "get_time"})
    await ok(mesh, MESSAGES, GG, body)
    config = upstream_body(mesh, GG)["toolConfig"]["functionCallingConfig"]
    assert config == {"mode": "ANY", "allowedFunctionNames": ["get_time"]}


async def test_case_21_forced_tool_with_thinking_and_temperature_is_made_acceptable(mesh: Mesh) -> None:
    body = c.body_for(
        OC,
        [c.user("go")],
        tools=[c.tool_spec(OC)],
        reasoning_effort="high",
        tool_choice="required",
        temperature=0.2,
    )
    await ok(mesh, CHAT, AM, body)  # mesh.last checks: budget < max_tokens, temperature 1 or absent, auto
    sent = upstream_body(mesh, AM)
    assert sent["thinking"]["type"] == "enabled", "policy: keep thinking, downgrade the forced choice"
    assert sent["tool_choice"] == {"type": "auto"}
    assert "temperature" not in sent


# ----------------------------------------------------------------------------------------------------------
# tool calls, results, ids (22-35)
# ----------------------------------------------------------------------------------------------------------


async def test_case_22_anthropic_tool_history_becomes_chat_tool_calls_and_tool_message(mesh: Mesh) -> None:
    turns = [
        c.user("weather?"),
        c.call("toolu_01A", "get_weather", {"city": "Paris"}),
        c.result("toolu_01A", "", "18C"),
    ]
    await ok(mesh, MESSAGES, OC, c.body_for(AM, turns, tools=[c.tool_spec(AM)]))
    msgs = upstream_body(mesh, OC)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool"]
    (tc,) = msgs[1]["tool_calls"]
    assert json.loads(tc["function"]["arguments"]) == {"city": "Paris"}
    assert msgs[2]["tool_call_id"] == tc["id"]
    assert msgs[2]["content"] == "18C"


async def test_case_23_results_then_text_keep_their_order_for_chat(mesh: Mesh) -> None:
    body = {
        "max_tokens": 100,
        "tools": [c.tool_spec(AM)],
        "messages": [
            {"role": "user", "content": "both cities"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"city": "A"}},
                    {"type": "tool_use", "id": "toolu_B", "name": "get_weather", "input": {"city": "B"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_A", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "toolu_B", "content": "rainy"},
                    {"type": "text", "text": "compare them"},
                ],
            },
        ],
    }
    await ok(mesh, MESSAGES, OC, body)
    msgs = upstream_body(mesh, OC)["messages"]
    assert [(m["role"], m.get("tool_call_id")) for m in msgs[2:]] == [
        ("tool", "toolu_A"),
        ("tool", "toolu_B"),
        ("user", None),
    ]
    assert "compare them" in json.dumps(msgs[-1]["content"])


async def test_case_24_two_chat_tool_messages_become_one_anthropic_user_message(mesh: Mesh) -> None:
    turns = [
        c.user("both"),
        c.call("call_1", "get_weather", {"city": "A"}),
        c.call("call_2", "get_weather", {"city": "B"}),
        c.result("call_1", "get_weather", "sunny"),
        c.result("call_2", "get_weather", "rainy"),
    ]
    await ok(mesh, CHAT, AM, c.body_for(OC, turns, tools=[c.tool_spec(OC)]))
    msgs = upstream_body(mesh, AM)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert [(b["type"], b["tool_use_id"]) for b in msgs[2]["content"]] == [
        ("tool_result", "call_1"),
        ("tool_result", "call_2"),
    ]


async def test_case_25_parallel_chat_calls_and_results_become_two_gemini_contents(mesh: Mesh) -> None:
    turns = [
        c.user("both"),
        c.call("call_1", "get_weather", {"city": "A"}),
        c.call("call_2", "get_time", {"city": "B"}),
        c.result("call_1", "", "sunny"),
        c.result("call_2", "", "noon"),
    ]
    await ok(mesh, CHAT, GG, c.body_for(OC, turns, tools=[c.tool_spec(OC), c.tool_spec(OC, "get_time")]))
    contents = upstream_body(mesh, GG)["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert [p["functionCall"]["name"] for p in contents[1]["parts"]] == ["get_weather", "get_time"]
    responses = [p["functionResponse"] for p in contents[2]["parts"]]
    assert [r["name"] for r in responses] == ["get_weather", "get_time"], "names recovered from the ids"
    assert all(isinstance(r["response"], dict) for r in responses)


async def test_cases_26_27_gemini_parallel_calls_round_trip_through_chat(mesh: Mesh) -> None:
    """26: two functionCall parts + STOP -> two distinct ids, finish_reason tool_calls. 27: results sent
    back under those ids recover the names, and the first call gets its thoughtSignature back."""
    mesh.fakes[GG].default = Reply(
        text="",
        tool_calls=[("get_weather", {"city": "A"}), ("get_time", {"city": "B"})],
        signature="R0dTSUcx",
    )
    tools = [c.tool_spec(OC), c.tool_spec(OC, "get_time")]
    ans = await ok(mesh, CHAT, GG, c.body_for(OC, [c.user("both")], tools=tools))
    assert ans.stop_raw == "tool_calls"
    ids = [call.id for call in ans.calls]
    assert len(set(ids)) == 2
    assert all(ids)

    history = [c.user("both")]
    history += [c.call(call.id, call.name, call.arguments) for call in ans.calls]  # type: ignore[arg-type]
    history += [c.result(call.id, "", f"result {i}") for i, call in enumerate(ans.calls)]
    await ok(mesh, CHAT, GG, c.body_for(OC, history, tools=tools))
    contents = upstream_body(mesh, GG)["contents"]
    calls = contents[1]["parts"]
    assert calls[0].get("thoughtSignature") == "R0dTSUcx", "the first call gets its signature back"
    assert "thoughtSignature" not in calls[1]
    assert [p["functionResponse"]["name"] for p in contents[2]["parts"]] == ["get_weather", "get_time"]


async def test_case_28_error_results_to_gemini_and_chat(mesh: Mesh) -> None:
    body = {
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_X", "name": "run", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_X", "content": "exit 1", "is_error": True}
                ],
            },
        ],
    }
    await ok(mesh, MESSAGES, GG, body)
    response = upstream_body(mesh, GG)["contents"][2]["parts"][0]["functionResponse"]["response"]
    assert "error" in response
    assert "exit 1" in json.dumps(response["error"])

    await ok(mesh, MESSAGES, OC, body)
    tool_msg = upstream_body(mesh, OC)["messages"][-1]
    assert tool_msg["role"] == "tool"
    assert "exit 1" in json.dumps(tool_msg["content"])


async def test_case_29_media_tool_result_in_a_parallel_turn_keeps_the_gemini_counts(mesh: Mesh) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
    body = {
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "screenshot both"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {"n": 1}},
                    {"type": "tool_use", "id": "toolu_2", "name": "shot", "input": {"n": 2}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "one"}, image],
                    },
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "two"},
                ],
            },
        ],
    }
    await ok(mesh, MESSAGES, GG, body)
    parts = upstream_body(mesh, GG)["contents"][2]["parts"]
    responses = [p for p in parts if "functionResponse" in p]
    assert len(responses) == 2
    assert len(parts) == 2, "no sibling parts next to the function responses"
    assert PNG_B64 in json.dumps(responses[0]["functionResponse"].get("parts", []))


async def test_case_30_tool_output_with_an_image_keeps_the_chat_tool_message_text_only(mesh: Mesh) -> None:
    output = [
        {"type": "input_text", "text": "see screenshot"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}"},
    ]
    body = {
        "input": [
            {"role": "user", "content": "shoot"},
            {"type": "function_call", "call_id": "call_1", "name": "shot", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": output},
        ]
    }
    await ok(mesh, RESPONSES, OC, body)
    msgs = upstream_body(mesh, OC)["messages"]  # checked: tool messages carry text only
    tool_index = next(i for i, m in enumerate(msgs) if m["role"] == "tool")
    assert "see screenshot" in json.dumps(msgs[tool_index]["content"])
    rest = msgs[tool_index + 1 :]
    assert not rest or (rest[0]["role"] == "user" and PNG_B64 in json.dumps(rest[0]["content"]))


async def test_case_31_call_ids_with_dots_and_colons_are_sanitized_for_anthropic(mesh: Mesh) -> None:
    turns = [
        c.user("go"),
        c.call("call.abc:1", "get_weather", {"city": "A"}),
        c.result("call.abc:1", "", "ok"),
    ]
    await ok(mesh, CHAT, AM, c.body_for(OC, turns, tools=[c.tool_spec(OC)]))
    msgs = upstream_body(mesh, AM)["messages"]
    assert msgs[1]["content"][0]["id"] == "call_abc_1"
    assert msgs[2]["content"][0]["tool_use_id"] == "call_abc_1"


async def test_case_32_long_anthropic_ids_are_shortened_identically_for_responses(mesh: Mesh) -> None:
    long_id = "toolu_" + "x" * 80
    turns = [c.user("go"), c.call(long_id, "get_weather", {"city": "A"}), c.result(long_id, "", "ok")]
    await ok(mesh, MESSAGES, OR, c.body_for(AM, turns, tools=[c.tool_spec(AM)]))
    items = upstream_body(mesh, OR)["input"]
    call = next(i for i in items if i.get("type") == "function_call")
    output = next(i for i in items if i.get("type") == "function_call_output")
    assert len(call["call_id"]) <= 64
    assert call["call_id"] == output["call_id"]
    await ok(mesh, MESSAGES, OR, c.body_for(AM, turns, tools=[c.tool_spec(AM)]))
    again = next(i for i in upstream_body(mesh, OR)["input"] if i.get("type") == "function_call")
    assert again["call_id"] == call["call_id"], "the shortening is deterministic"


async def test_case_33_empty_assistant_content_with_tool_calls_sends_no_empty_text(mesh: Mesh) -> None:
    body = c.body_for(
        OC,
        [c.user("go"), c.call("call_1", "get_weather", {}), c.result("call_1", "", "ok")],
        tools=[c.tool_spec(OC)],
    )
    body["messages"][1]["content"] = ""
    await ok(mesh, CHAT, AM, body)  # checked: no empty text blocks
    assert [b["type"] for b in upstream_body(mesh, AM)["messages"][1]["content"]] == ["tool_use"]


async def test_case_34_claude_code_interleaved_history_to_gemini(mesh: Mesh) -> None:
    body = {
        "max_tokens": 1024,
        "tools": [c.tool_spec(AM, "Bash")],
        "messages": [
            {"role": "user", "content": "list files"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "use ls", "signature": "EqClaudeSignature=="},
                    {"type": "text", "text": ""},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}],
            },
        ],
    }
    await ok(mesh, MESSAGES, GG, body)
    sent = upstream_body(mesh, GG)
    assert "EqClaudeSignature" not in json.dumps(sent), "no Anthropic signature goes to Gemini"
    (call,) = [p for p in sent["contents"][1]["parts"] if "functionCall" in p]
    assert call["thoughtSignature"] == "skip_thought_signature_validator"


async def test_case_35_orphan_result_and_unanswered_call_still_make_a_valid_anthropic_request(
    mesh: Mesh,
) -> None:
    body = {
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "tool", "tool_call_id": "call_ghost", "content": "orphan output"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_open",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "user", "content": "never mind"},
        ],
        "tools": [c.tool_spec(OC)],
    }
    await ok(mesh, CHAT, AM, body)  # checked: pairing, ordering, alternation
    turns = turns_of(AM, upstream_body(mesh, AM))
    orphan = next(t for t in turns if "orphan output" in t.text)
    assert orphan.kind == "user", "the orphan result travels as user text"
    (synthesized,) = [t for t in turns if t.kind == "result"]
    assert synthesized.call_id == "call_open"
    assert synthesized.extra["is_error"], "the unanswered call gets an error result"


# ----------------------------------------------------------------------------------------------------------
# structured output (64-65)
# ----------------------------------------------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


async def test_case_64_chat_json_schema_to_anthropic_gemini_and_responses(mesh: Mesh) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    body = c.body_for(OC, [c.user("who?")], response_format=fmt)
    await ok(mesh, CHAT, AM, body)
    assert upstream_body(mesh, AM)["output_config"]["format"] == {"type": "json_schema", "schema": PERSON}
    await ok(mesh, CHAT, GG, body)
    gen = upstream_body(mesh, GG)["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    schema = gen.get("responseJsonSchema") or gen["responseSchema"]
    assert set(schema["properties"]) == {"name", "age"}
    await ok(mesh, CHAT, OR, body)
    assert upstream_body(mesh, OR)["text"]["format"] == {
        "type": "json_schema",
        "name": "person",
        "schema": PERSON,
        "strict": True,
    }


async def test_case_65_anthropic_output_format_becomes_a_strict_chat_response_format(mesh: Mesh) -> None:
    loose = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
    body = c.body_for(
        AM, [c.user("who?")], output_config={"format": {"type": "json_schema", "schema": loose}}
    )
    await ok(mesh, MESSAGES, OC, body)
    fmt = upstream_body(mesh, OC)["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"]
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == ["age", "name"]


# ----------------------------------------------------------------------------------------------------------
# client-specific (72-76)
# ----------------------------------------------------------------------------------------------------------

CLAUDE_CODE_HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    "x-app": "cli",
    "user-agent": "claude-cli/2.1.330 (external, cli)",
}


def claude_code_body() -> dict[str, Any]:
    user_id = json.dumps({"device_id": "d" * 64, "account_uuid": "acc-1", "session_id": "sess-1"})
    return {
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        ],
        "metadata": {"user_id": user_id},
        "tools": [
            {
                "name": "Bash",
                "description": "run",
                "input_schema": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                    "additionalProperties": False,
                },
            }
        ],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


async def test_case_72_claude_code_request_to_chat_and_to_anthropic(mesh: Mesh) -> None:
    body = claude_code_body()
    await ok(mesh, Mode(AM, True), OC, body, headers=CLAUDE_CODE_HEADERS, path="/v1/messages?beta=true")
    req = mesh.last(OC)
    assert "anthropic-beta" not in req.headers
    assert "$schema" not in json.dumps(req.json["tools"])
    user = req.json.get("user") or req.json.get("safety_identifier")
    assert user
    assert len(user) <= 64

    await ok(mesh, Mode(AM, True), AM, body, headers=CLAUDE_CODE_HEADERS, path="/v1/messages?beta=true")
    req = mesh.last(AM)
    assert req.headers["anthropic-beta"] == CLAUDE_CODE_HEADERS["anthropic-beta"]
    assert req.json["system"] == body["system"]
    assert req.json["tools"] == body["tools"]
    assert req.json["metadata"] == body["metadata"]


def codex_body() -> dict[str, Any]:
    return {
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]},
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "look at main.py"}],
                "encrypted_content": "gAAAAABfernet-token",
            },
            {
                "type": "function_call",
                "call_id": "call_a1",
                "name": "shell",
                "arguments": '{"cmd":["cat","main.py"]}',
            },
            {"type": "function_call_output", "call_id": "call_a1", "output": "print(1/0)"},
            {"type": "custom_tool_call", "call_id": "call_p1", "name": "apply_patch", "input": PATCH},
            {"type": "custom_tool_call_output", "call_id": "call_p1", "output": "Done"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "shell",
                "description": "run",
                "strict": False,
                "parameters": {
                    "type": "object",
                    "properties": {"cmd": {"type": "array", "items": {"type": "string"}}},
                },
            },
            APPLY_PATCH,
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "sess-1",
    }


async def test_case_73_codex_request_to_anthropic_streams_back_codex_events(mesh: Mesh) -> None:
    from tests.fakes.reply import Usage

    mesh.fakes[AM].default = Reply(
        text="Fixed.", thinking="done", signature="sig-am", usage=Usage(input=500, output=40, cached=300)
    )
    ans = await ok(mesh, Mode(OR, True), AM, codex_body())
    sent = upstream_body(mesh, AM)  # checked: pairing, no empty text, thinking rules
    kinds = [t.kind for t in turns_of(AM, sent)]
    assert kinds.count("call") == 2
    assert kinds.count("result") == 2
    assert "gAAAAA" not in json.dumps(sent), "OpenAI reasoning is not sent to Anthropic"
    assert ans.text == "Fixed."
    events = ans.raw
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    message = next(i for i in done if i["type"] == "message")
    assert message["content"][0]["text"] == "Fixed.", "output_item.done carries the complete item"
    completed = events[-1]
    assert completed["type"] == "response.completed"
    usage = completed["response"]["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] == 300
    assert "reasoning_tokens" in usage["output_tokens_details"]


async def test_case_74_previous_response_id_to_another_format_is_an_explicit_error(mesh: Mesh) -> None:
    body = {"input": [{"role": "user", "content": "and then?"}], "previous_response_id": "resp_abc123"}
    for upstream in (OC, AM, GG):
        before = len(mesh.fakes[upstream].requests)
        ans = await mesh.send(RESPONSES, upstream, body)
        if ans.status == 200:  # only acceptable if the history was reconstructed
            turns = turns_of(upstream, upstream_body(mesh, upstream))
            assert len(turns) > 1, f"{upstream}: previous_response_id silently dropped"
        else:
            assert ans.status == 400, ans.raw
            assert "previous_response_id" in ans.error["message"]  # type: ignore[index]
            assert len(mesh.fakes[upstream].requests) == before


async def test_case_75_store_false_strips_echoed_ids_for_a_responses_upstream(mesh: Mesh) -> None:
    body = {
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "input": [
            {"role": "user", "content": "hi"},
            {"id": "rs_123", "type": "reasoning", "summary": [], "encrypted_content": "gAAAAAtoken"},
            {"id": "rs_456", "type": "reasoning", "summary": []},
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "hello", "annotations": []}],
            },
            {"type": "item_reference", "id": "msg_0"},
            {"role": "user", "content": "again"},
        ],
    }
    await ok(mesh, RESPONSES, OR, body)
    sent = upstream_body(mesh, OR)  # checked: no rs_ ids, no item_reference, reasoning only with content
    text = json.dumps(sent)
    assert "rs_123" not in text
    assert "rs_456" not in text
    assert "gAAAAAtoken" in text, "the encrypted reasoning itself is kept"


async def test_case_76_count_tokens_with_a_non_anthropic_upstream_is_estimated(mesh: Mesh) -> None:
    body = {"model": mesh.model(OC), "messages": [{"role": "user", "content": "hello " * 100}]}
    r = await mesh.gw.http.post("/v1/messages/count_tokens?beta=true", json=body, headers=CLAUDE_CODE_HEADERS)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"input_tokens"}
    assert r.json()["input_tokens"] > 100
    assert not mesh.fakes[OC].requests, "nothing is sent upstream to count"

    body["model"] = mesh.model(AM)
    mesh.fakes[AM].count_tokens_result = 4242
    r = await mesh.gw.http.post("/v1/messages/count_tokens", json=body)
    assert r.json() == {"input_tokens": 4242}, "an Anthropic upstream counts for itself"

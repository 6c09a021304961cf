"""The upstream side of the conformance mesh: what each provider API checks before it looks at a prompt,
and the request read back into neutral `Turn`s so a test can say what the provider was asked.

The rules are the ones formats.md §1 lists as 400s (Anthropic's pairing and ordering rules, non-empty
text, Gemini's one-data-field parts and call/response counts, OpenAI's tool-message pairing, id and name
patterns), plus the official SDKs' request TypedDicts, validated with pydantic.
"""

from __future__ import annotations

import itertools
import json
import re
from functools import cache
from typing import Any

from anthropic.types import message_create_params as am_params
from google.genai import types as gtypes
from openai.types.chat import completion_create_params as oc_params
from openai.types.responses import response_create_params as or_params
from pydantic import TypeAdapter

from tests.conformance.clients import AM, GG, OC, OR, Turn
from tests.fakes.upstream import RecordedRequest

OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ANTHROPIC_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
GEMINI_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")


@cache
def _adapter(kind: str) -> TypeAdapter[Any]:
    types: dict[str, Any] = {
        "oc-stream": oc_params.CompletionCreateParamsStreaming,
        "oc-json": oc_params.CompletionCreateParamsNonStreaming,
        "or-stream": or_params.ResponseCreateParamsStreaming,
        "or-json": or_params.ResponseCreateParamsNonStreaming,
        "am-stream": am_params.MessageCreateParamsStreaming,
        "am-json": am_params.MessageCreateParamsNonStreaming,
    }
    return TypeAdapter(types[kind])


def check_request(fmt: str, req: RecordedRequest) -> None:
    """A request a fake upstream recorded: path, auth and headers, then the body."""
    body = req.json
    assert isinstance(body, dict), "the upstream got a JSON object"
    {OC: _chat_head, OR: _responses_head, AM: _messages_head, GG: _gemini_head}[fmt](req, body)
    check_body(fmt, body)


def check_body(fmt: str, body: dict[str, Any]) -> None:
    """A request body for an upstream of format `fmt` (also used sans-I/O by the property tests)."""
    {OC: check_chat, OR: check_responses, AM: check_messages, GG: check_gemini}[fmt](body)


# ----------------------------------------------------------------------------------------------------------
# OpenAI Chat
# ----------------------------------------------------------------------------------------------------------


def _chat_head(req: RecordedRequest, body: dict[str, Any]) -> None:
    assert req.path.endswith("/chat/completions")
    assert req.headers.get("authorization", "").startswith("Bearer ")
    assert "anthropic-beta" not in req.headers, "betas go to Anthropic upstreams only"


def check_chat(body: dict[str, Any]) -> None:
    clean = json.loads(json.dumps(body))
    for m in clean["messages"]:
        for ext in ("reasoning_content", "thinking_blocks", "reasoning"):
            m.pop(ext, None)
        for tc in m.get("tool_calls") or []:
            tc.pop("extra_content", None)
    _adapter("oc-stream" if body.get("stream") else "oc-json").validate_python(clean)
    msgs = body["messages"]
    assert msgs, "at least one message"
    for t in body.get("tools") or []:
        assert OPENAI_NAME.match(t["function"]["name"]), t["function"]["name"]
    pending: list[str] = []
    for m in msgs:
        if m["role"] == "tool":
            assert m["tool_call_id"] in pending, f"tool message answers no pending call: {m['tool_call_id']}"
            pending.remove(m["tool_call_id"])
            assert isinstance(m["content"], str) or all(p["type"] == "text" for p in m["content"]), (
                "tool messages carry text only"
            )
            continue
        assert not pending, f"calls without results before a {m['role']} message: {pending}"
        if m["role"] == "assistant":
            calls = m.get("tool_calls") or []
            pending = [tc["id"] for tc in calls]
            assert len(set(pending)) == len(pending), "call ids are unique"
            for tc in calls:
                assert OPENAI_NAME.match(tc["function"]["name"])
                json.loads(tc["function"]["arguments"] or "{}")
            assert m.get("content") not in ("", []) or calls, "no empty assistant message"


# ----------------------------------------------------------------------------------------------------------
# OpenAI Responses
# ----------------------------------------------------------------------------------------------------------


def _responses_head(req: RecordedRequest, body: dict[str, Any]) -> None:
    assert req.path.endswith("/responses")
    assert req.headers.get("authorization", "").startswith("Bearer ")


def check_responses(body: dict[str, Any]) -> None:
    _adapter("or-stream" if body.get("stream") else "or-json").validate_python(_with_item_ids(body))
    for key in ("stop", "n", "seed", "frequency_penalty", "presence_penalty", "messages", "max_tokens"):
        assert key not in body, f"Responses has no `{key}`"
    for t in body.get("tools") or []:
        if t.get("type") in ("function", "custom"):
            assert OPENAI_NAME.match(t["name"]), t["name"]
    items = body.get("input")
    if isinstance(items, str):
        return
    calls: list[str] = []
    outputs: list[str] = []
    for item in items or []:
        kind = item.get("type", "message")
        if kind in ("function_call", "custom_tool_call"):
            assert len(item["call_id"]) <= 64, "call_id is at most 64 characters"
            calls.append(item["call_id"])
        elif kind in ("function_call_output", "custom_tool_call_output"):
            assert item["call_id"] in calls, f"output for an unknown call {item['call_id']}"
            outputs.append(item["call_id"])
        if body.get("store") is False:
            assert kind != "item_reference", "no item references when nothing is stored"
            if kind == "reasoning":
                assert "id" not in item, "no rs_ ids when store is false"
                assert item.get("encrypted_content"), "reasoning goes back only with its encrypted content"
    assert sorted(calls) == sorted(outputs), "every call has exactly one output"


def _with_item_ids(body: dict[str, Any]) -> dict[str, Any]:
    """The SDK's item params require an `id` on reasoning items and on echoed assistant output messages,
    but the API takes them without (what Codex sends with store=false; formats.md §4 cases 9-10): add
    placeholders for type validation only."""
    items = body.get("input")
    if not isinstance(items, list):
        return body
    return {**body, "input": [_placeholder_id(i) for i in items]}


def _placeholder_id(item: dict[str, Any]) -> dict[str, Any]:
    if "id" in item:
        return item
    if item.get("type") == "reasoning":
        return {**item, "id": "rs_placeholder"}
    content = item.get("content")
    echoed = isinstance(content, list) and any(p.get("type") == "output_text" for p in content)
    if item.get("role") == "assistant" and echoed:
        return {"status": "completed", "type": "message", **item, "id": "msg_placeholder"}
    return item


# ----------------------------------------------------------------------------------------------------------
# Anthropic Messages
# ----------------------------------------------------------------------------------------------------------


def _messages_head(req: RecordedRequest, body: dict[str, Any]) -> None:
    assert req.path.endswith("/messages")
    assert req.headers.get("x-api-key"), "Anthropic auth is x-api-key"
    assert req.headers.get("anthropic-version") == "2023-06-01"


def check_messages(body: dict[str, Any]) -> None:
    _adapter("am-stream" if body.get("stream") else "am-json").validate_python(body)
    assert isinstance(body["max_tokens"], int), "max_tokens is required"
    assert body["max_tokens"] > 0
    if "temperature" in body:
        assert 0 <= body["temperature"] <= 1, "Anthropic temperature is 0..1"
    thinking = body.get("thinking") or {}
    if thinking.get("type") in ("enabled", "adaptive"):
        if thinking.get("type") == "enabled":
            assert 1024 <= thinking["budget_tokens"] < body["max_tokens"], "budget >= 1024 and < max_tokens"
        assert body.get("temperature", 1) == 1, "temperature may only be 1 with thinking"
        assert "top_k" not in body
        assert (body.get("tool_choice") or {}).get("type", "auto") in ("auto", "none"), (
            "thinking forbids forced tool use"
        )
    for t in body.get("tools") or []:
        if t.get("type", "custom") == "custom":
            assert ANTHROPIC_NAME.match(t["name"]), t["name"]
            schema = t["input_schema"]
            assert schema.get("type") == "object", "input_schema root is an object"
            assert not {"anyOf", "oneOf", "allOf"} & set(schema), "no root combinators"
    system = body.get("system")
    if isinstance(system, list):
        for block in system:
            assert block["text"], "no empty system text blocks"
    msgs = body["messages"]
    assert msgs, "at least one message"
    assert msgs[0]["role"] == "user", "the conversation starts with a user turn"
    for a, b in itertools.pairwise(msgs):
        assert a["role"] != b["role"], "roles alternate"
    pending: set[str] = set()
    for m in msgs:
        blocks = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
        assert blocks, "no empty messages"
        assert m["role"] in ("user", "assistant")
        results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
        if m["role"] == "user":
            assert results == [b.get("tool_use_id") for b in blocks[: len(results)]], (
                "tool_result blocks come first"
            )
            assert set(results) == pending, f"results {results} do not answer the calls {pending}"
            pending = set()
        else:
            assert not results
        for b in blocks:
            if b["type"] == "text":
                assert b["text"], "text content blocks must be non-empty"
            elif b["type"] == "tool_use":
                assert ANTHROPIC_ID.match(b["id"]), b["id"]
                assert isinstance(b["input"], dict)
                pending.add(b["id"])
            elif b["type"] == "tool_result":
                assert ANTHROPIC_ID.match(b["tool_use_id"])
            elif b["type"] == "thinking":
                assert b["signature"], "thinking blocks need their signature"
        if m["role"] == "user":
            assert not pending


# ----------------------------------------------------------------------------------------------------------
# Gemini
# ----------------------------------------------------------------------------------------------------------


def _gemini_head(req: RecordedRequest, body: dict[str, Any]) -> None:
    assert ":generateContent" in req.path or ":streamGenerateContent" in req.path, req.path
    if ":streamGenerateContent" in req.path:
        assert req.query.get("alt") == "sse", "the gateway reads Gemini streams as SSE"
    assert req.headers.get("x-goog-api-key"), "Gemini auth is x-goog-api-key"


def check_gemini(body: dict[str, Any]) -> None:
    assert "model" not in body, "Gemini puts the model in the URL"
    assert "stream" not in body, "Gemini says stream by the method name"
    assert body["contents"], "Gemini rejects a request with no contents"
    for content in body["contents"]:
        gtypes.Content.model_validate(content)
        assert content["role"] in ("user", "model")
        assert content["parts"], "empty contents are rejected"
        for part in content["parts"]:
            assert part.get("text") != "", "empty text parts are rejected"
            data = set(part) - {"thoughtSignature", "thought"}
            assert len(data) == 1, f"a part holds exactly one data field: {part}"
            if "functionResponse" in part:
                assert isinstance(part["functionResponse"]["response"], dict)
                assert part["functionResponse"]["name"]
    roles = [c["role"] for c in body["contents"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), "consecutive same-role contents are merged"
    assert roles[-1] == "user", "the request ends with a user turn"
    for i, content in enumerate(body["contents"]):
        calls = [p for p in content["parts"] if "functionCall" in p]
        if calls and i + 1 < len(body["contents"]):
            responses = [p for p in body["contents"][i + 1]["parts"] if "functionResponse" in p]
            assert len(responses) == len(calls), "function response count must equal call count"
    if "systemInstruction" in body:
        gtypes.Content.model_validate(body["systemInstruction"])
    for tool in body.get("tools") or ():
        gtypes.Tool.model_validate(tool)
        for decl in tool.get("functionDeclarations") or ():
            assert GEMINI_NAME.match(decl["name"]), decl["name"]
            assert not ("parameters" in decl and "parametersJsonSchema" in decl)
            schema = decl.get("parametersJsonSchema")
            if schema is not None:
                assert "$schema" not in json.dumps(schema)
                assert '"strict"' not in json.dumps(schema)
    if "toolConfig" in body:
        gtypes.ToolConfig.model_validate(body["toolConfig"])
    if "generationConfig" in body:
        gen = gtypes.GenerationConfig.model_validate(body["generationConfig"])
        assert not (gen.response_schema is not None and gen.response_json_schema is not None)
        thinking = body["generationConfig"].get("thinkingConfig", {})
        assert not ("thinkingBudget" in thinking and "thinkingLevel" in thinking), "never both"


# ----------------------------------------------------------------------------------------------------------
# reading an upstream request back into neutral turns
# ----------------------------------------------------------------------------------------------------------


def system_of(fmt: str, body: dict[str, Any]) -> list[str]:
    if fmt == OC:
        return [_oc_text(m["content"]) for m in body["messages"] if m["role"] in ("system", "developer")]
    if fmt == OR:
        out = [body["instructions"]] if body.get("instructions") else []
        items = body["input"] if isinstance(body["input"], list) else []
        return out + [_or_text(i["content"]) for i in items if i.get("role") in ("system", "developer")]
    if fmt == AM:
        system = body.get("system")
        if system is None:
            return []
        return [system] if isinstance(system, str) else [b["text"] for b in system]
    return [p["text"] for p in (body.get("systemInstruction") or {}).get("parts", [])]


def _oc_text(content: Any) -> str:
    if isinstance(content, str) or content is None:
        return content or ""
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def _or_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") in ("input_text", "output_text"))


def turns_of(fmt: str, body: dict[str, Any]) -> list[Turn]:
    """The conversation an upstream request carries (system prompt excluded), as neutral turns."""
    return {OC: _oc_turns, OR: _or_turns, AM: _am_turns, GG: _gg_turns}[fmt](body)


def _oc_turns(body: dict[str, Any]) -> list[Turn]:
    out: list[Turn] = []
    names: dict[str, str] = {}
    for m in body["messages"]:
        role = m["role"]
        if role in ("system", "developer"):
            continue
        if role == "tool":
            out.append(
                Turn(
                    "result",
                    _oc_text(m["content"]),
                    call_id=m["tool_call_id"],
                    name=names.get(m["tool_call_id"], ""),
                )
            )
            continue
        if m.get("reasoning_content"):
            out.append(Turn("reasoning", m["reasoning_content"]))
        text = _oc_text(m.get("content"))
        if text:
            out.append(Turn("user" if role == "user" else "assistant", text))
        for tc in m.get("tool_calls") or []:
            names[tc["id"]] = tc["function"]["name"]
            out.append(
                Turn(
                    "call",
                    call_id=tc["id"],
                    name=tc["function"]["name"],
                    args=json.loads(tc["function"]["arguments"] or "{}"),
                )
            )
    return out


def _or_turns(body: dict[str, Any]) -> list[Turn]:
    items = body["input"]
    if isinstance(items, str):
        return [Turn("user", items)]
    out: list[Turn] = []
    names: dict[str, str] = {}
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            if item["role"] in ("system", "developer"):
                continue
            out.append(Turn("user" if item["role"] == "user" else "assistant", _or_text(item["content"])))
        elif kind == "reasoning":
            text = "".join(s["text"] for s in item.get("summary") or [])
            out.append(Turn("reasoning", text, signature=item.get("encrypted_content")))
        elif kind == "function_call":
            names[item["call_id"]] = item["name"]
            out.append(
                Turn(
                    "call",
                    call_id=item["call_id"],
                    name=item["name"],
                    args=json.loads(item["arguments"] or "{}"),
                )
            )
        elif kind == "function_call_output":
            output = item["output"]
            text = output if isinstance(output, str) else _or_text(output)
            out.append(Turn("result", text, call_id=item["call_id"], name=names.get(item["call_id"], "")))
        else:
            out.append(Turn(kind, extra=item))
    return out


def _am_turns(body: dict[str, Any]) -> list[Turn]:
    out: list[Turn] = []
    names: dict[str, str] = {}
    for m in body["messages"]:
        blocks = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
        for b in blocks:
            if b["type"] == "text":
                out.append(Turn("user" if m["role"] == "user" else "assistant", b["text"]))
            elif b["type"] == "thinking":
                out.append(Turn("reasoning", b["thinking"], signature=b["signature"]))
            elif b["type"] == "tool_use":
                names[b["id"]] = b["name"]
                out.append(Turn("call", call_id=b["id"], name=b["name"], args=b["input"]))
            elif b["type"] == "tool_result":
                content = b.get("content", "")
                text = (
                    content
                    if isinstance(content, str)
                    else "".join(c.get("text", "") for c in content if c["type"] == "text")
                )
                out.append(
                    Turn(
                        "result",
                        text,
                        call_id=b["tool_use_id"],
                        name=names.get(b["tool_use_id"], ""),
                        extra={"is_error": b.get("is_error", False)},
                    )
                )
            else:
                out.append(Turn(b["type"], extra=b))
    return out


def _gg_turns(body: dict[str, Any]) -> list[Turn]:
    out: list[Turn] = []
    for c in body["contents"]:
        for p in c["parts"]:
            if "functionCall" in p:
                fc = p["functionCall"]
                out.append(
                    Turn(
                        "call",
                        call_id=fc.get("id"),
                        name=fc["name"],
                        args=fc.get("args", {}),
                        signature=p.get("thoughtSignature"),
                    )
                )
            elif "functionResponse" in p:
                fr = p["functionResponse"]
                response = fr["response"]
                text = response.get("output", response.get("error", response))
                out.append(
                    Turn(
                        "result",
                        text if isinstance(text, str) else json.dumps(text),
                        call_id=fr.get("id"),
                        name=fr["name"],
                        extra={"response": response},
                    )
                )
            elif p.get("thought"):
                out.append(Turn("reasoning", p.get("text", ""), signature=p.get("thoughtSignature")))
            elif "text" in p:
                out.append(
                    Turn(
                        "user" if c["role"] == "user" else "assistant",
                        p["text"],
                        signature=p.get("thoughtSignature"),
                    )
                )
            else:
                out.append(Turn("part", extra=p))
    return out

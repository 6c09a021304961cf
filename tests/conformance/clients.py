"""The client side of the conformance mesh: requests written the way each client format writes them, and
answers read the way each client format's official SDK reads them.

Every answer is validated against the SDK's own types (`ChatCompletion`/`ChatCompletionChunk`, `Response`/
`ResponseStreamEvent`, `Message`/`RawMessageStreamEvent`, `GenerateContentResponse`) and against the stream
grammar the SDK's accumulators rely on, then reduced to an `Answer` in neutral terms (text, reasoning, tool
calls, stop reason, usage in OpenAI's definition, error) so one test can compare all four formats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from anthropic.types import Message as AmMessage
from anthropic.types import RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse as AmErrorResponse
from google.genai import types as gtypes
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response as OrResponse
from openai.types.responses import ResponseStreamEvent
from openai.types.shared import ErrorObject as OcErrorObject
from pydantic import TypeAdapter

OC, OR, AM, GG = "openai-chat", "openai-responses", "anthropic", "gemini"
FORMATS = (OC, OR, AM, GG)

_OR_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
_AM_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)


@dataclass(frozen=True)
class Mode:
    """A client format and how it asks: JSON, SSE, or (Gemini only) a streamed JSON array."""

    client: str
    stream: bool = False
    array: bool = False

    @property
    def id(self) -> str:
        short = {OC: "chat", OR: "responses", AM: "messages", GG: "gemini"}[self.client]
        return short + ("-array" if self.array else "-sse" if self.stream else "-json")

    def __str__(self) -> str:
        return self.id


MODES = (
    Mode(OC),
    Mode(OC, True),
    Mode(OR),
    Mode(OR, True),
    Mode(AM),
    Mode(AM, True),
    Mode(GG),
    Mode(GG, True),
    Mode(GG, True, array=True),
)
STREAM_MODES = tuple(m for m in MODES if m.stream)


@dataclass
class Call:
    id: str | None
    name: str
    arguments: dict[str, Any] | str  # parsed JSON object; the raw text when it is not JSON (custom tools)
    kind: str = "function"


@dataclass
class Answer:
    """What the client got, in neutral terms."""

    status: int
    headers: httpx.Headers
    text: str = ""
    reasoning: str = ""
    signatures: list[str] = field(default_factory=list)  # reasoning tokens the client can echo back
    calls: list[Call] = field(default_factory=list)
    refusal: str = ""
    # stop | length | tool_calls | content_filter | stop_sequence (None: the answer did not say)
    stop: str | None = None
    stop_raw: Any = None  # the format's own value (finish_reason, stop_reason, status, finishReason)
    usage: dict[str, int] | None = None  # input/output/cached/reasoning in OpenAI's definition
    error: dict[str, Any] | None = None  # error body (before the first byte) or in-stream error event
    error_in_stream: bool = False
    raw: Any = None  # the decoded body (JSON) or the list of decoded events (streams)
    extra: dict[str, Any] = field(default_factory=dict)
    relayed: bool = False  # passthrough: the bytes are the fake upstream's own (see _fake_gaps)


# ----------------------------------------------------------------------------------------------------------
# requests
# ----------------------------------------------------------------------------------------------------------

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city"],
}


@dataclass
class Turn:
    """One step of a neutral conversation: user text, an assistant text, an assistant tool call, a tool
    result. `signature` rides on a call or reasoning step as the client received it."""

    kind: str  # user | assistant | call | result | reasoning | parts (Gemini model parts, verbatim)
    text: str = ""
    call_id: str | None = None
    name: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    signature: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def user(text: str) -> Turn:
    return Turn("user", text)


def assistant(text: str) -> Turn:
    return Turn("assistant", text)


def call(call_id: str | None, name: str, args: dict[str, Any], signature: str | None = None) -> Turn:
    return Turn("call", call_id=call_id, name=name, args=args, signature=signature)


def result(call_id: str | None, name: str, text: str) -> Turn:
    return Turn("result", text, call_id=call_id, name=name)


def reasoning(text: str, signature: str | None) -> Turn:
    return Turn("reasoning", text, signature=signature)


def tool_spec(fmt: str, name: str = "get_weather", schema: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = WEATHER_SCHEMA if schema is None else schema
    desc = "Current weather for a city"
    if fmt == OC:
        return {"type": "function", "function": {"name": name, "description": desc, "parameters": schema}}
    if fmt == OR:
        return {"type": "function", "name": name, "description": desc, "parameters": schema, "strict": False}
    if fmt == AM:
        return {"name": name, "description": desc, "input_schema": schema}
    return {"name": name, "description": desc, "parametersJsonSchema": schema}


def body_for(
    fmt: str,
    turns: list[Turn],
    *,
    system: str | None = None,
    tools: list[dict[str, Any]] | None = None,
    stream: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A client request of format `fmt` carrying `turns`; `extra` is merged in at the top level."""
    builders = {OC: _chat_body, OR: _responses_body, AM: _messages_body, GG: _gemini_body}
    body = builders[fmt](turns, system, tools)
    if fmt != GG:
        body["stream"] = stream
    body.update(extra)
    return body


def _chat_body(turns: list[Turn], system: str | None, tools: list[dict[str, Any]] | None) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    pending_reasoning: dict[str, Any] = {}
    for t in turns:
        if t.kind == "user":
            msgs.append({"role": "user", "content": t.text})
        elif t.kind == "assistant":
            msgs.append({"role": "assistant", "content": t.text, **pending_reasoning})
            pending_reasoning = {}
        elif t.kind == "reasoning":
            pending_reasoning = {"reasoning_content": t.text, **t.extra}
        elif t.kind == "call":
            tc = {
                "id": t.call_id,
                "type": "function",
                "function": {"name": t.name, "arguments": json.dumps(t.args)},
            }
            last = msgs[-1] if msgs else None
            if last and last["role"] == "assistant" and last.get("tool_calls") is not None:
                last["tool_calls"].append(tc)
            else:
                msgs.append({"role": "assistant", "content": None, "tool_calls": [tc], **pending_reasoning})
                pending_reasoning = {}
        elif t.kind == "result":
            msgs.append({"role": "tool", "tool_call_id": t.call_id, "content": t.text})
    body: dict[str, Any] = {"messages": msgs}
    if tools:
        body["tools"] = tools
    return body


def _responses_body(
    turns: list[Turn], system: str | None, tools: list[dict[str, Any]] | None
) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for t in turns:
        if t.kind == "user":
            items.append({"role": "user", "content": t.text})
        elif t.kind == "assistant":
            items.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": t.text, "annotations": []}],
                }
            )
        elif t.kind == "reasoning":
            item: dict[str, Any] = {"type": "reasoning", "summary": []}
            if t.text:
                item["summary"] = [{"type": "summary_text", "text": t.text}]
            if t.signature is not None:
                item["encrypted_content"] = t.signature
            items.append(item)
        elif t.kind == "call":
            items.append(
                {
                    "type": "function_call",
                    "call_id": t.call_id,
                    "name": t.name,
                    "arguments": json.dumps(t.args),
                }
            )
        elif t.kind == "result":
            items.append({"type": "function_call_output", "call_id": t.call_id, "output": t.text})
    body: dict[str, Any] = {"input": items}
    if system:
        body["instructions"] = system
    if tools:
        body["tools"] = tools
    return body


def _messages_body(
    turns: list[Turn], system: str | None, tools: list[dict[str, Any]] | None
) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = []

    def add(role: str, block: dict[str, Any]) -> None:
        if msgs and msgs[-1]["role"] == role:
            msgs[-1]["content"].append(block)
        else:
            msgs.append({"role": role, "content": [block]})

    for t in turns:
        if t.kind == "user":
            add("user", {"type": "text", "text": t.text})
        elif t.kind == "assistant":
            add("assistant", {"type": "text", "text": t.text})
        elif t.kind == "reasoning":
            add("assistant", {"type": "thinking", "thinking": t.text, "signature": t.signature or ""})
        elif t.kind == "call":
            add("assistant", {"type": "tool_use", "id": t.call_id, "name": t.name, "input": t.args})
        elif t.kind == "result":
            add("user", {"type": "tool_result", "tool_use_id": t.call_id, "content": t.text})
    body: dict[str, Any] = {"max_tokens": 1024, "messages": msgs}
    if system:
        body["system"] = system
    if tools:
        body["tools"] = tools
    return body


def _gemini_body(turns: list[Turn], system: str | None, tools: list[dict[str, Any]] | None) -> dict[str, Any]:
    contents: list[dict[str, Any]] = []

    def add(role: str, part: dict[str, Any]) -> None:
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].append(part)
        else:
            contents.append({"role": role, "parts": [part]})

    for t in turns:
        if t.kind == "user":
            add("user", {"text": t.text})
        elif t.kind == "assistant":
            add("model", {"text": t.text})
        elif t.kind == "reasoning":
            part: dict[str, Any] = {"text": t.text, "thought": True}
            if t.signature:
                part["thoughtSignature"] = t.signature
            add("model", part)
        elif t.kind == "call":
            fc: dict[str, Any] = {"name": t.name, "args": t.args}
            if t.call_id:
                fc["id"] = t.call_id
            part = {"functionCall": fc}
            if t.signature:
                part["thoughtSignature"] = t.signature
            add("model", part)
        elif t.kind == "parts":  # a model turn echoed verbatim, as the SDKs keep it in chat history
            for part in t.extra["parts"]:
                add("model", part)
        elif t.kind == "result":
            fr: dict[str, Any] = {"name": t.name, "response": {"output": t.text}}
            if t.call_id:
                fr["id"] = t.call_id
            add("user", {"functionResponse": fr})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if tools:
        body["tools"] = [{"functionDeclarations": tools}]
    return body


# ----------------------------------------------------------------------------------------------------------
# sending
# ----------------------------------------------------------------------------------------------------------


def path_for(mode: Mode, model: str) -> str:
    if mode.client == OC:
        return "/v1/chat/completions"
    if mode.client == OR:
        return "/v1/responses"
    if mode.client == AM:
        return "/v1/messages"
    if not mode.stream:
        return f"/v1beta/models/{model}:generateContent"
    return f"/v1beta/models/{model}:streamGenerateContent" + ("" if mode.array else "?alt=sse")


async def send(
    http: httpx.AsyncClient,
    mode: Mode,
    model: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    path: str | None = None,
    passthrough: bool = False,
) -> Answer:
    body = dict(body)
    if mode.client != GG:
        body["model"] = model
        body["stream"] = mode.stream
    r = await http.post(path or path_for(mode, model), json=body, headers=headers or {})
    return read(mode, r, passthrough=passthrough)


def read(mode: Mode, r: httpx.Response, *, passthrough: bool = False) -> Answer:
    """Decode and check a gateway answer the way the client format's SDK would.

    `passthrough`: client and upstream speak the same format, so the answer is the fake upstream's own
    bytes; the few fields the fakes leave out but the newest SDK types require are filled in first
    (see `_fake_gaps`), since the fakes' fidelity is not what this suite tests.
    """
    ans = Answer(r.status_code, r.headers, relayed=passthrough)
    if r.status_code >= 400:
        _read_error(mode.client, r, ans)
        return ans
    ctype = r.headers.get("content-type", "")
    if mode.stream and not mode.array:
        assert ctype.startswith("text/event-stream"), ctype
        {OC: _chat_stream, OR: _responses_stream, AM: _messages_stream, GG: _gemini_stream}[mode.client](
            r.content, ans
        )
    else:
        assert ctype.startswith("application/json"), ctype
        data = json.loads(r.content)
        ans.raw = data
        if mode.array:
            assert isinstance(data, list), "a Gemini stream without alt=sse is one JSON array"
            _gemini_chunks(data, ans)
        else:
            {OC: _chat_json, OR: _responses_json, AM: _messages_json, GG: _gemini_json}[mode.client](
                data, ans
            )
    return ans


def sse_frames(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) per SSE event; comments and blank data ignored."""
    frames: list[tuple[str | None, str]] = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        event, data = None, []
        for line in block.decode().split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            frames.append((event, "\n".join(data)))
    return frames


# ----------------------------------------------------------------------------------------------------------
# errors before the first byte
# ----------------------------------------------------------------------------------------------------------


def _read_error(fmt: str, r: httpx.Response, ans: Answer) -> None:
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    data = json.loads(r.content)
    ans.raw = data
    if fmt in (OC, OR):
        err = OcErrorObject.model_validate(data["error"])
        ans.error = {"type": err.type, "code": err.code, "message": err.message}
    elif fmt == AM:
        parsed = AmErrorResponse.model_validate(data)
        assert data["type"] == "error"
        ans.error = {"type": parsed.error.type, "message": parsed.error.message}
    else:
        if isinstance(data, list):  # a JSON-array stream wraps errors too
            (data,) = data
        err_obj = data["error"]
        assert err_obj["code"] == r.status_code, "Gemini's error code is the HTTP status"
        assert isinstance(err_obj["status"], str)
        assert err_obj["status"].isupper()
        ans.error = {"type": err_obj["status"], "code": err_obj["code"], "message": err_obj["message"]}


# ----------------------------------------------------------------------------------------------------------
# OpenAI Chat
# ----------------------------------------------------------------------------------------------------------

OC_STOP = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}


def _chat_usage(u: Any) -> dict[str, int]:
    return {
        "input": u.prompt_tokens,
        "output": u.completion_tokens,
        "total": u.total_tokens,
        "cached": (u.prompt_tokens_details.cached_tokens or 0) if u.prompt_tokens_details else 0,
        "reasoning": (u.completion_tokens_details.reasoning_tokens or 0)
        if u.completion_tokens_details
        else 0,
    }


def _args(text: str) -> dict[str, Any] | str:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return text
    return value if isinstance(value, dict) else text


def _chat_json(data: dict[str, Any], ans: Answer) -> None:
    cc = ChatCompletion.model_validate(data)
    assert data["object"] == "chat.completion"
    (choice,) = cc.choices
    msg = choice.message
    assert msg.role == "assistant"
    ans.text = msg.content or ""
    ans.refusal = msg.refusal or ""
    extra = msg.model_extra or {}
    ans.reasoning = extra.get("reasoning_content") or ""
    for block in extra.get("thinking_blocks") or []:
        if block.get("signature"):
            ans.signatures.append(block["signature"])
    ans.calls = [
        Call(tc.id, tc.function.name, _args(tc.function.arguments))  # type: ignore[union-attr]
        for tc in msg.tool_calls or []
    ]
    ans.stop_raw = choice.finish_reason
    ans.stop = OC_STOP[choice.finish_reason]
    if cc.usage is not None:
        ans.usage = _chat_usage(cc.usage)


def _chat_stream(raw: bytes, ans: Answer) -> None:
    frames = sse_frames(raw)
    events: list[Any] = []
    ans.raw = events
    text, reasoning = [], []
    calls: dict[int, dict[str, Any]] = {}
    ids: set[str] = set()
    finish_seen = False
    done = False
    for i, (name, data) in enumerate(frames):
        assert name is None, "OpenAI Chat frames carry no event names"
        assert not done, "nothing follows data: [DONE]"
        if data == "[DONE]":
            done = True
            continue
        obj = json.loads(data)
        events.append(obj)
        if "error" in obj:
            ans.error, ans.error_in_stream = obj["error"], True
            assert i == len(frames) - 1, "the error event is the last frame"
            continue
        chunk = ChatCompletionChunk.model_validate(obj)
        assert obj["object"] == "chat.completion.chunk"
        ids.add(chunk.id)
        if not chunk.choices:
            assert chunk.usage is not None, "a choices-less chunk is the usage chunk"
            ans.usage = _chat_usage(chunk.usage)
            continue
        (choice,) = chunk.choices
        delta = choice.delta
        if i == 0:
            assert delta.role == "assistant", "the first chunk names the role"
        if delta.content:
            text.append(delta.content)
        if delta.refusal:
            ans.refusal += delta.refusal
        extra = delta.model_extra or {}
        if extra.get("reasoning_content"):
            reasoning.append(extra["reasoning_content"])
        for block in extra.get("thinking_blocks") or []:
            if block.get("signature"):
                ans.signatures.append(block["signature"])
        for tc in delta.tool_calls or []:
            if tc.index not in calls:
                assert tc.id, "a call's first fragment has its id"
                assert tc.function is not None
                assert tc.function.name, "a call's first fragment has its name"
                assert tc.type == "function"
                calls[tc.index] = {"id": tc.id, "name": tc.function.name, "args": tc.function.arguments or ""}
            else:
                assert tc.id is None or tc.id == calls[tc.index]["id"]
                calls[tc.index]["args"] += (tc.function.arguments or "") if tc.function else ""
        if choice.finish_reason is not None:
            assert not finish_seen, "one finish_reason per choice"
            finish_seen = True
            ans.stop_raw = choice.finish_reason
            ans.stop = OC_STOP[choice.finish_reason]
    if ans.error is None:
        assert done, "an OpenAI Chat stream ends with data: [DONE]"
        assert finish_seen, "the stream said why it ended"
    else:
        assert not done, "no [DONE] after an error"
    assert len(ids) <= 1, "every chunk carries the same id"
    assert sorted(calls) == list(range(len(calls))), "tool call indices count from 0"
    ans.text, ans.reasoning = "".join(text), "".join(reasoning)
    ans.calls = [Call(c["id"], c["name"], _args(c["args"])) for _, c in sorted(calls.items())]


# ----------------------------------------------------------------------------------------------------------
# OpenAI Responses
# ----------------------------------------------------------------------------------------------------------


def _fake_gaps(resp: dict[str, Any], relayed: bool) -> dict[str, Any]:
    """The fake Responses upstream writes usage without `cache_write_tokens`, which openai 3.x's Response
    type requires; fill it in for relayed (passthrough) answers only."""
    usage = resp.get("usage")
    if relayed and isinstance(usage, dict):
        details = usage.get("input_tokens_details")
        if isinstance(details, dict) and "cache_write_tokens" not in details:
            resp = {**resp, "usage": {**usage, "input_tokens_details": {**details, "cache_write_tokens": 0}}}
    return resp


def _responses_usage(u: Any) -> dict[str, int]:
    return {
        "input": u.input_tokens,
        "output": u.output_tokens,
        "total": u.total_tokens,
        "cached": u.input_tokens_details.cached_tokens,
        "reasoning": u.output_tokens_details.reasoning_tokens,
    }


def _responses_result(resp: OrResponse, ans: Answer) -> None:
    text, reasoning = [], []
    for item in resp.output:
        if item.type == "message":
            for part in item.content:
                if part.type == "output_text":
                    text.append(part.text)
                elif part.type == "refusal":
                    ans.refusal += part.refusal
        elif item.type == "reasoning":
            reasoning += [s.text for s in item.summary]
            reasoning += [c.text for c in item.content or []]
            if item.encrypted_content:
                ans.signatures.append(item.encrypted_content)
        elif item.type == "function_call":
            assert item.call_id, "function_call items carry the call id"
            ans.calls.append(Call(item.call_id, item.name, _args(item.arguments)))
        elif item.type == "custom_tool_call":
            ans.calls.append(Call(item.call_id, item.name, item.input, kind="custom"))
    ans.text, ans.reasoning = "".join(text), "".join(reasoning)
    ans.stop_raw = (resp.status, resp.incomplete_details.reason if resp.incomplete_details else None)
    if resp.status == "completed":
        ans.stop = "tool_calls" if ans.calls else "stop"
    elif resp.status == "incomplete":
        reason = resp.incomplete_details.reason if resp.incomplete_details else None
        ans.stop = {"max_output_tokens": "length", "content_filter": "content_filter"}.get(str(reason))
    if resp.usage is not None:
        ans.usage = _responses_usage(resp.usage)


def _responses_json(data: dict[str, Any], ans: Answer) -> None:
    resp = OrResponse.model_validate(_fake_gaps(data, ans.relayed))
    assert data["object"] == "response"
    assert resp.status in ("completed", "incomplete"), resp.status
    _responses_result(resp, ans)


RESPONSES_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _responses_stream(raw: bytes, ans: Answer) -> None:
    """Validate every event and the grammar Codex and the SDK accumulator rely on: sequence numbers from 0
    in steps of 1, items opened and closed in order, deltas matching the done item, one terminal event."""
    frames = sse_frames(raw)
    events: list[dict[str, Any]] = []
    ans.raw = events
    open_items: dict[int, dict[str, Any]] = {}
    deltas: dict[int, str] = {}
    done_items: dict[int, dict[str, Any]] = {}
    terminal: dict[str, Any] | None = None
    for seq, (name, data) in enumerate(frames):
        assert data != "[DONE]", "the Responses API sends no [DONE]"
        obj = json.loads(data)
        events.append(obj)
        assert name == obj["type"], f"event name {name} != type {obj['type']}"
        assert obj["sequence_number"] == seq, "sequence numbers count from 0 in steps of 1"
        assert terminal is None, "nothing follows the terminal event"
        if obj["type"] == "error":
            ans.error, ans.error_in_stream = {"code": obj.get("code"), "message": obj["message"]}, True
            _OR_EVENT.validate_python(obj)
            continue
        if "response" in obj:
            _OR_EVENT.validate_python({**obj, "response": _fake_gaps(obj["response"], ans.relayed)})
        else:
            _OR_EVENT.validate_python(obj)
        kind = obj["type"]
        if seq == 0:
            assert kind == "response.created"
        if kind == "response.output_item.added":
            index = obj["output_index"]
            assert index == len(open_items), "items are added in output order"
            open_items[index] = obj["item"]
        elif kind in (
            "response.output_text.delta",
            "response.function_call_arguments.delta",
            "response.reasoning_summary_text.delta",
            "response.custom_tool_call_input.delta",
        ):
            assert obj["output_index"] in open_items
            assert obj["output_index"] not in done_items
            deltas[obj["output_index"]] = deltas.get(obj["output_index"], "") + obj["delta"]
        elif kind == "response.output_item.done":
            index = obj["output_index"]
            assert index in open_items
            assert index not in done_items
            item = obj["item"]
            done_items[index] = item
            assert item.get("id") == open_items[index].get("id")
            _check_item_against_deltas(item, deltas.get(index, ""))
        elif kind in RESPONSES_TERMINAL:
            terminal = obj
    # what the client saw before a failure: the text deltas
    ans.text = "".join(o["delta"] for o in events if o["type"] == "response.output_text.delta")
    if ans.error is not None and terminal is None:
        return
    assert terminal is not None, "a Responses stream ends with a terminal event (Codex errors otherwise)"
    if terminal["type"] == "response.failed":
        assert terminal["response"]["status"] == "failed"
        ans.error = terminal["response"]["error"]
        ans.error_in_stream = True
        return
    assert set(done_items) == set(open_items), "every item is closed before the end"
    resp = OrResponse.model_validate(_fake_gaps(terminal["response"], ans.relayed))
    assert [o.model_dump(exclude_none=True).get("id") for o in resp.output] == [
        done_items[i].get("id") for i in sorted(done_items)
    ], "the terminal response lists the done items in order"
    _responses_result(resp, ans)


def _check_item_against_deltas(item: dict[str, Any], streamed: str) -> None:
    if item["type"] == "message":
        whole = "".join(p.get("text", "") for p in item["content"] if p["type"] == "output_text")
        assert whole == streamed, "output_text deltas add up to the done item's text"
    elif item["type"] == "function_call":
        assert item["arguments"] == streamed, "argument deltas add up to the done item's arguments"
        assert item["status"] == "completed"
    elif item["type"] == "reasoning":
        assert "".join(s["text"] for s in item["summary"]) == streamed


# ----------------------------------------------------------------------------------------------------------
# Anthropic Messages
# ----------------------------------------------------------------------------------------------------------

AM_STOP = {
    "end_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "stop_sequence": "stop_sequence",
    "pause_turn": "pause",
    "model_context_window_exceeded": "context_window",
}


def _messages_usage(u: dict[str, Any]) -> dict[str, int]:
    cached = u.get("cache_read_input_tokens") or 0
    written = u.get("cache_creation_input_tokens") or 0
    inp = (u.get("input_tokens") or 0) + cached + written
    return {
        "input": inp,
        "output": u.get("output_tokens") or 0,
        "cached": cached,
        "total": inp + (u.get("output_tokens") or 0),
    }


def _messages_content(blocks: list[dict[str, Any]], ans: Answer) -> None:
    for b in blocks:
        if b["type"] == "text":
            assert b["text"], "Anthropic text blocks are never empty"
            ans.text += b["text"]
        elif b["type"] == "thinking":
            ans.reasoning += b["thinking"]
            if b.get("signature"):
                ans.signatures.append(b["signature"])
        elif b["type"] == "redacted_thinking":
            ans.signatures.append(b["data"])
        elif b["type"] == "tool_use":
            assert isinstance(b["input"], dict)
            ans.calls.append(Call(b["id"], b["name"], b["input"]))


def _messages_json(data: dict[str, Any], ans: Answer) -> None:
    AmMessage.model_validate(data)
    assert data["type"] == "message"
    assert data["role"] == "assistant"
    _messages_content(data["content"], ans)
    ans.stop_raw = data["stop_reason"]
    ans.stop = AM_STOP[data["stop_reason"]]
    ans.extra["stop_sequence"] = data.get("stop_sequence")
    ans.usage = _messages_usage(data["usage"])


def _messages_stream(raw: bytes, ans: Answer) -> None:
    """Validate every event and the block grammar: message_start first, blocks one at a time with indices
    0..n, message_delta then message_stop last; an error event ends the stream."""
    frames = sse_frames(raw)
    events: list[dict[str, Any]] = []
    ans.raw = events
    blocks: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    open_index: int | None = None
    usage: dict[str, Any] = {}
    stopped = False
    for i, (name, data) in enumerate(frames):
        obj = json.loads(data)
        events.append(obj)
        assert name == obj["type"], "Anthropic clients dispatch on the event name"
        assert not stopped, "nothing follows message_stop"
        if obj["type"] == "error":
            assert set(obj) == {"type", "error"}
            assert {"type", "message"} <= set(obj["error"])
            ans.error, ans.error_in_stream = obj["error"], True
            assert i == len(frames) - 1, "the error event is the last frame"
            break
        kind = obj["type"]
        if kind == "ping":  # the SDK skips pings before it validates events
            assert i > 0, "message_start comes first"
            continue
        _AM_EVENT.validate_python(obj)
        if i == 0:
            assert kind == "message_start", "message_start comes first"
            assert "usage" in obj["message"], "message_start carries a usage object"
            usage.update(obj["message"]["usage"])
            continue
        assert kind != "message_start"
        if kind == "content_block_start":
            assert open_index is None, "blocks never interleave"
            assert obj["index"] == len(blocks), "block indices count from 0"
            open_index = obj["index"]
            block = dict(obj["content_block"])
            if block["type"] == "text":
                assert block["text"] == ""
            blocks.append(block)
            partial[open_index] = ""
        elif kind == "content_block_delta":
            assert obj["index"] == open_index
            index = obj["index"]
            d = obj["delta"]
            block = blocks[index]
            if d["type"] == "text_delta":
                block["text"] += d["text"]
            elif d["type"] == "thinking_delta":
                block["thinking"] += d["thinking"]
            elif d["type"] == "signature_delta":
                block["signature"] = d["signature"]
            elif d["type"] == "input_json_delta":
                partial[index] += d["partial_json"]
        elif kind == "content_block_stop":
            assert obj["index"] == open_index
            index = obj["index"]
            block = blocks[index]
            if block["type"] == "tool_use":
                block["input"] = json.loads(partial[index]) if partial[index] else {}
                block["raw_json"] = partial[index]
            open_index = None
        elif kind == "message_delta":
            assert open_index is None, "message_delta after the last block closed"
            ans.stop_raw = obj["delta"]["stop_reason"]
            ans.stop = AM_STOP[obj["delta"]["stop_reason"]]
            ans.extra["stop_sequence"] = obj["delta"].get("stop_sequence")
            usage.update({k: v for k, v in obj["usage"].items() if v is not None})
        elif kind == "message_stop":
            stopped = True
    if ans.error is None:
        assert stopped, "an Anthropic stream ends with message_stop"
        assert ans.stop is not None, "message_delta said why it stopped"
    ans.extra["blocks"] = blocks
    _messages_content([b for b in blocks if b["type"] != "tool_use" or "input" in b], ans)
    ans.usage = _messages_usage(usage)


# ----------------------------------------------------------------------------------------------------------
# Gemini
# ----------------------------------------------------------------------------------------------------------

GG_STOP = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "BLOCKLIST": "content_filter",
    "SPII": "content_filter",
    "RECITATION": "content_filter",
}


def _gemini_usage(u: dict[str, Any]) -> dict[str, int]:
    thoughts = u.get("thoughtsTokenCount") or 0
    return {
        "input": u.get("promptTokenCount") or 0,
        "output": (u.get("candidatesTokenCount") or 0) + thoughts,
        "cached": u.get("cachedContentTokenCount") or 0,
        "reasoning": thoughts,
        "total": u.get("totalTokenCount") or 0,
    }


def _gemini_json(data: dict[str, Any], ans: Answer) -> None:
    _gemini_chunks([data], ans)


def _gemini_stream(raw: bytes, ans: Answer) -> None:
    chunks = []
    for name, data in sse_frames(raw):
        assert name is None, "Gemini SSE is data-only"
        assert data != "[DONE]", "Gemini SSE has no [DONE]"
        chunks.append(json.loads(data))
    ans.raw = chunks
    _gemini_chunks(chunks, ans)


def _gemini_chunks(chunks: list[dict[str, Any]], ans: Answer) -> None:
    for i, obj in enumerate(chunks):
        if "error" in obj:
            ans.error, ans.error_in_stream = obj["error"], True
            assert i == len(chunks) - 1, "the error chunk is the last one"
            break
        gtypes.GenerateContentResponse.model_validate(obj)
        feedback = obj.get("promptFeedback") or {}
        if feedback.get("blockReason"):
            ans.stop_raw = feedback["blockReason"]
            ans.stop = "content_filter"
        for cand in obj.get("candidates") or []:
            assert cand.get("index", 0) == 0
            for part in (cand.get("content") or {}).get("parts") or []:
                ans.extra.setdefault("model_parts", []).append(part)
                assert part.get("text") != "" or "thoughtSignature" in part, "no empty text parts"
                if "thoughtSignature" in part:
                    ans.signatures.append(part["thoughtSignature"])
                if "functionCall" in part:
                    fc = part["functionCall"]
                    assert isinstance(fc.get("args", {}), dict)
                    ans.calls.append(Call(fc.get("id"), fc["name"], fc.get("args", {})))
                    ans.extra.setdefault("call_parts", []).append(part)
                elif part.get("thought"):
                    ans.reasoning += part.get("text", "")
                elif "text" in part:
                    ans.text += part["text"]
            if cand.get("finishReason"):
                assert ans.stop_raw is None, "one finishReason per stream"
                ans.stop_raw = cand["finishReason"]
                ans.stop = GG_STOP.get(cand["finishReason"], cand["finishReason"])
        if obj.get("usageMetadata"):
            ans.usage = _gemini_usage(obj["usageMetadata"])
    if ans.stop == "stop" and ans.calls:
        ans.stop = "tool_calls"  # Gemini has no tool-use reason: calls finish with STOP

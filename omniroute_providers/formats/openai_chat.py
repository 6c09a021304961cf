"""OpenAI Chat Completions (`POST /chat/completions`) <-> IR, both as client format and as upstream format.

Sections:

    1. constants and small readers
    2. request: parse (client -> IR)
    3. request: render (IR -> upstream)
    4. response: parse (upstream -> IR), usage
    5. response: render (IR -> client)
    6. stream: parse (upstream SSE -> IR events)
    7. stream: render (IR events -> client SSE), usage tap
    8. errors
    9. legacy completions (`POST /completions`)

Invariants (beyond those of ir.py):

* Parsers never mutate the body they are given; renderers build new dicts (nested client values such
  as tool schemas and extras may be shared, never modified).
* The upstream request never carries Anthropic `cache_control`, `$schema` in tool parameters, a `user`
  over 64 characters, tool names the OpenAI pattern rejects, or `tool_choice`/`parallel_tool_calls`
  without tools. Renamed tools are recorded in ctx.tool_names so calls come back under the client's name.
* Rendering for an upstream favours what every OpenAI-compatible server accepts over OpenAI-only
  features: system text is one leading string message; tool results are text (their media follow in a
  user message); `allowed_tools` becomes a filtered `tools` list; custom (free-form) tools become
  function tools with one string parameter `input` (unwrapped again on the way back, so the client sees
  a custom call); history call ids longer than 40 characters are shortened deterministically.
* Structured output and strict tools from a non-OpenAI client are made OpenAI-strict, because
  Anthropic and Gemini enforce schemas that OpenAI enforces only in strict mode.
* Streams: tool-call fragments are keyed by `index`, never by their position in the array; one call
  streams live, calls that interleave with it are buffered and flushed in index order when the stream
  finishes (the IR grammar forbids interleaving). Argument fragments are forwarded, never parsed.
* Client-facing output holds only standard OpenAI fields plus two de-facto extensions:
  `reasoning_content` (reasoning text) and `thinking_blocks` (reasoning with its opaque signature).
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from omniroute import (
    GatewayError,
    InvalidRequestError,
    JSONDecodeError,
    JsonObj,
    UpstreamError,
    dumps,
    dumps_str,
    loads,
)
from omniroute_providers.formats.common import (
    error_from_status,
    format_retry_after,
    refuse_previous_response_id,
    retry_after_from_headers,
)
from omniroute_providers.formats.names import sanitize_tool_name, shorten_call_id
from omniroute_providers.formats.schema import strip_json_schema_meta, to_openai_strict_schema
from omniroute_providers.formats.sse import DONE, SSEEvent
from omniroute_providers.formats.think_tags import ThinkTagSplitter, split_think_tags
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
    Part,
    ReasoningConfig,
    RedactedThinking,
    RefusalDelta,
    RefusalPart,
    ResponseFormat,
    StopReason,
    StreamEvent,
    StreamStart,
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
    arguments_object,
    data_url,
    effective_stop_reason,
    has_tool_calls,
    merge_usage,
    new_id,
    parse_data_url,
    tag_signature,
    untag_signature,
)

# ==========================================================================================================
# 1. constants and small readers
# ==========================================================================================================

FORMAT_ID = "openai-chat"
STREAM_CONTENT_TYPE = "text/event-stream"

MAX_USER_CHARS = 64  # OpenAI rejects a longer `user` / `safety_identifier`
MAX_CALL_ID_CHARS = 40  # OpenAI rejects longer tool_call ids in history ("maximum length 40")
CUSTOM_INPUT_PARAM = "input"  # the one string property a custom tool becomes on an OpenAI Chat upstream

EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})
# Budget -> effort when a client gave a thinking budget (Anthropic/Gemini) and the upstream takes an effort.
EFFORT_LOW_MAX_BUDGET = 1024
EFFORT_MEDIUM_MAX_BUDGET = 8192

_OPENAI_FORMATS = frozenset({FORMAT_ID, "openai-responses"})  # formats that share OpenAI's semantics

# Top-level request fields the IR interprets; everything else is carried in req.extras.
_KNOWN_REQUEST_FIELDS = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "max_completion_tokens",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "seed",
        "n",
        "frequency_penalty",
        "presence_penalty",
        "stream",
        "stream_options",
        "user",
        "safety_identifier",
        "metadata",
        "prompt_cache_key",
        "store",
    }
)

_FINISH_IN: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    # seen on OpenAI-compatible servers that leak their native vocabulary
    "max_tokens": "length",
    "model_length": "length",
    "eos": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "error": "error",
    "insufficient_system_resource": "error",  # DeepSeek: generation cut by the provider
}

_FINISH_OUT: dict[str, str] = {
    "stop": "stop",
    "stop_sequence": "stop",
    "pause": "stop",
    "error": "stop",
    "length": "length",
    "context_window": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}


def _bad(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def _opt_str(body: JsonObj, key: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _bad(f"`{key}` must be a string", key)


def _opt_int(body: JsonObj, key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise _bad(f"`{key}` must be an integer", key)
    return int(value)


def _opt_float(body: JsonObj, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"`{key}` must be a number", key)
    return float(value)


def _opt_bool(body: JsonObj, key: str) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _bad(f"`{key}` must be true or false", key)


def _count(value: object) -> int:
    """A token count from an upstream: anything that is not a non-negative number counts as 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return 0
    return int(value)


def _dict(value: object) -> JsonObj:
    return value if isinstance(value, dict) else {}


def _completion_id(ctx: Context, prefix: str = "chatcmpl-") -> str:
    rid = ctx.response_id
    return rid if rid.startswith(prefix) else prefix + rid


# ==========================================================================================================
# 2. request: parse (client -> IR)
# ==========================================================================================================


def parse_request(body: JsonObj) -> ChatRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("`model` is required and must be a non-empty string", "model")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _bad("`messages` is required and must be an array of messages", "messages")
    req = ChatRequest(model=model, source_format=FORMAT_ID)
    _parse_messages(messages, req)
    req.tools = _parse_tools(body.get("tools"))
    req.tool_choice = _parse_tool_choice(body.get("tool_choice"))
    req.parallel_tool_calls = _opt_bool(body, "parallel_tool_calls")
    req.response_format = _parse_response_format(body.get("response_format"))
    effort = _opt_str(body, "reasoning_effort")
    if effort:
        req.reasoning = ReasoningConfig(effort=effort, enabled=False if effort == "none" else None)
    max_completion = _opt_int(body, "max_completion_tokens")
    req.max_tokens = max_completion if max_completion is not None else _opt_int(body, "max_tokens")
    req.temperature = _opt_float(body, "temperature")
    req.top_p = _opt_float(body, "top_p")
    req.top_k = _opt_int(body, "top_k")
    req.stop = _parse_stop(body.get("stop"))
    req.seed = _opt_int(body, "seed")
    req.n = _opt_int(body, "n")
    req.frequency_penalty = _opt_float(body, "frequency_penalty")
    req.presence_penalty = _opt_float(body, "presence_penalty")
    req.stream = bool(_opt_bool(body, "stream"))
    req.metadata = _parse_metadata(body.get("metadata"))
    req.cache_key = _opt_str(body, "prompt_cache_key")
    req.store = _opt_bool(body, "store")
    extras = {k: v for k, v in body.items() if k not in _KNOWN_REQUEST_FIELDS}
    _parse_stream_options(body.get("stream_options"), req, extras)
    user, safety_id = _opt_str(body, "user"), _opt_str(body, "safety_identifier")
    req.user = user or safety_id
    if user and safety_id:
        extras["safety_identifier"] = safety_id
    req.extras = extras
    return req


def _parse_stream_options(value: object, req: ChatRequest, extras: JsonObj) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _bad("`stream_options` must be an object", "stream_options")
    include = value.get("include_usage")
    if include is not None and not isinstance(include, bool):
        raise _bad("`stream_options.include_usage` must be true or false", "stream_options.include_usage")
    req.include_usage = bool(include)
    rest = {k: v for k, v in value.items() if k != "include_usage"}
    if rest:  # include_obfuscation & co: same-format only, merged back at render time
        extras["stream_options"] = rest


def _parse_metadata(value: object) -> JsonObj | None:
    if value is None or isinstance(value, dict):
        return value
    raise _bad("`metadata` must be an object", "metadata")


def _parse_stop(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return [s for s in value if s]
    raise _bad("`stop` must be a string or an array of strings", "stop")


def _parse_messages(raw: list[object], req: ChatRequest) -> None:
    leading = True  # system/developer messages before the first other turn form req.system
    legacy_call_id = ""  # legacy function_call / function-role pairs share a synthesized id
    for i, msg in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise _bad(f"`{where}` must be an object", where)
        role = msg.get("role")
        name = msg.get("name") if isinstance(msg.get("name"), str) else None
        if role in ("system", "developer"):
            parts = _text_parts(msg.get("content"), where)
            if leading:
                req.system.extend(parts)
            elif parts:
                req.messages.append(Message("system", list(parts), name=name))
            continue
        leading = False
        if role == "user":
            user_parts = _user_parts(msg.get("content"), where)
            if user_parts:
                req.messages.append(Message("user", user_parts, name=name))
        elif role == "assistant":
            assistant_parts = _assistant_parts(msg, where)
            if msg.get("function_call") is not None:
                legacy_call_id = f"call_fn_{i}"
                assistant_parts.append(_legacy_call(msg["function_call"], legacy_call_id, where))
            if assistant_parts:
                req.messages.append(Message("assistant", assistant_parts, name=name))
        elif role in ("tool", "function"):
            result = _tool_result(msg, where, legacy_call_id if role == "function" else None)
            last = req.messages[-1] if req.messages else None
            if last is not None and last.role == "tool":
                last.parts.append(result)
            else:
                req.messages.append(Message("tool", [result]))
        else:
            raise _bad(
                f"`{where}.role` must be one of system, developer, user, assistant, tool; got {role!r}",
                f"{where}.role",
            )


def _text_parts(content: object, where: str) -> list[TextPart]:
    """System/developer content: a string or text parts (other part types are ignored)."""
    return [p for p in _user_parts(content, where) if isinstance(p, TextPart)]


def _user_parts(content: object, where: str) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    if not isinstance(content, list):
        raise _bad(f"`{where}.content` must be a string or an array of content parts", f"{where}.content")
    out: list[Part] = []
    for j, item in enumerate(content):
        part = _content_part(item, f"{where}.content[{j}]")
        if part is not None:
            out.append(part)
    return out


def _content_part(item: object, where: str) -> Part | None:
    """One OpenAI content part -> an IR part; None for an empty text. Unknown types are carried opaque."""
    if isinstance(item, str):  # some clients send bare strings in the array
        return TextPart(item) if item else None
    if not isinstance(item, dict):
        raise _bad(f"`{where}` must be an object", where)
    kind = item.get("type")
    cache = item.get("cache_control") if isinstance(item.get("cache_control"), dict) else None
    if kind in ("text", "input_text", "output_text"):
        text = item.get("text")
        if not isinstance(text, str):
            raise _bad(f"`{where}.text` must be a string", f"{where}.text")
        return TextPart(text, cache_control=cache) if text else None
    if kind == "image_url":
        return _image_part(item.get("image_url"), where, cache)
    if kind == "input_audio":
        audio = _dict(item.get("input_audio"))
        data, fmt = audio.get("data"), audio.get("format")
        if not isinstance(data, str) or not isinstance(fmt, str):
            raise _bad(f"`{where}.input_audio` needs string `data` and `format`", f"{where}.input_audio")
        return AudioPart(data=data, format=fmt)
    if kind == "file":
        return _file_part(item.get("file"), where, cache)
    if kind == "refusal":
        refusal = item.get("refusal")
        return RefusalPart(refusal) if isinstance(refusal, str) and refusal else None
    if not isinstance(kind, str) or not kind:
        raise _bad(f"`{where}.type` is required", f"{where}.type")
    return OpaquePart(FORMAT_ID, item)


def _image_part(value: object, where: str, cache: JsonObj | None) -> ImagePart:
    if isinstance(value, str):
        url, detail = value, None
    elif isinstance(value, dict) and isinstance(value.get("url"), str):
        url = value["url"]
        detail = value.get("detail") if isinstance(value.get("detail"), str) else None
    else:
        raise _bad(f"`{where}.image_url.url` must be a string", f"{where}.image_url")
    inline = parse_data_url(url)
    if inline is not None:
        return ImagePart(media_type=inline[0], data=inline[1], detail=detail, cache_control=cache)
    return ImagePart(url=url, detail=detail, cache_control=cache)


def _file_part(value: object, where: str, cache: JsonObj | None) -> FilePart:
    if not isinstance(value, dict):
        raise _bad(f"`{where}.file` must be an object", f"{where}.file")
    filename = value.get("filename") if isinstance(value.get("filename"), str) else None
    file_id = value.get("file_id") if isinstance(value.get("file_id"), str) else None
    file_data = value.get("file_data")
    if isinstance(file_data, str) and file_data:
        inline = parse_data_url(file_data)
        if inline is not None:
            media_type, data = inline
        else:  # a bare base64 payload: the type comes from the file name
            media_type, data = (mimetypes.guess_type(filename)[0] if filename else None), file_data
        return FilePart(media_type=media_type, data=data, filename=filename, cache_control=cache)
    if file_id:
        return FilePart(file_id=file_id, filename=filename, cache_control=cache)
    raise _bad(f"`{where}.file` needs `file_data` or `file_id`", f"{where}.file")


def _assistant_parts(msg: JsonObj, where: str) -> list[Part]:
    parts: list[Part] = _thinking_parts(msg)
    content = msg.get("content")
    if isinstance(content, str):
        if content:
            parts.append(TextPart(content))
    elif isinstance(content, list):
        for j, item in enumerate(content):
            part = _content_part(item, f"{where}.content[{j}]")
            if part is not None:
                parts.append(part)
    elif content is not None:
        raise _bad(f"`{where}.content` must be a string, an array or null", f"{where}.content")
    refusal = msg.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(RefusalPart(refusal))
    tool_calls = msg.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise _bad(f"`{where}.tool_calls` must be an array", f"{where}.tool_calls")
        parts.extend(_history_tool_call(tc, f"{where}.tool_calls[{k}]") for k, tc in enumerate(tool_calls))
    return parts


def _thinking_parts(msg: JsonObj) -> list[Part]:
    """`thinking_blocks` (LiteLLM extension, carries signatures) win over the plain reasoning text."""
    reasoning = msg.get("reasoning_content")
    if not isinstance(reasoning, str) or not reasoning:
        reasoning = msg.get("reasoning") if isinstance(msg.get("reasoning"), str) else ""
    blocks = msg.get("thinking_blocks")
    if not isinstance(blocks, list) or not blocks:
        return [ThinkingPart(text=reasoning)] if reasoning else []
    out: list[Part] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue  # an extension field: tolerate what we cannot read
        if block.get("type") == "redacted_thinking":
            data = block.get("data")
            if isinstance(data, str) and data:
                origin, raw = untag_signature(data)
                out.append(ThinkingPart(signature=raw, redacted=True, origin=origin))
            continue
        text = block["thinking"] if isinstance(block.get("thinking"), str) else ""
        sig = block.get("signature")
        origin, raw_sig = untag_signature(sig) if isinstance(sig, str) and sig else (None, None)
        out.append(ThinkingPart(text=text, signature=raw_sig, origin=origin))
    thinking = [p for p in out if isinstance(p, ThinkingPart) and not p.redacted]
    # A streaming client may have kept the text only in reasoning_content and the signature in the block.
    if reasoning and len(thinking) == 1 and not thinking[0].text:
        thinking[0].text = reasoning
    return out


def _history_tool_call(tc: object, where: str) -> ToolCallPart:
    if not isinstance(tc, dict):
        raise _bad(f"`{where}` must be an object", where)
    call_id = tc.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise _bad(f"`{where}.id` is required", f"{where}.id")
    signature, origin = None, None
    sig = _dict(_dict(tc.get("extra_content")).get("google")).get("thought_signature")
    if isinstance(sig, str) and sig:
        origin, signature = untag_signature(sig)
    if tc.get("type") == "custom":
        custom = _dict(tc.get("custom"))
        name, text = custom.get("name"), custom.get("input")
        if not isinstance(name, str) or not isinstance(text, str):
            raise _bad(f"`{where}.custom` needs string `name` and `input`", f"{where}.custom")
        return ToolCallPart(call_id, name, text, kind="custom", signature=signature, origin=origin)
    fn = tc.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise _bad(f"`{where}.function.name` is required", f"{where}.function")
    return ToolCallPart(
        call_id, fn["name"], _arguments_text(fn.get("arguments")), signature=signature, origin=origin
    )


def _arguments_text(value: object) -> str:
    """Arguments as sent: the JSON string untouched; an object (lenient clients) serialised once."""
    if isinstance(value, str):
        return value
    if value is None:
        return "{}"
    return dumps_str(value)


def _legacy_call(fc: object, call_id: str, where: str) -> ToolCallPart:
    fc = _dict(fc)
    name = fc.get("name")
    if not isinstance(name, str):
        raise _bad(f"`{where}.function_call.name` is required", f"{where}.function_call")
    return ToolCallPart(call_id, name, _arguments_text(fc.get("arguments")))


def _tool_result(msg: JsonObj, where: str, legacy_id: str | None) -> ToolResultPart:
    name = msg.get("name") if isinstance(msg.get("name"), str) else None
    if legacy_id is not None:
        call_id: object = legacy_id or f"call_fn_{name or ''}"
    else:
        call_id = msg.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise _bad(f"`{where}.tool_call_id` is required", f"{where}.tool_call_id")
    content = [
        p for p in _user_parts(msg.get("content"), where) if isinstance(p, (TextPart, ImagePart, FilePart))
    ]
    return ToolResultPart(call_id=str(call_id), content=content, name=name)


def _parse_tools(raw: object) -> list[ToolSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _bad("`tools` must be an array", "tools")
    return [_parse_tool(tool, f"tools[{i}]") for i, tool in enumerate(raw)]


def _parse_tool(tool: object, where: str) -> ToolSpec:
    if not isinstance(tool, dict):
        raise _bad(f"`{where}` must be an object", where)
    kind = tool.get("type", "function")
    if kind == "function":
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _bad(f"`{where}.function.name` is required", f"{where}.function.name")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise _bad(f"`{where}.function.parameters` must be an object", f"{where}.function.parameters")
        return ToolSpec(
            name=fn["name"],
            description=fn.get("description") if isinstance(fn.get("description"), str) else None,
            parameters=params,
            strict=fn.get("strict") if isinstance(fn.get("strict"), bool) else None,
        )
    if kind == "custom":
        custom = tool.get("custom")
        if not isinstance(custom, dict) or not isinstance(custom.get("name"), str) or not custom["name"]:
            raise _bad(f"`{where}.custom.name` is required", f"{where}.custom.name")
        fmt = _dict(custom.get("format"))
        grammar = _dict(fmt.get("grammar")) if fmt.get("type") == "grammar" else None
        return ToolSpec(
            name=custom["name"],
            description=custom.get("description") if isinstance(custom.get("description"), str) else None,
            kind="custom",
            # the IR keeps the Responses shape: {type: grammar, syntax, definition}
            grammar={"type": "grammar", **grammar} if grammar is not None else None,
        )
    return ToolSpec(name=str(kind), kind="builtin", raw=tool, raw_format=FORMAT_ID)


_CHOICE_MODES: dict[str, Literal["none", "auto", "required"]] = {
    "none": "none",
    "auto": "auto",
    "required": "required",
}


def _parse_tool_choice(value: object) -> ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, str):
        return ToolChoice(mode=_CHOICE_MODES.get(value, "auto"))  # unknown mode: the provider default
    if not isinstance(value, dict):
        raise _bad("`tool_choice` must be a string or an object", "tool_choice")
    kind = value.get("type")
    if kind in ("function", "custom"):
        name = _dict(value.get(kind)).get("name")
        if not isinstance(name, str) or not name:
            raise _bad(f"`tool_choice.{kind}.name` is required", "tool_choice")
        return ToolChoice(mode="tool", name=name)
    if kind == "allowed_tools":
        allowed = _dict(value.get("allowed_tools"))
        names = [_tool_ref_name(t) for t in allowed.get("tools") or []]
        mode: Literal["required", "auto"] = "required" if allowed.get("mode") == "required" else "auto"
        return ToolChoice(mode=mode, allowed=[n for n in names if n])
    return ToolChoice(mode="auto")


def _tool_ref_name(ref: object) -> str:
    ref = _dict(ref)
    name = _dict(ref.get(ref.get("type") or "function")).get("name", ref.get("name"))
    return name if isinstance(name, str) else ""


def _parse_response_format(value: object) -> ResponseFormat | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("`response_format` must be an object", "response_format")
    kind = value.get("type")
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict):
            raise _bad("`response_format.json_schema` must be an object", "response_format.json_schema")
        schema = spec.get("schema")
        return ResponseFormat(
            "json_schema",
            schema=schema if isinstance(schema, dict) else None,
            name=spec.get("name") if isinstance(spec.get("name"), str) else None,
            strict=spec.get("strict") if isinstance(spec.get("strict"), bool) else None,
            description=spec.get("description") if isinstance(spec.get("description"), str) else None,
        )
    return ResponseFormat("text")


# ==========================================================================================================
# 3. request: render (IR -> upstream)
# ==========================================================================================================


def render_request(req: ChatRequest, ctx: Context) -> JsonObj:
    refuse_previous_response_id(req.previous_response_id)
    body: JsonObj = {"model": ctx.upstream_model or req.model, "messages": _render_messages(req, ctx)}
    tools = _render_tools(req, ctx)
    if tools:
        body["tools"] = tools
        choice = _render_tool_choice(req, ctx)
        if choice is not None:
            body["tool_choice"] = choice
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.response_format is not None:
        body["response_format"] = _render_response_format(req.response_format, req.source_format)
    effort = _effort(req.reasoning) if ctx.caps.thinking_style != "none" else None
    if effort is not None:
        body["reasoning_effort"] = effort
    if req.max_tokens is not None:
        limit = ctx.caps.max_output_tokens
        field_name = ctx.caps.max_tokens_field
        if field_name not in ("max_tokens", "max_completion_tokens"):
            field_name = "max_tokens"
        body[field_name] = min(req.max_tokens, limit) if limit else req.max_tokens
    same_format = req.source_format == FORMAT_ID
    for key, value in (
        ("temperature", req.temperature),
        ("top_p", req.top_p),
        ("top_k", req.top_k if same_format else None),  # not an OpenAI field: only when the client sent it
        ("seed", req.seed),
        ("n", req.n),
        ("frequency_penalty", req.frequency_penalty),
        ("presence_penalty", req.presence_penalty),
        ("prompt_cache_key", req.cache_key),
        ("store", req.store),
    ):
        if value is not None:
            body[key] = value
    if req.stop:
        body["stop"] = list(req.stop)
    if req.user:
        body["user"] = _short_user(req.user)
    if req.metadata is not None and req.source_format in _OPENAI_FORMATS:
        body["metadata"] = req.metadata
    if req.stream:
        body["stream"] = True
        extra_options = _dict(req.extras.get("stream_options")) if same_format else {}
        # always ask for usage: the gateway accounts for every stream, whatever the client wants to see
        body["stream_options"] = {**extra_options, "include_usage": True}
    if same_format:
        for key, value in req.extras.items():
            if key not in body and key != "stream_options":
                body[key] = value
    return body


def _short_user(user: str) -> str:
    """OpenAI caps `user` at 64 characters; longer ids (Claude Code's JSON user_id) become their sha256."""
    if len(user) <= MAX_USER_CHARS:
        return user
    return hashlib.sha256(user.encode("utf-8", "surrogatepass")).hexdigest()


def _effort(reasoning: ReasoningConfig | None) -> str | None:
    if reasoning is None:
        return None
    if reasoning.effort:
        return reasoning.effort if reasoning.effort in EFFORTS else "medium"
    if reasoning.enabled is False or reasoning.adaptive:
        return None  # off or dynamic: the model's default, since not every model accepts "none"
    budget = reasoning.budget_tokens
    if budget is None or budget <= 0:
        return None
    if budget <= EFFORT_LOW_MAX_BUDGET:
        return "low"
    if budget <= EFFORT_MEDIUM_MAX_BUDGET:
        return "medium"
    return "high"


def _upstream_tool_name(name: str, ctx: Context) -> str:
    clean = sanitize_tool_name(name, max_len=ctx.caps.max_tool_name)
    if clean != name:
        ctx.tool_names[clean] = name
    return clean


def _custom_tool_params() -> JsonObj:
    return {
        "type": "object",
        "properties": {CUSTOM_INPUT_PARAM: {"type": "string", "description": "The raw input for the tool."}},
        "required": [CUSTOM_INPUT_PARAM],
    }


def _render_tools(req: ChatRequest, ctx: Context) -> list[JsonObj]:
    allowed = set(req.tool_choice.allowed) if req.tool_choice and req.tool_choice.allowed else None
    out: list[JsonObj] = []
    for tool in req.tools:
        if allowed is not None and tool.name not in allowed:
            continue  # allowed_tools as a filtered list: every OpenAI-compatible server understands that
        if tool.kind == "builtin":
            if tool.raw_format == FORMAT_ID and tool.raw is not None:
                out.append(tool.raw)
            continue
        fn: JsonObj = {"name": _upstream_tool_name(tool.name, ctx)}
        description = tool.description
        if tool.kind == "custom":
            if tool.grammar and isinstance(tool.grammar.get("definition"), str):
                note = f"Input must follow this {tool.grammar.get('syntax', '')} grammar:\n"
                description = (
                    (description + "\n\n" if description else "") + note + tool.grammar["definition"]
                )
            fn["parameters"] = _custom_tool_params()
        elif tool.parameters is not None:
            params = strip_json_schema_meta(tool.parameters)
            if tool.strict and req.source_format not in _OPENAI_FORMATS:
                params = to_openai_strict_schema(params)
            fn["parameters"] = params
        if description:
            fn["description"] = description
        if tool.strict is not None and tool.kind == "function":
            fn["strict"] = tool.strict
        out.append({"type": "function", "function": fn})
    return out


def _render_tool_choice(req: ChatRequest, ctx: Context) -> JsonObj | str | None:
    choice = req.tool_choice
    if choice is None:
        return None
    if choice.mode == "tool" and choice.name:
        return {"type": "function", "function": {"name": _upstream_tool_name(choice.name, ctx)}}
    return choice.mode if choice.mode in ("none", "auto", "required") else "auto"


def _render_response_format(fmt: ResponseFormat, source_format: str) -> JsonObj:
    if fmt.kind != "json_schema":
        return {"type": fmt.kind}
    schema = strip_json_schema_meta(fmt.schema) if fmt.schema is not None else {"type": "object"}
    strict = fmt.strict
    if source_format not in _OPENAI_FORMATS:
        # Anthropic and Gemini enforce their schemas; OpenAI does so only in strict mode, whose rules
        # (no extra properties, every property required) the client's schema may not follow yet
        strict = strict is not False
        if strict:
            schema = to_openai_strict_schema(schema)
    spec: JsonObj = {"name": fmt.name or "response"}
    if fmt.description:
        spec["description"] = fmt.description
    spec["schema"] = schema
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def _render_messages(req: ChatRequest, ctx: Context) -> list[JsonObj]:
    out: list[JsonObj] = []
    system_text = "\n\n".join(p.text for p in req.system if p.text)
    if system_text:
        out.append({"role": "user" if ctx.caps.system_as_user else "system", "content": system_text})
    attachments: list[JsonObj] = []  # media from tool results: OpenAI tool messages are text only
    for msg in req.messages:
        results = [p for p in msg.parts if isinstance(p, ToolResultPart)]
        rest: list[Part] = (
            [p for p in msg.parts if not isinstance(p, ToolResultPart)] if results else msg.parts
        )
        out.extend(_render_tool_result(result, attachments) for result in results)
        if not rest:
            continue
        if attachments:
            out.append({"role": "user", "content": attachments})
            attachments = []
        role = "user" if msg.role == "tool" else msg.role
        rendered = _render_message(role, rest, msg.name, req, ctx)
        if rendered is not None:
            out.append(rendered)
    if attachments:
        out.append({"role": "user", "content": attachments})
    return out


def _render_message(
    role: str, parts: list[Part], name: str | None, req: ChatRequest, ctx: Context
) -> JsonObj | None:
    if role == "assistant":
        msg = _render_assistant(parts, req, ctx)
    elif role == "system":
        text = "\n\n".join(p.text for p in parts if isinstance(p, TextPart))
        if not text:
            return None
        msg = {"role": "user" if ctx.caps.system_as_user else "system", "content": text}
    else:
        content = _render_content(parts)
        if content is None:
            return None
        msg = {"role": "user", "content": content}
    if msg is not None and name:
        msg["name"] = name
    return msg


def _render_content(parts: list[Part]) -> str | list[JsonObj] | None:
    items: list[JsonObj] = []
    for part in parts:
        item = _render_part(part)
        if item is not None:
            items.append(item)
    if not items:
        return None
    if len(items) == 1 and items[0].get("type") == "text":
        return str(items[0]["text"])
    return items


def _render_part(part: Part) -> JsonObj | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        return _render_image(part.media_type, part.data, part.url, part.detail)
    if isinstance(part, FilePart):
        return _render_file(part)
    if isinstance(part, AudioPart):
        return {"type": "input_audio", "input_audio": {"data": part.data, "format": part.format}}
    if isinstance(part, OpaquePart) and part.format == FORMAT_ID:
        return part.data
    return None


def _render_image(
    media_type: str | None, data: str | None, url: str | None, detail: str | None
) -> JsonObj | None:
    target = data_url(media_type, data) if data else url
    if not target:
        return None
    image: JsonObj = {"url": target}
    if detail:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _render_file(part: FilePart) -> JsonObj | None:
    if part.media_type and part.media_type.startswith("image/") and (part.data or part.url):
        return _render_image(part.media_type, part.data, part.url, None)
    if part.data:
        media_type = part.media_type or "application/pdf"
        filename = part.filename or part.title or "document" + (mimetypes.guess_extension(media_type) or "")
        return {"type": "file", "file": {"file_data": data_url(media_type, part.data), "filename": filename}}
    if part.file_id:
        file: JsonObj = {"file_id": part.file_id}
        if part.filename:
            file["filename"] = part.filename
        return {"type": "file", "file": file}
    if part.text is not None:
        heading = f"{part.title}\n\n" if part.title else ""
        return {"type": "text", "text": heading + part.text} if heading or part.text else None
    if part.url:  # a document by URL has no OpenAI Chat part: tell the model where it is
        return {"type": "text", "text": f"[document: {part.title or part.filename or part.url}] {part.url}"}
    return None


def _render_assistant(parts: list[Part], req: ChatRequest, ctx: Context) -> JsonObj | None:
    texts: list[str] = []
    refusals: list[str] = []
    reasoning: list[str] = []
    calls: list[JsonObj] = []
    for part in parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, RefusalPart):
            refusals.append(part.text)
        elif isinstance(part, ThinkingPart):
            if part.text and not part.redacted:
                reasoning.append(part.text)
        elif isinstance(part, ToolCallPart):
            calls.append(_render_history_call(part, req, ctx))
    text = "".join(texts)
    if not text and not calls and not refusals:
        return None  # nothing the upstream could use (e.g. a thinking-only turn)
    msg: JsonObj = {"role": "assistant", "content": text if text or not calls else None}
    if refusals:
        msg["refusal"] = "".join(refusals)
    if calls:
        msg["tool_calls"] = calls
    if ctx.caps.reasoning_content_replay and (reasoning or calls):
        # DeepSeek thinking mode wants reasoning_content back on every tool-call turn, even when empty
        msg["reasoning_content"] = "".join(reasoning)
    return msg


def _render_history_call(call: ToolCallPart, req: ChatRequest, ctx: Context) -> JsonObj:
    arguments = call.arguments if call.arguments.strip() else "{}"
    if call.kind == "custom":
        arguments = dumps_str({CUSTOM_INPUT_PARAM: call.arguments})
    out: JsonObj = {
        "id": shorten_call_id(call.id, MAX_CALL_ID_CHARS),
        "type": "function",
        "function": {"name": _upstream_tool_name(call.name, ctx), "arguments": arguments},
    }
    signature = _replayable_signature(call, req, ctx)
    if signature is not None:  # Gemini's OpenAI-compatible endpoint reads it here
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def _replayable_signature(call: ToolCallPart, req: ChatRequest, ctx: Context) -> str | None:
    """The call's reasoning token, when the IR origin rules allow it to reach this upstream."""
    if call.signature:
        if (
            call.origin == ctx.provider
            if call.origin is not None
            else ctx.upstream_format == req.source_format
        ):
            return call.signature
        return None
    if ctx.signatures is not None:
        cached = ctx.signatures.get(call.id)
        if cached is not None and cached[1] == ctx.provider:
            return cached[0]
    return None


def _render_tool_result(result: ToolResultPart, attachments: list[JsonObj]) -> JsonObj:
    texts: list[str] = []
    media: list[JsonObj] = []
    for part in result.content:
        if isinstance(part, TextPart) or (
            isinstance(part, FilePart) and part.text is not None and not part.data
        ):
            texts.append(part.text or "")
        else:
            item = _render_part(part)
            if item is not None:
                media.append(item)
    text = "\n".join(t for t in texts if t)
    if result.is_error:  # OpenAI has no error flag: say it in the text
        text = f"Error: {text}" if text else "Error"
    if media:
        attachments.append(
            {"type": "text", "text": f"[attachments from the result of tool call {result.call_id}]"}
        )
        attachments.extend(media)
    return {
        "role": "tool",
        "tool_call_id": shorten_call_id(result.call_id, MAX_CALL_ID_CHARS),
        "content": text,
    }


# ==========================================================================================================
# 4. response: parse (upstream -> IR), usage
# ==========================================================================================================


def parse_response(body: JsonObj, ctx: Context) -> ChatResponse:
    choices = body.get("choices")
    if body.get("error") and not choices:
        raise _error_from_payload(body["error"], None)
    choice = _first_choice(choices)
    if choice is None:
        raise UpstreamError("the upstream answered without any choice")
    message = _dict(choice.get("message"))
    parts = _parse_output_message(message, ctx)
    reason = _finish_in(choice.get("finish_reason"))
    created = body.get("created")
    return ChatResponse(
        id=str(body.get("id") or ctx.response_id),
        model=str(body.get("model") or ctx.upstream_model),
        parts=parts,
        stop_reason=effective_stop_reason(reason, has_tool_calls(parts)),
        usage=_parse_usage(body.get("usage")),
        created=created if isinstance(created, int) and not isinstance(created, bool) else ctx.created,
    )


def _first_choice(choices: object) -> JsonObj | None:
    if not isinstance(choices, list):
        return None
    candidates = [c for c in choices if isinstance(c, dict)]
    for c in candidates:
        if c.get("index", 0) == 0:
            return c
    return candidates[0] if candidates else None


def _finish_in(value: object) -> StopReason:
    return _FINISH_IN.get(value, "stop") if isinstance(value, str) else "stop"


def _parse_output_message(msg: JsonObj, ctx: Context) -> list[Part]:
    parts: list[Part] = []
    for part in _thinking_parts(msg):
        if isinstance(part, ThinkingPart):
            part.origin = ctx.provider
        parts.append(part)
    text = _output_text(msg.get("content"), parts, ctx)
    if ctx.caps.think_tags and text:
        reasoning, text = split_think_tags(text)
        if reasoning:
            parts.append(ThinkingPart(text=reasoning, origin=ctx.provider))
    if text:
        annotations = msg.get("annotations")
        citations = [a for a in annotations if isinstance(a, dict)] if isinstance(annotations, list) else None
        parts.append(TextPart(text, citations=citations or None))
    refusal = msg.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(RefusalPart(refusal))
    tool_calls = msg.get("tool_calls")
    if isinstance(tool_calls, list):
        custom = _custom_tool_names(ctx)
        parts.extend(_output_tool_call(tc, ctx, custom) for tc in tool_calls if isinstance(tc, dict))
    legacy = msg.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        parts.append(_output_tool_call({"function": legacy}, ctx, set()))
    return parts


def _output_text(content: object, parts: list[Part], ctx: Context) -> str:
    """Message content as text; typed parts (Mistral-style) may also carry thinking."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts: list[str] = []
    for item in content:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            if item.get("type") == "thinking":
                thought = _thinking_item_text(item)
                if thought:
                    parts.append(ThinkingPart(text=thought, origin=ctx.provider))
            elif isinstance(item.get("text"), str):
                texts.append(item["text"])
    return "".join(texts)


def _thinking_item_text(item: JsonObj) -> str:
    value = item.get("thinking")
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v["text"] for v in value if isinstance(v, dict) and isinstance(v.get("text"), str))
    return ""


def _custom_tool_names(ctx: Context) -> set[str]:
    """Client names of the custom tools this request declared (wrapped as functions upstream)."""
    if ctx.request is None:
        return set()
    return {t.name for t in ctx.request.tools if t.kind == "custom"}


def _unwrap_custom(arguments: str) -> str:
    value = arguments_object(arguments).get(CUSTOM_INPUT_PARAM)
    return value if isinstance(value, str) else arguments


def _output_tool_call(tc: JsonObj, ctx: Context, custom: set[str]) -> ToolCallPart:
    upstream_id = tc["id"] if isinstance(tc.get("id"), str) and tc["id"] else new_id("call")
    call_id = ctx.client_call_id(upstream_id)
    if tc.get("type") == "custom":
        spec = _dict(tc.get("custom"))
        name = ctx.client_tool_name(str(spec.get("name") or ""))
        text = spec["input"] if isinstance(spec.get("input"), str) else ""
        return ToolCallPart(call_id, name, text, kind="custom")
    fn = _dict(tc.get("function"))
    name = ctx.client_tool_name(str(fn.get("name") or ""))
    arguments = _arguments_text(fn.get("arguments"))
    signature = _dict(_dict(tc.get("extra_content")).get("google")).get("thought_signature")
    if not isinstance(signature, str) or not signature:
        signature = None
    elif ctx.signatures is not None:
        ctx.signatures.put(call_id, signature, ctx.provider)
    if name in custom:
        return ToolCallPart(call_id, name, _unwrap_custom(arguments), kind="custom")
    return ToolCallPart(
        call_id, name, arguments, signature=signature, origin=ctx.provider if signature else None
    )


def _parse_usage(value: object) -> Usage | None:
    if not isinstance(value, dict):
        return None
    prompt = _count(value.get("prompt_tokens", value.get("input_tokens")))
    completion = _count(value.get("completion_tokens", value.get("output_tokens")))
    prompt_details = _dict(value.get("prompt_tokens_details"))
    completion_details = _dict(value.get("completion_tokens_details"))
    # DeepSeek reports cache hits beside prompt_tokens rather than in the details object
    cached = _count(prompt_details.get("cached_tokens")) or _count(value.get("prompt_cache_hit_tokens"))
    reasoning = _count(completion_details.get("reasoning_tokens"))
    total = _count(value.get("total_tokens"))
    if reasoning and total and total == prompt + completion + reasoning:
        completion += reasoning  # this server counted reasoning outside completion_tokens
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cached_tokens=cached,
        cache_write_tokens=_count(prompt_details.get("cache_write_tokens")),
        reasoning_tokens=reasoning,
    )


def response_usage(body: JsonObj) -> Usage | None:
    return _parse_usage(body.get("usage"))


def request_path(model: str, stream: bool) -> str:
    return "/chat/completions"


def prepare_passthrough(body: JsonObj) -> JsonObj:
    return body


# ==========================================================================================================
# 5. response: render (IR -> client)
# ==========================================================================================================


def render_response(resp: ChatResponse, ctx: Context) -> JsonObj:
    message = _render_output_message(resp.parts, ctx)
    finish = _FINISH_OUT.get(effective_stop_reason(resp.stop_reason, "tool_calls" in message), "stop")
    body: JsonObj = {
        "id": _completion_id(ctx),
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.client_model or resp.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }
    if resp.usage is not None:
        body["usage"] = _render_usage(resp.usage)
    return body


def _client_token(token: str, origin: str | None, ctx: Context) -> str:
    """Reasoning tokens reach a client raw from its own format, tagged with their origin otherwise."""
    if ctx.upstream_format == ctx.client_format:
        return token
    return tag_signature(token, origin or ctx.provider)


def _render_output_message(parts: list[Part], ctx: Context) -> JsonObj:
    texts: list[str] = []
    refusals: list[str] = []
    reasoning: list[str] = []
    blocks: list[JsonObj] = []
    signed = False
    annotations: list[JsonObj] = []
    calls: list[JsonObj] = []
    for part in parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
            if part.citations and ctx.upstream_format == FORMAT_ID:
                annotations.extend(part.citations)
        elif isinstance(part, RefusalPart):
            refusals.append(part.text)
        elif isinstance(part, ThinkingPart):
            if part.redacted:
                blocks.append(
                    {
                        "type": "redacted_thinking",
                        "data": _client_token(part.signature or "", part.origin, ctx),
                    }
                )
                signed = True
                continue
            if part.text:
                reasoning.append(part.text)
            block: JsonObj = {"type": "thinking", "thinking": part.text}
            if part.signature:
                block["signature"] = _client_token(part.signature, part.origin, ctx)
                signed = True
            blocks.append(block)
        elif isinstance(part, ToolCallPart):
            calls.append(_render_client_call(part))
    message: JsonObj = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": "".join(refusals) if refusals else None,
    }
    if annotations:
        message["annotations"] = annotations
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if signed:
        message["thinking_blocks"] = blocks
    return message


def _render_client_call(call: ToolCallPart) -> JsonObj:
    if call.kind == "custom":
        return {"id": call.id, "type": "custom", "custom": {"name": call.name, "input": call.arguments}}
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _render_usage(usage: Usage) -> JsonObj:
    prompt_details: JsonObj = {"cached_tokens": usage.cached_tokens}
    if usage.cache_write_tokens:
        prompt_details["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


# ==========================================================================================================
# 6. stream: parse (upstream SSE -> IR events)
# ==========================================================================================================


@dataclass(slots=True)
class _CallState:
    """One upstream tool call being assembled from its fragments."""

    id: str = ""
    name: str = ""
    kind: str = "function"
    args: list[str] = field(default_factory=list)  # fragments not yet emitted
    ir_index: int = -1  # -1 until ToolCallStart went out
    hold: bool = False  # a wrapped custom call: unwrap needs the whole JSON, so emit it at the end
    signature: str | None = None


class StreamParser:
    """OpenAI Chat SSE from an upstream -> IR stream events (grammar in ir.py)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._started = False
        self._finished = False
        self._done = False  # saw data: [DONE]
        self._calls: dict[int, _CallState] = {}
        self._last_index = -1
        self._live: _CallState | None = None
        self._next_ir_index = 0
        self._saw_tool_call = False
        self._deferred: list[StreamEvent] = []  # content that arrived while a tool call was streaming
        self._think = ThinkTagSplitter() if ctx.caps.think_tags else None
        self._usage: Usage | None = None
        self._custom: set[str] | None = None

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        data = event.data
        if data == b"[DONE]" or data.strip() == b"[DONE]":
            self._done = True
            return []
        try:
            chunk = loads(data)
        except JSONDecodeError:
            raise UpstreamError("the upstream sent a stream event that is not JSON") from None
        if not isinstance(chunk, dict):
            return []
        if chunk.get("error") or event.event == "error":
            raise _error_from_payload(chunk.get("error") or chunk, None)
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            out.append(
                StreamStart(
                    id=str(chunk.get("id") or self._ctx.response_id),
                    model=str(chunk.get("model") or self._ctx.upstream_model),
                )
            )
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if self._finished:
                    break  # after Finish only usage may follow (n > 1 choices are not carried)
                if isinstance(choice, dict) and choice.get("index", 0) in (0, None):
                    self._choice(choice, out)
        usage = _parse_usage(chunk.get("usage"))
        if usage is not None:
            if self._finished:
                out.append(UsageUpdate(usage))
            else:  # held: a UsageUpdate may not split a tool call, and Finish comes first anyway
                self._usage = merge_usage(self._usage, usage)
        return out

    def close(self) -> list[StreamEvent]:
        if self._finished or not self._started:
            return []
        out: list[StreamEvent] = []
        self._flush(out)
        if self._done:  # [DONE] without a finish_reason: a normal end all the same
            self._finish("stop", out)
        elif self._usage is not None:
            out.append(UsageUpdate(self._usage))
            self._usage = None
        return out

    # -- per chunk -------------------------------------------------------------------------------------

    def _choice(self, choice: JsonObj, out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = _dict(choice.get("message"))  # fake-streaming servers send whole messages
        self._delta(delta, out)
        reason = choice.get("finish_reason")
        if reason:
            self._flush(out)
            self._finish(_finish_in(reason), out)

    def _delta(self, delta: JsonObj, out: list[StreamEvent]) -> None:
        reasoning = delta.get("reasoning_content")
        if not isinstance(reasoning, str) or not reasoning:
            reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self._content(ThinkingDelta(reasoning), out)
        blocks = delta.get("thinking_blocks")
        if isinstance(blocks, list):
            self._thinking_blocks(blocks, bool(reasoning), out)
        content = delta.get("content")
        if isinstance(content, str):
            if content:
                self._text(content, out)
        elif isinstance(content, list):
            for item in content:
                if isinstance(item, dict) and item.get("type") == "thinking":
                    thought = _thinking_item_text(item)
                    if thought:
                        self._content(ThinkingDelta(thought), out)
                elif isinstance(item, dict) and isinstance(item.get("text"), str) and item["text"]:
                    self._text(item["text"], out)
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._content(RefusalDelta(refusal), out)
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for position, tc in enumerate(tool_calls):
                if isinstance(tc, dict):
                    self._tool_fragment(tc, position, out)
        legacy = delta.get("function_call")
        if isinstance(legacy, dict):
            self._tool_fragment({"index": 0, "function": legacy}, 0, out)

    def _thinking_blocks(self, blocks: list[object], had_text: bool, out: list[StreamEvent]) -> None:
        origin = self._ctx.provider
        for block in blocks:
            block = _dict(block)
            if block.get("type") == "redacted_thinking":
                if isinstance(block.get("data"), str) and block["data"]:
                    self._content(RedactedThinking(block["data"], origin), out)
                continue
            text = block.get("thinking")
            if not had_text and isinstance(text, str) and text:
                self._content(ThinkingDelta(text), out)
            if isinstance(block.get("signature"), str) and block["signature"]:
                self._content(ThinkingSignature(block["signature"], origin), out)

    def _text(self, text: str, out: list[StreamEvent]) -> None:
        if self._think is None:
            self._content(TextDelta(text), out)
            return
        for kind, piece in self._think.feed(text):
            self._content(ThinkingDelta(piece) if kind == "reasoning" else TextDelta(piece), out)

    def _content(self, event: StreamEvent, out: list[StreamEvent]) -> None:
        if self._live is not None:
            self._deferred.append(event)
        else:
            out.append(event)

    # -- tool calls ------------------------------------------------------------------------------------

    def _tool_fragment(self, tc: JsonObj, position: int, out: list[StreamEvent]) -> None:
        index = self._fragment_index(tc, position)
        state = self._calls.get(index)
        if state is None:
            state = self._calls[index] = _CallState()
            self._last_index = index
        if tc.get("type") == "custom":
            state.kind = "custom"
        call_id = tc.get("id")
        if isinstance(call_id, str) and call_id and not state.id:
            state.id = call_id
        spec = _dict(tc.get("custom")) if state.kind == "custom" else _dict(tc.get("function"))
        name = spec.get("name")
        if isinstance(name, str) and name and not state.name:
            state.name = name
        signature = _dict(_dict(tc.get("extra_content")).get("google")).get("thought_signature")
        if isinstance(signature, str) and signature:
            state.signature = signature
        fragment = spec.get("input") if state.kind == "custom" else spec.get("arguments")
        if isinstance(fragment, str) and fragment:
            if state is self._live and not state.hold:
                out.append(ToolCallDelta(state.ir_index, fragment))
            else:
                state.args.append(fragment)
        if state.ir_index < 0 and self._live is None and state.id and state.name:
            self._start(state, out)
            self._live = state

    def _fragment_index(self, tc: JsonObj, position: int) -> int:
        index = tc.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            return index
        # no index (some servers omit it): a new id or a second name opens a new call, the rest continues
        call_id = tc.get("id")
        if isinstance(call_id, str) and call_id:
            for known, state in self._calls.items():
                if state.id == call_id:
                    return known
            return max(self._calls, default=-1) + 1
        last = self._calls.get(self._last_index)
        if last is None:
            return position
        name = _dict(tc.get("function")).get("name")
        if isinstance(name, str) and name and last.name:
            return max(self._calls) + 1
        return self._last_index

    def _start(self, state: _CallState, out: list[StreamEvent]) -> None:
        ctx = self._ctx
        state.ir_index = self._next_ir_index
        self._next_ir_index += 1
        self._saw_tool_call = True
        if not state.id:
            state.id = new_id("call")
        name = ctx.client_tool_name(state.name)
        kind: Literal["function", "custom"] = "custom" if state.kind == "custom" else "function"
        if kind == "function" and name in self._custom_names():
            kind, state.hold = "custom", True
        out.append(ToolCallStart(state.ir_index, ctx.client_call_id(state.id), name, kind))
        if state.args and not state.hold:
            out.append(ToolCallDelta(state.ir_index, "".join(state.args)))
            state.args.clear()

    def _end(self, state: _CallState, out: list[StreamEvent]) -> None:
        if state.hold and state.args:
            out.append(ToolCallDelta(state.ir_index, _unwrap_custom("".join(state.args))))
        origin = self._ctx.provider if state.signature else None
        if state.signature and self._ctx.signatures is not None:
            self._ctx.signatures.put(self._ctx.client_call_id(state.id), state.signature, self._ctx.provider)
        out.append(ToolCallEnd(state.ir_index, signature=state.signature, origin=origin))

    def _custom_names(self) -> set[str]:
        if self._custom is None:
            self._custom = _custom_tool_names(self._ctx)
        return self._custom

    def _flush(self, out: list[StreamEvent]) -> None:
        """End of output: held think-tag text, the live call, buffered calls in index order, deferred."""
        if self._think is not None:
            for kind, piece in self._think.flush():
                self._content(ThinkingDelta(piece) if kind == "reasoning" else TextDelta(piece), out)
        if self._live is not None:
            self._end(self._live, out)
            self._live = None
        for index in sorted(self._calls):
            state = self._calls[index]
            if state.ir_index < 0:
                self._start(state, out)
                self._end(state, out)
        self._calls.clear()
        out.extend(self._deferred)
        self._deferred.clear()

    def _finish(self, reason: StopReason, out: list[StreamEvent]) -> None:
        out.append(Finish(effective_stop_reason(reason, self._saw_tool_call)))
        self._finished = True
        if self._usage is not None:
            out.append(UsageUpdate(self._usage))
            self._usage = None


# ==========================================================================================================
# 7. stream: render (IR events -> client SSE), usage tap
# ==========================================================================================================


class StreamRenderer:
    """IR stream events -> `chat.completion.chunk` SSE frames, ended by the usage chunk and [DONE]."""

    _OBJECT = "chat.completion.chunk"
    _ID_PREFIX = "chatcmpl-"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._head = b""  # the chunk's constant fields, encoded once: b'{"id":...,"choices":'
        # OpenAI puts "usage": null on every chunk only when the client asked for the usage chunk
        self._tail = b',"usage":null}\n\n' if ctx.include_usage else b"}\n\n"
        self._started = False
        self._finished = False
        self._closed = False
        self._saw_tool_call = False
        self._kinds: dict[int, str] = {}
        self._thinking: list[str] = []  # text of the open thinking block, repeated beside its signature
        self._usage: Usage | None = None

    def feed(self, event: StreamEvent) -> bytes:
        if self._closed:
            return b""
        out = b"" if self._started else self._open(event.model if isinstance(event, StreamStart) else "")
        if self._thinking and not isinstance(event, (ThinkingDelta, ThinkingSignature)):
            self._thinking.clear()
        return out + self._event(event)

    def _event(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self._delta({"content": event.text}) if event.text else b""
        if isinstance(event, ThinkingDelta):
            if not event.text:
                return b""
            self._thinking.append(event.text)
            return self._delta({"reasoning_content": event.text})
        if isinstance(event, ToolCallDelta):
            if not event.arguments:
                return b""
            if self._kinds.get(event.index) == "custom":
                return self._delta(
                    {"tool_calls": [{"index": event.index, "custom": {"input": event.arguments}}]}
                )
            return self._delta(
                {"tool_calls": [{"index": event.index, "function": {"arguments": event.arguments}}]}
            )
        if isinstance(event, ToolCallStart):
            return self._tool_start(event)
        if isinstance(event, RefusalDelta):
            return self._delta({"refusal": event.text}) if event.text else b""
        if isinstance(event, ThinkingSignature):
            block = {
                "type": "thinking",
                "thinking": "".join(self._thinking),
                "signature": _client_token(event.signature, event.origin, self._ctx),
            }
            self._thinking.clear()
            return self._delta({"thinking_blocks": [block]})
        if isinstance(event, RedactedThinking):
            data = _client_token(event.data, event.origin, self._ctx)
            return self._delta({"thinking_blocks": [{"type": "redacted_thinking", "data": data}]})
        if isinstance(event, UsageUpdate):
            self._usage = merge_usage(self._usage, event.usage)
        elif isinstance(event, Finish) and not self._finished:
            self._finished = True
            reason = effective_stop_reason(event.stop_reason, self._saw_tool_call)
            return self._finish_frame(reason)
        return b""  # StreamStart (handled by _open), ToolCallEnd, OpaqueBlock: nothing on the OpenAI wire

    def _tool_start(self, event: ToolCallStart) -> bytes:
        self._saw_tool_call = True
        self._kinds[event.index] = event.kind
        call: JsonObj = {"index": event.index, "id": event.id, "type": event.kind}
        if event.kind == "custom":
            call["custom"] = {"name": event.name, "input": ""}
        else:
            call["function"] = {"name": event.name, "arguments": ""}
        return self._delta({"tool_calls": [call]})

    def close(self) -> bytes:
        if self._closed:
            return b""
        out = b"" if self._started else self._open("")
        if not self._finished:
            self._finished = True
            out += self._finish_frame(effective_stop_reason("stop", self._saw_tool_call))
        if self._ctx.include_usage:
            usage = dumps(_render_usage(self._usage or Usage()))
            out += b"data: " + self._head + b'[],"usage":' + usage + b"}\n\n"
        self._closed = True
        return out + DONE

    def fail(self, error: GatewayError) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        return b"data: " + dumps({"error": _error_object(error)}) + b"\n\n"

    # -- frames ----------------------------------------------------------------------------------------

    def _open(self, model: str) -> bytes:
        self._started = True
        ctx = self._ctx
        head = {
            "id": _completion_id(ctx, self._ID_PREFIX),
            "object": self._OBJECT,
            "created": ctx.created,
            "model": ctx.client_model or model or ctx.upstream_model,
        }
        self._head = dumps(head)[:-1] + b',"choices":'
        return self._delta({"role": "assistant", "content": ""})

    def _delta(self, delta: JsonObj) -> bytes:
        choice = dumps([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])
        return b"data: " + self._head + choice + self._tail

    def _finish_frame(self, reason: StopReason) -> bytes:
        finish = _FINISH_OUT.get(reason, "stop")
        choice = dumps([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}])
        return b"data: " + self._head + choice + self._tail


class UsageTap:
    """Usage off a passthrough OpenAI Chat stream: only events that mention usage are decoded."""

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def feed(self, event: SSEEvent) -> None:
        data = event.data
        if b'"usage":{' not in data and b'"usage": {' not in data:
            return
        try:
            chunk = loads(data)
        except JSONDecodeError:
            return
        if isinstance(chunk, dict):
            usage = _parse_usage(chunk.get("usage"))
            if usage is not None:
                self.usage = merge_usage(self.usage, usage)


# ==========================================================================================================
# 8. errors
# ==========================================================================================================

# In-band errors carry no HTTP status: infer one from the error's type/code so the mapping matches.
_STATUS_BY_ERROR_TYPE = {
    "invalid_request_error": 400,
    "context_length_exceeded": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "billing_error": 402,
    "permission_error": 403,
    "permission_denied": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "tokens": 429,
    "requests": 429,
    "overloaded_error": 529,
    "service_unavailable": 503,
    "timeout_error": 504,
    "server_error": 500,
    "api_error": 500,
}


def _error_from_payload(err: object, status: int | None, retry_after: float | None = None) -> GatewayError:
    """An OpenAI-style `error` value (object or string) -> the gateway error for it."""
    if isinstance(err, dict):
        message = err.get("message")
        if not isinstance(message, str):
            message = dumps_str(message) if message is not None else ""
        raw_code, err_type, param = err.get("code"), err.get("type"), err.get("param")
    else:
        message, raw_code, err_type, param = str(err), None, None, None
    code = raw_code if isinstance(raw_code, str) and raw_code else None
    if code is None and isinstance(err_type, str) and err_type:
        code = err_type
    if status is None or status < 400:
        numeric = raw_code if isinstance(raw_code, int) and 400 <= raw_code <= 599 else None
        status = numeric or _STATUS_BY_ERROR_TYPE.get(code or "", 500)
    error = error_from_status(status, message, code=code, retry_after=retry_after)
    if isinstance(param, str):
        error.param = param
    return error


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    lowered = {k.lower(): v for k, v in headers.items()}
    retry_after = retry_after_from_headers(lowered)
    try:
        payload = loads(body) if body else None
    except JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        payload = payload[0]  # some servers wrap the error object in an array
    if isinstance(payload, dict):
        err = payload.get("error")
        if err is None:  # {"message": ...} or FastAPI's {"detail": ...}
            detail = payload.get("message", payload.get("detail"))
            err = {"message": detail if isinstance(detail, str) else dumps_str(detail or payload)}
        return _error_from_payload(err, status, retry_after)
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("<"):
        text = ""  # an HTML error page says nothing the status does not
    return error_from_status(status, text, retry_after=retry_after)


def _error_type(error: GatewayError) -> str:
    status = error.status
    if status == 402 or (status == 429 and error.code == "insufficient_quota"):
        return "insufficient_quota"
    if status == 429:
        return "rate_limit_error"
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status in (503, 529):
        return "service_unavailable"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def _error_object(error: GatewayError) -> JsonObj:
    return {"message": error.message, "type": _error_type(error), "param": error.param, "code": error.code}


def render_error(error: GatewayError) -> tuple[int, dict[str, str], bytes]:
    headers = {"content-type": "application/json", **format_retry_after(error.retry_after)}
    return error.status, headers, dumps({"error": _error_object(error)})


# ==========================================================================================================
# 9. legacy completions (`POST /completions`)
# ==========================================================================================================

# Fields of the legacy endpoint that mean something else (logprobs is an int there) or nothing in Chat.
_LEGACY_ONLY_FIELDS = frozenset({"prompt", "suffix", "echo", "best_of", "logprobs"})

_LEGACY_FINISH: dict[str, str] = {
    "length": "length",
    "context_window": "length",
    "content_filter": "content_filter",
}


def parse_legacy_completion(body: JsonObj) -> ChatRequest:
    """A `/completions` body -> IR: the prompt becomes one user message (or `messages`, if given)."""
    chat_body = {k: v for k, v in body.items() if k not in _LEGACY_ONLY_FIELDS}
    if not isinstance(body.get("messages"), list):
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            texts = [prompt]
        elif isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
            texts = list(prompt)
        else:
            raise _bad("`prompt` is required and must be a string or an array of strings", "prompt")
        chat_body["messages"] = [{"role": "user", "content": [{"type": "text", "text": t} for t in texts]}]
    return parse_request(chat_body)


def render_legacy_completion(resp: ChatResponse, ctx: Context) -> JsonObj:
    text = "".join(p.text for p in resp.parts if isinstance(p, TextPart))
    body: JsonObj = {
        "id": _completion_id(ctx, "cmpl-"),
        "object": "text_completion",
        "created": ctx.created,
        "model": ctx.client_model or resp.model,
        "choices": [
            {
                "text": text,
                "index": 0,
                "finish_reason": _LEGACY_FINISH.get(resp.stop_reason, "stop"),
                "logprobs": None,
            }
        ],
    }
    if resp.usage is not None:
        body["usage"] = _render_usage(resp.usage)
    return body


class LegacyCompletionRenderer:
    """IR stream events -> `text_completion` SSE chunks (text only), then usage (if asked) and [DONE]."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._head = b""
        self._closed = False
        self._finished = False
        self._usage: Usage | None = None
        self._model = ""

    def _frame(self, text: str, finish: str | None) -> bytes:
        if not self._head:
            ctx = self._ctx
            head = {
                "id": _completion_id(ctx, "cmpl-"),
                "object": "text_completion",
                "created": ctx.created,
                "model": ctx.client_model or self._model or ctx.upstream_model,
            }
            self._head = dumps(head)[:-1] + b',"choices":'
        choice = dumps([{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}])
        return b"data: " + self._head + choice + b"}\n\n"

    def feed(self, event: StreamEvent) -> bytes:
        if self._closed:
            return b""
        if isinstance(event, StreamStart):
            self._model = event.model
        elif isinstance(event, TextDelta) and event.text:
            return self._frame(event.text, None)
        elif isinstance(event, UsageUpdate):
            self._usage = merge_usage(self._usage, event.usage)
        elif isinstance(event, Finish) and not self._finished:
            self._finished = True
            return self._frame("", _LEGACY_FINISH.get(event.stop_reason, "stop"))
        return b""

    def close(self) -> bytes:
        if self._closed:
            return b""
        out = b"" if self._finished else self._frame("", "stop")
        self._finished = True
        if self._ctx.include_usage:
            usage = dumps(_render_usage(self._usage or Usage()))
            out += b"data: " + self._head + b'[],"usage":' + usage + b"}\n\n"
        self._closed = True
        return out + DONE

    def fail(self, error: GatewayError) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        return b"data: " + dumps({"error": _error_object(error)}) + b"\n\n"


__all__ = [
    "FORMAT_ID",
    "STREAM_CONTENT_TYPE",
    "LegacyCompletionRenderer",
    "StreamParser",
    "StreamRenderer",
    "UsageTap",
    "parse_error",
    "parse_legacy_completion",
    "parse_request",
    "parse_response",
    "prepare_passthrough",
    "render_error",
    "render_legacy_completion",
    "render_request",
    "render_response",
    "request_path",
    "response_usage",
]

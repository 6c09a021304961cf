"""OpenAI Responses (`openai-responses`, POST /responses): requests, responses, SSE, errors <-> IR.

Sections: constants · request parsing · request rendering · passthrough · responses · stream parser ·
stream renderer · usage tap · errors.

Decisions and invariants (formats.md §1.2, hard cases 9 and 10):

* Namespace tool groups (`{type: namespace, name, tools: [...]}`, Codex) are flattened into one ToolSpec
  per member named `<namespace>__<member>` (NAMESPACE_SEP), so every other format sees plain tools. A
  call to such a tool is `<namespace>__<member>` in the IR with ToolCallPart.namespace set; a Responses
  client and a Responses upstream get `namespace` + the short name back.
* Same-format bookkeeping the IR has no field for lives in `req.extras[PRIVATE_KEY]` and is never sent
  upstream: how the leading system text was laid out (`instructions` vs developer/system items), the
  original namespace groups, reasoning items whose summary/content lists cannot be rebuilt from the
  joined text, and which end-user field (`user` / `safety_identifier`) the client used.
* Stateless toward the upstream: `store: false` unless a Responses client asked for storage itself.
  Without storage input item ids are stripped, `item_reference`s dropped and reasoning items kept only
  with `encrypted_content` (the upstream answers 404 "Item with id 'rs_…' not found" otherwise).
* Reasoning tokens follow the IR origin rules; an Anthropic redacted_thinking payload rides inside
  `encrypted_content` as tag_signature(REDACTED_PREFIX + data, origin) so it comes back redacted.
* Streams: `sequence_number` starts at 0 and grows by 1 over every event a renderer writes; each output
  item is closed (`output_item.done` with the complete item) before the next one opens.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from omniroute import (
    ContextLengthError,
    GatewayError,
    InvalidRequestError,
    JSONDecodeError,
    JsonObj,
    QuotaExhaustedError,
    RateLimitError,
    UpstreamError,
    dumps,
    dumps_str,
    loads,
)
from omniroute_providers.formats.common import error_from_status, format_retry_after, retry_after_from_headers
from omniroute_providers.formats.names import sanitize_tool_name, shorten_call_id
from omniroute_providers.formats.schema import strip_json_schema_meta, to_openai_strict_schema
from omniroute_providers.formats.sse import SSEEvent, encode
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
# constants
# ==========================================================================================================

FORMAT_ID = "openai-responses"
STREAM_CONTENT_TYPE = "text/event-stream"

NAMESPACE_SEP = "__"  # `<namespace>__<member>`: the separator MCP-style tool names already use
PRIVATE_KEY = "_responses"  # req.extras key for same-format bookkeeping; never rendered
REDACTED_PREFIX = "redacted:"  # inside a tagged token: Anthropic redacted_thinking data, not a signature
ENCRYPTED_REASONING = "reasoning.encrypted_content"
DEFAULT_SCHEMA_NAME = "response"  # text.format json_schema needs a name; other formats have none

# Request fields this module interprets; every other top-level field goes to req.extras untouched.
_INTERPRETED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "text",
        "max_output_tokens",
        "temperature",
        "top_p",
        "store",
        "include",
        "previous_response_id",
        "prompt_cache_key",
        "user",
        "safety_identifier",
        "metadata",
        "stream",
    }
)
_CHOICE_MODES: dict[str, Literal["none", "auto", "required"]] = {
    "none": "none",
    "auto": "auto",
    "required": "required",
}
_SUMMARIES = frozenset({"auto", "concise", "detailed"})
_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})
# Budget -> effort thresholds (tokens): the low end of CLIProxyAPI's table, formats.md §2.8.
_LOW_BUDGET_MAX = 1024
_MEDIUM_BUDGET_MAX = 8192

# Content-part types: an OpaquePart with one of these is a part inside a message, anything else an item.
_CONTENT_TYPES = frozenset(
    {"input_text", "input_image", "input_file", "input_audio", "output_text", "refusal", "text"}
)
# Input items whose `id` the API requires: stripping it would turn a stateless request into a 400.
_ID_REQUIRED_ITEMS = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "computer_call",
        "image_generation_call",
        "code_interpreter_call",
        "local_shell_call",
        "local_shell_call_output",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_call",
        "program",
        "program_output",
    }
)
# Codex classifies response.failed by these codes (codex-rs sse/responses.rs); others mean "retry".
_UPSTREAM_CODE_STATUS = {
    "context_length_exceeded": 400,
    "invalid_prompt": 400,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "usage_limit_reached": 429,
    "usage_not_included": 429,
    "server_error": 500,
}
_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


# ==========================================================================================================
# request parsing (client -> IR)
# ==========================================================================================================


def _bad(message: str) -> InvalidRequestError:
    return InvalidRequestError(message)


def _opt_str(obj: JsonObj, key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _bad(f"{where}{key} must be a string")


def _opt_int(obj: JsonObj, key: str, where: str = "") -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{where}{key} must be an integer")
    return value


def _opt_num(obj: JsonObj, key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"{key} must be a number")
    return float(value)


def _opt_bool(obj: JsonObj, key: str, where: str = "") -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _bad(f"{where}{key} must be true or false")


def _opt_dict(obj: JsonObj, key: str, where: str = "") -> JsonObj | None:
    value = obj.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise _bad(f"{where}{key} must be an object")


def parse_request(body: JsonObj) -> ChatRequest:
    """A Responses request body -> IR. Shape errors raise InvalidRequestError saying what is wrong."""
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model is required and must be a non-empty string")
    req = ChatRequest(model=model, source_format=FORMAT_ID)
    private: JsonObj = {}
    layout: list[list[Any]] = []
    instructions = _opt_str(body, "instructions", "")
    if instructions:
        req.system.append(TextPart(instructions))
        layout.append(["instructions", 1])
    _InputParser(req, layout, private).parse(body.get("input"))
    if len(layout) > 1 or (layout and layout[0][0] != "instructions"):
        private["system_layout"] = layout
    extras: JsonObj = {k: v for k, v in body.items() if k not in _INTERPRETED}
    _parse_tools(body.get("tools"), req, private)
    _parse_tool_choice(body.get("tool_choice"), req, extras)
    req.parallel_tool_calls = _opt_bool(body, "parallel_tool_calls")
    _parse_reasoning(body, req, extras)
    _parse_text(body, req, extras)
    req.max_tokens = _opt_int(body, "max_output_tokens")
    req.temperature = _opt_num(body, "temperature")
    req.top_p = _opt_num(body, "top_p")
    req.store = _opt_bool(body, "store")
    req.include = _parse_include(body.get("include"))
    req.previous_response_id = _opt_str(body, "previous_response_id", "")
    req.cache_key = _opt_str(body, "prompt_cache_key", "")
    _parse_user(body, req, extras, private)
    req.metadata = _opt_dict(body, "metadata")
    req.stream = _opt_bool(body, "stream") or False
    if private:
        extras[PRIVATE_KEY] = private
    req.extras = extras
    return req


def _parse_include(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad("include must be an array of strings")
    return list(value)


def _parse_user(body: JsonObj, req: ChatRequest, extras: JsonObj, private: JsonObj) -> None:
    """`safety_identifier` replaced `user`; either is the end-user id. With both, `user` rides in extras."""
    safety = _opt_str(body, "safety_identifier", "")
    user = _opt_str(body, "user", "")
    if safety is not None:
        req.user = safety
        private["user_field"] = "safety_identifier"
        if user is not None:
            extras["user"] = user
    elif user is not None:
        req.user = user


class _InputParser:
    """`input` items -> req.system (leading system/developer items) and req.messages."""

    def __init__(self, req: ChatRequest, layout: list[list[Any]], private: JsonObj) -> None:
        self.req = req
        self.layout = layout
        self.private = private
        self.leading = True  # still before the first non-system item
        self.call_names: dict[str, str] = {}  # call_id -> tool name, for ToolResultPart.name

    def parse(self, value: object) -> None:
        if value is None:
            return
        if isinstance(value, str):
            if value:
                self.req.messages.append(Message("user", [TextPart(value)]))
            return
        if not isinstance(value, list):
            raise _bad("input must be a string or an array of items")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise _bad(f"input[{i}] must be an object")
            self.item(item, f"input[{i}]")

    def item(self, item: JsonObj, where: str) -> None:
        kind = item.get("type")
        if kind is None:
            kind = "message" if "role" in item else "item_reference"
        if kind == "message":
            self.message(item, where)
            return
        if kind == "additional_tools":
            # Codex with current models declares its tools here instead of in `tools`: a declaration,
            # not conversation, so the system items after it still lead
            _parse_tools(item.get("tools"), self.req, self.private, f"{where}.tools")
            return
        self.leading = False
        if kind in ("function_call", "custom_tool_call"):
            self.assistant().parts.append(self.tool_call(item, kind, where))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            self.tool_output(item, kind, where)
        elif kind == "reasoning":
            part = self.reasoning(item, where)
            if part is not None:
                self.assistant().parts.append(part)
        else:  # item_reference, local_shell_call, web_search_call, compaction, ...: carried, not read
            self.assistant().parts.append(OpaquePart(FORMAT_ID, item))

    def assistant(self) -> Message:
        """The assistant message this item belongs to: the last one, or a new one after other roles."""
        msgs = self.req.messages
        if msgs and msgs[-1].role == "assistant":
            return msgs[-1]
        msg = Message("assistant")
        msgs.append(msg)
        return msg

    def message(self, item: JsonObj, where: str) -> None:
        role = item.get("role")
        parts = _content_parts(item.get("content"), f"{where}.content", in_tool_output=False)
        if role in ("system", "developer"):
            texts = [
                p for p in parts if isinstance(p, TextPart)
            ]  # images in a system prompt: no target has a slot
            if self.leading:
                self.req.system.extend(texts)
                if texts:
                    self.layout.append([role, len(texts)])
            elif texts:
                self.req.messages.append(Message("system", list[Part](texts)))
            return
        self.leading = False
        if role == "user":
            if parts:
                self.req.messages.append(Message("user", parts))
        elif role == "assistant":
            last = self.req.messages[-1] if self.req.messages else None
            if last is not None and last.role == "assistant" and not _has_content(last):
                last.parts.extend(parts)  # reasoning / calls then the message text: one turn
            elif parts:
                self.req.messages.append(Message("assistant", parts))
        else:
            raise _bad(f"{where}.role must be one of user, assistant, system, developer (got {role!r})")

    def tool_call(self, item: JsonObj, kind: str, where: str) -> ToolCallPart:
        call_id = item.get("call_id")
        name = item.get("name")
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise _bad(f"{where} ({kind}) needs string call_id and name")
        namespace = _opt_str(item, "namespace", f"{where}.")
        full = f"{namespace}{NAMESPACE_SEP}{name}" if namespace else name
        self.call_names[call_id] = full
        if kind == "custom_tool_call":
            text = item.get("input")
            if not isinstance(text, str):
                raise _bad(f"{where}.input must be a string")
            return ToolCallPart(
                call_id, full, text, kind="custom", item_id=item.get("id"), namespace=namespace
            )
        arguments = item.get("arguments")
        if arguments is None:
            arguments = ""
        if not isinstance(arguments, str):  # some clients send the object: keep it as JSON text
            arguments = dumps_str(arguments)
        return ToolCallPart(call_id, full, arguments, item_id=item.get("id"), namespace=namespace)

    def tool_output(self, item: JsonObj, kind: str, where: str) -> None:
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            raise _bad(f"{where} ({kind}) needs a string call_id")
        output = item.get("output")
        if isinstance(output, str):
            content: list[TextPart | ImagePart | FilePart] = [TextPart(output)] if output else []
        elif isinstance(output, list):
            content = [
                p
                for p in _content_parts(output, f"{where}.output", in_tool_output=True)
                if isinstance(p, (TextPart, ImagePart, FilePart))
            ]
        elif output is None:
            content = []
        else:
            content = [TextPart(dumps_str(output))]
        part = ToolResultPart(
            call_id,
            content,
            name=self.call_names.get(call_id),
            kind="custom" if kind == "custom_tool_call_output" else "function",
        )
        msgs = self.req.messages
        if msgs and msgs[-1].role == "tool":
            msgs[-1].parts.append(part)
        else:
            msgs.append(Message("tool", [part]))

    def reasoning(self, item: JsonObj, where: str) -> ThinkingPart | None:
        summary = item.get("summary")
        content = item.get("content")
        if summary is not None and not isinstance(summary, list):
            raise _bad(f"{where}.summary must be an array")
        if content is not None and not isinstance(content, list):
            raise _bad(f"{where}.content must be an array")
        text = _reasoning_text(item)
        token = _opt_str(item, "encrypted_content", f"{where}.")
        origin, raw, redacted = _split_token(token) if token else (None, None, False)
        item_id = _opt_str(item, "id", f"{where}.")
        key = _reasoning_key(item_id, raw)
        if key and (content is not None or (summary or []) != _summary_list(text)):
            self.private.setdefault("reasoning", {})[key] = {
                "text": text,
                "summary": summary,
                "content": content,
            }
        return ThinkingPart(text, raw, redacted=redacted, origin=origin, item_id=item_id)


def _reasoning_key(item_id: str | None, token: str | None) -> str:
    """Which reasoning item a ThinkingPart came from (for the private summary/content record)."""
    return f"{item_id}|{token}" if item_id or token else ""


def _has_content(msg: Message) -> bool:
    return any(isinstance(p, (TextPart, RefusalPart)) for p in msg.parts)


def _split_token(token: str) -> tuple[str | None, str, bool]:
    """encrypted_content -> (origin, raw token, redacted)."""
    origin, raw = untag_signature(token)
    if origin is not None and raw.startswith(REDACTED_PREFIX):
        return origin, raw[len(REDACTED_PREFIX) :], True
    return origin, raw, False


def _summary_list(text: str) -> list[JsonObj]:
    return [{"type": "summary_text", "text": text}] if text else []


def _reasoning_text(item: JsonObj) -> str:
    """Summary texts joined by a blank line; the raw reasoning_text content when there is no summary."""
    for key in ("summary", "content"):
        parts = item.get(key)
        if isinstance(parts, list):
            texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
            joined = "\n\n".join(t for t in texts if t)
            if joined:
                return joined
    return ""


def _content_parts(content: object, where: str, *, in_tool_output: bool) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    if not isinstance(content, list):
        raise _bad(f"{where} must be a string or an array of content parts")
    parts: list[Part] = []
    for i, raw in enumerate(content):
        if not isinstance(raw, dict):
            raise _bad(f"{where}[{i}] must be an object")
        part = _content_part(raw, f"{where}[{i}]", in_tool_output)
        if part is not None:
            parts.append(part)
    return parts


def _content_part(raw: JsonObj, where: str, in_tool_output: bool) -> Part | None:
    kind = raw.get("type")
    if kind in ("input_text", "output_text", "text"):
        text = raw.get("text")
        if not isinstance(text, str):
            raise _bad(f"{where}.text must be a string")
        annotations = raw.get("annotations")
        citations = annotations if isinstance(annotations, list) and annotations else None
        return TextPart(text, citations=citations) if text else None
    if kind == "refusal":
        refusal = raw.get("refusal")
        return RefusalPart(refusal) if isinstance(refusal, str) and refusal else None
    if kind == "input_image":
        return _image_part(raw, where, in_tool_output)
    if kind == "input_file":
        return _file_part(raw, where)
    return OpaquePart(FORMAT_ID, raw)


def _image_part(raw: JsonObj, where: str, in_tool_output: bool) -> Part:
    url = raw.get("image_url")
    if isinstance(url, dict):  # Chat Completions shape {url, detail} sent here by mistake: accept it
        url = url.get("url")
    detail = raw.get("detail") if isinstance(raw.get("detail"), str) else None
    if isinstance(url, str) and url:
        parsed = parse_data_url(url)
        if parsed is not None:
            return ImagePart(media_type=parsed[0], data=parsed[1], detail=detail)
        return ImagePart(url=url, detail=detail)
    file_id = raw.get("file_id")
    if isinstance(file_id, str) and file_id:
        # An OpenAI file id means nothing to other providers. Inside a message it rides as an opaque
        # part; a tool output only holds text/image/file, so there it becomes a file reference.
        if in_tool_output:
            return FilePart(media_type="image/*", file_id=file_id)
        return OpaquePart(FORMAT_ID, raw)
    raise _bad(f"{where} (input_image) needs image_url or file_id")


def _file_part(raw: JsonObj, where: str) -> FilePart:
    filename = raw.get("filename") if isinstance(raw.get("filename"), str) else None
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    file_data = raw.get("file_data")
    if isinstance(file_data, str) and file_data:
        parsed = parse_data_url(file_data)
        if parsed is not None:
            return FilePart(media_type=parsed[0] or guessed, data=parsed[1], filename=filename)
        return FilePart(media_type=guessed, data=file_data, filename=filename)  # bare base64
    file_url = raw.get("file_url")
    if isinstance(file_url, str) and file_url:
        media_type = guessed or mimetypes.guess_type(file_url.split("?", 1)[0])[0]
        return FilePart(media_type=media_type, url=file_url, filename=filename)
    file_id = raw.get("file_id")
    if isinstance(file_id, str) and file_id:
        return FilePart(media_type=guessed, file_id=file_id, filename=filename)
    raise _bad(f"{where} (input_file) needs file_data, file_url or file_id")


def _parse_tools(value: object, req: ChatRequest, private: JsonObj, where: str = "tools") -> None:
    """`tools` (or an `additional_tools` input item's list) -> req.tools; a name declared again replaces
    the earlier declaration, as a later `additional_tools` item does for Codex."""
    if value is None:
        return
    if not isinstance(value, list):
        raise _bad(f"{where} must be an array")
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise _bad(f"{where}[{i}] must be an object")
        kind = tool.get("type")
        if kind in ("function", "custom"):
            _declare(req, _tool_spec(tool, f"{where}[{i}]", prefix=""))
        elif kind == "namespace":
            ns = tool.get("name")
            members = tool.get("tools")
            if not isinstance(ns, str) or not ns or not isinstance(members, list):
                raise _bad(f"{where}[{i}] (namespace) needs a name and a tools array")
            for j, member in enumerate(members):
                if not isinstance(member, dict):
                    raise _bad(f"{where}[{i}].tools[{j}] must be an object")
                spec = _tool_spec(member, f"{where}[{i}].tools[{j}]", prefix=ns + NAMESPACE_SEP)
                _declare(req, spec)
            private.setdefault("namespaces", {})[ns] = tool
        else:  # hosted tools: web_search, file_search, mcp, local_shell, ...
            raw_name = tool.get("name")
            name = raw_name if isinstance(raw_name, str) and raw_name else str(kind)
            _declare(req, ToolSpec(name=name, kind="builtin", raw=tool, raw_format=FORMAT_ID))


def _declare(req: ChatRequest, spec: ToolSpec) -> None:
    req.tools[:] = [t for t in req.tools if t.name != spec.name]
    req.tools.append(spec)


def _tool_spec(tool: JsonObj, where: str, prefix: str) -> ToolSpec:
    src = tool
    if "name" not in tool and isinstance(tool.get("function"), dict):
        src = tool["function"]  # Chat Completions nesting sent to /responses: accept it
    name = src.get("name")
    if not isinstance(name, str) or not name:
        raise _bad(f"{where}.name is required")
    description = _opt_str(src, "description", f"{where}.")
    if tool.get("type") == "custom":
        grammar = _opt_dict(src, "format", f"{where}.")
        return ToolSpec(prefix + name, description, kind="custom", grammar=grammar)
    return ToolSpec(
        prefix + name,
        description,
        parameters=_opt_dict(src, "parameters", f"{where}."),
        strict=_opt_bool(src, "strict", f"{where}."),
    )


def _parse_tool_choice(value: object, req: ChatRequest, extras: JsonObj) -> None:
    if value is None:
        return
    if isinstance(value, str):
        mode = _CHOICE_MODES.get(value)
        if mode is not None:
            req.tool_choice = ToolChoice(mode)
        else:
            extras["tool_choice"] = value
        return
    if not isinstance(value, dict):
        raise _bad("tool_choice must be a string or an object")
    kind = value.get("type")
    if kind in ("function", "custom") and isinstance(value.get("name"), str):
        req.tool_choice = ToolChoice("tool", name=value["name"])
    elif kind == "allowed_tools" and isinstance(value.get("tools"), list):
        names = [t["name"] for t in value["tools"] if isinstance(t, dict) and isinstance(t.get("name"), str)]
        required = value.get("mode") == "required"
        req.tool_choice = ToolChoice("required" if required else "auto", allowed=names)
    else:  # a hosted tool ({type: web_search}, mcp, ...): only a Responses upstream understands it
        extras["tool_choice"] = value


def _parse_reasoning(body: JsonObj, req: ChatRequest, extras: JsonObj) -> None:
    r = _opt_dict(body, "reasoning")
    if r is None:
        return
    effort = _opt_str(r, "effort", "reasoning.")
    summary = _opt_str(r, "summary", "reasoning.")
    req.reasoning = ReasoningConfig(
        enabled=(effort != "none") if effort is not None else None, effort=effort, summary=summary
    )
    rest = {k: v for k, v in r.items() if k not in ("effort", "summary")}
    if rest:
        extras["reasoning"] = rest


def _parse_text(body: JsonObj, req: ChatRequest, extras: JsonObj) -> None:
    t = _opt_dict(body, "text")
    if t is None:
        return
    fmt = _opt_dict(t, "format", "text.")
    rest = {k: v for k, v in t.items() if k != "format"}
    if fmt is not None:
        kind = fmt.get("type")
        if kind == "json_schema":
            schema = _opt_dict(fmt, "schema", "text.format.")
            req.response_format = ResponseFormat(
                "json_schema",
                schema=schema,
                name=_opt_str(fmt, "name", "text.format."),
                strict=_opt_bool(fmt, "strict", "text.format."),
                description=_opt_str(fmt, "description", "text.format."),
            )
        elif kind in ("text", "json_object"):
            req.response_format = ResponseFormat(kind)
        else:
            rest["format"] = fmt  # unknown format type: carried for a Responses upstream only
    if rest or not t:
        extras["text"] = rest


# ==========================================================================================================
# request rendering (IR -> upstream)
# ==========================================================================================================


def render_request(req: ChatRequest, ctx: Context) -> JsonObj:
    """IR -> a Responses request body for `ctx.upstream_model`. Records tool-name and call-id renames."""
    same = req.source_format == FORMAT_ID
    private: JsonObj = req.extras.get(PRIVATE_KEY) or {} if same else {}
    store = bool(req.store) if same and req.store is not None else False
    body: JsonObj = {"model": ctx.upstream_model or req.model}
    instructions, items = _render_system(req, ctx, private)
    if instructions:
        body["instructions"] = instructions
    items.extend(_RequestItems(req, ctx, private, store).render())
    body["input"] = items if store else _stateless_items(items)
    tools = _render_tools(req, ctx, private, upstream=True)
    if tools:
        body["tools"] = tools
    if req.tool_choice is not None:
        body["tool_choice"] = _render_tool_choice(req.tool_choice, req, ctx, upstream=True)
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    reasoning_on = _render_reasoning(req, ctx, body, same)
    include = list(req.include) if same else []
    if reasoning_on and not store and not same:
        include.append(ENCRYPTED_REASONING)  # stateless: the only way to replay reasoning next turn
    if include:
        body["include"] = include
    if req.max_tokens is not None:
        cap = ctx.caps.max_output_tokens
        body["max_output_tokens"] = min(req.max_tokens, cap) if cap else req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.response_format is not None:
        body["text"] = {"format": _render_format(req.response_format, same)}
    body["store"] = store
    if req.previous_response_id:
        body["previous_response_id"] = req.previous_response_id
    if req.cache_key:
        body["prompt_cache_key"] = req.cache_key
    if req.user:
        body[private.get("user_field", "user")] = req.user
    if req.metadata is not None:
        body["metadata"] = req.metadata
    if req.stream:
        body["stream"] = True
    if same:
        _merge_extras(body, req.extras)
    return body


def _merge_extras(body: JsonObj, extras: JsonObj) -> None:
    """Fields a Responses client sent that the IR does not read go back as they came."""
    for key, value in extras.items():
        if key == PRIVATE_KEY:
            continue
        current = body.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            body[key] = {**current, **value}
        elif key not in body:
            body[key] = value


def _render_system(req: ChatRequest, ctx: Context, private: JsonObj) -> tuple[str | None, list[JsonObj]]:
    """Leading system text -> (`instructions`, leading developer/system items)."""
    texts = [p.text for p in req.system if p.text]
    if not texts:
        return None, []
    if ctx.caps.system_as_user:
        return None, [_text_message("user", texts)]
    layout = private.get("system_layout")
    if not isinstance(layout, list) or sum(n for _, n in layout) != len(req.system):
        return "\n\n".join(texts), []
    instructions: str | None = None
    items: list[JsonObj] = []
    pos = 0
    for role, count in layout:
        chunk = [p.text for p in req.system[pos : pos + count]]
        pos += count
        if role == "instructions":
            instructions = chunk[0]
        else:
            items.append(_text_message(role, chunk))
    return instructions, items


def _text_message(role: str, texts: list[str]) -> JsonObj:
    return {"type": "message", "role": role, "content": [{"type": "input_text", "text": t} for t in texts]}


def _token_ok(origin: str | None, req: ChatRequest, ctx: Context) -> bool:
    """IR origin rule: replay a reasoning token only to the upstream that minted it."""
    if origin is not None:
        return origin == ctx.provider
    return ctx.upstream_format == req.source_format


def _upstream_name(name: str, ctx: Context) -> str:
    fixed = sanitize_tool_name(name, max_len=ctx.caps.max_tool_name or 64)
    if fixed != name:
        ctx.tool_names[fixed] = name
    return fixed


def _upstream_call_id(call_id: str, ctx: Context) -> str:
    short = shorten_call_id(call_id)
    if short != call_id:
        ctx.call_ids[short] = call_id
    return short


def _split_namespace(name: str, namespace: str | None) -> tuple[str, str | None]:
    prefix = f"{namespace}{NAMESPACE_SEP}" if namespace else ""
    if prefix and name.startswith(prefix) and len(name) > len(prefix):
        return name[len(prefix) :], namespace
    return name, None


class _RequestItems:
    """IR messages -> Responses input items, in order."""

    def __init__(self, req: ChatRequest, ctx: Context, private: JsonObj, store: bool) -> None:
        self.req = req
        self.ctx = ctx
        self.private = private
        self.store = store
        self.same = req.source_format == FORMAT_ID
        self.items: list[JsonObj] = []

    def render(self) -> list[JsonObj]:
        for msg in self.req.messages:
            self.message(msg)
        return self.items

    def message(self, msg: Message) -> None:
        role: str = msg.role
        if role == "system":
            role = "user" if self.ctx.caps.system_as_user else "developer"
        elif role == "tool":
            role = "user"  # only ToolResultParts live here; they become items of their own
        assistant = role == "assistant"
        content: list[JsonObj] = []
        for part in msg.parts:
            piece = self.content(part, assistant)
            if piece is not None:
                content.append(piece)
                continue
            item = self.item(part)
            if item is None:
                continue
            if content:
                self.items.append({"type": "message", "role": role, "content": content})
                content = []
            self.items.append(item)
        if content:
            self.items.append({"type": "message", "role": role, "content": content})

    def content(self, part: Part, assistant: bool) -> JsonObj | None:
        """A part that belongs inside a message's content, or None when it is an item (or dropped)."""
        if isinstance(part, TextPart):
            if not assistant:
                return {"type": "input_text", "text": part.text}
            out: JsonObj = {"type": "output_text", "text": part.text}
            if self.same and part.citations:  # annotations are Responses-shaped only from a Responses client
                out["annotations"] = part.citations
            return out
        if isinstance(part, RefusalPart):
            if assistant:
                return {"type": "refusal", "refusal": part.text}
            return {"type": "input_text", "text": part.text}
        if isinstance(part, (ImagePart, FilePart)) and not assistant:
            return _render_media(part)
        if isinstance(part, OpaquePart) and part.format == FORMAT_ID and _is_content(part.data):
            return part.data
        return None

    def item(self, part: Part) -> JsonObj | None:
        if isinstance(part, ToolCallPart):
            return self.tool_call(part)
        if isinstance(part, ToolResultPart):
            return self.tool_result(part)
        if isinstance(part, ThinkingPart):
            return self.reasoning(part)
        if isinstance(part, OpaquePart) and part.format == FORMAT_ID and not _is_content(part.data):
            return part.data
        return None  # audio, assistant images, foreign opaque blocks: Responses input has no place

    def tool_call(self, part: ToolCallPart) -> JsonObj:
        name, namespace = _split_namespace(part.name, part.namespace)
        if namespace is None:
            name = _upstream_name(part.name, self.ctx)
        call_id = _upstream_call_id(part.id, self.ctx)
        item: JsonObj
        if part.kind == "custom":
            item = {"type": "custom_tool_call", "call_id": call_id, "name": name, "input": part.arguments}
        else:
            item = {"type": "function_call", "call_id": call_id, "name": name, "arguments": part.arguments}
        if namespace:
            item["namespace"] = namespace
        if self.store and part.item_id:
            item["id"] = part.item_id
        return item

    def tool_result(self, part: ToolResultPart) -> JsonObj:
        output: str | list[JsonObj]
        texts = [c.text for c in part.content if isinstance(c, TextPart)]
        if len(texts) == len(part.content) and len(texts) <= 1:
            output = texts[0] if texts else ""
            if part.is_error and not self.same:
                output = f"Error: {output}" if output else "Error"  # Responses has no error flag
        else:
            output = [
                {"type": "input_text", "text": c.text} if isinstance(c, TextPart) else _render_media(c)
                for c in part.content
            ]
        kind = "custom_tool_call_output" if part.kind == "custom" else "function_call_output"
        return {"type": kind, "call_id": _upstream_call_id(part.call_id, self.ctx), "output": output}

    def reasoning(self, part: ThinkingPart) -> JsonObj | None:
        if part.redacted or not _token_ok(part.origin, self.req, self.ctx):
            return None
        if not part.signature and not (self.store and part.item_id):
            return None  # stateless: a reasoning item without its encrypted content cannot be resolved
        item: JsonObj = {"type": "reasoning"}
        if self.store and part.item_id:
            item["id"] = part.item_id
        summary: object = _summary_list(part.text)
        key = _reasoning_key(part.item_id, part.signature)
        saved = (self.private.get("reasoning") or {}).get(key) if key else None
        if isinstance(saved, dict) and saved.get("text") == part.text:
            summary = saved.get("summary") or []
            if saved.get("content") is not None:
                item["content"] = saved["content"]
        item["summary"] = summary
        if part.signature:
            item["encrypted_content"] = part.signature
        return item


def _is_content(data: JsonObj) -> bool:
    return data.get("type") in _CONTENT_TYPES


def _render_media(part: ImagePart | FilePart) -> JsonObj:
    if isinstance(part, ImagePart):
        url = data_url(part.media_type, part.data) if part.data else part.url or ""
        return {"type": "input_image", "image_url": url, "detail": part.detail or "auto"}
    if part.file_id and (part.media_type or "").startswith("image/") and not part.data and not part.url:
        return {"type": "input_image", "file_id": part.file_id, "detail": "auto"}
    if part.text is not None and not part.data:
        return {"type": "input_text", "text": part.text}  # a plain-text document: text is what it is
    out: JsonObj = {"type": "input_file"}
    if part.data:
        out["file_data"] = data_url(part.media_type, part.data)
        out["filename"] = part.filename or _default_filename(part.media_type)
    elif part.url:
        out["file_url"] = part.url
    elif part.file_id:
        out["file_id"] = part.file_id
    if part.filename and "filename" not in out:
        out["filename"] = part.filename
    return out


def _default_filename(media_type: str | None) -> str:
    """OpenAI wants a filename with inline file data; derive a plausible one from the media type."""
    ext = mimetypes.guess_extension(media_type or "") or ".bin"
    return "document" + ext


def _namespace_member(name: str, groups: JsonObj) -> str | None:
    """The namespace group a flattened `<namespace>__<member>` name came from, if any."""
    for ns, group in groups.items():
        prefix = ns + NAMESPACE_SEP
        if name.startswith(prefix) and isinstance(group, dict):
            member = name[len(prefix) :]
            for t in group.get("tools") or ():
                if isinstance(t, dict) and t.get("name") == member:
                    return str(ns)
    return None


def _render_tools(req: ChatRequest, ctx: Context, private: JsonObj, *, upstream: bool) -> list[JsonObj]:
    """req.tools -> Responses tools. `upstream` False renders the client's own view (response echo)."""
    same = req.source_format == FORMAT_ID
    groups = private.get("namespaces") or {}
    out: list[JsonObj] = []
    emitted: set[str] = set()
    for spec in req.tools:
        ns = _namespace_member(spec.name, groups) if groups else None
        if ns is not None:
            if ns not in emitted:
                emitted.add(ns)
                out.append(groups[ns])
            continue
        if spec.kind == "builtin":
            if spec.raw is not None and spec.raw_format == FORMAT_ID:
                out.append(spec.raw)
            continue
        name = _upstream_name(spec.name, ctx) if upstream else spec.name
        tool: JsonObj = {"type": "custom" if spec.kind == "custom" else "function", "name": name}
        if spec.description is not None:
            tool["description"] = spec.description
        if spec.kind == "custom":
            if spec.grammar is not None:
                tool["format"] = _flat_grammar(spec.grammar)
        elif same:
            if spec.parameters is not None:
                tool["parameters"] = spec.parameters
            if spec.strict is not None:
                tool["strict"] = spec.strict
        else:
            schema = strip_json_schema_meta(spec.parameters or {"type": "object", "properties": {}})
            tool["parameters"] = to_openai_strict_schema(schema) if spec.strict else schema
            # Omitted `strict` means "strict when the schema allows" on Responses; other formats'
            # schemas were never written for that, so say what they mean.
            tool["strict"] = bool(spec.strict)
        out.append(tool)
    return out


def _flat_grammar(grammar: JsonObj) -> JsonObj:
    """Chat Completions nests `{type: grammar, grammar: {syntax, definition}}`; Responses is flat."""
    inner = grammar.get("grammar")
    if grammar.get("type") == "grammar" and isinstance(inner, dict):
        return {"type": "grammar", **inner}
    return grammar


def _render_tool_choice(choice: ToolChoice, req: ChatRequest, ctx: Context, *, upstream: bool) -> object:
    kinds = {t.name: t.kind for t in req.tools}

    def ref(name: str) -> JsonObj:
        kind = "custom" if kinds.get(name) == "custom" else "function"
        return {"type": kind, "name": _upstream_name(name, ctx) if upstream else name}

    if choice.allowed is not None:
        mode = "required" if choice.mode in ("required", "tool") else "auto"
        return {"type": "allowed_tools", "mode": mode, "tools": [ref(n) for n in choice.allowed]}
    if choice.mode == "tool" and choice.name:
        return ref(choice.name)
    return choice.mode if choice.mode != "tool" else "required"


def _effort(r: ReasoningConfig, same: bool) -> str | None:
    """The Responses effort for a reasoning config; None = leave it to the model."""
    if r.enabled is False:
        return "none"
    if r.effort:
        if same or r.effort in _EFFORTS:
            return r.effort
        return "medium"  # an effort word we do not know: the middle is the least surprising
    if r.adaptive:
        return None
    budget = r.budget_tokens
    if budget is None or budget < 0:
        return None
    if budget == 0:
        return "none"
    if budget <= _LOW_BUDGET_MAX:
        return "low"
    if budget <= _MEDIUM_BUDGET_MAX:
        return "medium"
    return "high"


def _render_reasoning(req: ChatRequest, ctx: Context, body: JsonObj, same: bool) -> bool:
    """Write `reasoning`; return whether the model will reason (then encrypted content is wanted)."""
    if ctx.caps.thinking_style == "none":
        return False
    r = req.reasoning
    if r is None:
        # Not asked either way: OpenAI reasoning models still reason by default.
        return ctx.caps.thinking_style == "effort"
    effort = _effort(r, same)
    on = effort != "none"
    out: JsonObj = {}
    if effort is not None:
        out["effort"] = effort
    if r.summary is not None:
        out["summary"] = r.summary
    elif on and not same and r.display != "omitted" and r.include_thoughts is not False:
        out["summary"] = "auto"  # the client shows thinking: ask for the summaries that carry it
    if out or same:
        body["reasoning"] = out
    return on


def _render_format(rf: ResponseFormat, same: bool) -> JsonObj:
    if rf.kind != "json_schema":
        return {"type": rf.kind}
    schema = rf.schema if rf.schema is not None else {"type": "object"}
    name = rf.name or DEFAULT_SCHEMA_NAME
    if not same:
        name = sanitize_tool_name(name)
        schema = strip_json_schema_meta(schema)
        if rf.strict:
            schema = to_openai_strict_schema(schema)
    out: JsonObj = {"type": "json_schema", "name": name, "schema": schema}
    if rf.strict is not None:
        out["strict"] = rf.strict
    if rf.description is not None:
        out["description"] = rf.description
    return out


# ==========================================================================================================
# passthrough (Responses client -> Responses upstream, body forwarded as is)
# ==========================================================================================================


def prepare_passthrough(body: JsonObj) -> JsonObj:
    """Make a same-format body safe to forward: with `store: false` nothing can be looked up by id, so
    ids go, `item_reference`s go, and reasoning items without `encrypted_content` go (hard case 10).
    Returns a new dict; `body` is not modified."""
    out = dict(body)
    items = body.get("input")
    if body.get("store") is False and isinstance(items, list):
        out["input"] = _stateless_items(items)
    return out


def _stateless_items(items: list[Any]) -> list[Any]:
    result: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            result.append(item)
            continue
        kind = item.get("type")
        if kind == "item_reference" or (kind is None and "role" not in item):
            continue
        if kind == "reasoning" and not item.get("encrypted_content"):
            continue
        if "id" in item and kind not in _ID_REQUIRED_ITEMS:
            item = {k: v for k, v in item.items() if k != "id"}
        result.append(item)
    return result


# ==========================================================================================================
# responses (upstream -> IR, IR -> client)
# ==========================================================================================================


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage_from(u: object) -> Usage | None:
    if not isinstance(u, dict):
        return None
    itd = u.get("input_tokens_details")
    otd = u.get("output_tokens_details")
    itd = itd if isinstance(itd, dict) else {}
    otd = otd if isinstance(otd, dict) else {}
    return Usage(
        input_tokens=_int(u.get("input_tokens")),
        output_tokens=_int(u.get("output_tokens")),
        cached_tokens=_int(itd.get("cached_tokens")),
        cache_write_tokens=_int(itd.get("cache_write_tokens")),
        reasoning_tokens=_int(otd.get("reasoning_tokens")),
    )


def response_usage(body: JsonObj) -> Usage | None:
    return _usage_from(body.get("usage")) if isinstance(body, dict) else None


def _client_tool_name(name: str, namespace: object, ctx: Context) -> str:
    full = f"{namespace}{NAMESPACE_SEP}{name}" if isinstance(namespace, str) and namespace else name
    return ctx.client_tool_name(full)


def _stop_from(status: object, details: object) -> StopReason:
    if status == "incomplete":
        reason = details.get("reason") if isinstance(details, dict) else None
        return "content_filter" if reason == "content_filter" else "length"
    if status == "cancelled":
        return "error"
    return "stop"


def parse_response(body: JsonObj, ctx: Context) -> ChatResponse:
    """A Responses upstream's response object -> IR. A failed response raises its GatewayError."""
    if not isinstance(body, dict):
        raise UpstreamError("the upstream answered with something that is not a response object")
    status = body.get("status")
    if status == "failed":
        raise _error_from_object(body.get("error"))
    parts: list[Part] = []
    output = body.get("output")
    for item in output if isinstance(output, list) else ():
        if isinstance(item, dict):
            parts.extend(_output_item_parts(item, ctx))
    created = body.get("created_at")
    return ChatResponse(
        id=str(body.get("id") or ctx.response_id),
        model=str(body.get("model") or ctx.upstream_model),
        parts=parts,
        stop_reason=effective_stop_reason(
            _stop_from(status, body.get("incomplete_details")), has_tool_calls(parts)
        ),
        usage=_usage_from(body.get("usage")),
        created=int(created) if isinstance(created, (int, float)) else ctx.created,
    )


def _output_item_parts(item: JsonObj, ctx: Context) -> list[Part]:
    kind = item.get("type")
    if kind == "message":
        return _message_parts(item)
    if kind in ("function_call", "custom_tool_call"):
        custom = kind == "custom_tool_call"
        args = item.get("input" if custom else "arguments")
        return [
            ToolCallPart(
                ctx.client_call_id(str(item.get("call_id") or "")),
                _client_tool_name(str(item.get("name") or ""), item.get("namespace"), ctx),
                args if isinstance(args, str) else "",
                kind="custom" if custom else "function",
                item_id=item.get("id") if isinstance(item.get("id"), str) else None,
                namespace=item.get("namespace") if isinstance(item.get("namespace"), str) else None,
            )
        ]
    if kind == "reasoning":
        text = _reasoning_text(item)
        token = item.get("encrypted_content") if isinstance(item.get("encrypted_content"), str) else None
        if not text and not token:
            return []
        item_id = item.get("id") if isinstance(item.get("id"), str) else None
        return [ThinkingPart(text, token, origin=ctx.provider if token else None, item_id=item_id)]
    return [OpaquePart(FORMAT_ID, item)]


def _message_parts(item: JsonObj) -> list[Part]:
    parts: list[Part] = []
    content = item.get("content")
    for c in content if isinstance(content, list) else ():
        if not isinstance(c, dict):
            continue
        if c.get("type") == "output_text" and isinstance(c.get("text"), str) and c["text"]:
            annotations = c.get("annotations")
            parts.append(TextPart(c["text"], citations=annotations if annotations else None))
        elif c.get("type") == "refusal" and isinstance(c.get("refusal"), str) and c["refusal"]:
            parts.append(RefusalPart(c["refusal"]))
    return parts


def _status_of(stop: StopReason) -> tuple[str, str | None]:
    """IR stop reason -> Responses (status, incomplete_details.reason)."""
    if stop in ("length", "context_window"):
        return "incomplete", "max_output_tokens"
    if stop == "content_filter":
        return "incomplete", "content_filter"
    if stop == "error":
        return "failed", None
    return "completed", None


def _usage_obj(usage: Usage | None) -> JsonObj:
    u = usage or Usage()
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cached_tokens,
            "cache_write_tokens": u.cache_write_tokens,
        },
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def _client_token(token: str, origin: str | None, redacted: bool, ctx: Context) -> str:
    """IR rule: the raw token when client and upstream speak the same format, else tagged."""
    if redacted:
        return tag_signature(REDACTED_PREFIX + token, origin or "")
    if ctx.upstream_format == ctx.client_format or origin is None:
        return token
    return tag_signature(token, origin)


def _client_call_name(name: str, namespace: str | None, ctx: Context) -> tuple[str, str | None]:
    """A flattened `<namespace>__<member>` name -> (member, namespace) when the client has that group."""
    short, ns = _split_namespace(name, namespace)
    if ns is not None:
        return short, ns
    req = ctx.request
    groups = (req.extras.get(PRIVATE_KEY) or {}).get("namespaces") if req is not None else None
    if groups:
        ns = _namespace_member(name, groups)
        if ns is not None:
            return name[len(ns) + len(NAMESPACE_SEP) :], ns
    return name, None


def _reuse_id(item_id: str | None, prefix: str, ctx: Context) -> str:
    if item_id and ctx.upstream_format == FORMAT_ID and item_id.startswith(prefix + "_"):
        return item_id
    return new_id(prefix)


def _call_item(part: ToolCallPart, ctx: Context) -> JsonObj:
    name, ns = _client_call_name(part.name, part.namespace, ctx)
    item: JsonObj
    if part.kind == "custom":
        item = {
            "id": _reuse_id(part.item_id, "ctc", ctx),
            "type": "custom_tool_call",
            "call_id": part.id,
            "name": name,
            "input": part.arguments,
        }
    else:
        item = {
            "id": _reuse_id(part.item_id, "fc", ctx),
            "type": "function_call",
            "status": "completed",
            "call_id": part.id,
            "name": name,
            "arguments": part.arguments,
        }
    if ns:
        item["namespace"] = ns
    return item


def render_response(resp: ChatResponse, ctx: Context) -> JsonObj:
    """IR -> the Responses object a client (and the OpenAI SDK's `Response` model) expects."""
    output: list[JsonObj] = []
    message: JsonObj | None = None
    same = ctx.upstream_format == FORMAT_ID
    for part in resp.parts:
        if isinstance(part, (TextPart, RefusalPart)):
            if message is None:
                message = _message_item("completed")
                output.append(message)
            if isinstance(part, TextPart):
                annotations = part.citations if same and part.citations else []
                message["content"].append(_text_part(part.text, annotations))
            else:
                message["content"].append({"type": "refusal", "refusal": part.text})
            continue
        item: JsonObj | None = None
        if isinstance(part, ThinkingPart):
            item = _reasoning_item(
                _reuse_id(part.item_id, "rs", ctx),
                part.text,
                _client_token(part.signature, part.origin, part.redacted, ctx) if part.signature else None,
            )
        elif isinstance(part, ToolCallPart):
            item = _call_item(part, ctx)
        elif isinstance(part, OpaquePart) and part.format == FORMAT_ID and not _is_content(part.data):
            item = part.data
        if item is not None:
            message = None
            output.append(item)
    status, reason = _status_of(effective_stop_reason(resp.stop_reason, has_tool_calls(resp.parts)))
    error = (
        {"code": "server_error", "message": "the upstream ended with an error"}
        if status == "failed"
        else None
    )
    return _response_object(ctx, status, output, resp.usage or Usage(), reason, error, resp.model)


def _message_item(status: str) -> JsonObj:
    return {"id": new_id("msg"), "type": "message", "status": status, "role": "assistant", "content": []}


def _text_part(text: str, annotations: list[JsonObj]) -> JsonObj:
    return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}


def _reasoning_item(item_id: str, text: str, token: str | None) -> JsonObj:
    item: JsonObj = {
        "id": item_id,
        "type": "reasoning",
        "summary": _summary_list(text),
        "status": "completed",
    }
    if token:
        item["encrypted_content"] = token
    return item


def _response_object(
    ctx: Context,
    status: str,
    output: list[JsonObj],
    usage: Usage | None,
    incomplete: str | None = None,
    error: JsonObj | None = None,
    model: str = "",
) -> JsonObj:
    """The full response object, echoing the request parameters the SDK's `Response` model carries."""
    req = ctx.request
    obj: JsonObj = {
        "id": ctx.response_id,
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "model": ctx.client_model or (req.model if req is not None else "") or model,
        "output": output,
        "usage": _usage_obj(usage) if usage is not None else None,
    }
    obj.update(_echo(req, ctx))
    return obj


def _echo(req: ChatRequest | None, ctx: Context) -> JsonObj:
    if req is None:
        return {"instructions": None, "tools": [], "tool_choice": "auto", "parallel_tool_calls": True}
    private: JsonObj = req.extras.get(PRIVATE_KEY) or {} if req.source_format == FORMAT_ID else {}
    layout = private.get("system_layout")
    has_instructions = bool(req.system) and (not layout or layout[0][0] == "instructions")
    tool_choice: object = req.extras.get("tool_choice", "auto")
    if req.tool_choice is not None:
        tool_choice = _render_tool_choice(req.tool_choice, req, ctx, upstream=False)
    reasoning: JsonObj | None = None
    if req.reasoning is not None:
        effort = req.reasoning.effort if req.reasoning.effort in _EFFORTS else None
        summary = req.reasoning.summary if req.reasoning.summary in _SUMMARIES else None
        reasoning = {"effort": effort, "summary": summary}
    text: JsonObj = {"format": {"type": "text"}}
    if req.response_format is not None:
        text["format"] = _render_format(req.response_format, same=True)
    return {
        "instructions": req.system[0].text if has_instructions else None,
        "tools": _render_tools(req, ctx, private, upstream=False),
        "tool_choice": tool_choice,
        "parallel_tool_calls": req.parallel_tool_calls if req.parallel_tool_calls is not None else True,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "max_output_tokens": req.max_tokens,
        "previous_response_id": req.previous_response_id,
        "reasoning": reasoning,
        "text": text,
        "store": req.store if req.store is not None else True,
        "metadata": req.metadata or {},
    }


# ==========================================================================================================
# stream parser (Responses upstream SSE -> IR events)
# ==========================================================================================================


@dataclass(slots=True)
class _OpenCall:
    index: int
    saw_delta: bool = False


class StreamParser:
    """Responses SSE events from an upstream -> IR stream events (grammar in ir.py)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._started = False
        self._calls: dict[int, _OpenCall] = {}  # output_index -> open tool call
        self._next_call = 0
        self._streamed: set[int] = set()  # output indexes whose text/reasoning arrived as deltas
        self._think_key: tuple[int, str, int] | None = None  # the reasoning part the last delta was in
        self._finished = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        data = event.data.strip()
        if not data or data == b"[DONE]":
            return []
        try:
            obj = loads(data)
        except JSONDecodeError:
            raise UpstreamError("the upstream sent a stream event that is not JSON") from None
        if not isinstance(obj, dict):
            return []
        kind = obj.get("type") or event.event or ""
        out = self._dispatch(str(kind), obj)
        if out and not isinstance(out[-1], ThinkingDelta):
            self._think_key = None
        return out

    def close(self) -> list[StreamEvent]:
        """The upstream ended: close tool calls left open so the event grammar holds."""
        out: list[StreamEvent] = [ToolCallEnd(c.index) for c in self._calls.values()]
        self._calls.clear()
        return out

    def _start(self, obj: JsonObj | None = None) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        resp = obj if isinstance(obj, dict) else {}
        return [StreamStart(id=str(resp.get("id") or ""), model=str(resp.get("model") or ""))]

    def _dispatch(self, kind: str, obj: JsonObj) -> list[StreamEvent]:
        if kind in ("response.created", "response.in_progress", "response.queued"):
            return self._start(obj.get("response"))
        if kind == "response.output_text.delta":
            return self._content(obj, TextDelta)
        if kind == "response.refusal.delta":
            return self._content(obj, RefusalDelta)
        if kind == "response.reasoning_summary_text.delta":
            return self._thinking(obj, "summary", obj.get("summary_index"))
        if kind == "response.reasoning_text.delta":
            return self._thinking(obj, "content", obj.get("content_index"))
        if kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            return self._call_delta(obj)
        if kind == "response.output_item.added":
            return self._item_added(obj)
        if kind == "response.output_item.done":
            return self._item_done(obj)
        if kind in ("response.completed", "response.incomplete"):
            return self._finish(obj.get("response"))
        if kind == "response.failed":
            resp = obj.get("response")
            raise _error_from_object(resp.get("error") if isinstance(resp, dict) else None)
        if kind == "error":
            raise _error_from_object(obj.get("error") if isinstance(obj.get("error"), dict) else obj)
        return []

    def _content(self, obj: JsonObj, cls: type[TextDelta] | type[RefusalDelta]) -> list[StreamEvent]:
        delta = obj.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        self._streamed.add(_int(obj.get("output_index")))
        return [*self._start(), cls(delta)]

    def _thinking(self, obj: JsonObj, kind: str, sub: object) -> list[StreamEvent]:
        delta = obj.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        index = _int(obj.get("output_index"))
        self._streamed.add(index)
        return [*self._start(), self._thinking_delta(delta, (index, kind, _int(sub)))]

    def _thinking_delta(self, text: str, key: tuple[int, str, int]) -> ThinkingDelta:
        """Separate summary parts (and back-to-back reasoning items) by a blank line."""
        if self._think_key is not None and self._think_key != key:
            text = "\n\n" + text
        self._think_key = key
        return ThinkingDelta(text)

    def _call_delta(self, obj: JsonObj) -> list[StreamEvent]:
        call = self._calls.get(_int(obj.get("output_index")))
        delta = obj.get("delta")
        if call is None or not isinstance(delta, str) or not delta:
            return []
        call.saw_delta = True
        return [ToolCallDelta(call.index, delta)]

    def _item_added(self, obj: JsonObj) -> list[StreamEvent]:
        item = obj.get("item")
        if not isinstance(item, dict) or item.get("type") not in ("function_call", "custom_tool_call"):
            return self._start()
        return [*self._start(), self._open_call(_int(obj.get("output_index")), item)]

    def _open_call(self, index: int, item: JsonObj) -> ToolCallStart:
        call = _OpenCall(self._next_call)
        self._next_call += 1
        self._calls[index] = call
        return ToolCallStart(
            call.index,
            self._ctx.client_call_id(str(item.get("call_id") or "")),
            _client_tool_name(str(item.get("name") or ""), item.get("namespace"), self._ctx),
            kind="custom" if item.get("type") == "custom_tool_call" else "function",
        )

    def _item_done(self, obj: JsonObj) -> list[StreamEvent]:
        item = obj.get("item")
        if not isinstance(item, dict):
            return []
        index = _int(obj.get("output_index"))
        kind = item.get("type")
        out = self._start()
        if kind in ("function_call", "custom_tool_call"):
            call = self._calls.pop(index, None)
            if call is None:  # never announced: the done item is the whole call
                out.append(self._open_call(index, item))
                call = self._calls.pop(index)
            args = item.get("input" if kind == "custom_tool_call" else "arguments")
            if not call.saw_delta and isinstance(args, str) and args:
                out.append(ToolCallDelta(call.index, args))
            out.append(ToolCallEnd(call.index))
        elif kind == "reasoning":
            text = _reasoning_text(item)
            if text and index not in self._streamed:
                out.append(self._thinking_delta(text, (index, "summary", 0)))
            token = item.get("encrypted_content")
            if isinstance(token, str) and token:
                out.append(ThinkingSignature(token, origin=self._ctx.provider))
        elif kind == "message":
            if index not in self._streamed:
                for part in _message_parts(item):
                    if isinstance(part, TextPart):
                        out.append(TextDelta(part.text))
                    elif isinstance(part, RefusalPart):
                        out.append(RefusalDelta(part.text))
        else:
            out.append(OpaqueBlock(FORMAT_ID, item))
        return out

    def _finish(self, resp: object) -> list[StreamEvent]:
        if self._finished:
            return []
        self._finished = True
        r = resp if isinstance(resp, dict) else {}
        out = [*self._start(r), *self.close()]
        usage = _usage_from(r.get("usage"))
        if usage is not None:
            out.append(UsageUpdate(usage))
        stop = _stop_from(r.get("status") or "completed", r.get("incomplete_details"))
        out.append(Finish(effective_stop_reason(stop, self._next_call > 0)))
        return out


# ==========================================================================================================
# stream renderer (IR events -> Responses SSE for the client)
# ==========================================================================================================


class StreamRenderer:
    """IR stream events -> the Responses event grammar (formats.md §1.2), one frame per event.

    One output item is open at a time (message, reasoning or tool call); a different kind of event
    closes it with its `.done` events and `output_item.done` carrying the complete item, which is what
    Codex reads.
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._seq = 0
        self._started = False
        self._done = False
        self._output: list[JsonObj] = []  # every item so far, the open one last
        self._item: JsonObj | None = None  # the open item
        self._part: str | None = None  # open content part of a message: "output_text" | "refusal"
        self._summary_open = False  # a reasoning item's summary part 0 is open
        self._buf: list[str] = []  # text / summary / arguments of what is open
        self._usage: Usage | None = None
        self._stop: StopReason | None = None
        self._saw_call = False

    # -- framing ----------------------------------------------------------------------------------------

    def _ev(self, kind: str, **fields: object) -> bytes:
        frame = {"type": kind, **fields, "sequence_number": self._seq}
        self._seq += 1
        return encode(dumps(frame), kind)

    @property
    def _index(self) -> int:
        return len(self._output) - 1

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        snapshot = _response_object(self._ctx, "in_progress", [], None)
        return self._ev("response.created", response=snapshot) + self._ev(
            "response.in_progress", response=snapshot
        )

    # -- events -----------------------------------------------------------------------------------------

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, StreamStart):
            if event.usage is not None:
                self._usage = merge_usage(self._usage, event.usage)
            return self._start()
        if isinstance(event, TextDelta):
            return self._content_delta("output_text", event.text) if event.text else b""
        if isinstance(event, RefusalDelta):
            return self._content_delta("refusal", event.text) if event.text else b""
        if isinstance(event, ThinkingDelta):
            return self._thinking(event.text) if event.text else b""
        if isinstance(event, ThinkingSignature):
            return self._signature(event.signature, event.origin, redacted=False)
        if isinstance(event, RedactedThinking):
            return (
                self._start() + self._close_item() + self._signature(event.data, event.origin, redacted=True)
            )
        if isinstance(event, ToolCallStart):
            return self._call_start(event)
        if isinstance(event, ToolCallDelta):
            return self._call_delta(event.arguments)
        if isinstance(event, ToolCallEnd):
            return self._close_item() if self._is_call() else b""
        if isinstance(event, OpaqueBlock):
            return self._opaque(event)
        if isinstance(event, UsageUpdate):
            self._usage = merge_usage(self._usage, event.usage)
        elif isinstance(event, Finish):
            self._stop = event.stop_reason
        return b""

    def _open(self, item: JsonObj) -> bytes:
        out = self._close_item()
        self._item = item
        self._output.append(item)
        return out + self._ev("response.output_item.added", output_index=self._index, item=item)

    def _is_call(self) -> bool:
        return self._item is not None and self._item["type"] in ("function_call", "custom_tool_call")

    def _content_delta(self, part: str, delta: str) -> bytes:
        out = self._start()
        if self._item is None or self._item["type"] != "message":
            out += self._open(_message_item("in_progress"))
        item = self._item
        if item is None:  # pragma: no cover - _open just set it
            return out
        if self._part != part:
            out += self._close_part()
            self._part = part
            empty: JsonObj = (
                {"type": "output_text", "text": "", "annotations": []}
                if part == "output_text"
                else {"type": "refusal", "refusal": ""}
            )
            out += self._ev(
                "response.content_part.added",
                item_id=item["id"],
                output_index=self._index,
                content_index=len(item["content"]),
                part=empty,
            )
        self._buf.append(delta)
        where = {"item_id": item["id"], "output_index": self._index, "content_index": len(item["content"])}
        if part == "output_text":
            return out + self._ev("response.output_text.delta", **where, delta=delta, logprobs=[])
        return out + self._ev("response.refusal.delta", **where, delta=delta)

    def _close_part(self) -> bytes:
        item = self._item
        if self._part is None or item is None:
            return b""
        text = "".join(self._buf)
        self._buf = []
        where = {"item_id": item["id"], "output_index": self._index, "content_index": len(item["content"])}
        if self._part == "output_text":
            part = _text_part(text, [])
            out = self._ev("response.output_text.done", **where, text=text, logprobs=[])
        else:
            part = {"type": "refusal", "refusal": text}
            out = self._ev("response.refusal.done", **where, refusal=text)
        self._part = None
        item["content"].append(part)
        return out + self._ev("response.content_part.done", **where, part=part)

    def _thinking(self, delta: str) -> bytes:
        out = self._start()
        if self._item is None or self._item["type"] != "reasoning":
            out += self._open({"id": new_id("rs"), "type": "reasoning", "summary": []})
        item = self._item
        if item is None:  # pragma: no cover - _open just set it
            return out
        where = {"item_id": item["id"], "output_index": self._index, "summary_index": 0}
        if not self._summary_open:
            self._summary_open = True
            out += self._ev(
                "response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""}
            )
        self._buf.append(delta)
        return out + self._ev("response.reasoning_summary_text.delta", **where, delta=delta)

    def _signature(self, token: str, origin: str | None, *, redacted: bool) -> bytes:
        out = self._start()
        if self._item is None or self._item["type"] != "reasoning":
            out += self._open({"id": new_id("rs"), "type": "reasoning", "summary": []})
        if self._item is not None and token:
            self._item["encrypted_content"] = _client_token(token, origin, redacted, self._ctx)
        return out + self._close_item()  # a signature ends its thinking block

    def _call_start(self, event: ToolCallStart) -> bytes:
        self._saw_call = True
        name, ns = _client_call_name(event.name, None, self._ctx)
        item: JsonObj
        if event.kind == "custom":
            item = {
                "id": new_id("ctc"),
                "type": "custom_tool_call",
                "call_id": event.id,
                "name": name,
                "input": "",
            }
        else:
            item = {
                "id": new_id("fc"),
                "type": "function_call",
                "status": "in_progress",
                "call_id": event.id,
                "name": name,
                "arguments": "",
            }
        if ns:
            item["namespace"] = ns
        return self._start() + self._open(item)

    def _call_delta(self, delta: str) -> bytes:
        item = self._item
        if not delta or item is None or not self._is_call():
            return b""
        self._buf.append(delta)
        kind = (
            "response.custom_tool_call_input.delta"
            if item["type"] == "custom_tool_call"
            else "response.function_call_arguments.delta"
        )
        return self._ev(kind, item_id=item["id"], output_index=self._index, delta=delta)

    def _opaque(self, event: OpaqueBlock) -> bytes:
        if event.format != FORMAT_ID or _is_content(event.data) or "type" not in event.data:
            return b""
        out = self._start() + self._open(dict(event.data))
        return out + self._close_item()

    def _close_item(self) -> bytes:
        """Finish the open item: its `.done` events, then `output_item.done` with the whole item."""
        item = self._item
        if item is None:
            return b""
        kind = item["type"]
        out = b""
        if kind == "message":
            out += self._close_part()
            item["status"] = "completed"
        elif kind == "reasoning":
            if self._summary_open:
                text = "".join(self._buf)
                where = {"item_id": item["id"], "output_index": self._index, "summary_index": 0}
                part = {"type": "summary_text", "text": text}
                out += self._ev("response.reasoning_summary_text.done", **where, text=text)
                out += self._ev("response.reasoning_summary_part.done", **where, part=part)
                item["summary"] = [part]
            item["status"] = "completed"
        elif kind == "function_call":
            args = "".join(self._buf)
            item["arguments"] = args
            item["status"] = "completed"
            out += self._ev(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=self._index,
                name=item["name"],
                arguments=args,
            )
        elif kind == "custom_tool_call":
            text = "".join(self._buf)
            item["input"] = text
            out += self._ev(
                "response.custom_tool_call_input.done",
                item_id=item["id"],
                output_index=self._index,
                input=text,
            )
        self._buf = []
        self._summary_open = False
        self._item = None
        return out + self._ev("response.output_item.done", output_index=len(self._output) - 1, item=item)

    # -- the end ----------------------------------------------------------------------------------------

    def close(self) -> bytes:
        """Normal end: close the open item, then response.completed / response.incomplete with
        every output item and the usage."""
        if self._done:
            return b""
        out = self._start() + self._close_item()
        self._done = True
        stop = effective_stop_reason(self._stop or "stop", self._saw_call)
        status, reason = _status_of(stop)
        error = None
        if status == "failed":
            error = {"code": "server_error", "message": "the upstream ended with an error"}
        resp = _response_object(self._ctx, status, self._output, self._usage or Usage(), reason, error)
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
            status, "response.failed"
        )
        return out + self._ev(kind, response=resp)

    def resume_from(self, first: SSEEvent | None, last: SSEEvent | None) -> None:
        """Take over a relayed (passthrough) stream: continue its sequence numbers and response id, so the
        error events this renderer adds belong to the same stream."""
        for event in (first, last):
            if event is None:
                continue
            try:
                obj = loads(event.data)
            except JSONDecodeError:
                continue
            if not isinstance(obj, dict):
                continue
            seq = obj.get("sequence_number")
            if isinstance(seq, int) and not isinstance(seq, bool):
                self._seq = max(self._seq, seq + 1)
            resp = obj.get("response")
            if isinstance(resp, dict) and isinstance(resp.get("id"), str):
                self._ctx.response_id = resp["id"]
        self._started = first is not None

    def fail(self, error: GatewayError) -> bytes:
        """Broken mid-stream: an `error` event, then response.failed with a code Codex classifies.
        A half-written item is not closed: a partial tool call must not look complete."""
        if self._done:
            return b""
        self._done = True
        code, message = _client_error(error)
        out = self._start() + self._ev("error", code=code, message=message, param=None)
        done = [i for i in self._output if i is not self._item]
        resp = _response_object(
            self._ctx, "failed", done, self._usage, error={"code": code, "message": message}
        )
        return out + self._ev("response.failed", response=resp)


# ==========================================================================================================
# usage tap (passthrough streams)
# ==========================================================================================================


class UsageTap:
    """Reads usage off a same-format stream: only the terminal events are decoded."""

    _TERMINAL = ("response.completed", "response.incomplete")

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def feed(self, event: SSEEvent) -> None:
        if event.event is not None:
            if event.event not in self._TERMINAL:
                return
        elif b'"response.completed"' not in event.data and b'"response.incomplete"' not in event.data:
            return
        try:
            obj = loads(event.data)
        except JSONDecodeError:
            return
        if not isinstance(obj, dict) or obj.get("type") not in self._TERMINAL:
            return
        resp = obj.get("response")
        usage = _usage_from(resp.get("usage")) if isinstance(resp, dict) else None
        if usage is not None:
            self.usage = usage


# ==========================================================================================================
# errors
# ==========================================================================================================


def _error_from_object(err: object) -> GatewayError:
    """A Responses `error` object ({code, message}) from response.failed or an `error` event."""
    if not isinstance(err, dict):
        return UpstreamError("the upstream response failed without saying why")
    code = err.get("code") if isinstance(err.get("code"), str) else None
    message = err.get("message") if isinstance(err.get("message"), str) else ""
    message = message or f"the upstream response failed ({code or 'no code'})"
    status = _UPSTREAM_CODE_STATUS.get(code or "")
    if status is None and code and code.startswith(("invalid_", "image_", "unsupported_", "empty_")):
        status = 400
    if code in ("usage_limit_reached", "usage_not_included"):
        return QuotaExhaustedError(message, upstream_status=429)
    if status is None:
        guess = error_from_status(400, message, code=code)
        if isinstance(guess, ContextLengthError):
            return guess
        return UpstreamError(message)
    result = error_from_status(status, message, code=code)
    if isinstance(err.get("param"), str):
        result.param = err["param"]
    return result


def _retry_text(seconds: float) -> str:
    return f"Please try again in {round(seconds, 3):g}s."


def _client_error(err: GatewayError) -> tuple[str, str]:
    """(code, message) for response.failed, in the vocabulary Codex classifies."""
    if isinstance(err, ContextLengthError) or err.code == "context_length_exceeded":
        code = "context_length_exceeded"
    elif isinstance(err, QuotaExhaustedError) or err.code == "insufficient_quota":
        code = "insufficient_quota"
    elif isinstance(err, RateLimitError):
        code = "rate_limit_exceeded"
    elif isinstance(err, InvalidRequestError):
        code = "invalid_prompt"
    else:
        code = "server_error"
    message = err.message
    if err.retry_after is not None and "try again in" not in message.lower():
        message = f"{message} {_retry_text(err.retry_after)}"
    return code, message


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """An upstream error response ({error: {message, type, code, param}}) -> a typed GatewayError."""
    message = ""
    codes: list[str] = []
    param: str | None = None
    try:
        obj: Any = loads(body) if body else None
    except JSONDecodeError:
        obj = None
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        obj = obj[0]
    if isinstance(obj, dict):
        e = obj.get("error", obj)
        if isinstance(e, dict):
            raw_message = e.get("message")
            message = raw_message if isinstance(raw_message, str) else ""
            codes = [c for c in (e.get("code"), e.get("type")) if isinstance(c, str) and c]
            param = e.get("param") if isinstance(e.get("param"), str) else None
        elif isinstance(e, str):
            message = e
    if not message:
        message = body.decode("utf-8", "replace").strip()[:500]
    code = next((c for c in codes if c in ("insufficient_quota", "context_length_exceeded")), None)
    if code is None and codes:
        code = codes[0]
    err = error_from_status(status, message, code=code, retry_after=retry_after_from_headers(headers))
    if param is not None:
        err.param = param
    return err


def render_error(error: GatewayError) -> tuple[int, dict[str, str], bytes]:
    """A gateway error -> (status, headers, OpenAI error body) for a Responses client."""
    status = error.status
    if isinstance(error, QuotaExhaustedError):
        kind = "insufficient_quota"
    else:
        kind = _OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    message = error.message
    if status == 429 and error.retry_after is not None and "try again in" not in message.lower():
        message = f"{message} {_retry_text(error.retry_after)}"
    headers = {"content-type": "application/json", **format_retry_after(error.retry_after)}
    body = {"error": {"message": message, "type": kind, "param": error.param, "code": error.code}}
    return status, headers, dumps(body)


def request_path(model: str, stream: bool) -> str:
    return "/responses"


__all__ = [
    "FORMAT_ID",
    "NAMESPACE_SEP",
    "STREAM_CONTENT_TYPE",
    "StreamParser",
    "StreamRenderer",
    "UsageTap",
    "parse_error",
    "parse_request",
    "parse_response",
    "prepare_passthrough",
    "render_error",
    "render_request",
    "render_response",
    "request_path",
    "response_usage",
]

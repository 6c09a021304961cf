"""Anthropic Messages (`POST /v1/messages`, `/v1/messages/count_tokens`) <-> the IR.

Sections:  constants · helpers · request parsing · request rendering · responses · stream parser ·
           stream renderer · usage tap · errors

Invariants and decisions (formats.md §1.3, §4 cases 1-8):

* Client side (parse_request, render_response, StreamRenderer) accepts everything Claude Code sends as
  sent: `role: "system"` inside `messages`, system blocks with cache_control, a leading
  `x-anthropic-billing-header:` block (kept in `req.extras`, re-emitted only to Anthropic), adaptive
  thinking with `display`, `output_config`, `context_management`, JSON-string `metadata.user_id`,
  `defer_loading` tools, `$schema` in schemas, tool names longer than 64 characters.
* Upstream side (render_request) produces a request the Messages API accepts from any IR:
    - roles alternate (consecutive same-role turns merged); a mid-conversation system message becomes
      `<system-reminder>` user text (kept as `role: "system"` for an Anthropic client);
    - tool pairing is repaired: every tool_use gets a tool_result first in the next user message; a
      call without a result gets a synthesized `is_error` "no result" tool_result (`MISSING_RESULT_TEXT`);
      an orphan result (no matching call in the turn before) becomes a user text block;
    - ids pass through `names.sanitize_call_id`, tool names through `names.sanitize_tool_name`; renames are
      recorded in ctx so the way back shows the client's originals;
    - thinking budget: an explicit client `max_tokens` is respected (the budget shrinks to fit, or
      thinking is dropped when less than 1024 would fit); without one, `max_tokens` grows to budget + 1024;
    - when the last assistant tool_use turn lost its thinking block (foreign signatures are dropped),
      thinking is disabled for the request instead of drawing the "Expected `thinking`" 400;
    - with thinking on: temperature other than 1, top_p below 0.95 and top_k are removed; a forced
      tool_choice (any/tool) becomes auto;
    - cache_control only when the target understands it, at most 4 breakpoints (the last 4 kept).
* Usage: IR input = input + cache_read + cache_creation (ir.py); converted at this edge both ways.
* Stream parsing never parses tool-argument fragments; they are forwarded as they come (free-form
  "custom" tools excepted: their `{"input": "..."}` wrapper is unwrapped at block end).
* Thinking sent to an Anthropic client from another format always carries a tagged signature, even an
  empty one (`omr1.<provider>.`), so the next request knows whose reasoning it was.
* Parse -> render within this format is the identity up to Anthropic's own shorthands: string content
  becomes a list of text blocks, a single plain-text tool_result content becomes a string, `false`
  flags are omitted. Lossy on purpose (no IR slot): document `citations`/`context`, cache_control on
  a tool_use that is not its message's last block; tool_result blocks the IR cannot hold
  (tool_reference, search_result) travel as their JSON text.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from omniroute import (
    ContextLengthError,
    GatewayError,
    InvalidRequestError,
    JSONDecodeError,
    JsonObj,
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
from omniroute_providers.formats.names import (
    disambiguate,
    sanitize_call_id,
    sanitize_tool_name,
)
from omniroute_providers.formats.schema import to_anthropic_input_schema
from omniroute_providers.formats.sse import SSEEvent, encode
from omniroute_providers.ir import (
    AudioPart,
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
    arguments_object,
    arguments_text,
    effective_stop_reason,
    has_tool_calls,
    is_valid_base64,
    merge_usage,
    new_id,
    parse_data_url,
    tag_signature,
    untag_signature,
)

FORMAT_ID = "anthropic"
STREAM_CONTENT_TYPE = "text/event-stream"

# ==========================================================================================================
# constants
# ==========================================================================================================

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"  # Claude Code's attribution line, system block 0

# Private `req.extras` keys: a ":" never appears in an Anthropic field name, so these cannot collide
# with a real top-level field, and the renderer never emits them as such.
X_BILLING_HEADER = "anthropic:billing_header"  # the removed billing-header system block
X_THINKING = "anthropic:thinking"  # a `thinking` object of a type the IR has no words for
X_LEGACY_OUTPUT_FORMAT = "anthropic:output_format"  # the client used the beta top-level `output_format`

# Effort level -> thinking budget, for targets that take budget_tokens (one table, formats.md §2.8).
EFFORT_BUDGET_TOKENS: dict[str, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 64000,
}
MIN_THINKING_BUDGET_TOKENS = 1024  # the API's floor for budget_tokens
ANSWER_ROOM_TOKENS = 1024  # room left for the visible answer when max_tokens is raised above the budget
# output_config.effort takes these; IR levels outside it map to the nearest one.
_EFFORT_VALUES = ("low", "medium", "high", "xhigh", "max")
_EFFORT_ALIASES = {"minimal": "low"}

MAX_CACHE_BREAKPOINTS = 4  # "A maximum of 4 blocks with cache_control may be provided"
MISSING_RESULT_TEXT = "no result: the tool call was not answered"  # synthesized for unanswered calls
SYSTEM_ONLY_USER_TEXT = "Continue."  # a request with no turns at all gets this one user turn
MAX_USER_ID_CHARS = 64  # OpenAI `user`/`safety_identifier` limit; req.user follows it

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# First characters of base64 payloads: lets an image without a media type still be labelled.
_IMAGE_MAGIC = (
    ("/9j/", "image/jpeg"),
    ("iVBOR", "image/png"),
    ("R0lGOD", "image/gif"),
    ("UklGR", "image/webp"),
)
_THINKING_TYPES = ("thinking", "redacted_thinking")

# Request fields the IR interprets; every other top-level field goes to req.extras untouched.
_KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "output_format",
    }
)
_CUSTOM_TOOL_KEYS = frozenset({"name", "description", "input_schema", "strict", "cache_control", "type"})

_STOP_FROM_WIRE: dict[str, StopReason] = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "pause",
    "model_context_window_exceeded": "context_window",
}
_STOP_TO_WIRE: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "pause": "pause_turn",
    "context_window": "model_context_window_exceeded",
    "error": "end_turn",
}

# ==========================================================================================================
# helpers
# ==========================================================================================================


def _obj(value: Any) -> JsonObj | None:
    return value if isinstance(value, dict) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int:
    """A token count from the wire; anything that is not a non-negative integer counts as 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, int(value))


def _num(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{field}: expected a number", param=field)
    return float(value)


def _whole(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise InvalidRequestError(f"{field}: expected an integer", param=field)
    return int(value)


def usage_from_wire(u: Mapping[str, Any]) -> Usage:
    """Anthropic usage (input excludes cache) -> IR usage (input includes cache reads and writes)."""
    read = _int(u.get("cache_read_input_tokens"))
    write = _int(u.get("cache_creation_input_tokens"))
    details = _obj(u.get("output_tokens_details")) or {}
    return Usage(
        input_tokens=_int(u.get("input_tokens")) + read + write,
        output_tokens=_int(u.get("output_tokens")),
        cached_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=_int(details.get("thinking_tokens")),
    )


def usage_to_wire(usage: Usage | None) -> JsonObj:
    """IR usage -> Anthropic usage: input_tokens excludes cache reads and writes (floor 0)."""
    if usage is None:
        usage = Usage()
    return {
        "input_tokens": max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens,
    }


def stop_from_wire(reason: Any) -> StopReason:
    """Unknown or missing values map to "stop": a new reason must not break the stream."""
    return _STOP_FROM_WIRE.get(reason, "stop") if isinstance(reason, str) else "stop"


def stop_to_wire(reason: StopReason) -> str:
    return _STOP_TO_WIRE.get(reason, "end_turn")


def _user_id(user_id: str) -> str:
    """`metadata.user_id` -> a stable end-user id of at most 64 characters.

    Claude Code sends either `user_<hash>_account_<uuid>_session_<uuid>` or a JSON object with
    device_id / account_uuid / session_id. The session part changes every run, so it is left out of
    the identity; what remains is hashed when it is long or structured (it may identify an account).
    """
    basis = user_id
    if user_id.startswith("{"):
        try:
            parsed = loads(user_id)
        except JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            stable = parsed.get("account_uuid") or parsed.get("device_id")
            basis = stable if isinstance(stable, str) and stable else user_id
        return "user_" + hashlib.sha256(basis.encode()).hexdigest()[:32]
    basis = user_id.split("_session_", 1)[0]
    if len(basis) <= MAX_USER_ID_CHARS:
        return basis
    return "user_" + hashlib.sha256(basis.encode()).hexdigest()[:32]


# ==========================================================================================================
# request parsing (Anthropic client -> IR)
# ==========================================================================================================


def parse_request(body: JsonObj) -> ChatRequest:
    """An Anthropic Messages request -> ChatRequest. Lenient where the API is (max_tokens may be absent:
    count_tokens omits it); shape errors raise InvalidRequestError naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model: a model name is required", param="model")
    req = ChatRequest(model=model, source_format=FORMAT_ID)
    _parse_system(body.get("system"), req)
    _parse_messages(body.get("messages"), req)
    _parse_tools(body.get("tools"), req)
    _parse_tool_choice(body.get("tool_choice"), req)
    _parse_thinking(body.get("thinking"), req)
    _parse_output_config(body, req)

    req.max_tokens = _whole(body.get("max_tokens"), "max_tokens")
    req.temperature = _num(body.get("temperature"), "temperature")
    req.top_p = _num(body.get("top_p"), "top_p")
    req.top_k = _whole(body.get("top_k"), "top_k")
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequestError("stop_sequences: expected a list of strings", param="stop_sequences")
        req.stop = list(stops)
    req.stream = body.get("stream") is True
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InvalidRequestError("metadata: expected an object", param="metadata")
        req.metadata = metadata
        user_id = metadata.get("user_id")
        if isinstance(user_id, str) and user_id:
            req.user = _user_id(user_id)
    for key, value in body.items():
        if key not in _KNOWN_FIELDS:
            req.extras[key] = value
    return req


def parse_count_tokens_request(body: JsonObj) -> ChatRequest:
    """`/v1/messages/count_tokens`: the same body without max_tokens/stream (parse_request allows that)."""
    return parse_request(body)


def render_count_tokens(n: int) -> JsonObj:
    return {"input_tokens": n}


def _parse_system(value: Any, req: ChatRequest) -> None:
    if value is None:
        return
    if isinstance(value, str):
        if value:
            req.system.append(TextPart(value))
        return
    if not isinstance(value, list):
        raise InvalidRequestError("system: expected a string or a list of text blocks", param="system")
    for i, block in enumerate(value):
        if (
            not isinstance(block, dict)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            raise InvalidRequestError(f"system.{i}: expected a text block", param="system")
        text = block["text"]
        if i == 0 and text.startswith(BILLING_HEADER_PREFIX):
            req.extras[X_BILLING_HEADER] = block
            continue
        if text:
            req.system.append(TextPart(text, cache_control=_obj(block.get("cache_control"))))


def _parse_messages(value: Any, req: ChatRequest) -> None:
    if not isinstance(value, list):
        raise InvalidRequestError("messages: expected a list of messages", param="messages")
    call_names: dict[str, str] = {}  # tool_use id -> tool name: fills ToolResultPart.name for Gemini
    conversation_started = False
    for i, msg in enumerate(value):
        where = f"messages.{i}"
        if not isinstance(msg, dict):
            raise InvalidRequestError(f"{where}: expected an object", param="messages")
        role = msg.get("role")
        blocks = _content_blocks(msg.get("content"), where)
        if role == "user":
            req.messages.extend(_parse_user_blocks(blocks, where, call_names))
        elif role == "assistant":
            message = _parse_assistant_blocks(blocks, where, call_names)
            if message.parts:
                req.messages.append(message)
        elif role == "system":
            parts = [_parse_text_block(b, where) for b in blocks]
            texts = [p for p in parts if p.text]
            if not conversation_started:
                req.system.extend(texts)  # system text before any turn belongs to the system prompt
            elif texts:
                req.messages.append(Message(role="system", parts=list(texts)))
            continue
        else:
            raise InvalidRequestError(
                f"{where}.role: expected user, assistant or system, got {role!r}", param="messages"
            )
        conversation_started = True


def _content_blocks(content: Any, where: str) -> list[JsonObj]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}.content: expected a string or a list of blocks", param="messages")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequestError(
                f"{where}.content.{j}: expected an object with a `type`", param="messages"
            )
    return content


def _parse_text_block(block: JsonObj, where: str) -> TextPart:
    text = block.get("text")
    if block.get("type") != "text" or not isinstance(text, str):
        raise InvalidRequestError(f"{where}: expected text blocks", param="messages")
    citations = block.get("citations")
    return TextPart(
        text,
        cache_control=_obj(block.get("cache_control")),
        citations=citations if isinstance(citations, list) and citations else None,
    )


def _parse_media(block: JsonObj) -> ImagePart | FilePart | None:
    """image / document blocks -> IR parts; None for sources the IR cannot carry (Files API images,
    unknown source types): callers keep those as opaque blocks."""
    source = _obj(block.get("source")) or {}
    kind = source.get("type")
    cc = _obj(block.get("cache_control"))
    if block["type"] == "image":
        if kind == "base64" and isinstance(source.get("data"), str):
            return ImagePart(media_type=_str(source.get("media_type")), data=source["data"], cache_control=cc)
        if kind == "url" and isinstance(source.get("url"), str):
            return ImagePart(url=source["url"], cache_control=cc)
        return None
    title = block.get("title") if isinstance(block.get("title"), str) else None
    if kind == "base64" and isinstance(source.get("data"), str):
        media = _str(source.get("media_type")) or "application/pdf"
        return FilePart(media_type=media, data=source["data"], title=title, cache_control=cc)
    if kind == "text" and isinstance(source.get("data"), str):
        media = _str(source.get("media_type")) or "text/plain"
        return FilePart(media_type=media, text=source["data"], title=title, cache_control=cc)
    if kind == "url" and isinstance(source.get("url"), str):
        return FilePart(url=source["url"], title=title, cache_control=cc)
    if kind == "file" and isinstance(source.get("file_id"), str):
        return FilePart(file_id=source["file_id"], title=title, cache_control=cc)
    if kind == "content" and isinstance(source.get("content"), list):
        texts = [
            b["text"] for b in source["content"] if isinstance(b, dict) and isinstance(b.get("text"), str)
        ]
        if texts and len(texts) == len(source["content"]):
            return FilePart(media_type="text/plain", text="\n\n".join(texts), title=title, cache_control=cc)
    return None


def _parse_tool_result(block: JsonObj, where: str, call_names: Mapping[str, str]) -> ToolResultPart:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise InvalidRequestError(f"{where}: tool_result needs a `tool_use_id` string", param="messages")
    content = block.get("content")
    parts: list[TextPart | ImagePart | FilePart] = []
    if isinstance(content, str):
        if content:
            parts.append(TextPart(content))
    elif isinstance(content, list):
        for sub in content:
            if not isinstance(sub, dict):
                continue
            kind = sub.get("type")
            if kind == "text":
                if isinstance(sub.get("text"), str) and sub["text"]:
                    parts.append(_parse_text_block(sub, where))
                continue
            media = _parse_media(sub) if kind in ("image", "document") else None
            # tool_reference, search_result ...: no IR shape; their JSON keeps the content for the model.
            parts.append(media if media is not None else TextPart(dumps_str(sub)))
    elif content is not None:
        raise InvalidRequestError(
            f"{where}: tool_result content must be a string or a list", param="messages"
        )
    return ToolResultPart(
        call_id=call_id,
        content=parts,
        is_error=block.get("is_error") is True,
        name=call_names.get(call_id),
        cache_control=_obj(block.get("cache_control")),
    )


def _parse_user_blocks(blocks: list[JsonObj], where: str, call_names: Mapping[str, str]) -> list[Message]:
    """One Anthropic user message -> IR messages: each run of tool_result blocks becomes a "tool"
    message, everything else "user" messages, in the order the client wrote them (case 23)."""
    out: list[Message] = []

    def current(role: str) -> Message:
        if not out or out[-1].role != role:
            out.append(Message(role="tool" if role == "tool" else "user"))
        return out[-1]

    for j, block in enumerate(blocks):
        kind = block["type"]
        if kind == "tool_result":
            current("tool").parts.append(_parse_tool_result(block, f"{where}.content.{j}", call_names))
            continue
        part: Part
        if kind == "text":
            part = _parse_text_block(block, where)
            if not part.text:
                continue
        elif kind in ("image", "document"):
            media = _parse_media(block)
            part = media if media is not None else OpaquePart(FORMAT_ID, block)
        else:
            part = OpaquePart(FORMAT_ID, block)  # search_result, container_upload, future blocks
        current("user").parts.append(part)
    return out


def _parse_assistant_blocks(blocks: list[JsonObj], where: str, call_names: dict[str, str]) -> Message:
    message = Message(role="assistant")
    parts = message.parts
    for j, block in enumerate(blocks):
        kind = block["type"]
        if kind == "text":
            text_part = _parse_text_block(block, where)
            if text_part.text:
                parts.append(text_part)
        elif kind == "thinking":
            origin, token = untag_signature(_str(block.get("signature")) or "")
            thinking = block.get("thinking")
            parts.append(
                ThinkingPart(
                    text=thinking if isinstance(thinking, str) else "",
                    signature=token or None,
                    origin=origin,
                )
            )
        elif kind == "redacted_thinking":
            origin, token = untag_signature(_str(block.get("data")) or "")
            parts.append(ThinkingPart(signature=token, redacted=True, origin=origin))
        elif kind == "tool_use":
            call_id, name = block.get("id"), block.get("name")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise InvalidRequestError(
                    f"{where}.content.{j}: tool_use needs `id` and `name` strings", param="messages"
                )
            raw_input = block.get("input")
            arguments = (
                arguments_text(raw_input)
                if isinstance(raw_input, dict) or raw_input is None
                else dumps_str(raw_input)
            )
            parts.append(ToolCallPart(id=call_id, name=name, arguments=arguments))
            call_names[call_id] = name
            # tool_use has no cache_control slot in the IR: a breakpoint on the message's last block is
            # carried as the message's, which the renderer puts back on the last block.
            if j == len(blocks) - 1 and isinstance(block.get("cache_control"), dict):
                message.cache_control = block["cache_control"]
        else:
            parts.append(OpaquePart(FORMAT_ID, block))  # server_tool_use, *_tool_result, future blocks
    return message


def _parse_tools(value: Any, req: ChatRequest) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise InvalidRequestError("tools: expected a list", param="tools")
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise InvalidRequestError(f"tools.{i}: expected an object", param="tools")
        kind = tool.get("type")
        name = tool.get("name")
        if kind in (None, "custom"):
            if not isinstance(name, str) or not name:
                raise InvalidRequestError(f"tools.{i}.name: a tool name is required", param="tools")
            schema = tool.get("input_schema")
            description = tool.get("description")
            spec = ToolSpec(
                name=name,
                description=description if isinstance(description, str) else None,
                parameters=schema if isinstance(schema, dict) else None,
                strict=tool["strict"] if isinstance(tool.get("strict"), bool) else None,
                cache_control=_obj(tool.get("cache_control")),
            )
            if any(k not in _CUSTOM_TOOL_KEYS for k in tool):
                # defer_loading, input_examples, eager_input_streaming...: kept for Anthropic targets
                spec.raw, spec.raw_format = tool, FORMAT_ID
            req.tools.append(spec)
        elif isinstance(kind, str):
            req.tools.append(
                ToolSpec(
                    name=name if isinstance(name, str) and name else kind,
                    kind="builtin",
                    raw=tool,
                    raw_format=FORMAT_ID,
                    cache_control=_obj(tool.get("cache_control")),
                )
            )
        else:
            raise InvalidRequestError(f"tools.{i}.type: expected a string", param="tools")


def _parse_tool_choice(value: Any, req: ChatRequest) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise InvalidRequestError("tool_choice: expected an object", param="tool_choice")
    kind = value.get("type")
    if kind == "any":
        req.tool_choice = ToolChoice(mode="required")
    elif kind == "none":
        req.tool_choice = ToolChoice(mode="none")
    elif kind == "tool":
        name = value.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError("tool_choice.name: required for type tool", param="tool_choice")
        req.tool_choice = ToolChoice(mode="tool", name=name)
    else:
        req.tool_choice = ToolChoice(mode="auto")  # "auto" and values newer than this module
    if value.get("disable_parallel_tool_use") is True:
        req.parallel_tool_calls = False


def _parse_thinking(value: Any, req: ChatRequest) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise InvalidRequestError("thinking: expected an object", param="thinking")
    kind = value.get("type")
    if not isinstance(kind, str):
        raise InvalidRequestError("thinking.type: expected enabled, adaptive or disabled", param="thinking")
    display = value.get("display") if isinstance(value.get("display"), str) else None
    if kind == "enabled":
        budget = _whole(value.get("budget_tokens"), "thinking.budget_tokens")
        req.reasoning = ReasoningConfig(enabled=True, budget_tokens=budget, display=display)
    elif kind == "adaptive":
        req.reasoning = ReasoningConfig(enabled=True, adaptive=True, display=display)
    elif kind == "disabled":
        req.reasoning = ReasoningConfig(enabled=False)
    else:
        # between_tools and later kinds: "thinking on, the model decides" for other formats; the exact
        # object goes back to Anthropic.
        req.reasoning = ReasoningConfig(enabled=True, adaptive=True, display=display)
        req.extras[X_THINKING] = value


def _parse_output_config(body: JsonObj, req: ChatRequest) -> None:
    config = body.get("output_config")
    if config is not None:
        if not isinstance(config, dict):
            raise InvalidRequestError("output_config: expected an object", param="output_config")
        effort = config.get("effort")
        if isinstance(effort, str):
            if req.reasoning is None:
                req.reasoning = ReasoningConfig()
            req.reasoning.effort = effort
        fmt = _obj(config.get("format"))
        if fmt is not None:
            req.response_format = _response_format(fmt)
        rest = {k: v for k, v in config.items() if k not in ("effort", "format")}
        if rest:
            req.extras["output_config"] = rest  # merged back into output_config for Anthropic
    legacy = _obj(body.get("output_format"))
    if legacy is not None and req.response_format is None:
        req.response_format = _response_format(legacy)
        req.extras[X_LEGACY_OUTPUT_FORMAT] = True


def _response_format(fmt: JsonObj) -> ResponseFormat:
    schema = _obj(fmt.get("schema"))
    if fmt.get("type") == "json_schema" or schema is not None:
        return ResponseFormat(kind="json_schema", schema=schema)
    return ResponseFormat(kind="text")


# ==========================================================================================================
# request rendering (IR -> Anthropic upstream)
# ==========================================================================================================


def render_request(req: ChatRequest, ctx: Context) -> JsonObj:
    """ChatRequest -> an Anthropic Messages body for `ctx.upstream_model` (see the module invariants)."""
    refuse_previous_response_id(req.previous_response_id)
    return _RequestRenderer(req, ctx).render()


def render_count_tokens_request(req: ChatRequest, ctx: Context) -> JsonObj:
    """A `/v1/messages/count_tokens` body: the request without generation-only fields, which that
    endpoint rejects."""
    body = render_request(req, ctx)
    for key in (
        "max_tokens",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "metadata",
        "service_tier",
        "container",
        "inference_geo",
    ):
        body.pop(key, None)
    return body


class _Turn:
    """A message being assembled: role + Anthropic content blocks (all dicts built here, ours to edit)."""

    __slots__ = ("blocks", "role")

    def __init__(self, role: str, blocks: list[JsonObj]) -> None:
        self.role = role
        self.blocks = blocks


class _RequestRenderer:
    def __init__(self, req: ChatRequest, ctx: Context) -> None:
        self.req = req
        self.ctx = ctx
        self.caps = ctx.caps
        self.same_format = req.source_format == FORMAT_ID
        self.cache = ctx.caps.cache_control
        self.name_up: dict[str, str] = {}  # client tool name -> upstream tool name
        self.name_owner: dict[str, str] = {}  # upstream tool name -> client tool name
        self.call_up: dict[str, str] = {}  # client call id -> upstream call id
        self.call_owner: dict[str, str] = {}  # upstream call id -> client call id

    # -- renames ---------------------------------------------------------------------------------------

    def tool_name(self, name: str) -> str:
        up = self.name_up.get(name)
        if up is not None:
            return up
        up = sanitize_tool_name(name, max_len=self.caps.max_tool_name)
        if self.name_owner.get(up, name) != name:
            up = disambiguate(name, up, self.caps.max_tool_name)
        self.name_up[name], self.name_owner[up] = up, name
        if up != name:
            self.ctx.tool_names[up] = name
        return up

    def call_id(self, call_id: str) -> str:
        up = self.call_up.get(call_id)
        if up is not None:
            return up
        up = sanitize_call_id(call_id)
        if self.call_owner.get(up, call_id) != call_id:
            up = disambiguate(call_id, up, max(64, len(up)))
        self.call_up[call_id], self.call_owner[up] = up, call_id
        if up != call_id:
            self.ctx.call_ids[up] = call_id
        return up

    def keeps_token(self, origin: str | None) -> bool:
        """The IR rule: replay a reasoning token only to the upstream that minted it."""
        if origin is None:
            return self.ctx.upstream_format == self.req.source_format
        return origin == self.ctx.provider

    def cc(self, cache_control: JsonObj | None) -> JsonObj | None:
        return cache_control if self.cache and isinstance(cache_control, dict) else None

    def passthrough(self, block: JsonObj) -> JsonObj:
        """A client block sent on as is: copied (we edit our output later), cache_control per caps."""
        out = dict(block)
        if not self.cache:
            out.pop("cache_control", None)
        return out

    # -- the whole request -----------------------------------------------------------------------------

    def render(self) -> JsonObj:
        req, caps = self.req, self.ctx.caps
        body: JsonObj = {"model": self.ctx.upstream_model or req.model}
        tools = self.render_tools()  # first: names of declared tools win the unchanged spelling
        messages = self.render_messages()
        system = self.render_system()
        if system and caps.system_as_user:
            messages = self.fold_system_into_user(system, messages)
            system = []

        max_tokens = req.max_tokens if req.max_tokens is not None else caps.default_max_tokens
        if caps.max_output_tokens is not None:
            max_tokens = min(max_tokens, caps.max_output_tokens)
        thinking, effort, max_tokens = self.render_thinking(max_tokens, messages)
        thinking_on = thinking is not None and thinking.get("type") != "disabled"

        body["max_tokens"] = max_tokens
        if system:
            body["system"] = system
        body["messages"] = messages
        if tools:
            body["tools"] = tools
            choice = self.render_tool_choice(thinking_on)
            if choice is not None:
                body["tool_choice"] = choice
        if thinking is not None:
            body["thinking"] = thinking
        self.render_sampling(body, thinking_on)
        self.render_output_config(body, effort)
        self.render_metadata(body)
        if req.stream:
            body["stream"] = True
        if self.same_format:
            for key, value in req.extras.items():
                if ":" in key or key in body or key == "output_config":
                    continue
                if key == "cache_control" and not self.cache:
                    continue
                body[key] = value
        self.limit_cache_breakpoints(body)
        return body

    # -- system ----------------------------------------------------------------------------------------

    def render_system(self) -> list[JsonObj]:
        blocks = [self.text_block(p.text, p.cache_control) for p in self.req.system if p.text]
        billing = self.req.extras.get(X_BILLING_HEADER) if self.same_format else None
        if isinstance(billing, dict):
            blocks.insert(0, self.passthrough(billing))
        return blocks

    def fold_system_into_user(self, system: list[JsonObj], messages: list[JsonObj]) -> list[JsonObj]:
        text = "\n\n".join(b["text"] for b in system if not b["text"].startswith(BILLING_HEADER_PREFIX))
        if not text:
            return messages
        first = {"type": "text", "text": text}
        if messages and messages[0]["role"] == "user":
            return [{"role": "user", "content": [first, *messages[0]["content"]]}, *messages[1:]]
        return [{"role": "user", "content": [first]}, *messages]

    def text_block(self, text: str, cache_control: JsonObj | None = None) -> JsonObj:
        block: JsonObj = {"type": "text", "text": text}
        cc = self.cc(cache_control)
        if cc is not None:
            block["cache_control"] = cc
        return block

    # -- messages --------------------------------------------------------------------------------------

    def render_messages(self) -> list[JsonObj]:
        turns: list[_Turn] = []
        for msg in self.req.messages:
            turn = self.render_message(msg)
            if not turn.blocks:
                continue
            if turns and turns[-1].role == turn.role:
                turns[-1].blocks.extend(turn.blocks)  # roles must alternate: merge
            else:
                turns.append(turn)
        turns = self.repair_tool_pairing(turns)
        for turn in turns:
            if turn.role == "assistant":
                _thinking_first(turn.blocks)
        if not any(t.role in ("user", "assistant") for t in turns):
            turns.append(_Turn("user", [{"type": "text", "text": SYSTEM_ONLY_USER_TEXT}]))
        return [{"role": t.role, "content": t.blocks} for t in turns]

    def render_message(self, msg: Message) -> _Turn:
        if msg.role == "assistant":
            turn = _Turn("assistant", self.assistant_blocks(msg.parts))
        elif msg.role == "system":
            texts = [p.text for p in msg.parts if isinstance(p, TextPart) and p.text]
            if self.same_format and not self.caps.system_as_user:
                blocks = [
                    self.text_block(p.text, p.cache_control)
                    for p in msg.parts
                    if isinstance(p, TextPart) and p.text
                ]
                turn = _Turn("system", blocks)
            elif texts:
                reminder = "<system-reminder>\n" + "\n\n".join(texts) + "\n</system-reminder>"
                turn = _Turn("user", [{"type": "text", "text": reminder}])
            else:
                turn = _Turn("user", [])
        else:  # user and tool messages both land in a user turn
            turn = _Turn("user", self.user_blocks(msg.parts))
        cc = self.cc(msg.cache_control)
        if cc is not None:
            for block in reversed(turn.blocks):
                if block["type"] not in _THINKING_TYPES:
                    block.setdefault("cache_control", cc)
                    break
        return turn

    def user_blocks(self, parts: Iterable[Part]) -> list[JsonObj]:
        blocks: list[JsonObj] = []
        for part in parts:
            if isinstance(part, TextPart):
                if part.text:
                    blocks.append(self.text_block(part.text, part.cache_control))
            elif isinstance(part, (ImagePart, FilePart)):
                blocks.append(self.media_block(part))
            elif isinstance(part, ToolResultPart):
                blocks.append(self.tool_result_block(part))
            elif isinstance(part, AudioPart):
                blocks.append(
                    {"type": "text", "text": f"[{part.format} audio omitted: this model takes no audio]"}
                )
            elif isinstance(part, RefusalPart):
                if part.text:
                    blocks.append({"type": "text", "text": part.text})
            elif isinstance(part, OpaquePart) and part.format == FORMAT_ID:
                blocks.append(self.passthrough(part.data))
        return blocks

    def assistant_blocks(self, parts: Iterable[Part]) -> list[JsonObj]:
        blocks: list[JsonObj] = []
        for part in parts:
            if isinstance(part, TextPart):
                if part.text:
                    block = self.text_block(part.text, part.cache_control)
                    if part.citations and self.same_format:
                        block["citations"] = part.citations
                    blocks.append(block)
            elif isinstance(part, RefusalPart):
                if part.text:
                    blocks.append({"type": "text", "text": part.text})
            elif isinstance(part, ThinkingPart):
                block_or_none = self.thinking_block(part)
                if block_or_none is not None:
                    blocks.append(block_or_none)
            elif isinstance(part, ToolCallPart):
                args: JsonObj = (
                    {"input": part.arguments} if part.kind == "custom" else arguments_object(part.arguments)
                )
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": self.call_id(part.id),
                        "name": self.tool_name(part.name),
                        "input": args,
                    }
                )
            elif isinstance(part, OpaquePart) and part.format == FORMAT_ID:
                blocks.append(self.passthrough(part.data))
        return blocks

    def thinking_block(self, part: ThinkingPart) -> JsonObj | None:
        if not self.keeps_token(part.origin):
            return None  # minted by someone else: Anthropic would reject the signature
        if part.redacted:
            return {"type": "redacted_thinking", "data": part.signature or ""}
        if part.signature is None and part.origin is None and not self.same_format:
            return None
        block: JsonObj = {"type": "thinking", "thinking": part.text}
        if part.signature is not None:
            block["signature"] = part.signature
        return block

    def media_block(self, part: ImagePart | FilePart) -> JsonObj:
        """image/document block, or a text note saying what could not be sent (never a silent drop)."""
        cc = self.cc(part.cache_control)
        block = _image_block(part) if isinstance(part, ImagePart) else self.document_block(part)
        if cc is not None and block["type"] != "text":
            block["cache_control"] = cc
        return block

    def document_block(self, part: FilePart) -> JsonObj:
        media = (part.media_type or "").lower()
        source: JsonObj | None = None
        if part.text is not None:
            source = {"type": "text", "media_type": "text/plain", "data": part.text}
        elif part.data is not None:
            if media in _IMAGE_TYPES:
                return _image_block(ImagePart(media_type=media, data=part.data))
            if media == "application/pdf" or not media:
                source = {"type": "base64", "media_type": "application/pdf", "data": part.data}
            elif media.startswith("text/"):
                decoded = _b64_text(part.data)
                if decoded is not None:
                    source = {"type": "text", "media_type": "text/plain", "data": decoded}
        elif part.url is not None:
            source = {"type": "url", "url": part.url}
        elif part.file_id is not None and self.same_format:
            source = {"type": "file", "file_id": part.file_id}
        if source is None:
            name = part.filename or part.file_id or part.title or "attachment"
            return {
                "type": "text",
                "text": f"[file {name} ({media or 'unknown type'}) omitted: not supported here]",
            }
        block: JsonObj = {"type": "document", "source": source}
        title = part.title or part.filename
        if title:
            block["title"] = title
        return block

    def tool_result_block(self, part: ToolResultPart) -> JsonObj:
        block: JsonObj = {"type": "tool_result", "tool_use_id": self.call_id(part.call_id)}
        content: list[JsonObj] = []
        for sub in part.content:
            if isinstance(sub, TextPart):
                if sub.text:
                    content.append(self.text_block(sub.text, sub.cache_control))
            else:
                content.append(self.media_block(sub))
        if len(content) == 1 and content[0]["type"] == "text" and len(content[0]) == 2:
            block["content"] = content[0]["text"]  # a plain string: the shape every compatible API takes
        elif content:
            block["content"] = content
        if part.is_error:
            block["is_error"] = True
        cc = self.cc(part.cache_control)
        if cc is not None:
            block["cache_control"] = cc
        return block

    def repair_tool_pairing(self, turns: list[_Turn]) -> list[_Turn]:
        """Every tool_use answered first thing in the next user turn; orphan results become text."""
        out: list[_Turn] = []
        pending: list[str] = []  # tool_use ids of the assistant turn just before
        for turn in turns:
            if turn.role == "user":
                out.append(self.settle_results(turn, pending))
                pending = []
                continue
            if turn.role == "system":
                out.append(turn)  # an in-conversation system message does not end the tool exchange
                continue
            if pending:
                out.append(self.settle_results(_Turn("user", []), pending))
            out.append(turn)
            pending = (
                [b["id"] for b in turn.blocks if b["type"] == "tool_use"] if turn.role == "assistant" else []
            )
        if pending:
            out.append(self.settle_results(_Turn("user", []), pending))
        return out

    def settle_results(self, turn: _Turn, call_ids: list[str]) -> _Turn:
        wanted = set(call_ids)
        results: dict[str, JsonObj] = {}  # by id: a repeated result keeps the last one, in first place
        others: list[JsonObj] = []
        for block in turn.blocks:
            if block["type"] != "tool_result":
                others.append(block)
            elif block["tool_use_id"] in wanted:
                results[block["tool_use_id"]] = block
            else:
                others.extend(_orphan_result_text(block))
        for call_id in call_ids:
            if call_id not in results:
                results[call_id] = {
                    "type": "tool_result",
                    "tool_use_id": call_id,
                    "content": MISSING_RESULT_TEXT,
                    "is_error": True,
                }
        return _Turn("user", [*results.values(), *others])

    # -- tools -----------------------------------------------------------------------------------------

    def render_tools(self) -> list[JsonObj]:
        req = self.req
        allowed = set(req.tool_choice.allowed) if req.tool_choice and req.tool_choice.allowed else None
        tools: list[JsonObj] = []
        for spec in req.tools:
            if allowed is not None and spec.name not in allowed:
                continue
            if spec.kind == "builtin":
                if spec.raw is not None and spec.raw_format == FORMAT_ID:
                    tools.append(self.passthrough(spec.raw))
                continue
            tool: JsonObj = {}
            if spec.raw is not None and spec.raw_format == FORMAT_ID:
                tool.update((k, v) for k, v in spec.raw.items() if k not in _CUSTOM_TOOL_KEYS)
            tool["name"] = self.tool_name(spec.name)
            if spec.description:
                tool["description"] = spec.description
            if spec.kind == "custom":
                tool["input_schema"] = _custom_tool_schema(spec)
            elif self.same_format and spec.parameters is not None:
                tool["input_schema"] = spec.parameters  # the client's own schema, for its own API
            else:
                tool["input_schema"] = to_anthropic_input_schema(spec.parameters)
            if spec.strict is not None and spec.kind != "custom":
                tool["strict"] = spec.strict
            cc = self.cc(spec.cache_control)
            if cc is not None:
                tool["cache_control"] = cc
            tools.append(tool)
        return tools

    def render_tool_choice(self, thinking_on: bool) -> JsonObj | None:
        req = self.req
        choice = req.tool_choice
        no_parallel = req.parallel_tool_calls is False
        if choice is None:
            return {"type": "auto", "disable_parallel_tool_use": True} if no_parallel else None
        if choice.mode == "none":
            return {"type": "none"}
        out: JsonObj
        if choice.mode == "required":
            out = {"type": "any"}
        elif choice.mode == "tool" and choice.name:
            out = {"type": "tool", "name": self.tool_name(choice.name)}
        else:
            out = {"type": "auto"}
        if thinking_on and out["type"] != "auto":
            out = {"type": "auto"}  # "Thinking may not be enabled when tool_choice forces tool use"
        if no_parallel:
            out["disable_parallel_tool_use"] = True
        return out

    # -- thinking and sampling -------------------------------------------------------------------------

    def render_thinking(
        self, max_tokens: int, messages: list[JsonObj]
    ) -> tuple[JsonObj | None, str | None, int]:
        """(thinking object, output_config.effort, max_tokens)."""
        r = self.req.reasoning
        if r is None:
            return None, None, max_tokens
        if self.same_format:
            thinking, effort = self.client_thinking(r)
        else:
            thinking, effort, max_tokens = self.foreign_thinking(r, max_tokens)
        if thinking is not None and thinking["type"] != "disabled" and _tool_turn_lacks_thinking(messages):
            thinking = {"type": "disabled"}  # see the module docstring: better than the certain 400
        return thinking, effort, max_tokens

    def client_thinking(self, r: ReasoningConfig) -> tuple[JsonObj | None, str | None]:
        """Anthropic client: its own settings, as it wrote them."""
        raw = self.req.extras.get(X_THINKING)
        thinking: JsonObj | None = None
        if isinstance(raw, dict) and r.enabled:
            thinking = dict(raw)
        elif r.enabled is False:
            thinking = {"type": "disabled"}
        elif r.adaptive:
            thinking = {"type": "adaptive"}
        elif r.enabled:
            thinking = {"type": "enabled", "budget_tokens": r.budget_tokens or EFFORT_BUDGET_TOKENS["medium"]}
        if thinking is not None and r.display and thinking["type"] != "disabled":
            thinking["display"] = r.display
        return thinking, r.effort

    def foreign_thinking(self, r: ReasoningConfig, max_tokens: int) -> tuple[JsonObj | None, str | None, int]:
        style = self.caps.thinking_style
        if style == "none":
            return None, None, max_tokens
        if r.enabled is False or r.effort == "none" or r.budget_tokens == 0:
            return {"type": "disabled"}, None, max_tokens
        effort = _effort_value(r.effort) if r.effort else None
        budget: int | None = None
        if r.budget_tokens is not None and r.budget_tokens > 0:
            budget = r.budget_tokens
        elif style == "effort" and (r.adaptive or r.effort or r.enabled or r.budget_tokens == -1):
            thinking: JsonObj = {"type": "adaptive"}
            if r.display:
                thinking["display"] = r.display
            return thinking, effort, max_tokens
        elif r.effort:
            budget = EFFORT_BUDGET_TOKENS.get(r.effort, EFFORT_BUDGET_TOKENS["medium"])
        elif r.enabled or r.adaptive or r.budget_tokens == -1:
            budget = EFFORT_BUDGET_TOKENS["medium"]
        if budget is None:
            return None, None, max_tokens
        budget = max(MIN_THINKING_BUDGET_TOKENS, budget)
        if budget >= max_tokens and self.req.max_tokens is None:
            max_tokens = budget + ANSWER_ROOM_TOKENS  # no limit from the client: make room
            if self.caps.max_output_tokens is not None:
                max_tokens = min(max_tokens, self.caps.max_output_tokens)
        if budget >= max_tokens:
            budget = max(MIN_THINKING_BUDGET_TOKENS, max_tokens - ANSWER_ROOM_TOKENS)
        if budget >= max_tokens:
            return None, None, max_tokens  # less than the 1024 minimum fits: no thinking
        thinking = {"type": "enabled", "budget_tokens": budget}
        if r.display:
            thinking["display"] = r.display
        return thinking, None, max_tokens

    def render_sampling(self, body: JsonObj, thinking_on: bool) -> None:
        req = self.req
        temperature = req.temperature
        if temperature is not None:
            temperature = min(1.0, max(0.0, temperature))
            if thinking_on and temperature != 1.0:
                temperature = None  # thinking allows only the default
        if temperature is not None:
            body["temperature"] = _plain_number(temperature)
        if req.top_p is not None and not (thinking_on and req.top_p < 0.95):
            body["top_p"] = _plain_number(req.top_p)
        if req.top_k is not None and not thinking_on:
            body["top_k"] = req.top_k
        stops = [s for s in req.stop if s.strip()]  # whitespace-only stop sequences are rejected
        if stops:
            body["stop_sequences"] = stops

    def render_output_config(self, body: JsonObj, effort: str | None) -> None:
        config: JsonObj = {}
        if self.same_format and isinstance(self.req.extras.get("output_config"), dict):
            config.update(self.req.extras["output_config"])
        if effort:
            config["effort"] = effort
        rf = self.req.response_format
        fmt: JsonObj | None = None
        if rf is not None and rf.kind == "json_schema":
            fmt = {
                "type": "json_schema",
                "schema": rf.schema if rf.schema is not None else {"type": "object"},
            }
        elif rf is not None and rf.kind == "json_object":
            fmt = {"type": "json_schema", "schema": {"type": "object"}}
        if fmt is not None:
            if self.same_format and self.req.extras.get(X_LEGACY_OUTPUT_FORMAT):
                body["output_format"] = fmt
            else:
                config["format"] = fmt
        if config:
            body["output_config"] = config

    def render_metadata(self, body: JsonObj) -> None:
        if self.same_format and isinstance(self.req.metadata, dict):
            body["metadata"] = self.req.metadata
        elif self.req.user:
            body["metadata"] = {"user_id": self.req.user}

    def limit_cache_breakpoints(self, body: JsonObj) -> None:
        """Keep only the last MAX_CACHE_BREAKPOINTS, in prefix order tools -> system -> messages."""
        if not self.cache:
            return
        marked: list[JsonObj] = [t for t in body.get("tools", ()) if "cache_control" in t]
        marked += [b for b in body.get("system", ()) if "cache_control" in b]
        for msg in body["messages"]:
            for block in msg["content"]:
                if "cache_control" in block:
                    marked.append(block)
                inner = block.get("content") if block["type"] == "tool_result" else None
                if isinstance(inner, list):
                    marked += [b for b in inner if isinstance(b, dict) and "cache_control" in b]
        # Blocks nested in a tool_result come before the tool_result's own marker in prefix order, but
        # they are appended after it above; the ordering difference only matters with >4 markers in one
        # block, where either choice keeps 4 valid breakpoints.
        for block in marked[:-MAX_CACHE_BREAKPOINTS]:
            del block["cache_control"]  # every marked dict was built (or copied) by this renderer


def _thinking_first(blocks: list[JsonObj]) -> None:
    """An assistant message with thinking must start with it (interleaved order kept otherwise)."""
    if not blocks or blocks[0]["type"] in _THINKING_TYPES:
        return
    if any(b["type"] in _THINKING_TYPES for b in blocks):
        blocks.sort(key=lambda b: b["type"] not in _THINKING_TYPES)  # stable: keeps relative order


def _tool_turn_lacks_thinking(messages: list[JsonObj]) -> bool:
    """True when the last assistant turn calls tools but does not start with a thinking block."""
    for msg in reversed(messages):
        if msg["role"] == "assistant":
            blocks = msg["content"]
            has_tool = any(b["type"] == "tool_use" for b in blocks)
            return has_tool and blocks[0]["type"] not in _THINKING_TYPES
    return False


def _orphan_result_text(block: JsonObj) -> list[JsonObj]:
    """A tool_result with no matching call: its content as user blocks (text prefixed with the id)."""
    label = f"[result of tool call {block['tool_use_id']}" + (" (error)]" if block.get("is_error") else "]")
    content = block.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": f"{label}\n{content}"}]
    if not content:
        return [{"type": "text", "text": label}]
    return [{"type": "text", "text": label}, *content]


def _custom_tool_schema(spec: ToolSpec) -> JsonObj:
    """Free-form (custom) tools have no Anthropic equivalent: one string property `input` (case 18)."""
    description = "The raw input for this tool, as free-form text."
    grammar = spec.grammar or {}
    definition = grammar.get("definition")
    if isinstance(definition, str) and definition:
        syntax = grammar.get("syntax") if isinstance(grammar.get("syntax"), str) else "grammar"
        description += f" It must match this {syntax} grammar:\n{definition}"
    return {
        "type": "object",
        "properties": {"input": {"type": "string", "description": description}},
        "required": ["input"],
    }


def _image_block(part: ImagePart) -> JsonObj:
    if part.data is not None:
        media, data = part.media_type, part.data
    elif part.url is not None:
        parsed = parse_data_url(part.url)
        if parsed is None:
            if part.url.startswith(("http://", "https://")):
                return {"type": "image", "source": {"type": "url", "url": part.url}}
            return {"type": "text", "text": f"[image {part.url} omitted: only http(s) URLs can be sent]"}
        media, data = parsed
    else:
        return {"type": "text", "text": "[image omitted: no data]"}
    media = (media or "").lower()
    if media == "image/jpg":
        media = "image/jpeg"
    if media not in _IMAGE_TYPES:
        sniffed = next((m for prefix, m in _IMAGE_MAGIC if data.startswith(prefix)), None)
        if sniffed is None:
            return {
                "type": "text",
                "text": f"[{media or 'image'} omitted: only JPEG, PNG, GIF and WebP are accepted]",
            }
        media = sniffed
    return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}


def _b64_text(data: str) -> str | None:
    if not is_valid_base64(data):
        return None
    try:
        return base64.b64decode(data).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _effort_value(effort: str) -> str:
    effort = _EFFORT_ALIASES.get(effort, effort)
    return effort if effort in _EFFORT_VALUES else "medium"


def _plain_number(value: float) -> float | int:
    """1.0 -> 1: a client's integer stays an integer on the way through."""
    return int(value) if value.is_integer() else value


# ==========================================================================================================
# responses
# ==========================================================================================================


def _custom_tool_names(ctx: Context) -> frozenset[str]:
    """Client names of the request's free-form tools: their calls come back as input.input strings."""
    if ctx.request is None:
        return frozenset()
    return frozenset(t.name for t in ctx.request.tools if t.kind == "custom")


def _custom_input(tool_input: Any) -> str:
    if isinstance(tool_input, dict) and isinstance(tool_input.get("input"), str):
        return str(tool_input["input"])
    return dumps_str(tool_input if tool_input is not None else {})


def parse_response(body: JsonObj, ctx: Context) -> ChatResponse:
    """An Anthropic upstream's Message -> ChatResponse (names and ids back to the client's)."""
    custom = _custom_tool_names(ctx)
    parts: list[Part] = []
    for block in body.get("content") or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if isinstance(text, str) and text:
                citations = block.get("citations")
                parts.append(
                    TextPart(text, citations=citations if isinstance(citations, list) and citations else None)
                )
        elif kind == "thinking":
            thinking = block.get("thinking")
            parts.append(
                ThinkingPart(
                    text=thinking if isinstance(thinking, str) else "",
                    signature=_str(block.get("signature")) or None,
                    origin=ctx.provider,
                )
            )
        elif kind == "redacted_thinking":
            parts.append(
                ThinkingPart(signature=_str(block.get("data")) or "", redacted=True, origin=ctx.provider)
            )
        elif kind == "tool_use":
            name = ctx.client_tool_name(str(block.get("name") or ""))
            call_id = ctx.client_call_id(str(block.get("id") or ""))
            tool_input = block.get("input")
            if name in custom:
                parts.append(
                    ToolCallPart(id=call_id, name=name, arguments=_custom_input(tool_input), kind="custom")
                )
            else:
                args = (
                    arguments_text(tool_input)
                    if isinstance(tool_input, dict)
                    else dumps_str(tool_input or {})
                )
                parts.append(ToolCallPart(id=call_id, name=name, arguments=args))
        elif isinstance(kind, str):
            parts.append(OpaquePart(FORMAT_ID, block))
    usage = _obj(body.get("usage"))
    stop_sequence = body.get("stop_sequence")
    return ChatResponse(
        id=str(body.get("id") or new_id("msg")),
        model=str(body.get("model") or ctx.upstream_model),
        parts=parts,
        stop_reason=stop_from_wire(body.get("stop_reason")),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        usage=usage_from_wire(usage) if usage is not None else None,
        created=ctx.created,
    )


def response_usage(body: JsonObj) -> Usage | None:
    usage = _obj(body.get("usage"))
    return usage_from_wire(usage) if usage is not None else None


def _message_id(upstream_id: str) -> str:
    if upstream_id.startswith("msg_"):
        return upstream_id
    return f"msg_{upstream_id}" if upstream_id else new_id("msg")


def _client_token(token: str, origin: str | None, ctx: Context) -> str:
    """The IR rule: raw for a same-format pair, else tagged with who minted it. An unsigned thinking
    block from another format still gets a tag (with an empty token), so the next request tells whose
    reasoning it was: that upstream may want it back (DeepSeek), Anthropic must not get it."""
    if ctx.upstream_format == ctx.client_format:
        return token
    return tag_signature(token, origin or ctx.provider)


def render_response(resp: ChatResponse, ctx: Context) -> JsonObj:
    """ChatResponse -> an Anthropic Message for the client."""
    content: list[JsonObj] = []
    refused = False
    native = ctx.upstream_format == FORMAT_ID
    for part in resp.parts:
        if isinstance(part, TextPart):
            if part.text:
                block: JsonObj = {"type": "text", "text": part.text}
                if part.citations and native:
                    block["citations"] = part.citations
                content.append(block)
        elif isinstance(part, RefusalPart):
            refused = True
            if part.text:
                content.append({"type": "text", "text": part.text})
        elif isinstance(part, ThinkingPart):
            if part.redacted:
                content.append(
                    {
                        "type": "redacted_thinking",
                        "data": _client_token(part.signature or "", part.origin, ctx),
                    }
                )
            else:
                signature = _client_token(part.signature or "", part.origin, ctx)
                content.append({"type": "thinking", "thinking": part.text, "signature": signature})
        elif isinstance(part, ToolCallPart):
            tool_input = (
                {"input": part.arguments} if part.kind == "custom" else arguments_object(part.arguments)
            )
            content.append({"type": "tool_use", "id": part.id, "name": part.name, "input": tool_input})
        elif isinstance(part, OpaquePart) and part.format == FORMAT_ID:
            content.append(part.data)
    reason = effective_stop_reason(resp.stop_reason, has_tool_calls(resp.parts))
    if refused and reason == "stop":
        reason = "content_filter"
    return {
        "id": _message_id(resp.id),
        "type": "message",
        "role": "assistant",
        "model": resp.model or ctx.client_model,
        "content": content,
        "stop_reason": stop_to_wire(reason),
        "stop_sequence": resp.stop_sequence if reason == "stop_sequence" else None,
        "usage": usage_to_wire(resp.usage),
    }


# ==========================================================================================================
# stream parser (Anthropic upstream SSE -> IR events)
# ==========================================================================================================

_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _error_from_body(data: Any, status: int | None, retry_after: float | None = None) -> GatewayError:
    err = _obj(data.get("error")) if isinstance(data, dict) else None
    err_type = str(err["type"]) if err is not None and isinstance(err.get("type"), str) else None
    message = str(err["message"]) if err is not None and isinstance(err.get("message"), str) else ""
    if status is None or status < 400:
        status = _ERROR_TYPE_STATUS.get(err_type or "", 500)
    return error_from_status(status, message, code=err_type, retry_after=retry_after)


class _RawUsage:
    """Anthropic-side usage counters merged over message_start and message_delta (both cumulative)."""

    __slots__ = ("cache_read", "cache_write", "input", "output", "reasoning")

    def __init__(self) -> None:
        self.input = self.output = self.cache_read = self.cache_write = self.reasoning = 0

    def update(self, u: Mapping[str, Any]) -> Usage:
        if u.get("input_tokens") is not None:
            self.input = _int(u["input_tokens"])
        if u.get("output_tokens") is not None:
            self.output = _int(u["output_tokens"])
        if u.get("cache_read_input_tokens") is not None:
            self.cache_read = _int(u["cache_read_input_tokens"])
        if u.get("cache_creation_input_tokens") is not None:
            self.cache_write = _int(u["cache_creation_input_tokens"])
        details = _obj(u.get("output_tokens_details"))
        if details is not None and details.get("thinking_tokens") is not None:
            self.reasoning = _int(details["thinking_tokens"])
        return Usage(
            input_tokens=self.input + self.cache_read + self.cache_write,
            output_tokens=self.output,
            cached_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
            reasoning_tokens=self.reasoning,
        )


class StreamParser:
    """Anthropic SSE events -> IR stream events. Blocks never interleave in Anthropic streams, so the
    grammar's no-interleave rule holds as is; argument fragments are forwarded, never parsed."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._custom = _custom_tool_names(ctx)
        self._usage = _RawUsage()
        self._blocks: dict[int, str] = {}  # Anthropic block index -> what it is ("text", "tool", ...)
        self._tool_index: dict[int, int] = {}  # block index -> IR tool-call index
        self._buffers: dict[int, list[str]] = {}  # custom tool / server block argument fragments
        self._opaque: dict[int, JsonObj] = {}  # server blocks, emitted whole at their stop
        self._tools = 0

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if event.event == "ping" or not event.data:
            return []
        try:
            data = loads(event.data)
        except JSONDecodeError:
            return []  # not JSON: a proxy's keep-alive or garbage; nothing we can use
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or event.event
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_start":
            return self._start(data)
        if kind == "content_block_stop":
            return self._stop(data)
        if kind == "message_start":
            message = _obj(data.get("message")) or {}
            usage = _obj(message.get("usage"))
            return [
                StreamStart(
                    id=str(message.get("id") or new_id("msg")),
                    model=str(message.get("model") or self.ctx.upstream_model),
                    usage=self._usage.update(usage) if usage is not None else None,
                )
            ]
        if kind == "message_delta":
            out: list[StreamEvent] = []
            delta = _obj(data.get("delta")) or {}
            if delta.get("stop_reason") is not None:
                seq = delta.get("stop_sequence")
                out.append(
                    Finish(stop_from_wire(delta["stop_reason"]), seq if isinstance(seq, str) else None)
                )
            usage = _obj(data.get("usage"))
            if usage is not None:
                out.append(UsageUpdate(self._usage.update(usage)))
            return out
        if kind == "error":
            raise _error_from_body(data, None)
        return []  # message_stop, ping, and event types newer than this module

    def _start(self, data: JsonObj) -> list[StreamEvent]:
        index = _int(data.get("index"))
        block = _obj(data.get("content_block")) or {}
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = "text"
            text = block.get("text")
            return [TextDelta(text)] if isinstance(text, str) and text else []
        if kind == "thinking":
            self._blocks[index] = "thinking"
            out: list[StreamEvent] = []
            if isinstance(block.get("thinking"), str) and block["thinking"]:
                out.append(ThinkingDelta(block["thinking"]))
            if isinstance(block.get("signature"), str) and block["signature"]:
                out.append(ThinkingSignature(block["signature"], self.ctx.provider))
            return out
        if kind == "redacted_thinking":
            self._blocks[index] = "redacted"
            return [RedactedThinking(_str(block.get("data")) or "", self.ctx.provider)]
        if kind == "tool_use":
            name = self.ctx.client_tool_name(str(block.get("name") or ""))
            call_id = self.ctx.client_call_id(str(block.get("id") or ""))
            tool = self._tools
            self._tools += 1
            self._tool_index[index] = tool
            custom = name in self._custom
            self._blocks[index] = "custom" if custom else "tool"
            out = [ToolCallStart(tool, call_id, name, "custom" if custom else "function")]
            tool_input = block.get("input")
            if tool_input:  # some compatible servers send the whole input at the start
                if custom:
                    self._buffers[index] = [dumps_str(tool_input)]
                else:
                    out.append(ToolCallDelta(tool, dumps_str(tool_input)))
            elif custom:
                self._buffers[index] = []
            return out
        self._blocks[index] = "opaque"
        self._opaque[index] = dict(block)
        self._buffers[index] = []
        return []

    def _delta(self, data: JsonObj) -> list[StreamEvent]:
        index = _int(data.get("index"))
        delta = _obj(data.get("delta")) or {}
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return [TextDelta(text)] if isinstance(text, str) and text else []
        if kind == "input_json_delta":
            fragment = delta.get("partial_json")
            if not isinstance(fragment, str) or not fragment:
                return []
            buffer = self._buffers.get(index)
            if buffer is not None:
                buffer.append(fragment)
                return []
            tool = self._tool_index.get(index)
            return [ToolCallDelta(tool, fragment)] if tool is not None else []
        if kind == "thinking_delta":
            text = delta.get("thinking")
            return [ThinkingDelta(text)] if isinstance(text, str) and text else []
        if kind == "signature_delta":
            signature = delta.get("signature")
            if isinstance(signature, str) and signature:
                return [ThinkingSignature(signature, self.ctx.provider)]
        return []  # citations_delta (the IR has no streamed citations) and newer delta types

    def _stop(self, data: JsonObj) -> list[StreamEvent]:
        index = _int(data.get("index"))
        kind = self._blocks.pop(index, None)
        if kind == "tool":
            return [ToolCallEnd(self._tool_index[index])]
        if kind == "custom":
            tool = self._tool_index[index]
            raw = "".join(self._buffers.pop(index, ()))
            try:
                tool_input = loads(raw) if raw else {}
            except JSONDecodeError:
                tool_input = raw  # truncated by max_tokens: pass what there is rather than nothing
            text = tool_input if isinstance(tool_input, str) else _custom_input(tool_input)
            return [ToolCallDelta(tool, text), ToolCallEnd(tool)] if text else [ToolCallEnd(tool)]
        if kind == "opaque":
            block = self._opaque.pop(index)
            raw = "".join(self._buffers.pop(index, ()))
            if raw:
                with contextlib.suppress(JSONDecodeError):
                    block["input"] = loads(raw)
            return [OpaqueBlock(FORMAT_ID, block)]
        return []

    def close(self) -> list[StreamEvent]:
        """Upstream ended: a tool call left open (cut stream) is closed so the grammar holds."""
        out: list[StreamEvent] = []
        for index in sorted(self._blocks):
            out.extend(self._stop({"index": index}))
        return out


# ==========================================================================================================
# stream renderer (IR events -> Anthropic SSE for the client)
# ==========================================================================================================


def _frame(kind: str, payload: JsonObj) -> bytes:
    return encode(dumps(payload), kind)


class StreamRenderer:
    """IR stream events -> Anthropic SSE. One block open at a time, indices 0..n; close() writes
    message_delta (effective stop reason, cumulative usage) and message_stop; fail() writes one
    `event: error` frame and nothing after it."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._started = False
        self._done = False
        self._index = -1  # index of the last block opened
        self._open: str | None = None  # kind of the open block: text | thinking | tool
        self._open_tool = -1  # IR index of the open tool call
        self._custom = False  # the open tool call is free-form: fragments go inside {"input": "..."}
        self._usage: Usage | None = None
        self._stop: StopReason | None = None
        self._stop_sequence: str | None = None
        self._saw_tool = False
        self._refused = False
        self._signed = False  # the open thinking block got its signature_delta
        self._foreign = ctx.upstream_format != ctx.client_format

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, TextDelta):
            if not event.text:
                return b""
            head = self._ensure("text")
            return head + self._delta({"type": "text_delta", "text": event.text})
        if isinstance(event, ToolCallDelta):
            if self._open != "tool" or event.index != self._open_tool or not event.arguments:
                return b""
            fragment = dumps_str(event.arguments)[1:-1] if self._custom else event.arguments
            return self._delta({"type": "input_json_delta", "partial_json": fragment})
        if isinstance(event, ThinkingDelta):
            if not event.text:
                return b""
            head = self._ensure("thinking")
            return head + self._delta({"type": "thinking_delta", "thinking": event.text})
        if isinstance(event, StreamStart):
            return self._message_start(event)
        if isinstance(event, ToolCallStart):
            return self._tool_start(event)
        if isinstance(event, ToolCallEnd):
            if self._open != "tool" or event.index != self._open_tool:
                return b""
            tail = self._delta({"type": "input_json_delta", "partial_json": '"}'}) if self._custom else b""
            return tail + self._close_block()
        if isinstance(event, ThinkingSignature):
            head = self._ensure("thinking")
            token = _client_token(event.signature, event.origin, self.ctx)
            self._signed = True
            return head + self._delta({"type": "signature_delta", "signature": token}) + self._close_block()
        if isinstance(event, RefusalDelta):
            self._refused = True
            if not event.text:
                return b""
            return self._ensure("text") + self._delta({"type": "text_delta", "text": event.text})
        if isinstance(event, RedactedThinking):
            data = _client_token(event.data, event.origin, self.ctx)
            return self._whole_block({"type": "redacted_thinking", "data": data})
        if isinstance(event, OpaqueBlock):
            return self._whole_block(event.data) if event.format == FORMAT_ID else b""
        if isinstance(event, UsageUpdate):
            self._usage = merge_usage(self._usage, event.usage)
            return b""
        if isinstance(event, Finish):
            self._stop, self._stop_sequence = event.stop_reason, event.stop_sequence
            return b""
        return b""

    def close(self) -> bytes:
        if self._done:
            return b""
        out = self._message_start(None) if not self._started else b""
        out += self._close_block()
        self._done = True
        reason = effective_stop_reason(self._stop or "stop", self._saw_tool)
        if self._refused and reason == "stop":
            reason = "content_filter"
        usage = usage_to_wire(self._usage)
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_to_wire(reason),
                "stop_sequence": self._stop_sequence if reason == "stop_sequence" else None,
            },
            "usage": usage,
        }
        return out + _frame("message_delta", delta) + _frame("message_stop", {"type": "message_stop"})

    def fail(self, error: GatewayError) -> bytes:
        if self._done:
            return b""
        self._done = True
        err_type, _status = _error_type(error)
        payload = {"type": "error", "error": {"type": err_type, "message": _client_message(error)}}
        return _frame("error", payload)

    # -- frames ----------------------------------------------------------------------------------------

    def _message_start(self, event: StreamStart | None) -> bytes:
        if self._started:
            return b""
        self._started = True
        if event is not None and event.usage is not None:
            self._usage = merge_usage(self._usage, event.usage)
        upstream_id = event.id if event is not None else ""
        model = (event.model if event is not None else "") or self.ctx.client_model
        message: JsonObj = {
            "id": _message_id(upstream_id),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_wire(self._usage),
        }
        return _frame("message_start", {"type": "message_start", "message": message})

    def _ensure(self, kind: str) -> bytes:
        """Open a block of `kind` unless one is open; closes a block of another kind first."""
        if self._open == kind:
            return b""
        out = (b"" if self._started else self._message_start(None)) + self._close_block()
        block: JsonObj = (
            {"type": "text", "text": ""}
            if kind == "text"
            else {"type": "thinking", "thinking": "", "signature": ""}
        )
        return out + self._open_block(kind, block)

    def _open_block(self, kind: str, block: JsonObj) -> bytes:
        self._index += 1
        self._open = kind
        self._signed = False
        return _frame(
            "content_block_start",
            {"type": "content_block_start", "index": self._index, "content_block": block},
        )

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        out = b""
        if self._open == "thinking" and not self._signed and self._foreign:
            out = self._delta({"type": "signature_delta", "signature": tag_signature("", self.ctx.provider)})
        self._open = None
        return out + _frame("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _delta(self, delta: JsonObj) -> bytes:
        return _frame(
            "content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}
        )

    def _tool_start(self, event: ToolCallStart) -> bytes:
        out = (b"" if self._started else self._message_start(None)) + self._close_block()
        self._saw_tool = True
        self._open_tool = event.index
        self._custom = event.kind == "custom"
        block = {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
        out += self._open_block("tool", block)
        if self._custom:
            out += self._delta({"type": "input_json_delta", "partial_json": '{"input": "'})
        return out

    def _whole_block(self, block: JsonObj) -> bytes:
        out = (b"" if self._started else self._message_start(None)) + self._close_block()
        out += self._open_block("whole", block)
        return out + self._close_block()


# ==========================================================================================================
# usage tap (passthrough: usage read off the stream without re-encoding)
# ==========================================================================================================


class UsageTap:
    """Reads message_start and message_delta only; every other event costs one string comparison."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self._raw = _RawUsage()

    def feed(self, event: SSEEvent) -> None:
        name = event.event
        if name is None:
            if b'"usage"' not in event.data:
                return
        elif name != "message_start" and name != "message_delta":
            return
        try:
            data = loads(event.data)
        except JSONDecodeError:
            return
        if not isinstance(data, dict):
            return
        holder = _obj(data.get("message")) if data.get("type") == "message_start" else data
        usage = _obj(holder.get("usage")) if holder is not None else None
        if usage is not None:
            self.usage = self._raw.update(usage)


# ==========================================================================================================
# errors
# ==========================================================================================================

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    504: "timeout_error",
}
OVERLOADED_STATUS = 529  # Anthropic's own status for overload; its clients know it, 503 means nothing


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """An Anthropic error answer -> the gateway error; retry hints from retry-after and
    anthropic-ratelimit-* headers."""
    retry_after = retry_after_from_headers({k.lower(): v for k, v in headers.items()})
    try:
        data = loads(body) if body else None
    except JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        text = body.decode("utf-8", "replace").strip() if body else ""
        return error_from_status(status, text, retry_after=retry_after)
    return _error_from_body(data, status, retry_after)


def _error_type(error: GatewayError) -> tuple[str, int]:
    """(Anthropic error type, HTTP status) for a gateway error."""
    status = error.status
    if status == 503 or status == OVERLOADED_STATUS:
        return "overloaded_error", OVERLOADED_STATUS
    err_type = _TYPE_BY_STATUS.get(status)
    if err_type is None:
        err_type = "api_error" if status >= 500 else "invalid_request_error"
    return err_type, status


def _client_message(error: GatewayError) -> str:
    message = error.message
    # Claude Code recognises a context overflow by Anthropic's wording: keep it whoever said it.
    if isinstance(error, ContextLengthError) and "prompt is too long" not in message.lower():
        message = f"prompt is too long: {message}"
    return message


def render_error(error: GatewayError) -> tuple[int, dict[str, str], bytes]:
    err_type, status = _error_type(error)
    body = {"type": "error", "error": {"type": err_type, "message": _client_message(error)}}
    headers = {"content-type": "application/json"}
    headers.update(format_retry_after(error.retry_after))
    return status, headers, dumps(body)


# ==========================================================================================================
# paths and passthrough
# ==========================================================================================================


def request_path(model: str, stream: bool) -> str:
    return "/messages"


COUNT_TOKENS_PATH = "/messages/count_tokens"


def prepare_passthrough(body: JsonObj) -> JsonObj:
    return body

"""Google Gemini generateContent / streamGenerateContent <-> IR.

    POST /v1beta/models/{model}:generateContent
    POST /v1beta/models/{model}:streamGenerateContent?alt=sse   (without alt=sse: one JSON array)
    POST /v1beta/models/{model}:countTokens

Sections: helpers · request parse · request render · response · stream parse · stream render · usage ·
errors · misc.

Invariants and decisions:

* Requests are proto-JSON: every field is read in camelCase or snake_case (`inlineData`/`inline_data`);
  everything we write is camelCase.
* The model lives in the URL: parse_request returns `model=""`; the caller fills it in.
* Gemini calls often have no id. parse_request synthesizes a deterministic `call_<24 hex>` from the call's
  position (the same history gives the same ids on every turn) and pairs each functionResponse with its
  call by id, else by name and order within the turn; responses from the upstream get a fresh
  `call_<hex>` per call.
* Thought signatures follow the IR origin rules. Gemini CLI's `skip_thought_signature_validator` means
  "no signature". Toward Gemini, a model turn whose functionCalls carry no valid signature gets that
  sentinel on its FIRST functionCall only (what Gemini validates); thinking of other origins is dropped.
* Thought signatures minted elsewhere reach Gemini clients tagged (ir.tag_signature) and base64-encoded,
  since thoughtSignature is `bytes` to the SDKs; parse_request recognises and untags both forms.
  Foreign thinking never rides a `thought: true` part (Gemini CLI drops those): its signature goes on the
  next functionCall or non-thought text part, and the token carries the thinking text too, so the next
  request rebuilds the whole block just before that part ("Foreign thinking toward a Gemini client").
* render_request drops a trailing model turn: Gemini cannot continue an assistant prefill (formats.md
  case 7) and a trailing turn with unanswered functionCalls is invalid too. The content after a model
  turn answers each of its functionCalls exactly once, in call order: a missing answer is synthesized
  as `{error: UNANSWERED_CALL}`, a response to no call becomes user text. No contents at all (a
  system-only request) -> one MINIMAL_USER_TEXT user turn.
* http(s) media must have been inlined by the pipeline before rendering (it fetches with an SSRF guard);
  a URL still left that is not gs://, a Files-API URI or YouTube raises InvalidRequestError.
* finishReason: STOP -> stop; MAX_TOKENS -> length; SAFETY, RECITATION, LANGUAGE, BLOCKLIST,
  PROHIBITED_CONTENT, SPII, MODEL_ARMOR, OTHER, NO_IMAGE and IMAGE_* -> content_filter (OTHER is what
  Gemini reports for unexplained blocks); MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL,
  TOO_MANY_TOOL_CALLS, MALFORMED_RESPONSE, MISSING_THOUGHT_SIGNATURE -> error (the model's attempt
  failed; the caller may retry); unknown values -> stop. A non-success finish with no content gets an
  explanatory text so a client never sees an empty success. functionCalls present -> tool_calls.
* Errors: a 429 whose RetryInfo resets within RATE_LIMIT_RETRY_MAX_S is a rate limit even when Gemini
  words it as "exceeded your current quota"; "API key not valid" (a 400) is a credential failure.
* Only the first candidate is translated (candidateCount > 1 is sent upstream but extra candidates are
  not carried through the IR).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import re
from collections.abc import Mapping
from typing import Any

from omniroute import (
    GatewayError,
    InvalidRequestError,
    JSONDecodeError,
    JsonObj,
    QuotaExhaustedError,
    RateLimitError,
    UpstreamAuthError,
    UpstreamError,
    dumps,
    dumps_str,
    loads,
)
from omniroute_providers.formats.common import (
    error_from_status,
    format_retry_after,
    google_retry_delay,
    refuse_previous_response_id,
    retry_after_from_headers,
)
from omniroute_providers.formats.names import disambiguate, sanitize_tool_name
from omniroute_providers.formats.schema import (
    clean_gemini_json_schema,
    from_gemini_schema,
    to_gemini_schema,
)
from omniroute_providers.formats.sse import SSEEvent
from omniroute_providers.ir import (
    SIGNATURE_TAG,
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
    effective_stop_reason,
    merge_usage,
    new_id,
    parse_data_url,
    tag_signature,
    untag_signature,
)

FORMAT_ID = "gemini"
STREAM_CONTENT_TYPE = "text/event-stream"
JSON_ARRAY_CONTENT_TYPE = "application/json"  # streamGenerateContent without alt=sse

# Gemini CLI, CLIProxyAPI and others put this on replayed functionCalls whose real signature is unknown;
# Gemini accepts it in place of a signature.
SKIP_SIGNATURE = "skip_thought_signature_validator"
MAX_STOP_SEQUENCES = 5  # Gemini rejects more
# effort -> thinkingBudget for Gemini 2.5 (CLIProxyAPI's table, formats.md §2.8)
EFFORT_BUDGET = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768, "max": 32768}
# effort -> thinkingLevel for Gemini 3; MINIMAL/XHIGH exist only on some models, so they are used only when
# Gemini client asked for it itself.
EFFORT_LEVEL = {
    "minimal": "LOW",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
    "max": "HIGH",
}
LOWEST_LEVEL = "LOW"
GEMINI_LEVELS = frozenset({"MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH"})

_FINISH: dict[str, StopReason] = {
    "STOP": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(
        (
            "SAFETY",
            "RECITATION",
            "LANGUAGE",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "OTHER",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_RECITATION",
            "IMAGE_OTHER",
            "NO_IMAGE",
            "MODEL_ARMOR",
        ),
        "content_filter",
    ),
    **dict.fromkeys(
        (
            "MALFORMED_FUNCTION_CALL",
            "UNEXPECTED_TOOL_CALL",
            "TOO_MANY_TOOL_CALLS",
            "MALFORMED_RESPONSE",
            "MISSING_THOUGHT_SIGNATURE",
        ),
        "error",
    ),
}
_FINISH_OUT: dict[str, str] = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "stop_sequence": "STOP",
    "pause": "STOP",
    "length": "MAX_TOKENS",
    "context_window": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "OTHER",
}
# HTTP status -> google.rpc status string
_RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "PERMISSION_DENIED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    431: "INVALID_ARGUMENT",
    499: "CANCELLED",
    500: "INTERNAL",
    502: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
RATE_LIMIT_RETRY_MAX_S = 120.0  # a Gemini "quota" 429 that resets within this is a per-minute rate limit

_AUDIO_FORMATS = {"mpeg": "mp3", "mp3": "mp3", "x-wav": "wav", "wave": "wav", "wav": "wav", "pcm": "pcm16"}
_AUDIO_MIME = {"pcm16": "audio/pcm", "mp3": "audio/mp3", "wav": "audio/wav"}
# Gemini rejects a request without contents; a system-only request gets this minimal user turn.
MINIMAL_USER_TEXT = "Continue."
_IMAGE_MAGIC = (
    ("iVBORw0KGgo", "image/png"),
    ("/9j/", "image/jpeg"),
    ("R0lGOD", "image/gif"),
    ("UklGR", "image/webp"),
)


# ==========================================================================================================
# helpers
# ==========================================================================================================

_SNAKE_CACHE: dict[str, str] = {}
_INT_TEXT = re.compile(r"-?[0-9]{1,19}")  # an int64 written as a JSON string


def _snake(name: str) -> str:
    s = _SNAKE_CACHE.get(name)
    if s is None:
        s = _SNAKE_CACHE[name] = re.sub(r"([A-Z])", r"_\1", name).lower()
    return s


def _f(obj: JsonObj, name: str) -> Any:
    """A proto-JSON field by its camelCase name, also found under its snake_case spelling."""
    value = obj.get(name)
    if value is None:
        value = obj.get(_snake(name))
    return value


def _has(obj: JsonObj, name: str) -> bool:
    return name in obj or _snake(name) in obj


def _obj(value: Any, what: str) -> JsonObj:
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{what} must be an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequestError(f"{what} must be a list")
    return value


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{what} must be a number")
    return value


def _int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)  # proto-JSON writes int64 as strings
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{what} must be an integer")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be a string")
    return value


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode("utf-8", "surrogatepass")).hexdigest()


def _sniff_image(data: str) -> str:
    for prefix, mime in _IMAGE_MAGIC:
        if data.startswith(prefix):
            return mime
    return "image/png"


_REDACTED = "redacted:"  # inside a tagged token: the block was redacted thinking (its data is the token)
_TAG_B64_PREFIX = "b21yMS"  # base64 of "omr1" (SIGNATURE_TAG): how a tagged token looks to Gemini clients
# A tagged token whose raw part starts with this is a carrier: a compact JSON list of the thinking blocks
# it carries. No provider token starts so (Anthropic and OpenAI tokens are base64), so an older plain
# tagged token still parses as one signature.
_CARRIED_PREFIX = '[{"s":'


def _native_signature(raw: Any) -> tuple[str | None, str | None]:
    """A client-sent thoughtSignature -> (origin, token); the bypass sentinel means no signature."""
    if not isinstance(raw, str) or not raw or raw == SKIP_SIGNATURE:
        return None, None
    if raw.startswith(_TAG_B64_PREFIX):
        try:
            decoded = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            decoded = ""
        if decoded.startswith(SIGNATURE_TAG + "."):
            return untag_signature(decoded)
    return untag_signature(raw)


def _client_thinking(text: str, sig: str | None, origin: str | None) -> ThinkingPart:
    """A client-sent thought -> ThinkingPart; a foreign token marked redacted is redacted thinking."""
    if origin is not None and sig is not None and sig.startswith(_REDACTED):
        return ThinkingPart(text=text, signature=sig[len(_REDACTED) :], redacted=True, origin=origin)
    return ThinkingPart(text=text, signature=sig, origin=origin)


def _client_signature(token: str, origin: str | None, ctx: Context, *, redacted: bool = False) -> str:
    """A signature as a Gemini client sees it: raw between like formats, else tagged with its origin.

    thoughtSignature is `bytes` on the wire (base64), and SDKs validate it as such, so the tagged form
    is base64-encoded too; _native_signature recognises it when the client sends it back."""
    if ctx.upstream_format == ctx.client_format:
        return token
    return _b64_tagged(_REDACTED + token if redacted else token, origin or ctx.provider)


def _b64_tagged(token: str, origin: str) -> str:
    tagged = tag_signature(token, origin)
    return base64.b64encode(tagged.encode("utf-8", "surrogatepass")).decode("ascii")


# Foreign thinking toward a Gemini client.
#
# Gemini CLI keeps no `thought: true` part in its history, and real Gemini never needs it to: it puts
# thoughtSignature on the first functionCall of a turn, or on a non-thought text part. A signature minted
# elsewhere (an Anthropic thinking signature, an OpenAI encrypted_content) therefore rides the next
# non-thought part we emit, a functionCall or a text part, never a thought part. Anthropic validates the
# signature together with its thinking block, whose text the client has dropped, so the token carries the
# blocks whole:
#
#     thoughtSignature = base64( "omr1." origin "." JSON )
#     JSON = [{"s": signature, "t": thinking text (omitted when ""), "r": 1 (only for redacted)}, ...]
#
# one entry per signed block held since the previous carrier, in order. The thought text is still shown as
# `thought: true` parts (without a signature). parse_request turns a carrier back into ThinkingParts placed
# just before the part that carried them. Between Gemini client and Gemini upstream none of this applies:
# signatures stay byte-identical, on the parts they came on.


def _carried(blocks: list[ThinkingPart], ctx: Context) -> str:
    """Signed thinking blocks (one origin) -> the thoughtSignature of the part that carries them."""
    entries: list[JsonObj] = []
    for b in blocks:
        entry: JsonObj = {"s": _utf8(b.signature or "")}
        if b.text and not b.redacted:
            entry["t"] = _utf8(b.text)
        if b.redacted:
            entry["r"] = 1
        entries.append(entry)
    return _b64_tagged(dumps_str(entries), blocks[0].origin or ctx.provider)


def _utf8(text: str) -> str:
    # a lone surrogate (legal as a JSON escape, not as UTF-8) would make the token unencodable
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def _uncarry(origin: str | None, token: str | None) -> list[ThinkingPart] | None:
    """A carrier token's thinking blocks, or None when the token is a plain signature."""
    if origin is None or token is None or not token.startswith(_CARRIED_PREFIX):
        return None
    try:
        entries = loads(token)
    except JSONDecodeError:
        return None
    if not isinstance(entries, list):
        return None
    out: list[ThinkingPart] = []
    for e in entries:
        sig, text = (e.get("s"), e.get("t", "")) if isinstance(e, dict) else (None, None)
        if not isinstance(sig, str) or not isinstance(text, str):
            return None
        redacted = e.get("r") == 1
        out.append(
            ThinkingPart(text="" if redacted else text, signature=sig, redacted=redacted, origin=origin)
        )
    return out


class _HeldThinking:
    """Signed foreign thinking waiting for the next non-thought part to ride on (see above)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.blocks: list[ThinkingPart] = []

    def hold(self, block: ThinkingPart) -> JsonObj | None:
        """Hold `block`; returns a part carrying the blocks already held when their origin differs (one
        token has one origin tag)."""
        origin = self.ctx.provider
        flushed = None
        if self.blocks and (self.blocks[0].origin or origin) != (block.origin or origin):
            flushed = self.rest()
        self.blocks.append(block)
        return flushed

    def attach(self, part: JsonObj) -> None:
        """Put what is held on `part` when it can carry it: a functionCall or a non-thought text part
        without a signature of its own."""
        if not self.blocks or "thoughtSignature" in part or part.get("thought"):
            return
        if "functionCall" in part or "text" in part:
            part["thoughtSignature"] = _carried(self.blocks, self.ctx)
            self.blocks = []

    def rest(self) -> JsonObj | None:
        """What is still held, on an empty non-thought text part: nothing followed the thinking. Real
        Gemini does the same (a signature on an otherwise empty part), and Gemini CLI keeps such a part
        in its history because thoughtSignature makes it non-empty."""
        if not self.blocks:
            return None
        part: JsonObj = {"text": ""}
        self.attach(part)
        return part


# ==========================================================================================================
# request: wire -> IR
# ==========================================================================================================

_KNOWN_TOP = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model"})
_GEN_KNOWN = frozenset(
    {
        "temperature",
        "topP",
        "topK",
        "candidateCount",
        "maxOutputTokens",
        "stopSequences",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "thinkingConfig",
    }
)


def parse_request(body: JsonObj) -> ChatRequest:
    """A generateContent body -> ChatRequest (model "" : the model is in the URL)."""
    body = _obj(body, "request body")
    req = ChatRequest(model="", source_format=FORMAT_ID)
    system = _f(body, "systemInstruction")
    if system is not None:
        req.system = _parse_system(system)
    req.messages = _parse_contents(_list(_f(body, "contents"), "contents"))
    tools = _list(_f(body, "tools"), "tools")
    req.tools = [spec for i, t in enumerate(tools) for spec in _parse_tool(_obj(t, f"tools[{i}]"))]
    tool_config = _f(body, "toolConfig")
    if tool_config is not None:
        _parse_tool_config(_obj(tool_config, "toolConfig"), req)
    gen = _f(body, "generationConfig")
    if gen is not None:
        _parse_generation_config(_obj(gen, "generationConfig"), req)
    for key, value in body.items():
        if key not in _KNOWN_TOP and _camel_known(key) not in _KNOWN_TOP:
            req.extras[key] = value
    return req


def _camel_known(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def parse_count_tokens_request(body: JsonObj) -> ChatRequest:
    """countTokens: `{contents}` or `{generateContentRequest: {model, contents, ...}}`."""
    body = _obj(body, "request body")
    inner = _f(body, "generateContentRequest")
    return parse_request(_obj(inner, "generateContentRequest") if inner is not None else body)


def _parse_system(value: Any) -> list[TextPart]:
    if isinstance(value, str):  # lenient: some SDKs send a bare string
        return [TextPart(value)] if value else []
    content = _obj(value, "systemInstruction")
    parts = _list(_f(content, "parts"), "systemInstruction.parts")
    out = []
    for i, p in enumerate(parts):
        text = _f(_obj(p, f"systemInstruction.parts[{i}]"), "text")
        if text:
            out.append(TextPart(_text(text, f"systemInstruction.parts[{i}].text")))
    return out


class _Turns:
    """Builds IR messages from contents, pairing functionResponses with the calls of the last model turn."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.pending: list[ToolCallPart] = []  # calls of the latest model turn still waiting for a result
        self._open: Message | None = None  # the message the current content writes into

    def add(self, role: str, parts: list[Part]) -> None:
        """Append parts, keeping tool results in "tool" messages and everything else in `role`."""
        for part in parts:
            want = "tool" if isinstance(part, ToolResultPart) else role
            last = self.messages[-1] if self.messages else None
            if last is None or last.role != want or (want != "tool" and last is not self._open):
                last = Message(role=want)  # type: ignore[arg-type]  # want is a Role
                self.messages.append(last)
                self._open = last
            last.parts.append(part)

    def start_content(self) -> None:
        self._open = None  # a new content starts a new message, even with the same role

    def pair(self, call_id: str | None, name: str, ci: int, pi: int) -> str:
        if call_id:
            for i, call in enumerate(self.pending):
                if call.id == call_id:
                    del self.pending[i]
                    return call_id
        for i, call in enumerate(self.pending):
            if call.name == name:
                del self.pending[i]
                return call_id or call.id
        return call_id or f"call_{_digest('response', ci, pi, name)[:24]}"


def _parse_contents(contents: list[Any]) -> list[Message]:
    turns = _Turns()
    for ci, raw in enumerate(contents):
        content = _obj(raw, f"contents[{ci}]")
        role = _f(content, "role") or "user"
        if role == "model":
            ir_role = "assistant"
        elif role in ("user", "function", "tool"):
            ir_role = "user"
        elif role == "system":
            ir_role = "system"
        else:
            raise InvalidRequestError(f"contents[{ci}].role must be 'user' or 'model', not {role!r}")
        parts = _list(_f(content, "parts"), f"contents[{ci}].parts")
        ir_parts = _parse_parts(parts, ci, turns)
        if ir_role == "assistant":
            turns.pending = [p for p in ir_parts if isinstance(p, ToolCallPart)]
        turns.start_content()
        turns.add(ir_role, ir_parts)
    return turns.messages


def _parse_parts(parts: list[Any], ci: int, turns: _Turns) -> list[Part]:
    out: list[Part] = []
    carried_any = False
    for pi, raw in enumerate(parts):
        where = f"contents[{ci}].parts[{pi}]"
        part = _obj(raw, where)
        origin, sig = _native_signature(_f(part, "thoughtSignature"))
        carried = _uncarry(origin, sig)
        if carried is not None:  # foreign thinking the client could not keep: it came before this part
            out.extend(carried)
            carried_any = True
            origin = sig = None
        text = _f(part, "text")
        if text is not None:
            text = _text(text, f"{where}.text")
            if _f(part, "thought") is True:
                if text or sig:
                    out.append(_client_thinking(text, sig, origin))
                continue
            if text:
                out.append(TextPart(text))
            if sig:
                out.append(_client_thinking("", sig, origin))
            continue
        fc = _f(part, "functionCall")
        if fc is not None:
            out.append(_parse_function_call(_obj(fc, f"{where}.functionCall"), sig, origin, ci, pi, where))
            continue
        fr = _f(part, "functionResponse")
        if fr is not None:
            out.append(_parse_function_response(_obj(fr, f"{where}.functionResponse"), ci, pi, turns, where))
            continue
        media = _parse_media(part, where)
        if media is not None:
            out.append(media)
        elif not _has_data(part):
            if sig:  # a signature alone (Gemini puts one on an otherwise empty part)
                out.append(_client_thinking("", sig, origin))
        else:
            out.append(OpaquePart(FORMAT_ID, part))  # executableCode, codeExecutionResult, toolCall, ...
    if carried_any:
        # unsigned thought text beside a carrier is the display copy of text the carrier holds (a client
        # that keeps thought parts, like google-genai, sends both): one block per thought, not two
        out = [
            p for p in out if not (isinstance(p, ThinkingPart) and p.signature is None and p.origin is None)
        ]
    return out


def _has_data(part: JsonObj) -> bool:
    return any(k not in ("thoughtSignature", "thought_signature", "thought") for k in part)


def _parse_function_call(
    fc: JsonObj, sig: str | None, origin: str | None, ci: int, pi: int, where: str
) -> ToolCallPart:
    name = _text(_f(fc, "name"), f"{where}.functionCall.name")
    args = _f(fc, "args")
    if args is not None and not isinstance(args, dict):
        raise InvalidRequestError(f"{where}.functionCall.args must be an object")
    call_id = _f(fc, "id")
    if not isinstance(call_id, str) or not call_id:
        call_id = f"call_{_digest('call', ci, pi, name)[:24]}"
    return ToolCallPart(
        id=call_id, name=name, arguments=dumps_str(args or {}), signature=sig, origin=origin if sig else None
    )


def _parse_function_response(fr: JsonObj, ci: int, pi: int, turns: _Turns, where: str) -> ToolResultPart:
    name = _text(_f(fr, "name") or "", f"{where}.functionResponse.name")
    raw_id = _f(fr, "id")
    call_id = turns.pair(raw_id if isinstance(raw_id, str) else None, name, ci, pi)
    response = _f(fr, "response")
    content: list[TextPart | ImagePart | FilePart] = []
    is_error = False
    if isinstance(response, dict):
        if "error" in response and "output" not in response:
            is_error = True
            text = _result_text(response["error"])
        elif "output" in response:
            text = _result_text(response["output"])
        else:
            text = dumps_str(response)
    else:
        text = _result_text(response) if response is not None else ""
    if text:
        content.append(TextPart(text))
    for j, raw in enumerate(_list(_f(fr, "parts"), f"{where}.functionResponse.parts")):
        media = _parse_media(_obj(raw, f"{where}.functionResponse.parts[{j}]"), where)
        if isinstance(media, (ImagePart, FilePart)):
            content.append(media)
    return ToolResultPart(call_id=call_id, content=content, is_error=is_error, name=name or None)


def _result_text(value: Any) -> str:
    return value if isinstance(value, str) else dumps_str(value)


def _parse_media(part: JsonObj, where: str) -> ImagePart | FilePart | AudioPart | None:
    inline = _f(part, "inlineData")
    if inline is not None:
        inline = _obj(inline, f"{where}.inlineData")
        mime = _f(inline, "mimeType")
        data = _text(_f(inline, "data") or "", f"{where}.inlineData.data")
        mime = mime if isinstance(mime, str) and mime else None
        if mime is None or mime.startswith("image/"):
            return ImagePart(media_type=mime or _sniff_image(data), data=data)
        if mime.startswith("audio/"):
            sub = mime.split("/", 1)[1].split(";", 1)[0]
            return AudioPart(data=data, format=_AUDIO_FORMATS.get(sub, sub))
        return FilePart(media_type=mime, data=data)
    file_data = _f(part, "fileData")
    if file_data is not None:
        file_data = _obj(file_data, f"{where}.fileData")
        uri = _text(_f(file_data, "fileUri") or "", f"{where}.fileData.fileUri")
        mime = _f(file_data, "mimeType")
        mime = mime if isinstance(mime, str) and mime else None
        if mime is not None and mime.startswith("image/"):
            return ImagePart(media_type=mime, url=uri)
        return FilePart(media_type=mime, url=uri)
    return None


def _parse_tool(tool: JsonObj) -> list[ToolSpec]:
    specs: list[ToolSpec] = []
    for key, value in tool.items():
        if key in ("functionDeclarations", "function_declarations"):
            for i, decl in enumerate(_list(value, "tools.functionDeclarations")):
                specs.append(_parse_declaration(_obj(decl, f"tools.functionDeclarations[{i}]")))
        else:  # googleSearch, codeExecution, urlContext, googleMaps, ...: forwarded only to Gemini
            specs.append(
                ToolSpec(name=_camel_known(key), kind="builtin", raw={key: value}, raw_format=FORMAT_ID)
            )
    return specs


def _parse_declaration(decl: JsonObj) -> ToolSpec:
    name = _text(_f(decl, "name"), "functionDeclarations.name")
    description = _f(decl, "description")
    schema = _f(decl, "parametersJsonSchema")
    if schema is None:
        schema = _f(decl, "parameters")
    if schema is not None and not isinstance(schema, dict):
        raise InvalidRequestError(f"functionDeclarations[{name}].parameters must be an object")
    return ToolSpec(
        name=name,
        description=description if isinstance(description, str) else None,
        parameters=from_gemini_schema(schema) if schema is not None else None,
    )


def _parse_tool_config(config: JsonObj, req: ChatRequest) -> None:
    fcc = _f(config, "functionCallingConfig")
    rest = {k: v for k, v in config.items() if k not in ("functionCallingConfig", "function_calling_config")}
    if rest:
        req.extras["toolConfig"] = rest
    if fcc is None:
        return
    fcc = _obj(fcc, "toolConfig.functionCallingConfig")
    mode = str(_f(fcc, "mode") or "AUTO").upper()
    allowed = [str(n) for n in _list(_f(fcc, "allowedFunctionNames"), "allowedFunctionNames")] or None
    if mode == "NONE":
        req.tool_choice = ToolChoice(mode="none")
    elif mode == "ANY" and allowed is not None and len(allowed) == 1:
        req.tool_choice = ToolChoice(mode="tool", name=allowed[0])
    elif mode == "ANY":
        req.tool_choice = ToolChoice(mode="required", allowed=allowed)
    else:  # AUTO, VALIDATED, MODE_UNSPECIFIED and anything newer: let the model decide
        req.tool_choice = ToolChoice(mode="auto", allowed=allowed)


def _parse_generation_config(gen: JsonObj, req: ChatRequest) -> None:
    req.temperature = _number(_f(gen, "temperature"), "generationConfig.temperature")
    req.top_p = _number(_f(gen, "topP"), "generationConfig.topP")
    req.top_k = _int(_f(gen, "topK"), "generationConfig.topK")
    req.n = _int(_f(gen, "candidateCount"), "generationConfig.candidateCount")
    req.max_tokens = _int(_f(gen, "maxOutputTokens"), "generationConfig.maxOutputTokens")
    req.seed = _int(_f(gen, "seed"), "generationConfig.seed")
    req.presence_penalty = _number(_f(gen, "presencePenalty"), "generationConfig.presencePenalty")
    req.frequency_penalty = _number(_f(gen, "frequencyPenalty"), "generationConfig.frequencyPenalty")
    stops = _list(_f(gen, "stopSequences"), "generationConfig.stopSequences")
    req.stop = [_text(s, "generationConfig.stopSequences[]") for s in stops]
    rest = {k: v for k, v in gen.items() if _camel_known(k) not in _GEN_KNOWN}
    mime = _f(gen, "responseMimeType")
    schema = _f(gen, "responseJsonSchema")
    if schema is None:
        schema = _f(gen, "responseSchema")
    if mime == "application/json":
        if isinstance(schema, dict):
            req.response_format = ResponseFormat(kind="json_schema", schema=from_gemini_schema(schema))
        else:
            req.response_format = ResponseFormat(kind="json_object")
    elif mime is not None and mime != "text/plain":
        rest.update({k: v for k, v in gen.items() if _camel_known(k).startswith("response")})
    thinking = _f(gen, "thinkingConfig")
    if thinking is not None:
        req.reasoning = _parse_thinking(_obj(thinking, "generationConfig.thinkingConfig"))
    if rest:
        req.extras["generationConfig"] = rest


def _parse_thinking(cfg: JsonObj) -> ReasoningConfig:
    rc = ReasoningConfig()
    include = _f(cfg, "includeThoughts")
    if isinstance(include, bool):
        rc.include_thoughts = include
    budget = _int(_f(cfg, "thinkingBudget"), "thinkingConfig.thinkingBudget")
    if budget is not None:
        rc.budget_tokens = budget
        rc.enabled = budget != 0
    level = _f(cfg, "thinkingLevel")
    if isinstance(level, str) and level.upper() not in ("", "THINKING_LEVEL_UNSPECIFIED"):
        rc.effort = level.lower()
        rc.enabled = True
    return rc


# ==========================================================================================================
# request: IR -> wire
# ==========================================================================================================


def render_request(req: ChatRequest, ctx: Context) -> JsonObj:
    """ChatRequest -> generateContent body for a Gemini upstream (the model goes in the URL)."""
    refuse_previous_response_id(req.previous_response_id)
    body: JsonObj = {}
    names = _ToolNames(ctx)
    system = [p.text for p in req.system if p.text]
    contents = _render_contents(req, ctx, names)
    if system and ctx.caps.system_as_user:
        contents.insert(0, {"role": "user", "parts": [{"text": t} for t in system]})
        contents = _merge_same_role(contents)
    elif system:
        body["systemInstruction"] = {"parts": [{"text": t} for t in system]}
    body["contents"] = contents or [{"role": "user", "parts": [{"text": MINIMAL_USER_TEXT}]}]
    tools = _render_tools(req, ctx, names)
    if tools:
        body["tools"] = tools
    if req.tool_choice is not None and (tools or req.tool_choice.mode == "none"):
        body["toolConfig"] = {"functionCallingConfig": _render_tool_choice(req.tool_choice, names)}
    gen = _render_generation_config(req, ctx)
    if gen:
        body["generationConfig"] = gen
    if req.source_format == FORMAT_ID:
        _merge_extras(body, req.extras)
    return body


def _merge_extras(body: JsonObj, extras: JsonObj) -> None:
    for key, value in extras.items():
        if key in ("generationConfig", "toolConfig") and isinstance(value, dict):
            merged = dict(value)
            merged.update(body.get(key) or {})
            body[key] = merged
        elif key not in body:
            body[key] = value


class _ToolNames:
    """Client tool name -> upstream (Gemini-legal) name, recording renames in ctx.tool_names."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.upstream: dict[str, str] = {}
        self.owner: dict[str, str] = dict(ctx.tool_names)  # upstream name -> the client name using it

    def __call__(self, name: str) -> str:
        got = self.upstream.get(name)
        if got is not None:
            return got
        max_len = self.ctx.caps.max_tool_name
        clean = sanitize_tool_name(name, max_len=max_len, allow_dots=True)
        if self.owner.get(clean, name) != name:
            # two client names collapse into one upstream name (`a b` and `a_b`): keep them apart
            clean = disambiguate(name, clean, max_len)
        if clean != name:
            self.ctx.tool_names[clean] = name
        self.owner[clean] = name
        self.upstream[name] = clean
        return clean


def _keep_signature(origin: str | None, req: ChatRequest, ctx: Context) -> bool:
    if origin is None:
        return ctx.upstream_format == req.source_format
    return origin == ctx.provider


def _render_contents(req: ChatRequest, ctx: Context, names: _ToolNames) -> list[JsonObj]:
    calls = {
        p.id: p.name
        for m in req.messages
        if m.role == "assistant"
        for p in m.parts
        if isinstance(p, ToolCallPart)
    }
    contents: list[JsonObj] = []
    for msg in req.messages:
        role = "model" if msg.role == "assistant" else "user"
        parts = _render_parts(msg.parts, req, ctx, names, calls)
        if parts:
            contents.append({"role": role, "parts": parts})
    contents = _merge_same_role(contents)
    # Gemini cannot continue an assistant prefill; a trailing model turn is dropped (case 7).
    while contents and contents[-1]["role"] == "model":
        contents.pop()
    _pair_responses(contents)
    for content in contents:
        if content["role"] == "model":
            _ensure_call_signature(content["parts"])
    return contents


UNANSWERED_CALL = "the tool call was not answered"


def _pair_responses(contents: list[JsonObj]) -> None:
    """Gemini requires the content after a model turn to answer every functionCall of it, one
    functionResponse each ("number of function response parts is equal to the number of function call
    parts"). Answers are put in call order first; a missing one is synthesized as an error, and a
    response that answers no call of the turn before (an orphan) becomes plain text."""
    previous_calls: list[JsonObj] = []
    for i, content in enumerate(contents):
        if content["role"] == "model":
            previous_calls = [
                p["functionCall"] for p in content["parts"] if isinstance(p.get("functionCall"), dict)
            ]
            if previous_calls and (i + 1 == len(contents) or contents[i + 1]["role"] != "user"):
                contents.insert(i + 1, {"role": "user", "parts": []})
            continue
        responses = [p for p in content["parts"] if isinstance(p.get("functionResponse"), dict)]
        if not responses and not previous_calls:
            continue
        others = [p for p in content["parts"] if not isinstance(p.get("functionResponse"), dict)]
        answered: list[JsonObj] = []
        for call in previous_calls:
            match = _take_response(responses, call)
            if match is None:
                fr = {"name": call["name"], "response": {"error": UNANSWERED_CALL}}
                if "id" in call:
                    fr["id"] = call["id"]
                match = {"functionResponse": fr}
            answered.append(match)
        orphans = [_orphan_text(p["functionResponse"]) for p in responses]
        content["parts"] = answered + orphans + others
        previous_calls = []


def _take_response(responses: list[JsonObj], call: JsonObj) -> JsonObj | None:
    """Remove and return the response answering `call`: same id, else (id-less) same name."""
    call_id = call.get("id")
    if call_id is not None:
        for j, part in enumerate(responses):
            if part["functionResponse"].get("id") == call_id:
                return responses.pop(j)
    for j, part in enumerate(responses):
        fr = part["functionResponse"]
        if fr.get("name") == call["name"] and (call_id is None or "id" not in fr):
            return responses.pop(j)
    return None


def _orphan_text(fr: JsonObj) -> JsonObj:
    return {"text": f"Result of tool {fr.get('name')}: {dumps_str(fr.get('response'))}"}


def _merge_same_role(contents: list[JsonObj]) -> list[JsonObj]:
    """Consecutive same-role contents become one: all calls of a turn in one model content and all their
    responses in one user content (Gemini checks that the counts match)."""
    merged: list[JsonObj] = []
    for content in contents:
        if merged and merged[-1]["role"] == content["role"]:
            merged[-1] = {"role": content["role"], "parts": merged[-1]["parts"] + content["parts"]}
        else:
            merged.append(content)
    return merged


def _ensure_call_signature(parts: list[JsonObj]) -> None:
    """Gemini 3 wants a signature on the first functionCall of a step: when no call of this turn has a
    valid one, the bypass sentinel goes on the first call only."""
    calls = [p for p in parts if "functionCall" in p]
    for later in calls[1:]:  # merged turns may carry several sentinels: only the first call keeps one
        if later.get("thoughtSignature") == SKIP_SIGNATURE:
            del later["thoughtSignature"]
    if calls and not any("thoughtSignature" in p for p in calls):
        calls[0]["thoughtSignature"] = SKIP_SIGNATURE


def _render_parts(
    parts: list[Part], req: ChatRequest, ctx: Context, names: _ToolNames, calls: dict[str, str]
) -> list[JsonObj]:
    out: list[JsonObj] = []
    pending_sig: str | None = None  # a signature-only thinking part waiting for a part to ride on
    for part in parts:
        if isinstance(part, ThinkingPart):
            if part.redacted or (not part.signature and not part.text):
                continue
            keep = _keep_signature(part.origin, req, ctx)
            if not keep:
                continue  # foreign reasoning never goes to Gemini, neither as text nor as signature
            if part.text:
                item: JsonObj = {"text": part.text, "thought": True}
                if part.signature:
                    item["thoughtSignature"] = part.signature
                out.append(item)
            elif out and "thoughtSignature" not in out[-1] and "text" in out[-1]:
                out[-1]["thoughtSignature"] = part.signature
            else:
                pending_sig = part.signature
            continue
        rendered = _render_part(part, req, ctx, names, calls)
        if rendered is None:
            continue
        if pending_sig is not None and "thoughtSignature" not in rendered:
            rendered["thoughtSignature"] = pending_sig
            pending_sig = None
        out.append(rendered)
    return out


def _render_part(
    part: Part, req: ChatRequest, ctx: Context, names: _ToolNames, calls: dict[str, str]
) -> JsonObj | None:
    if isinstance(part, TextPart):
        return {"text": part.text} if part.text else None
    if isinstance(part, RefusalPart):
        return {"text": part.text} if part.text else None
    if isinstance(part, (ImagePart, FilePart)):
        return _render_media(part)
    if isinstance(part, AudioPart):
        fmt = part.format.lower()
        return {"inlineData": {"mimeType": _AUDIO_MIME.get(fmt, f"audio/{fmt}"), "data": part.data}}
    if isinstance(part, ToolCallPart):
        return _render_call(part, req, ctx, names)
    if isinstance(part, ToolResultPart):
        return _render_result(part, names, calls)
    if isinstance(part, OpaquePart):
        return dict(part.data) if part.format == FORMAT_ID else None
    return None


def _render_call(part: ToolCallPart, req: ChatRequest, ctx: Context, names: _ToolNames) -> JsonObj:
    args = {"input": part.arguments} if part.kind == "custom" else arguments_object(part.arguments)
    fc: JsonObj = {"name": names(part.name), "args": args}
    if part.id:
        fc["id"] = part.id
    item: JsonObj = {"functionCall": fc}
    sig, origin = part.signature, part.origin
    if not sig and ctx.signatures is not None and part.id:
        cached = ctx.signatures.get(part.id)
        if cached is not None:
            sig, origin = cached
    if sig and sig != SKIP_SIGNATURE and _keep_signature(origin, req, ctx):
        item["thoughtSignature"] = sig
    return item


def _render_result(part: ToolResultPart, names: _ToolNames, calls: dict[str, str]) -> JsonObj:
    name = calls.get(part.call_id) or part.name or "unknown_function"
    text = "".join(c.text for c in part.content if isinstance(c, TextPart))
    if part.is_error:
        response: JsonObj = {"error": text or "the tool reported an error"}
    else:
        response = _result_object(text)
    fr: JsonObj = {"name": names(name), "response": response}
    if part.call_id:
        fr["id"] = part.call_id
    media = [_render_media(c) for c in part.content if isinstance(c, (ImagePart, FilePart))]
    media = [m for m in media if "text" not in m]
    if media:
        fr["parts"] = media
    return {"functionResponse": fr}


def _result_object(text: str) -> JsonObj:
    """Gemini wants an object: a JSON-object result is sent as is, anything else as {output: text}."""
    if text.startswith("{"):
        try:
            value = loads(text)
        except JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
    return {"output": text}


# URIs Gemini reads itself: Cloud Storage, the Files API, YouTube videos.
_GEMINI_URI_PREFIXES = (
    "gs://",
    "files/",
    "https://www.youtube.com/",
    "https://youtube.com/",
    "https://youtu.be/",
)


def _is_gemini_uri(url: str) -> bool:
    if url.startswith("https://generativelanguage.googleapis.com/"):
        return "/files/" in url
    return url.startswith(_GEMINI_URI_PREFIXES)


def _render_media(part: ImagePart | FilePart) -> JsonObj:
    default = "image/png" if isinstance(part, ImagePart) else "application/pdf"
    if isinstance(part, FilePart) and part.data is None and part.url is None:
        if part.text is not None:
            return {"text": part.text}
        if part.file_id and part.file_id.startswith("files/"):
            return {"fileData": {"mimeType": part.media_type or default, "fileUri": part.file_id}}
        raise InvalidRequestError(
            f"file {part.file_id or part.filename or ''!r} is a provider file id Gemini cannot read; "
            "send the file content inline (base64) instead"
        )
    if part.data is not None:
        mime = part.media_type or (_sniff_image(part.data) if isinstance(part, ImagePart) else default)
        return {"inlineData": {"mimeType": mime, "data": part.data}}
    url = part.url or ""
    parsed = parse_data_url(url)
    if parsed is not None:
        return {"inlineData": {"mimeType": parsed[0] or default, "data": parsed[1]}}
    if _is_gemini_uri(url):
        return {"fileData": {"mimeType": part.media_type or default, "fileUri": url}}
    raise InvalidRequestError(
        f"Gemini cannot fetch media by URL ({url[:80]!r}): only inline data, gs:// and Files-API URIs are "
        "accepted. This gateway inlines http(s) images it is allowed to fetch; send this one as base64 data"
    )


def _is_empty_object_schema(schema: JsonObj) -> bool:
    extra = set(schema) - {"type", "properties", "description", "title", "additionalProperties", "required"}
    return schema.get("type") in ("object", "OBJECT") and not schema.get("properties") and not extra


def _render_tools(req: ChatRequest, ctx: Context, names: _ToolNames) -> list[JsonObj]:
    declarations: list[JsonObj] = []
    builtins: list[JsonObj] = []
    openapi = ctx.caps.gemini_schema == "openapi"
    for spec in req.tools:
        if spec.kind == "builtin":
            entry = _render_builtin(spec)
            if entry is not None and entry not in builtins:
                builtins.append(entry)
            continue
        decl: JsonObj = {"name": names(spec.name)}
        if spec.description:
            decl["description"] = spec.description
        schema = spec.parameters
        if spec.kind == "custom":
            schema = {
                "type": "object",
                "properties": {
                    "input": {"type": "string", "description": "The raw input text for this tool."}
                },
                "required": ["input"],
            }
        if schema:
            if openapi:
                converted = to_gemini_schema(schema)
                if not _is_empty_object_schema(converted):  # case 15: no empty OBJECT declarations
                    decl["parameters"] = converted
            else:
                cleaned = clean_gemini_json_schema(schema)
                if not _is_empty_object_schema(cleaned):
                    decl["parametersJsonSchema"] = cleaned
        declarations.append(decl)
    tools: list[JsonObj] = [{"functionDeclarations": declarations}] if declarations else []
    return tools + builtins


def _render_builtin(spec: ToolSpec) -> JsonObj | None:
    if spec.raw_format == FORMAT_ID and spec.raw:
        return dict(spec.raw)
    kind = str((spec.raw or {}).get("type") or spec.name)
    if "web_search" in kind:
        return {"googleSearch": {}}
    return None  # hosted tools of other providers have no Gemini counterpart


def _render_tool_choice(choice: ToolChoice, names: _ToolNames) -> JsonObj:
    if choice.mode == "none":
        return {"mode": "NONE"}
    if choice.mode == "tool" and choice.name:
        return {"mode": "ANY", "allowedFunctionNames": [names(choice.name)]}
    out: JsonObj = {"mode": "ANY" if choice.mode == "required" else "AUTO"}
    if choice.allowed:
        out["allowedFunctionNames"] = [names(n) for n in choice.allowed]
    return out


def _render_generation_config(req: ChatRequest, ctx: Context) -> JsonObj:
    gen: JsonObj = {}
    simple = (
        ("temperature", req.temperature),
        ("topP", req.top_p),
        ("topK", req.top_k),
        ("candidateCount", req.n),
        ("seed", req.seed),
        ("presencePenalty", req.presence_penalty),
        ("frequencyPenalty", req.frequency_penalty),
    )
    gen.update({k: v for k, v in simple if v is not None})
    if req.max_tokens is not None:
        cap = ctx.caps.max_output_tokens
        gen["maxOutputTokens"] = min(req.max_tokens, cap) if cap else req.max_tokens
    if req.stop:
        gen["stopSequences"] = req.stop[:MAX_STOP_SEQUENCES]
    rf = req.response_format
    if rf is not None and rf.kind != "text":
        gen["responseMimeType"] = "application/json"
        if rf.kind == "json_schema" and rf.schema:
            if ctx.caps.gemini_schema == "openapi":
                gen["responseSchema"] = to_gemini_schema(rf.schema, property_ordering=True)
            else:
                gen["responseJsonSchema"] = clean_gemini_json_schema(rf.schema)
    thinking = _render_thinking(req, ctx)
    if thinking:
        gen["thinkingConfig"] = thinking
    return gen


def _max_thinking_budget(model: str) -> int:
    """Gemini 2.5's thinkingBudget ceiling: 24576 on Flash and Flash-Lite, 32768 on Pro."""
    return 24576 if "flash" in model.lower() else 32768


def _render_thinking(req: ChatRequest, ctx: Context) -> JsonObj:
    """ReasoningConfig -> thinkingConfig: thinkingLevel (Gemini 3) or thinkingBudget (2.5), never both."""
    rc = req.reasoning
    style = ctx.caps.thinking_style
    if rc is None or style == "none":
        return {}
    effort = (rc.effort or "").lower() or None
    off = rc.enabled is False or effort == "none" or rc.budget_tokens == 0
    out: JsonObj = {}
    if style == "level":
        if off:
            out["thinkingLevel"] = LOWEST_LEVEL  # Gemini 3 cannot switch thinking off
        elif effort is not None and req.source_format == FORMAT_ID and effort.upper() in GEMINI_LEVELS:
            out["thinkingLevel"] = effort.upper()  # the Gemini client's own level, valid for its model
        elif effort is not None:
            out["thinkingLevel"] = EFFORT_LEVEL.get(effort, "HIGH")
        elif rc.budget_tokens is not None and rc.budget_tokens > 0:
            out["thinkingLevel"] = _budget_level(rc.budget_tokens)
    elif off:
        out["thinkingBudget"] = 0
    elif rc.budget_tokens is not None:
        budget = rc.budget_tokens
        # another format's budget (Claude's go to 128k): Gemini answers 400 past its model's ceiling
        if req.source_format != FORMAT_ID:
            budget = min(budget, _max_thinking_budget(ctx.upstream_model))
        out["thinkingBudget"] = budget
    elif effort is not None:
        out["thinkingBudget"] = EFFORT_BUDGET.get(effort, EFFORT_BUDGET["medium"])
    elif rc.enabled or rc.adaptive:
        out["thinkingBudget"] = -1
    if rc.include_thoughts is not None:
        out["includeThoughts"] = rc.include_thoughts and not off
    elif (out or rc.enabled) and req.source_format != FORMAT_ID:
        out["includeThoughts"] = not off  # a Gemini client that did not ask for thoughts gets none
    return out


def _budget_level(budget: int) -> str:
    if budget <= 1024:
        return "LOW"
    if budget <= 8192:
        return "MEDIUM"
    return "HIGH"


# ==========================================================================================================
# response: wire <-> IR
# ==========================================================================================================


def _custom_tools(ctx: Context) -> frozenset[str]:
    """Client names of free-form tools (their calls carry {"input": text} on the Gemini side)."""
    req = ctx.request
    if req is None:
        return frozenset()
    return frozenset(t.name for t in req.tools if t.kind == "custom")


def _call_from_wire(
    fc: JsonObj, sig: str | None, ctx: Context, custom: frozenset[str]
) -> tuple[ToolCallPart, JsonObj]:
    """An upstream functionCall -> ToolCallPart (client names, a synthesized id when Gemini gave none)."""
    raw_id = fc.get("id")
    call_id = ctx.client_call_id(raw_id) if isinstance(raw_id, str) and raw_id else new_id("call")
    name = ctx.client_tool_name(str(fc.get("name") or ""))
    args = fc.get("args")
    args = args if isinstance(args, dict) else {}
    if name in custom and isinstance(args.get("input"), str):
        call = ToolCallPart(id=call_id, name=name, arguments=args["input"], kind="custom")
    else:
        call = ToolCallPart(id=call_id, name=name, arguments=dumps_str(args))
    if sig:
        call.signature, call.origin = sig, ctx.provider
        if ctx.signatures is not None:
            ctx.signatures.put(call_id, sig, ctx.provider)
    return call, args


def _explain(reason: str, message: Any) -> str:
    text = f"The response was stopped by Gemini (finishReason {reason})."
    return f"{text} {message}" if isinstance(message, str) and message else text


def _blocked_text(feedback: Any) -> str:
    fb = feedback if isinstance(feedback, dict) else {}
    reason = fb.get("blockReason") or "unknown"
    text = f"The prompt was blocked by Gemini (blockReason {reason})."
    msg = fb.get("blockReasonMessage")
    return f"{text} {msg}" if isinstance(msg, str) and msg else text


def finish_reason(raw: Any) -> StopReason:
    """A Gemini finishReason -> IR stop reason (unknown values: stop; see the module header)."""
    return _FINISH.get(str(raw).upper(), "stop") if raw else "stop"


def parse_response(body: JsonObj, ctx: Context) -> ChatResponse:
    """A generateContent response from a Gemini upstream -> ChatResponse (first candidate)."""
    if isinstance(body.get("error"), dict):
        raise _error_from_object(body["error"], 500)
    resp = ChatResponse(
        id=str(body.get("responseId") or ctx.response_id),
        model=str(body.get("modelVersion") or ctx.upstream_model),
        created=ctx.created,
    )
    meta = body.get("usageMetadata")
    if isinstance(meta, dict):
        resp.usage = usage_from_metadata(meta)
    candidates = body.get("candidates")
    cand = (
        candidates[0]
        if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict)
        else None
    )
    if cand is None:
        feedback = body.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            resp.parts.append(TextPart(_blocked_text(feedback)))
            resp.stop_reason = "content_filter"
        else:
            resp.parts.append(TextPart("Gemini returned no candidates."))
            resp.stop_reason = "error"
        return resp
    custom = _custom_tools(ctx)
    content = cand.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    for part in parts if isinstance(parts, list) else ():
        if isinstance(part, dict):
            resp.parts.extend(_response_part(part, ctx, custom))
    raw_reason = cand.get("finishReason")
    reason = finish_reason(raw_reason)
    if reason in ("content_filter", "error") and not any(
        isinstance(p, (TextPart, ToolCallPart)) for p in resp.parts
    ):
        resp.parts.append(TextPart(_explain(str(raw_reason), cand.get("finishMessage"))))
    resp.stop_reason = effective_stop_reason(reason, any(isinstance(p, ToolCallPart) for p in resp.parts))
    return resp


def _response_part(part: JsonObj, ctx: Context, custom: frozenset[str]) -> list[Part]:
    sig = part.get("thoughtSignature")
    sig = sig if isinstance(sig, str) and sig else None
    text = part.get("text")
    if isinstance(text, str):
        if part.get("thought") is True:
            return [ThinkingPart(text=text, signature=sig, origin=ctx.provider)] if text or sig else []
        out: list[Part] = [TextPart(text)] if text else []
        if sig:
            out.append(ThinkingPart(signature=sig, origin=ctx.provider))
        return out
    fc = part.get("functionCall")
    if isinstance(fc, dict):
        return [_call_from_wire(fc, sig, ctx, custom)[0]]
    inline = part.get("inlineData")
    if isinstance(inline, dict) and str(inline.get("mimeType") or "").startswith("image/"):
        return [ImagePart(media_type=inline.get("mimeType"), data=str(inline.get("data") or ""))]
    if sig and not _has_data(part):
        return [ThinkingPart(signature=sig, origin=ctx.provider)]
    if "text" in part or "functionCall" in part or not _has_data(part):
        return []  # malformed or empty: nothing a client could use
    return [OpaquePart(FORMAT_ID, part)]


def render_response(resp: ChatResponse, ctx: Context) -> JsonObj:
    """ChatResponse -> a generateContent response for a Gemini client."""
    parts = _client_parts(resp.parts, ctx)
    refused = any(isinstance(p, RefusalPart) for p in resp.parts)
    candidate: JsonObj = {
        "content": {"role": "model", "parts": parts},
        "finishReason": "SAFETY" if refused else _FINISH_OUT.get(resp.stop_reason, "STOP"),
        "index": 0,
    }
    out: JsonObj = {"candidates": [candidate]}
    if resp.usage is not None:
        out["usageMetadata"] = usage_metadata(resp.usage)
    out["modelVersion"] = ctx.client_model or resp.model
    out["responseId"] = resp.id or ctx.response_id
    return out


def _client_parts(parts: list[Part], ctx: Context) -> list[JsonObj]:
    if ctx.upstream_format != ctx.client_format:
        return _foreign_client_parts(parts, ctx)
    out: list[JsonObj] = []
    for part in parts:
        if isinstance(part, ThinkingPart):
            sig = (
                _client_signature(part.signature, part.origin, ctx, redacted=part.redacted)
                if part.signature
                else None
            )
            attachable = out and "text" in out[-1] and "thoughtSignature" not in out[-1]
            if not part.text and sig and not part.redacted and attachable:
                out[-1]["thoughtSignature"] = sig  # the signature rode on the part before it
                continue
            item: JsonObj = {"text": part.text, "thought": True}
            if sig:
                item["thoughtSignature"] = sig
            if part.text or sig:
                out.append(item)
            continue
        rendered = _client_part(part, ctx)
        if rendered is not None:
            out.append(rendered)
    return out


def _foreign_client_parts(parts: list[Part], ctx: Context) -> list[JsonObj]:
    """Parts from another format: thought text shown as thought parts, each signed block held for the
    next non-thought part (see "Foreign thinking toward a Gemini client")."""
    out: list[JsonObj] = []
    held = _HeldThinking(ctx)
    for part in parts:
        if isinstance(part, ThinkingPart):
            if part.text and not part.redacted:
                out.append({"text": part.text, "thought": True})
            if part.signature:
                flushed = held.hold(part)
                if flushed is not None:
                    out.append(flushed)
            continue
        rendered = _client_part(part, ctx)
        if rendered is not None:
            held.attach(rendered)
            out.append(rendered)
    rest = held.rest()
    if rest is not None:
        out.append(rest)
    return out


def _client_part(part: Part, ctx: Context) -> JsonObj | None:
    if isinstance(part, (TextPart, RefusalPart)):
        return {"text": part.text} if part.text else None
    if isinstance(part, ToolCallPart):
        return _client_call(part.id, part.name, part.arguments, part.kind, part.signature, part.origin, ctx)
    if isinstance(part, ImagePart) and part.data is not None:
        return {"inlineData": {"mimeType": part.media_type or _sniff_image(part.data), "data": part.data}}
    if isinstance(part, OpaquePart) and part.format == FORMAT_ID:
        return dict(part.data)
    return None


def _client_call(
    call_id: str, name: str, arguments: str, kind: str, sig: str | None, origin: str | None, ctx: Context
) -> JsonObj:
    args = {"input": arguments} if kind == "custom" else arguments_object(arguments)
    fc: JsonObj = {"name": name, "args": args}
    if call_id:
        fc["id"] = call_id
    item: JsonObj = {"functionCall": fc}
    if sig:
        item["thoughtSignature"] = _client_signature(sig, origin, ctx)
    return item


# ==========================================================================================================
# usage
# ==========================================================================================================


def _count(meta: JsonObj, name: str) -> int:
    v = _f(meta, name)
    if isinstance(v, str) and _INT_TEXT.fullmatch(v):
        return int(v)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def usage_from_metadata(meta: JsonObj) -> Usage:
    """usageMetadata -> IR usage (formats.md §2.7): input = prompt (+ tool-use prompt), which already
    includes the cached part; output = candidates + thoughts, unless the upstream is the variant whose
    candidates already include thoughts (prompt + candidates == total)."""
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    candidates = _count(meta, "candidatesTokenCount")
    thoughts = _count(meta, "thoughtsTokenCount")
    total = _count(meta, "totalTokenCount")
    inclusive = thoughts > 0 and total > 0 and prompt + candidates == total
    return Usage(
        input_tokens=prompt,
        output_tokens=candidates if inclusive else candidates + thoughts,
        cached_tokens=_count(meta, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def usage_metadata(usage: Usage) -> JsonObj:
    """IR usage -> usageMetadata (candidates exclude thoughts on the Gemini side)."""
    out: JsonObj = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(0, usage.output_tokens - usage.reasoning_tokens),
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens:
        out["cachedContentTokenCount"] = usage.cached_tokens
    return out


def response_usage(body: JsonObj) -> Usage | None:
    meta = body.get("usageMetadata")
    return usage_from_metadata(meta) if isinstance(meta, dict) else None


class UsageTap:
    """Passthrough streams: Gemini repeats usageMetadata on many chunks, so only the last chunk that
    mentions it is kept (a substring test) and decoded when `usage` is read."""

    def __init__(self) -> None:
        self._last: bytes | None = None
        self._usage: Usage | None = None

    def feed(self, event: SSEEvent) -> None:
        if b"usageMetadata" in event.data:
            self._last = event.data

    @property
    def usage(self) -> Usage | None:
        if self._last is not None:
            data, self._last = self._last, None
            try:
                value = loads(data)
            except JSONDecodeError:
                value = None
            if isinstance(value, list):  # a JSON-array stream element
                value = next(
                    (v for v in reversed(value) if isinstance(v, dict) and "usageMetadata" in v), None
                )
            meta = value.get("usageMetadata") if isinstance(value, dict) else None
            if isinstance(meta, dict):
                self._usage = usage_from_metadata(meta)
        return self._usage


# ==========================================================================================================
# stream: upstream SSE -> IR events
# ==========================================================================================================


class StreamParser:
    """Gemini `alt=sse` events (each a GenerateContentResponse with only the new parts) -> IR events."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._custom = _custom_tools(ctx)
        self._started = False
        self._index = 0
        self._saw_call = False
        self._saw_content = False
        self._finished = False
        self._usage: Usage | None = None
        self._usage_sent = False
        self._partial: _PartialCall | None = None  # Vertex streamFunctionCallArguments

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        data = event.data.strip()
        if not data or data == b"[DONE]":
            return []
        try:
            value = loads(data)
        except JSONDecodeError:
            raise UpstreamError("Gemini sent a stream event that is not JSON") from None
        chunks = value if isinstance(value, list) else [value]
        out: list[StreamEvent] = []
        for chunk in chunks:
            if isinstance(chunk, dict):
                self._chunk(chunk, out)
        return out

    def _chunk(self, chunk: JsonObj, out: list[StreamEvent]) -> None:
        if isinstance(chunk.get("error"), dict):
            raise _error_from_object(chunk["error"], 500)
        if not self._started:
            self._started = True
            out.append(
                StreamStart(
                    id=str(chunk.get("responseId") or self.ctx.response_id),
                    model=str(chunk.get("modelVersion") or self.ctx.upstream_model),
                )
            )
        meta = chunk.get("usageMetadata")
        if isinstance(meta, dict):
            self._usage = usage_from_metadata(meta)
        candidates = chunk.get("candidates")
        cand = candidates[0] if isinstance(candidates, list) and candidates else None
        if not isinstance(cand, dict):
            feedback = chunk.get("promptFeedback")
            if not self._finished and isinstance(feedback, dict) and feedback.get("blockReason"):
                out.append(TextDelta(_blocked_text(feedback)))
                self._finish("content_filter", out)
            elif self._finished and self._usage is not None:
                out.append(UsageUpdate(self._usage))
            return
        if not self._finished:
            content = cand.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in parts if isinstance(parts, list) else ():
                if isinstance(part, dict):
                    self._part(part, out)
        raw_reason = cand.get("finishReason")
        if raw_reason and not self._finished:
            reason = finish_reason(raw_reason)
            if reason in ("content_filter", "error") and not self._saw_content:
                out.append(TextDelta(_explain(str(raw_reason), cand.get("finishMessage"))))
            self._finish(reason, out)
        elif self._finished and isinstance(meta, dict) and self._usage is not None:
            out.append(UsageUpdate(self._usage))  # usage that trails the finishing chunk

    def _finish(self, reason: StopReason, out: list[StreamEvent]) -> None:
        self._flush_partial(out)
        self._finished = True
        out.append(Finish(effective_stop_reason(reason, self._saw_call)))
        if self._usage is not None:
            out.append(UsageUpdate(self._usage))
            self._usage_sent = True

    def _part(self, part: JsonObj, out: list[StreamEvent]) -> None:
        sig = part.get("thoughtSignature")
        sig = sig if isinstance(sig, str) and sig else None
        fc = part.get("functionCall")
        if isinstance(fc, dict):
            self._function_call(fc, sig, out)
            return
        self._flush_partial(out)
        text = part.get("text")
        if isinstance(text, str):
            if text:
                self._saw_content = True
                out.append(ThinkingDelta(text) if part.get("thought") is True else TextDelta(text))
            if sig:
                out.append(ThinkingSignature(sig, self.ctx.provider))
            return
        if sig and not _has_data(part):
            out.append(ThinkingSignature(sig, self.ctx.provider))
            return
        if "text" in part or "functionCall" in part or not _has_data(part):
            return  # malformed or empty: nothing a client could use
        self._saw_content = True
        out.append(OpaqueBlock(FORMAT_ID, part))

    def _function_call(self, fc: JsonObj, sig: str | None, out: list[StreamEvent]) -> None:
        if "partialArgs" in fc or fc.get("willContinue") is True or self._partial is not None:
            if self._partial is None:
                self._partial = _PartialCall(fc, sig)
            else:
                self._partial.add(fc, sig)
            if fc.get("willContinue") is True:
                return
            fc, sig = self._partial.result()
            self._partial = None
        self._emit_call(fc, sig, out)

    def _flush_partial(self, out: list[StreamEvent]) -> None:
        if self._partial is not None:
            fc, sig = self._partial.result()
            self._partial = None
            self._emit_call(fc, sig, out)

    def _emit_call(self, fc: JsonObj, sig: str | None, out: list[StreamEvent]) -> None:
        call, _ = _call_from_wire(fc, sig, self.ctx, self._custom)
        index = self._index
        self._index += 1
        self._saw_call = self._saw_content = True
        out.append(ToolCallStart(index, call.id, call.name, call.kind))
        out.append(ToolCallDelta(index, call.arguments))
        out.append(ToolCallEnd(index, call.signature, call.origin))

    def close(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        self._flush_partial(out)
        if self._usage is not None and not self._usage_sent:
            out.append(UsageUpdate(self._usage))
            self._usage_sent = True
        return out


MAX_PARTIAL_INDEX = 10_000
_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]")


class _PartialCall:
    """Vertex streamFunctionCallArguments: one call spread over functionCall parts with `partialArgs`
    ({jsonPath, stringValue|numberValue|boolValue|nullValue, willContinue}) until willContinue is false.
    String values split across parts are concatenated per path."""

    def __init__(self, fc: JsonObj, sig: str | None) -> None:
        self.name = ""
        self.id: str | None = None
        self.sig: str | None = None
        self.args: JsonObj = {}
        self.add(fc, sig)

    def add(self, fc: JsonObj, sig: str | None) -> None:
        self.name = str(fc.get("name") or self.name)
        self.id = fc.get("id") if isinstance(fc.get("id"), str) else self.id
        self.sig = sig or self.sig
        if isinstance(fc.get("args"), dict):
            self.args.update(fc["args"])
        partial = fc.get("partialArgs")
        for pa in partial if isinstance(partial, list) else ():
            if isinstance(pa, dict) and isinstance(pa.get("jsonPath"), str):
                self._set(pa)

    def _set(self, pa: JsonObj) -> None:
        keys: list[str | int] = [
            int(m.group(2)) if m.group(2) is not None else (m.group(1) or m.group(3) or "")
            for m in _PATH_TOKEN.finditer(pa["jsonPath"])
        ]
        if not keys or any(isinstance(k, int) and k > MAX_PARTIAL_INDEX for k in keys):
            return  # an absurd array index would make us allocate the whole array
        if "stringValue" in pa:
            value: Any = str(pa["stringValue"])
        elif "numberValue" in pa:
            value = pa["numberValue"]
        elif "boolValue" in pa:
            value = pa["boolValue"]
        else:
            value = None
        node: Any = self.args
        for key, nxt in itertools.pairwise(keys):
            child: Any = [] if isinstance(nxt, int) else {}
            if isinstance(node, dict):
                node = node.setdefault(str(key), child)
            elif isinstance(node, list) and isinstance(key, int):
                while len(node) <= key:
                    node.append(None)
                if node[key] is None:
                    node[key] = child
                node = node[key]
        last = keys[-1]
        if isinstance(node, dict):
            prev = node.get(str(last))
            node[str(last)] = prev + value if isinstance(prev, str) and isinstance(value, str) else value
        elif isinstance(node, list) and isinstance(last, int):
            while len(node) <= last:
                node.append(None)
            prev = node[last]
            node[last] = prev + value if isinstance(prev, str) and isinstance(value, str) else value

    def result(self) -> tuple[JsonObj, str | None]:
        fc: JsonObj = {"name": self.name, "args": self.args}
        if self.id:
            fc["id"] = self.id
        return fc, self.sig


# ==========================================================================================================
# stream: IR events -> client bytes
# ==========================================================================================================


def stream_content_type(ctx: Context) -> str:
    """SSE for `alt=sse` clients, application/json for the JSON-array stream."""
    return JSON_ARRAY_CONTENT_TYPE if ctx.json_array_stream else STREAM_CONTENT_TYPE


class StreamRenderer:
    """IR events -> Gemini stream chunks: one chunk per text/thinking delta, one functionCall part per
    finished tool call, finishReason + usageMetadata on the last chunk (written by close()).

    From another format, a signature is held (with the thinking text streamed before it) until the next
    non-thought part, which carries it; whatever is still held at the end rides an empty text part in the
    last chunk (see "Foreign thinking toward a Gemini client")."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._array = ctx.json_array_stream
        self._wrote = False
        self._closed = False
        self._id = ctx.response_id
        self._model = ctx.client_model
        self._calls: dict[int, tuple[str, str, str, list[str]]] = {}
        self._usage: Usage | None = None
        self._reason: str | None = None
        self._refused = False
        self._in_thought = False  # the last content part written was a thought
        self._foreign = ctx.upstream_format != ctx.client_format
        self._held = _HeldThinking(ctx)
        self._thought_text: list[str] = []  # foreign thinking text not yet matched with its signature

    def _frame(self, obj: JsonObj) -> bytes:
        data = dumps(obj)
        if not self._array:
            return b"data: " + data + b"\n\n"
        prefix = b",\r\n" if self._wrote else b"["
        self._wrote = True
        return prefix + data

    def _parts_chunk(self, parts: list[JsonObj]) -> bytes:
        return self._frame(
            {
                "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
                "modelVersion": self._model,
                "responseId": self._id,
            }
        )

    def _content_chunk(self, part: JsonObj) -> bytes:
        """A non-thought part: it carries any held foreign signature."""
        self._in_thought = False
        self._thought_text = []  # thought text without a signature (DeepSeek-style) has nowhere to go
        self._held.attach(part)
        return self._parts_chunk([part])

    def _hold(self, event: ThinkingSignature | RedactedThinking) -> bytes:
        if isinstance(event, RedactedThinking):
            block = ThinkingPart(signature=event.data, redacted=True, origin=event.origin)
        else:
            block = ThinkingPart("".join(self._thought_text), event.signature, origin=event.origin)
            self._thought_text = []
        flushed = self._held.hold(block)
        return self._parts_chunk([flushed]) if flushed is not None else b""

    def feed(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            if self._foreign:
                return self._content_chunk({"text": event.text}) if event.text else b""
            self._in_thought = False
            return self._parts_chunk([{"text": event.text}]) if event.text else b""
        if isinstance(event, ThinkingDelta):
            self._in_thought = True
            if self._foreign:
                self._thought_text.append(event.text)
            return self._parts_chunk([{"text": event.text, "thought": True}]) if event.text else b""
        if isinstance(event, (ThinkingSignature, RedactedThinking)) and self._foreign:
            return self._hold(event)
        if isinstance(event, (ThinkingSignature, RedactedThinking)):
            redacted = isinstance(event, RedactedThinking)
            token = event.data if isinstance(event, RedactedThinking) else event.signature
            sig = _client_signature(token, event.origin, self.ctx, redacted=redacted)
            part: JsonObj = {"text": "", "thoughtSignature": sig}
            if self._in_thought or redacted:
                part["thought"] = True  # closes a thought run; after text it rides a plain empty part
            self._in_thought = False
            return self._parts_chunk([part])
        if isinstance(event, RefusalDelta):
            self._refused = True
            return self._content_chunk({"text": event.text}) if event.text else b""
        if isinstance(event, ToolCallStart):
            self._calls[event.index] = (event.id, event.name, event.kind, [])
            return b""
        if isinstance(event, ToolCallDelta):
            call = self._calls.get(event.index)
            if call is not None:
                call[3].append(event.arguments)
            return b""
        if isinstance(event, ToolCallEnd):
            return self._end_call(event.index, event.signature, event.origin)
        if isinstance(event, OpaqueBlock):
            return self._parts_chunk([dict(event.data)]) if event.format == FORMAT_ID else b""
        if isinstance(event, StreamStart):
            self._id = event.id or self._id
            self._model = self._model or event.model
            if event.usage is not None:
                self._usage = merge_usage(self._usage, event.usage)
            return b""
        if isinstance(event, UsageUpdate):
            self._usage = merge_usage(self._usage, event.usage)
            return b""
        if isinstance(event, Finish):
            self._reason = _FINISH_OUT.get(event.stop_reason, "STOP")
        return b""

    def _end_call(self, index: int, sig: str | None, origin: str | None) -> bytes:
        call = self._calls.pop(index, None)
        if call is None:
            return b""
        call_id, name, kind, fragments = call
        return self._content_chunk(
            _client_call(call_id, name, "".join(fragments), kind, sig, origin, self.ctx)
        )

    def close(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        out = b"".join(self._end_call(i, None, None) for i in sorted(self._calls))
        reason = "SAFETY" if self._refused else self._reason or "STOP"
        final: JsonObj = {"candidates": [{"finishReason": reason, "index": 0}]}
        rest = self._held.rest()
        if rest is not None:  # nothing followed the thinking: an empty part carries it, as Gemini does
            final["candidates"][0]["content"] = {"role": "model", "parts": [rest]}
        if self._usage is not None:
            final["usageMetadata"] = usage_metadata(self._usage)
        final["modelVersion"] = self._model
        final["responseId"] = self._id
        out += self._frame(final)
        return out + (b"]" if self._array else b"")

    def fail(self, error: GatewayError) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        out = self._frame({"error": _error_object(error)})
        return out + (b"]" if self._array else b"")


# ==========================================================================================================
# errors
# ==========================================================================================================


def _error_from_object(err: JsonObj, status: int, headers: Mapping[str, str] | None = None) -> GatewayError:
    code = err.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else status
    message = err.get("message")
    message = message if isinstance(message, str) else ""
    rpc_status = err.get("status") if isinstance(err.get("status"), str) else None
    details = err.get("details")
    retry = google_retry_delay(details)
    if retry is None and headers is not None:
        retry = retry_after_from_headers(headers)
    if _api_key_invalid(message, details):
        return UpstreamAuthError(
            f"the provider rejected the account's credentials: {message}", upstream_status=status
        )
    error = error_from_status(status, message, code=rpc_status, retry_after=retry)
    short = error.retry_after is not None and error.retry_after <= RATE_LIMIT_RETRY_MAX_S
    if isinstance(error, QuotaExhaustedError) and short:
        # Gemini words per-minute limits as "exceeded your current quota"; a short RetryInfo says it is
        # a rate limit that resets soon, not an exhausted account.
        return RateLimitError(error.message, upstream_status=status, retry_after=error.retry_after)
    return error


def _api_key_invalid(message: str, details: Any) -> bool:
    if "API key not valid" in message or "API_KEY_INVALID" in message:
        return True
    return isinstance(details, list) and any(
        isinstance(d, dict) and d.get("reason") in ("API_KEY_INVALID", "API_KEY_EXPIRED") for d in details
    )


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """An upstream error response -> typed GatewayError (`{error:{code, message, status, details}}`,
    possibly wrapped in a JSON array)."""
    try:
        value = loads(body) if body else None
    except JSONDecodeError:
        value = None
    if isinstance(value, list) and value:
        value = value[0]
    err = value.get("error") if isinstance(value, dict) else None
    if isinstance(err, dict):
        return _error_from_object(err, status, headers)
    message = err if isinstance(err, str) else body[:2000].decode("utf-8", "replace")
    return error_from_status(status, message, retry_after=retry_after_from_headers(headers))


def _client_status(error: GatewayError) -> int:
    return 503 if error.status == 529 else error.status


def _rpc_status(status: int) -> str:
    if status in _RPC_STATUS:
        return _RPC_STATUS[status]
    return "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"


def _error_object(error: GatewayError) -> JsonObj:
    status = _client_status(error)
    obj: JsonObj = {"code": status, "message": error.message, "status": _rpc_status(status)}
    if status == 429 and error.retry_after is not None:
        seconds = max(1, int(-(-error.retry_after // 1)))
        obj["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"}]
    return obj


def render_error(error: GatewayError) -> tuple[int, dict[str, str], bytes]:
    headers = {"content-type": "application/json", **format_retry_after(error.retry_after)}
    return _client_status(error), headers, dumps({"error": _error_object(error)})


# ==========================================================================================================
# misc
# ==========================================================================================================


def request_path(model: str, stream: bool) -> str:
    if stream:
        return f"/models/{model}:streamGenerateContent?alt=sse"
    return f"/models/{model}:generateContent"


def prepare_passthrough(body: JsonObj) -> JsonObj:
    return body


def render_count_tokens(n: int) -> JsonObj:
    return {"totalTokens": n}


def render_model_list(models: list[tuple[str, str, int | None]]) -> JsonObj:
    """`GET /v1beta/models`: (id, display name, input token limit) -> the Gemini model list shape."""
    out = []
    for model_id, display, limit in models:
        entry: JsonObj = {
            "name": f"models/{model_id}",
            "displayName": display or model_id,
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
        }
        if limit is not None:
            entry["inputTokenLimit"] = limit
        out.append(entry)
    return {"models": out}


__all__ = [
    "FORMAT_ID",
    "SKIP_SIGNATURE",
    "STREAM_CONTENT_TYPE",
    "StreamParser",
    "StreamRenderer",
    "UsageTap",
    "finish_reason",
    "parse_count_tokens_request",
    "parse_error",
    "parse_request",
    "parse_response",
    "prepare_passthrough",
    "render_count_tokens",
    "render_error",
    "render_model_list",
    "render_request",
    "render_response",
    "request_path",
    "response_usage",
    "stream_content_type",
    "usage_from_metadata",
    "usage_metadata",
]

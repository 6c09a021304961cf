"""The internal representation every wire format parses into and renders from.

Four formats (openai-chat, openai-responses, anthropic, gemini) each parse their requests, responses and
stream events into the types below and render them back out; translation A -> B is parse_A then render_B.

Invariants every parser guarantees (renderers may rely on them):

* Usage follows the OpenAI definition. `input_tokens` INCLUDES cache reads and cache writes; `output_tokens`
  INCLUDES reasoning tokens. Anthropic (input excludes cache) and Gemini (candidates exclude thoughts)
  convert at their own edge.
* No empty text: a "" text part is dropped at parse time, never carried (Anthropic and Gemini reject them).
* Tool-call arguments are a JSON *string*, kept exactly as received (OpenAI) or serialised once
  (Anthropic/Gemini objects). Renderers that need an object parse it; invalid or non-object -> {}.
* Roles: "system" (a system/developer message *inside* the conversation, after a non-system turn),
  "user", "assistant", "tool". System text that precedes the conversation lives in ChatRequest.system.
  A "tool" message holds only ToolResultParts, in the order the client sent them.
* Tool-call arguments of kind "custom" (free-form tools such as Codex apply_patch) are the raw input
  text, not JSON.
* Thinking tokens (Anthropic signatures, Gemini thoughtSignatures, OpenAI encrypted_content, redacted
  thinking data) are opaque and are replayed only to the upstream that minted them:
    - upstream-side parsers (parse_response, StreamParser) set origin = ctx.provider on every token;
    - client-side renderers (render_response, StreamRenderer) write the raw token when
      ctx.upstream_format == ctx.client_format, else tag_signature(token, origin);
    - client-side parsers (parse_request) split with untag_signature: origin None means "native to the
      client's own format";
    - upstream-side renderers (render_request) keep a token when origin == ctx.provider, or when origin
      is None and ctx.upstream_format == req.source_format; otherwise they drop it (Anthropic: drop the
      thinking block; Gemini: the bypass sentinel on the first functionCall of the turn; Responses: drop
      the reasoning item).
  Gemini signatures also go into ctx.signatures (keyed by tool-call id) so a client that strips unknown
  fields still gets them replayed.
* In-band upstream errors (OpenAI `data: {"error":...}`, Anthropic `event: error`, Responses
  `response.failed`/`error`, a Gemini chunk with `error`) make StreamParser.feed raise GatewayError; the
  pipeline then calls the client renderer's fail().
* Stream events obey a grammar (see StreamEvent below); every StreamParser emits it and every
  StreamRenderer accepts exactly it.

Nothing in this module does I/O.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field
from typing import Literal

from omniroute import GatewayError, JsonObj, dumps_str, unique_hex

FormatId = Literal["openai-chat", "openai-responses", "anthropic", "gemini"]
FORMATS: tuple[FormatId, ...] = ("openai-chat", "openai-responses", "anthropic", "gemini")

Role = Literal["system", "user", "assistant", "tool"]

# Why a response ended, in one vocabulary for all formats:
#   stop            natural end (OC stop, AM end_turn, GG STOP, OR completed)
#   length          output token limit (OC length, AM max_tokens, GG MAX_TOKENS, OR incomplete)
#   tool_calls      the model wants tool results (OC tool_calls, AM tool_use)
#   stop_sequence   a stop sequence matched (AM stop_sequence; OC/GG report "stop")
#   content_filter  safety / refusal (OC content_filter, AM refusal, GG SAFETY & co, OR incomplete)
#   pause           long-running server tool paused (AM pause_turn)
#   context_window  the context window filled up (AM model_context_window_exceeded)
#   error           the upstream ended in an error it reported in-band
StopReason = Literal[
    "stop", "length", "tool_calls", "stop_sequence", "content_filter", "pause", "context_window", "error"
]


# ----------------------------------------------------------------------------------------------------------
# content parts
# ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TextPart:
    text: str
    cache_control: JsonObj | None = None  # Anthropic cache breakpoint, carried to Anthropic upstreams only
    citations: list[JsonObj] | None = None  # Anthropic citations / OpenAI annotations, same-format only


@dataclass(slots=True)
class ImagePart:
    """An image given inline (`data` = base64 payload, no data: prefix) or by `url` (http(s), gs://...)."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    detail: str | None = None  # OpenAI low/high/auto; dropped where the target has no such knob
    cache_control: JsonObj | None = None


@dataclass(slots=True)
class FilePart:
    """A document (PDF, text...) inline, by URL, or by provider file id."""

    media_type: str | None = None
    data: str | None = None  # base64 payload
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    title: str | None = None
    text: str | None = None  # plain-text documents (Anthropic source type "text")
    cache_control: JsonObj | None = None


@dataclass(slots=True)
class AudioPart:
    data: str  # base64
    format: str  # wav, mp3, ...


@dataclass(slots=True)
class ThinkingPart:
    """Reasoning the model showed (or hid). `text` may be "" when only the signature survives.

    `signature`: Anthropic thinking signature, Gemini thoughtSignature or OpenAI encrypted_content.
    `redacted`: True for Anthropic redacted_thinking, whose opaque payload is in `signature`.
    `origin`: who minted the token (see tag_signature); None = native to the format it was parsed from.
    """

    text: str = ""
    signature: str | None = None
    redacted: bool = False
    origin: str | None = None
    item_id: str | None = None  # OpenAI Responses reasoning item id (rs_...), dropped when store=false


@dataclass(slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str = "{}"  # JSON text, see module invariants
    kind: Literal["function", "custom"] = "function"  # custom = free-form input (Codex apply_patch)
    signature: str | None = None  # Gemini thoughtSignature riding on the functionCall part
    origin: str | None = None
    item_id: str | None = None  # OpenAI Responses item id (fc_...), not the call id
    namespace: str | None = None  # OpenAI Responses namespaced tools


@dataclass(slots=True)
class ToolResultPart:
    call_id: str
    content: list[TextPart | ImagePart | FilePart] = field(default_factory=list)
    is_error: bool = False
    name: str | None = None  # Gemini needs the function name; parsers fill it when the wire has it
    kind: Literal["function", "custom"] = "function"
    cache_control: JsonObj | None = None


@dataclass(slots=True)
class RefusalPart:
    text: str


@dataclass(slots=True)
class OpaquePart:
    """A block we carry but do not interpret (server tool use, search results, ...).

    Rendered back verbatim only to `format`; every other format drops it.
    """

    format: str
    data: JsonObj


Part = (
    TextPart
    | ImagePart
    | FilePart
    | AudioPart
    | ThinkingPart
    | ToolCallPart
    | ToolResultPart
    | RefusalPart
    | OpaquePart
)


@dataclass(slots=True)
class Message:
    role: Role
    parts: list[Part] = field(default_factory=list)
    name: str | None = None
    cache_control: JsonObj | None = None  # message-level hint (OpenAI-style extensions)


# ----------------------------------------------------------------------------------------------------------
# request
# ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ToolSpec:
    name: str
    description: str | None = None
    parameters: JsonObj | None = None  # JSON Schema of the arguments object
    strict: bool | None = None
    kind: Literal["function", "custom", "builtin"] = "function"
    grammar: JsonObj | None = None  # custom tools: OpenAI `format` ({type: grammar, syntax, definition})
    raw: JsonObj | None = None  # builtin/hosted tools as the client sent them (web_search, namespace...)
    raw_format: str | None = None  # the format `raw` is written in
    cache_control: JsonObj | None = None


@dataclass(slots=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None  # mode == "tool"
    allowed: list[str] | None = None  # OpenAI allowed_tools / Gemini allowedFunctionNames


Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


@dataclass(slots=True)
class ReasoningConfig:
    """What the client asked for; None everywhere = the client said nothing (provider default)."""

    enabled: bool | None = None  # False = explicitly off
    effort: str | None = None  # an Effort value; unknown values are kept and mapped defensively
    budget_tokens: int | None = None  # explicit budget; -1 = dynamic (Gemini)
    adaptive: bool = False  # Anthropic {type: adaptive}
    summary: str | None = None  # OpenAI Responses reasoning.summary
    display: str | None = None  # Anthropic thinking.display (summarized | omitted)
    include_thoughts: bool | None = None  # Gemini includeThoughts


@dataclass(slots=True)
class ResponseFormat:
    kind: Literal["text", "json_object", "json_schema"] = "text"
    schema: JsonObj | None = None
    name: str | None = None
    strict: bool | None = None
    description: str | None = None


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[Message] = field(default_factory=list)
    system: list[TextPart] = field(default_factory=list)
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    reasoning: ReasoningConfig | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    include_usage: bool = False  # OpenAI stream_options.include_usage: the client wants the usage chunk
    user: str | None = None  # end-user id (OpenAI user / Anthropic metadata.user_id), <= 64 chars
    metadata: JsonObj | None = None
    cache_key: str | None = None  # prompt_cache_key
    store: bool | None = None
    previous_response_id: str | None = None
    include: list[str] = field(default_factory=list)  # OpenAI Responses include[]
    source_format: str = ""
    # Fields of the source format that the IR does not interpret, by top-level name. Rendered back only
    # when the target format equals `source_format`; every other renderer ignores them.
    extras: JsonObj = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------------
# response
# ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0  # includes cached_tokens and cache_write_tokens
    output_tokens: int = 0  # includes reasoning_tokens
    cached_tokens: int = 0  # cache reads
    cache_write_tokens: int = 0  # cache creation (Anthropic)
    reasoning_tokens: int = 0
    estimated: bool = False  # True when we counted ourselves because the upstream did not say

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class ChatResponse:
    id: str
    model: str
    parts: list[Part] = field(default_factory=list)  # assistant output, in order
    stop_reason: StopReason = "stop"
    stop_sequence: str | None = None
    usage: Usage | None = None
    created: int = 0


# ----------------------------------------------------------------------------------------------------------
# stream events
# ----------------------------------------------------------------------------------------------------------
# Grammar (what a StreamParser emits and a StreamRenderer accepts):
#
#   StreamStart
#   ( TextDelta | RefusalDelta | ThinkingDelta | ThinkingSignature | RedactedThinking
#   | ToolCallStart ToolCallDelta* ToolCallEnd | UsageUpdate | OpaqueBlock )*
#   [ Finish ] UsageUpdate*
#   <end of stream>            (the renderer's close() writes the terminal frames)
#
# * Tool calls never interleave with anything: the parser de-interleaves (buffers) when its upstream
#   interleaves parallel calls. `index` counts tool calls of this response from 0 in order.
# * A thinking block is a run of ThinkingDelta optionally closed by ThinkingSignature; any other event
#   also closes it. ThinkingSignature may arrive without preceding deltas (signature-only block).
# * UsageUpdate carries a cumulative snapshot: a later one replaces an earlier one field by field where
#   the later value is non-zero. It may arrive before or after Finish.
# * A stream that breaks mid-way is reported to the renderer through fail(error), not as an event.


@dataclass(slots=True)
class StreamStart:
    id: str
    model: str
    usage: Usage | None = None  # input side when the upstream says it up front (Anthropic)


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class RefusalDelta:
    text: str


@dataclass(slots=True)
class ThinkingDelta:
    text: str


@dataclass(slots=True)
class ThinkingSignature:
    signature: str
    origin: str | None = None


@dataclass(slots=True)
class RedactedThinking:
    data: str
    origin: str | None = None


@dataclass(slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str
    kind: Literal["function", "custom"] = "function"


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    arguments: str  # a fragment of the JSON text; fragments split anywhere, concatenate to the whole


@dataclass(slots=True)
class ToolCallEnd:
    index: int
    signature: str | None = None  # Gemini thoughtSignature of this functionCall part
    origin: str | None = None


@dataclass(slots=True)
class OpaqueBlock:
    format: str
    data: JsonObj


@dataclass(slots=True)
class UsageUpdate:
    usage: Usage


@dataclass(slots=True)
class Finish:
    stop_reason: StopReason
    stop_sequence: str | None = None


StreamEvent = (
    StreamStart
    | TextDelta
    | RefusalDelta
    | ThinkingDelta
    | ThinkingSignature
    | RedactedThinking
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | OpaqueBlock
    | UsageUpdate
    | Finish
)

CONTENT_EVENTS = (
    TextDelta,
    RefusalDelta,
    ThinkingDelta,
    ThinkingSignature,
    RedactedThinking,
    ToolCallStart,
    OpaqueBlock,
    Finish,
)
"""Events that count as the upstream's first meaningful byte: the status line is held until one arrives."""


# ----------------------------------------------------------------------------------------------------------
# translation context
# ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TargetCaps:
    """What the upstream can take, from the catalog (provider + model). Renderers read, never write."""

    system_as_user: bool = False  # the provider rejects system messages: send them as user text
    cache_control: bool = False  # Anthropic cache_control is understood (Claude and Claude-compatible)
    default_max_tokens: int = 32000  # Anthropic requires max_tokens; used when the client gave none
    max_output_tokens: int | None = None  # clamp for max_tokens when known
    think_tags: bool = False  # the model writes <think>...</think> in its text: extract into reasoning
    reasoning_content_replay: bool = False  # DeepSeek-style: send reasoning_content back on tool turns
    thinking_style: Literal["budget", "level", "effort", "none"] = "budget"  # Gemini 2.5 vs 3, OpenAI
    max_tool_name: int = 64
    max_tokens_field: str = "max_tokens"  # OpenAI Chat: "max_tokens" or "max_completion_tokens" (o-series)
    gemini_schema: str = "json_schema"  # Gemini tool/response schemas: "json_schema" or "openapi" (subset)


@dataclass(slots=True)
class Context:
    """Per-request state shared by the request renderer and the response/stream translators.

    Renderers record the renames they had to make (tool names, call ids) so the way back restores what
    the client originally sent.
    """

    client_format: str
    upstream_format: str
    provider: str = ""  # provider id: the origin tag for signatures this upstream mints
    upstream_model: str = ""
    client_model: str = ""  # the model string the client asked for
    caps: TargetCaps = field(default_factory=TargetCaps)
    include_usage: bool = False  # the client asked for usage in its stream (OpenAI stream_options)
    json_array_stream: bool = False  # Gemini client streaming without alt=sse: one JSON array
    tool_names: dict[str, str] = field(default_factory=dict)  # upstream name -> client name
    call_ids: dict[str, str] = field(default_factory=dict)  # upstream call id -> client call id
    response_id: str = ""
    created: int = 0
    request: ChatRequest | None = None  # the parsed client request, when the IR path is taken
    signatures: SignatureCache | None = None  # process-wide; None in pure unit tests

    def __post_init__(self) -> None:
        if not self.response_id:
            self.response_id = new_id("resp")
        if not self.created:
            self.created = int(time.time())

    def client_tool_name(self, upstream_name: str) -> str:
        return self.tool_names.get(upstream_name, upstream_name)

    def client_call_id(self, upstream_id: str) -> str:
        return self.call_ids.get(upstream_id, upstream_id)


class SignatureCache:
    """Bounded memory of reasoning tokens by tool-call id: (token, origin).

    Gemini wants its thoughtSignature back on the functionCall part; OpenAI-format clients keep only the
    call id, so the token waits here until that id comes back in the next request.
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        from collections import OrderedDict

        self._items: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._max = max_entries

    def put(self, call_id: str, token: str, origin: str) -> None:
        self._items[call_id] = (token, origin)
        self._items.move_to_end(call_id)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def get(self, call_id: str) -> tuple[str, str] | None:
        return self._items.get(call_id)

    def __len__(self) -> int:
        return len(self._items)


# ----------------------------------------------------------------------------------------------------------
# helpers shared by the formats
# ----------------------------------------------------------------------------------------------------------


def new_id(prefix: str, nbytes: int = 12) -> str:
    """A fresh id such as `call_3f9a...`: [A-Za-z0-9_] only, so every format accepts it."""
    return f"{prefix}_{unique_hex(nbytes)}"


SIGNATURE_TAG = "omr1"


def tag_signature(token: str, origin: str) -> str:
    """Wrap a foreign reasoning token so it can travel through a client of another format.

    `origin` is the provider id that minted it. An untagged token is native to the format it arrives in.
    """
    return f"{SIGNATURE_TAG}.{origin}.{token}"


def untag_signature(token: str) -> tuple[str | None, str]:
    """Split a token into (origin, raw token); origin is None for an untagged (native) token."""
    if token.startswith(SIGNATURE_TAG + "."):
        rest = token[len(SIGNATURE_TAG) + 1 :]
        origin, sep, raw = rest.partition(".")
        if sep:
            return origin, raw
    return None, token


def parse_data_url(url: str) -> tuple[str | None, str] | None:
    """`data:<mime>;base64,<payload>` -> (mime, payload); None when `url` is not a base64 data URL."""
    if not url.startswith("data:"):
        return None
    head, sep, payload = url[5:].partition(",")
    if not sep or not payload:
        return None
    params = head.split(";")
    if "base64" not in params[1:]:
        return None
    return (params[0] or None), payload


def data_url(media_type: str | None, data: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data}"


def is_valid_base64(data: str) -> bool:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def arguments_object(arguments: str) -> JsonObj:
    """Tool-call arguments as an object for formats that need one; anything else becomes {}."""
    from omniroute import JSONDecodeError, loads

    if not arguments.strip():
        return {}
    try:
        value = loads(arguments)
    except JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def arguments_text(arguments: JsonObj | None) -> str:
    return dumps_str(arguments if arguments is not None else {})


def merge_usage(old: Usage | None, new: Usage) -> Usage:
    """Combine cumulative usage snapshots: later non-zero fields win."""
    if old is None:
        return new
    return Usage(
        input_tokens=new.input_tokens or old.input_tokens,
        output_tokens=new.output_tokens or old.output_tokens,
        cached_tokens=new.cached_tokens or old.cached_tokens,
        cache_write_tokens=new.cache_write_tokens or old.cache_write_tokens,
        reasoning_tokens=new.reasoning_tokens or old.reasoning_tokens,
        estimated=new.estimated and old.estimated,
    )


def has_tool_calls(parts: list[Part]) -> bool:
    return any(isinstance(p, ToolCallPart) for p in parts)


def effective_stop_reason(reason: StopReason, saw_tool_call: bool) -> StopReason:
    """Decide the stop reason from what was actually emitted: tool calls present -> tool_calls,
    except when the output was cut by the token limit (then the truncation must stay visible)."""
    if saw_tool_call and reason in ("stop", "stop_sequence"):
        return "tool_calls"
    if not saw_tool_call and reason == "tool_calls":
        return "stop"
    return reason


# ----------------------------------------------------------------------------------------------------------
# stream <-> response
# ----------------------------------------------------------------------------------------------------------


class StreamAccumulator:
    """Builds a ChatResponse from IR stream events (a non-streaming client on a streaming upstream)."""

    def __init__(self) -> None:
        self.response = ChatResponse(id="", model="")
        self._calls: dict[int, ToolCallPart] = {}
        self._args: dict[int, list[str]] = {}
        self._thinking: ThinkingPart | None = None
        self._text: list[str] | None = None
        self._refusal: list[str] | None = None
        self.finished = False

    def _close_runs(self, keep: str = "") -> None:
        r = self.response
        if keep != "text" and self._text is not None:
            r.parts.append(TextPart("".join(self._text)))
            self._text = None
        if keep != "refusal" and self._refusal is not None:
            r.parts.append(RefusalPart("".join(self._refusal)))
            self._refusal = None
        if keep != "thinking" and self._thinking is not None:
            r.parts.append(self._thinking)
            self._thinking = None

    def feed(self, ev: StreamEvent) -> None:
        r = self.response
        if isinstance(ev, StreamStart):
            r.id, r.model = ev.id, ev.model
            if ev.usage is not None:
                r.usage = merge_usage(r.usage, ev.usage)
        elif isinstance(ev, TextDelta):
            self._close_runs("text")
            if self._text is None:
                self._text = []
            self._text.append(ev.text)
        elif isinstance(ev, RefusalDelta):
            self._close_runs("refusal")
            if self._refusal is None:
                self._refusal = []
            self._refusal.append(ev.text)
        elif isinstance(ev, ThinkingDelta):
            self._close_runs("thinking")
            if self._thinking is None:
                self._thinking = ThinkingPart()
            self._thinking.text += ev.text
        elif isinstance(ev, ThinkingSignature):
            self._close_runs("thinking")
            if self._thinking is None:
                self._thinking = ThinkingPart()
            self._thinking.signature = ev.signature
            self._thinking.origin = ev.origin
            r.parts.append(self._thinking)
            self._thinking = None
        elif isinstance(ev, RedactedThinking):
            self._close_runs()
            r.parts.append(ThinkingPart(signature=ev.data, redacted=True, origin=ev.origin))
        elif isinstance(ev, ToolCallStart):
            self._close_runs()
            call = ToolCallPart(id=ev.id, name=ev.name, arguments="", kind=ev.kind)
            self._calls[ev.index] = call
            self._args[ev.index] = []
            r.parts.append(call)
        elif isinstance(ev, ToolCallDelta):
            self._args.setdefault(ev.index, []).append(ev.arguments)
        elif isinstance(ev, ToolCallEnd):
            ended = self._calls.get(ev.index)
            if ended is not None:
                ended.arguments = "".join(self._args.get(ev.index, ()))
                ended.signature, ended.origin = ev.signature, ev.origin
        elif isinstance(ev, OpaqueBlock):
            self._close_runs()
            r.parts.append(OpaquePart(ev.format, ev.data))
        elif isinstance(ev, UsageUpdate):
            r.usage = merge_usage(r.usage, ev.usage)
        elif isinstance(ev, Finish):
            self._close_runs()
            r.stop_reason, r.stop_sequence = ev.stop_reason, ev.stop_sequence
            self.finished = True

    def result(self) -> ChatResponse:
        self._close_runs()
        for index, call in self._calls.items():
            if not call.arguments and self._args.get(index):
                call.arguments = "".join(self._args[index])
        return self.response


def response_events(resp: ChatResponse) -> list[StreamEvent]:
    """The stream a ChatResponse would have been (a streaming client on a non-streaming upstream)."""
    events: list[StreamEvent] = [StreamStart(id=resp.id, model=resp.model)]
    index = 0
    for part in resp.parts:
        if isinstance(part, TextPart):
            events.append(TextDelta(part.text))
        elif isinstance(part, RefusalPart):
            events.append(RefusalDelta(part.text))
        elif isinstance(part, ThinkingPart):
            if part.redacted:
                events.append(RedactedThinking(part.signature or "", part.origin))
                continue
            if part.text:
                events.append(ThinkingDelta(part.text))
            if part.signature:
                events.append(ThinkingSignature(part.signature, part.origin))
        elif isinstance(part, ToolCallPart):
            events.append(ToolCallStart(index, part.id, part.name, part.kind))
            events.append(ToolCallDelta(index, part.arguments))
            events.append(ToolCallEnd(index, part.signature, part.origin))
            index += 1
        elif isinstance(part, OpaquePart):
            events.append(OpaqueBlock(part.format, part.data))
    events.append(Finish(resp.stop_reason, resp.stop_sequence))
    if resp.usage is not None:
        events.append(UsageUpdate(resp.usage))
    return events


# ----------------------------------------------------------------------------------------------------------
# token estimate
# ----------------------------------------------------------------------------------------------------------

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English and code with BPE tokenizers
IMAGE_TOKENS = 1000  # a mid-size image in Anthropic's and OpenAI's own accounting is ~800-1600 tokens


def estimate_tokens(req: ChatRequest) -> int:
    """A documented estimate for count_tokens on upstreams that cannot count: characters / 4 over all
    text, tool schemas and arguments, plus a flat 1000 per image or document, plus 4 per message."""
    chars = sum(len(p.text) for p in req.system)
    extra = 0
    for m in req.messages:
        extra += 4
        for p in m.parts:
            chars += _part_chars(p)
            if isinstance(p, (ImagePart, FilePart)):
                extra += IMAGE_TOKENS
            elif isinstance(p, ToolResultPart):
                extra += sum(IMAGE_TOKENS for c in p.content if not isinstance(c, TextPart))
    for t in req.tools:
        chars += len(t.name) + len(t.description or "") + len(dumps_str(t.parameters or {}))
    return max(1, chars // CHARS_PER_TOKEN + extra)


def _part_chars(p: Part) -> int:
    if isinstance(p, (TextPart, RefusalPart, ThinkingPart)):
        return len(p.text)
    if isinstance(p, ToolCallPart):
        return len(p.name) + len(p.arguments)
    if isinstance(p, ToolResultPart):
        return sum(len(c.text) for c in p.content if isinstance(c, TextPart))
    return 0


def estimate_text_tokens(text: str) -> int:
    return max(0, len(text) // CHARS_PER_TOKEN)


__all__ = [
    "CONTENT_EVENTS",
    "FORMATS",
    "AudioPart",
    "ChatRequest",
    "ChatResponse",
    "Context",
    "FilePart",
    "Finish",
    "FormatId",
    "GatewayError",
    "ImagePart",
    "Message",
    "OpaqueBlock",
    "OpaquePart",
    "Part",
    "ReasoningConfig",
    "RedactedThinking",
    "RefusalDelta",
    "RefusalPart",
    "ResponseFormat",
    "StopReason",
    "StreamAccumulator",
    "StreamEvent",
    "StreamStart",
    "TargetCaps",
    "TextDelta",
    "TextPart",
    "ThinkingDelta",
    "ThinkingPart",
    "ThinkingSignature",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallPart",
    "ToolCallStart",
    "ToolChoice",
    "ToolResultPart",
    "ToolSpec",
    "Usage",
    "UsageUpdate",
]

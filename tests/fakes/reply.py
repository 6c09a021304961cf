"""What a fake upstream answers: one scripted `Reply`, rendered by each format module in its own wire shape.

A Reply is frozen so the bytes rendered from it can be cached on it (`_cache`, keyed by format, stream mode,
model and usage flag): the benchmark's instant paths then cost one dict lookup per request. Make variants
with `dataclasses.replace`.

Fault counts (`reset_after_chunks`, `stall_after_chunks`, `malformed_after_chunks`,
`midstream_error_after_chunks`) count *frames*: the format's own stream events as they go on the wire (an
OpenAI Chat chunk, an Anthropic or Responses event, a Gemini chunk or JSON-array element), start events
included. N = 0 means "right after the status line and headers". On a non-streaming answer the reset and
stall faults send the headers and half the body first, and `malformed_after_chunks` sends a truncated
JSON body with status 200.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TEXT = "Hello from the fake upstream"
STOP_REASONS = ("stop", "length", "tool_calls", "content_filter")


@dataclass(frozen=True)
class Usage:
    """Token counts in OpenAI's sense: `input` includes `cached` and `cache_write`, `output` includes
    `reasoning`. Each format renders them in its own definition (Anthropic input excludes the cache,
    Gemini candidates exclude thoughts)."""

    input: int = 12
    output: int = 7
    cached: int = 0
    reasoning: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Defaults give a plain successful text reply."""

    text: str = DEFAULT_TEXT
    chunks: int = 5  # pieces the text (and thinking) is split into when streaming
    thinking: str | None = None  # reasoning text; "" gives an empty thinking block (Anthropic)
    signature: str | None = None  # opaque reasoning token: Anthropic signature, Gemini thoughtSignature,
    # Responses encrypted_content
    tool_calls: Sequence[tuple[str, Mapping[str, Any]]] = ()  # (name, arguments)
    args_chunks: int = 3  # pieces each tool call's argument JSON is split into when streaming
    usage: Usage | None = field(default_factory=Usage)
    # One of STOP_REASONS (mapped per format); None: "tool_calls" if any, else "stop". Any other string is
    # sent verbatim where the format has a reason field (e.g. "pause_turn", "RECITATION").
    stop_reason: str | None = None

    # An error answer: status >= 400 renders the format's error body.
    status: int = 200
    error: str | None = None  # message; also used by the mid-stream error event
    error_type: str | None = None  # OpenAI `type`, Anthropic `error.type`, Gemini `status`
    error_code: str | None = None  # OpenAI/Responses `code`, Gemini ErrorInfo reason
    retry_delay: str | None = None  # Gemini RetryInfo.retryDelay, e.g. "17s"
    headers: Mapping[str, str] = field(default_factory=dict)  # extra response headers

    # Timing and faults.
    first_byte_delay_s: float = 0.0  # before the status line
    first_chunk_delay_s: float = 0.0  # streams: after the headers, before the first frame
    pace_s: float = 0.0  # between stream frames
    hang: bool = False  # read the request, never answer
    drop: bool = False  # read the request, then reset the connection without answering
    reset_after_chunks: int | None = None  # abort the TCP connection (RST) after N frames
    stall_after_chunks: int | None = None  # stop sending after N frames, keep the connection open
    malformed_after_chunks: int | None = None  # a malformed data line after N frames, then carry on
    midstream_error_after_chunks: int | None = None  # the format's in-band error after N frames, then end

    # Stream shape quirks.
    ping_every: int | None = None  # Anthropic: a `ping` event after every N frames
    interleave_tool_calls: bool = False  # OpenAI Chat: parallel call fragments with indices 0,1,0,1
    split_id_and_name: bool = False  # OpenAI Chat: a call's id and name arrive in different chunks
    content_and_finish_in_one_chunk: bool = False  # OpenAI Chat: last delta carries finish_reason
    include_usage: bool | None = None  # None: OpenAI Chat follows stream_options.include_usage;
    # False also drops usage from Responses and Gemini streams

    raw: bytes | None = None  # sent verbatim (status line included), then the connection is closed
    sse_split: int | None = None  # send every frame in pieces of N bytes, each its own write

    _cache: dict[tuple[object, ...], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @property
    def finish(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_calls" if self.tool_calls else "stop"

    @property
    def instant_stream(self) -> bool:
        """A stream with nothing to wait for or cut: it can be sent from precomputed chunks."""
        return not (self.pace_s or self.first_chunk_delay_s or self.sse_split)

    @property
    def needs_watch(self) -> bool:
        """The answer waits on a timer or forever, so a client leaving must be noticed by reading."""
        return bool(
            self.first_byte_delay_s > 0 or self.pace_s > 0 or self.hang or self.stall_after_chunks is not None
        )

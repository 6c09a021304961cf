"""One module per wire format, all with the same shape (the `WireFormat` protocol below).

    openai_chat        "openai-chat"        POST /chat/completions
    openai_responses   "openai-responses"   POST /responses
    anthropic          "anthropic"          POST /messages
    gemini             "gemini"             POST /models/{model}:generateContent | :streamGenerateContent

`prepare_passthrough(body)` fixes a same-format request before it is forwarded as is (e.g. Responses
input item ids that cannot be resolved with store=false); most formats return the body unchanged.

Every function is pure: dicts/bytes in, dicts/bytes out, no sockets, no clock beyond ids and timestamps.
`get_format(id)` returns the module for a format id; a test checks every id resolves and that each
module has every member of the protocol.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from omniroute import GatewayError, JsonObj
    from omniroute_providers.formats.sse import SSEEvent
    from omniroute_providers.ir import ChatRequest, ChatResponse, Context, StreamEvent, Usage


class StreamParser(Protocol):
    """Upstream SSE events of this format -> IR stream events (see the grammar in ir.py)."""

    def __init__(self, ctx: Context) -> None: ...
    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...  # raises GatewayError on in-band errors
    def close(self) -> list[StreamEvent]: ...  # upstream ended: flush buffered tool calls etc.


class StreamRenderer(Protocol):
    """IR stream events -> bytes of this format for the client, written as they come."""

    def __init__(self, ctx: Context) -> None: ...
    def feed(self, event: StreamEvent) -> bytes: ...
    def close(self) -> bytes: ...  # normal end: close open blocks, final usage, terminator
    def fail(self, error: GatewayError) -> bytes: ...  # broken mid-stream: the format's error frame


class UsageTap(Protocol):
    """Passthrough (client format == upstream format): read usage off the stream without re-encoding.

    Must be cheap: look at an event's bytes with a substring test and decode only the events that carry
    usage. `usage` is the best knowledge so far.
    """

    usage: Usage | None

    def __init__(self) -> None: ...
    def feed(self, event: SSEEvent) -> None: ...


class WireFormat(Protocol):
    FORMAT_ID: str
    STREAM_CONTENT_TYPE: str

    def parse_request(self, body: JsonObj) -> ChatRequest: ...
    def render_request(self, req: ChatRequest, ctx: Context) -> JsonObj: ...
    def parse_response(self, body: JsonObj, ctx: Context) -> ChatResponse: ...
    def render_response(self, resp: ChatResponse, ctx: Context) -> JsonObj: ...
    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError: ...
    def render_error(self, error: GatewayError) -> tuple[int, dict[str, str], bytes]: ...
    def response_usage(self, body: JsonObj) -> Usage | None: ...
    def request_path(self, model: str, stream: bool) -> str: ...
    def prepare_passthrough(self, body: JsonObj) -> JsonObj: ...

    StreamParser: type[StreamParser]
    StreamRenderer: type[StreamRenderer]
    UsageTap: type[UsageTap]


MODULES: dict[str, str] = {
    "openai-chat": "openai_chat",
    "openai-responses": "openai_responses",
    "anthropic": "anthropic",
    "gemini": "gemini",
}

_loaded: dict[str, ModuleType] = {}


def get_format(format_id: str) -> WireFormat:
    """The module implementing `format_id`; KeyError for an unknown id."""
    mod = _loaded.get(format_id)
    if mod is None:
        mod = importlib.import_module(f"{__name__}.{MODULES[format_id]}")
        _loaded[format_id] = mod
    return mod  # type: ignore[return-value,unused-ignore]  # modules satisfy the protocol

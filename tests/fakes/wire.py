"""Byte-level helpers shared by the fake's format renderers: JSON, SSE frames, HTTP/1.1 heads and chunks.

The fakes are the test oracle, so nothing here comes from the gateway: JSON is the stdlib's, frames and
heads are written by hand.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

JsonDict = dict[str, Any]

CREATED_AT = 1_700_000_000  # a fixed "created" stamp: the fakes never read the wall clock
LAST_CHUNK = b"0\r\n\r\n"
EXTRA_REASONS = {529: "Overloaded", 499: "Client Closed Request"}

_ids = itertools.count(1)


def next_id() -> int:
    """A process-wide counter for response and call ids (unique per rendering, not per request)."""
    return next(_ids)


def dumps(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def sse(data: object, event: str | None = None) -> bytes:
    payload = dumps(data)
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def split_text(text: str, pieces: int) -> list[str]:
    """`text` cut into at most `pieces` non-empty, near-equal parts (none for the empty string)."""
    if not text:
        return []
    pieces = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), pieces)
    out, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = EXTRA_REASONS.get(status, "Unknown")
    return b"HTTP/1.1 %d %s\r\n" % (status, reason.encode())


def header_lines(headers: Iterable[tuple[str, str]]) -> bytes:
    return b"".join(k.encode("latin-1") + b": " + v.encode("latin-1") + b"\r\n" for k, v in headers)


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk of a chunked body."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


def pieces_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@dataclass(frozen=True)
class RenderContext:
    """What a rendering depends on besides the Reply."""

    model: str
    include_usage: bool  # OpenAI Chat: the final usage chunk is sent
    gemini_sse: bool = True  # Gemini stream: SSE (alt=sse) rather than a JSON array


@dataclass(frozen=True)
class Rendered:
    """An answer ready for the socket: `head` is the status line plus headers without framing headers
    (content-length / transfer-encoding / connection) and without the blank line."""

    status: int
    head: bytes
    body: bytes | None  # a whole body (non-streaming and error answers)
    frames: tuple[bytes, ...] = ()  # stream frames, each written on its own
    tail: bytes = b""  # bytes closing a stream that ended normally (Gemini's "]")
    chunked: tuple[bytes, ...] = ()  # `frames` in HTTP chunk framing, precomputed for the fast path

    @property
    def streaming(self) -> bool:
        return self.body is None

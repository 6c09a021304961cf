"""Server-sent events, sans-I/O: bytes in any split -> events; events -> bytes.

The decoder follows the WHATWG event-stream rules that matter for LLM APIs: lines end in LF, CRLF or CR;
`data:` lines of one event join with "\\n"; a blank line dispatches; lines starting with ":" are comments
(keep-alives); an event with no data is dropped. The result does not depend on how the bytes were split.

Data is kept as bytes: the hot path hands it to a JSON decoder (or forwards it) without a str round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_EVENT_BYTES = 16 * 1024 * 1024  # one event larger than this is a broken or hostile upstream


class SSEError(ValueError):
    """The stream is not a usable event stream (an event over MAX_EVENT_BYTES)."""


@dataclass(slots=True)
class SSEEvent:
    data: bytes
    event: str | None = None  # the `event:` field; None when absent
    id: str | None = None


class SSEDecoder:
    __slots__ = ("_buf", "_data", "_event", "_id", "_pending_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self._event: str | None = None
        self._id: str | None = None
        self._pending_cr = False  # the previous chunk ended in CR: a leading LF now is part of CRLF

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes; return the events they completed (possibly none)."""
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = chunk.endswith(b"\r")
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = buf[start:end]
            start = end + 1
            if not line:
                if self._data:
                    events.append(SSEEvent(b"\n".join(self._data), self._event, self._id))
                self._data = []
                self._event = None
                continue
            self._field(line)
        self._buf = buf[start:]
        if len(self._buf) > MAX_EVENT_BYTES or sum(map(len, self._data)) > MAX_EVENT_BYTES:
            raise SSEError("event stream line exceeds the size limit")
        return events

    def _field(self, line: bytes) -> None:
        if line[:1] == b":":
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            self._id = value.decode("utf-8", "replace")

    def close(self) -> list[SSEEvent]:
        """End of stream: a final event not followed by a blank line is still delivered."""
        events: list[SSEEvent] = []
        if self._buf:
            self._field(self._buf.rstrip(b"\r"))
            self._buf = b""
        if self._data:
            events.append(SSEEvent(b"\n".join(self._data), self._event, self._id))
            self._data = []
        return events


def encode(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame. `data` must not contain newlines (compact JSON never does)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"

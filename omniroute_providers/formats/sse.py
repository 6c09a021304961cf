"""Server-sent events, sans-I/O: bytes in any split -> events; events -> bytes.

The decoder follows the WHATWG event-stream rules that matter for LLM APIs: lines end in LF, CRLF or CR;
`data:` lines of one event join with "\\n"; a blank line dispatches; lines starting with ":" are comments
(keep-alives); an event with no data is dropped. The result does not depend on how the bytes were split.

It works a block at a time: everything up to the last blank line of the buffer is complete events, cut with
`bytes.split` (C speed) — this runs on every chunk of every stream, including passthrough ones.
Data is kept as bytes: the hot path hands it to a JSON decoder (or forwards it) without a str round trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

MAX_EVENT_BYTES = 16 * 1024 * 1024  # one event larger than this is a broken or hostile upstream


class SSEError(ValueError):
    """The stream is not a usable event stream (an event over MAX_EVENT_BYTES)."""


@dataclass(slots=True)
class SSEEvent:
    data: bytes
    event: str | None = None  # the `event:` field; None when absent
    id: str | None = None


def parse_block(block: bytes) -> SSEEvent | None:
    """One event's lines (no blank line inside) -> the event, or None when it carries no data."""
    # What providers send, one `data:` line with or before it an `event:` line, without the line loop
    if block.startswith(b"data: "):
        if b"\n" not in block:
            return SSEEvent(block[6:])
    elif block.startswith(b"event: "):
        nl = block.find(b"\n")
        if nl > 0 and block.startswith(b"data: ", nl + 1) and block.find(b"\n", nl + 1) < 0:
            return SSEEvent(block[nl + 7 :], block[7:nl].decode("utf-8", "replace"))
    data: list[bytes] = []
    event: str | None = None
    ident: str | None = None
    for line in block.split(b"\n"):
        if not line or line[:1] == b":":
            continue
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
        elif name == b"id":
            ident = value.decode("utf-8", "replace")
    if not data:
        return None
    return SSEEvent(data[0] if len(data) == 1 else b"\n".join(data), event, ident)


def iter_events(blob: bytes, start: int = 0) -> Iterator[tuple[SSEEvent, int]]:
    """The events of complete SSE blocks in `blob` from `start`, each with the offset just past it: a
    relay can stop part-way and look at the rest differently."""
    end = len(blob)
    while start < end:
        stop = blob.find(b"\n\n", start)
        if stop < 0:
            stop = end
        if stop > start:
            ev = parse_block(blob[start:stop])
            if ev is not None:
                yield ev, stop + 2
        start = stop + 2


def parse_events(blob: bytes) -> list[SSEEvent]:
    """The events of complete SSE blocks (what SSEDecoder.split returns), in order."""
    events = []
    for block in blob.split(b"\n\n"):
        if block:
            ev = parse_block(block)
            if ev is not None:
                events.append(ev)
    return events


class SSEDecoder:
    __slots__ = ("_buf", "_pending_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._pending_cr = False  # the previous chunk ended in CR: a leading LF now is part of CRLF

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes; return the events they completed (possibly none)."""
        return parse_events(self.split(chunk))

    def split(self, chunk: bytes) -> bytes:
        """Add bytes; return the blocks they completed, unparsed and as received (line ends made LF): a
        relay forwards them whole and parses (parse_events) only the ones it must look into."""
        if self._pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._pending_cr = chunk[-1:] == b"\r"
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + chunk if self._buf else chunk
        # A buffer starting with "\n" after a complete line still forms a blank line with what came before,
        # so search from the start; the previous feed kept any partial line in the buffer.
        end = buf.rfind(b"\n\n")
        if end < 0:
            if len(buf) > MAX_EVENT_BYTES:
                raise SSEError("event stream event exceeds the size limit")
            self._buf = buf
            return b""
        self._buf = buf[end + 2 :]
        return buf[: end + 2] if self._buf else buf

    def close(self) -> list[SSEEvent]:
        """End of stream: a final event not followed by a blank line is still delivered."""
        buf, self._buf = self._buf, b""
        if not buf.strip(b"\n"):
            return []
        return parse_events(buf)


def encode(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame. `data` must not contain newlines (compact JSON never does)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"

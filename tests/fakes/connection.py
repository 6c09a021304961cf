"""One accepted TCP connection of the fake upstream: read requests with h11, write answers as bytes.

h11 parses each request (a fresh h11.Connection per exchange, fed with any bytes read past the previous
request); answers are written from precomputed bytes: one head, then a Content-Length body or HTTP/1.1
chunks, every stream frame in its own write. Faults that are actions happen here: delays and pacing
(trio.sleep only, so MockClock applies), hang, stall, TCP reset, raw bytes, byte-split frames.

A client that closes while an answer is being sent or awaited is reported once per exchange through
`on_client_left`. Waiting answers run beside a reader task that notices EOF; instant answers notice a
departed client through a failed write.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

import h11
import trio

from tests.fakes.reply import Reply
from tests.fakes.wire import LAST_CHUNK, Rendered, chunk, pieces_of

RECV_BYTES = 65536
CLOSE_HEADER = b"connection: close\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class ParsedRequest:
    method: str
    target: str
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes
    arrived: float  # trio.current_time() when the request head was parsed
    keep_alive: bool


class Connection:
    def __init__(self, stream: trio.SocketStream, on_client_left: Callable[[], None]) -> None:
        self.stream = stream
        self.pending = bytearray()  # bytes read past the current request
        self.http11 = True
        self.idle_scope: trio.CancelScope | None = None  # set while waiting for a request's first byte
        self.gone = False  # the client left during the current answer (reported once)
        self.aborted = False  # we reset the connection ourselves
        self._on_client_left = on_client_left

    def client_left(self) -> None:
        if not (self.gone or self.aborted):
            self.gone = True
            self._on_client_left()

    # ---- reading -----------------------------------------------------------------------------------

    async def read_request(self) -> ParsedRequest | None:
        """The next whole request, or None when the client closed (or we were told to stop waiting)."""
        parser = h11.Connection(h11.SERVER)
        idle = not self.pending
        if self.pending:
            parser.receive_data(bytes(self.pending))
            self.pending.clear()
        request: h11.Request | None = None
        arrived = 0.0
        body = bytearray()
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                if idle:
                    with trio.CancelScope() as scope:
                        self.idle_scope = scope
                        data = await self.stream.receive_some(RECV_BYTES)
                    self.idle_scope = None
                    if scope.cancelled_caught:
                        return None
                    idle = False
                else:
                    data = await self.stream.receive_some(RECV_BYTES)
                parser.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
                arrived = trio.current_time()
                if parser.they_are_waiting_for_100_continue:  # curl sends this for bodies over 1 KiB
                    await self.stream.send_all(CONTINUE)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed between requests
                return None
        self.pending += parser.trailing_data[0]
        assert request is not None
        return self._parsed(request, bytes(body), arrived)

    def _parsed(self, request: h11.Request, body: bytes, arrived: float) -> ParsedRequest:
        self.http11 = request.http_version == b"1.1"
        self.gone = False
        headers: dict[str, str] = {}
        for raw_name, raw_value in request.headers:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        keep_alive = self.http11 and "close" not in headers.get("connection", "").lower()
        return ParsedRequest(
            request.method.decode(), request.target.decode("latin-1"), headers, body, arrived, keep_alive
        )

    # ---- answering ---------------------------------------------------------------------------------

    async def respond(self, reply: Reply, rendered: Rendered, close: bool) -> bool:
        """Send the answer; False when the connection must not be reused."""
        if not reply.needs_watch:
            return await self._deliver_counted(reply, rendered, close)
        reusable = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_client, nursery.cancel_scope)
            reusable = await self._deliver_counted(reply, rendered, close)
            nursery.cancel_scope.cancel()
        return reusable and not self.gone

    async def _watch_client(self, scope: trio.CancelScope) -> None:
        """Read while an answer waits on timers: EOF or a reset means the client left."""
        try:
            while data := await self.stream.receive_some(RECV_BYTES):
                self.pending += data
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self.client_left()
        scope.cancel()

    async def _deliver_counted(self, reply: Reply, rendered: Rendered, close: bool) -> bool:
        try:
            return await self._deliver(reply, rendered, close)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.client_left()
            return False

    async def _deliver(self, reply: Reply, rendered: Rendered, close: bool) -> bool:
        if reply.first_byte_delay_s > 0:
            await trio.sleep(reply.first_byte_delay_s)
        if reply.hang:
            await trio.sleep_forever()
        if reply.drop:
            await self.abort()
            return False
        if reply.raw is not None:
            await self.stream.send_all(reply.raw)
            return False
        if rendered.streaming:
            return await self._send_stream(reply, rendered, close)
        return await self._send_body(reply, rendered, close)

    async def _send_body(self, reply: Reply, rendered: Rendered, close: bool) -> bool:
        assert rendered.body is not None
        data = rendered.body
        head = (
            rendered.head + b"content-length: %d\r\n" % len(data) + (CLOSE_HEADER if close else b"") + b"\r\n"
        )
        fault = _fault_at(reply)
        if fault is not None:
            await self.stream.send_all(head + data[: len(data) // 2])
            return await self._fault(reply)
        if reply.sse_split:
            await self.stream.send_all(head)
            for piece in pieces_of(data, reply.sse_split):
                await self.stream.send_all(piece)
        else:
            await self.stream.send_all(head + data)
        return not close

    async def _send_stream(self, reply: Reply, rendered: Rendered, close: bool) -> bool:
        close = close or not self.http11  # HTTP/1.0 has no chunking: the close ends the body
        framing = b"transfer-encoding: chunked\r\n" if self.http11 else b""
        head = rendered.head + framing + (CLOSE_HEADER if close else b"") + b"\r\n"
        fault = _fault_at(reply)
        if fault is None and reply.instant_stream and self.http11:
            await self._send_chunked_fast(head, rendered)
            return not close
        await self.stream.send_all(head)
        for i, frame in enumerate(rendered.frames):
            # Pace first, so a client reading at the pace has taken frame N before a fault strikes.
            if i and reply.pace_s:
                await trio.sleep(reply.pace_s)
            elif i == 0 and reply.first_chunk_delay_s > 0:
                await trio.sleep(reply.first_chunk_delay_s)
            if i == fault:
                return await self._fault(reply)
            await self._send_frame(frame, reply.sse_split)
        if rendered.tail:
            await self._send_frame(rendered.tail, None)
        if fault is not None:  # the fault comes after the last frame, before the end of the body
            return await self._fault(reply)
        if self.http11:
            await self.stream.send_all(LAST_CHUNK)
        return not close

    async def _send_chunked_fast(self, head: bytes, rendered: Rendered) -> None:
        """The instant path: the head goes with the first frame, the end of the body with the last."""
        end = (chunk(rendered.tail) if rendered.tail else b"") + LAST_CHUNK
        frames = rendered.chunked
        if len(frames) <= 1:
            await self.stream.send_all(head + b"".join(frames) + end)
            return
        await self.stream.send_all(head + frames[0])
        for i in range(1, len(frames) - 1):
            await self.stream.send_all(frames[i])
        await self.stream.send_all(frames[-1] + end)

    async def _send_frame(self, frame: bytes, split: int | None) -> None:
        pieces = pieces_of(frame, split) if split else (frame,)
        for piece in pieces:
            await self.stream.send_all(chunk(piece) if self.http11 else piece)

    async def _fault(self, reply: Reply) -> bool:
        if reply.reset_after_chunks is not None:
            await self.abort()
            return False
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def abort(self) -> None:
        """Close with SO_LINGER 0 so the peer sees a TCP reset, not an orderly end."""
        self.aborted = True
        sock = self.stream.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        await trio.lowlevel.checkpoint()


def _fault_at(reply: Reply) -> int | None:
    if reply.reset_after_chunks is not None:
        return reply.reset_after_chunks
    return reply.stall_after_chunks

"""Talking to providers: a pooled HTTP/1.1 client on trio + h11, and the one place transport errors become
gateway errors.

Why not httpx on the hot path: measured on this project's 2-core box, an httpx AsyncClient request costs
~530 us of CPU, httpcore alone ~310 us, and this client ~140 us, against a 1 ms budget for the whole gateway
round trip. Owning the client also lets the egress guard pin the resolved address and lets a cancelled
request close its socket at once. (httpx remains the client the tests and the benchmark drive us with.)

Guarantees:
* every failure surfaces as a GatewayError subclass (UpstreamError, UpstreamTimeoutError, ...) with the
  failure class routing needs; nothing from trio/h11/ssl/socket escapes this module;
* connect, first-byte and idle timeouts are separate, and the caller's cancel scope (client gone, request
  deadline) cancels the upstream call: a response not read to the end is closed, never pooled, so the
  provider sees the connection drop;
* the address is resolved once per connection, checked by the egress guard, and the socket connects to that
  exact address (no second lookup a rebinding DNS server could answer differently).
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import h11
import trio

from omniroute import (
    UPSTREAM_CONNECT_TIMEOUT_S,
    UPSTREAM_FIRST_BYTE_TIMEOUT_S,
    UPSTREAM_IDLE_TIMEOUT_S,
    UpstreamError,
    UpstreamTimeoutError,
)
from omniroute_providers import sockio

# The egress guard lives in egress.py (marked edit: moved there by the security change).
from omniroute_providers.egress import (
    EgressBlockedError,  # noqa: F401 - re-exported: callers import it from here
    UpstreamConnectError,
    address_is_public,  # noqa: F401 - re-exported: callers import it from here
    resolve,
    split_url,
)

log = logging.getLogger("omniroute.upstream")

RECEIVE_BYTES = 64 * 1024
MERGE_READS = 8  # reads of already-arrived body bytes joined into one piece for the relay, at most
MAX_IDLE_PER_HOST = 32
POOL_IDLE_S = 30.0  # providers close idle keep-alive connections after ~60 s; stay under that
MAX_ERROR_BODY_BYTES = 256 * 1024  # error bodies are read whole; larger ones are cut


# ----------------------------------------------------------------------------------------------------------
# TLS
# ----------------------------------------------------------------------------------------------------------

_ssl_context: ssl.SSLContext | None = None


def ssl_context() -> ssl.SSLContext:
    """The system trust store; certifi's bundle (read as data, so it works from inside a zip) when the
    system store is empty, as on minimal containers."""
    global _ssl_context
    if _ssl_context is None:
        ctx = ssl.create_default_context()
        if not ctx.cert_store_stats().get("x509_ca"):
            try:
                import certifi

                ctx.load_verify_locations(cadata=certifi.contents())
            except (ImportError, ssl.SSLError, OSError) as exc:  # pragma: no cover - depends on the host
                log.warning("no CA certificates found (system store empty, certifi unusable: %s)", exc)
        ctx.set_alpn_protocols(["http/1.1"])
        _ssl_context = ctx
    return _ssl_context


# ----------------------------------------------------------------------------------------------------------
# connections and the pool
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int
    allow_private: bool

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_origin(url: str, *, allow_private: bool) -> tuple[Origin, str]:
    """(origin, path-with-query) of an absolute http(s) URL; InvalidRequestError for anything else."""
    scheme, host, port, target = split_url(url)
    return Origin(scheme, host, port, allow_private), target


class _Conn:
    __slots__ = ("h11", "idle_since", "origin", "reused", "stream")

    def __init__(self, origin: Origin, stream: trio.abc.Stream) -> None:
        self.origin = origin
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.idle_since = 0.0
        self.reused = False

    async def close(self) -> None:
        await _aclose(self.stream)


_HEX_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
# a whole size line: the fast path takes complete chunks with one match each
_SIZE_LINE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r\n")


class ChunkedDecoder:
    """The chunked transfer coding (RFC 9112 7.1), sans-I/O: raw bytes in any split -> body bytes.

    h11 parses the response head; the body of a streamed answer is decoded here because h11 spends ~8 us of
    Python per chunk and a streaming provider sends one chunk per event. Chunk extensions and trailers are
    read and ignored. Raises UpstreamError on anything malformed.
    """

    __slots__ = ("_buf", "_need", "_state", "done")
    MAX_LINE = 4096

    def __init__(self, initial: bytes = b"") -> None:
        self._buf = initial
        self._need = 0
        self._state = 0  # 0 size line, 1 data, 2 CRLF after data, 3 trailer lines, 4 done
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        pos, end, state = 0, len(buf), self._state
        if state == 0:
            # Complete chunks, one regex match each; anything else (a partial chunk, the last chunk,
            # something malformed) is left to the state machine below, from the same position.
            m = _SIZE_LINE.match(buf)
            while m is not None:
                start = m.end()
                stop = start + int(m[1], 16)
                if stop == start or buf[stop : stop + 2] != b"\r\n":
                    break
                out.append(buf[start:stop])
                pos = stop + 2
                m = _SIZE_LINE.match(buf, pos)
        while True:
            if state == 0:
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    if end - pos > self.MAX_LINE:
                        raise UpstreamError("malformed chunked body from the provider (size line)")
                    break
                token = buf[pos:nl].split(b";", 1)[0].strip()
                if not _HEX_SIZE.fullmatch(token):
                    raise UpstreamError("malformed chunked body from the provider (size)")
                size = int(token, 16)
                pos = nl + 2
                state, self._need = (3, 0) if size == 0 else (1, size)
            elif state == 1:
                take = min(end - pos, self._need)
                if take:
                    out.append(buf[pos : pos + take])
                    pos += take
                    self._need -= take
                if self._need:
                    break
                state = 2
            elif state == 2:
                if end - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise UpstreamError("malformed chunked body from the provider (chunk end)")
                pos += 2
                state = 0
            elif state == 3:
                if end - pos < 2:
                    break
                if buf[pos : pos + 2] == b"\r\n":  # the blank line that ends the trailers
                    pos += 2
                    state = 4
                    self.done = True
                    break
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    if end - pos > self.MAX_LINE:
                        raise UpstreamError("malformed chunked body from the provider (trailer)")
                    break
                pos = nl + 2
            else:
                break
        self._state = state
        self._buf = buf[pos:] if pos < end else b""
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)


class UpstreamResponse:
    """Status and headers are read; the body is read with `read()` or iterated with `iter_bytes()`.

    `aclose()` must be called (the pipeline does it in a finally): a connection is reused only when its
    response was read to the end.
    """

    __slots__ = ("_chunked", "_client", "_conn", "_done", "headers", "idle_timeout", "status")

    def __init__(
        self,
        client: UpstreamClient,
        conn: _Conn,
        status: int,
        headers: dict[str, str],
        idle_timeout: float,
        chunked: ChunkedDecoder | None = None,
    ) -> None:
        self._client = client
        self._conn: _Conn | None = conn
        self.status = status
        self.headers = headers
        self.idle_timeout = idle_timeout
        self._done = False
        self._chunked = chunked  # set when we decode the body ourselves (see ChunkedDecoder)

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive. UpstreamTimeoutError after `idle_timeout` of silence;
        UpstreamError when the connection breaks before the end of the body. (An iterator object, not an
        async generator: abandoning it half-way needs no finalizer.)"""
        return _BodyChunks(self)

    async def _next_chunk(self) -> bytes | None:
        """Everything of the body that has arrived, as one piece: when the provider's frames come in
        faster than we forward them, they leave in one write instead of one syscall each (and pass the
        relay's parsing once). A provider pacing its frames still gets each one forwarded the moment it
        arrives: only what is already in the socket's buffer is added, never waited for."""
        conn = self._conn
        if conn is None or self._done:
            return None
        if self._chunked is not None:
            return await self._next_chunked(conn, self._chunked)
        pieces: list[bytes] = []
        while True:
            event = conn.h11.next_event()
            if event is h11.NEED_DATA:
                if pieces:
                    more = _receive_nowait(conn) if len(pieces) < MERGE_READS else None
                    if not more:
                        return b"".join(pieces) if len(pieces) > 1 else pieces[0]
                    data = more
                else:
                    data = await self._receive_within_idle(conn)
                try:
                    conn.h11.receive_data(data)
                except h11.RemoteProtocolError as exc:
                    raise UpstreamError(f"malformed HTTP from the provider: {exc}") from None
                continue
            if type(event) is h11.Data:
                pieces.append(bytes(event.data))
                continue
            if type(event) is h11.EndOfMessage:
                self._done = True
                return b"".join(pieces) if pieces else None
            if type(event) is h11.ConnectionClosed:
                if pieces:
                    return b"".join(pieces)  # deliver what came; the next call reports the break
                raise UpstreamError("the provider closed the connection before the response ended")

    async def _next_chunked(self, conn: _Conn, decoder: ChunkedDecoder) -> bytes | None:
        body = decoder.feed(b"")
        while not body and not decoder.done:
            data = await self._receive_within_idle(conn)
            if not data:
                raise UpstreamError("the provider closed the connection before the response ended")
            body = decoder.feed(data)
        reads = 1
        while not decoder.done and reads < MERGE_READS and (more := _receive_nowait(conn)):
            body += decoder.feed(more)
            reads += 1
        if decoder.done:
            self._done = True
        return body or None

    async def _receive_within_idle(self, conn: _Conn) -> bytes:
        data = _receive_nowait(conn)  # already here: no timer to set up
        if data is not None:
            return data
        with trio.move_on_after(self.idle_timeout):
            return await _receive(conn)
        raise UpstreamTimeoutError(f"the provider went silent for {self.idle_timeout:g}s mid-response")

    async def read(self, limit: int = 64 * 1024 * 1024) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise UpstreamError(f"the provider's response exceeds {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._chunked is not None:
            # h11 never saw this body: give the connection a fresh state machine for its next request.
            conn.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
            self._client._release(conn)
            return
        if self._done and conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            try:
                conn.h11.start_next_cycle()
            except h11.LocalProtocolError:
                await conn.close()
                return
            self._client._release(conn)
        else:
            await conn.close()


class _BodyChunks:
    __slots__ = ("_response",)

    def __init__(self, response: UpstreamResponse) -> None:
        self._response = response

    def __aiter__(self) -> _BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._response._next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk


def _receive_nowait(conn: _Conn) -> bytes | None:
    try:
        return sockio.receive_nowait(conn.stream, RECEIVE_BYTES)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise UpstreamError(f"connection to the provider broke: {type(exc).__name__}") from None


async def _receive(conn: _Conn) -> bytes:
    try:
        return await sockio.receive_some(conn.stream, RECEIVE_BYTES)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError) as exc:
        raise UpstreamError(f"connection to the provider broke: {type(exc).__name__}") from None


class UpstreamClient:
    """Shared by every request. Idle connections are kept per origin for reuse."""

    def __init__(
        self,
        *,
        connect_timeout: float = UPSTREAM_CONNECT_TIMEOUT_S,
        first_byte_timeout: float = UPSTREAM_FIRST_BYTE_TIMEOUT_S,
        idle_timeout: float = UPSTREAM_IDLE_TIMEOUT_S,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.first_byte_timeout = first_byte_timeout
        self.idle_timeout = idle_timeout
        self._idle: dict[Origin, list[_Conn]] = {}
        self.opened = 0  # connections opened over the client's life (tests and stats)

    def _release(self, conn: _Conn) -> None:
        conns = self._idle.setdefault(conn.origin, [])
        if len(conns) >= MAX_IDLE_PER_HOST:
            trio.lowlevel.spawn_system_task(conn.close)
            return
        conn.idle_since = trio.current_time()
        conns.append(conn)

    def _take_idle(self, origin: Origin) -> _Conn | None:
        conns = self._idle.get(origin)
        now = trio.current_time()
        while conns:
            conn = conns.pop()
            if now - conn.idle_since < POOL_IDLE_S:
                conn.reused = True
                return conn
            trio.lowlevel.spawn_system_task(conn.close)
        return None

    async def _connect(self, origin: Origin) -> _Conn:
        with trio.move_on_after(self.connect_timeout) as scope:
            addrs = await resolve(origin.host, origin.port, allow_private=origin.allow_private)
            stream: trio.abc.Stream | None = None
            last: Exception | None = None
            for ip in addrs:
                try:
                    stream = await trio.open_tcp_stream(ip, origin.port)
                    break
                except OSError as exc:
                    last = exc
            if stream is None:
                reason = getattr(last, "strerror", None) or str(last)
                raise UpstreamConnectError(f"cannot connect to {origin.host}:{origin.port}: {reason}")
            if origin.scheme == "https":
                tls = trio.SSLStream(
                    stream, ssl_context(), server_hostname=origin.host, https_compatible=True
                )
                try:
                    await tls.do_handshake()
                except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
                    await _aclose(stream)
                    raise UpstreamConnectError(f"TLS with {origin.host} failed: {exc}") from None
                stream = tls
        if scope.cancelled_caught or stream is None:
            raise UpstreamConnectError(f"connecting to {origin.host}:{origin.port} timed out")
        self.opened += 1
        return _Conn(origin, stream)

    async def request(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        allow_private: bool = False,
        first_byte_timeout: float | None = None,
    ) -> UpstreamResponse:
        """Send one request and return once the response headers are in."""
        origin, target = parse_origin(url, allow_private=allow_private)
        wire_headers = [("host", origin.host_header), *headers, ("content-length", str(len(body)))]
        for attempt in range(2):
            conn = self._take_idle(origin) if attempt == 0 else None
            if conn is None:
                conn = await self._connect(origin)
            try:
                return await self._exchange(conn, method, target, wire_headers, body, first_byte_timeout)
            except _StaleConnection:
                await conn.close()
                continue  # the provider had closed this idle connection: nothing was processed, try fresh
            except BaseException:
                await conn.close()
                raise
        raise UpstreamError("the provider keeps closing connections")  # pragma: no cover

    async def _exchange(
        self,
        conn: _Conn,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        first_byte_timeout: float | None,
    ) -> UpstreamResponse:
        c = conn.h11
        data = c.send(h11.Request(method=method, target=target, headers=headers))
        if body:
            data += c.send(h11.Data(data=body))
        data += c.send(h11.EndOfMessage())
        try:
            await sockio.send_all(conn.stream, data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError) as exc:
            if conn.reused:
                raise _StaleConnection() from None
            raise UpstreamError(f"sending to the provider failed: {type(exc).__name__}") from None
        timeout = self.first_byte_timeout if first_byte_timeout is None else first_byte_timeout
        got_bytes = False
        with trio.move_on_after(timeout) as scope:
            while True:
                event = c.next_event()
                if event is h11.NEED_DATA:
                    chunk = await _receive(conn)
                    if not chunk and conn.reused and not got_bytes:
                        raise _StaleConnection()
                    got_bytes = got_bytes or bool(chunk)
                    try:
                        c.receive_data(chunk)
                    except h11.RemoteProtocolError as exc:
                        raise UpstreamError(f"malformed HTTP from the provider: {exc}") from None
                    continue
                if type(event) is h11.Response:
                    headers_out = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
                    chunked = None
                    if "chunked" in headers_out.get("transfer-encoding", "").lower() and method != "HEAD":
                        chunked = ChunkedDecoder(conn.h11.trailing_data[0])
                    return UpstreamResponse(
                        self, conn, event.status_code, headers_out, self.idle_timeout, chunked
                    )
                if type(event) is h11.InformationalResponse:
                    continue
                if type(event) is h11.ConnectionClosed:
                    if conn.reused and not got_bytes:
                        raise _StaleConnection()
                    raise UpstreamError("the provider closed the connection without answering")
        if scope.cancelled_caught:
            raise UpstreamTimeoutError(f"no response from the provider within {timeout:g}s")
        raise UpstreamError("no response from the provider")  # pragma: no cover

    async def aclose(self) -> None:
        conns = [c for lst in self._idle.values() for c in lst]
        self._idle.clear()
        for conn in conns:
            await conn.close()


class _StaleConnection(Exception):
    pass


async def _aclose(stream: trio.abc.Stream) -> None:
    broken = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)
    with trio.CancelScope(shield=True), trio.move_on_after(1.0), contextlib.suppress(*broken):
        await stream.aclose()

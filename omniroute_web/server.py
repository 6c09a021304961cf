"""The HTTP/1.1 server: trio sockets + h11, and nothing else.

h11 is the protocol state machine; this module is the thin loop around it that h11's own trio example
describes, plus what that example lists as its shortcuts:

* limits: header block size (h11's buffer cap) and count, body size (checked against Content-Length before
  reading and while reading), a connection cap (503 past it);
* deadlines: the header block must arrive within `header_timeout_s` (slowloris), a request body may not
  stall longer than `body_idle_timeout_s`, idle keep-alive connections close after `keepalive_timeout_s`;
* `Expect: 100-continue` answered only when the application actually reads the body;
* responses are either whole (Content-Length) or streamed (chunked), each `write` flushed on its own;
* a client that disconnects cancels its handler, so the upstream call it was waiting on is cancelled too;
* graceful shutdown: stop accepting, close idle connections, let in-flight requests finish until the drain
  deadline, then cancel them with `Request.drain_expired` set so streams can write a terminal error event.

The application is one coroutine `app(request, responder)`. It never sees h11.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import select
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import h11
import trio

from omniroute import (
    BODY_IDLE_TIMEOUT_S,
    DRAIN_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    KEEPALIVE_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_CONNECTIONS,
    MAX_HEADER_BYTES,
    MAX_HEADER_COUNT,
    GatewayError,
    PayloadTooLargeError,
    dumps,
    unique_hex,
)
from omniroute_providers import sockio
from omniroute_web.ratelimit import ConnectionCounter  # security

log = logging.getLogger("omniroute.server")

RECEIVE_BYTES = 64 * 1024
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PIPELINE_BUFFER_MAX = 64 * 1024  # bytes of an unread request body we consume to keep the connection
DISCONNECT_CHECK_S = 0.1  # how often the connections of requests in the works are checked for a close


class RequestTimeout(Exception):
    """The client took too long to send its headers or body."""


class ClientGone(Exception):
    """The client closed the connection (or it broke) while we were reading or writing."""


@dataclass(slots=True)
class ServerConfig:
    max_body_bytes: int = MAX_BODY_BYTES
    max_header_bytes: int = MAX_HEADER_BYTES
    max_header_count: int = MAX_HEADER_COUNT
    header_timeout_s: float = HEADER_TIMEOUT_S
    body_idle_timeout_s: float = BODY_IDLE_TIMEOUT_S
    keepalive_timeout_s: float = KEEPALIVE_TIMEOUT_S
    max_connections: int = MAX_CONNECTIONS
    drain_timeout_s: float = DRAIN_TIMEOUT_S
    max_connections_per_ip: int = 0  # security: 0 = no per-address cap (omniroute_web/ratelimit.py)
    disconnect_check_s: float = DISCONNECT_CHECK_S


class Request:
    """One parsed request. Headers are lower-cased names -> values (repeated headers joined by ", ")."""

    __slots__ = (
        "_body",
        "_conn",
        "_query",
        "client",
        "drain_expired",
        "headers",
        "method",
        "path",
        "query_string",
        "request_id",
        "target",
    )

    def __init__(
        self,
        conn: _Connection | None,
        method: str,
        target: str,
        headers: dict[str, str],
        client: str,
        request_id: str,
    ) -> None:
        self._conn = conn
        self.method = method
        self.target = target
        path, _, query = target.partition("?")
        self.path = path
        self.query_string = query
        self.headers = headers
        self.client = client
        self.request_id = request_id
        self._query: dict[str, str] | None = None
        self._body: bytes | None = None
        self.drain_expired = False  # set when graceful shutdown ran out of time for this request

    @property
    def body_read(self) -> bool:
        """The whole body has been read: anything the client sends now is a next request or a close."""
        return self._body is not None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            from urllib.parse import parse_qsl

            self._query = dict(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    async def body(self, limit: int | None = None) -> bytes:
        """The whole request body (read once, then cached). PayloadTooLargeError past `limit`."""
        if self._body is not None:
            return self._body
        if self._conn is None:
            self._body = b""
        else:
            self._body = await self._conn.read_body(self, limit)
        return self._body


class Responder:
    """Writes the one response to a request: `send()` whole, or `start()` + `write()`* + `end()`."""

    __slots__ = ("_chunked", "_conn", "_head", "_request_id", "ended", "started", "status")

    def __init__(self, conn: _Connection, request_id: str, head: bool = False) -> None:
        self._conn = conn
        self._request_id = request_id
        self._head = head  # a HEAD request: headers (with the length a GET would have), no body
        self._chunked = False  # a started body in the chunked coding, framed here (see _frame)
        self.started = False
        self.ended = False
        self.status = 0

    def _headers(self, headers: Iterable[tuple[str, str]], extra: list[tuple[bytes, bytes]]) -> list[Any]:
        out: list[tuple[bytes, bytes]] = [(b"x-request-id", self._request_id.encode())]
        out.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)
        out.extend(extra)
        return out

    async def send(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        if self.started:
            raise RuntimeError("response already started")
        self.started = True
        self.status = status
        hdrs = self._headers(headers, [(b"content-length", str(len(body)).encode())])
        c = self._conn
        data = c.h11.send(h11.Response(status_code=status, headers=hdrs))
        if body and not self._head:
            data += c.h11.send(h11.Data(data=body))
        data += c.h11.send(h11.EndOfMessage())
        await c.send(data)
        self.ended = True

    async def start(self, status: int, headers: Iterable[tuple[str, str]], first: bytes = b"") -> None:
        """Send the status line and headers, with the first body bytes in the same write when given."""
        if self.started:
            raise RuntimeError("response already started")
        self.started = True
        self.status = status
        c = self._conn
        data = c.h11.send(h11.Response(status_code=status, headers=self._headers(headers, [])))
        # h11 answers an HTTP/1.1 client's body of unknown length in the chunked coding (an HTTP/1.0 one
        # is read to the close); a HEAD response has no body
        self._chunked = not self._head and c.h11.their_http_version == b"1.1"
        if first:
            data += self._frame(first)
        await c.send(data)

    async def write(self, data: bytes) -> None:
        """Send body bytes now (each call is flushed: one event, one write)."""
        if data:
            await self._conn.send(self._frame(data))

    async def end(self, last: bytes = b"") -> None:
        """End the body, with its last bytes in the same write when given."""
        if not self.ended:
            self.ended = True
            c = self._conn
            data = self._frame(last) if last else b""
            await c.send(data + c.h11.send(h11.EndOfMessage()))

    def _frame(self, data: bytes) -> bytes:
        # A chunk is framed here rather than by h11, which spends several microseconds of Python on every
        # streamed event to write the same bytes: h11 keeps no count of a chunked body, so its state is the
        # same either way (it still sends the response head and the last chunk).
        if self._chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return self._conn.h11.send(h11.Data(data=data))


App = Callable[[Request, Responder], Awaitable[None]]
ErrorRenderer = Callable[[Request | None, GatewayError], tuple[int, list[tuple[str, str]], bytes]]


def plain_error(request: Request | None, error: GatewayError) -> tuple[int, list[tuple[str, str]], bytes]:
    """OpenAI-shaped JSON error for failures below the application (malformed HTTP and the like)."""
    body = dumps({"error": {"message": error.message, "type": error.code, "code": error.code, "param": None}})
    return error.status, [("content-type", "application/json")], body


class _Connection:
    """One client connection: the h11 state machine plus the socket."""

    __slots__ = ("client", "closed", "h11", "server", "stream")

    def __init__(self, server: Server, stream: trio.SocketStream, client: str) -> None:
        self.server = server
        self.stream = stream
        self.client = client
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=server.config.max_header_bytes)
        self.closed = False

    async def send(self, data: bytes) -> None:
        try:
            await sockio.send_all(self.stream, data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self.closed = True
            raise ClientGone() from exc

    async def receive(self) -> bytes:
        try:
            return await sockio.receive_some(self.stream, RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self.closed = True
            raise ClientGone() from exc

    async def next_event(self, deadline: float) -> Any:
        """The next h11 event, reading from the socket as needed until `deadline`."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            with trio.move_on_at(deadline):
                data = await self.receive()
                self.h11.receive_data(data)
                continue
            raise RequestTimeout()

    async def read_body(self, request: Request, limit: int | None) -> bytes:
        cap = self.server.config.max_body_bytes if limit is None else limit
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise PayloadTooLargeError(f"request body of {declared} bytes exceeds the {cap}-byte limit")
        if self.h11.client_is_waiting_for_100_continue:
            await self.send(self.h11.send(h11.InformationalResponse(status_code=100, headers=[])))
        chunks: list[bytes] = []
        size = 0
        idle = self.server.config.body_idle_timeout_s
        while True:
            event = await self.next_event(trio.current_time() + idle)
            if type(event) is h11.Data:
                size += len(event.data)
                if size > cap:
                    raise PayloadTooLargeError(f"request body exceeds the {cap}-byte limit")
                chunks.append(event.data)
            elif type(event) is h11.EndOfMessage:
                return b"".join(chunks) if len(chunks) != 1 else chunks[0]
            elif type(event) is h11.ConnectionClosed:
                raise ClientGone()
            else:  # pragma: no cover - h11 emits nothing else while a body is being received
                raise ClientGone()


class Server:
    """Serves `app` on one or more listeners until `shutdown()` (or a signal via `serve_forever`)."""

    def __init__(
        self,
        app: App,
        config: ServerConfig | None = None,
        *,
        error_renderer: ErrorRenderer = plain_error,
    ) -> None:
        self.app = app
        self.config = config or ServerConfig()
        self.render_error = error_renderer
        self.connections = 0
        self.per_ip = ConnectionCounter(self.config.max_connections_per_ip)  # security
        self.active_requests = 0
        self.draining = False
        self._drain_deadline = math.inf
        self._idle = trio.Event()  # set when active_requests drops to zero while draining
        self._accepting: trio.CancelScope | None = None
        self._handler_requests: dict[trio.CancelScope, Request] = {}  # requests in the works, by scope
        self._requests_arrived = trio.Event()  # wakes the disconnect sweep after a quiet spell
        self._idle_waiters: set[trio.CancelScope] = set()
        self.ports: list[int] = []
        self.listening = trio.Event()

    # ------------------------------------------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------------------------------------------

    async def serve(self, host: str, port: int, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until shutdown() has drained every connection."""
        from functools import partial

        listeners = await trio.open_tcp_listeners(port, host=host)
        self.ports = [ln.socket.getsockname()[1] for ln in listeners]
        async with trio.open_nursery() as conn_nursery:
            conn_nursery.start_soon(self._sweep_disconnects)
            async with trio.open_nursery() as accept_nursery:
                self._accepting = accept_nursery.cancel_scope
                if self.draining:
                    self._accepting.cancel()
                await accept_nursery.start(
                    partial(
                        trio.serve_listeners, self._handle_connection, listeners, handler_nursery=conn_nursery
                    )
                )
                self.listening.set()
                task_status.started(self.ports[0])
            with trio.CancelScope(shield=True):
                for ln in listeners:
                    await _close_quietly(ln)  # type: ignore[arg-type]
            await self._drain()
            conn_nursery.cancel_scope.cancel()

    def shutdown(self) -> None:
        """Stop accepting now; in-flight requests get until the drain deadline."""
        if self.draining:
            return
        self.draining = True
        self._drain_deadline = trio.current_time() + self.config.drain_timeout_s
        if self._accepting is not None:
            self._accepting.cancel()
        for scope in list(self._idle_waiters):
            scope.cancel()

    def force_close(self) -> None:
        """A second signal: end every request now (streams still get their terminal error frame)."""
        self._drain_deadline = trio.current_time()
        self._expire_handlers()

    async def _drain(self) -> None:
        with trio.move_on_at(self._drain_deadline) as scope:
            while self.active_requests:
                self._idle = trio.Event()
                with trio.move_on_at(self._drain_deadline):
                    await self._idle.wait()
        if scope.cancelled_caught or self.active_requests:
            self._expire_handlers()
            with trio.move_on_after(2.0):  # give the handlers time to write their terminal frames
                while self.active_requests:
                    self._idle = trio.Event()
                    await self._idle.wait()

    def _expire_handlers(self) -> None:
        for scope, request in list(self._handler_requests.items()):
            request.drain_expired = True
            scope.cancel()

    async def _sweep_disconnects(self) -> None:
        """Notice clients that left while their request is in the works and cancel its handler (and so the
        provider call it waits on). One check of those connections per interval, rather than a watcher
        task and a readiness registration per request, which cost a fifth of a short request's CPU."""
        while True:
            if not self._handler_requests:
                self._requests_arrived = trio.Event()
                await self._requests_arrived.wait()
            await trio.sleep(self.config.disconnect_check_s)
            watched: dict[int, tuple[trio.CancelScope, _Connection]] = {}
            for scope, request in self._handler_requests.items():
                conn = request._conn
                # before the body is read, what arrives is the body
                if conn is None or conn.closed or not request.body_read:
                    continue
                fd = conn.stream.socket.fileno() if type(conn.stream) is trio.SocketStream else -1
                if fd >= 0:
                    watched[fd] = (scope, conn)
            for fd in peers_gone(list(watched)):
                scope, conn = watched[fd]
                conn.closed = True
                scope.cancel()

    # ------------------------------------------------------------------------------------------------------
    # one connection
    # ------------------------------------------------------------------------------------------------------

    async def _handle_connection(self, stream: trio.SocketStream) -> None:
        try:
            peer = stream.socket.getpeername()
            client = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        except OSError:
            client = "?"
        conn = _Connection(self, stream, client)
        self.connections += 1
        counted = False  # security: per-address connection cap
        try:
            if self.connections > self.config.max_connections or self.draining:
                await self._refuse(conn)
                return
            counted = self.per_ip.acquire(client)
            if not counted:
                await self._refuse(conn, _per_ip_error(self.config.max_connections_per_ip))
                return
            await self._connection_loop(conn)
        except ClientGone:
            pass
        except Exception:
            log.exception("connection handler crashed")
        finally:
            self.connections -= 1
            if counted:
                self.per_ip.release(client)
            with trio.CancelScope(shield=True):
                await _close_quietly(stream)

    async def _refuse(self, conn: _Connection, err: GatewayError | None = None) -> None:
        from omniroute import ServiceUnavailableError

        err = err or ServiceUnavailableError("the gateway is at its connection limit or shutting down")
        status, headers, body = self.render_error(None, err)
        headers = [h for h in headers if h[0].lower() != "retry-after"]  # security: one retry-after below
        headers = [
            *headers,
            ("content-length", str(len(body))),
            ("connection", "close"),
            ("retry-after", "1"),
        ]
        raw = f"HTTP/1.1 {status} {_reason(status)}\r\n".encode()
        raw += b"".join(f"{k}: {v}\r\n".encode() for k, v in headers) + b"\r\n" + body
        with trio.move_on_after(1.0):
            await conn.send(raw)
        await _linger(conn)

    async def _connection_loop(self, conn: _Connection) -> None:
        cfg = self.config
        first = True
        while not conn.closed:
            try:
                event = await self._next_request(conn, first)
            except RequestTimeout:
                await self._send_error_and_close(conn, None, _timeout_error())
                return
            except h11.RemoteProtocolError as exc:
                await self._send_error_and_close(conn, None, _protocol_error(exc))
                return
            if type(event) is not h11.Request:  # idle timeout, shutdown, EOF or a paused state
                return
            first = False
            problem = _header_problem(event, cfg)
            if problem is not None:
                await self._send_error_and_close(conn, None, problem)
                return
            await self._run_request(conn, event)
            if conn.closed:
                return
            if not await self._finish_request_body(conn):
                await _linger(conn)  # an unread body left in the socket would turn our close into an RST
                return
            if self.draining:
                return
            if conn.h11.our_state is not h11.DONE or conn.h11.their_state is not h11.DONE:
                return
            conn.h11.start_next_cycle()

    async def _next_request(self, conn: _Connection, first: bool) -> Any:
        """The next request's h11 event, or None when the connection should just close.

        The first byte may take the keep-alive timeout (or the header timeout on a new connection); once
        it arrives the whole header block must follow within the header timeout.
        """
        cfg = self.config
        now = trio.current_time()
        event = conn.h11.next_event()
        if event is not h11.NEED_DATA:
            return event  # pipelined: already buffered
        waiter = trio.CancelScope(deadline=now + (cfg.header_timeout_s if first else cfg.keepalive_timeout_s))
        self._idle_waiters.add(waiter)
        try:
            with waiter:
                data = await conn.receive()
                conn.h11.receive_data(data)
        finally:
            self._idle_waiters.discard(waiter)
        if waiter.cancelled_caught:
            if first and not self.draining:
                raise RequestTimeout()
            return None
        header_deadline = (now if first else trio.current_time()) + cfg.header_timeout_s
        return await conn.next_event(header_deadline)

    async def _finish_request_body(self, conn: _Connection) -> bool:
        """Consume a body the handler did not read (e.g. an error answered first) so the connection can
        be reused; False when it cannot be (too big, too slow, or the client awaits 100-continue)."""
        if conn.h11.their_state is h11.DONE:
            return True
        if conn.h11.their_state is h11.MUST_CLOSE or conn.h11.client_is_waiting_for_100_continue:
            return False  # HTTP/1.0 or Connection: close: nothing more will come, close at once
        left = PIPELINE_BUFFER_MAX
        try:
            with trio.move_on_after(1.0):
                while True:
                    event = conn.h11.next_event()
                    if event is h11.NEED_DATA:
                        data = await conn.receive()
                        conn.h11.receive_data(data)
                        if not data:
                            return False
                    elif type(event) is h11.Data:
                        left -= len(event.data)
                        if left < 0:
                            return False
                    else:
                        return type(event) is h11.EndOfMessage
        except (ClientGone, h11.RemoteProtocolError):
            return False
        return False

    async def _run_request(self, conn: _Connection, event: h11.Request) -> None:
        headers: dict[str, str] = {}
        for name, value in event.headers:
            key = name.decode("latin-1")
            val = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {val}" if key in headers else val
        rid = headers.get("x-request-id", "")
        if not _REQUEST_ID_OK.match(rid):
            rid = unique_hex(16)
        request = Request(
            conn, event.method.decode("ascii"), event.target.decode("latin-1"), headers, conn.client, rid
        )
        responder = Responder(conn, rid, head=request.method == "HEAD")
        self.active_requests += 1
        try:
            scope = trio.CancelScope()
            if not self._handler_requests:
                self._requests_arrived.set()
            self._handler_requests[scope] = request
            try:
                with scope:
                    await self._call_app(request, responder)
            except ClientGone:
                conn.closed = True
            finally:
                del self._handler_requests[scope]
        finally:
            self.active_requests -= 1
            if self.draining and not self.active_requests:
                self._idle.set()
        if not conn.closed and not responder.ended:
            # The handler was cancelled (drain deadline) or left the response unfinished.
            conn.closed = True

    async def _call_app(self, request: Request, responder: Responder) -> None:
        try:
            await self.app(request, responder)
        except ClientGone:
            raise
        except GatewayError as exc:
            if not responder.started:
                status, headers, body = self.render_error(request, exc)
                await responder.send(status, headers, body)
            else:
                log.warning("error after the response started: %r", exc)
        except RequestTimeout:
            if not responder.started:
                status, headers, body = self.render_error(request, _timeout_error())
                await responder.send(status, [*headers, ("connection", "close")], body)
        except h11.RemoteProtocolError as exc:
            if not responder.started:
                status, headers, body = self.render_error(request, _protocol_error(exc))
                await responder.send(status, [*headers, ("connection", "close")], body)
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("handler failed for %s %s", request.method, request.path)
            if not responder.started:
                from omniroute import GatewayError as Internal

                status, headers, body = self.render_error(request, Internal("internal error"))
                await responder.send(status, headers, body)

    async def _send_error_and_close(
        self, conn: _Connection, request: Request | None, err: GatewayError
    ) -> None:
        status, headers, body = self.render_error(request, err)
        headers = [*headers, ("content-length", str(len(body))), ("connection", "close")]
        raw = f"HTTP/1.1 {status} {_reason(status)}\r\n".encode()
        raw += b"".join(f"{k}: {v}\r\n".encode() for k, v in headers) + b"\r\n" + body
        with trio.move_on_after(1.0), contextlib.suppress(ClientGone):
            await conn.send(raw)
        await _linger(conn)
        conn.closed = True


_RDHUP = getattr(select, "POLLRDHUP", 0)  # Linux: the peer closed its side (no need to peek)
_GONE = (
    _RDHUP | getattr(select, "POLLHUP", 0) | getattr(select, "POLLERR", 0) | getattr(select, "POLLNVAL", 0)
)


def peers_gone(fds: list[int]) -> list[int]:
    """The sockets among `fds` whose peer has closed or reset the connection. Bytes waiting to be read (a
    pipelined next request) are not a close. Never blocks."""
    if not fds:
        return []
    if hasattr(select, "poll"):
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN | _RDHUP)
        ready = poller.poll(0)
        gone = [fd for fd, ev in ready if ev & _GONE]
        if not _RDHUP:  # readable may mean closed: look without taking anything
            gone += [fd for fd, ev in ready if not ev & _GONE and ev & select.POLLIN and _peer_closed(fd)]
        return gone
    readable, _, broken = select.select(fds, [], fds, 0)  # pragma: no cover (platforms without poll)
    return list(set(broken) | {fd for fd in readable if _peer_closed(fd)})  # pragma: no cover


def _peer_closed(fd: int) -> bool:
    sock = socket.socket(fileno=fd)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.detach()


def _header_problem(event: h11.Request, cfg: ServerConfig) -> GatewayError | None:
    """What h11 lets through but we refuse: a header block that arrived whole yet is over the cap (h11 only
    caps one arriving in pieces), and Content-Length together with Transfer-Encoding (request smuggling)."""
    from omniroute import HeaderTooLargeError, InvalidRequestError

    if len(event.headers) > cfg.max_header_count:
        return HeaderTooLargeError("too many request headers")
    size = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
    if size > cfg.max_header_bytes:
        return HeaderTooLargeError("request headers are too large")
    names = {k for k, _ in event.headers}
    if b"transfer-encoding" in names and b"content-length" in names:
        return InvalidRequestError("Content-Length together with Transfer-Encoding is not accepted")
    return None


def _per_ip_error(limit: int) -> GatewayError:  # security
    from omniroute import RateLimitError

    return RateLimitError(
        f"too many open connections from this address (limit {limit})",
        retry_after=1,
        code="ip_connection_limit",
    )


def _timeout_error() -> GatewayError:
    err = GatewayError("the request was not received in time", status=408, code="request_timeout")
    return err


def _protocol_error(exc: h11.RemoteProtocolError) -> GatewayError:
    from omniroute import HeaderTooLargeError, InvalidRequestError

    if exc.error_status_hint == 431:
        return HeaderTooLargeError("request headers are too large")
    return InvalidRequestError(f"malformed HTTP request: {exc}", status=exc.error_status_hint or 400)


_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    429: "Too Many Requests",  # security
    503: "Service Unavailable",
}


def _reason(status: int) -> str:
    return _REASONS.get(status, "Error")


LINGER_S = 0.5


async def _linger(conn: _Connection) -> None:
    """Closing a socket with unread request bytes makes the kernel send RST, which can destroy the error
    response we just wrote before the client reads it: signal EOF and drain briefly first."""
    with trio.move_on_after(LINGER_S), contextlib.suppress(ClientGone, trio.BrokenResourceError, OSError):
        await conn.stream.send_eof()
        while await conn.receive():
            pass


async def _close_quietly(stream: trio.SocketStream) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await stream.aclose()

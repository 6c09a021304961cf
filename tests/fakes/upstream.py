"""FakeUpstream: one real HTTP/1.1 server (trio + h11, loopback) that answers as OpenAI Chat, OpenAI
Responses, Anthropic Messages and Gemini, with scripted replies and injected faults.

Routing is by path suffix, so any prefix works:
  POST …/chat/completions            OpenAI Chat          (stream: body "stream")
  POST …/responses                   OpenAI Responses     (stream: body "stream")
  POST …/messages                    Anthropic Messages   (stream: body "stream")
  POST …/messages/count_tokens       {"input_tokens": N}       (N: count_tokens_result, else default usage)
  POST …/models/{model}:countTokens  {"totalTokens": N}
  POST …/models/{model}:generateContent / :streamGenerateContent[?alt=sse]   Gemini (JSON array without sse)
  GET  …/models                      model list (OpenAI shape; Anthropic / Gemini shape by their headers)

Which Reply answers a generation request: `responder(request)` if set and not None, else `per_key[credential]`
(a Reply, or a list consumed in order), else the next queued reply, else `default`.

Invariants: timing uses only trio.sleep / trio deadlines (MockClock-safe); every stream frame is its own
socket write; a client that closes while an answer is being sent or awaited is counted once in
`disconnects`. h11 parses requests; answers are written as precomputed bytes (one HTTP/1.1 head, then a
Content-Length body or chunked frames), and a fresh h11 connection per exchange picks up leftover bytes.

Command line (for the benchmark): python -m tests.fakes.upstream --port 0 --print-port [--text T --chunks N
--pace S --first-byte-delay S]
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import h11
import trio

from tests.fakes.connection import Connection, ParsedRequest
from tests.fakes.render import ANTHROPIC, GEMINI, OPENAI_CHAT, OPENAI_RESPONSES, plain, render
from tests.fakes.reply import Reply
from tests.fakes.wire import RenderContext, Rendered

__all__ = ["FakeUpstream", "RecordedRequest", "Reply", "open_fake_upstream"]

LISTEN_BACKLOG = 512  # the benchmark opens many connections at once
DEFAULT_MODEL = "fake-model"
SUFFIX_FORMATS = (
    ("/chat/completions", OPENAI_CHAT),
    ("/responses", OPENAI_RESPONSES),
    ("/messages", ANTHROPIC),
)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes
    json: Any  # the decoded body, None when empty or not JSON
    credential: str | None  # Bearer token, x-api-key, x-goog-api-key or ?key=
    time: float  # trio.current_time() when the request head arrived
    format: str | None = None  # which wire format answered (None: not a generation request)
    model: str | None = None
    stream: bool = False


def credential_of(headers: dict[str, str], query: dict[str, str]) -> str | None:
    for name in ("x-api-key", "x-goog-api-key"):
        if name in headers:
            return headers[name]
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return query.get("key")


class FakeUpstream:
    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, prefix: str = "", record: bool = True
    ) -> None:
        self.host = host
        self.port = port
        self.prefix = prefix.rstrip("/")
        self.record = record
        self.default = Reply()
        self.per_key: dict[str, Reply | list[Reply]] = {}
        self.responder: Callable[[RecordedRequest], Reply | None] | None = None
        self.models = [DEFAULT_MODEL]
        self.count_tokens_result: int | None = None  # None: the default reply's usage.input
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.disconnect_times: list[float] = []
        self.open_connections = 0
        self._queue: deque[Reply] = deque()
        self._conns: set[Connection] = set()
        self._nursery: trio.Nursery | None = None
        self._listener: trio.SocketListener | None = None
        self._accept_scope: trio.CancelScope | None = None
        self._changed = trio.Event()  # set (and replaced) on every request, disconnect, open or close

    # ---- control API -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}{self.prefix}"

    @property
    def accepting(self) -> bool:
        return self._listener is not None

    def queue(self, *replies: Reply) -> None:
        """The next generation requests get these replies, in order (after per-key scripts)."""
        self._queue.extend(replies)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def clear(self) -> None:
        """Forget recorded requests, queued replies and counters (not the default or per-key replies)."""
        self.requests.clear()
        self._queue.clear()
        self.disconnects = 0
        self.disconnect_times.clear()

    async def wait_for_disconnect(self, timeout: float = 5.0, count: int = 1) -> float:  # noqa: ASYNC109
        """Wait until `count` disconnects have been seen in total; return the time of that one.
        Raises trio.TooSlowError after `timeout` seconds (trio time, so MockClock applies)."""
        with trio.fail_after(timeout):
            while self.disconnects < count:
                await self._changed.wait()
        return self.disconnect_times[count - 1]

    async def wait_for_requests(
        self,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[RecordedRequest]:
        with trio.fail_after(timeout):
            while len(self.requests) < count:
                await self._changed.wait()
        return self.requests

    async def wait_for_connections(self, count: int = 0, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until exactly `count` connections are open (0: every connection has closed)."""
        with trio.fail_after(timeout):
            while self.open_connections != count:
                await self._changed.wait()

    def refuse(self) -> None:
        """Stop listening (new connects get ECONNREFUSED) and close idle keep-alive connections; answers
        in flight finish, then their connections close."""
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        if self._listener is not None:
            self._listener.socket.close()
            self._listener = None
        for conn in self._conns:
            if conn.idle_scope is not None:
                # Closed now, not when the task next runs: a pooling client must see the FIN before
                # it reuses the connection, or it would send into a closing socket.
                conn.idle_scope.cancel()
                conn.stream.socket.close()

    def accept(self) -> None:
        """Listen again on the same port."""
        if self._nursery is None:
            raise RuntimeError("FakeUpstream is not serving")
        if self._listener is None:
            self._listener = self._listen()
            self._nursery.start_soon(self._accept_loop, self._listener)

    # ---- lifecycle ---------------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[FakeUpstream] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; `await nursery.start(fake.serve)` returns once the port is bound."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.accept()
            task_status.started(self)
            try:
                await trio.sleep_forever()
            finally:
                self.refuse()
                self._nursery = None

    def _listen(self) -> trio.SocketListener:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(LISTEN_BACKLOG)
        self.port = sock.getsockname()[1]
        return trio.SocketListener(trio.socket.from_stdlib_socket(sock))

    async def _accept_loop(self, listener: trio.SocketListener) -> None:
        assert self._nursery is not None
        with trio.CancelScope() as scope:
            self._accept_scope = scope
            try:
                while True:
                    stream = await listener.accept()
                    self._nursery.start_soon(self._serve_connection, stream)
            except trio.ClosedResourceError:
                pass

    def _changed_now(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _client_left(self) -> None:
        self.disconnects += 1
        self.disconnect_times.append(trio.current_time())
        self._changed_now()

    # ---- one connection ----------------------------------------------------------------------------

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        conn = Connection(stream, self._client_left)
        self._conns.add(conn)
        self.open_connections += 1
        self._changed_now()
        try:
            while await self._exchange(conn):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            pass
        finally:
            self._conns.discard(conn)
            self.open_connections -= 1
            self._changed_now()
            await trio.aclose_forcefully(stream)

    async def _exchange(self, conn: Connection) -> bool:
        """Read one request and answer it; True when the connection may carry another."""
        request = await conn.read_request()
        if request is None:
            return False
        reply, rendered = self._answer(request)
        close = not request.keep_alive or self._listener is None
        reusable = await conn.respond(reply, rendered, close)
        return reusable and not close and self._listener is not None

    # ---- choosing the answer -----------------------------------------------------------------------

    def _answer(self, request: ParsedRequest) -> tuple[Reply, Rendered]:
        path, _, query_string = request.target.partition("?")
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        try:
            decoded = json.loads(request.body) if request.body else None
        except ValueError:
            decoded = None
        credential = credential_of(request.headers, query)
        rec = RecordedRequest(
            request.method, path, query, request.headers, request.body, decoded, credential, request.arrived
        )
        if self.record:
            self.requests.append(rec)
            self._changed_now()
        return self._route(rec)

    def _route(self, rec: RecordedRequest) -> tuple[Reply, Rendered]:
        path = rec.path
        if rec.method == "GET" and path.endswith("/models"):
            return _PLAIN, plain(200, self._model_list(rec))
        if rec.method != "POST":
            return _PLAIN, plain(
                405, {"error": {"message": f"{rec.method} not allowed", "type": "invalid_request_error"}}
            )
        if path.endswith("/messages/count_tokens"):
            return _PLAIN, plain(200, {"input_tokens": self._token_count()}, ANTHROPIC)
        if path.endswith(":countTokens"):
            return _PLAIN, plain(200, {"totalTokens": self._token_count()}, GEMINI)
        fmt, stream, gemini_sse, model = self._generation_target(rec)
        if fmt is None:
            return _PLAIN, plain(
                404, {"error": {"message": f"no route for {path}", "type": "invalid_request_error"}}
            )
        if not isinstance(rec.json, dict):
            bad = Reply(status=400, error="request body is not a JSON object")
            return bad, render(bad, fmt, False, RenderContext(DEFAULT_MODEL, False))
        rec.format, rec.model = fmt, model
        if stream is None:
            stream = rec.json.get("stream") is True
        rec.stream = stream
        include_usage = False
        reply = self._choose(rec)
        if fmt == OPENAI_CHAT and stream:
            options = rec.json.get("stream_options")
            asked = isinstance(options, dict) and options.get("include_usage") is True
            include_usage = asked if reply.include_usage is None else reply.include_usage
        return reply, render(reply, fmt, stream, RenderContext(model, include_usage, gemini_sse))

    def _token_count(self) -> int:
        if self.count_tokens_result is not None:
            return self.count_tokens_result
        return self.default.usage.input if self.default.usage else 0

    def _generation_target(self, rec: RecordedRequest) -> tuple[str | None, bool | None, bool, str]:
        """(format, stream or None = read the body, Gemini SSE, model)."""
        path = rec.path
        for suffix, fmt in SUFFIX_FORMATS:
            if path.endswith(suffix):
                model = rec.json.get("model") if isinstance(rec.json, dict) else None
                return fmt, None, True, model if isinstance(model, str) else DEFAULT_MODEL
        head, _, method = path.rpartition(":")
        if "/models/" in head and method in ("generateContent", "streamGenerateContent"):
            model = head.split("/models/", 1)[1]
            streaming = method == "streamGenerateContent"
            return GEMINI, streaming, rec.query.get("alt") == "sse", model
        return None, None, True, DEFAULT_MODEL

    def _choose(self, rec: RecordedRequest) -> Reply:
        if self.responder is not None:
            picked = self.responder(rec)
            if picked is not None:
                return picked
        if rec.credential is not None and rec.credential in self.per_key:
            scripted = self.per_key[rec.credential]
            if isinstance(scripted, Reply):
                return scripted
            if scripted:
                return scripted.pop(0)
        if self._queue:
            return self._queue.popleft()
        return self.default

    def _model_list(self, rec: RecordedRequest) -> dict[str, Any]:
        if "anthropic-version" in rec.headers:
            data = [
                {"id": m, "type": "model", "display_name": m, "created_at": "2024-01-01T00:00:00Z"}
                for m in self.models
            ]
            first, last = (self.models[0], self.models[-1]) if self.models else (None, None)
            return {"data": data, "has_more": False, "first_id": first, "last_id": last}
        if "x-goog-api-key" in rec.headers or "key" in rec.query:
            return {
                "models": [
                    {"name": f"models/{m}", "supportedGenerationMethods": ["generateContent"]}
                    for m in self.models
                ]
            }
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}
                for m in self.models
            ],
        }


_PLAIN = Reply()


async def _run_forever(fake: FakeUpstream, print_port: bool) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.serve)
        if print_port:
            print(fake.port, flush=True)


@asynccontextmanager
async def open_fake_upstream(**kwargs: Any) -> AsyncIterator[FakeUpstream]:
    """`async with open_fake_upstream(prefix="/v1") as fake:` — serves until the block ends."""
    async with trio.open_nursery() as nursery:
        fake = FakeUpstream(**kwargs)
        await nursery.start(fake.serve)
        try:
            yield fake
        finally:
            nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.upstream", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--print-port", action="store_true", help="print the bound port on stdout")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--text", default=Reply().text)
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--pace", type=float, default=0.0, help="seconds between stream frames")
    parser.add_argument("--first-byte-delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    fake = FakeUpstream(host=args.host, port=args.port, prefix=args.prefix, record=False)
    fake.default = Reply(
        text=args.text, chunks=args.chunks, pace_s=args.pace, first_byte_delay_s=args.first_byte_delay
    )
    # Serve until killed: Ctrl-C ends the process at once, like SIGTERM, with no traceback.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    trio.run(_run_forever, fake, args.print_port)


if __name__ == "__main__":
    main()

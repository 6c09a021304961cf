"""Payload logging: the bodies of one request as the client sent them, as the upstream received them, as the
upstream answered and as the client got them back — kept in the request log for debugging.

A request is captured only when payload logging is on (`log_payloads`) or it carries `x-omniroute-debug`
(any value; the dashboard's playground sends it; at most DEBUG_CAPTURES_PER_MIN a minute, since any client
may send it). Otherwise the pipeline makes no PayloadRecord and nothing here runs.

Invariants:
* On the request path a capture only keeps references to bytes that pass anyway (a slice only where a chunk
  crosses the cap): no joins, no encoding, no redaction. Those happen in `PayloadRecord.insert`, on the
  store's writer thread, in the transaction that writes the usage row.
* Each part keeps at most PAYLOAD_CAP_BYTES; a part cut there says so (`truncated`). Streams are kept as the
  raw SSE bytes, upstream side and client side.
* Nothing stored carries a credential: every text goes through the kernel's `redact` (registered secrets,
  key-shaped strings, Authorization / x-api-key / cookie values ...) after the exact credentials this
  request used (the account's secret, the client's key) are replaced; upstream request headers named like
  credentials are replaced whole.
* One payload row per usage row (`usage_id`), deleted with it (ON DELETE CASCADE: the log retention, a
  purge); `request_id` is indexed for the playground, which knows only the id the gateway answered with.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from omniroute import REDACTED, Db, JsonObj, JsonValue, dumps, dumps_str, loads, redact

if TYPE_CHECKING:
    from omniroute_providers.pipeline import ClientSink, UpstreamReply

log = logging.getLogger("omniroute.payloads")

DEBUG_HEADER = "x-omniroute-debug"  # any value: keep this request's payloads even when logging is off
PAYLOAD_CAP_BYTES = 64 * 1024  # per part: a long prompt fits; a busy log of big requests stays small
PARTS = ("client_request", "upstream_request", "upstream_response", "client_response")
# Upstream request headers whose whole value is a credential (the redactor catches the usual ones by shape;
# these catch a provider's own names, e.g. an account header "x-session-token").
CREDENTIAL_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "session", "signature", "password")
CLIENT_KEY_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key")
MIN_SECRET_CHARS = 6  # as the kernel's register_secret: shorter strings would mask innocent text


DEBUG_CAPTURES_PER_MIN = 60  # any client may send the header: bound the disk it can fill (4 x 64 KiB each)


class DebugBudget:
    """How many requests a minute the debug header may capture (payload logging on: all, regardless)."""

    __slots__ = ("count", "window_start")

    def __init__(self) -> None:
        self.window_start = float("-inf")
        self.count = 0

    def allow(self, now: float) -> bool:
        if now - self.window_start >= 60.0:
            self.window_start, self.count = now, 0
        if self.count >= DEBUG_CAPTURES_PER_MIN:
            return False
        self.count += 1
        return True


class Part:
    """The bytes of one body, up to the cap, as references to the chunks that went by."""

    __slots__ = ("chunks", "size", "truncated")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.truncated = False

    def add(self, data: bytes) -> None:
        room = PAYLOAD_CAP_BYTES - self.size
        if len(data) > room:
            self.truncated = True
            if room <= 0:
                return
            data = data[:room]
        self.chunks.append(data)
        self.size += len(data)

    def clear(self) -> None:
        self.chunks.clear()
        self.size = 0
        self.truncated = False

    def text(self) -> str | None:
        if not self.chunks:
            return None
        return b"".join(self.chunks).decode("utf-8", "replace")


class PayloadRecord:
    """One request's payloads: filled on the request path by reference, finished and written off it."""

    __slots__ = (
        "client_body",
        "client_response",
        "secrets",
        "upstream_headers",
        "upstream_method",
        "upstream_request",
        "upstream_response",
        "upstream_response_headers",
        "upstream_status",
        "upstream_url",
    )

    def __init__(self, client_body: JsonObj, client_headers: Mapping[str, str]) -> None:
        self.client_body = client_body  # the pipeline never mutates it: encoded on the writer thread
        self.secrets: list[str] = []
        for name in CLIENT_KEY_HEADERS:
            value = client_headers.get(name, "")
            self._secret(value.split(" ", 1)[1] if value[:7].lower() == "bearer " else value)
        self.upstream_method = ""
        self.upstream_url = ""
        self.upstream_headers: list[tuple[str, str]] = []
        self.upstream_request = Part()
        self.upstream_status: int | None = None
        self.upstream_response_headers: dict[str, str] = {}
        self.upstream_response = Part()
        self.client_response = Part()

    def _secret(self, value: str) -> None:
        value = value.strip()
        if len(value) >= MIN_SECRET_CHARS and value not in self.secrets:
            self.secrets.append(value)

    # the request path ------------------------------------------------------------------------------------

    def attempt(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, secret: str
    ) -> None:
        """An upstream attempt starts: it replaces what an earlier (failed) attempt left."""
        self._secret(secret)
        self.upstream_method, self.upstream_url = method, url
        self.upstream_headers = [*headers, ("content-length", str(len(body)))]
        self.upstream_request.clear()
        self.upstream_request.add(body)
        self.upstream_status = None
        self.upstream_response_headers = {}
        self.upstream_response.clear()

    def reply(self, reply: UpstreamReply) -> UpstreamReply:
        """The attempt's reply, recording its status, headers and body bytes as the pipeline reads them."""
        self.upstream_status = reply.status
        self.upstream_response_headers = dict(reply.headers)
        return _RecordingReply(reply, self.upstream_response)

    def sink(self, sink: ClientSink) -> ClientSink:
        """The client sink, recording every byte of the answer."""
        return _RecordingSink(sink, self.client_response)

    def client_error(self, body: bytes) -> None:
        """The request failed before anything was sent: the error body the web layer answers with."""
        self.client_response.clear()
        self.client_response.add(body)

    # the writer thread -----------------------------------------------------------------------------------

    def _clean(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return redact(text)

    def _headers(self, headers: list[tuple[str, str]] | Mapping[str, str]) -> str:
        out: dict[str, str] = {}
        for name, value in headers.items() if isinstance(headers, Mapping) else headers:
            lower = name.lower()
            if any(word in lower for word in CREDENTIAL_HEADER_WORDS):
                clean = REDACTED
            else:
                clean = self._clean(value) or ""
            out[lower] = f"{out[lower]}, {clean}" if lower in out else clean
        return dumps_str(out)

    def insert(self, db: Db, usage_id: int, request_id: str, ts: float) -> None:
        client_request = Part()
        client_request.add(dumps(self.client_body))
        parts = {
            "client_request": client_request,
            "upstream_request": self.upstream_request,
            "upstream_response": self.upstream_response,
            "client_response": self.client_response,
        }
        db.execute(
            "INSERT INTO payloads (usage_id, request_id, ts, client_request, upstream_method, upstream_url, "
            "upstream_headers, upstream_request, upstream_status, upstream_response_headers, "
            "upstream_response, client_response, truncated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                usage_id,
                request_id,
                ts,
                self._clean(client_request.text()),
                self.upstream_method or None,
                self._clean(self.upstream_url) if self.upstream_url else None,
                self._headers(self.upstream_headers) if self.upstream_url else None,
                self._clean(self.upstream_request.text()),
                self.upstream_status,
                self._headers(self.upstream_response_headers) if self.upstream_status is not None else None,
                self._clean(self.upstream_response.text()),
                self._clean(self.client_response.text()),
                dumps_str([name for name, part in parts.items() if part.truncated]),
            ),
        )


class _RecordingReply:
    """An UpstreamReply whose body bytes are also appended to a Part."""

    __slots__ = ("_part", "_reply")

    def __init__(self, reply: UpstreamReply, part: Part) -> None:
        self._reply = reply
        self._part = part

    @property
    def status(self) -> int:
        return self._reply.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._reply.headers

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return _RecordingChunks(self._reply.iter_bytes(), self._part)

    async def read(self, limit: int = 64 * 1024 * 1024) -> bytes:
        data = await self._reply.read(limit)
        self._part.add(data)
        return data

    async def aclose(self) -> None:
        await self._reply.aclose()


class _RecordingChunks:
    """An iterator, not an async generator: the pipeline may abandon it half-way (no finalizer needed)."""

    __slots__ = ("_chunks", "_part")

    def __init__(self, chunks: AsyncIterator[bytes], part: Part) -> None:
        self._chunks = chunks
        self._part = part

    def __aiter__(self) -> _RecordingChunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._chunks.__anext__()
        self._part.add(chunk)
        return chunk


class _RecordingSink:
    """A ClientSink that also appends what it sends to a Part."""

    __slots__ = ("_part", "_sink")

    def __init__(self, sink: ClientSink, part: Part) -> None:
        self._sink = sink
        self._part = part

    @property
    def started(self) -> bool:
        return self._sink.started

    @started.setter
    def started(self, value: bool) -> None:
        self._sink.started = value

    async def send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self._part.add(body)
        await self._sink.send(status, headers, body)

    async def start(self, status: int, headers: list[tuple[str, str]], first: bytes = b"") -> None:
        self._part.add(first)
        await self._sink.start(status, headers, first)

    async def write(self, data: bytes) -> None:
        self._part.add(data)
        await self._sink.write(data)

    async def end(self, last: bytes = b"") -> None:
        self._part.add(last)
        await self._sink.end(last)


# ----------------------------------------------------------------------------------------------------------
# reading (the dashboard's request detail)
# ----------------------------------------------------------------------------------------------------------

PAYLOAD_COLUMNS = (
    "client_request",
    "upstream_method",
    "upstream_url",
    "upstream_headers",
    "upstream_request",
    "upstream_status",
    "upstream_response_headers",
    "upstream_response",
    "client_response",
    "truncated",
)


def _body(text: str | None) -> JsonValue:
    """A stored body: decoded JSON where it parses (a JSON answer), else the text (SSE, a cut body)."""
    if text is None:
        return None
    try:
        return loads(text)
    except ValueError:
        return text


def read_payloads(db: Db, usage_id: int) -> JsonObj | None:
    """The payloads kept for one usage row, bodies decoded; None when none were kept."""
    row = db.one(
        f"SELECT {', '.join(PAYLOAD_COLUMNS)} FROM payloads WHERE usage_id = ?",  # noqa: S608 - fixed names
        (usage_id,),
    )
    if row is None:
        return None
    v = dict(zip(PAYLOAD_COLUMNS, row, strict=True))
    cut = set(loads(v["truncated"] or "[]"))
    upstream_request: JsonObj | None = None
    if v["upstream_url"] is not None:
        upstream_request = {
            "method": v["upstream_method"],
            "url": v["upstream_url"],
            "headers": loads(v["upstream_headers"] or "{}"),
            "body": _body(v["upstream_request"]),
            "truncated": "upstream_request" in cut,
        }
    upstream_response: JsonObj | None = None
    if v["upstream_status"] is not None:
        upstream_response = {
            "status": v["upstream_status"],
            "headers": loads(v["upstream_response_headers"] or "{}"),
            "body": _body(v["upstream_response"]),
            "truncated": "upstream_response" in cut,
        }
    return {
        "client_request": {"body": _body(v["client_request"]), "truncated": "client_request" in cut},
        "upstream_request": upstream_request,
        "upstream_response": upstream_response,
        "client_response": (
            None
            if v["client_response"] is None
            else {"body": _body(v["client_response"]), "truncated": "client_response" in cut}
        ),
    }

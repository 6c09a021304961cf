"""Reply -> bytes for one (format, stream mode, model): dispatch to the format modules, apply the scripted
frame faults, frame Gemini's JSON-array stream, and cache the result on the Reply.

Faults that are *bytes* (a malformed line, an in-band error event) are baked in here; faults that are
*actions* (reset, stall, pacing, delays) are carried out by the server while sending.
"""

from __future__ import annotations

from typing import Protocol

from tests.fakes import render_anthropic, render_chat, render_gemini, render_responses
from tests.fakes.reply import Reply
from tests.fakes.wire import (
    JsonDict,
    RenderContext,
    Rendered,
    chunk,
    dumps,
    header_lines,
    next_id,
    status_line,
)

OPENAI_CHAT = "openai-chat"
OPENAI_RESPONSES = "openai-responses"
ANTHROPIC = "anthropic"
GEMINI = "gemini"
FORMATS = (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, GEMINI)

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"


class FormatModule(Protocol):
    def body(self, reply: Reply, ctx: RenderContext) -> JsonDict: ...
    def frames(self, reply: Reply, ctx: RenderContext) -> list[bytes]: ...
    def error_body(self, reply: Reply, status: int) -> JsonDict: ...
    def midstream_error(self, reply: Reply, ctx: RenderContext, seq: int) -> bytes: ...


MODULES: dict[str, FormatModule] = {
    OPENAI_CHAT: render_chat,
    OPENAI_RESPONSES: render_responses,
    ANTHROPIC: render_anthropic,
    GEMINI: render_gemini,
}
REQUEST_ID_HEADER = {OPENAI_CHAT: "x-request-id", OPENAI_RESPONSES: "x-request-id", ANTHROPIC: "request-id"}


def render(reply: Reply, fmt: str, stream: bool, ctx: RenderContext) -> Rendered:
    key = (fmt, stream, ctx)
    hit: Rendered | None = reply._cache.get(key)
    if hit is None:
        hit = reply._cache[key] = _render(reply, fmt, stream, ctx)
    return hit


def head(status: int, fmt: str | None, content_type: str, extra: dict[str, str] | None = None) -> bytes:
    headers = [("content-type", content_type)]
    if fmt in REQUEST_ID_HEADER:
        headers.append((REQUEST_ID_HEADER[fmt], f"req_fake{next_id()}"))
    if content_type == SSE_TYPE:
        headers.append(("cache-control", "no-cache"))
    headers += (extra or {}).items()
    return status_line(status) + header_lines(headers)


def plain(status: int, obj: object, fmt: str | None = None) -> Rendered:
    """A small JSON answer outside the scripted replies (model lists, token counts, routing errors)."""
    return Rendered(status, head(status, fmt, JSON_TYPE), dumps(obj))


def _render(reply: Reply, fmt: str, stream: bool, ctx: RenderContext) -> Rendered:
    mod = MODULES[fmt]
    extra = dict(reply.headers)
    if reply.status >= 400:
        err = mod.error_body(reply, reply.status)
        # Gemini's non-SSE stream wraps even an error in the JSON array.
        wrapped = fmt == GEMINI and stream and not ctx.gemini_sse
        return Rendered(
            reply.status, head(reply.status, fmt, JSON_TYPE, extra), dumps([err] if wrapped else err)
        )
    if not stream:
        data = dumps(mod.body(reply, ctx))
        if reply.malformed_after_chunks is not None:
            data = data[: len(data) // 2]
        return Rendered(reply.status, head(reply.status, fmt, JSON_TYPE, extra), data)
    frames = mod.frames(reply, ctx)
    if reply.malformed_after_chunks is not None:
        n = reply.malformed_after_chunks
        frames = [*frames[:n], _malformed(fmt, ctx), *frames[n:]]
    if reply.midstream_error_after_chunks is not None:
        n = reply.midstream_error_after_chunks
        frames = [*frames[:n], mod.midstream_error(reply, ctx, n)]
    tail = b""
    content_type = SSE_TYPE
    if fmt == GEMINI and not ctx.gemini_sse:
        content_type = JSON_TYPE
        tail = b"]" if frames else b"[]"
        frames = [(b"[" if i == 0 else b",\r\n") + f for i, f in enumerate(frames)]
    return Rendered(
        reply.status,
        head(reply.status, fmt, content_type, extra),
        None,
        tuple(frames),
        tail,
        tuple(chunk(f) for f in frames),
    )


def _malformed(fmt: str, ctx: RenderContext) -> bytes:
    if fmt == GEMINI:
        return render_gemini.malformed(ctx)
    if fmt == ANTHROPIC:
        return render_anthropic.MALFORMED
    if fmt == OPENAI_RESPONSES:
        return render_responses.MALFORMED
    return render_chat.MALFORMED

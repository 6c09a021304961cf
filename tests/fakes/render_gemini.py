"""Gemini generateContent wire shapes, written from the reference (formats.md §1.4), for the fake upstream.

Each stream chunk is a whole GenerateContentResponse carrying only new parts: thought parts
(`thought: true`), text parts, then every functionCall part (whole, args as an object) in one chunk; the
last chunk also carries finishReason and usageMetadata. With `alt=sse` a chunk is `data: <json>`, else the
chunks are elements of one JSON array (framed by the caller). The thoughtSignature sits on the first
functionCall part, else on the last text part, else on the last thought part. Function calls finish
with STOP. Usage: candidatesTokenCount excludes thoughts, promptTokenCount includes the cache.
"""

from __future__ import annotations

from tests.fakes.reply import Reply, Usage
from tests.fakes.wire import JsonDict, RenderContext, dumps, next_id, split_text, sse

FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
MALFORMED_ELEMENT = b'{"candidates":[{"content":{"role":"model","parts":[{"text":"unterminated'


def usage_obj(u: Usage) -> JsonDict:
    meta: JsonDict = {
        "promptTokenCount": u.input,
        "candidatesTokenCount": u.output - u.reasoning,
        "totalTokenCount": u.total,
    }
    if u.cached:
        meta["cachedContentTokenCount"] = u.cached
    if u.reasoning:
        meta["thoughtsTokenCount"] = u.reasoning
    return meta


def _part_groups(reply: Reply, pieces: int) -> list[list[JsonDict]]:
    """Parts grouped as they are streamed (one group per chunk), the signature already placed."""
    groups: list[list[JsonDict]] = [
        [{"text": p, "thought": True}] for p in split_text(reply.thinking or "", pieces)
    ]
    groups += [[{"text": p}] for p in split_text(reply.text, pieces)]
    if reply.tool_calls:
        groups.append(
            [{"functionCall": {"name": name, "args": dict(args)}} for name, args in reply.tool_calls]
        )
    if reply.signature is not None:
        if not groups:
            groups.append([{"text": ""}])
        target = groups[-1][0] if reply.tool_calls else groups[-1][-1]
        target["thoughtSignature"] = reply.signature
    return groups


def _response(reply: Reply, ctx: RenderContext, n: int, parts: list[JsonDict], last: bool) -> JsonDict:
    content: JsonDict = {"role": "model", "parts": parts} if parts else {"role": "model"}
    candidate: JsonDict = {"content": content, "index": 0}
    out: JsonDict = {"candidates": [candidate]}
    if last:
        candidate["finishReason"] = FINISH_REASONS.get(reply.finish, reply.finish)
        if reply.usage is not None and reply.include_usage is not False:
            out["usageMetadata"] = usage_obj(reply.usage)
    out["modelVersion"] = ctx.model
    out["responseId"] = f"fakeresp{n}"
    return out


def body(reply: Reply, ctx: RenderContext) -> JsonDict:
    n = next_id()
    # One piece: the whole thought and the whole text each in a single part.
    parts = [p for group in _part_groups(reply, 1) for p in group]
    return _response(reply, ctx, n, parts, last=True)


def frames(reply: Reply, ctx: RenderContext) -> list[bytes]:
    n = next_id()
    groups = _part_groups(reply, reply.chunks) or [[]]
    objs = [_response(reply, ctx, n, g, last=i == len(groups) - 1) for i, g in enumerate(groups)]
    return [_frame(o, ctx) for o in objs]


def _frame(obj: JsonDict, ctx: RenderContext) -> bytes:
    return sse(obj) if ctx.gemini_sse else dumps(obj)


def malformed(ctx: RenderContext) -> bytes:
    return b"data: " + MALFORMED_ELEMENT + b"\n\n" if ctx.gemini_sse else MALFORMED_ELEMENT


def error_body(reply: Reply, status: int) -> JsonDict:
    details: list[JsonDict] = []
    if reply.error_code:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reply.error_code,
                "domain": "googleapis.com",
            }
        )
    if reply.retry_delay:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": reply.retry_delay})
    error: JsonDict = {
        "code": status,
        "message": reply.error or f"fake upstream error {status}",
        "status": reply.error_type or STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return {"error": error}


def midstream_error(reply: Reply, ctx: RenderContext, seq: int) -> bytes:
    error = {
        "code": 500,
        "message": reply.error or "An internal error has occurred.",
        "status": reply.error_type or "INTERNAL",
    }
    return _frame({"error": error}, ctx)

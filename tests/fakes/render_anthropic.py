"""Anthropic Messages wire shapes, written from the reference (formats.md §1.3), for the fake upstream.

Stream grammar: message_start (usage with input side), then blocks one at a time — thinking (thinking_delta*,
signature_delta), text (text_delta*), tool_use (input_json_delta*) — each content_block_start … stop,
then message_delta (stop_reason, cumulative output_tokens) and message_stop. Every frame is
`event: <type>` + `data: {"type": <type>, …}`. Usage: input_tokens excludes cache reads and writes.
"""

from __future__ import annotations

import json

from tests.fakes.reply import Reply, Usage
from tests.fakes.wire import JsonDict, RenderContext, next_id, split_text, sse

MALFORMED = (
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"unterminated\n\n'
)
PING = sse({"type": "ping"}, event="ping")
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def usage_obj(u: Usage | None) -> JsonDict:
    # Anthropic always sends a usage object; zeros stand in when the script has none.
    u = u or Usage(0, 0)
    return {
        "input_tokens": max(0, u.input - u.cached - u.cache_write),
        "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cached,
        "output_tokens": u.output,
    }


def _blocks(reply: Reply, n: int) -> list[JsonDict]:
    blocks: list[JsonDict] = []
    if reply.thinking is not None:
        blocks.append({"type": "thinking", "thinking": reply.thinking, "signature": reply.signature or ""})
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    blocks += [
        {"type": "tool_use", "id": f"toolu_fake{n}x{i}", "name": name, "input": dict(args)}
        for i, (name, args) in enumerate(reply.tool_calls)
    ]
    return blocks


def _message(reply: Reply, ctx: RenderContext, n: int, content: list[JsonDict]) -> JsonDict:
    return {
        "id": f"msg_fake{n}",
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage_obj(reply.usage),
    }


def body(reply: Reply, ctx: RenderContext) -> JsonDict:
    n = next_id()
    msg = _message(reply, ctx, n, _blocks(reply, n))
    msg["stop_reason"] = STOP_REASONS.get(reply.finish, reply.finish)
    return msg


def _block_frames(reply: Reply, index: int, block: JsonDict) -> list[bytes]:
    kind = block["type"]
    if kind == "thinking":
        start: JsonDict = {"type": "thinking", "thinking": "", "signature": ""}
        deltas: list[JsonDict] = [
            {"type": "thinking_delta", "thinking": p} for p in split_text(block["thinking"], reply.chunks)
        ]
        if block["signature"]:
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in split_text(block["text"], reply.chunks)]
    else:
        start = {**block, "input": {}}
        deltas = [
            {"type": "input_json_delta", "partial_json": p}
            for p in split_text(json.dumps(block["input"]), reply.args_chunks)
        ]
    return [
        sse({"type": "content_block_start", "index": index, "content_block": start}, "content_block_start"),
        *(
            sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta")
            for d in deltas
        ),
        sse({"type": "content_block_stop", "index": index}, "content_block_stop"),
    ]


def frames(reply: Reply, ctx: RenderContext) -> list[bytes]:
    n = next_id()
    start = _message(reply, ctx, n, [])
    start["usage"] = {**start["usage"], "output_tokens": 1}
    out = [sse({"type": "message_start", "message": start}, "message_start")]
    for index, block in enumerate(_blocks(reply, n)):
        out += _block_frames(reply, index, block)
    output_tokens = reply.usage.output if reply.usage else 0
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": STOP_REASONS.get(reply.finish, reply.finish), "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }
    out += [sse(delta, "message_delta"), sse({"type": "message_stop"}, "message_stop")]
    if reply.ping_every:
        out = _with_pings(out, reply.ping_every)
    return out


def _with_pings(frames: list[bytes], every: int) -> list[bytes]:
    out: list[bytes] = []
    for i, frame in enumerate(frames, 1):
        out.append(frame)
        if i % every == 0 and i < len(frames):
            out.append(PING)
    return out


def error_body(reply: Reply, status: int) -> JsonDict:
    etype = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {
        "type": "error",
        "error": {
            "type": reply.error_type or etype,
            "message": reply.error or f"fake upstream error {status}",
        },
        "request_id": f"req_fake{next_id()}",
    }


def midstream_error(reply: Reply, ctx: RenderContext, seq: int) -> bytes:
    error = {"type": reply.error_type or "overloaded_error", "message": reply.error or "Overloaded"}
    return sse({"type": "error", "error": error}, "error")

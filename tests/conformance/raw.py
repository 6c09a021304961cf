"""Upstream answers the fakes' Reply cannot script (a stop_sequence value, a refusal's stop_details, a
Gemini prompt block, a truncated tool_use, fragments split at exact bytes): written out as raw HTTP/1.1
responses, sent verbatim by the fake (`Reply(raw=...)`)."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.reply import Reply


def _http(status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> Reply:
    lines = [f"HTTP/1.1 {status} X", f"content-type: {content_type}", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append("connection: close")
    return Reply(raw=("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return _http(status, "application/json", json.dumps(obj).encode(), headers)


def sse_bytes(body: bytes) -> Reply:
    return _http(200, "text/event-stream", body)


def sse_reply(events: list[tuple[str | None, Any]]) -> Reply:
    """(event name or None, data) per frame; data is JSON-encoded unless it is already a string."""
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return _http(200, "text/event-stream", "".join(out).encode())


# ----------------------------------------------------------------------------------------------------------
# Anthropic streams
# ----------------------------------------------------------------------------------------------------------


def am_message(content: list[dict[str, Any]], stop_reason: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "msg_raw1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
        **extra,
    }


def am_stream(
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    stop_reason: str,
    stop_sequence: str | None = None,
    output_tokens: int = 5,
) -> Reply:
    """An Anthropic stream: each block is (content_block_start payload, its deltas)."""
    start = am_message([], None)  # type: ignore[arg-type]
    start["usage"] = {"input_tokens": 10, "output_tokens": 1}
    events: list[tuple[str | None, Any]] = [("message_start", {"type": "message_start", "message": start})]
    for i, (block, deltas) in enumerate(blocks):
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": i, "content_block": block})
        )
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}) for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {"output_tokens": output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return sse_reply(events)


def json_deltas(*pieces: str) -> list[dict[str, Any]]:
    return [{"type": "input_json_delta", "partial_json": p} for p in pieces]


# ----------------------------------------------------------------------------------------------------------
# OpenAI Chat streams
# ----------------------------------------------------------------------------------------------------------


def oc_stream(deltas: list[dict[str, Any]], finish: str, usage: dict[str, Any] | None = None) -> Reply:
    base = {"id": "chatcmpl-raw1", "object": "chat.completion.chunk", "created": 1700000000, "model": "m"}
    events: list[tuple[str | None, Any]] = [
        (None, {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}) for d in deltas
    ]
    events.append((None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
    if usage is not None:
        events.append((None, {**base, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return sse_reply(events)


# ----------------------------------------------------------------------------------------------------------
# Gemini
# ----------------------------------------------------------------------------------------------------------


def gg_response(
    parts: list[dict[str, Any]] | None, finish: str | None = "STOP", **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"modelVersion": "gemini-2.5-flash", "responseId": "raw1", **extra}
    if parts is not None:
        cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            cand["finishReason"] = finish
        out["candidates"] = [cand]
    return out

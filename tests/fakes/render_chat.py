"""OpenAI Chat Completions wire shapes, written from the reference (formats.md §1.1), for the fake upstream.

Stream grammar: a role chunk (`content: ""`), reasoning_content and content deltas, tool-call fragments
keyed by `index` (first fragment has id, type, name and `arguments: ""`), a finish chunk with `delta: {}`,
an optional usage chunk with `choices: []`, then `data: [DONE]`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from tests.fakes.reply import Reply, Usage
from tests.fakes.wire import CREATED_AT, JsonDict, RenderContext, next_id, split_text, sse

DONE = b"data: [DONE]\n\n"
MALFORMED = b'data: {"id":"chatcmpl-broken","choices":[{"index":0,"delta":{"content":"unterminated\n\n'

# OpenAI's own `type`/`code` per status; 401 and 404 really are invalid_request_error on the wire.
ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    413: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def usage_obj(u: Usage) -> JsonDict:
    prompt_details: JsonDict = {"cached_tokens": u.cached, "audio_tokens": 0}
    if u.cache_write:
        prompt_details["cache_write_tokens"] = u.cache_write
    return {
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.total,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def call_ids(reply: Reply, n: int) -> list[str]:
    return [f"call_fake{n}x{i}" for i in range(len(reply.tool_calls))]


def body(reply: Reply, ctx: RenderContext) -> JsonDict:
    n = next_id()
    message: JsonDict = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if reply.thinking:
        message["reasoning_content"] = reply.thinking
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for cid, (name, args) in zip(call_ids(reply, n), reply.tool_calls, strict=True)
        ]
    out: JsonDict = {
        "id": f"chatcmpl-fake{n}",
        "object": "chat.completion",
        "created": CREATED_AT,
        "model": ctx.model,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish, "logprobs": None}],
        "system_fingerprint": None,
    }
    if reply.usage is not None:
        out["usage"] = usage_obj(reply.usage)
    return out


def _call_fragments(reply: Reply, index: int, call_id: str) -> list[JsonDict]:
    name, args = reply.tool_calls[index]
    if reply.split_id_and_name:
        first = [
            {"index": index, "id": call_id, "type": "function"},
            {"index": index, "function": {"name": name, "arguments": ""}},
        ]
    else:
        first = [
            {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        ]
    rest = [
        {"index": index, "function": {"arguments": piece}}
        for piece in split_text(json.dumps(args), reply.args_chunks)
    ]
    return first + rest


def _round_robin(seqs: list[list[JsonDict]]) -> Iterator[JsonDict]:
    for i in range(max(map(len, seqs), default=0)):
        for seq in seqs:
            if i < len(seq):
                yield seq[i]


def _deltas(reply: Reply, n: int) -> list[JsonDict]:
    deltas: list[JsonDict] = [{"role": "assistant", "content": ""}]
    if reply.thinking:
        deltas += [{"reasoning_content": p} for p in split_text(reply.thinking, reply.chunks)]
    deltas += [{"content": p} for p in split_text(reply.text, reply.chunks)]
    seqs = [_call_fragments(reply, i, cid) for i, cid in enumerate(call_ids(reply, n))]
    fragments = _round_robin(seqs) if reply.interleave_tool_calls else (f for s in seqs for f in s)
    deltas += [{"tool_calls": [f]} for f in fragments]
    return deltas


def frames(reply: Reply, ctx: RenderContext) -> list[bytes]:
    n = next_id()
    base: JsonDict = {
        "id": f"chatcmpl-fake{n}",
        "object": "chat.completion.chunk",
        "created": CREATED_AT,
        "model": ctx.model,
        "system_fingerprint": None,
    }

    def frame(delta: JsonDict, finish: str | None = None) -> bytes:
        obj: JsonDict = {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if ctx.include_usage:
            obj["usage"] = None
        return sse(obj)

    deltas = _deltas(reply, n)
    if reply.content_and_finish_in_one_chunk:
        out = [frame(d) for d in deltas[:-1]] + [frame(deltas[-1], reply.finish)]
    else:
        out = [frame(d) for d in deltas] + [frame({}, reply.finish)]
    if ctx.include_usage and reply.usage is not None:
        out.append(sse({**base, "choices": [], "usage": usage_obj(reply.usage)}))
    out.append(DONE)
    return out


def error_body(reply: Reply, status: int) -> JsonDict:
    etype, code = ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {
        "error": {
            "message": reply.error or f"fake upstream error {status}",
            "type": reply.error_type or etype,
            "param": None,
            "code": reply.error_code or code,
        }
    }


def midstream_error(reply: Reply, ctx: RenderContext, seq: int) -> bytes:
    return sse(
        {
            "error": {
                "message": reply.error or "The server had an error while processing your request.",
                "type": reply.error_type or "server_error",
                "param": None,
                "code": reply.error_code,
            }
        }
    )

"""OpenAI Responses wire shapes, written from the reference (formats.md §1.2), for the fake upstream.

Stream grammar: every frame is `event: <type>` + `data: {type, sequence_number, …}`, numbered from 0
across all events: response.created, response.in_progress, then per output item (reasoning, message,
function_call — in that order) output_item.added … output_item.done, then response.completed (or
response.incomplete for length / content_filter). No [DONE].
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

from tests.fakes import render_chat
from tests.fakes.reply import Reply, Usage
from tests.fakes.wire import CREATED_AT, JsonDict, RenderContext, next_id, split_text, sse

MALFORMED = (
    b"event: response.output_text.delta\n"
    b'data: {"type":"response.output_text.delta","sequence_number":99,"delta":"unterminated\n\n'
)
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}

Emit = Callable[..., bytes]


def usage_obj(u: Usage) -> JsonDict:
    return {
        "input_tokens": u.input,
        "input_tokens_details": {"cached_tokens": u.cached},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.total,
    }


def _response(n: int, ctx: RenderContext, status: str, output: list[JsonDict]) -> JsonDict:
    return {
        "id": f"resp_fake{n}",
        "object": "response",
        "created_at": CREATED_AT,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": ctx.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "metadata": {},
    }


def _reasoning_item(reply: Reply, n: int) -> JsonDict:
    item: JsonDict = {"id": f"rs_fake{n}", "type": "reasoning", "summary": []}
    if reply.thinking:
        item["summary"] = [{"type": "summary_text", "text": reply.thinking}]
    if reply.signature is not None:
        item["encrypted_content"] = reply.signature
    return item


def _message_item(reply: Reply, n: int) -> JsonDict:
    part = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
    return {
        "id": f"msg_fake{n}",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [part],
    }


def _call_items(reply: Reply, n: int) -> list[JsonDict]:
    return [
        {
            "id": f"fc_fake{n}x{i}",
            "type": "function_call",
            "call_id": f"call_fake{n}x{i}",
            "name": name,
            "arguments": json.dumps(args),
            "status": "completed",
        }
        for i, (name, args) in enumerate(reply.tool_calls)
    ]


def _output(reply: Reply, n: int) -> list[JsonDict]:
    out: list[JsonDict] = []
    if reply.thinking is not None or reply.signature is not None:
        out.append(_reasoning_item(reply, n))
    if reply.text:
        out.append(_message_item(reply, n))
    return out + _call_items(reply, n)


def _finish(resp: JsonDict, reply: Reply, with_usage: bool) -> str:
    """Fill the terminal fields of `resp`; return the terminal event type."""
    if with_usage and reply.usage is not None:
        resp["usage"] = usage_obj(reply.usage)
    reason = INCOMPLETE_REASONS.get(reply.finish)
    if reason is None:
        resp["status"] = "completed"
        return "response.completed"
    resp["status"] = "incomplete"
    resp["incomplete_details"] = {"reason": reason}
    return "response.incomplete"


def body(reply: Reply, ctx: RenderContext) -> JsonDict:
    n = next_id()
    resp = _response(n, ctx, "completed", _output(reply, n))
    _finish(resp, reply, with_usage=True)
    return resp


def _item_events(reply: Reply, item: JsonDict, index: int, emit: Emit) -> list[bytes]:
    kind = item["type"]
    if kind == "reasoning":
        started: JsonDict = {**item, "summary": []}
        started.pop("encrypted_content", None)
        out = [emit("response.output_item.added", output_index=index, item=started)]
        if reply.thinking:
            out += _summary_events(reply.thinking, reply.chunks, item["id"], index, emit)
    elif kind == "message":
        started = {**item, "status": "in_progress", "content": []}
        out = [emit("response.output_item.added", output_index=index, item=started)]
        out += _text_events(item["content"][0], reply.chunks, item["id"], index, emit)
    else:
        started = {**item, "arguments": "", "status": "in_progress"}
        out = [emit("response.output_item.added", output_index=index, item=started)]
        loc = {"item_id": item["id"], "output_index": index}
        out += [
            emit("response.function_call_arguments.delta", **loc, delta=piece)
            for piece in split_text(item["arguments"], reply.args_chunks)
        ]
        out.append(
            emit(
                "response.function_call_arguments.done", **loc, arguments=item["arguments"], name=item["name"]
            )
        )
    out.append(emit("response.output_item.done", output_index=index, item=item))
    return out


def _summary_events(text: str, chunks: int, item_id: str, index: int, emit: Emit) -> list[bytes]:
    loc = {"item_id": item_id, "output_index": index, "summary_index": 0}
    return [
        emit("response.reasoning_summary_part.added", **loc, part={"type": "summary_text", "text": ""}),
        *(
            emit("response.reasoning_summary_text.delta", **loc, delta=piece)
            for piece in split_text(text, chunks)
        ),
        emit("response.reasoning_summary_text.done", **loc, text=text),
        emit("response.reasoning_summary_part.done", **loc, part={"type": "summary_text", "text": text}),
    ]


def _text_events(part: JsonDict, chunks: int, item_id: str, index: int, emit: Emit) -> list[bytes]:
    loc = {"item_id": item_id, "output_index": index, "content_index": 0}
    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    return [
        emit("response.content_part.added", **loc, part=empty),
        *(
            emit("response.output_text.delta", **loc, delta=piece, logprobs=[])
            for piece in split_text(part["text"], chunks)
        ),
        emit("response.output_text.done", **loc, text=part["text"], logprobs=[]),
        emit("response.content_part.done", **loc, part=part),
    ]


def frames(reply: Reply, ctx: RenderContext) -> list[bytes]:
    n = next_id()
    seq = itertools.count()

    def emit(kind: str, **fields: object) -> bytes:
        return sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

    started = _response(n, ctx, "in_progress", [])
    out = [emit("response.created", response=started), emit("response.in_progress", response=started)]
    items = _output(reply, n)
    for index, item in enumerate(items):
        out += _item_events(reply, item, index, emit)
    final = _response(n, ctx, "completed", items)
    terminal = _finish(final, reply, with_usage=reply.include_usage is not False)
    out.append(emit(terminal, response=final))
    return out


def error_body(reply: Reply, status: int) -> JsonDict:
    return render_chat.error_body(reply, status)


def midstream_error(reply: Reply, ctx: RenderContext, seq: int) -> bytes:
    resp = _response(next_id(), ctx, "failed", [])
    resp["error"] = {
        "code": reply.error_code or "server_error",
        "message": reply.error or "The server had an error while processing your request.",
    }
    return sse({"type": "response.failed", "sequence_number": seq, "response": resp}, event="response.failed")

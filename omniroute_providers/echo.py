"""The built-in `echo` provider: an OpenAI-compatible upstream that lives in the process.

It answers with the text of the last user message, streamed in small pieces when asked to stream, so a user
can try a client set-up end to end (any client format, through the real translation path) without a network
or spending tokens. It reports usage (a characters/4 estimate) like a real provider does.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import trio

from omniroute import JSONDecodeError, JsonObj, dumps, loads
from omniroute_providers.ir import new_id

ECHO_CHUNK_CHARS = 12  # small pieces, so streaming is visible in a terminal
ECHO_PACE_S = 0.01


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def echo_text(body: JsonObj) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _text_of(message.get("content"))
            if text:
                return text
    return "(echo: no user message)"


def _usage(body: JsonObj, text: str) -> JsonObj:
    prompt = max(
        1,
        sum(len(_text_of(m.get("content"))) for m in body.get("messages") or [] if isinstance(m, dict)) // 4,
    )
    completion = max(1, len(text) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class EchoResponse:
    """Quacks like upstream.UpstreamResponse."""

    def __init__(self, body: bytes, pace_s: float = ECHO_PACE_S) -> None:
        try:
            parsed = loads(body)
        except JSONDecodeError:
            parsed = {}
        self.body: JsonObj = parsed if isinstance(parsed, dict) else {}
        self.stream = bool(self.body.get("stream"))
        self.status = 200
        self.headers = {"content-type": "text/event-stream" if self.stream else "application/json"}
        self.pace_s = pace_s
        self._model = str(self.body.get("model") or "echo")
        self._text = echo_text(self.body)

    def _chunks(self) -> list[bytes]:
        rid, created, text = new_id("chatcmpl-echo"), int(time.time()), self._text
        if not self.stream:
            return [
                dumps(
                    {
                        "id": rid,
                        "object": "chat.completion",
                        "created": created,
                        "model": self._model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": _usage(self.body, text),
                    }
                )
            ]

        def chunk(delta: JsonObj, finish: str | None = None) -> bytes:
            frame = {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self._model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + dumps(frame) + b"\n\n"

        out = [chunk({"role": "assistant", "content": ""})]
        out.extend(
            chunk({"content": text[i : i + ECHO_CHUNK_CHARS]}) for i in range(0, len(text), ECHO_CHUNK_CHARS)
        )
        out.append(chunk({}, "stop"))
        usage = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": self._model}
        usage.update(choices=[], usage=_usage(self.body, text))
        out.append(b"data: " + dumps(usage) + b"\n\ndata: [DONE]\n\n")
        return out

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return _Paced(self._chunks(), self.pace_s if self.stream else 0.0)

    async def read(self, limit: int = 0) -> bytes:
        return b"".join(self._chunks())

    async def aclose(self) -> None:
        return None


class _Paced:
    """Yields prepared chunks with a pause before each content piece (an iterator, not a generator)."""

    def __init__(self, chunks: list[bytes], pace_s: float) -> None:
        self._chunks = chunks
        self._i = 0
        self._pace = pace_s

    def __aiter__(self) -> _Paced:
        return self

    async def __anext__(self) -> bytes:
        if self._i >= len(self._chunks):
            raise StopAsyncIteration
        if self._pace and 0 < self._i < len(self._chunks) - 2:
            await trio.sleep(self._pace)
        chunk = self._chunks[self._i]
        self._i += 1
        return chunk

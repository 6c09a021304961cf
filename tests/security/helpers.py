"""Shared by the security tests: raw sockets from a chosen source address, response parsing, request bodies
in each client format."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import trio

from tests.conftest import Harness

OTHER_IP = "127.0.0.2"  # Linux routes all of 127/8 to lo: a second client address without any set-up

STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")


async def raw_exchange(
    port: int, payload: bytes, *, source: str | None = None, read_timeout: float = 5.0, eof: bool = True
) -> bytes:
    """Send `payload` (then EOF) and read until the server closes or `read_timeout` passes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    out = b""
    async with stream:
        try:
            await stream.send_all(payload)
            if eof:
                await stream.send_eof()
        except (trio.BrokenResourceError, OSError):
            pass  # the server answered and closed before taking everything: read what it said
        with trio.move_on_after(read_timeout):
            while True:
                try:
                    data = await stream.receive_some(65536)
                except (trio.BrokenResourceError, OSError):
                    break
                if not data:
                    break
                out += data
    return out


def statuses(raw: bytes) -> list[int]:
    return [int(m.group(1)) for m in STATUS_LINE.finditer(raw)]


def client_from(h: Harness, source: str, **headers: str) -> httpx.AsyncClient:
    """An httpx client for the gateway whose connections come from `source`."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(
        base_url=h.url,
        transport=transport,
        headers={"authorization": f"Bearer {h.key}", **headers},
        timeout=30,
    )


# One minimal request per client format: (path, body)
def requests_by_format(model: str, text: str = "hi", **extra: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "openai-chat": (
            "/v1/chat/completions",
            {"model": model, "messages": [{"role": "user", "content": text}], **extra},
        ),
        "openai-responses": ("/v1/responses", {"model": model, "input": text, **extra}),
        "anthropic": (
            "/v1/messages",
            {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": text}], **extra},
        ),
        "gemini": (
            f"/v1beta/models/{model}:generateContent",
            {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra},
        ),
    }


def error_code(fmt: str, body: dict[str, Any]) -> str | None:
    """The machine code of an error body in a client format (None when it has none)."""
    if fmt == "anthropic":
        assert body["type"] == "error", body
        return str(body["error"]["type"])
    err = body["error"]
    if fmt == "gemini":
        return str(err.get("status"))
    return err.get("code")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()

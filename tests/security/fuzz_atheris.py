"""Coverage-guided fuzzing with atheris (libFuzzer for Python): not part of the pytest suite, run by hand or
in a nightly job (F-01: minutes per target in CI, an hour nightly).

    pip install atheris
    python tests/security/fuzz_atheris.py http  -max_total_time=300      # raw bytes to a live gateway
    python tests/security/fuzz_atheris.py body  -max_total_time=300      # JSON decoder + request parsers
    python tests/security/fuzz_atheris.py egress -max_total_time=300     # numeric host spellings vs inet_aton

Anything after the target name goes to libFuzzer (-runs=N, -max_len=N, a corpus directory, ...). A crash
is an input that breaks the target's contract, the same contracts as tests/security/test_fuzz.py:
* http: every answer is a status below 500 (501 for an unknown transfer coding), nothing is logged at ERROR
  (a crashed handler or connection), no answer takes longer than the deadline;
* body: `loads_object` returns a dict or raises InvalidRequestError; each format's `parse_request` returns a
  ChatRequest or raises a GatewayError with a 4xx status;
* egress: `parse_ip_literal` agrees with the C library's inet_aton on every IPv4 spelling that inet_aton
  accepts, and never raises anything but ValueError.
"""

from __future__ import annotations

import logging
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports():
    import h11  # noqa: F401 - instrumented for coverage of the parser it drives
    import trio

    from omniroute import GatewayError, InvalidRequestError, dumps, loads_object
    from omniroute_providers.egress import parse_ip_literal
    from omniroute_providers.formats import get_format
    from omniroute_web.app import Gateway

    FORMATS = ["openai-chat", "openai-responses", "anthropic", "gemini"]
    for _fmt in FORMATS:  # format modules load lazily: import them here so they are instrumented too
        get_format(_fmt)
DEADLINE_S = 10.0


# ----------------------------------------------------------------------------------------------------------
# body
# ----------------------------------------------------------------------------------------------------------


# Field names and values the parsers branch on: drawing keys from these lets the fuzzer reach past
# "missing field" errors, which raw JSON bytes rarely do (the JSON decoder is C code it cannot see into).
KEYS = [
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "tools",
    "tool_calls",
    "tool_call_id",
    "function",
    "name",
    "arguments",
    "parameters",
    "input",
    "instructions",
    "system",
    "contents",
    "parts",
    "functionCall",
    "functionResponse",
    "inlineData",
    "image_url",
    "url",
    "source",
    "data",
    "media_type",
    "stream",
    "max_tokens",
    "tool_choice",
    "thinking",
    "reasoning",
    "signature",
    "id",
    "call_id",
    "output",
    "systemInstruction",
    "generationConfig",
    "response_format",
    "json_schema",
    "schema",
    "stop",
]
VALUES = [
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "model",
    "text",
    "image_url",
    "input_text",
    "function",
    "function_call",
    "function_call_output",
    "tool_use",
    "tool_result",
    "thinking",
    "message",
    "auto",
    "none",
    "required",
    "object",
    "string",
    "data:image/png;base64,AAAA",
]


def _json_value(fdp: Any, depth: int = 0) -> Any:
    kind = fdp.ConsumeIntInRange(0, 9 if depth < 6 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeIntInRange(-(2**63), 2**63 - 1)
    if kind == 3:
        return fdp.ConsumeRegularFloat()
    if kind in (4, 5):
        return VALUES[fdp.ConsumeIntInRange(0, len(VALUES) - 1)]
    if kind == 6:
        return fdp.ConsumeUnicodeNoSurrogates(16)
    if kind == 7:
        return [_json_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    obj = {}
    for _ in range(fdp.ConsumeIntInRange(0, 5)):
        key = (
            KEYS[fdp.ConsumeIntInRange(0, len(KEYS) - 1)]
            if fdp.ConsumeBool()
            else fdp.ConsumeUnicodeNoSurrogates(6)
        )
        obj[key] = _json_value(fdp, depth + 1)
    return obj


def fuzz_body(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    raw = dumps(_json_value(fdp)) if fdp.ConsumeBool() else fdp.ConsumeBytes(4096)
    try:
        body = loads_object(raw)
    except InvalidRequestError:
        return
    if not isinstance(body, dict):
        raise AssertionError(f"loads_object returned {type(body).__name__}")
    for fmt in FORMATS:
        try:
            get_format(fmt).parse_request(body)
        except GatewayError as exc:
            if not 400 <= exc.status < 500:
                raise AssertionError(f"{fmt}: {exc!r}") from exc


# ----------------------------------------------------------------------------------------------------------
# egress
# ----------------------------------------------------------------------------------------------------------


def fuzz_egress(data: bytes) -> None:
    host = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(64)
    try:
        ours = parse_ip_literal(host)
    except ValueError:
        ours = None
    if ":" in host or not host.isascii() or "\x00" in host:
        return
    try:
        theirs = socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return
    # inet_aton ignores anything after whitespace ("127.0.0.1 x"); getaddrinfo does not, so neither do we.
    if any(c.isspace() for c in host):
        return
    if ours is None or str(ours) != theirs:
        raise AssertionError(f"{host!r}: inet_aton reads {theirs}, parse_ip_literal reads {ours}")


# ----------------------------------------------------------------------------------------------------------
# http: a live gateway in a thread, raw bytes over a socket
# ----------------------------------------------------------------------------------------------------------


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_live: dict[str, Any] = {}


def _start_gateway() -> None:
    from omniroute import load_settings

    data = tempfile.mkdtemp(prefix="omniroute-fuzz-")
    settings = load_settings(
        {
            "host": "127.0.0.1",
            "port": 0,
            "data_dir": data,
            "no_open": True,
            "demo": True,
            "header_timeout_s": 2,
            "body_idle_timeout_s": 2,
            "keepalive_timeout_s": 2,
            "max_body_bytes": 256 * 1024,
        },
        env={},
    )
    gw = Gateway(settings)
    errors = _Errors()
    logging.getLogger("omniroute").addHandler(errors)
    ready = threading.Event()

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            _live["port"] = await nursery.start(
                lambda task_status: gw.run(task_status=task_status, handle_signals=False)
            )
            ready.set()

    threading.Thread(target=trio.run, args=(serve,), daemon=True).start()
    if not ready.wait(15):
        raise SystemExit("the gateway did not start")
    _live["errors"] = errors
    _live["key"] = (gw.first_run.client_key or "").encode()


# Known defects, skipped so the fuzzer looks for new ones (remove with the fix; see test_http_edges.py).
KNOWN_DEFECTS = [b"HEAD "]  # the server writes a body on HEAD responses and the connection crashes


def fuzz_http(data: bytes) -> None:
    if any(marker in data for marker in KNOWN_DEFECTS):
        return
    payload = data.replace(b"{KEY}", _live["key"])  # let the fuzzer find the way past authentication
    errors: _Errors = _live["errors"]
    errors.messages.clear()
    started = time.monotonic()
    out = b""
    with socket.create_connection(("127.0.0.1", _live["port"]), timeout=DEADLINE_S) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                raise AssertionError(f"no answer within {DEADLINE_S}s") from None
            if not chunk:
                break
            out += chunk
    if time.monotonic() - started > DEADLINE_S:
        raise AssertionError("the answer took too long")
    for line in out.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 ") and len(line) >= 12:
            status = int(line[9:12])
            if status >= 500 and status != 501:
                raise AssertionError(f"status {status} for {payload[:200]!r}")
    if errors.messages:
        raise AssertionError(f"logged: {errors.messages[:3]} for {payload[:200]!r}")


SEEDS = [
    b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\n"
    b"content-length: 66\r\n\r\n"
    b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}]}',
    b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {KEY}\r\ntransfer-encoding: chunked\r\n\r\n"
    b'4\r\n{"mo\r\n0\r\n\r\n',
]

TARGETS = {"body": fuzz_body, "egress": fuzz_egress, "http": fuzz_http}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer options]")
    name = sys.argv[1]
    args = [sys.argv[0], *sys.argv[2:]]
    if name == "http":
        _start_gateway()
        corpus = [a for a in args[1:] if not a.startswith("-")]
        if not corpus:  # seed a fresh corpus so the fuzzer starts from real requests
            seed_dir = tempfile.mkdtemp(prefix="omniroute-http-corpus-")
            for i, seed in enumerate(SEEDS):
                Path(seed_dir, f"seed{i}").write_bytes(seed)
            args.append(seed_dir)
    if not any(a.startswith("-artifact_prefix=") for a in args):  # crash files go to /tmp, not the checkout
        args.append(f"-artifact_prefix={tempfile.mkdtemp(prefix='omniroute-fuzz-crashes-')}/")
    logging.getLogger().setLevel(logging.CRITICAL if name != "http" else logging.WARNING)
    atheris.Setup(args, TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()

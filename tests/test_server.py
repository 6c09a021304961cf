"""The HTTP server's own guarantees, over raw sockets: limits answer 413/431 and the server keeps serving,
slowloris and idle connections are closed by their deadlines, graceful shutdown drains streams."""

from __future__ import annotations

import socket

import httpx
import pytest
import trio

from omniroute import dumps
from omniroute_web.server import Request, Responder, Server, ServerConfig
from tests.conftest import Harness, MakeGateway
from tests.fakes.fixtures import MakeFake
from tests.fakes.reply import Reply


async def _raw(port: int, payload: bytes, *, read_timeout: float = 3.0) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(payload)
        out = b""
        with trio.move_on_after(read_timeout):
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    break
                out += data
    return out


def _port(h: Harness) -> int:
    return h.gw.server.ports[0]


async def test_body_over_the_limit_is_413_in_the_client_format_and_serving_goes_on(make_gateway: MakeGateway) -> None:
    h = await make_gateway(max_body_bytes=2000, demo=True)
    async with h.http:
        big = {"model": "echo", "messages": [{"role": "user", "content": "x" * 5000}]}
        r = await h.http.post("/v1/chat/completions", json=big)
        assert r.status_code == 413
        assert r.json()["error"]["message"]
        r = await h.http.post("/v1/messages", json={**big, "max_tokens": 5})
        assert r.status_code == 413 and r.json()["type"] == "error"  # Anthropic's error shape
        ok = await h.http.post("/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]})
        assert ok.status_code == 200


async def test_chunked_body_over_the_limit_is_413_without_reading_it_all(make_gateway: MakeGateway) -> None:
    h = await make_gateway(max_body_bytes=1000, demo=True)

    async def chunks():  # no content-length: the limit must hold while reading
        for _ in range(100):
            yield b"y" * 500

    async with h.http:
        r = await h.http.post("/v1/chat/completions", content=chunks())
        assert r.status_code == 413


async def test_oversized_headers_are_431_and_serving_goes_on(gateway: Harness) -> None:
    resp = await _raw(_port(gateway), b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 431")
    resp = await _raw(_port(gateway), b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 150 + b"\r\n")
    assert resp.startswith(b"HTTP/1.1 431")
    assert (await gateway.http.get("/health")).status_code == 200


async def test_malformed_request_and_smuggling_shapes_are_400(gateway: Harness) -> None:
    resp = await _raw(_port(gateway), b"GARBAGE\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 400")
    smuggle = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    resp = await _raw(_port(gateway), smuggle)
    assert resp.startswith(b"HTTP/1.1 400")


async def test_slowloris_connection_is_closed_at_the_header_deadline(make_gateway: MakeGateway) -> None:
    h = await make_gateway(header_timeout_s=1.0)
    stream = await trio.open_tcp_stream("127.0.0.1", _port(h))
    start = trio.current_time()
    closed_at = None
    async with stream:
        with trio.move_on_after(5):
            for byte in b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Drip: " + b"z" * 100:
                try:
                    await stream.send_all(bytes([byte]))
                except (trio.BrokenResourceError, OSError):
                    closed_at = trio.current_time()
                    break
                await trio.sleep(0.2)
    assert closed_at is not None and closed_at - start < 2.5
    await h.http.aclose()


async def test_idle_keepalive_connection_is_closed(make_gateway: MakeGateway) -> None:
    h = await make_gateway(keepalive_timeout_s=0.5)
    stream = await trio.open_tcp_stream("127.0.0.1", _port(h))
    async with stream:
        await stream.send_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await stream.receive_some(65536)
        assert first.startswith(b"HTTP/1.1 200")
        with trio.fail_after(3):
            assert await stream.receive_some(65536) == b""  # closed by the server after the idle timeout
    await h.http.aclose()


async def test_expect_100_continue_gets_an_interim_response(gateway: Harness) -> None:
    body = dumps({"model": "nope/nope", "messages": []})
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Authorization: Bearer " + gateway.key.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    stream = await trio.open_tcp_stream("127.0.0.1", _port(gateway))
    async with stream:
        await stream.send_all(head)
        with trio.fail_after(3):
            interim = await stream.receive_some(65536)
        assert interim.startswith(b"HTTP/1.1 100")
        await stream.send_all(body)
        with trio.fail_after(3):
            final = await stream.receive_some(65536)
        assert b" 404 " in final.split(b"\r\n", 1)[0] or b"HTTP/1.1 404" in interim + final


async def test_connection_cap_answers_503(make_gateway: MakeGateway) -> None:
    h = await make_gateway(max_connections=2)
    held = [await trio.open_tcp_stream("127.0.0.1", _port(h)) for _ in range(2)]
    await trio.sleep(0.1)
    resp = await _raw(_port(h), b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 503")
    for s in held:
        await s.aclose()
    await h.http.aclose()


async def test_graceful_shutdown_lets_an_in_flight_stream_finish(make_gateway: MakeGateway, make_fake_upstream: MakeFake) -> None:
    h = await make_gateway(drain_timeout_s=10)
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(text="a b c d e", chunks=5, pace_s=0.2)
    h.add_account("openai", base_url=fake.base_url)
    await h.reload()
    lines: list[str] = []
    async with h.http, h.http.stream("POST", "/v1/chat/completions", json={
        "model": "openai/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]}) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                lines.append(line)
                if len(lines) == 2:
                    h.gw.server.shutdown()
                    with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
                        async with httpx.AsyncClient() as other:
                            await other.get(h.url + "/health")
    assert lines[-1] == "data: [DONE]"
    assert "".join(lines).count('"content":"') >= 5


async def test_drain_deadline_ends_streams_with_a_terminal_error_event(make_gateway: MakeGateway, make_fake_upstream: MakeFake) -> None:
    h = await make_gateway(drain_timeout_s=0.5)
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(text="s" * 100, chunks=50, pace_s=0.2)
    h.add_account("openai", base_url=fake.base_url)
    await h.reload()
    lines: list[str] = []
    async with h.http, h.http.stream("POST", "/v1/messages", json={
        "model": "openai/gpt-4o-mini", "stream": True, "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}]}) as r:
        async for line in r.aiter_lines():
            lines.append(line)
            if line.startswith("event: content_block_delta") and not h.gw.server.draining:
                h.gw.server.shutdown()
    assert "event: error" in lines  # Anthropic's in-stream error frame, not a truncated stream
    assert "shutting down" in "".join(lines)
    await fake.wait_for_disconnect(timeout=3)


async def test_server_survives_a_handler_that_raises() -> None:
    async def app(request: Request, responder: Responder) -> None:
        if request.path == "/boom":
            raise RuntimeError("secret internal detail")
        await responder.send(200, [], b"fine")

    server = Server(app, ServerConfig())
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            r = await c.get("/boom")
            assert r.status_code == 500 and "secret internal detail" not in r.text
            assert (await c.get("/ok")).text == "fine"
        server.shutdown()


def test_default_bind_is_loopback() -> None:
    from omniroute import Settings

    assert Settings().host == "127.0.0.1"
    assert socket.inet_aton(Settings().host)


async def test_streams_are_framed_for_the_clients_http_version(make_gateway: MakeGateway) -> None:
    """HTTP/1.1 clients get the chunked coding (framed by the server itself), HTTP/1.0 clients a body read
    to the close: both carry the same events."""
    h = await make_gateway(demo=True)
    body = dumps({"model": "echo", "stream": True, "messages": [{"role": "user", "content": "frame me please"}]})

    def request(version: bytes) -> bytes:
        return (
            b"POST /v1/chat/completions HTTP/" + version + b"\r\nHost: x\r\nAuthorization: Bearer "
            + h.key.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )

    def unchunk(raw: bytes) -> bytes:
        out, pos = b"", 0
        while True:
            nl = raw.index(b"\r\n", pos)
            size = int(raw[pos:nl], 16)
            if size == 0:
                assert raw[nl:] == b"\r\n\r\n"  # the last chunk, no trailers
                return out
            out += raw[nl + 2 : nl + 2 + size]
            assert raw[nl + 2 + size : nl + 4 + size] == b"\r\n"
            pos = nl + 4 + size

    async with h.http:
        head11, _, raw11 = (await _raw(_port(h), request(b"1.1"))).partition(b"\r\n\r\n")
        head10, _, raw10 = (await _raw(_port(h), request(b"1.0"))).partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head11.lower()
    assert b"transfer-encoding" not in head10.lower() and b"content-length" not in head10.lower()
    events11 = [line for line in unchunk(raw11).split(b"\n\n") if line]
    events10 = [line for line in raw10.split(b"\n\n") if line]
    assert events11[-1] == events10[-1] == b"data: [DONE]"
    text = b"".join(e for e in events11 if b'"content"' in e)
    assert b"frame" in text and len(events11) == len(events10) > 3


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server


@pytest.mark.parametrize("peek", [False, True], ids=["poll-rdhup", "peek"])
def test_the_disconnect_sweep_tells_a_close_from_a_pipelined_request(
    peek: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """peers_gone, which the server runs over the connections of requests in the works: a close or a reset
    counts, bytes of a next request do not (and are left in place for it), with or without POLLRDHUP."""
    import select
    import struct
    import time

    from omniroute_web import server as srv

    if peek:  # what platforms without POLLRDHUP (macOS) take: peek at readable sockets
        monkeypatch.setattr(srv, "_RDHUP", 0)
        monkeypatch.setattr(srv, "_GONE", select.POLLHUP | select.POLLERR | select.POLLNVAL)
    quiet, pipelined, closed, reset = (_tcp_pair() for _ in range(4))
    pipelined[0].sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
    closed[0].close()
    reset[0].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset[0].close()
    time.sleep(0.05)
    try:
        fds = [s.fileno() for _, s in (quiet, pipelined, closed, reset)]
        assert sorted(srv.peers_gone(fds)) == sorted([closed[1].fileno(), reset[1].fileno()])
        assert pipelined[1].recv(100).startswith(b"GET /health")  # nothing was taken
        assert srv.peers_gone([]) == []
    finally:
        for pair in (quiet, pipelined, closed, reset):
            for s in pair:
                s.close()


async def test_a_client_leaving_a_slow_json_request_cancels_it_within_the_check_interval(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway()
    async with h.http:
        fake = await make_fake_upstream(prefix="/v1")
        fake.default = Reply(first_byte_delay_s=30)
        h.add_account("openai", base_url=fake.base_url)
        await h.reload()
        body = dumps({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        stream = await trio.open_tcp_stream("127.0.0.1", _port(h))
        await stream.send_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"authorization: Bearer {h.key}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        while not fake.requests:
            await trio.sleep(0.01)
        await stream.aclose()
        left = trio.current_time()
        seen = await fake.wait_for_disconnect(timeout=3)
        assert seen - left < 0.5  # the sweep runs every 0.1 s
        with trio.fail_after(1):
            while h.gw.server.active_requests:
                await trio.sleep(0.01)

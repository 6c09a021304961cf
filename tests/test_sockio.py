"""The socket fast path (omniroute_providers/sockio.py) over real loopback TCP connections: it moves the
same bytes as trio's own calls, parks when the kernel would block, stays cancellable and fair, and fails
with trio's stream errors."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator

import pytest
import trio

from omniroute_providers import sockio


@pytest.fixture
async def pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        accepted: list[trio.SocketStream] = []

        async def accept() -> None:
            accepted.append(await listeners[0].accept())

        nursery.start_soon(accept)
        client = await trio.open_tcp_stream("127.0.0.1", port)
    server = accepted[0]
    try:
        yield client, server
    finally:
        for s in (client, server, *listeners):
            await s.aclose()


async def test_large_writes_park_until_the_peer_reads_and_arrive_whole(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    client, server = pair
    payload = bytes(range(256)) * 32768  # 8 MiB: far more than the socket buffers hold
    received = bytearray()

    async def read_all() -> None:
        while len(received) < len(payload):
            received.extend(await sockio.receive_some(server, 65536))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        await sockio.send_all(client, payload)
    assert bytes(received) == payload


async def test_receive_nowait_reads_only_what_has_arrived(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    client, server = pair
    assert sockio.receive_nowait(server, 1024) is None  # nothing sent yet: no waiting, no bytes
    await sockio.send_all(client, b"first")
    await trio.lowlevel.wait_readable(server.socket)
    assert sockio.receive_nowait(server, 1024) == b"first"
    assert sockio.receive_nowait(server, 1024) is None
    await client.aclose()
    await trio.lowlevel.wait_readable(server.socket)
    assert sockio.receive_nowait(server, 1024) == b""  # end of stream


async def test_a_cancelled_task_stops_at_its_next_call_even_with_data_ready(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    client, server = pair
    await sockio.send_all(client, b"ready")
    await trio.sleep(0.05)
    with trio.CancelScope() as scope:
        scope.cancel()
        await sockio.receive_some(server, 1024)
    assert scope.cancelled_caught
    with trio.CancelScope() as scope:
        scope.cancel()
        await sockio.send_all(client, b"more")
    assert scope.cancelled_caught
    assert await sockio.receive_some(server, 1024) == b"ready"  # nothing was consumed by the cancelled read


async def test_a_relay_that_never_waits_still_lets_other_tasks_run(
    pair: tuple[trio.SocketStream, trio.SocketStream],
) -> None:
    client, server = pair
    turns = 0
    rounds = 400

    async def other_task() -> None:
        nonlocal turns
        while True:
            await trio.lowlevel.checkpoint()
            turns += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        await trio.lowlevel.checkpoint()
        before = turns
        for _ in range(rounds):  # the data is always there: no call here needs to park
            await sockio.send_all(client, b"x")
            while not await sockio.receive_some(server, 1):
                pass
        ran = turns - before
        nursery.cancel_scope.cancel()
    assert ran >= 10  # 800 calls: a turn at least every FAIR_CALLS (16) of them


async def test_failures_are_trio_stream_errors(pair: tuple[trio.SocketStream, trio.SocketStream]) -> None:
    client, server = pair
    # the peer resets the connection (SO_LINGER 0 makes close send RST)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await server.aclose()
    await trio.sleep(0.05)
    async def write_until_it_fails() -> None:
        for _ in range(100):
            await sockio.send_all(client, b"y" * 65536)

    with pytest.raises(trio.BrokenResourceError):
        await write_until_it_fails()
    await client.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await sockio.receive_some(client, 10)
    with pytest.raises(trio.ClosedResourceError):
        await sockio.send_all(client, b"z")

"""Socket reads and writes that park the task only when the kernel would block.

trio makes every socket call a scheduling point: a recv or send that succeeds at once still yields to the
run loop before returning. Relaying a stream, that is two trips through the loop for every piece of the
answer, and the trips cost more than the relaying (about a third of the gateway's CPU per stream on the
bench). These functions try the system call first and wait for readiness only when it would block, and
`receive_nowait` lets a relay take everything that has already arrived before it writes.

What trio's own calls guarantee is kept where it matters:
* a cancelled task is cancelled at its next call here (`checkpoint_if_cancelled`, as trio does);
* the run loop still turns at least every FAIR_CALLS calls of the async functions, so one busy stream
  cannot starve the other connections, and deadlines (which the run loop enforces) still fire;
* errors are trio's stream errors: ClosedResourceError for a socket closed under us, BrokenResourceError
  for a broken connection.

Only plain trio.SocketStreams on POSIX take this path (os.read/os.write on the socket's descriptor); TLS
streams and anything else use their own methods.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Awaitable, Callable

import trio

FAIR_CALLS = 16  # calls that did not park, across all tasks, before the run loop is given a turn
_CLOSED_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})
_FAST = os.name == "posix"

_streak = 0  # calls in a row that returned without the run loop turning


def receive_nowait(stream: trio.abc.ReceiveStream, max_bytes: int) -> bytes | None:
    """What has already arrived (b"" at end of stream), or None when a read would block. Not a scheduling
    point. Streams that cannot be read without blocking (TLS) always give None."""
    if not _FAST or type(stream) is not trio.SocketStream:
        return None
    try:
        data = os.read(_fd(stream), max_bytes)
    except BlockingIOError:
        return None
    except OSError as exc:
        raise _stream_error(exc) from None
    global _streak
    _streak += 1
    return data


async def receive_some(stream: trio.abc.ReceiveStream, max_bytes: int) -> bytes:
    """Up to `max_bytes` bytes; b"" at end of stream."""
    if not _FAST or type(stream) is not trio.SocketStream:
        return bytes(await stream.receive_some(max_bytes))
    await trio.lowlevel.checkpoint_if_cancelled()
    while True:
        fd = _fd(stream)
        try:
            data = os.read(fd, max_bytes)
            break
        except BlockingIOError:
            await _park(trio.lowlevel.wait_readable, fd)
        except OSError as exc:
            raise _stream_error(exc) from None
    await _turn_if_due()
    return data


async def send_all(stream: trio.abc.SendStream, data: bytes) -> None:
    """All of `data`, waiting for room in the socket's buffer as needed."""
    if not _FAST or type(stream) is not trio.SocketStream:
        await stream.send_all(data)
        return
    await trio.lowlevel.checkpoint_if_cancelled()
    view = memoryview(data)
    while view:
        fd = _fd(stream)
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            await _park(trio.lowlevel.wait_writable, fd)
        except OSError as exc:
            raise _stream_error(exc) from None
    await _turn_if_due()


def _fd(stream: trio.SocketStream) -> int:
    fd = stream.socket.fileno()
    if fd < 0:
        raise trio.ClosedResourceError("this socket was already closed")
    return fd


async def _park(wait: Callable[[int], Awaitable[None]], fd: int) -> None:
    global _streak
    _streak = 0
    await wait(fd)


async def _turn_if_due() -> None:
    global _streak
    _streak += 1
    if _streak >= FAIR_CALLS:
        _streak = 0
        await trio.lowlevel.cancel_shielded_checkpoint()


def _stream_error(exc: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
    if exc.errno in _CLOSED_ERRNOS:
        return trio.ClosedResourceError("this socket was already closed")
    return trio.BrokenResourceError(f"socket connection broken: {exc}")

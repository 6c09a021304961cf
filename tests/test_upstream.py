"""The upstream client's own pieces: chunked decoding, the egress guard, connection reuse."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from omniroute import UpstreamError
from omniroute_providers.upstream import ChunkedDecoder, UpstreamClient, address_is_public
from tests.fakes.fixtures import MakeFake
from tests.fakes.reply import Reply


def chunked(pieces: list[bytes], trailers: bytes = b"") -> bytes:
    body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) if i % 2 else b"%X\r\n%s\r\n" % (len(p), p)
                    for i, p in enumerate(pieces) if p)
    return body + b"0\r\n" + trailers + b"\r\n"


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=8), st.lists(st.integers(1, 30), max_size=20),
       st.sampled_from([b"", b"X-Checksum: abc\r\n"]))
def test_chunked_decoding_does_not_depend_on_the_split(pieces: list[bytes], cuts: list[int], trailers: bytes) -> None:
    raw = chunked(pieces, trailers)
    dec, out, pos = ChunkedDecoder(), [], 0
    for cut in [*cuts, len(raw)]:
        out.append(dec.feed(raw[pos : pos + cut]))
        pos += cut
        if dec.done:
            break
    assert b"".join(out) == b"".join(pieces)
    assert dec.done


@pytest.mark.parametrize("raw", [b"zz\r\nabc\r\n", b"3\r\nabcX\r\n", b"1_0\r\n" + b"a" * 16 + b"\r\n", b"+3\r\nabc\r\n",
                                 b"f" * 5000])
def test_malformed_chunked_bodies_raise(raw: bytes) -> None:
    with pytest.raises(UpstreamError):
        ChunkedDecoder().feed(raw)


@pytest.mark.parametrize(("ip", "public"), [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False),
    ("192.168.0.1", False), ("172.16.5.4", False), ("169.254.169.254", False), ("100.64.0.1", False),
    ("0.0.0.0", False), ("::1", False), ("fe80::1", False), ("fc00::1", False), ("::ffff:127.0.0.1", False),
    ("224.0.0.1", False),
])
def test_egress_guard_classifies_addresses(ip: str, public: bool) -> None:
    assert address_is_public(ip) is public


async def test_streamed_bodies_reuse_the_connection(make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream()
    fake.default = Reply(text="abcdefghij", chunks=10, sse_split=3)  # frames cut into 3-byte writes
    client = UpstreamClient()
    bodies = []
    for _ in range(3):
        resp = await client.request("POST", fake.base_url + "/v1/chat/completions",
                                    [("content-type", "application/json")], b'{"stream": true}', allow_private=True)
        bodies.append(b"".join([c async for c in resp.iter_bytes()]))
        await resp.aclose()
    assert client.opened == 1  # one connection served all three
    assert all(b.endswith(b"data: [DONE]\n\n") and b"\"content\":\"j\"" in b for b in bodies)
    await client.aclose()


async def test_private_addresses_need_an_explicit_local_flag(make_fake_upstream: MakeFake) -> None:
    from omniroute_providers.upstream import EgressBlockedError

    fake = await make_fake_upstream()
    client = UpstreamClient()
    with pytest.raises(EgressBlockedError):
        await client.request("POST", fake.base_url + "/v1/chat/completions", [], b"{}")
    assert not fake.requests
    with trio.fail_after(5):
        resp = await client.request("POST", fake.base_url + "/v1/chat/completions", [], b"{}", allow_private=True)
    await resp.aclose()
    await client.aclose()

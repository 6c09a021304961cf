"""X-07, the SSRF matrix: every way to name an internal address is refused unless the provider or account
is marked local, the gateway never calls itself, DNS answers are checked and pinned, redirects are not
followed, and nothing in a client's request body can choose where a request (and its key) goes."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio

from omniroute import InvalidRequestError
from omniroute_providers import egress
from omniroute_providers.egress import (
    EgressBlockedError,
    address_is_public,
    check_url,
    parse_ip_literal,
    resolve,
)
from omniroute_providers.upstream import UpstreamClient
from tests.conftest import Harness, MakeGateway
from tests.fakes.fixtures import MakeFake
from tests.fakes.reply import Reply
from tests.security.helpers import requests_by_format

LOOPBACK = ipaddress.IPv4Address("127.0.0.1")

# (spelling, the address it denotes): what C resolvers accept for 127.0.0.1 and the metadata service
SPELLINGS = [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),  # one decimal number
    ("0x7f000001", "127.0.0.1"),  # one hex number
    ("017700000001", "127.0.0.1"),  # one octal number
    ("0x7f.1", "127.0.0.1"),  # hex, short form
    ("0177.0.0.1", "127.0.0.1"),  # octal first part
    ("127.1", "127.0.0.1"),  # short form: the last part fills the remaining bytes
    ("127.0.1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),  # trailing dot
    ("0", "0.0.0.0"),
    ("0.0.0.0", "0.0.0.0"),
    ("169.254.169.254", "169.254.169.254"),
    ("2852039166", "169.254.169.254"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("0251.0376.0251.0376", "169.254.169.254"),
    ("[::1]", "::1"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
    ("[::ffff:7f00:1]", "::ffff:7f00:1"),
    ("[0:0:0:0:0:ffff:127.0.0.1]", "::ffff:7f00:1"),
    ("[::127.0.0.1]", "::7f00:1"),  # IPv4-compatible (deprecated) form
    ("[fe80::1%eth0]", "fe80::1"),
]


@pytest.mark.parametrize(("spelling", "address"), SPELLINGS)
def test_every_numeric_spelling_is_read_as_the_address_it_denotes(spelling: str, address: str) -> None:
    assert parse_ip_literal(spelling) == ipaddress.ip_address(address)
    assert address_is_public(spelling) is False


@pytest.mark.parametrize(
    "host",
    [
        "1.2.3.4.5",
        "08.0.0.1",
        "0x",
        "256.0.0.1",
        "1.2.3.256",
        "1.2.0x10000",
        "99999999999",
        "[::gg]",
        "1." * 5,
    ],
)
def test_numeric_looking_hosts_that_are_no_address_are_refused(host: str) -> None:
    with pytest.raises(ValueError):
        parse_ip_literal(host)
    with pytest.raises((EgressBlockedError, InvalidRequestError)):
        check_url(f"http://{host}/v1", allow_private=True)


@pytest.mark.parametrize(
    "host", ["api.openai.com", "deadbeef", "cafe.babe", "1e100.net", "0x7f.example", "a.1"]
)
def test_host_names_are_left_to_dns(host: str) -> None:
    assert parse_ip_literal(host) is None


REFUSED = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "100.127.255.255",
    "0.0.0.0",
    "0.1.2.3",
    "192.0.0.8",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "febf::1",
    "fec0::1",
    "ff02::1",
    "2001:db8::1",
    "100::1",
    "3fff::1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:0:0",
    "::10.0.0.1",  # mapped / compatible
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::a00:1",  # NAT64 of internal addresses
    "2002:7f00:1::1",
    "2002:a00:1::",  # 6to4 of internal addresses
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo whose client is 127.0.0.1
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",
    "100.128.0.0",
    "172.32.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("ip", REFUSED)
def test_internal_addresses_are_not_public(ip: str) -> None:
    assert address_is_public(ip) is False


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_public(ip: str) -> None:
    assert address_is_public(ip) is True


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/v1",
        "file:///etc/passwd",
        "gopher://x/",
        "//x/v1",
        "x/v1",
        "http:///v1",
        "http://user:pw@example.com/v1",
        "http://example.com:99999/v1",
    ],
)
def test_only_plain_http_and_https_urls_without_credentials(url: str) -> None:
    with pytest.raises(InvalidRequestError):
        check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1\nX-Injected: 1",
        "https://api.example.com/v1\r\nHost: internal",
        "https://api.exa\tmple.com/v1",
        "https://api.example.com/v 1",
        "https://api.example.com/" + "a" * 2100,
    ],
)
def test_a_saved_base_url_is_one_line_without_spaces(url: str) -> None:
    from omniroute_providers.manage import check_base_url

    with pytest.raises(InvalidRequestError, match="one line"):
        check_base_url(url)
    assert check_base_url(" https://api.example.com/v1/ ") == "https://api.example.com/v1"


# ----------------------------------------------------------------------------------------------------------
# through the upstream client, on real sockets
# ----------------------------------------------------------------------------------------------------------

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "017700000001",
    "0x7f.1",
    "0177.0.0.1",
    "127.1",
    "localhost",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_upstream_client_refuses_loopback_in_any_spelling_unless_local(
    host: str, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream()
    client = UpstreamClient()
    url = f"http://{host}:{fake.port}/v1/chat/completions"
    with pytest.raises(EgressBlockedError):
        await client.request("POST", url, [], b"{}")
    assert fake.requests == []
    assert client.opened == 0
    # Marked local, the same spelling reaches the fake: it really denotes this machine.
    with trio.fail_after(5):
        resp = await client.request(
            "POST", url, [("content-type", "application/json")], b'{"model": "m"}', allow_private=True
        )
    assert resp.status == 200
    await resp.aclose()
    assert len(fake.requests) == 1
    await client.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://2852039166/",
        "http://10.0.0.1/v1",
        "http://[fd00::1]/v1",
        "http://100.100.100.200/",
        "http://0.0.0.0:8080/",
    ],
)
async def test_internal_destinations_fail_fast_without_a_connection_attempt(url: str) -> None:
    client = UpstreamClient(connect_timeout=30)
    t0 = trio.current_time()
    with pytest.raises(EgressBlockedError):
        await client.request("GET", url, [], b"")
    assert trio.current_time() - t0 < 1.0
    assert client.opened == 0


@contextmanager
def listening(port: int) -> Iterator[None]:
    egress.add_listening_port(port)
    try:
        yield
    finally:
        egress.remove_listening_port(port)


async def test_the_gateways_own_port_is_refused_even_for_local_accounts(make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream()
    client = UpstreamClient()
    with listening(fake.port):  # as if the gateway itself listened there
        for host in ("127.0.0.1", "localhost", "0x7f.1", "[::ffff:127.0.0.1]", "0.0.0.0"):
            with pytest.raises(EgressBlockedError, match="this gateway itself"):
                await client.request("POST", f"http://{host}:{fake.port}/v1", [], b"{}", allow_private=True)
    assert fake.requests == []
    resp = await client.request("POST", f"http://127.0.0.1:{fake.port}/v1", [], b"{}", allow_private=True)
    await resp.aclose()  # once the port is no longer ours, a local account may use it
    await client.aclose()


def test_own_port_on_another_machine_is_a_different_service() -> None:
    with listening(20128):
        check_url("http://8.8.8.8:20128/v1", allow_private=False)  # a public host's 20128 is not us
        with pytest.raises(EgressBlockedError):
            check_url("http://127.0.0.1:20128/v1", allow_private=True)


async def test_a_gateway_pointed_at_itself_answers_403_once_and_does_not_loop(
    make_gateway: MakeGateway,
) -> None:
    h = await make_gateway()
    with pytest.raises(EgressBlockedError, match="itself"):  # refused when saved ...
        h.add_account("openai", base_url=h.url + "/v1", key="sk-loop-0000", local=True)
    # ... and at connect time, for an account saved before the gateway moved to this port
    h.add_account("openai", base_url="http://127.0.0.1:1/v1", key="sk-loop-0000", local=True)
    h.gw.store.write(lambda db: db.execute("UPDATE accounts SET base_url = ?", (h.url + "/v1",)))
    async with h.http:
        await h.reload()
        for fmt, (path, body) in requests_by_format("openai/gpt-4o-mini").items():
            r = await h.http.post(path, json=body)
            assert r.status_code == 403, (fmt, r.text)
            assert "itself" in r.text
        rows = await h.usage_rows()
        assert len(rows) == 4  # one per request: nothing came back in through the front door


class FakeDNS(trio.abc.HostnameResolver):
    """Answers from a table; counts questions. Any other name: the real resolver."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def getaddrinfo(
        self, host: bytes | None, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.asked.append(name)
        if name not in self.table:
            return await trio.to_thread.run_sync(socket.getaddrinfo, host, port, family, type, proto, flags)
        out = []
        for ip in self.table[name]:
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sockaddr = (ip, int(port), 0, 0) if fam == socket.AF_INET6 else (ip, int(port))
            out.append((fam, socket.SOCK_STREAM, 6, "", sockaddr))
        return out

    async def getnameinfo(self, sockaddr: Any, flags: int) -> tuple[str, str]:
        raise NotImplementedError


@pytest.fixture
async def dns() -> AsyncIterator[FakeDNS]:
    fake = FakeDNS(
        {
            "internal.test": ["10.0.0.1"],
            "metadata.test": ["169.254.169.254"],
            "mapped.test": ["::ffff:127.0.0.1"],
            "rebind.test": ["93.184.216.34", "127.0.0.1"],  # one public and one private answer
            "public.test": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
            "pinned.test": ["127.0.0.1"],
        }
    )
    previous = trio.socket.set_custom_hostname_resolver(fake)
    yield fake
    trio.socket.set_custom_hostname_resolver(previous)


@pytest.mark.parametrize("name", ["internal.test", "metadata.test", "mapped.test", "rebind.test"])
async def test_names_resolving_to_internal_addresses_are_refused(name: str, dns: FakeDNS) -> None:
    with pytest.raises(EgressBlockedError):
        await resolve(name, 443, allow_private=False)


async def test_a_public_name_resolves_to_its_checked_addresses(dns: FakeDNS) -> None:
    assert await resolve("public.test", 443, allow_private=False) == [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
    ]


async def test_the_address_is_resolved_once_and_the_socket_connects_to_it(
    dns: FakeDNS, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream()
    client = UpstreamClient()
    resp = await client.request(
        "POST",
        f"http://pinned.test:{fake.port}/v1/chat/completions",
        [("content-type", "application/json")],
        b'{"model": "m"}',
        allow_private=True,
    )
    await resp.aclose()
    assert resp.status == 200
    # One question for one connection: trio's connect was handed the address, not the name (asking again
    # would give a rebinding server its chance to answer differently).
    assert dns.asked == ["pinned.test"]
    assert fake.requests[0].headers["host"] == f"pinned.test:{fake.port}"  # virtual hosting still works
    await client.aclose()


# ----------------------------------------------------------------------------------------------------------
# redirects
# ----------------------------------------------------------------------------------------------------------


def redirect_to(url: str, status: int = 302) -> Reply:
    head = f"HTTP/1.1 {status} Found\r\nlocation: {url}\r\ncontent-length: 0\r\n\r\n"
    return Reply(raw=head.encode())


async def test_upstream_client_hands_a_redirect_back_instead_of_following_it(
    make_fake_upstream: MakeFake,
) -> None:
    provider, internal = await make_fake_upstream(), await make_fake_upstream()
    provider.default = redirect_to(internal.base_url + "/v1/chat/completions")
    client = UpstreamClient()
    resp = await client.request(
        "POST",
        provider.base_url + "/v1/chat/completions",
        [("authorization", "Bearer sk-provider-key")],
        b"{}",
        allow_private=True,
    )
    assert resp.status == 302
    assert resp.headers["location"].startswith(internal.base_url)
    await resp.aclose()
    assert internal.requests == []
    await client.aclose()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_provider_redirect_is_an_error_and_the_key_goes_nowhere(
    status: int, stream: bool, gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    provider, internal = await make_fake_upstream(prefix="/v1"), await make_fake_upstream(prefix="/v1")
    provider.default = redirect_to(internal.base_url + "/chat/completions", status)
    gateway.add_account("openai", base_url=provider.base_url, key="sk-redirected-9999")
    await gateway.reload()
    r = await gateway.http.post(
        "/v1/chat/completions",
        json={
            "model": "openai/gpt-4o-mini",
            "stream": stream,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert r.status_code >= 400, r.text
    assert r.status_code != 500, r.text
    assert "error" in r.json()
    assert provider.requests
    assert internal.requests == []


# ----------------------------------------------------------------------------------------------------------
# client bodies cannot steer the request
# ----------------------------------------------------------------------------------------------------------

OVERRIDES = {
    "api_base": "{attacker}",
    "base_url": "{attacker}",
    "baseURL": "{attacker}",
    "api_key": "sk-attacker-supplied",
    "extra_headers": {"x-evil": "1", "authorization": "Bearer sk-attacker-supplied", "host": "evil.test"},
    "extra_query": {"key": "sk-attacker-supplied"},
    "custom_llm_provider": "openai",
    "litellm_params": {"api_base": "{attacker}"},
}


def _with_attacker(value: Any, attacker: str) -> Any:
    if isinstance(value, str):
        return value.replace("{attacker}", attacker)
    if isinstance(value, dict):
        return {k: _with_attacker(v, attacker) for k, v in value.items()}
    return value


@pytest.mark.parametrize("fmt", ["openai-chat", "openai-responses", "anthropic", "gemini"])
async def test_base_url_and_header_overrides_in_a_client_body_are_ignored(
    fmt: str, gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    provider, attacker = await make_fake_upstream(prefix="/v1"), await make_fake_upstream(prefix="/v1")
    gateway.add_account("openai", base_url=provider.base_url, key="sk-real-account-1234")
    await gateway.reload()
    path, body = requests_by_format("openai/gpt-4o-mini")[fmt]
    body = {**body, **_with_attacker(OVERRIDES, attacker.base_url)}
    r = await gateway.http.post(path, json=body)
    assert r.status_code == 200, r.text
    assert attacker.requests == []
    (req,) = provider.requests
    assert req.credential == "sk-real-account-1234"
    assert "x-evil" not in req.headers
    assert "sk-attacker-supplied" not in str(req.headers)
    assert req.headers["host"] == f"127.0.0.1:{provider.port}"
    assert "key" not in req.query

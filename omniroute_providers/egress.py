"""The egress guard: which addresses the gateway may send a provider request (and its credentials) to.

Every server-side fetch goes through here (the upstream client calls `split_url` and `resolve`), so a
base URL an admin typed, a catalog entry or a DNS answer can never make the gateway talk to itself, to
this machine, to the local network or to a cloud metadata service unless the provider or account is
explicitly marked local. Client request bodies never choose the destination at all: `api_base`,
`base_url` and `extra_headers` in a body are not read by anything on the request path.

Rules, in order:
* only `http` and `https`, a host, no `user:password@` part (`split_url`);
* a numeric host is read the way the C resolver would read it (`parse_ip_literal`: decimal `2130706433`,
  octal `017700000001`, hex `0x7f.1`, short `127.1`, IPv6 with a zone) and checked as the address it
  denotes, so no spelling slips past a string comparison; a host that looks numeric but is no valid
  address is refused, because resolvers disagree about such strings;
* a host name is resolved once; every address it resolves to is checked and the socket connects to one
  of those exact addresses (pinning: a rebinding DNS server gets no second question);
* refused unless local is allowed: loopback, RFC 1918, link-local (169.254.169.254), CGNAT, "this
  network" 0.0.0.0/8, benchmarking, documentation, multicast, reserved and broadcast ranges, IPv6
  loopback/unspecified/ULA/link-local/site-local/multicast/documentation/discard ranges, and every IPv6
  form that embeds an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::`,
  6to4 `2002::`, Teredo) when the embedded address is refused;
* always refused, local or not: the port this process listens on, at an address of this machine (a
  provider pointed at the gateway itself would loop every request back in).

Redirects are never followed: the upstream client hands any 3xx back as an answer, so a provider cannot
bounce a request (with its key) to an internal address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

import trio

from omniroute import InvalidRequestError, PermissionDeniedError, UpstreamError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}


class UpstreamConnectError(UpstreamError):
    """Could not reach the provider at all (DNS, refused, TLS): nothing was sent, always safe to retry."""

    code = "upstream_connect_error"


class EgressBlockedError(PermissionDeniedError):
    """The egress guard refused the destination address."""

    code = "egress_blocked"


# ----------------------------------------------------------------------------------------------------------
# address classes
# ----------------------------------------------------------------------------------------------------------

# Listed explicitly rather than trusting `is_private`/`is_global` alone: those tables changed between
# Python releases (3.11.10, 3.12.4, 3.13), and this guard must mean the same on every supported version.
_REFUSED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 itself reaches the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT: the carrier's or a Tailscale-style private network
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, including the cloud metadata service 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
    )
)
_REFUSED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",
        "::1/128",
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments (Teredo's 2001::/32 is checked for its embedded address)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed on some networks)
        "ff00::/8",  # multicast
    )
)
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_V4_COMPAT = ipaddress.IPv6Network("::/96")
_TEREDO = ipaddress.IPv6Network("2001::/32")


def _embedded_v4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries and that some network path would deliver to."""
    found: list[ipaddress.IPv4Address] = []
    if addr.ipv4_mapped is not None:
        found.append(addr.ipv4_mapped)
    if addr in _V4_COMPAT and int(addr) > 1:  # ::a.b.c.d (deprecated "compatible" form); not :: or ::1
        found.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    if any(addr in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    if addr.sixtofour is not None:
        found.append(addr.sixtofour)
    if addr in _TEREDO and addr.teredo is not None:
        found.extend(addr.teredo)
    return found


def _v4_is_public(addr: ipaddress.IPv4Address) -> bool:
    return not any(addr in net for net in _REFUSED_V4) and addr.is_global


def address_is_public(ip: str | IPAddress) -> bool:
    """False for loopback, private, link-local (cloud metadata 169.254.169.254), CGNAT, multicast,
    reserved, unspecified and IPv6 local ranges, including every IPv6 form embedding one of those.
    Accepts any spelling `parse_ip_literal` accepts; ValueError for something that is not an address."""
    addr = ip if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else parse_ip_literal(ip)
    if addr is None:
        raise ValueError(f"not an IP address: {ip!r}")
    if isinstance(addr, ipaddress.IPv4Address):
        return _v4_is_public(addr)
    embedded = _embedded_v4(addr)
    if embedded:
        return all(_v4_is_public(v4) for v4 in embedded) and not any(addr in n for n in _REFUSED_V6)
    return not any(addr in net for net in _REFUSED_V6) and addr.is_global


# ----------------------------------------------------------------------------------------------------------
# numeric host spellings
# ----------------------------------------------------------------------------------------------------------

# One label of an inet_aton-style address: hex with 0x, octal with a leading 0, or decimal.
_NUMERIC_LABEL = re.compile(r"0[xX][0-9A-Fa-f]*|[0-9]+")


def looks_numeric(host: str) -> bool:
    """True when every dot-separated label is a number in some base: what C resolvers try as an
    address before asking DNS (`getaddrinfo("0x7f.1")` connects to 127.0.0.1)."""
    labels = host.rstrip(".").split(".")
    return all(_NUMERIC_LABEL.fullmatch(label) for label in labels)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a numeric host denotes, or None for a host name.

    IPv6 literals may come with brackets and a zone (`[fe80::1%eth0]`). IPv4 literals are read with
    inet_aton's rules: 1 to 4 labels, each decimal, octal (leading 0) or hex (0x); the last label fills
    the remaining bytes (`127.1` = 127.0.0.1, `2130706433` = 127.0.0.1). Raises ValueError for a host
    that looks numeric but is no valid address (`1.2.3.4.5`, `08`, `256.1.1.1`).
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"{host!r} is not a valid IPv6 address") from None
    if not text or not looks_numeric(text):
        return None
    labels = text.rstrip(".").split(".")
    if len(labels) > 4:
        raise ValueError(f"{host!r} is not a valid IPv4 address (more than four parts)")
    values: list[int] = []
    for label in labels:
        if label[:2] in ("0x", "0X"):
            if len(label) == 2:
                raise ValueError(f"{host!r} is not a valid IPv4 address (empty hex part)")
            values.append(int(label[2:], 16))
        elif len(label) > 1 and label[0] == "0":
            if not all(c in "01234567" for c in label):
                raise ValueError(f"{host!r} is not a valid IPv4 address (bad octal part {label!r})")
            values.append(int(label, 8))
        else:
            values.append(int(label))
    *head, last = values
    if any(v > 255 for v in head) or last >= 1 << (8 * (4 - len(head))):
        raise ValueError(f"{host!r} is not a valid IPv4 address (a part is out of range)")
    number = 0
    for v in head:
        number = (number << 8) | v
    number = (number << (8 * (4 - len(head)))) | last
    return ipaddress.IPv4Address(number)


# ----------------------------------------------------------------------------------------------------------
# URLs
# ----------------------------------------------------------------------------------------------------------


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path-with-query) of an absolute http(s) URL; InvalidRequestError otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidRequestError("upstream URL is malformed (bad host or port)") from None
    if parts.scheme not in ALLOWED_SCHEMES or not parts.hostname:
        raise InvalidRequestError(
            f"upstream URL must be http(s)://host/...: {parts.scheme}://{parts.hostname}"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidRequestError("upstream URLs must not carry credentials")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme], target


def check_url(url: str, *, allow_private: bool) -> None:
    """What can be decided without DNS, for saving a base URL: the scheme and, for a numeric host, the
    address. EgressBlockedError / InvalidRequestError saying why; a host name is checked at connect time."""
    _scheme, host, port, _target = split_url(url)
    try:
        addr = parse_ip_literal(host)
    except ValueError as exc:
        raise EgressBlockedError(str(exc)) from None
    if addr is not None:
        _check_address(addr, port, host, allow_private=allow_private)


# ----------------------------------------------------------------------------------------------------------
# this process's own listeners
# ----------------------------------------------------------------------------------------------------------

# Ports this process serves on. A process-wide fact, so process-wide state: the gateway adds its ports once
# it listens and removes them when it stops.
_listening_ports: set[int] = set()


def add_listening_port(port: int) -> None:
    _listening_ports.add(port)


def remove_listening_port(port: int) -> None:
    _listening_ports.discard(port)


def _is_this_machine(addr: IPAddress) -> bool:
    """True when `addr` is one of this host's own addresses (binding to it succeeds only then)."""
    if addr.is_loopback or addr.is_unspecified:
        return True
    family = socket.AF_INET if isinstance(addr, ipaddress.IPv4Address) else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(addr), 0))
    except OSError:
        return False
    return True


def _check_address(addr: IPAddress, port: int, host: str, *, allow_private: bool) -> None:
    public = address_is_public(addr)
    if port in _listening_ports and (not public or _is_this_machine(addr)):
        raise EgressBlockedError(f"{host}:{port} is this gateway itself; a provider cannot point back at it")
    if not public and not allow_private:
        raise EgressBlockedError(
            f"{host} is a private or local address; mark the provider or account as local to allow that"
        )


# ----------------------------------------------------------------------------------------------------------
# resolving
# ----------------------------------------------------------------------------------------------------------


async def resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses to connect to, resolved once and each checked: connect to these exact strings.

    A numeric host is not sent to the resolver (its canonical form is returned). A host name resolving
    to any refused address is refused as a whole: a name answering both a public and a private address is
    a rebinding setup, not a provider. EgressBlockedError when refused, UpstreamConnectError when the
    name does not resolve.
    """
    try:
        literal = parse_ip_literal(host)
    except ValueError as exc:
        raise EgressBlockedError(str(exc)) from None
    if literal is not None:
        _check_address(literal, port, host, allow_private=allow_private)
        return [str(literal)]
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UpstreamConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    addrs: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        _check_address(addr, port, host, allow_private=allow_private)
        if str(addr) not in addrs:
            addrs.append(str(addr))
    if not addrs:
        raise UpstreamConnectError(f"cannot resolve {host}: no IPv4 or IPv6 address")
    return addrs

"""Which client addresses may use which side of the gateway: CIDR allowlists and blocklists.

Two zones, each with its own pair of lists:
* "client": the client API, `/v1` and `/v1beta` (settings `ip_allow_v1`, `ip_block_v1`);
* "admin": everything else, i.e. `/api`, the dashboard and `/health` (`ip_allow_admin`,
  `ip_block_admin`). Unknown paths count as admin, so a route added later is never less protected.

Rules: the blocklist wins; then an empty allowlist lets everyone else in, a non-empty one only its
networks. The address checked is the TCP peer, never `X-Forwarded-For` (anyone can write that header).
IPv4-mapped IPv6 peers (`::ffff:10.1.2.3`, from a dual-stack listener) are checked as their IPv4 address.
A peer whose address cannot be read is refused by any zone that has rules.

A list is written as comma- or whitespace-separated CIDRs (`10.0.0.0/8, 192.168.1.7, ::1`) or as a JSON
array of them (what a list in config.json becomes). A bare address means that one address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal, Protocol

from omniroute import JSONDecodeError, PermissionDeniedError, loads

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Zone = Literal["client", "admin"]

CLIENT_PREFIXES = ("/v1/", "/v1beta/")


class _IPSettings(Protocol):
    ip_allow_v1: str
    ip_block_v1: str
    ip_allow_admin: str
    ip_block_admin: str


def parse_networks(text: str, *, setting: str = "networks") -> tuple[Network, ...]:
    """CIDR list -> networks. ValueError naming the setting and the bad entry."""
    text = text.strip()
    if not text:
        return ()
    if text.startswith("["):
        try:
            items = loads(text)
        except JSONDecodeError as exc:
            raise ValueError(f"setting {setting}: not a JSON list of networks ({exc})") from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"setting {setting}: expected a list of CIDR strings")
        entries = [str(i).strip() for i in items]
    else:
        entries = text.replace(",", " ").split()
    return tuple(_network(entry, setting) for entry in entries)


def _network(entry: str, setting: str) -> Network:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(f"setting {setting}: {entry!r} is not an IP network (e.g. 10.0.0.0/8)") from None


def peer_address(client: str) -> Address | None:
    """The peer as an address (IPv4-mapped IPv6 unwrapped, zone dropped); None when unreadable."""
    try:
        addr = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@dataclass(frozen=True, slots=True)
class Rule:
    allow: tuple[Network, ...] = ()
    block: tuple[Network, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.allow or self.block)

    def permits(self, addr: Address | None) -> bool:
        if not self.active:
            return True
        if addr is None:
            return False
        if any(addr in net for net in self.block):
            return False
        return not self.allow or any(addr in net for net in self.allow)


def zone_for_path(path: str) -> Zone:
    return "client" if path.startswith(CLIENT_PREFIXES) or path in ("/v1", "/v1beta") else "admin"


@dataclass(frozen=True, slots=True)
class IPFilter:
    client: Rule = Rule()
    admin: Rule = Rule()

    @classmethod
    def from_settings(cls, settings: _IPSettings) -> IPFilter:
        def rule(allow: str, block: str) -> Rule:
            return Rule(
                parse_networks(getattr(settings, allow), setting=allow),
                parse_networks(getattr(settings, block), setting=block),
            )

        return cls(rule("ip_allow_v1", "ip_block_v1"), rule("ip_allow_admin", "ip_block_admin"))

    @property
    def active(self) -> bool:
        return self.client.active or self.admin.active

    def check(self, client: str, path: str) -> None:
        """PermissionDeniedError when `client` may not use `path`."""
        if not self.active:
            return
        zone = zone_for_path(path)
        rule = self.client if zone == "client" else self.admin
        if not rule.permits(peer_address(client)):
            what = "the client API" if zone == "client" else "the admin API and dashboard"
            raise PermissionDeniedError(
                f"requests from this address are not allowed to use {what}", code="ip_not_allowed"
            )

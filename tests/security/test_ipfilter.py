"""IP allowlists and blocklists: separately for the client API (/v1, /v1beta) and the admin side (/api,
dashboard, /health); 403 in the client's own format; the peer address counts, never X-Forwarded-For."""

from __future__ import annotations

import ipaddress

import pytest

from omniroute import GatewayError, PermissionDeniedError, load_settings
from omniroute_web.app import Gateway
from omniroute_web.ipfilter import IPFilter, Rule, parse_networks, peer_address, zone_for_path
from tests.conftest import MakeGateway, settings_for_test
from tests.security.helpers import OTHER_IP, client_from, error_code, requests_by_format

# ----------------------------------------------------------------------------------------------------------
# the rules
# ----------------------------------------------------------------------------------------------------------


def test_lists_are_read_from_commas_spaces_or_json() -> None:
    expected = (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert parse_networks("10.0.0.0/8, 192.168.1.7 ::1") == expected
    assert parse_networks('["10.0.0.0/8", "192.168.1.7", "::1"]') == expected
    assert parse_networks("10.1.2.3/8") == (ipaddress.ip_network("10.0.0.0/8"),)  # host bits forgiven
    assert parse_networks("  ") == ()


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "example.com", "10.0.0.0/8;", '["10.0.0.0/8", 5]', "[nope"])
def test_a_bad_entry_is_named_in_the_error(bad: str) -> None:
    with pytest.raises(ValueError, match="ip_allow_v1"):
        parse_networks(bad, setting="ip_allow_v1")


def test_blocklist_wins_and_an_empty_allowlist_admits_everyone_else() -> None:
    rule = Rule(allow=parse_networks("10.0.0.0/8"), block=parse_networks("10.6.6.0/24"))
    assert rule.permits(ipaddress.ip_address("10.1.1.1"))
    assert not rule.permits(ipaddress.ip_address("10.6.6.6"))
    assert not rule.permits(ipaddress.ip_address("192.168.1.1"))
    open_rule = Rule(block=parse_networks("10.6.6.0/24"))
    assert open_rule.permits(ipaddress.ip_address("192.168.1.1"))
    assert not open_rule.permits(None)  # a zone with rules refuses a peer it cannot identify
    assert Rule().permits(None)


def test_ipv4_mapped_peers_are_checked_as_ipv4() -> None:
    assert peer_address("::ffff:10.1.2.3") == ipaddress.ip_address("10.1.2.3")
    assert peer_address("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert peer_address("?") is None
    rule = Rule(block=parse_networks("10.0.0.0/8"))
    assert not rule.permits(peer_address("::ffff:10.1.2.3"))


@pytest.mark.parametrize(
    ("path", "zone"),
    [
        ("/v1/chat/completions", "client"),
        ("/v1beta/models/x:generateContent", "client"),
        ("/v1", "client"),
        ("/api/keys", "admin"),
        ("/", "admin"),
        ("/health", "admin"),
        ("/v1x/chat", "admin"),
        ("/api/../v1/chat", "admin"),
        ("http://host/v1/chat/completions", "admin"),
        ("/unknown", "admin"),
    ],
)
def test_every_path_belongs_to_a_zone_and_unknown_ones_to_admin(path: str, zone: str) -> None:
    assert zone_for_path(path) == zone


def test_filter_raises_403_with_its_own_code() -> None:
    f = IPFilter(client=Rule(block=parse_networks("127.0.0.2")))
    f.check("127.0.0.1", "/v1/chat/completions")
    f.check("127.0.0.2", "/api/keys")
    with pytest.raises(PermissionDeniedError) as exc:
        f.check("127.0.0.2", "/v1/chat/completions")
    assert exc.value.status == 403
    assert exc.value.code == "ip_not_allowed"


def test_a_bad_setting_stops_the_gateway_before_it_opens_anything(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for_test(tmp_path / "data", ip_allow_admin="10.0.0.0/8, not-a-network")
    with pytest.raises(GatewayError, match=r"ip_allow_admin.*not-a-network"):
        Gateway(settings)
    assert not (tmp_path / "data").exists()


def test_a_list_in_config_json_is_accepted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "config.json").write_text('{"ip_block_v1": ["10.0.0.0/8", "::1"]}')
    settings = load_settings({"data_dir": str(tmp_path)}, env={})
    assert IPFilter.from_settings(settings).client.block == parse_networks("10.0.0.0/8 ::1")


# ----------------------------------------------------------------------------------------------------------
# through a gateway: 127.0.0.1 and 127.0.0.2 are two clients
# ----------------------------------------------------------------------------------------------------------


async def test_v1_blocklist_refuses_that_address_in_every_client_format(make_gateway: MakeGateway) -> None:
    h = await make_gateway(demo=True, ip_block_v1=OTHER_IP)
    async with h.http, client_from(h, OTHER_IP) as other:
        for fmt, (path, body) in requests_by_format("echo").items():
            r = await other.post(path, json=body, headers={"x-forwarded-for": "127.0.0.1"})
            assert r.status_code == 403, (fmt, r.text)
            assert error_code(fmt, r.json()) in ("ip_not_allowed", "permission_error", "PERMISSION_DENIED")
            assert (await h.http.post(path, json=body)).status_code == 200, fmt  # 127.0.0.1 is served
        # The admin side is another zone: its lists are empty, so the same address may use it.
        r = await other.get("/api/keys", headers={"authorization": f"Bearer {h.admin_token}"})
        assert r.status_code == 200


async def test_v1_allowlist_admits_only_its_networks(make_gateway: MakeGateway) -> None:
    h = await make_gateway(demo=True, ip_allow_v1="127.0.0.1/32, 10.0.0.0/8")
    path, body = requests_by_format("echo")["openai-chat"]
    async with h.http, client_from(h, OTHER_IP) as other:
        assert (await other.post(path, json=body)).status_code == 403
        assert (await other.get("/v1/models")).status_code == 403  # unauthenticated-looking paths too
        assert (await h.http.post(path, json=body)).status_code == 200


async def test_admin_allowlist_closes_api_but_not_v1(make_gateway: MakeGateway) -> None:
    h = await make_gateway(demo=True, ip_allow_admin="10.0.0.0/8")
    admin = {"authorization": f"Bearer {h.admin_token}"}
    async with h.http:
        r = await h.http.get("/api/keys", headers=admin)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "ip_not_allowed"
        assert (await h.http.get("/health")).status_code == 403
        path, body = requests_by_format("echo")["openai-chat"]
        assert (await h.http.post(path, json=body)).status_code == 200


async def test_refused_before_authentication_so_it_reveals_nothing(make_gateway: MakeGateway) -> None:
    h = await make_gateway(ip_block_admin="127.0.0.0/8")
    async with h.http:
        r = await h.http.get("/api/keys", headers={"authorization": "Bearer wrong"})
        assert r.status_code == 403  # not 401: a blocked address learns nothing about credentials
        r = await h.http.get("/api/no-such-route")
        assert r.status_code == 403  # nor which routes exist

"""Dashboard sign-in (issue 5, item 2): the one-time setup link, sessions, CSRF, throttling, audit, and the
route-table walk proving every admin route refuses what it must."""

from __future__ import annotations

import http.cookiejar as http_cookiejar
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from omniroute_web import session
from omniroute_web.routes import ROUTES
from tests.conftest import ROOT, Harness, MakeGateway

PASSWORD = "correct horse battery"
SAFE = {"GET", "HEAD", "OPTIONS"}


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    # The production cost (2^15) is checked once below; the other tests need not pay it on every login.
    monkeypatch.setattr(session, "SCRYPT_N", 2**10)


def client(url: str) -> httpx.AsyncClient:
    """An httpx client that never stores cookies: each test says which session a request carries."""
    http = httpx.AsyncClient(base_url=url)
    http.cookies.jar.set_policy(http_cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return http


def cookie_of(response: httpx.Response) -> dict[str, str]:
    raw = response.headers["set-cookie"]
    return {"cookie": raw.split(";")[0]}


async def set_up(http: httpx.AsyncClient, h: Harness, password: str = PASSWORD) -> tuple[dict[str, str], str]:
    """Use the setup link; returns (cookie header, CSRF token)."""
    assert h.gw.setup_token
    r = await http.post("/api/session/setup", json={"token": h.gw.setup_token, "password": password})
    assert r.status_code == 200, r.text
    return cookie_of(r), r.json()["csrf"]


def concrete(pattern: str) -> str:
    return re.sub(r"\{\w+(?:\.\.\.)?\}", "1", pattern)


async def test_every_admin_route_refuses_no_credential_a_client_key_and_a_session_without_csrf(
    gateway: Harness,
) -> None:
    async with client(gateway.url) as http:
        cookie, csrf = await set_up(http, gateway)
        admin_routes = [r for r in ROUTES if r.access == "admin"]
        assert len(admin_routes) > 20
        for route in admin_routes:
            path = concrete(route.pattern)
            r = await http.request(route.method, path)
            assert r.status_code == 401, (route.method, path, r.text)
            r = await http.request(route.method, path, headers={"authorization": f"Bearer {gateway.key}"})
            assert r.status_code == 401, (route.method, path)  # a client key is not an admin credential
            r = await http.request(route.method, path, headers={**cookie, "x-api-key": gateway.key})
            assert r.status_code == 401, (route.method, path)  # nor does a cookie rescue a wrong key
            if route.method in SAFE:
                continue
            r = await http.request(route.method, path, headers=cookie, json={})
            assert r.status_code == 403, (route.method, path)
            assert r.json()["error"]["code"] == "csrf_failed", (route.method, path)
            r = await http.request(
                route.method, path, headers={**cookie, "x-csrf-token": csrf[:-2] + "xx"}, json={}
            )
            assert r.status_code == 403, (route.method, path)
        # with the token the same session gets through (a bad body is the handler's business, not auth's)
        r = await http.post(
            "/api/keys", headers={**cookie, "x-csrf-token": csrf}, json={"name": "from the dashboard"}
        )
        assert r.status_code == 201
        assert (await http.get("/api/keys", headers=cookie)).status_code == 200


async def test_no_default_password_and_the_setup_link_works_once(gateway: Harness) -> None:
    async with client(gateway.url) as http:
        info = (await http.get("/api/session")).json()
        assert info == {**info, "authenticated": False, "needs_setup": True}
        for guess in ("", "admin", "password"):
            r = await http.post("/api/session/login", json={"password": guess})
            assert r.status_code == 401
        token = gateway.gw.setup_token
        assert token
        assert token not in str(gateway.gw.store.read(lambda db: db.execute("SELECT * FROM kv")))
        r = await http.post("/api/session/setup", json={"token": token, "password": "short"})
        assert r.status_code == 400
        assert "8 characters" in r.json()["error"]["message"]
        cookie, _ = await set_up(http, gateway)
        info = (await http.get("/api/session", headers=cookie)).json()
        assert info["authenticated"] is True
        assert info["needs_setup"] is False
        assert info["csrf"]
        r = await http.post("/api/session/setup", json={"token": token, "password": "another password"})
        assert r.status_code == 401
        assert "reset-password" in r.json()["error"]["message"]
        r = await http.post("/api/session/login", json={"password": PASSWORD})
        assert r.status_code == 200


async def test_session_cookie_is_httponly_strict_rotated_and_secure_behind_tls(gateway: Harness) -> None:
    async with client(gateway.url) as http:
        first, _ = await set_up(http, gateway)
        r = await http.post("/api/session/login", json={"password": PASSWORD}, headers=first)
        attrs = [a.strip() for a in r.headers["set-cookie"].split(";")]
        assert "HttpOnly" in attrs
        assert "SameSite=Strict" in attrs
        assert "Path=/" in attrs
        assert "Secure" not in attrs
        second = cookie_of(r)
        assert second != first
        assert (await http.get("/api/keys", headers=first)).status_code == 401  # the old id died at login
        assert (await http.get("/api/keys", headers=second)).status_code == 200
        r = await http.post(
            "/api/session/login", json={"password": PASSWORD}, headers={"x-forwarded-proto": "https"}
        )
        assert "Secure" in [a.strip() for a in r.headers["set-cookie"].split(";")]


async def test_sessions_end_after_the_idle_timeout_and_at_sign_out(gateway: Harness) -> None:
    mgr = gateway.gw.sessions
    now = [1_000_000.0]
    mgr.clock = lambda: now[0]
    async with client(gateway.url) as http:
        cookie, csrf = await set_up(http, gateway)
        now[0] += session.SESSION_IDLE_TIMEOUT_S - 60
        assert (await http.get("/api/keys", headers=cookie)).status_code == 200  # activity keeps it alive
        now[0] += session.SESSION_IDLE_TIMEOUT_S - 60
        assert (await http.get("/api/keys", headers=cookie)).status_code == 200
        now[0] += session.SESSION_IDLE_TIMEOUT_S + 1
        assert (await http.get("/api/keys", headers=cookie)).status_code == 401
        r = await http.post("/api/session/login", json={"password": PASSWORD})
        cookie, csrf = cookie_of(r), r.json()["csrf"]
        r = await http.post("/api/session/logout", headers=cookie)
        assert r.status_code == 403  # signing out is a state change: it needs the CSRF token too
        r = await http.post("/api/session/logout", headers={**cookie, "x-csrf-token": csrf})
        assert r.status_code == 200
        assert "Max-Age=0" in r.headers["set-cookie"]
        assert (await http.get("/api/keys", headers=cookie)).status_code == 401


async def test_five_wrong_passwords_lock_the_address_out_for_fifteen_minutes(gateway: Harness) -> None:
    throttle = gateway.gw.sessions.throttle
    now = [500.0]
    throttle.clock = lambda: now[0]
    async with client(gateway.url) as http:
        await set_up(http, gateway)
        for _ in range(session.LOGIN_MAX_FAILURES):
            r = await http.post("/api/session/login", json={"password": "wrong password"})
            assert r.status_code == 401
            assert r.json()["error"]["message"] == "wrong password"
        r = await http.post("/api/session/login", json={"password": PASSWORD})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 800
        now[0] += session.LOGIN_LOCKOUT_S + 1
        r = await http.post("/api/session/login", json={"password": PASSWORD})
        assert r.status_code == 200


def test_throttle_forgets_old_failures_and_bounds_its_table() -> None:
    now = [0.0]
    t = session.LoginThrottle(clock=lambda: now[0])
    for _ in range(session.LOGIN_MAX_FAILURES - 1):
        t.failed("10.0.0.1")
    now[0] += session.LOGIN_WINDOW_S + 1
    t.failed("10.0.0.1")  # the earlier ones fell out of the window
    t.check("10.0.0.1")
    for i in range(session.LOGIN_TRACKED_IPS_MAX + 10):
        t.failed(f"ip{i}")
    assert len(t.failures) <= session.LOGIN_TRACKED_IPS_MAX


async def test_sign_in_refuses_cross_site_form_posts(gateway: Harness) -> None:
    async with client(gateway.url) as http:
        await set_up(http, gateway)
        r = await http.post("/api/session/login", data={"password": PASSWORD})
        assert r.status_code == 400
        assert "application/json" in r.json()["error"]["message"]


async def test_password_change_needs_the_current_one_and_signs_out_other_browsers(gateway: Harness) -> None:
    async with client(gateway.url) as http:
        mine, csrf = await set_up(http, gateway)
        other = cookie_of(await http.post("/api/session/login", json={"password": PASSWORD}))
        h = {**mine, "x-csrf-token": csrf}
        r = await http.post(
            "/api/session/password", headers=h, json={"current": "nope nope", "new": "new password 1"}
        )
        assert r.status_code == 403
        r = await http.post(
            "/api/session/password", headers=h, json={"current": PASSWORD, "new": "new password 1"}
        )
        assert r.status_code == 200
        assert (await http.get("/api/keys", headers=other)).status_code == 401
        assert (await http.get("/api/keys", headers=cookie_of(r))).status_code == 200
        assert (await http.post("/api/session/login", json={"password": PASSWORD})).status_code == 401
        assert (await http.post("/api/session/login", json={"password": "new password 1"})).status_code == 200


async def test_the_admin_token_keeps_working_for_scripts_without_csrf(gateway: Harness) -> None:
    async with client(gateway.url) as http:
        await set_up(http, gateway)
        admin = {"authorization": f"Bearer {gateway.admin_token}"}
        r = await http.post("/api/keys", headers=admin, json={"name": "script"})
        assert r.status_code == 201


async def test_admin_changes_and_sign_ins_are_audited_without_bodies(gateway: Harness) -> None:
    async with client(gateway.url) as http:
        cookie, _csrf = await set_up(http, gateway)
        await http.post("/api/session/login", json={"password": "wrong password"})
        admin = {"authorization": f"Bearer {gateway.admin_token}"}
        await http.post(
            "/api/accounts", headers=admin, json={"provider": "openai", "key": "sk-secret-canary-123456"}
        )
        gateway.gw.store.flush()
        entries = (await http.get("/api/logs/audit", headers=cookie)).json()["entries"]
        actions = [(e["actor"], e["action"], e["status"]) for e in entries]
        assert ("admin token", "POST /api/accounts", 201) in actions
        assert ("?", "sign-in failed", 401) in actions
        assert ("admin", "password set with the setup link", 200) in actions
        assert "sk-secret-canary" not in str(entries)


def test_production_password_hash_is_scrypt_with_a_per_user_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "SCRYPT_N", 2**15)
    a, b = session.hash_password("same password"), session.hash_password("same password")
    assert a.startswith("scrypt$32768$8$1$")
    assert a != b
    assert session.verify_password("same password", a)
    assert not session.verify_password("other", a)
    assert not session.verify_password("same password", "bcrypt$whatever")


async def test_reset_password_prints_a_fresh_link_that_works(
    make_gateway: MakeGateway, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    h = await make_gateway(data)
    async with client(h.url) as http:
        await set_up(http, h)
        out = await trio.run_process(
            [sys.executable, "-m", "omniroute", "--data-dir", str(data), "--port", "20999", "reset-password"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=subprocess_env,
            cwd=ROOT,
        )
        assert out.returncode == 0, out.stderr
        link = re.search(r"http://127\.0\.0\.1:20999/setup#(\S+)", out.stdout.decode())
        assert link, out.stdout
        assert (
            await http.post("/api/session/login", json={"password": PASSWORD})
        ).status_code == 200  # still
        r = await http.post(
            "/api/session/setup", json={"token": link.group(1), "password": "brand new password"}
        )
        assert r.status_code == 200
        assert (
            await http.post("/api/session/login", json={"password": "brand new password"})
        ).status_code == 200
    await h.http.aclose()


def test_serve_banner_prints_the_setup_link_until_a_password_exists(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "omniroute", "--data-dir", str(tmp_path / "d"), "--port", "0", "--no-open"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=subprocess_env,
        cwd=ROOT,
    ) as proc:
        try:
            assert proc.stderr is not None
            lines = []
            for line in proc.stderr:
                lines.append(line)
                if "Gemini base URL" in line:
                    break
            text = "".join(lines)
            assert re.search(
                r"set the dashboard password \(one-time link\): http://127\.0\.0\.1:\d+/setup#[\w-]{40,}",
                text,
            ), text
        finally:
            proc.terminate()
            proc.wait(timeout=30)

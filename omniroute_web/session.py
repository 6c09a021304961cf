"""Dashboard sign-in: the one-time setup link, the password, browser sessions, CSRF, login throttling, audit.

Invariants:
* There is no default password. Until one is set, the gateway prints a setup link carrying a random token
  (`/setup#<token>`: in the fragment, so it never reaches a server log or a Referer header); only the
  token's SHA-256 is stored, it expires, and it works once. `omniroute reset-password` mints a fresh one.
* The password is hashed with scrypt and a per-user salt; the parameters are stored with the hash so they
  can be raised later without breaking old hashes.
* A session is a random id in an `HttpOnly; SameSite=Strict` cookie (`Secure` behind TLS). Only its SHA-256
  is stored. A login always issues a new id (and drops the one presented), so a planted id is useless.
  Sessions end after `SESSION_IDLE_TIMEOUT_S` without a request and after `SESSION_MAX_AGE_S` in any case.
* Every state-changing request made with a session must carry the session's CSRF token in `x-csrf-token`.
  The admin token (`Authorization: Bearer`) needs none: a browser never attaches it by itself.
* Failed logins are counted per client IP: `LOGIN_MAX_FAILURES` within `LOGIN_WINDOW_S` locks that IP out
  for `LOGIN_LOCKOUT_S`. Every attempt costs one scrypt whether or not a password exists, so the answer's
  timing tells nothing.
* Each state-changing admin request, sign-in and password change leaves an `audit_log` row (who, what, from
  where, the status) — never a request body.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from omniroute import (
    AuthenticationError,
    Db,
    GatewayError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitError,
    Settings,
    Store,
    kv_get,
    kv_set,
)
from omniroute_web.messages import read_json, send_json
from omniroute_web.server import Request, Responder

if TYPE_CHECKING:
    from omniroute_web.app import Gateway

log = logging.getLogger("omniroute.session")

COOKIE_NAME = "omniroute_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ADMIN_USER = "admin"  # one dashboard user: the person who owns this gateway

SESSION_IDLE_TIMEOUT_S = 3600.0  # an unattended browser stops being an admin after an hour
SESSION_MAX_AGE_S = 24 * 3600.0  # and after a day in any case
SESSION_TOUCH_S = 60.0  # last_seen is written at most this often per session (not on every request)
SETUP_TOKEN_TTL_S = 24 * 3600.0  # a printed setup link is good for a day (a restart prints a new one)

LOGIN_MAX_FAILURES = 5  # wrong passwords from one IP within LOGIN_WINDOW_S before it is locked out
LOGIN_WINDOW_S = 15 * 60.0
LOGIN_LOCKOUT_S = 15 * 60.0
LOGIN_TRACKED_IPS_MAX = 10_000  # bound the failure table: a spray from many addresses cannot eat memory

PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 1024
# scrypt N=2^15, r=8: 32 MiB and some tens of milliseconds per hash — slow for a guesser, fine for a login.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM_BYTES = 64 * 1024 * 1024
SCRYPT_CONCURRENCY = 2  # at most this many hashes at once, so a login flood cannot exhaust memory
AUTH_BODY_LIMIT = 16 * 1024

SETUP_TOKEN_KV = "dashboard_setup_token"  # noqa: S105 - a kv row name, not a secret


# ----------------------------------------------------------------------------------------------------------
# passwords and tokens
# ----------------------------------------------------------------------------------------------------------


def hash_password(password: str, salt: bytes | None = None, n: int | None = None) -> str:
    """`scrypt$N$r$p$<salt hex>$<hash hex>`."""
    n = SCRYPT_N if n is None else n
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM_BYTES, dklen=32
    )
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


# Checked when no password exists yet, so that case costs the same as a real check: same parameters, so
# the same scrypt work; no password hashes to an all-zero digest, so it never matches. Written out rather
# than computed, because computing it at import cost every start a quarter of a second.
_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'00' * 16}${'00' * 32}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAXMEM_BYTES,
            dklen=len(digest) // 2,
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def check_password_policy(password: object) -> str:
    if not isinstance(password, str) or len(password) < PASSWORD_MIN_CHARS or not password.strip():
        raise InvalidRequestError(
            f"the password needs at least {PASSWORD_MIN_CHARS} characters", param="password"
        )
    if len(password) > PASSWORD_MAX_CHARS:
        raise InvalidRequestError("the password is too long", param="password")
    return password


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def mint_setup_token(store: Store, ttl_s: float = SETUP_TOKEN_TTL_S) -> str:
    """A fresh one-time setup token (the previous one stops working); only its hash is stored."""
    token = secrets.token_urlsafe(32)
    value = f"{_sha256(token)}:{time.time() + ttl_s}"
    store.write(lambda db: kv_set(db, SETUP_TOKEN_KV, value))
    return token


def setup_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/setup#{token}"


def has_password(db: Db) -> bool:
    return db.one("SELECT 1 FROM dashboard_users WHERE name = ?", (ADMIN_USER,)) is not None


def ensure_setup_token(store: Store) -> str | None:
    """At start: a setup token to print when no password is set yet (None once one is)."""
    if store.read(has_password):
        return None
    return mint_setup_token(store)


# ----------------------------------------------------------------------------------------------------------
# login throttling
# ----------------------------------------------------------------------------------------------------------


class LoginThrottle:
    """Failed sign-ins per client IP; the clock is injected so tests need not sleep."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.failures: dict[str, deque[float]] = {}
        self.locked_until: dict[str, float] = {}

    def check(self, ip: str) -> None:
        until = self.locked_until.get(ip)
        if until is None:
            return
        wait = until - self.clock()
        if wait > 0:
            raise RateLimitError(
                f"too many failed sign-ins from this address; try again in {int(wait // 60) + 1} min",
                retry_after=wait,
            )
        del self.locked_until[ip]
        self.failures.pop(ip, None)

    def failed(self, ip: str) -> None:
        now = self.clock()
        if ip not in self.failures and len(self.failures) >= LOGIN_TRACKED_IPS_MAX:
            self._prune(now)
        times = self.failures.setdefault(ip, deque())
        times.append(now)
        while times and times[0] < now - LOGIN_WINDOW_S:
            times.popleft()
        if len(times) >= LOGIN_MAX_FAILURES:
            self.locked_until[ip] = now + LOGIN_LOCKOUT_S

    def succeeded(self, ip: str) -> None:
        self.failures.pop(ip, None)

    def _prune(self, now: float) -> None:
        for ip in [ip for ip, t in self.failures.items() if not t or t[-1] < now - LOGIN_WINDOW_S]:
            del self.failures[ip]
        if len(self.failures) >= LOGIN_TRACKED_IPS_MAX:  # still full: forget the oldest half
            for ip in sorted(self.failures, key=lambda k: self.failures[k][-1])[: LOGIN_TRACKED_IPS_MAX // 2]:
                del self.failures[ip]


# ----------------------------------------------------------------------------------------------------------
# sessions
# ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Session:
    id_hash: str
    user_id: int
    user: str
    csrf: str
    created_at: float
    last_seen: float
    saved_seen: float  # last_seen as last written to the database


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an admin request acts as: the admin token, or a signed-in dashboard user."""

    actor: str
    session: Session | None = None


class SessionManager:
    """Sessions cached in memory and kept in `dashboard_sessions` (a restart signs nobody out)."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.throttle = LoginThrottle()
        self.hash_limiter = trio.CapacityLimiter(SCRYPT_CONCURRENCY)
        self._cache: dict[str, Session] = {}

    # lookup (on the request path) --------------------------------------------------------------------------

    def from_request(self, request: Request) -> Session | None:
        raw = cookie_value(request.headers.get("cookie", ""), COOKIE_NAME)
        return self.lookup(raw) if raw else None

    def lookup(self, raw_id: str) -> Session | None:
        if len(raw_id) > 128:
            return None
        id_hash = _sha256(raw_id)
        session = self._cache.get(id_hash) or self._load(id_hash)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > SESSION_IDLE_TIMEOUT_S or now - session.created_at > SESSION_MAX_AGE_S:
            self._forget(id_hash)
            return None
        session.last_seen = now
        if now - session.saved_seen > SESSION_TOUCH_S:
            session.saved_seen = now
            self.store.submit(
                lambda db: db.execute(
                    "UPDATE dashboard_sessions SET last_seen = ? WHERE id_hash = ?", (now, id_hash)
                )
            )
        return session

    def _load(self, id_hash: str) -> Session | None:
        row = self.store.read(
            lambda db: db.one(
                "SELECT s.user_id, u.name, s.csrf, s.created_at, s.last_seen FROM dashboard_sessions s "
                "JOIN dashboard_users u ON u.id = s.user_id WHERE s.id_hash = ?",
                (id_hash,),
            )
        )
        if row is None:
            return None
        user_id, user, csrf, created, seen = row
        session = Session(
            id_hash, int(user_id), str(user), str(csrf), float(created), float(seen), float(seen)
        )
        self._cache[id_hash] = session
        return session

    def _forget(self, id_hash: str) -> None:
        self._cache.pop(id_hash, None)
        self.store.submit(
            lambda db: db.execute("DELETE FROM dashboard_sessions WHERE id_hash = ?", (id_hash,))
        )

    # changes (blocking: call from a worker thread) ---------------------------------------------------------

    def create(self, user_id: int, user: str, ip: str, user_agent: str) -> tuple[str, Session]:
        raw = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(_sha256(raw), user_id, user, secrets.token_urlsafe(32), now, now, now)

        def write(db: Db) -> None:
            # Expired sessions are swept whenever a new one starts: the table stays small without a timer.
            db.execute(
                "DELETE FROM dashboard_sessions WHERE last_seen < ? OR created_at < ?",
                (now - SESSION_IDLE_TIMEOUT_S, now - SESSION_MAX_AGE_S),
            )
            db.execute(
                "INSERT INTO dashboard_sessions (id_hash, user_id, csrf, created_at, last_seen, ip, "
                "user_agent) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session.id_hash, user_id, session.csrf, now, now, ip[:64], user_agent[:256]),
            )

        self.store.write(write)
        self._cache[session.id_hash] = session
        return raw, session

    def revoke(self, id_hash: str) -> None:
        self._cache.pop(id_hash, None)
        self.store.write(
            lambda db: db.execute("DELETE FROM dashboard_sessions WHERE id_hash = ?", (id_hash,))
        )

    def revoke_all(self) -> None:
        self._cache.clear()
        self.store.write(lambda db: db.execute("DELETE FROM dashboard_sessions"))

    def password_hash(self) -> tuple[int, str] | None:
        row = self.store.read(
            lambda db: db.one("SELECT id, password FROM dashboard_users WHERE name = ?", (ADMIN_USER,))
        )
        return None if row is None else (int(row[0]), str(row[1]))

    def set_password(self, password: str) -> int:
        stored = hash_password(password)
        now = time.time()

        def write(db: Db) -> int:
            db.execute(
                "INSERT INTO dashboard_users (name, password, created_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET password = excluded.password, "
                "updated_at = excluded.updated_at",
                (ADMIN_USER, stored, now, now),
            )
            row = db.one("SELECT id FROM dashboard_users WHERE name = ?", (ADMIN_USER,))
            assert row is not None  # noqa: S101 - just written in this transaction
            return int(row[0])

        return int(self.store.write(write))

    def consume_setup_token(self, token: str) -> bool:
        """True (and the token is gone) when `token` is the current, unexpired setup token."""
        if not token or len(token) > 128:
            return False
        wanted = _sha256(token)

        def write(db: Db) -> bool:
            value = kv_get(db, SETUP_TOKEN_KV)
            if not value:
                return False
            digest, _, expires = value.partition(":")
            if not hmac.compare_digest(digest, wanted):
                return False
            db.execute("DELETE FROM kv WHERE key = ?", (SETUP_TOKEN_KV,))
            return float(expires or 0) > time.time()

        return bool(self.store.write(write))

    def setup_pending(self) -> bool:
        return bool(self.store.read(lambda db: kv_get(db, SETUP_TOKEN_KV)))


def cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"') or None
    return None


def is_https(request: Request) -> bool:
    return request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"


def session_cookie(request: Request, raw_id: str, *, clear: bool = False) -> tuple[str, str]:
    attrs = [f"{COOKIE_NAME}={'' if clear else raw_id}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if clear:
        attrs.append("Max-Age=0")
    if is_https(request):
        attrs.append("Secure")
    return "set-cookie", "; ".join(attrs)


# ----------------------------------------------------------------------------------------------------------
# admin authentication (used by auth.authenticate_admin)
# ----------------------------------------------------------------------------------------------------------


def check_csrf(request: Request, session: Session) -> None:
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise PermissionDeniedError(
            "this request needs the session's CSRF token in the x-csrf-token header", code="csrf_failed"
        )


# ----------------------------------------------------------------------------------------------------------
# audit log
# ----------------------------------------------------------------------------------------------------------

AUDIT_DETAIL_MAX_CHARS = 500


def audit(
    store: Store,
    actor: str,
    action: str,
    *,
    target: str = "",
    ip: str = "",
    status: int = 0,
    detail: str = "",
) -> None:
    """Queue an audit row (off the request path)."""
    row = (
        time.time(),
        actor[:64],
        action[:128],
        target[:256],
        ip[:64],
        status,
        detail[:AUDIT_DETAIL_MAX_CHARS],
    )
    store.submit(
        lambda db: db.execute(
            "INSERT INTO audit_log (ts, actor, action, target, ip, status, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            row,
        )
    )


async def audited(
    store: Store, principal: Principal, request: Request, responder: Responder, call: Awaitable[None]
) -> None:
    """Run a state-changing admin handler and record what it did (method + path, never the body)."""
    status = 0
    try:
        await call
        status = responder.status
    except GatewayError as err:
        status = err.status
        raise
    except BaseException:
        status = 500
        raise
    finally:
        audit(store, principal.actor, f"{request.method} {request.path}", ip=request.client, status=status)


# ----------------------------------------------------------------------------------------------------------
# endpoints: /api/session/*
# ----------------------------------------------------------------------------------------------------------

Params = dict[str, str]


async def _json_body(request: Request) -> dict[str, Any]:
    # A cross-site HTML form cannot send application/json without a CORS preflight we never grant: this is
    # what keeps the unauthenticated sign-in endpoints from being driven by another site.
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise InvalidRequestError("send a JSON body (content-type: application/json)")
    return await read_json(request, AUTH_BODY_LIMIT)


NO_STORE = [("cache-control", "no-store")]


async def _locked_out(mgr: SessionManager, ip: str, responder: Responder) -> bool:
    """Answer 429 with a retry-after (the /api error renderer has no header for it) when `ip` is locked."""
    try:
        mgr.throttle.check(ip)
    except RateLimitError as err:
        body = {"error": {"message": err.message, "code": err.code, "status": err.status}}
        wait = str(int(err.retry_after or 0) + 1)
        await send_json(responder, err.status, body, [("retry-after", wait), *NO_STORE])
        return True
    return False


async def session_info(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    mgr = gw.sessions
    session = mgr.from_request(request)
    configured = await trio.to_thread.run_sync(lambda: mgr.store.read(has_password))
    await send_json(
        responder,
        200,
        {
            "authenticated": session is not None,
            "user": session.user if session else None,
            "csrf": session.csrf if session else None,
            "needs_setup": not configured,
            "idle_timeout_s": SESSION_IDLE_TIMEOUT_S,
        },
        NO_STORE,
    )


async def _start_session(
    gw: Gateway, request: Request, responder: Responder, user_id: int, status: int = 200
) -> None:
    mgr = gw.sessions
    old = cookie_value(request.headers.get("cookie", ""), COOKIE_NAME)
    if old:
        await trio.to_thread.run_sync(mgr.revoke, _sha256(old))
    raw, session = await trio.to_thread.run_sync(
        mgr.create, user_id, ADMIN_USER, request.client, request.headers.get("user-agent", "")
    )
    await send_json(
        responder,
        status,
        {"ok": True, "user": session.user, "csrf": session.csrf, "idle_timeout_s": SESSION_IDLE_TIMEOUT_S},
        [session_cookie(request, raw), *NO_STORE],
    )


async def login(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    mgr = gw.sessions
    ip = request.client
    if await _locked_out(mgr, ip, responder):
        return
    body = await _json_body(request)
    password = body.get("password")
    if not isinstance(password, str) or len(password) > PASSWORD_MAX_CHARS:
        password = ""
    found = await trio.to_thread.run_sync(mgr.password_hash)
    stored = found[1] if found else _DUMMY_HASH
    ok = await trio.to_thread.run_sync(verify_password, password, stored, limiter=mgr.hash_limiter)
    if not ok or found is None:
        mgr.throttle.failed(ip)
        audit(gw.store, "?", "sign-in failed", ip=ip, status=401)
        raise AuthenticationError("wrong password")
    mgr.throttle.succeeded(ip)
    audit(gw.store, ADMIN_USER, "sign-in", ip=ip, status=200)
    await _start_session(gw, request, responder, found[0])


async def logout(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    mgr = gw.sessions
    session = mgr.from_request(request)
    if session is not None:
        check_csrf(request, session)
        await trio.to_thread.run_sync(mgr.revoke, session.id_hash)
        audit(gw.store, session.user, "sign-out", ip=request.client, status=200)
    await send_json(responder, 200, {"ok": True}, [session_cookie(request, "", clear=True), *NO_STORE])


async def setup(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    """The setup link's page posts here: the token proves console access; it sets the password."""
    mgr = gw.sessions
    ip = request.client
    if await _locked_out(mgr, ip, responder):
        return
    body = await _json_body(request)
    password = check_password_policy(body.get("password"))
    if not await trio.to_thread.run_sync(mgr.consume_setup_token, str(body.get("token") or "")):
        mgr.throttle.failed(ip)
        audit(gw.store, "?", "setup link refused", ip=ip, status=401)
        raise AuthenticationError(
            "this setup link is invalid, used or expired; run `omniroute reset-password` for a new one"
        )
    user_id = await trio.to_thread.run_sync(mgr.set_password, password, limiter=mgr.hash_limiter)
    await trio.to_thread.run_sync(mgr.revoke_all)  # a reset signs every browser out
    audit(gw.store, ADMIN_USER, "password set with the setup link", ip=ip, status=200)
    await _start_session(gw, request, responder, user_id)


async def change_password(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    mgr = gw.sessions
    ip = request.client
    if await _locked_out(mgr, ip, responder):
        return
    body = await read_json(request, AUTH_BODY_LIMIT)
    new = check_password_policy(body.get("new"))
    current = body.get("current")
    found = await trio.to_thread.run_sync(mgr.password_hash)
    ok = isinstance(current, str) and await trio.to_thread.run_sync(
        verify_password, current, found[1] if found else _DUMMY_HASH, limiter=mgr.hash_limiter
    )
    if not ok or found is None:
        mgr.throttle.failed(ip)
        raise PermissionDeniedError("the current password is wrong", param="current")
    user_id = await trio.to_thread.run_sync(mgr.set_password, new, limiter=mgr.hash_limiter)
    await trio.to_thread.run_sync(mgr.revoke_all)
    audit(gw.store, ADMIN_USER, "password changed", ip=ip, status=200)
    await _start_session(gw, request, responder, user_id)


# ----------------------------------------------------------------------------------------------------------
# command line: `omniroute reset-password`
# ----------------------------------------------------------------------------------------------------------


def reset_password_cli(settings: Settings) -> int:
    import os

    os.makedirs(settings.data_path, mode=0o700, exist_ok=True)
    store = Store(os.path.join(settings.data_path, "omniroute.sqlite"))
    try:
        token = mint_setup_token(store)
    finally:
        store.close()
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104 - display only
    host = f"[{host}]" if ":" in host else host
    print(
        "Open this link to set a new dashboard password (it works once, within 24 h; the current password "
        f"keeps working until then):\n  {setup_link(f'http://{host}:{settings.port}', token)}"
    )
    return 0

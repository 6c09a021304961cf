"""Who is calling: client keys for /v1 and /v1beta, the admin token (or a dashboard session) for /api.

Every credential form goes through the same check (one normalised lookup, then the same scope rules), so a
key is not stronger or weaker for arriving as `x-api-key` rather than `Authorization: Bearer`.
"""

from __future__ import annotations

import time

from omniroute import AuthenticationError, key_prefix, verify_secret
from omniroute_providers.registry import ClientKey, Registry
from omniroute_web.server import Request
from omniroute_web.session import Principal, SessionManager, check_csrf

ANONYMOUS = ClientKey(id=0, name="anonymous (--no-auth)", prefix="", salt="", hash="")


def presented_credential(request: Request) -> str | None:
    """The credential in whichever header or query parameter the client family uses."""
    h = request.headers
    auth = h.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    for name in ("x-api-key", "x-goog-api-key", "api-key"):
        value = h.get(name)
        if value:
            return value.strip()
    if "key=" in request.query_string:
        return request.query.get("key") or None
    return None


def authenticate_client(registry: Registry, request: Request, *, no_auth: bool) -> ClientKey:
    if no_auth:
        return ANONYMOUS
    credential = presented_credential(request)
    if not credential:
        raise AuthenticationError(
            "a gateway API key is required (Authorization: Bearer, x-api-key or x-goog-api-key)"
        )
    prefix = key_prefix(credential)
    key = registry.keys.get(prefix) if prefix else None
    # Compare against something even when the prefix is unknown, so timing does not reveal valid prefixes.
    salt, digest = (key.salt, key.hash) if key else ("0" * 32, "0" * 64)
    ok = verify_secret(credential, salt, digest)
    if key is None or not ok:
        raise AuthenticationError("invalid API key")
    if key.revoked_at is not None:
        raise AuthenticationError("this API key has been revoked")
    if key.expires_at is not None and key.expires_at <= time.time():
        raise AuthenticationError("this API key has expired")
    return key


def authenticate_admin(
    registry: Registry, request: Request, sessions: SessionManager | None = None
) -> Principal:
    """The admin token, or (dashboard) a signed-in browser session with its CSRF token on state changes."""
    credential = presented_credential(request)
    token = registry.admin_token
    if credential:
        if token is None or not verify_secret(credential, token[0], token[1]):
            raise AuthenticationError("admin credentials required (Authorization: Bearer <admin token>)")
        return Principal("admin token")
    session = sessions.from_request(request) if sessions is not None else None
    if session is None:
        raise AuthenticationError(
            "admin credentials required (Authorization: Bearer <admin token>, or sign in to the dashboard)"
        )
    check_csrf(request, session)
    return Principal(session.user, session)

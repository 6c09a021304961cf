"""The route table: every endpoint, its method, its access level. Default-deny: a path not listed here is
a 404, and a test walks this table to prove each route demands what it says.

Access levels: "public" (no credential), "client" (a client API key unless --no-auth), "admin" (the admin
token).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from omniroute import MethodNotAllowedError, NotFoundError
from omniroute_web import admin_api, client_api

Access = Literal["public", "client", "admin"]
Handler = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    access: Access
    regex: re.Pattern[str] | None = None


def _route(method: str, pattern: str, handler: Handler, access: Access) -> Route:
    regex = None
    if "{" in pattern:
        # {name} matches one path segment; {name...} matches the rest (model ids may contain slashes).
        expr = re.sub(r"\{(\w+)\.\.\.\}", r"(?P<\1>.+)", pattern)
        expr = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", expr)
        regex = re.compile(f"^{expr}$")
    return Route(method, pattern, handler, access, regex)


GEMINI_ACTION = r"{model...}:{action}"

ROUTES: list[Route] = [
    _route("GET", "/health", client_api.health, "public"),
    # OpenAI family
    _route("GET", "/v1/models", client_api.list_models, "client"),
    _route("POST", "/v1/chat/completions", client_api.chat_completions, "client"),
    _route("POST", "/v1/completions", client_api.completions, "client"),
    _route("POST", "/v1/responses", client_api.responses, "client"),
    _route("GET", "/v1/responses", client_api.responses_websocket, "client"),
    # Anthropic family
    _route("POST", "/v1/messages", client_api.messages, "client"),
    _route("POST", "/v1/messages/count_tokens", client_api.count_tokens, "client"),
    # Gemini family: /v1beta and, for google-genai 3.x, /v1 (told apart from OpenAI by the :method suffix)
    _route("GET", "/v1beta/models", client_api.gemini_models, "client"),
    _route("POST", "/v1beta/models/" + GEMINI_ACTION, client_api.gemini_action, "client"),
    _route("POST", "/v1/models/" + GEMINI_ACTION, client_api.gemini_action, "client"),
    _route("GET", "/v1/models/{model...}", client_api.get_model, "client"),
    # admin
    _route("GET", "/api/providers", admin_api.providers, "admin"),
    _route("GET", "/api/accounts", admin_api.accounts, "admin"),
    _route("POST", "/api/accounts", admin_api.add_account, "admin"),
    _route("PATCH", "/api/accounts/{id}", admin_api.update_account, "admin"),
    _route("DELETE", "/api/accounts/{id}", admin_api.delete_account, "admin"),
    _route("POST", "/api/accounts/{id}/test", admin_api.probe_account, "admin"),
    _route("POST", "/api/custom-providers", admin_api.add_custom_provider, "admin"),
    _route("DELETE", "/api/custom-providers/{id}", admin_api.delete_custom_provider, "admin"),
    _route("GET", "/api/keys", admin_api.keys, "admin"),
    _route("POST", "/api/keys", admin_api.create_key, "admin"),
    _route("DELETE", "/api/keys/{id}", admin_api.revoke_key, "admin"),
    _route("GET", "/api/usage", admin_api.usage, "admin"),
    _route("GET", "/api/settings", admin_api.settings, "admin"),
]


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.static: dict[str, dict[str, Route]] = {}
        self.dynamic: list[Route] = []
        for r in routes:
            if r.regex is None:
                self.static.setdefault(r.pattern, {})[r.method] = r
            else:
                self.dynamic.append(r)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, Any]]:
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        by_method = self.static.get(path)
        if by_method is not None:
            route = by_method.get(method) or (by_method.get("GET") if method == "HEAD" else None)
            if route is None:
                raise MethodNotAllowedError(f"{method} is not allowed on {path}")
            return route, {}
        allowed = False
        for r in self.dynamic:
            assert r.regex is not None  # noqa: S101 - dynamic routes always have one
            m = r.regex.match(path)
            if m is None:
                continue
            if r.method == method:
                return r, m.groupdict()
            allowed = True
        if allowed:
            raise MethodNotAllowedError(f"{method} is not allowed on {path}")
        raise NotFoundError(f"no route for {method} {path}")

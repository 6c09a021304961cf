"""The route table: every endpoint, its method, its access level. Default-deny: a path not listed here is
a 404, and a test walks this table to prove each route demands what it says.

Access levels: "public" (no credential), "client" (a client API key unless --no-auth), "admin" (the admin
token, or a dashboard session plus its CSRF token on state-changing methods).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from omniroute import MethodNotAllowedError, NotFoundError
from omniroute_web import admin_api, client_api, dashboard_api, dashboard_clitools, dashboard_data, session

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
    # dashboard: the app, sign-in (session.py) and the endpoints only its pages use (dashboard_*.py)
    _route("GET", "/", dashboard_api.index, "public"),
    _route("GET", "/setup", dashboard_api.index, "public"),
    _route("GET", "/static/{path...}", dashboard_api.static_file, "public"),
    _route("GET", "/api/session", session.session_info, "public"),
    _route("POST", "/api/session/login", session.login, "public"),
    _route("POST", "/api/session/logout", session.logout, "public"),
    _route("POST", "/api/session/setup", session.setup, "public"),
    _route("POST", "/api/session/password", session.change_password, "admin"),
    _route("GET", "/api/dashboard/system", dashboard_api.system, "admin"),
    _route("GET", "/api/dashboard/settings", dashboard_api.get_settings, "admin"),
    _route("PUT", "/api/dashboard/settings", dashboard_api.put_settings, "admin"),
    _route("GET", "/api/dashboard/custom-models", dashboard_api.get_custom_models, "admin"),
    _route("PUT", "/api/dashboard/custom-models", dashboard_api.put_custom_models, "admin"),
    _route("GET", "/api/usage/series", dashboard_api.series, "admin"),
    _route("GET", "/api/usage/latency", dashboard_api.latency, "admin"),
    _route("GET", "/api/logs/requests", dashboard_api.requests_log, "admin"),
    _route("GET", "/api/logs/requests/{id}", dashboard_api.request_detail, "admin"),
    _route("GET", "/api/logs/audit", dashboard_api.audit_log, "admin"),
    _route("GET", "/api/logs/console", dashboard_api.console, "admin"),
    _route("POST", "/api/logs/purge", dashboard_api.purge_logs, "admin"),
    _route("POST", "/api/playground/translate", dashboard_api.playground_translate, "admin"),
    _route("GET", "/api/cli-tools", dashboard_clitools.list_tools, "admin"),
    _route("POST", "/api/cli-tools/{id}/apply", dashboard_clitools.apply_tool, "admin"),
    _route("GET", "/api/backups", dashboard_data.backups, "admin"),
    _route("POST", "/api/backups", dashboard_data.create_backup, "admin"),
    _route("GET", "/api/backups/{name}", dashboard_data.download_backup, "admin"),
    _route("DELETE", "/api/backups/{name}", dashboard_data.delete_backup, "admin"),
    _route("POST", "/api/backups/{name}/restore", dashboard_data.restore_backup, "admin"),
    _route("DELETE", "/api/restore", dashboard_data.cancel_restore, "admin"),
    _route("POST", "/api/export", dashboard_data.export, "admin"),
    _route("POST", "/api/import", dashboard_data.import_, "admin"),
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
    # @ai-sdk/google (opencode) puts a `provider/model` id straight after /v1beta/, without "models/"
    _route("POST", "/v1beta/" + GEMINI_ACTION, client_api.gemini_action, "client"),
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
    _route("PATCH", "/api/keys/{id}", admin_api.update_key, "admin"),
    _route("POST", "/api/keys/{id}/rotate", admin_api.rotate_key, "admin"),
    _route("DELETE", "/api/keys/{id}", admin_api.revoke_key, "admin"),
    _route("GET", "/api/usage", admin_api.usage, "admin"),
    _route("GET", "/api/settings", admin_api.settings, "admin"),
    # routing and resilience (issue 4)
    _route("GET", "/api/combos", admin_api.combos, "admin"),
    _route("POST", "/api/combos", admin_api.create_combo, "admin"),
    _route("PUT", "/api/combos/{name}", admin_api.update_combo, "admin"),
    _route("DELETE", "/api/combos/{name}", admin_api.delete_combo, "admin"),
    _route("POST", "/api/combos/{name}/test", admin_api.probe_combo, "admin"),
    _route("GET", "/api/aliases", admin_api.aliases, "admin"),
    _route("POST", "/api/aliases", admin_api.set_alias, "admin"),
    _route("DELETE", "/api/aliases/{pattern}", admin_api.delete_alias, "admin"),
    _route("GET", "/api/health", admin_api.health, "admin"),
    _route("POST", "/api/health/reset", admin_api.reset_health, "admin"),
    _route("GET", "/api/quotas", admin_api.quotas, "admin"),
    _route("GET", "/api/budgets", admin_api.budgets, "admin"),
    _route("PUT", "/api/budgets", admin_api.set_budget, "admin"),
    _route("PUT", "/api/prices", admin_api.set_price, "admin"),
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
        head_as_get: tuple[Route, dict[str, Any]] | None = None
        for r in self.dynamic:
            assert r.regex is not None  # noqa: S101 - dynamic routes always have one
            m = r.regex.match(path)
            if m is None:
                continue
            if r.method == method:
                return r, m.groupdict()
            if method == "HEAD" and r.method == "GET" and head_as_get is None:
                head_as_get = (r, m.groupdict())
            allowed = True
        if head_as_get is not None:
            return head_as_get  # the server sends GET's headers without the body
        if allowed:
            raise MethodNotAllowedError(f"{method} is not allowed on {path}")
        raise NotFoundError(f"no route for {method} {path}")

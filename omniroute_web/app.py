"""The running gateway: wires settings, store, registry, upstream client, pipeline and the HTTP server,
and owns the background tasks (config reload, signals).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import trio

from omniroute import (
    CODEC,
    GatewayError,
    PermissionDeniedError,
    Sealer,
    Settings,
    Store,
    is_loopback_host,
    kv_get,
    load_sealing_key,
)
from omniroute_providers import egress, guard, manage
from omniroute_providers.balancer import Balancer, BalancerConfig, wall_clock
from omniroute_providers.catalog import load_catalog
from omniroute_providers.health import HealthConfig
from omniroute_providers.pipeline import Call, Pipeline
from omniroute_providers.registry import Registry, load_registry
from omniroute_providers.strategies import normalize
from omniroute_providers.upstream import UpstreamClient
from omniroute_web.auth import authenticate_admin, authenticate_client
from omniroute_web.dashboard_api import apply_saved_settings, saved_request_policy
from omniroute_web.dashboard_data import apply_pending_restore
from omniroute_web.ipfilter import IPFilter  # security
from omniroute_web.messages import render_error
from omniroute_web.ratelimit import RateLimiter  # security
from omniroute_web.routes import ROUTES, Router
from omniroute_web.server import Request, Responder, Server, ServerConfig
from omniroute_web.session import SAFE_METHODS, SessionManager, audited, ensure_setup_token

log = logging.getLogger("omniroute")

CONFIG_POLL_S = 1.0  # how quickly a change made by another process (the CLI) reaches this one


class Gateway:
    def __init__(self, settings: Settings) -> None:
        if settings.no_auth and not is_loopback_host(settings.host):
            raise PermissionDeniedError(
                "--no-auth serves /v1 to anyone who can reach it; refusing it with the non-loopback bind "
                + settings.host
            )
        self.settings = settings
        # dashboard: a backup staged for restore replaces the database before anything reads it
        self.restored = apply_pending_restore(settings.data_path)
        if self.restored:
            log.warning("restored a backup; the database it replaced is backups/%s", self.restored)
        apply_saved_settings(settings)  # dashboard: values saved on its Settings page
        # security: address rules, per-address rate and guard settings, checked before anything is opened
        try:
            self.ip_filter = IPFilter.from_settings(settings)
            guard.validate(settings)
        except ValueError as exc:
            raise GatewayError(str(exc), code="invalid_setting") from None
        self.rate_limiter = RateLimiter(settings.rate_limit_per_ip_rpm)
        data = settings.data_path
        os.makedirs(data, mode=0o700, exist_ok=True)
        self.store = Store(os.path.join(data, "omniroute.sqlite"))
        # dashboard: browser sessions; a one-time setup link while no dashboard password is set
        self.sessions = SessionManager(self.store)
        self.setup_token = ensure_setup_token(self.store)
        self.sealer = Sealer(load_sealing_key(data, settings.secret_key))
        self.catalog = load_catalog()
        self.first_run = manage.ensure_first_run(self.store)  # the admin token and first key, shown once
        if settings.demo:
            manage.ensure_demo_account(self.store, self.sealer, self.catalog)
        self.registry: Registry = self.store.read(lambda db: load_registry(db, self.sealer, self.catalog))
        self.upstream = UpstreamClient(
            connect_timeout=settings.upstream_connect_timeout_s,
            first_byte_timeout=settings.upstream_first_byte_timeout_s,
            idle_timeout=settings.upstream_idle_timeout_s,
        )
        self.balancer = Balancer(
            wall_clock(),
            BalancerConfig(
                account_strategy=normalize(settings.account_strategy),
                retries_per_account=settings.retries_per_account,
                wait_for_cooldown_s=settings.wait_for_cooldown_s,
                rate_limit_wait_s=settings.rate_limit_wait_s,
                health=HealthConfig(
                    settings.breaker_failures, settings.breaker_window_s, settings.breaker_open_s
                ),
                quota_reset_hour=settings.quota_reset_hour,
            ),
        )
        self.balancer.attach(self.store, self.registry)
        self.pipeline = Pipeline(
            lambda: self.registry,
            self.upstream,
            self.store,
            request_deadline_s=settings.request_deadline_s,
            stream_coalesce_s=settings.stream_coalesce_ms / 1000,
            balancer=self.balancer,
            default_model=settings.default_model,
            guard=self._guard if settings.injection_guard != "off" else None,
            log_payloads=settings.log_payloads,
        )
        self.store.read(self.pipeline.keys.load)
        self.pipeline.set_policy(self.store.read(saved_request_policy))  # dashboard: system prompt, thinking
        self.router = Router(ROUTES)
        self.server = Server(
            self.dispatch,
            ServerConfig(
                max_body_bytes=settings.max_body_bytes,
                header_timeout_s=settings.header_timeout_s,
                body_idle_timeout_s=settings.body_idle_timeout_s,
                keepalive_timeout_s=settings.keepalive_timeout_s,
                max_connections=settings.max_connections,
                max_connections_per_ip=settings.max_connections_per_ip,  # security
                drain_timeout_s=settings.drain_timeout_s,
            ),
            error_renderer=render_error,
        )
        self.codec = CODEC
        self.started = time.monotonic()
        self.started_wall = time.time()

    def _guard(self, call: Call) -> None:
        guard.check(call.body, call.client_format, self.settings)

    def uptime(self) -> float:
        return time.monotonic() - self.started

    # ------------------------------------------------------------------------------------------------------
    # requests
    # ------------------------------------------------------------------------------------------------------

    async def dispatch(self, request: Request, responder: Responder) -> None:
        # security: address rules first, so a refused or flooding client costs no routing or auth work
        self.ip_filter.check(request.client, request.path)
        self.rate_limiter.check(request.client)
        route, params = self.router.match(request.method, request.path)
        key: Any = None
        if route.access == "client":
            key = authenticate_client(self.registry, request, no_auth=self.settings.no_auth)
        elif route.access == "admin":
            key = authenticate_admin(self.registry, request, self.sessions)  # who: for the audit trail
            if request.method not in SAFE_METHODS:
                call = route.handler(self, request, responder, params, key)
                await audited(self.store, key, request, responder, call)
                return
        await route.handler(self, request, responder, params, key)

    # ------------------------------------------------------------------------------------------------------
    # configuration
    # ------------------------------------------------------------------------------------------------------

    def reload_now(self) -> None:
        """Re-read the configuration on this thread (start-up, tests); the server uses `reload`."""
        self.registry = self.store.read(lambda db: load_registry(db, self.sealer, self.catalog))
        self.balancer.configure(self.registry)
        self.pipeline.set_policy(self.store.read(saved_request_policy))

    async def reload(self) -> None:
        self.registry = await trio.to_thread.run_sync(
            lambda: self.store.read(lambda db: load_registry(db, self.sealer, self.catalog))
        )
        self.balancer.configure(self.registry)
        # saved settings bump the config version too: another process (or worker) may have changed them
        self.pipeline.set_policy(await trio.to_thread.run_sync(lambda: self.store.read(saved_request_policy)))

    async def _watch_config(self) -> None:
        while True:
            await trio.sleep(CONFIG_POLL_S)
            try:
                version = await trio.to_thread.run_sync(
                    lambda: int(self.store.read(lambda db: kv_get(db, "config_version")) or 0)
                )
                if version != self.registry.version:
                    await self.reload()
            except Exception:
                log.exception("reloading the configuration failed; keeping the previous one")

    # ------------------------------------------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED, handle_signals: bool = True) -> None:
        """Serve until shutdown (a signal, or `self.server.shutdown()`), then close everything."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_config)
                nursery.start_soon(self.balancer.persist_loop)
                if handle_signals:
                    nursery.start_soon(self._watch_signals)
                port = await nursery.start(self._serve_then_stop, nursery)
                for own in self.server.ports:  # security: providers may never point back at us
                    egress.add_listening_port(own)
                task_status.started(port)
        finally:
            for own in self.server.ports:  # security
                egress.remove_listening_port(own)
            with trio.CancelScope(shield=True):
                await self.upstream.aclose()
            self.balancer.persist()
            self.store.close()

    async def _serve_then_stop(
        self, nursery: trio.Nursery, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        # Server.serve returns once shutdown has drained every connection; then the helpers stop too.
        await self.server.serve(self.settings.host, self.settings.port, task_status=task_status)
        nursery.cancel_scope.cancel()

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            count = 0
            async for signum in signals:
                count += 1
                if count == 1:
                    log.info(
                        "%s: stopping; in-flight requests get %gs",
                        signal.Signals(signum).name,
                        self.settings.drain_timeout_s,
                    )
                    self.server.shutdown()
                else:
                    log.warning("second signal: ending every request now")
                    self.server.force_close()
                    return

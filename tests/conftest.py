"""Shared fixtures: a real gateway on a loopback socket with its own data dir, driven with httpx."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from omniroute import Settings, load_settings
from omniroute_providers import manage
from omniroute_web.app import Gateway

pytest_plugins = ["tests.fakes.fixtures"]

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Harness:
    gw: Gateway
    url: str
    key: str  # the first client key, minted at first run
    admin_token: str
    http: httpx.AsyncClient  # authenticated with `key`

    def add_account(
        self,
        provider: str,
        *,
        base_url: str | None = None,
        key: str = "sk-test-0000000000",
        name: str = "",
        priority: int = 0,
        local: bool = True,
        enabled: bool = True,
    ) -> int:
        return manage.add_account(
            self.gw.store,
            self.gw.sealer,
            self.gw.registry.catalog,
            manage.AccountInput(
                provider=provider,
                name=name or f"acct-{priority}-{key[-4:]}",
                key=key,
                base_url=base_url,
                priority=priority,
                local=local,
                enabled=enabled,
            ),
        )

    def add_custom(self, provider_id: str, base_url: str, *, fmt: str = "openai-chat", auth: str = "bearer") -> str:
        pid = manage.add_custom_provider(
            self.gw.store, self.gw.registry.catalog, provider_id=provider_id, name=provider_id,
            format=fmt, base_url=base_url, auth=auth, local=True,
        )
        self.gw.reload_now()  # the new provider joins the catalog before accounts are added to it
        return pid

    def add_combo(self, name: str, targets: list[str | dict[str, Any]], strategy: str = "priority", **kw: Any) -> None:
        manage.save_combo(self.gw.store, self.gw.registry.catalog, {"name": name, "targets": targets,
                                                                    "strategy": strategy, **kw})

    def set_limits(self, account_id: int, limits: dict[str, Any]) -> None:
        manage.update_account(self.gw.store, self.gw.sealer, account_id, {"limits": limits})

    def set_budget(self, scope: str, ident: str, period: str, limit_usd: float | None) -> None:
        manage.set_budget(self.gw.store, scope, ident, period, limit_usd)

    async def reload(self) -> None:
        self.gw.reload_now()  # on the loop thread: no worker-thread wait for a MockClock to jump over

    async def usage_rows(self) -> list[dict[str, Any]]:
        """Usage rows, once every in-flight request has finished and been recorded."""
        with trio.fail_after(5):
            while self.gw.server.active_requests:
                await trio.sleep(0.01)
        self.gw.store.flush()

        def read(db: Any) -> list[dict[str, Any]]:
            cols = [
                "request_id", "provider", "account_id", "model_served", "status", "outcome", "input_tokens",
                "output_tokens", "cached_tokens", "cost_usd", "attempts", "error", "stream", "ttfb_ms",
                "tokens_estimated", "client_format", "model_requested", "key_id",
            ]
            rows = db.execute(f"SELECT {', '.join(cols)} FROM usage ORDER BY id")  # noqa: S608
            return [dict(zip(cols, r, strict=True)) for r in rows]

        return list(self.gw.store.read(read))


MakeGateway = Callable[..., Awaitable[Harness]]


def settings_for_test(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "data_dir": str(data_dir), "no_open": True}
    values.update(overrides)
    return load_settings(values, env={})


@pytest.fixture
def make_gateway(nursery: trio.Nursery, tmp_path: Path) -> MakeGateway:
    counter = [0]

    async def make(data_dir: Path | None = None, **overrides: Any) -> Harness:
        counter[0] += 1
        settings = settings_for_test(data_dir or tmp_path / f"data{counter[0]}", **overrides)
        gw = Gateway(settings)
        port = await nursery.start(lambda task_status: gw.run(task_status=task_status, handle_signals=False))
        url = f"http://127.0.0.1:{port}"
        key = gw.first_run.client_key or ""
        http = httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=30)
        return Harness(gw, url, key, gw.first_run.admin_token or "", http)

    return make


@pytest.fixture
async def gateway(make_gateway: MakeGateway) -> AsyncIterator[Harness]:
    h = await make_gateway()
    async with h.http:
        yield h


@pytest.fixture
def subprocess_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIROUTE_")}
    env["PYTHONPATH"] = str(ROOT)
    return env

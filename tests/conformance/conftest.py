"""The conformance mesh: one real gateway, four fake upstreams (one per wire format), one account each.

`mesh.send(mode, upstream, body)` sends a client request in `mode` (client format + stream shape) to the
model of the provider speaking `upstream`, and returns the client's `Answer` (decoded and checked against the
client format's official SDK types) — see tests/conformance/clients.py. `mesh.fakes[upstream]` is the fake;
what it received is `mesh.last(upstream)` (checked against the upstream format's rules first).
"""

from __future__ import annotations

import dataclasses
import functools
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from omniroute import Settings
from omniroute_web.app import Gateway
from tests.conformance import clients, upstreams
from tests.conformance.clients import Answer, Mode
from tests.conftest import Harness, settings_for_test
from tests.fakes.fixtures import MakeFake
from tests.fakes.upstream import FakeUpstream, RecordedRequest

# upstream format -> (provider id, model, fake prefix)
PROVIDERS: dict[str, tuple[str, str, str]] = {
    "openai-chat": ("openai", "gpt-4o-mini", "/v1"),
    "openai-responses": ("openai-responses", "gpt-4o-mini", "/v1"),
    "anthropic": ("anthropic", "claude-sonnet-4-6", "/v1"),
    "gemini": ("gemini", "gemini-2.5-flash", "/v1beta"),
}


# This suite is about translation, not resilience: no same-account retries, no waiting out a cooldown, so
# an upstream error reaches the client at once and as itself.
FORMAT_ONLY_SETTINGS = {
    k: v
    for k, v in {"retries_per_account": 0, "wait_for_cooldown_s": 0.0}.items()
    if k in {f.name for f in dataclasses.fields(Settings)}
}


@dataclass
class Mesh:
    gw: Harness
    fakes: dict[str, FakeUpstream] = field(default_factory=dict)

    @staticmethod
    def model(upstream: str, model: str | None = None) -> str:
        provider, default, _ = PROVIDERS[upstream]
        return f"{provider}/{model or default}"

    async def send(
        self,
        mode: Mode,
        upstream: str,
        body: dict[str, Any],
        *,
        model: str | None = None,
        headers: dict[str, str] | None = None,
        path: str | None = None,
    ) -> Answer:
        return await clients.send(
            self.gw.http,
            mode,
            self.model(upstream, model),
            body,
            headers,
            path,
            passthrough=mode.client == upstream,
        )

    def last(self, upstream: str, *, check: bool = True) -> RecordedRequest:
        """What the `upstream` fake received last, after checking it against that format's rules."""
        fake = self.fakes[upstream]
        assert fake.requests, f"the {upstream} upstream received nothing"
        req = fake.requests[-1]
        if check:
            upstreams.check_request(upstream, req)
        return req


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # One CA bundle load for the whole suite: a fresh httpx client loads it again each time (~45 ms), and
    # this suite starts hundreds of gateways. The clients only ever talk plain HTTP to loopback.
    return ssl.create_default_context()


@pytest.fixture
async def mesh(nursery: trio.Nursery, tmp_path: Path, make_fake_upstream: MakeFake) -> AsyncIterator[Mesh]:
    """`make_gateway`, plus four fake upstreams and an account on each, with a shared SSL context."""
    gw = Gateway(settings_for_test(tmp_path / "data", **FORMAT_ONLY_SETTINGS))
    port = await nursery.start(lambda task_status: gw.run(task_status=task_status, handle_signals=False))
    url = f"http://127.0.0.1:{port}"
    key = gw.first_run.client_key or ""
    http = httpx.AsyncClient(
        base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=30, verify=_ssl_context()
    )
    h = Harness(gw, url, key, gw.first_run.admin_token or "", http)
    m = Mesh(h)
    for fmt, (provider, _, prefix) in PROVIDERS.items():
        fake = await make_fake_upstream(prefix=prefix)
        m.fakes[fmt] = fake
        h.add_account(provider, base_url=fake.base_url, key=f"sk-{provider}-upstream-key")
    await h.reload()
    async with http:
        yield m

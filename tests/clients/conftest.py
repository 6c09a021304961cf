"""Fixtures for the real-agent tests: a `--demo` gateway (the echo provider) that also has one account
per upstream format, all pointing at one fake upstream, and a fresh workspace with a note to read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clients.agents import Workspace
from tests.clients.script import NOTE, SECOND_NOTE, UPSTREAMS
from tests.conftest import Harness, MakeGateway
from tests.fakes.fixtures import MakeFake
from tests.fakes.upstream import FakeUpstream


@dataclass
class Routed:
    gw: Harness
    fake: FakeUpstream


@pytest.fixture
async def routed(make_gateway: MakeGateway, make_fake_upstream: MakeFake) -> AsyncIterator[Routed]:
    gw = await make_gateway(demo=True)
    fake = await make_fake_upstream()
    for provider, prefix in UPSTREAMS.values():
        gw.add_account(provider, base_url=fake.base_url + prefix, key=f"sk-{provider}-account-0001")
    await gw.reload()
    async with gw.http:  # its pooled connections must not outlive the test (ResourceWarning)
        yield Routed(gw, fake)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace.make(tmp_path / "agent")
    (ws.project / "notes.txt").write_text(NOTE)
    (ws.project / "second.txt").write_text(SECOND_NOTE)
    return ws

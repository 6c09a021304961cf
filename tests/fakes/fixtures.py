"""pytest plugin: fake upstream fixtures. Load with `pytest_plugins = ["tests.fakes.fixtures"]`.

`fake_upstream` is one FakeUpstream (no prefix) serving in the test's nursery; `make_fake_upstream(prefix=…,
**kwargs)` starts more (e.g. two providers, or a "/v1" and a "/v1beta" one). All stop when the test ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from tests.fakes.upstream import FakeUpstream

MakeFake = Callable[..., Awaitable[FakeUpstream]]


@pytest.fixture
def make_fake_upstream(nursery: trio.Nursery) -> MakeFake:
    async def make(**kwargs: Any) -> FakeUpstream:
        fake = FakeUpstream(**kwargs)
        await nursery.start(fake.serve)
        return fake

    return make


@pytest.fixture
async def fake_upstream(make_fake_upstream: MakeFake) -> FakeUpstream:
    return await make_fake_upstream()

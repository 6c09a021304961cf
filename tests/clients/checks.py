"""Assertions every agent test makes: the agent succeeded and printed what the upstream said, the tool's
output reached the upstream through the gateway's translation, and the gateway recorded each request."""

from __future__ import annotations

from typing import Any

from tests.clients.agents import Run
from tests.clients.conftest import Routed
from tests.clients.script import (
    SECOND,
    SIGNATURE,
    UPSTREAMS,
    ToolTurn,
    describe,
    final_answer,
    replayed_signatures,
    tool_results,
)


def assert_succeeded(run: Run, answer: str) -> None:
    assert run.returncode == 0, str(run)
    assert answer in run.stdout, str(run)


async def assert_recorded(
    routed: Routed, *, client_format: str, provider: str, model: str
) -> list[dict[str, Any]]:
    rows = await routed.gw.usage_rows()
    assert rows, "the gateway recorded no request"
    for row in rows:
        # Codex hangs up the moment response.completed arrives: still a served request
        assert (row["status"], row["outcome"]) == (200, "ok"), rows
        assert row["client_format"] == client_format, rows
        assert row["provider"] == provider, rows
        assert row["model_requested"] == model, rows
    return rows


async def assert_tool_round_trip(
    run: Run, routed: Routed, turn: ToolTurn, *, client_format: str, model: str, replays_signature: bool
) -> None:
    """The agent called the tool the upstream asked for, sent its output back, and printed the answer."""
    seen = describe(routed.fake.requests)
    assert_succeeded(run, final_answer(turn.upstream))
    assert turn.calls_made, f"no request declared {turn.tool!r}:\n{seen}"
    assert turn.calls_made[0].format == turn.upstream, seen
    assert turn.answered, f"the tool's output never reached the upstream:\n{seen}\n{run}"
    if turn.also is not None:  # both parallel calls answered, in the one request that follows
        results = tool_results(turn.answered[0])
        assert len(results) == 2, seen
        assert any(SECOND in r for r in results), seen
    if replays_signature:
        # the reasoning token the upstream minted comes back to it, in its own format, on the next turn
        assert SIGNATURE in replayed_signatures(turn.answered[0]), seen
    rows = await assert_recorded(
        routed, client_format=client_format, provider=UPSTREAMS[turn.upstream][0], model=model
    )
    assert len(rows) >= 2, rows  # the call, then the turn that carries its result

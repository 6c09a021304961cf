"""Assertions every agent test makes: the agent succeeded and printed what the upstream said, the tool's
output reached the upstream through the gateway's translation, and the gateway recorded each request."""

from __future__ import annotations

from tests.clients.agents import Run
from tests.clients.conftest import Routed
from tests.clients.script import (
    SIGNATURE,
    UPSTREAMS,
    ToolTurn,
    describe,
    final_answer,
    replayed_signatures,
)


def assert_succeeded(run: Run, answer: str) -> None:
    assert run.returncode == 0, str(run)
    assert answer in run.stdout, str(run)


def _hung_up_after_the_end(row: dict) -> bool:
    """An agent that closes the moment the terminal event arrives (Codex after response.completed) can
    race the gateway's last write on a passthrough stream; the gateway then records the served request
    as cancelled. Pinned by an xfail in test_gateway_gaps.py; accepted here only with the upstream's
    final usage recorded, i.e. the whole answer went through."""
    return row["status"] == 499 and row["outcome"] == "cancelled" and (row["output_tokens"] or 0) > 0


async def assert_recorded(routed: Routed, *, client_format: str, provider: str, model: str) -> list[dict]:
    rows = await routed.gw.usage_rows()
    assert rows, "the gateway recorded no request"
    for row in rows:
        assert row["status"] == 200 or _hung_up_after_the_end(row), rows
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
    if replays_signature:
        # the reasoning token the upstream minted comes back to it, in its own format, on the next turn
        assert SIGNATURE in replayed_signatures(turn.answered[0]), seen
    rows = await assert_recorded(
        routed, client_format=client_format, provider=UPSTREAMS[turn.upstream][0], model=model
    )
    assert len(rows) >= 2, rows  # the call, then the turn that carries its result

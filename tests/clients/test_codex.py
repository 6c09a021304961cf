"""Codex CLI (`codex exec`) against the gateway: OpenAI Responses in, every upstream format out."""

from __future__ import annotations

import pytest

from tests.clients import agents
from tests.clients.checks import assert_recorded, assert_succeeded, assert_tool_round_trip
from tests.clients.conftest import Routed
from tests.clients.script import UPSTREAMS, ToolTurn, model_for

pytestmark = [pytest.mark.clients, agents.requires("codex")]


async def test_codex_answers_through_the_demo_echo(routed: Routed, workspace: agents.Workspace) -> None:
    argv, env = agents.codex(workspace, routed.gw.url, routed.gw.key, "echo", "Say PONG")

    run = await agents.run_agent(argv, env, workspace.project)

    assert_succeeded(run, "Say PONG")
    await assert_recorded(routed, client_format="openai-responses", provider="echo", model="echo")


@pytest.mark.parametrize("upstream", list(UPSTREAMS))
async def test_codex_runs_a_command_for_each_upstream_format(
    routed: Routed, workspace: agents.Workspace, upstream: str
) -> None:
    turn = ToolTurn(upstream, "exec_command", {"cmd": "cat notes.txt"})
    routed.fake.responder = turn
    model = model_for(upstream)
    argv, env = agents.codex(workspace, routed.gw.url, routed.gw.key, model, "What does notes.txt say?")

    run = await agents.run_agent(argv, env, workspace.project)

    await assert_tool_round_trip(
        run,
        routed,
        turn,
        client_format="openai-responses",
        model=model,
        replays_signature=upstream != "openai-chat",
    )

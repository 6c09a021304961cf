"""Claude Code (`claude -p`) against the gateway: Anthropic Messages in, every upstream format out."""

from __future__ import annotations

import pytest

from tests.clients import agents
from tests.clients.checks import assert_recorded, assert_succeeded, assert_tool_round_trip
from tests.clients.conftest import Routed
from tests.clients.script import UPSTREAMS, ToolTurn, model_for

pytestmark = [pytest.mark.clients, agents.requires("claude")]


async def test_claude_code_answers_through_the_demo_echo(routed: Routed, workspace: agents.Workspace) -> None:
    argv, env = agents.claude_code(workspace, routed.gw.url, routed.gw.key, "echo", "Say PONG")

    run = await agents.run_agent(argv, env, workspace.project)

    # echo answers with the last user message: Claude Code's own reminder block, then the prompt
    assert_succeeded(run, "Say PONG")
    assert run.stdout.rstrip().endswith("Say PONG"), str(run)
    await assert_recorded(routed, client_format="anthropic", provider="echo", model="echo")


@pytest.mark.parametrize("upstream", list(UPSTREAMS))
async def test_claude_code_reads_a_file_for_each_upstream_format(
    routed: Routed, workspace: agents.Workspace, upstream: str
) -> None:
    turn = ToolTurn(
        upstream,
        "Read",
        {"file_path": str(workspace.project / "notes.txt")},
        also={"file_path": str(workspace.project / "second.txt")},
    )
    routed.fake.responder = turn
    model = model_for(upstream)
    argv, env = agents.claude_code(workspace, routed.gw.url, routed.gw.key, model, "What does notes.txt say?")

    run = await agents.run_agent(argv, env, workspace.project)

    await assert_tool_round_trip(
        run,
        routed,
        turn,
        client_format="anthropic",
        model=model,
        # Claude Code keeps signed thinking blocks; an OpenAI Chat upstream has no reasoning token to replay
        replays_signature=upstream != "openai-chat",
    )

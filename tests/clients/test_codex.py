"""Codex CLI (`codex exec`) against the gateway: OpenAI Responses in, every upstream format out."""

from __future__ import annotations

import json

import pytest

from omniroute_providers import manage
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
    turn = ToolTurn(upstream, "exec_command", {"cmd": "cat notes.txt"}, also={"cmd": "cat second.txt"})
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


# A model Codex 0.169 knows switches it to "code mode": no top-level `tools`; an `additional_tools` input
# item declares namespaces (`functions` with the free-form `exec` tool that runs JavaScript, `clock`, ...).
CODE_MODE_MODEL = "gpt-6.1-sol"
EXEC_SCRIPT = 'const r = await tools.exec_command({cmd: "cat notes.txt"}); text(r);'


@pytest.mark.parametrize("upstream", ["anthropic", "openai-chat", "gemini"])
async def test_codex_code_mode_tools_reach_a_translated_upstream(
    routed: Routed, workspace: agents.Workspace, upstream: str
) -> None:
    # the user keeps Codex's model name and points it at another provider with an alias
    manage.set_alias(routed.gw.gw.store, CODE_MODE_MODEL, model_for(upstream))
    await routed.gw.reload()
    turn = ToolTurn(upstream, "functions__exec", {"input": EXEC_SCRIPT})
    routed.fake.responder = turn
    argv, env = agents.codex(
        workspace, routed.gw.url, routed.gw.key, CODE_MODE_MODEL, "What does notes.txt say?"
    )

    run = await agents.run_agent(argv, env, workspace.project)

    await assert_tool_round_trip(
        run,
        routed,
        turn,
        client_format="openai-responses",
        model=CODE_MODE_MODEL,
        replays_signature=upstream != "openai-chat",
    )
    # the developer instructions still lead: they are the upstream's system prompt, not a user turn
    first = turn.calls_made[0].json
    system = json.dumps(first.get("system") or first.get("systemInstruction") or first.get("messages")[0])
    assert "You are Codex" in system, system[:300]

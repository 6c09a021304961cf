"""Gemini CLI (`gemini -p`) against the gateway: Gemini streamGenerateContent in, every upstream format
out."""

from __future__ import annotations

import pytest

from omniroute_providers import manage
from tests.clients import agents
from tests.clients.checks import assert_recorded, assert_succeeded, assert_tool_round_trip
from tests.clients.conftest import Routed
from tests.clients.script import (
    SIGNATURE,
    THINKING,
    UPSTREAMS,
    ToolTurn,
    describe,
    final_answer,
    json_schema_asked,
    model_for,
    replayed_signatures,
)

pytestmark = [pytest.mark.clients, agents.requires("gemini")]


async def test_gemini_cli_answers_through_the_demo_echo(routed: Routed, workspace: agents.Workspace) -> None:
    argv, env = agents.gemini_cli(workspace, routed.gw.url, routed.gw.key, "echo", "Say PONG")

    run = await agents.run_agent(argv, env, workspace.project)

    # echo answers with the last user turn: Gemini CLI's session context, then the prompt
    assert_succeeded(run, "Say PONG")
    await assert_recorded(routed, client_format="gemini", provider="echo", model="echo")


@pytest.mark.parametrize("upstream", list(UPSTREAMS))
async def test_gemini_cli_reads_a_file_for_each_upstream_format(
    routed: Routed, workspace: agents.Workspace, upstream: str
) -> None:
    turn = ToolTurn(upstream, "read_file", {"file_path": "notes.txt"}, also={"file_path": "second.txt"})
    routed.fake.responder = turn
    model = model_for(upstream)
    argv, env = agents.gemini_cli(workspace, routed.gw.url, routed.gw.key, model, "What does notes.txt say?")

    run = await agents.run_agent(argv, env, workspace.project)

    await assert_tool_round_trip(
        run,
        routed,
        turn,
        client_format="gemini",
        model=model,
        replays_signature=upstream != "openai-chat",  # Chat Completions has no signature slot
    )


async def test_gemini_cli_replays_claude_signature_to_an_anthropic_upstream(
    routed: Routed, workspace: agents.Workspace
) -> None:
    # Gemini CLI keeps no thought parts in its history: the signature (and the thinking text Anthropic
    # wants with it) must come back on a part the CLI keeps, and become a whole thinking block again
    turn = ToolTurn("anthropic", "read_file", {"file_path": "notes.txt"})
    routed.fake.responder = turn
    argv, env = agents.gemini_cli(
        workspace, routed.gw.url, routed.gw.key, model_for("anthropic"), "What does notes.txt say?"
    )

    run = await agents.run_agent(argv, env, workspace.project)

    assert turn.answered, str(run)
    assert SIGNATURE in replayed_signatures(turn.answered[0])
    body = turn.answered[0].json
    assert isinstance(body, dict)
    (assistant,) = [m for m in body["messages"] if m["role"] == "assistant"]
    blocks = assistant["content"]
    assert blocks[0] == {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}, blocks
    assert [b["type"] for b in blocks[1:]] == ["text", "tool_use"], blocks


@pytest.mark.parametrize("upstream", ["anthropic", "openai-chat"])
async def test_gemini_cli_default_models_reach_another_provider_through_an_alias(
    routed: Routed, workspace: agents.Workspace, upstream: str
) -> None:
    # no -m: a routing call with a JSON schema (upper-case Gemini types) on its router model, then the
    # turn on its default model; one wildcard alias sends both elsewhere
    manage.set_alias(routed.gw.gw.store, "gemini-*", model_for(upstream))
    await routed.gw.reload()
    turn = ToolTurn(upstream, "read_file", {"file_path": "notes.txt"})
    routed.fake.responder = turn
    argv, env = agents.gemini_cli(workspace, routed.gw.url, routed.gw.key, None, "What does notes.txt say?")

    run = await agents.run_agent(argv, env, workspace.project)

    assert_succeeded(run, final_answer(upstream))
    (router,) = turn.structured
    schema = json_schema_asked(router)
    assert schema is not None
    assert schema["type"] == "object", schema  # Gemini's "OBJECT", translated
    assert schema["properties"]["complexity_score"]["type"] == "integer", schema
    assert turn.answered, describe(routed.fake.requests)
    rows = await routed.gw.usage_rows()
    assert {r["model_requested"].split("-")[0] for r in rows} == {"gemini"}, rows
    assert all(r["status"] == 200 and r["provider"] == UPSTREAMS[upstream][0] for r in rows), rows

"""An upstream that does not know the model: every agent tells the user so, promptly, in its own words.

Claude Code answers a 4xx by retrying with fewer features (betas, thinking display, tool variants) and
opencode by retrying what looks temporary, so the gateway must give each retry the same verdict: a
"cooling down" 503/529 there turns a typo in a model name into "a server-side issue, usually temporary"
(Claude Code) or minutes of retrying (opencode honours the Retry-After).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.clients import agents
from tests.clients.conftest import Routed
from tests.clients.script import model_for
from tests.fakes.reply import Reply

pytestmark = pytest.mark.clients

PROMPT_TIMEOUT_S = 20.0  # every agent gives up within seconds when the gateway answers consistently

Runner = Callable[..., tuple[list[str], dict[str, str]]]
AGENTS = [
    # (its runner, what it prints for a model the upstream does not know)
    pytest.param(
        agents.claude_code,  # it retries a 4xx up to five times, with fewer features each time
        "issue with the selected model",
        marks=agents.requires("claude"),
    ),
    pytest.param(agents.codex, "model: fake-model", marks=agents.requires("codex")),
    pytest.param(agents.gemini_cli, "model: fake-model", marks=agents.requires("gemini")),
    pytest.param(
        agents.opencode,  # its title call, then the agent turn, each meet the unknown model
        "model: fake-model",
        marks=agents.requires("opencode"),
    ),
]


@pytest.mark.parametrize(
    ("runner", "expected"), AGENTS, ids=["claude-code", "codex", "gemini-cli", "opencode"]
)
async def test_agent_reports_a_model_the_upstream_does_not_know(
    routed: Routed, workspace: agents.Workspace, runner: Runner, expected: str
) -> None:
    # Anthropic's own answer for an unknown model id
    routed.fake.default = Reply(status=404, error="model: fake-model", error_type="not_found_error")
    argv, env = runner(workspace, routed.gw.url, routed.gw.key, model_for("anthropic"), "Say PONG")

    run = await agents.run_agent(argv, env, workspace.project, timeout_s=PROMPT_TIMEOUT_S)

    assert run.returncode != 0, str(run)
    printed = run.stdout + run.stderr
    assert expected in printed, str(run)
    assert "cooling down" not in printed, str(run)
    rows = await routed.gw.usage_rows()
    assert rows, "the gateway recorded no request"
    assert {row["status"] for row in rows} == {404}, rows  # every retry got the upstream's verdict

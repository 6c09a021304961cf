"""The four coding agents as subprocesses: where `tests/install_clients.sh` put them, the throwaway home and
config each one needs to talk only to a gateway on loopback, and one headless run with a deadline.

Every run gets a fresh HOME (and the agent's own config dir inside it) under the test's tmp_path and an
environment built from scratch — PATH, locale and the agent's switches — so nothing from the machine's real
config or vendor credentials leaks in, and the switches that stop vendor traffic are always set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".clients" / "node_modules" / ".bin"
RUN_TIMEOUT_S = 90.0  # an agent that retries against a broken gateway would otherwise hang the suite


def requires(name: str) -> pytest.MarkDecorator:
    """Skip (at collection, with the reason shown) when the agent or node is missing."""
    if not (BIN / name).exists():
        return pytest.mark.skip(reason=f"{name} is not installed: run tests/install_clients.sh")
    if shutil.which("node") is None:
        return pytest.mark.skip(reason="node is not on PATH")
    return pytest.mark.clients


def agent_binary(name: str) -> Path:
    return BIN / name


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.argv[:1] + self.argv[1:4])} ... -> exit {self.returncode}\n"
            f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"
        )


def base_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "1",
    }


async def run_agent(
    argv: list[str], env: dict[str, str], cwd: Path, *, timeout_s: float = RUN_TIMEOUT_S
) -> Run:
    with trio.move_on_after(timeout_s) as scope:
        done = await trio.run_process(
            argv,
            env=env,
            cwd=str(cwd),
            stdin=subprocess.DEVNULL,  # Codex reads stdin when it is not a terminal
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    if scope.cancelled_caught:
        pytest.fail(f"{Path(argv[0]).name} did not finish within {timeout_s:.0f} s")
    return Run(
        argv, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


@dataclass
class Workspace:
    """A fresh home and project directory for one agent run."""

    home: Path
    project: Path

    @classmethod
    def make(cls, root: Path) -> Workspace:
        home, project = root / "home", root / "project"
        home.mkdir(parents=True)
        project.mkdir(parents=True)
        return cls(home, project)


# ----------------------------------------------------------------------------------------------------------
# one function per agent: (argv, env) for a headless run of `prompt` against the gateway at `url`
# ----------------------------------------------------------------------------------------------------------


def claude_code(
    ws: Workspace, url: str, key: str, model: str, prompt: str
) -> tuple[list[str], dict[str, str]]:
    env = base_env(ws.home)
    env.update(
        ANTHROPIC_BASE_URL=url,  # it appends /v1/messages?beta=true
        ANTHROPIC_API_KEY=key,  # sent as x-api-key; -p needs no approval for it
        ANTHROPIC_MODEL=model,
        # side calls (titles, summaries, subagents) would otherwise name Claude models it cannot route
        ANTHROPIC_DEFAULT_OPUS_MODEL=model,
        ANTHROPIC_DEFAULT_SONNET_MODEL=model,
        ANTHROPIC_DEFAULT_HAIKU_MODEL=model,
        CLAUDE_CODE_SUBAGENT_MODEL=model,
        CLAUDE_CONFIG_DIR=str(ws.home / ".claude"),
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",  # the one switch that stops all vendor traffic
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
        DISABLE_AUTOUPDATER="1",
    )
    argv = [str(agent_binary("claude")), "-p", prompt, "--output-format", "text", "--allowedTools", "Read"]
    return argv, env


CODEX_CONFIG = """\
model = "{model}"
model_provider = "gateway"
check_for_update_on_startup = false

[analytics]
enabled = false
[feedback]
enabled = false
[features]
plugins = false
remote_plugin = false
apps = false

[model_providers.gateway]
name = "Gateway"
base_url = "{url}/v1"
env_key = "GATEWAY_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""


def codex(
    ws: Workspace, url: str, key: str, model: str, prompt: str, *, features: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, str]]:
    """`features`: extra `[features]` flags to switch on (e.g. apply_patch_freeform)."""
    codex_home = ws.home / ".codex"
    codex_home.mkdir()
    config = CODEX_CONFIG.format(model=model, url=url)
    config = config.replace("[features]\n", "[features]\n" + "".join(f"{f} = true\n" for f in features))
    (codex_home / "config.toml").write_text(config)
    env = base_env(ws.home)
    env.update(CODEX_HOME=str(codex_home), GATEWAY_API_KEY=key)
    argv = [
        str(agent_binary("codex")),
        "exec",
        "--skip-git-repo-check",
        "--ephemeral",
        "--strict-config",
        "--sandbox",
        "danger-full-access",  # no bubblewrap in CI containers; the test's commands are harmless
        "-C",
        str(ws.project),
        prompt,
    ]
    return argv, env


GEMINI_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
}


def gemini_cli(
    ws: Workspace, url: str, key: str, model: str | None, prompt: str
) -> tuple[list[str], dict[str, str]]:
    """`model=None`: Gemini CLI's own choice (a routing call, then its default model)."""
    settings = ws.home / ".gemini" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps(GEMINI_SETTINGS))
    env = base_env(ws.home)
    env.update(GOOGLE_GEMINI_BASE_URL=url, GEMINI_API_KEY=key, GEMINI_CLI_TRUST_WORKSPACE="true")
    argv = [str(agent_binary("gemini")), *(["-m", model] if model else []), "-p", prompt, "--yolo"]
    return argv, env


OPENCODE_BASE_PATHS = {
    "@ai-sdk/openai-compatible": "/v1",
    "@ai-sdk/openai": "/v1",
    "@ai-sdk/anthropic": "/v1",
    "@ai-sdk/google": "/v1beta",
}


def opencode(
    ws: Workspace, url: str, key: str, model: str, prompt: str, *, sdk: str = "@ai-sdk/openai-compatible"
) -> tuple[list[str], dict[str, str]]:
    config = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "gateway": {
                "npm": sdk,
                "name": "Gateway",
                "options": {"baseURL": url + OPENCODE_BASE_PATHS[sdk], "apiKey": "{env:GATEWAY_API_KEY}"},
                "models": {model: {"name": model}},
            }
        },
        "model": f"gateway/{model}",
        "small_model": f"gateway/{model}",
        "autoupdate": False,
        "share": "disabled",
        "permission": {"edit": "allow", "bash": "allow", "webfetch": "deny"},
    }
    (ws.project / "opencode.json").write_text(json.dumps(config))
    env = base_env(ws.home)
    env.update(
        GATEWAY_API_KEY=key,
        OPENCODE_DISABLE_MODELS_FETCH="1",
        OPENCODE_DISABLE_AUTOUPDATE="1",
        OPENCODE_DISABLE_DEFAULT_PLUGINS="1",
        OPENCODE_DISABLE_LSP_DOWNLOAD="1",
        OPENCODE_DISABLE_SHARE="1",
        OPENCODE_PURE="1",
    )
    argv = [str(agent_binary("opencode")), "run", "-m", f"gateway/{model}", prompt]
    return argv, env

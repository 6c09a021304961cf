"""The CLI tools page: each recipe carries this gateway's URL and the user's model, and "apply" merges it into
the tool's own config file under HOME, keeping the user's other settings and a backup of the old file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from omniroute_web import dashboard_clitools as cli
from tests.conftest import Harness

KEY = "omr_1234abcd_" + "k" * 43
TOOLS = {
    "claude-code",
    "codex",
    "gemini-cli",
    "opencode",
    "cline",
    "continue",
    "cursor",
    "openclaw",
    "copilot",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "CODEX_HOME", "CLAUDE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


def admin(h: Harness) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=h.url, headers={"authorization": f"Bearer {h.admin_token}"})


async def test_every_tool_is_described_with_this_gateway_and_model(gateway: Harness, home: Path) -> None:
    async with admin(gateway) as http:
        r = await http.get("/api/cli-tools", params={"base_url": gateway.url, "model": "openai/gpt-4o-mini"})
        tools = {t["id"]: t for t in r.json()["tools"]}
        assert set(tools) == TOOLS
        assert {t for t, v in tools.items() if v["applicable"]} == {
            "claude-code",
            "codex",
            "gemini-cli",
            "opencode",
            "openclaw",
            "copilot",
        }
        text = json.dumps(tools)
        assert gateway.url in text
        assert "openai/gpt-4o-mini" in text
        assert KEY not in text
        assert tools["claude-code"]["files"][0]["path"] == "~/.claude/settings.json"
        assert tools["codex"]["files"][0]["path"] == "~/.codex/config.toml"
        assert 'wire_api = "responses"' in tools["codex"]["files"][0]["content"]
        assert any(e["name"] == "GOOGLE_GEMINI_BASE_URL" for e in tools["gemini-cli"]["env"])
        assert tools["copilot"]["files"][0]["path"].endswith("chatLanguageModels.json")
        bad = await http.get("/api/cli-tools", params={"model": 'x"; rm -rf /'})
        assert bad.status_code == 400
        for url in ("javascript:alert(1)", "http://h/v1\nEVIL=1", "http://h/v 1"):
            bad = await http.get("/api/cli-tools", params={"base_url": url})
            assert bad.status_code == 400, url


async def test_apply_merges_into_claude_settings_keeps_the_rest_and_backs_up(
    gateway: Harness, home: Path
) -> None:
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"theme": "dark", "env": {"MY_VAR": "1", "ANTHROPIC_MODEL": "old"}}))
    async with admin(gateway) as http:
        r = await http.post(
            "/api/cli-tools/claude-code/apply", json={"base_url": gateway.url, "model": "smart", "key": KEY}
        )
        assert r.status_code == 200, r.text
        assert r.json()["written"] == ["~/.claude/settings.json"]
        assert r.json()["backups"][0].startswith("~/.claude/settings.json.omniroute-backup-")
    merged = json.loads(settings.read_text())
    assert merged["theme"] == "dark"
    assert merged["env"]["MY_VAR"] == "1"
    assert merged["env"]["ANTHROPIC_BASE_URL"] == gateway.url
    assert merged["env"]["ANTHROPIC_AUTH_TOKEN"] == KEY
    assert merged["env"]["ANTHROPIC_MODEL"] == "smart"
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600  # it holds a key
    backups = list(settings.parent.glob("settings.json.omniroute-backup-*"))
    assert len(backups) == 1
    assert json.loads(backups[0].read_text())["env"]["ANTHROPIC_MODEL"] == "old"


async def test_apply_refuses_what_it_cannot_parse_and_leaves_it_alone(gateway: Harness, home: Path) -> None:
    config = home / ".config" / "opencode" / "opencode.json"
    config.parent.mkdir(parents=True)
    config.write_text('{\n  // my comment\n  "theme": "x",\n}\n')
    async with admin(gateway) as http:
        r = await http.post("/api/cli-tools/opencode/apply", json={"model": "m", "key": KEY})
        assert r.status_code == 400
        assert "not plain JSON" in r.json()["error"]["message"]
        assert (
            await http.post("/api/cli-tools/cursor/apply", json={"model": "m", "key": KEY})
        ).status_code == 400
        assert (
            await http.post("/api/cli-tools/codex/apply", json={"model": "m", "key": ""})
        ).status_code == 400
        assert (
            await http.post("/api/cli-tools/vim/apply", json={"model": "m", "key": KEY})
        ).status_code == 404
    assert config.read_text().startswith("{\n  // my comment")
    assert list(config.parent.iterdir()) == [config]  # no backup, no temp file


async def test_apply_writes_every_file_tool_under_home(gateway: Harness, home: Path) -> None:
    async with admin(gateway) as http:
        for tool in ("codex", "gemini-cli", "opencode", "openclaw", "copilot"):
            r = await http.post(
                f"/api/cli-tools/{tool}/apply", json={"base_url": gateway.url, "model": "m1", "key": KEY}
            )
            assert r.status_code == 200, (tool, r.text)
            assert not r.json()["backups"]  # nothing was there before
    opencode = json.loads((home / ".config" / "opencode" / "opencode.json").read_text())
    assert opencode["provider"]["omniroute"]["options"] == {"baseURL": gateway.url + "/v1", "apiKey": KEY}
    assert opencode["model"] == "omniroute/m1"
    openclaw = json.loads((home / ".openclaw" / "openclaw.json").read_text())
    assert openclaw["agents"]["defaults"]["model"]["primary"] == "omniroute/m1"
    gemini_env = (home / ".gemini" / ".env").read_text()
    assert f"GOOGLE_GEMINI_BASE_URL={gateway.url}\n" in gemini_env
    assert f"GEMINI_API_KEY={KEY}" in gemini_env
    gemini = json.loads((home / ".gemini" / "settings.json").read_text())
    assert gemini["security"]["auth"]["selectedType"] == "gemini-api-key"
    copilot = json.loads((home / ".config" / "Code" / "User" / "chatLanguageModels.json").read_text())
    assert copilot[0]["vendor"] == "customendpoint"
    assert copilot[0]["models"][0]["url"].endswith("/v1/chat/completions")
    codex = (home / ".codex" / "config.toml").read_text()
    assert codex.startswith('model = "m1"\nmodel_provider = "omniroute"\n')


def test_codex_toml_merge_replaces_only_our_keys_and_table() -> None:
    old = (
        '# mine\nmodel = "o3"\napproval_policy = "never"\n\n[features]\nplugins = false\n\n'
        '[model_providers.omniroute]\nname = "old"\nbase_url = "http://old/v1"\n\n'
        '[model_providers.other]\nname = "x"\n'
    )
    ours = cli.tools("http://127.0.0.1:20128", "m2")[1].files[0].content
    once = cli.merge_codex_toml(old, ours)
    assert once.count("[model_providers.omniroute]") == 1
    assert "http://old/v1" not in once
    assert 'model = "m2"' in once
    assert 'model = "o3"' not in once
    for kept in (
        "# mine",
        'approval_policy = "never"',
        "[features]",
        "plugins = false",
        "[model_providers.other]",
    ):
        assert kept in once
    assert cli.merge_codex_toml(once, ours) == once  # applying twice changes nothing
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return
    parsed = tomllib.loads(once)
    assert parsed["model_provider"] == "omniroute"
    assert parsed["model_providers"]["omniroute"]["base_url"] == "http://127.0.0.1:20128/v1"
    assert parsed["features"]["plugins"] is False


def test_env_and_json_array_merges() -> None:
    env = cli.merge_env("export GEMINI_API_KEY=old\nOTHER=1\n", "GEMINI_API_KEY=new\nGEMINI_MODEL=m")
    assert env == "OTHER=1\nGEMINI_API_KEY=new\nGEMINI_MODEL=m\n"
    arr = cli.merge_json_array_by_name(
        json.dumps([{"name": "OmniRoute", "old": 1}, {"name": "Mine"}]),
        json.dumps([{"name": "OmniRoute", "new": 1}]),
    )
    assert json.loads(arr) == [{"name": "Mine"}, {"name": "OmniRoute", "new": 1}]
    with pytest.raises(Exception, match="unexpected shape"):
        cli.merge_json_array_by_name("{}", "[]")


def test_writes_are_atomic_and_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    tool = cli.tools("http://h:1", "m")[0]
    cli.write_files(tool, KEY, now=0)
    cli.write_files(tool, KEY, now=60)
    names = sorted(os.listdir(tmp_path / ".claude"))
    assert names == ["settings.json", "settings.json.omniroute-backup-19700101-000100"]

"""The command line and the process: first run, accounts and keys from the CLI, restart keeps state,
signals drain, secrets never reach logs, the admin API and client keys."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.conftest import ROOT, Harness, MakeGateway
from tests.fakes.fixtures import MakeFake
from tests.fakes.reply import Reply

CANARY = "sk-canary-7f3e9d2b1a4c8e6f0d5b3a9c7e1f"


def run_cli(data: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omniroute", "--data-dir", str(data), *args],
        capture_output=True, text=True, timeout=60, env=env, input=stdin, cwd=ROOT,
    )


class GatewayProcess:
    """`python -m omniroute` in a subprocess, its stderr kept for inspection."""

    def __init__(self, data: Path, env: dict[str, str], *extra: str) -> None:
        self.log = data.parent / f"{data.name}.stderr"
        with open(self.log, "w") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "omniroute", "--data-dir", str(data), "--port", "0", "--log-level", "debug", *extra],
                stdout=subprocess.DEVNULL, stderr=sink, env=env, cwd=ROOT,
            )

    async def url(self) -> str:
        with trio.fail_after(20):
            while True:
                text = self.log.read_text()
                for line in text.splitlines():
                    if " on http://" in line:
                        return line.split(" on ", 1)[1].split()[0]
                if self.proc.poll() is not None:
                    raise AssertionError(f"gateway exited: {text}")
                await trio.sleep(0.05)

    async def wait(self, timeout: float = 20) -> int:  # noqa: ASYNC109 - a subprocess, not a trio task
        """Wait for exit without blocking the event loop (fake upstreams in this process must keep serving)."""
        with trio.fail_after(timeout):
            while self.proc.poll() is None:
                await trio.sleep(0.05)
        return int(self.proc.returncode)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return await self.wait()


def test_help_and_version() -> None:
    out = subprocess.run([sys.executable, "-m", "omniroute", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("omniroute ")
    out = subprocess.run([sys.executable, "-m", "omniroute", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert "--port" in out.stdout and "provider" in out.stdout


def test_cli_manages_accounts_and_keys_without_showing_secrets(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    data = tmp_path / "d"
    env = {**subprocess_env, "MY_KEY": CANARY}
    added = run_cli(data, "provider", "add", "openai", "--name", "work", "--key-env", "MY_KEY", env=env)
    assert added.returncode == 0, added.stderr
    listed = run_cli(data, "provider", "list", env=env)
    assert "openai" in listed.stdout and "work" in listed.stdout
    assert CANARY not in listed.stdout and CANARY[-4:] in listed.stdout  # a hint, not the key
    assert run_cli(data, "provider", "disable", "1", env=env).returncode == 0
    assert "False" in run_cli(data, "provider", "list", env=env).stdout
    dup = run_cli(data, "provider", "add", "openai", "--name", "work", "--key", "sk-other-xxxxxxxxxxxx", env=env)
    assert dup.returncode == 2 and "already has an account" in dup.stderr
    unknown = run_cli(data, "provider", "add", "nosuchprovider", "--key", "x", env=env)
    assert unknown.returncode == 2 and "unknown provider" in unknown.stderr

    created = run_cli(data, "key", "create", "--name", "laptop", env=env)
    key = created.stdout.split(": ", 1)[1].split()[0]
    assert key.startswith("omr_")
    keys = run_cli(data, "key", "list", env=env).stdout
    assert "laptop" in keys and key not in keys
    assert run_cli(data, "key", "revoke", key, env=env).returncode == 0
    assert "True" in run_cli(data, "key", "list", env=env).stdout
    # the database holds neither the provider key nor the client key in clear
    raw = (data / "omniroute.sqlite").read_bytes() + b"".join(p.read_bytes() for p in data.glob("*-wal"))
    assert CANARY.encode() not in raw and key.encode() not in raw
    assert oct((data / "secret.key").stat().st_mode & 0o777) == "0o600"


async def test_restart_keeps_accounts_keys_and_usage(make_gateway: MakeGateway, make_fake_upstream: MakeFake, tmp_path: Path) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    data = tmp_path / "persist"
    first = await make_gateway(data_dir=data)
    first.add_account("openai", base_url=fake.base_url, key="sk-persisted-12345")
    await first.reload()
    async with first.http:
        r = await first.http.post("/v1/chat/completions", json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "1"}]})
        assert r.status_code == 200
    await first.usage_rows()
    first.gw.server.shutdown()
    with trio.fail_after(10):
        while first.gw.server.connections or first.gw.server.active_requests:
            await trio.sleep(0.05)
    await trio.sleep(0.3)

    second = await make_gateway(data_dir=data)
    assert second.gw.first_run.client_key is None  # no new first-run secrets on a restart
    async with httpx.AsyncClient(base_url=second.url, headers={"authorization": f"Bearer {first.key}"}) as http:
        r = await http.post("/v1/chat/completions", json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "2"}]})
        assert r.status_code == 200  # same key, same account, after the restart
    rows = await second.usage_rows()
    assert len(rows) == 2
    assert [q.credential for q in fake.requests] == ["sk-persisted-12345"] * 2
    await second.http.aclose()


async def test_keys_never_reach_logs_errors_or_the_database(
    tmp_path: Path, subprocess_env: dict[str, str], make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.per_key[CANARY] = Reply(status=401, error=f"Incorrect API key provided: {CANARY}. Check it.",
                                 error_type="invalid_request_error")
    data = tmp_path / "canary"
    env = {**subprocess_env, "K": CANARY}
    assert run_cli(data, "provider", "add", "openai", "--key-env", "K", "--base-url", fake.base_url, "--local", env=env).returncode == 0
    gw = GatewayProcess(data, env)
    try:
        url = await gw.url()
        key = next(line.split(": ")[1].strip() for line in gw.log.read_text().splitlines() if "first client key" in line)
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}) as http:
            r = await http.post("/v1/chat/completions", json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
            assert r.status_code == 502 and CANARY not in r.text and "REDACTED" in r.text
            r = await http.post("/v1/chat/completions", headers={"authorization": f"Bearer {CANARY}"},
                                json={"model": "openai/gpt-4o-mini", "messages": []})
            assert r.status_code == 401 and CANARY not in r.text
        await trio.sleep(0.5)
    finally:
        assert await gw.stop() == 0
    assert fake.requests and fake.requests[0].credential == CANARY  # the key was really used upstream
    log = gw.log.read_text()
    assert "Incorrect API key" in log or "rejected" in log  # the failure itself was logged ...
    assert CANARY not in log  # ... without the key
    raw = b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())
    assert CANARY.encode() not in raw


async def test_sigterm_drains_then_exits_zero_and_second_signal_exits_at_once(
    tmp_path: Path, subprocess_env: dict[str, str], make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(text="z" * 40, chunks=40, pace_s=0.25)
    data = tmp_path / "sig"
    assert run_cli(data, "provider", "add", "openai", "--key", "sk-sig-000000000000", "--base-url", fake.base_url, "--local",
                   env=subprocess_env).returncode == 0
    gw = GatewayProcess(data, subprocess_env)
    url = await gw.url()
    key = next(line.split(": ")[1].strip() for line in gw.log.read_text().splitlines() if "first client key" in line)
    lines: list[str] = []
    async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=30) as http:
        async with http.stream("POST", "/v1/chat/completions", json={
                "model": "openai/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]}) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    lines.append(line)
                    if len(lines) == 2:
                        gw.proc.send_signal(signal.SIGTERM)
                    if len(lines) == 4:
                        gw.proc.send_signal(signal.SIGTERM)  # the second signal: stop waiting
    code = await gw.wait(timeout=10)
    assert code == 0
    assert '"error"' in lines[-1]  # ended with the terminal error event, not a silent truncation
    assert len(lines) < 40


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10"])
def test_no_auth_is_refused_with_a_non_loopback_bind(tmp_path: Path, host: str, subprocess_env: dict[str, str]) -> None:
    out = run_cli(tmp_path / "na", "--host", host, "--no-auth", env=subprocess_env)
    assert out.returncode == 2 and "--no-auth" in out.stderr


async def test_client_key_checks(make_gateway: MakeGateway) -> None:
    h = await make_gateway(demo=True)
    body = {"model": "echo", "messages": [{"role": "user", "content": "k"}]}
    async with httpx.AsyncClient(base_url=h.url) as http:
        assert (await http.post("/v1/chat/completions", json=body)).status_code == 401
        for headers in ({"authorization": f"Bearer {h.key}"}, {"x-api-key": h.key}, {"x-goog-api-key": h.key}):
            assert (await http.post("/v1/chat/completions", json=body, headers=headers)).status_code == 200
        assert (await http.post(f"/v1/chat/completions?key={h.key}", json=body)).status_code == 200
        wrong = h.key[:-3] + "abc"
        r = await http.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {wrong}"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        r = await http.post("/v1/messages", json={**body, "max_tokens": 5}, headers={"x-api-key": "nope"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"  # Anthropic shape
        # revoke through the admin API: the key stops working at once
        admin = {"authorization": f"Bearer {h.admin_token}"}
        keys = (await http.get("/api/keys", headers=admin)).json()["keys"]
        r = await http.delete(f"/api/keys/{keys[0]['id']}", headers=admin)
        assert r.status_code == 200
        r = await http.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {h.key}"})
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    await h.http.aclose()


async def test_admin_api_requires_the_admin_token_and_manages_accounts(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    from omniroute_web.routes import ROUTES

    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for route in ROUTES:
            if route.access != "admin":
                continue
            path = route.pattern.replace("{id}", "1")
            r = await http.request(route.method, path)
            assert r.status_code == 401, (route.method, path)
            r = await http.request(route.method, path, headers={"authorization": f"Bearer {gateway.key}"})
            assert r.status_code == 401, (route.method, path)  # a client key is not an admin token
        admin = {"authorization": f"Bearer {gateway.admin_token}"}
        r = await http.post("/api/accounts", headers=admin, json={"provider": "openai", "key": CANARY, "base_url": fake.base_url, "local": True})
        assert r.status_code == 201, r.text
        accounts = (await http.get("/api/accounts", headers=admin)).json()["accounts"]
        assert accounts[0]["provider"] == "openai" and CANARY not in json.dumps(accounts)
        r = await http.post(f"/api/accounts/{accounts[0]['id']}/test", headers=admin)
        assert r.json()["ok"] is True
        r = await http.post("/api/accounts", headers=admin, json={"provider": "openai", "key": "", "name": "x"})
        assert r.status_code == 400 and "needs an API key" in r.json()["error"]["message"]
        await gateway.usage_rows()  # committed (rows are written in batches, off the request path)
        usage = (await http.get("/api/usage?since=1h&by=provider", headers=admin)).json()
        assert usage["rows"][0]["provider"] == "openai"
        settings = (await http.get("/api/settings", headers=admin)).json()
        assert settings["settings"]["host"] == "127.0.0.1"


def test_usage_command_prints_a_summary(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    out = run_cli(tmp_path / "u", "usage", "--by", "model", env=subprocess_env)
    assert out.returncode == 0 and "usage since 24h by model" in out.stdout


def test_settings_precedence(tmp_path: Path) -> None:
    from omniroute import load_settings

    (tmp_path / "config.json").write_text(json.dumps({"port": 1111, "log_level": "warning"}))
    s = load_settings({"data_dir": str(tmp_path)}, env={})
    assert (s.port, s.log_level) == (1111, "warning")
    s = load_settings({"data_dir": str(tmp_path)}, env={"OMNIROUTE_PORT": "2222"})
    assert s.port == 2222
    s = load_settings({"data_dir": str(tmp_path), "port": 3333}, env={"OMNIROUTE_PORT": "2222"})
    assert s.port == 3333
    with pytest.raises(ValueError, match="unknown setting"):
        (tmp_path / "config.json").write_text(json.dumps({"prot": 1}))
        load_settings({"data_dir": str(tmp_path)}, env={})
    s = load_settings({"data_dir": str(tmp_path / "none")}, env={"OMNIROUTE_SECRET_KEY": "hunter2"})
    assert s.redacted()["secret_key"] == "***"


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```sh\n")[1:3]]
    assert readme.startswith("# omniroute\n\n```sh\n")  # the two commands come first
    run, test = blocks
    assert "omniroute" in run and "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_every_setting_is_documented_in_the_readme() -> None:
    from dataclasses import fields

    from omniroute import SETTINGS_DOC, Settings

    readme = (ROOT / "README.md").read_text()
    for f in fields(Settings):
        assert f.name in SETTINGS_DOC, f.name
        assert f"OMNIROUTE_{f.name.upper()}" in readme, f.name


def test_combos_from_the_cli(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    data = tmp_path / "combos"
    assert run_cli(data, "provider", "add", "openai", "--key", "sk-cli-0000000000000", env=subprocess_env).returncode == 0
    out = run_cli(data, "combo", "add", "coding", "openai/gpt-4o-mini", "openai/gpt-4o", "--strategy", "round-robin",
                  env=subprocess_env)
    assert out.returncode == 0, out.stderr
    listed = run_cli(data, "combo", "list", env=subprocess_env).stdout
    assert "coding" in listed and "round-robin" in listed and "openai/gpt-4o-mini -> openai/gpt-4o" in listed
    bad = run_cli(data, "combo", "add", "loop", "loop", env=subprocess_env)
    assert bad.returncode == 2 and "itself" in bad.stderr
    assert run_cli(data, "combo", "add", "outer", "coding", env=subprocess_env).returncode == 0
    busy = run_cli(data, "combo", "remove", "coding", env=subprocess_env)
    assert busy.returncode == 2 and "used by outer" in busy.stderr

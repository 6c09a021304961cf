"""Client API keys (issue 5, item 1) over real sockets: scopes and limits set through the admin API and the
CLI, what `/v1/models` shows each key, edits that apply at once, rotation, expiry, and bad input refused
with a clear 400."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, Harness, MakeGateway
from tests.fakes.fixtures import MakeFake

CHAT = "/v1/chat/completions"


def chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


async def two_providers(h: Harness, make_fake_upstream: MakeFake) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    h.add_account("openai", base_url=fake.base_url)
    h.add_account("deepseek", base_url=fake.base_url)
    await h.reload()


def admin(h: Harness) -> dict[str, str]:
    return {"authorization": f"Bearer {h.admin_token}"}


async def new_key(h: Harness, http: httpx.AsyncClient, **spec: object) -> tuple[int, str]:
    r = await http.post("/api/keys", json={"name": "scoped", **spec}, headers=admin(h))
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), str(r.json()["key"])


def listed(r: httpx.Response) -> set[str]:
    return {m["id"] for m in r.json()["data"]}


async def test_a_scoped_key_sees_and_uses_only_its_models_in_every_client_format(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway()
    await two_providers(h, make_fake_upstream)
    async with h.http, httpx.AsyncClient(base_url=h.url) as http:
        _, key = await new_key(h, http, scopes={"models": ["openai/gpt-4o*"]})
        bearer = {"authorization": f"Bearer {key}"}

        everything = listed(await h.http.get("/v1/models"))  # the unrestricted first key
        mine = listed(await http.get("/v1/models", headers=bearer))
        assert any(m.startswith("ds/") for m in everything)
        assert mine
        assert all(m.startswith("openai/gpt-4o") for m in mine), mine
        anthropic_view = (
            await http.get("/v1/models", headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
        ).json()
        assert {m["id"] for m in anthropic_view["data"]} == mine
        gemini_view = (await http.get("/v1beta/models", headers={"x-goog-api-key": key})).json()
        assert {m["name"].removeprefix("models/") for m in gemini_view["models"]} == mine

        assert (await http.post(CHAT, json=chat("openai/gpt-4o-mini"), headers=bearer)).status_code == 200
        # the bare name lands on the same provider model: allowed under `openai/*`-style scopes
        assert (await http.post(CHAT, json=chat("gpt-4o-mini"), headers=bearer)).status_code == 200
        r = await http.post(CHAT, json=chat("ds/deepseek-chat"), headers=bearer)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "model_not_allowed"
        r = await http.post(
            "/v1/messages",
            json={**chat("ds/deepseek-chat"), "max_tokens": 5},
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        )
        assert r.status_code == 403
        assert r.json()["type"] == "error"
        assert r.json()["error"]["type"] == "permission_error"


async def test_a_provider_scope_refuses_other_providers_with_403_and_hides_them(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway()
    await two_providers(h, make_fake_upstream)
    h.add_combo("both", ["deepseek/deepseek-chat", "openai/gpt-4o-mini"])
    h.add_combo("ds-only", ["deepseek/deepseek-chat"])
    await h.reload()
    async with httpx.AsyncClient(base_url=h.url) as http:
        _, key = await new_key(h, http, scopes={"providers": ["openai"]})
        bearer = {"authorization": f"Bearer {key}"}
        mine = listed(await http.get("/v1/models", headers=bearer))
        assert "both" in mine
        assert "ds-only" not in mine
        assert not any(m.startswith("ds/") for m in mine)
        r = await http.post(CHAT, json=chat("deepseek/deepseek-chat"), headers=bearer)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "provider_not_allowed"
        # a combo falls through to the provider the key may use
        r = await http.post(CHAT, json=chat("both"), headers=bearer)
        assert r.status_code == 200
        assert r.headers["x-omniroute-served-by"].startswith("openai/")


async def test_edits_apply_at_once_and_the_list_shows_limits_budgets_and_usage(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway()
    await two_providers(h, make_fake_upstream)
    async with httpx.AsyncClient(base_url=h.url) as http:
        key_id, key = await new_key(
            h, http, limits={"rpd": 100, "budget_usd_day": 2.5}, expires_at=time.time() + 86400
        )
        bearer = {"authorization": f"Bearer {key}"}
        for _ in range(2):
            assert (await http.post(CHAT, json=chat("openai/gpt-4o-mini"), headers=bearer)).status_code == 200
        await h.usage_rows()
        row = next(
            k for k in (await http.get("/api/keys", headers=admin(h))).json()["keys"] if k["id"] == key_id
        )
        assert row["limits"] == {"rpd": 100, "budget_usd_day": 2.5}
        assert row["requests"] == 2
        assert row["input_tokens"] > 0
        assert row["cost_usd"] > 0
        assert row["last_used_at"]
        assert not row["expired"]
        assert row["expires_at"] > time.time()
        budgets = (await http.get("/api/budgets", headers=admin(h))).json()["budgets"]
        assert any(
            b["scope"] == "key" and str(b["id"]) == str(key_id) and b["limit_usd"] == 2.5 for b in budgets
        )

        r = await http.patch(
            f"/api/keys/{key_id}",
            json={"limits": {"rpm": 3}, "scopes": {"models": ["ds/*"]}, "name": "renamed"},
            headers=admin(h),
        )
        assert r.status_code == 200, r.text
        assert r.json()["key"]["limits"] == {"rpm": 3}
        assert r.json()["key"]["name"] == "renamed"
        budgets = (await http.get("/api/budgets", headers=admin(h))).json()["budgets"]
        assert not any(
            b["scope"] == "key" and str(b["id"]) == str(key_id) for b in budgets
        )  # limits replaced
        r = await http.post(CHAT, json=chat("openai/gpt-4o-mini"), headers=bearer)
        assert r.status_code == 403  # the new scope, at once
        # the minute's window counts the two requests made before the edit
        assert (await http.post(CHAT, json=chat("ds/deepseek-chat"), headers=bearer)).status_code == 200
        r = await http.post(CHAT, json=chat("ds/deepseek-chat"), headers=bearer)
        assert r.status_code == 429
        assert "3 requests per minute" in r.json()["error"]["message"]


async def test_rotation_gives_a_new_secret_and_the_old_one_stops_working(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway()
    await two_providers(h, make_fake_upstream)
    async with httpx.AsyncClient(base_url=h.url) as http:
        key_id, old = await new_key(h, http, scopes={"models": ["openai/*"]})
        assert (
            await http.post(CHAT, json=chat("openai/gpt-4o-mini"), headers={"authorization": f"Bearer {old}"})
        ).status_code == 200
        r = await http.post(f"/api/keys/{key_id}/rotate", headers=admin(h))
        assert r.status_code == 200
        assert r.json()["id"] == key_id
        new = r.json()["key"]
        assert new != old
        assert new.startswith("omr_")
        r = await http.post(CHAT, json=chat("openai/gpt-4o-mini"), headers={"authorization": f"Bearer {old}"})
        assert r.status_code == 401
        r = await http.post(CHAT, json=chat("openai/gpt-4o-mini"), headers={"authorization": f"Bearer {new}"})
        assert r.status_code == 200
        await h.usage_rows()
        row = next(
            k for k in (await http.get("/api/keys", headers=admin(h))).json()["keys"] if k["id"] == key_id
        )
        assert row["scopes"] == {"models": ["openai/*"]}
        assert row["requests"] == 2
        assert row["prefix"] == f"omr_{new.split('_')[1]}_…"
        # a revoked key can be neither rotated nor edited
        assert (await http.delete(f"/api/keys/{key_id}", headers=admin(h))).status_code == 200
        assert (await http.post(f"/api/keys/{key_id}/rotate", headers=admin(h))).status_code == 404
        assert (
            await http.patch(f"/api/keys/{key_id}", json={"name": "x"}, headers=admin(h))
        ).status_code == 404


async def test_an_expired_key_is_refused_in_the_clients_own_format(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway()
    await two_providers(h, make_fake_upstream)
    async with httpx.AsyncClient(base_url=h.url) as http:
        key_id, key = await new_key(h, http, expires_at=time.time() + 3600)
        assert (
            await http.post(CHAT, json=chat("openai/gpt-4o-mini"), headers={"authorization": f"Bearer {key}"})
        ).status_code == 200
        # an hour later (the database is the one place that says when a key expires)
        h.gw.store.write(
            lambda db: db.execute(
                "UPDATE client_keys SET expires_at = ? WHERE id = ?", (time.time() - 1, key_id)
            )
        )
        await h.reload()
        r = await http.post(CHAT, json=chat("openai/gpt-4o-mini"), headers={"authorization": f"Bearer {key}"})
        assert r.status_code == 401
        assert "expired" in r.json()["error"]["message"]
        r = await http.post(
            "/v1beta/models/gemini-2.5-flash:generateContent",
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            headers={"x-goog-api-key": key},
        )
        assert r.status_code == 401
        assert r.json()["error"]["status"] == "UNAUTHENTICATED"
        row = next(
            k for k in (await http.get("/api/keys", headers=admin(h))).json()["keys"] if k["id"] == key_id
        )
        assert row["expired"] is True


async def test_bad_key_settings_get_a_clear_400_and_change_nothing(gateway: Harness) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=admin(gateway)) as http:
        before = (await http.get("/api/keys")).json()["keys"]
        cases: list[tuple[dict[str, object], str]] = [
            ({"limits": {"rpm": -1}}, "limits.rpm"),
            ({"limits": {"rpm": 1.5}}, "whole number"),
            ({"limits": {"tokens_per_year": 5}}, "unknown limit"),
            ({"scopes": {"models": "x" * 300}}, "scopes.models"),
            ({"scopes": {"teams": ["a"]}}, "unknown scope"),
            ({"scopes": ["openai/*"]}, "scopes must be an object"),
            ({"expires_at": time.time() - 10}, "in the past"),
            ({"expires_at": "tomorrow"}, "expires_at"),
        ]
        for spec, words in cases:
            r = await http.post("/api/keys", json={"name": "bad", **spec})
            assert r.status_code == 400, (spec, r.text)
            assert words in r.json()["error"]["message"], (spec, r.text)
        r = await http.patch(f"/api/keys/{before[0]['id']}", json={"secret": "x"})
        assert r.status_code == 400
        r = await http.patch("/api/keys/999", json={"name": "x"})
        assert r.status_code == 404
        assert (await http.get("/api/keys")).json()["keys"] == before


async def test_hidden_providers_leave_models_but_keep_serving(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway(hidden_providers="deepseek")
    await two_providers(h, make_fake_upstream)
    async with h.http:
        models = listed(await h.http.get("/v1/models"))
        assert models
        assert not any(m.startswith("ds/") for m in models)
        assert (await h.http.post(CHAT, json=chat("ds/deepseek-chat"))).status_code == 200


def run_cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omniroute", "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_the_cli_creates_updates_rotates_and_lists_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = run_cli(
        data,
        "key",
        "create",
        "--name",
        "ci",
        "--models",
        "openai/*,fast",
        "--rpm",
        "30",
        "--budget-day",
        "1.5",
        "--expires-days",
        "7",
    )
    assert out.returncode == 0, out.stderr
    key = out.stdout.split(": ", 1)[1].split()[0]
    key_id = out.stdout.split()[1]

    from omniroute import Store, load_settings
    from omniroute_providers import manage

    def read() -> dict[str, object]:
        store = Store(str(load_settings({"data_dir": str(data)}, env={}).data_path) + "/omniroute.sqlite")
        try:
            return next(k for k in store.read(manage.list_keys) if str(k["id"]) == key_id)
        finally:
            store.close()

    row = read()
    assert row["scopes"] == {"models": ["openai/*", "fast"]}
    assert row["limits"] == {"rpm": 30, "budget_usd_day": 1.5}
    assert 6 * 86400 < float(row["expires_at"]) - time.time() <= 7 * 86400  # type: ignore[arg-type]

    assert run_cli(data, "key", "update", key_id, "--concurrent", "2", "--no-expiry").returncode == 0
    row = read()
    assert row["limits"] == {"concurrent": 2}
    assert row["expires_at"] is None
    assert row["scopes"] == {"models": ["openai/*", "fast"]}  # not given: kept

    out = run_cli(data, "key", "rotate", key_id)
    assert out.returncode == 0
    assert key not in out.stdout
    assert "omr_" in out.stdout
    assert run_cli(data, "key", "update", key_id, "--rpm", "-3").returncode == 2
    listing = run_cli(data, "key", "list").stdout
    assert "ci" in listing
    assert key not in listing

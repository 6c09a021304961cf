"""The endpoints only the dashboard uses: saved settings, custom model ids, usage over time and latency,
the request and audit logs, the live console, the playground's upstream view, backups, export and import."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from omniroute import console_buffer
from omniroute_providers import manage
from omniroute_web import dashboard_api
from tests.conftest import Harness, MakeGateway
from tests.fakes.fixtures import MakeFake

CANARY = "sk-canary-dashboard-0123456789"


def admin(h: Harness) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=h.url, headers={"authorization": f"Bearer {h.admin_token}"}, timeout=30)


async def chat(h: Harness, model: str, key: str | None = None, text: str = "hi") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    headers = {"authorization": f"Bearer {key or h.key}"}
    async with httpx.AsyncClient(base_url=h.url, timeout=30) as http:
        return await http.post("/v1/chat/completions", json=body, headers=headers)


async def test_saved_settings_are_validated_applied_at_start_and_can_be_reset(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    h = await make_gateway(data)
    async with admin(h) as http:
        listed = {s["name"]: s for s in (await http.get("/api/dashboard/settings")).json()["settings"]}
        assert "log_level" in listed
        assert "system_prompt" in listed
        assert not {"host", "port", "data_dir", "secret_key", "no_auth"} & set(listed)  # where/how it starts
        assert listed["system_prompt"]["applied"] is True  # the request policy: the pipeline applies it
        for bad in (
            {"log_level": "loud"},
            {"request_deadline_s": "soon"},
            {"log_payloads": "yes"},
            {"max_connections": -1},
            {"host": "0.0.0.0"},
            {"nope": 1},
        ):
            r = await http.put("/api/dashboard/settings", json={"values": bad})
            assert r.status_code == 400, bad
        r = await http.put(
            "/api/dashboard/settings",
            json={"values": {"log_level": "warning", "request_deadline_s": 42, "system_prompt": "Be brief."}},
        )
        assert r.status_code == 200
        assert logging.getLogger("omniroute").level == logging.WARNING  # log level applies at once
        assert h.gw.settings.request_deadline_s == 42.0
    await h.http.aclose()
    logging.getLogger("omniroute").setLevel(logging.INFO)

    again = await make_gateway(data)  # a restart on the same data dir keeps what was saved
    assert again.gw.settings.request_deadline_s == 42.0
    again.admin_token = manage.rotate_admin_token(again.gw.store)  # the first one was shown once, above
    await again.reload()
    async with admin(again) as http:
        listed = {s["name"]: s for s in (await http.get("/api/dashboard/settings")).json()["settings"]}
        assert listed["request_deadline_s"]["saved"] is True
        assert listed["system_prompt"]["value"] == "Be brief."
        r = await http.put("/api/dashboard/settings", json={"reset": ["request_deadline_s", "log_level"]})
        after = {s["name"]: s for s in r.json()["settings"]}
        assert after["request_deadline_s"]["saved"] is False
    await again.http.aclose()


def test_a_saved_value_that_no_longer_validates_is_skipped(tmp_path: Path) -> None:
    from omniroute import Store, kv_set, load_settings

    store = Store(str(tmp_path / "omniroute.sqlite"))
    store.write(
        lambda db: kv_set(db, "dashboard_settings", json.dumps({"log_level": "loud", "max_body_bytes": 1000}))
    )
    store.close()
    settings = load_settings({"data_dir": str(tmp_path)}, env={})
    assert dashboard_api.apply_saved_settings(settings) == ["max_body_bytes"]
    assert settings.log_level == "info"


async def test_custom_model_ids_are_kept_per_provider(gateway: Harness) -> None:
    async with admin(gateway) as http:
        r = await http.put(
            "/api/dashboard/custom-models", json={"provider": "openai", "models": ["my-ft:1", "x"]}
        )
        assert r.json()["models"] == {"openai": ["my-ft:1", "x"]}
        r = await http.put(
            "/api/dashboard/custom-models", json={"provider": "openai", "models": ["has space"]}
        )
        assert r.status_code == 400
        r = await http.put("/api/dashboard/custom-models", json={"provider": "nope", "models": []})
        assert r.status_code == 400
        assert (await http.get("/api/dashboard/custom-models")).json()["models"] == {
            "openai": ["my-ft:1", "x"]
        }


async def test_usage_series_latency_and_request_log_follow_real_requests(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    h = await make_gateway(demo=True)
    h.add_account("openai", base_url=fake.base_url, key=CANARY)
    await h.reload()
    for _ in range(3):
        assert (await chat(h, "echo")).status_code == 200
    assert (await chat(h, "openai/gpt-4o-mini")).status_code == 200
    assert (await chat(h, "nowhere/model")).status_code == 404
    await h.usage_rows()
    async with admin(h) as http:
        series = (await http.get("/api/usage/series?since=1h&by=provider")).json()
        assert series["bucket_s"] == 60
        assert len(series["buckets"]) >= 60
        totals = {s["name"]: sum(s["requests"]) for s in series["series"]}
        assert totals == {"echo": 3, "openai": 1, "-": 1}
        by_key = (await http.get("/api/usage/series?since=1h&by=key")).json()
        assert sum(sum(s["requests"]) for s in by_key["series"]) == 5
        assert (await http.get("/api/usage/series?by=day")).status_code == 400

        latency = {
            p["provider"]: p for p in (await http.get("/api/usage/latency?since=1h")).json()["providers"]
        }
        assert latency["echo"]["requests"] == 3
        assert latency["echo"]["success_rate"] == 1.0
        assert latency["openai"]["p50_ms"] is not None
        assert latency["openai"]["p99_ms"] >= latency["openai"]["p50_ms"]

        log = (await http.get("/api/logs/requests")).json()
        assert [r["model_requested"] for r in log["requests"]][:2] == ["nowhere/model", "openai/gpt-4o-mini"]
        assert CANARY not in json.dumps(log)
        only = lambda q: http.get("/api/logs/requests" + q)  # noqa: E731
        assert {r["provider"] for r in (await only("?provider=echo")).json()["requests"]} == {"echo"}
        assert [r["status"] for r in (await only("?status=error")).json()["requests"]] == [404]
        assert len((await only("?status=ok")).json()["requests"]) == 4
        assert len((await only("?model=gpt-4o")).json()["requests"]) == 1
        assert len((await only("?model=%25")).json()["requests"]) == 0  # a LIKE wildcard is a literal here
        assert len((await only("?limit=2")).json()["requests"]) == 2
        first_page = (await only("?limit=2")).json()["requests"]
        rest = (await only(f"?before={first_page[-1]['id']}")).json()["requests"]
        assert len(rest) == 3
        keys = (await http.get("/api/keys")).json()["keys"]
        assert len((await only(f"?key={keys[0]['id']}")).json()["requests"]) == 5
        assert (await only("?key=abc")).status_code == 400

        openai_row = next(r for r in log["requests"] if r["provider"] == "openai")
        detail = (await http.get(f"/api/logs/requests/{openai_row['id']}")).json()["request"]
        assert detail["attempts"][0]["provider"] == "openai"
        assert detail["attempts"][0]["status"] == 200
        assert (await http.get("/api/logs/requests/999999")).status_code == 404
    await h.http.aclose()


async def test_old_log_rows_are_purged_past_the_retention(gateway: Harness) -> None:
    old = time.time() - 40 * 86400

    def insert(db: Any) -> None:
        db.execute(
            "INSERT INTO usage (ts, request_id, endpoint, client_format, model_requested, stream, status, "
            "outcome, latency_ms) VALUES (?, 'old', 'chat', 'openai-chat', 'm', 0, 200, 'ok', 1)",
            (old,),
        )

    gateway.gw.store.write(insert)
    async with admin(gateway) as http:
        assert (await http.post("/api/logs/purge", json={"older_than_days": "x"})).status_code == 400
        r = await http.post("/api/logs/purge", json={})  # default retention: 30 days
        assert r.json()["deleted"] >= 1
        assert not (await http.get("/api/logs/requests")).json()["requests"]


async def test_audit_log_pages_backwards(gateway: Harness) -> None:
    async with admin(gateway) as http:
        for i in range(3):
            await http.post("/api/keys", json={"name": f"k{i}"})
        gateway.gw.store.flush()
        entries = (await http.get("/api/logs/audit?limit=2")).json()["entries"]
        assert [e["action"] for e in entries] == ["POST /api/keys", "POST /api/keys"]
        older = (await http.get(f"/api/logs/audit?before={entries[-1]['id']}")).json()["entries"]
        assert len(older) == 1


async def test_live_console_streams_the_backlog_then_new_lines(gateway: Harness) -> None:
    logger = logging.getLogger("omniroute")
    logger.addHandler(console_buffer)
    try:
        logging.getLogger("omniroute.test").warning("before the stream opened")
        async with admin(gateway) as http, http.stream("GET", "/api/logs/console") as r:
            assert r.headers["content-type"] == "text/event-stream"
            seen: list[dict[str, Any]] = []
            with trio.fail_after(10):
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        seen.append(json.loads(line[6:]))
                        if seen[-1]["message"] == "before the stream opened":
                            logging.getLogger("omniroute.test").error("while it is open")
                        if seen[-1]["message"] == "while it is open":
                            break
            assert seen[-1]["level"] == "ERROR"
            assert seen[-1]["logger"] == "omniroute.test"
    finally:
        logger.removeHandler(console_buffer)
    with trio.fail_after(5):  # the stream's listener leaves with it (the server cancels the handler)
        while console_buffer.listeners:  # noqa: ASYNC110 - the list belongs to the kernel: no event to wait on
            await trio.sleep(0.01)


async def test_playground_shows_the_body_the_upstream_receives(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    h = await make_gateway()
    h.add_account("anthropic", base_url=fake.base_url)
    h.add_account("openai", base_url=fake.base_url)
    await h.reload()
    body = {
        "model": "anthropic/claude-sonnet-4-6",
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
    }
    async with admin(h) as http:
        r = (
            await http.post("/api/playground/translate", json={"format": "openai-chat", "body": body})
        ).json()
        assert r["passthrough"] is False
        assert r["upstream_format"] == "anthropic"
        assert r["url"].endswith("/v1/messages")
        assert r["body"]["system"]
        assert r["body"]["messages"][0]["role"] == "user"
        assert r["body"]["max_tokens"]
        same = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Q"}]}
        r = (
            await http.post("/api/playground/translate", json={"format": "openai-chat", "body": same})
        ).json()
        assert r["passthrough"] is True
        assert r["body"]["model"] == "gpt-4o-mini"
        gemini = {"contents": [{"role": "user", "parts": [{"text": "Q"}]}]}
        r = await http.post(
            "/api/playground/translate",
            json={"format": "gemini", "model": "openai/gpt-4o-mini", "body": gemini},
        )
        assert r.json()["body"]["messages"] == [{"role": "user", "content": "Q"}]
        bad = await http.post("/api/playground/translate", json={"format": "smoke", "body": same})
        assert bad.status_code == 400
        unknown = await http.post(
            "/api/playground/translate", json={"format": "openai-chat", "body": {"model": "zz"}}
        )
        assert unknown.status_code == 404
    assert not fake.requests  # translating sends nothing upstream
    await h.http.aclose()


async def test_backups_are_consistent_sqlite_files_without_the_sealing_key(gateway: Harness) -> None:
    gateway.add_account("openai", key=CANARY)
    async with admin(gateway) as http:
        made = await http.post("/api/backups", json={})
        assert made.status_code == 201
        name = made.json()["name"]
        assert [b["name"] for b in (await http.get("/api/backups")).json()["backups"]] == [name]
        data = (await http.get(f"/api/backups/{name}")).content
        assert data.startswith(b"SQLite format 3\0")
        assert CANARY.encode() not in data  # provider keys stay sealed; secret.key is not in the backup
        path = Path(gateway.gw.settings.data_path) / "backups" / name
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT COUNT(*) FROM accounts").fetchone() == (1,)
        for evil in ("..%2fomniroute.sqlite", "omniroute.sqlite", "x.sqlite"):
            assert (await http.get(f"/api/backups/{evil}")).status_code == 404
        assert (await http.delete(f"/api/backups/{name}")).status_code == 200
        assert not (await http.get("/api/backups")).json()["backups"]


async def test_a_restore_is_staged_then_applied_at_the_next_start_keeping_the_replaced_database(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    data = tmp_path / "restore"
    first = await make_gateway(data_dir=data)
    first.add_account("openai", name="before-backup")
    async with admin(first) as http:
        name = (await http.post("/api/backups", json={})).json()["name"]
        first.add_account("openai", name="after-backup")
        # a damaged file is refused and nothing is staged
        broken = data / "backups" / "omniroute-20200101-000000.sqlite"
        broken.write_bytes(b"SQLite format 3\0" + b"\xff" * 4000)
        r = await http.post(f"/api/backups/{broken.name}/restore")
        assert r.status_code == 400 and not (await http.get("/api/backups")).json()["restore_pending"]
        assert (await http.post("/api/backups/nope.sqlite/restore")).status_code == 404
        r = await http.post(f"/api/backups/{name}/restore")
        assert r.status_code == 202 and r.json()["pending"] == name
        assert (await http.get("/api/backups")).json()["restore_pending"] is True
        # nothing changes until the restart
        assert [a["name"] for a in (await http.get("/api/accounts")).json()["accounts"]] == [
            "before-backup",
            "after-backup",
        ]
    await first.http.aclose()
    first.gw.server.shutdown()
    with trio.fail_after(10):
        while first.gw.server.connections or first.gw.server.active_requests:
            await trio.sleep(0.05)
    first.gw.store.close()

    second = await make_gateway(data_dir=data)
    assert second.gw.first_run.client_key is None  # the restored database has its keys
    second.admin_token = first.admin_token
    async with admin(second) as http:
        assert [a["name"] for a in (await http.get("/api/accounts")).json()["accounts"]] == ["before-backup"]
        listing = (await http.get("/api/backups")).json()
        assert listing["restore_pending"] is False and listing["restored"]
        kept = data / "backups" / listing["restored"]
        with sqlite3.connect(kept) as db:  # the replaced database, its last writes included
            names = [r[0] for r in db.execute("SELECT name FROM accounts ORDER BY id")]
        assert names == ["before-backup", "after-backup"]
        assert oct(kept.stat().st_mode & 0o777) == "0o600"
    await second.http.aclose()
    async with httpx.AsyncClient(base_url=second.url, headers={"authorization": f"Bearer {first.key}"}) as http:
        assert (await http.get("/v1/models")).status_code == 200  # the first run's key still works


async def test_export_has_no_secrets_unless_asked_and_import_adds_without_overwriting(
    make_gateway: MakeGateway,
) -> None:
    a = await make_gateway()
    a.add_account("openai", key=CANARY, name="main")
    a.add_custom("mybox", "http://127.0.0.1:9/v1")
    async with admin(a) as http:
        await http.put("/api/dashboard/custom-models", json={"provider": "openai", "models": ["ft-1"]})
        plain = (await http.post("/api/export", json={})).json()
        assert CANARY not in json.dumps(plain)
        assert plain["secrets_included"] is False
        assert plain["accounts"][0]["has_key"] is True
        assert "key" not in plain["accounts"][0]
        loud = await http.post("/api/export", json={"secrets": True})
        assert "WITH-SECRETS" in loud.headers["content-disposition"]
        exported = loud.json()
        assert next(iter(exported)) == "warning"
        assert "PLAINTEXT" in exported["warning"]
        assert exported["accounts"][0]["key"] == CANARY

    b = await make_gateway()
    async with admin(b) as http:
        r = (await http.post("/api/import", json=plain)).json()
        assert r["added"]["accounts"] == 1
        assert r["added"]["custom_providers"] == 1
        account = (await http.get("/api/accounts")).json()["accounts"][0]
        assert account["enabled"] is False  # exported without its key: it cannot work until one is set
        r = (await http.post("/api/import", json=plain)).json()
        assert r["added"]["accounts"] == 0
        assert r["skipped"]["accounts"] == ["openai/main"]
        assert (await http.get("/api/dashboard/custom-models")).json()["models"] == {"openai": ["ft-1"]}
        assert (await http.post("/api/import", json={"hello": 1})).status_code == 400
    # client keys travel as salted hashes: a's first key now works on b
    await b.reload()
    assert (await chat(b, "nowhere/x", key=a.key)).status_code == 404  # authenticated, then no route

    c = await make_gateway()
    async with admin(c) as http:
        await http.post("/api/import", json=exported)
        account = (await http.get("/api/accounts")).json()["accounts"][0]
        assert account["enabled"] is True
        assert account["key"].endswith(CANARY[-4:])
    for h in (a, b, c):
        await h.http.aclose()


@pytest.mark.parametrize(
    ("since", "expected"),
    [("30m", 1800.0), ("24h", 86400.0), ("7d", 7 * 86400.0), ("1.5h", 5400.0)],
)
def test_since_arguments(since: str, expected: float) -> None:
    assert dashboard_api.since_arg(since, now=1_000_000.0) == 1_000_000.0 - expected


def test_percentiles_and_buckets() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert dashboard_api.percentile(values, 0.5) == 50.0
    assert dashboard_api.percentile(values, 0.99) == 99.0
    assert dashboard_api.percentile([], 0.5) is None
    assert dashboard_api.bucket_for(3600) == 60
    assert dashboard_api.bucket_for(86400) == 1800
    assert dashboard_api.bucket_for(30 * 86400) == 86400


async def test_import_refuses_rows_the_gateway_could_not_load_and_writes_nothing(gateway: Harness) -> None:
    base: dict[str, Any] = {
        "omniroute_export": 1,
        "accounts": [{"provider": "openai", "name": "n", "key": "sk-x"}],
    }
    bad_exports = [
        {**base, "custom_providers": [{"id": "box", "format": "smoke-signals", "base_url": "http://h/v1"}]},
        {**base, "tables": {"combos": [{"name": "c", "strategy": "priority", "targets": "not json"}]}},
        {
            **base,
            "tables": {"combos": [{"name": "c", "strategy": "telepathy", "targets": '[{"model": "x"}]'}]},
        },
        {**base, "tables": {"price_overrides": [{"provider": "openai", "model": "m", "price": "[]"}]}},
    ]
    async with admin(gateway) as http:
        for export in bad_exports:
            r = await http.post("/api/import", json=export)
            assert r.status_code == 400, export
        assert (await http.get("/api/accounts")).json()["accounts"] == []
        good = {
            **base,
            "tables": {"combos": [{"name": "c", "strategy": "priority", "targets": '[{"model": "x"}]'}]},
        }
        assert (await http.post("/api/import", json=good)).status_code == 200
        assert [c["name"] for c in (await http.get("/api/combos")).json()["combos"]] == ["c"]

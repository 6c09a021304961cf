"""Never stop coding (issue 4), over real sockets: cooldowns from provider hints, quotas, breakers with a single
probe, budgets that push a combo to its next tier, combos from every client format, state across restarts.

Time-dependent tests use trio's MockClock with a small autojump threshold: the clock jumps only when every
task has been idle for 20 ms of real time, so loopback I/O completes before any timer is considered."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
import trio.testing

from tests.conftest import Harness, MakeGateway
from tests.fakes.fixtures import MakeFake
from tests.fakes.reply import Reply, Usage

CHAT = "/v1/chat/completions"


def body(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.fixture
def clock(mock_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    mock_clock.autojump_threshold = 0.02
    return mock_clock


async def two_accounts(h: Harness, fake_url: str) -> tuple[int, int]:
    a = h.add_account("openai", base_url=fake_url, key="sk-account-a-0000", priority=0)
    b = h.add_account("openai", base_url=fake_url, key="sk-account-b-0000", priority=1)
    await h.reload()
    return a, b


async def test_429_with_retry_after_rests_the_account_for_exactly_that_long(
    clock: trio.testing.MockClock, make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway()
    fake = await make_fake_upstream(prefix="/v1")
    fake.per_key["sk-account-a-0000"] = [Reply(status=429, error="Rate limit reached", headers={"retry-after": "20"})]
    await two_accounts(h, fake.base_url)
    t0 = trio.current_time()
    async with h.http:
        for _ in range(19):  # one request a second for 19 s: all on B, A left alone
            r = await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))
            assert r.status_code == 200
            await trio.sleep(1)
        a_times = [q.time for q in fake.requests if q.credential == "sk-account-a-0000"]
        assert len(a_times) == 1  # just the one that answered 429
        assert sum(q.credential == "sk-account-b-0000" for q in fake.requests) == 19
        await trio.sleep(max(0.0, t0 + 21 - trio.current_time()))
        r = await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))  # the cooldown is over: A again
        assert r.status_code == 200 and "account 1" in r.headers["x-omniroute-served-by"]
    a_times = [q.time for q in fake.requests if q.credential == "sk-account-a-0000"]
    assert len(a_times) == 2 and a_times[1] - a_times[0] >= 20


async def test_429_without_a_hint_backs_off_exponentially(
    clock: trio.testing.MockClock, make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway(wait_for_cooldown_s=0)
    fake = await make_fake_upstream(prefix="/v1")
    fake.per_key["sk-account-a-0000"] = Reply(status=429, error="Too many requests")
    await two_accounts(h, fake.base_url)
    async with h.http:
        for _ in range(40):  # 40 s of traffic
            await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))
            await trio.sleep(1)
    a_times = [q.time for q in fake.requests if q.credential == "sk-account-a-0000"]
    gaps = [round(b - a) for a, b in zip(a_times, a_times[1:], strict=False)]
    assert gaps[:4] == [2, 4, 8, 16]  # each consecutive 429 doubles the rest


async def test_spent_quota_skips_the_account_until_its_window_resets(
    clock: trio.testing.MockClock, make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway()
    fake = await make_fake_upstream(prefix="/v1")
    a, _ = await two_accounts(h, fake.base_url)
    h.set_limits(a, {"quota": {"5h": {"requests": 2}}})
    await h.reload()
    async with h.http:
        served = []
        for _ in range(5):
            r = await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))
            served.append(r.headers["x-omniroute-served-by"].split("account ")[1].rstrip(")"))
        assert served == [str(a), str(a), "2", "2", "2"]
        quota = await h.http.get("/api/quotas", headers={"authorization": f"Bearer {h.admin_token}"})
        window = next(w for acc in quota.json()["accounts"] if acc["id"] == a for w in acc["windows"] if w["window"] == "5h")
        assert window["used_requests"] == 2 and window["limit_requests"] == 2
        clock.jump(5 * 3600 + 1)  # the background tickers would each take a real moment per mock second
        await trio.sleep(0.1)
        r = await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))
        assert f"account {a}" in r.headers["x-omniroute-served-by"]


async def test_insufficient_quota_is_not_retried_and_moves_on(make_gateway: MakeGateway, make_fake_upstream: MakeFake) -> None:
    h = await make_gateway()
    fake = await make_fake_upstream(prefix="/v1")
    fake.per_key["sk-account-a-0000"] = Reply(status=429, error="You exceeded your current quota",
                                              error_code="insufficient_quota", error_type="insufficient_quota")
    await two_accounts(h, fake.base_url)
    async with h.http:
        for _ in range(3):
            assert (await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))).status_code == 200
    assert [q.credential for q in fake.requests].count("sk-account-a-0000") == 1


async def test_breaker_opens_then_lets_exactly_one_probe_through(
    clock: trio.testing.MockClock, make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway(retries_per_account=0, breaker_failures=3, breaker_open_s=10, wait_for_cooldown_s=30)
    fake = await make_fake_upstream(prefix="/v1")
    h.add_account("openai", base_url=fake.base_url)
    await h.reload()
    fake.default = Reply(status=500, error="upstream exploded")
    async with h.http:
        for _ in range(3):
            assert (await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))).status_code == 502
        assert len(fake.requests) == 3
        health = (await h.http.get("/api/health", headers={"authorization": f"Bearer {h.admin_token}"})).json()
        assert health["providers"][0]["breaker"]["state"] == "open"
        await trio.sleep(10.5)  # open period over: the next request is the probe
        fake.default = Reply(first_byte_delay_s=2.0)  # healthy again, but slow to answer

        results: list[int] = []

        async def one() -> None:
            r = await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))
            results.append(r.status_code)

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(one)
    assert results == [200] * 50
    arrivals = sorted(q.time for q in fake.requests[3:])
    assert len(arrivals) == 50
    assert arrivals[1] - arrivals[0] >= 2.0  # the 49 others waited for the probe's answer
    assert arrivals[0] - start < 0.5


async def test_budget_pushes_a_combo_to_its_next_tier(make_gateway: MakeGateway, make_fake_upstream: MakeFake) -> None:
    h = await make_gateway()
    paid = await make_fake_upstream(prefix="/v1")
    paid.default = Reply(usage=Usage(input=100_000, output=100_000))  # enough to matter at gpt-4o-mini prices
    free = await make_fake_upstream(prefix="/v1")
    h.add_account("openai", base_url=paid.base_url)
    h.add_custom("freebie", free.base_url)
    h.add_account("freebie", base_url=free.base_url)
    h.add_combo("thrifty", ["openai/gpt-4o-mini", "freebie/local-model"])
    h.set_budget("provider", "openai", "day", 0.05)
    await h.reload()
    async with h.http:
        served = []
        for _ in range(4):
            r = await h.http.post(CHAT, json=body("thrifty"))
            assert r.status_code == 200
            served.append(r.headers["x-omniroute-served-by"].split("/")[0])
        budgets = (await h.http.get("/api/budgets", headers={"authorization": f"Bearer {h.admin_token}"})).json()
    spent = budgets["budgets"][0]["spent_usd"]
    assert served[0] == "openai" and served[-1] == "freebie"
    assert spent >= 0.05
    per_request = spent / served.count("openai")
    assert served.count("openai") == -(-0.05 // per_request)  # exactly until the limit was reached


async def test_key_limits_and_budget_are_refused_in_the_client_format(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    from omniroute_providers import manage

    h = await make_gateway()
    fake = await make_fake_upstream(prefix="/v1")
    h.add_account("openai", base_url=fake.base_url)
    key, key_id = manage.create_key(h.gw.store, "limited", limits={"rpm": 2},
                                    scopes={"models": ["openai/gpt-4o-mini"]})
    await h.reload()
    async with httpx.AsyncClient(base_url=h.url, headers={"authorization": f"Bearer {key}"}) as http:
        assert (await http.post(CHAT, json=body("openai/gpt-4o-mini"))).status_code == 200
        r = await http.post(CHAT, json=body("openai/gpt-4o"))  # not an allowed pattern
        assert r.status_code == 403 and "may not use model" in r.json()["error"]["message"]
        assert (await http.post(CHAT, json=body("openai/gpt-4o-mini"))).status_code == 200
        r = await http.post(CHAT, json=body("openai/gpt-4o-mini"))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        r = await http.post("/v1/messages", json={**body("openai/gpt-4o-mini"), "max_tokens": 5},
                            headers={"x-api-key": key})
        assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    h.set_budget("key", str(key_id), "day", 0.0)
    manage.update_account(h.gw.store, h.gw.sealer, 1, {})
    await h.reload()
    h.gw.balancer.budgets.record(key_id, "openai", 0.001)
    async with httpx.AsyncClient(base_url=h.url, headers={"authorization": f"Bearer {h.key}"}) as other:
        assert (await other.post(CHAT, json=body("openai/gpt-4o-mini"))).status_code == 200  # other keys unaffected
    async with httpx.AsyncClient(base_url=h.url, headers={"authorization": f"Bearer {key}"}) as http:
        await trio.sleep(0)
        r = await http.post(CHAT, json=body("openai/gpt-4o-mini"))
        assert r.status_code in (402, 429)
    await h.http.aclose()


async def test_cooldowns_survive_a_restart(make_gateway: MakeGateway, make_fake_upstream: MakeFake, tmp_path: object) -> None:
    from pathlib import Path

    data = Path(str(tmp_path)) / "restart"
    fake = await make_fake_upstream(prefix="/v1")
    fake.per_key["sk-account-a-0000"] = Reply(status=429, error="slow down", headers={"retry-after": "600"})
    first = await make_gateway(data_dir=data)
    await two_accounts(first, fake.base_url)
    async with first.http:
        assert (await first.http.post(CHAT, json=body("openai/gpt-4o-mini"))).status_code == 200
    first.gw.balancer.persist()
    first.gw.store.flush()
    first.gw.server.shutdown()
    await trio.sleep(0.5)
    second = await make_gateway(data_dir=data)
    async with httpx.AsyncClient(base_url=second.url, headers={"authorization": f"Bearer {first.key}"}) as http:
        for _ in range(3):
            r = await http.post(CHAT, json=body("openai/gpt-4o-mini"))
            assert "account 2" in r.headers["x-omniroute-served-by"]
    assert [q.credential for q in fake.requests].count("sk-account-a-0000") == 1
    await second.http.aclose()


async def test_all_cooling_down_waits_for_the_soonest_instead_of_failing(
    clock: trio.testing.MockClock, make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway()
    fake = await make_fake_upstream(prefix="/v1")
    fake.queue(Reply(status=429, error="slow", headers={"retry-after": "3"}))
    h.add_account("openai", base_url=fake.base_url)
    await h.reload()
    async with h.http:
        assert (await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))).status_code == 429  # nothing else to try
        t0 = trio.current_time()
        r = await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))
        assert r.status_code == 200 and trio.current_time() - t0 >= 2.5  # waited out the cooldown, then served


async def test_every_account_cooling_beyond_the_bound_answers_503_with_retry_after(
    clock: trio.testing.MockClock, make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway(wait_for_cooldown_s=5)
    fake = await make_fake_upstream(prefix="/v1")
    fake.queue(Reply(status=429, error="slow", headers={"retry-after": "120"}))
    h.add_account("openai", base_url=fake.base_url)
    await h.reload()
    async with h.http:
        await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))
        r = await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))
    assert r.status_code == 503 and 100 <= int(r.headers["retry-after"]) <= 120
    assert len(fake.requests) == 1


async def test_account_concurrency_limit_falls_through_to_the_next_account(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway(rate_limit_wait_s=0.2)
    fake = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(first_byte_delay_s=1.0)
    a, b = await two_accounts(h, fake.base_url)
    h.set_limits(a, {"max_concurrent": 1})
    await h.reload()
    served: list[str] = []

    async def one() -> None:
        r = await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))
        served.append(r.headers["x-omniroute-served-by"])

    async with h.http, trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(one)
    assert sum(f"account {a}" in s for s in served) == 1
    assert sum(f"account {b}" in s for s in served) == 2


async def test_total_deadline_covers_every_attempt(make_gateway: MakeGateway, make_fake_upstream: MakeFake) -> None:
    h = await make_gateway(request_deadline_s=1.5, upstream_first_byte_timeout_s=30)
    fakes = [await make_fake_upstream(prefix="/v1") for _ in range(3)]
    targets = []
    for i, fake in enumerate(fakes):
        fake.default = Reply(hang=True)
        pid = h.add_custom(f"hang{i}", fake.base_url)
        h.add_account(pid, base_url=fake.base_url)
        targets.append(f"{pid}/m")
    h.add_combo("black-holes", targets)
    await h.reload()
    t0 = trio.current_time()
    async with h.http:
        r = await h.http.post(CHAT, json=body("black-holes"))
    assert r.status_code == 504 and trio.current_time() - t0 < 3.0
    row = (await h.usage_rows())[-1]
    assert len(json.loads(row["attempts"])) == 1  # the deadline, not three first-byte timeouts


async def test_model_not_found_skips_the_providers_other_accounts(make_gateway: MakeGateway, make_fake_upstream: MakeFake) -> None:
    h = await make_gateway()
    fake = await make_fake_upstream(prefix="/v1")
    other = await make_fake_upstream(prefix="/v1")
    fake.default = Reply(status=404, error="The model `nope` does not exist")
    await two_accounts(h, fake.base_url)
    h.add_account("openrouter", base_url=other.base_url)
    h.add_combo("fallback", ["openai/nope", "openrouter/some/model"])
    await h.reload()
    async with h.http:
        r = await h.http.post(CHAT, json=body("fallback"))
    assert r.status_code == 200 and r.headers["x-omniroute-served-by"].startswith("openrouter/")
    assert len(fake.requests) == 1  # not asked again through account B


@pytest.mark.parametrize(
    ("strategy", "expect"),
    [("round-robin", {"one": 10, "two": 10, "three": 10}), ("priority", {"one": 30})],
)
async def test_combo_strategies_spread_requests(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake, strategy: str, expect: dict[str, int]
) -> None:
    h = await make_gateway()
    fake = await make_fake_upstream(prefix="/v1")
    h.add_account("openai", base_url=fake.base_url)
    h.add_combo("spread", ["openai/one", "openai/two", "openai/three"], strategy=strategy)
    await h.reload()
    async with h.http:
        for _ in range(30):
            assert (await h.http.post(CHAT, json=body("spread"))).status_code == 200
    counts: dict[str, int] = {}
    for q in fake.requests:
        counts[q.json["model"]] = counts.get(q.json["model"], 0) + 1
    assert counts == expect


async def test_combos_work_from_every_client_format_and_are_listed(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake
) -> None:
    h = await make_gateway()
    fake = await make_fake_upstream(prefix="/v1")
    fake.per_key["sk-broken-00000000"] = Reply(status=503, error="down")
    h.add_account("openai", base_url=fake.base_url, key="sk-broken-00000000")
    h.add_custom("backup", fake.base_url)
    h.add_account("backup", base_url=fake.base_url, key="sk-backup-0000000")
    h.add_combo("team", ["openai/gpt-4o-mini", "backup/local"])
    await h.reload()
    async with h.http:
        ids = {m["id"]: m for m in (await h.http.get("/v1/models")).json()["data"]}
        assert ids["team"]["owned_by"] == "combo" and ids["team"]["context_window"] == 128000
        assert (await h.http.post(CHAT, json=body("team"))).status_code == 200
        assert (await h.http.post("/v1/responses", json={"model": "team", "input": "hi"})).status_code == 200
        r = await h.http.post("/v1/messages", json={**body("team"), "max_tokens": 9})
        assert r.status_code == 200 and r.json()["content"][0]["text"]
        r = await h.http.post("/v1beta/models/team:generateContent", json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
        assert r.status_code == 200 and r.headers["x-omniroute-served-by"].startswith("backup/")


async def test_health_view_and_reset(make_gateway: MakeGateway, make_fake_upstream: MakeFake) -> None:
    h = await make_gateway()
    fake = await make_fake_upstream(prefix="/v1")
    fake.per_key["sk-account-a-0000"] = Reply(status=429, error="slow", headers={"retry-after": "600"})
    a, _ = await two_accounts(h, fake.base_url)
    admin = {"authorization": f"Bearer {h.admin_token}"}
    async with h.http:
        await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))
        view = (await h.http.get("/api/health", headers=admin)).json()
        acct = next(x for x in view["providers"][0]["accounts"] if x["id"] == a)
        assert acct["cooldown_reason"] == "rate_limit" and acct["cooldown_until"] is not None
        other = next(x for x in view["providers"][0]["accounts"] if x["id"] != a)
        assert other["requests"] == 1 and other["success_rate"] == 1.0 and other["p50_ms"] is not None
        assert (await h.http.post("/api/health/reset", headers=admin, json={"account": a})).status_code == 200
        fake.per_key.clear()
        r = await h.http.post(CHAT, json=body("openai/gpt-4o-mini"))
        assert f"account {a}" in r.headers["x-omniroute-served-by"]

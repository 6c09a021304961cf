"""Routing's pure parts: strategies, combos and aliases, resolution order, breakers, cooldowns, quotas,
budgets. No sockets; clocks are plain numbers."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from omniroute import InvalidRequestError, ModelNotFoundError, QuotaExhaustedError, RateLimitError, UpstreamError
from omniroute_providers.catalog import load_catalog
from omniroute_providers.combos import ComboSpec, ComboTarget, check_no_cycles, match_alias, parse_combo
from omniroute_providers.health import Breaker, HealthBook, rate_limit_cooldown
from omniroute_providers.quotas import Budget, BudgetBook, QuotaBook, window_reset, window_start
from omniroute_providers.registry import Account, Registry
from omniroute_providers.routing import ComboNode, Target, order, resolve
from omniroute_providers.strategies import Candidate, RoundRobin
from omniroute_providers.strategies import order as strategy_order

N = 1000


def firsts(strategy: str, cands: list[Candidate], **kw: object) -> Counter[int]:
    rng = random.Random(7)
    rr = RoundRobin()
    return Counter(strategy_order(strategy, cands, rng=rng, rr=rr, **kw)[0] for _ in range(N))  # type: ignore[arg-type]


def test_priority_always_starts_with_the_first() -> None:
    assert firsts("priority", [Candidate()] * 3) == {0: N}


def test_round_robin_rotates_evenly_and_sticks_for_n() -> None:
    assert firsts("round-robin", [Candidate()] * 4) == {0: 250, 1: 250, 2: 250, 3: 250}
    rr = RoundRobin()
    seq = [strategy_order("round-robin", [Candidate()] * 2, rng=random.Random(), rr=rr, sticky=3)[0] for _ in range(9)]
    assert seq == [0, 0, 0, 1, 1, 1, 0, 0, 0]


def test_weighted_follows_the_weights() -> None:
    got = firsts("weighted", [Candidate(weight=1), Candidate(weight=3), Candidate(weight=0)])
    assert got[2] == 0
    assert 0.70 < got[1] / N < 0.80  # 3/4 expected
    order_ = strategy_order("weighted", [Candidate(weight=1), Candidate(weight=5), Candidate(weight=3)],
                            rng=random.Random(1))
    assert order_[1:] == sorted(order_[1:], key=lambda i: -[1, 5, 3][i])  # the rest: heaviest first


def test_random_is_roughly_uniform() -> None:
    got = firsts("random", [Candidate()] * 4)
    assert all(200 < got[i] < 300 for i in range(4))


def test_least_used_prefers_the_idle_one() -> None:
    assert firsts("least-used", [Candidate(uses=9), Candidate(uses=2), Candidate(uses=5)]) == {1: N}


def test_p2c_never_picks_the_busiest_of_two_first() -> None:
    cands = [Candidate(in_flight=5), Candidate(in_flight=0), Candidate(in_flight=9)]
    got = firsts("p2c", cands)
    assert got[2] == 0  # the busiest one loses every pair it is drawn in
    assert got[1] > got[0] > 0  # the idlest wins every pair it is in (2/3 of draws)


def test_cost_optimized_cheapest_first_unknown_last() -> None:
    cands = [Candidate(cost=None), Candidate(cost=3.0), Candidate(cost=0.0), Candidate(cost=1.5)]
    assert strategy_order("cost-optimized", cands, rng=random.Random()) == [2, 3, 1, 0]


# ----------------------------------------------------------------------------------------------------------


def test_combo_validation_says_what_is_wrong() -> None:
    ok = parse_combo({"name": "coding", "strategy": "fill-first", "targets": ["openai/gpt-4o", {"model": "x", "weight": 2}]})
    assert ok.strategy == "priority" and ok.targets[1] == ComboTarget("x", 2.0)
    for bad, msg in [
        ({"name": "", "targets": ["a"]}, "name"),
        ({"name": "c", "targets": []}, "targets"),
        ({"name": "c", "targets": ["a"], "strategy": "fastest"}, "strategy"),
        ({"name": "c", "targets": [{"model": "a", "weight": -1}]}, "weight"),
        ({"name": "c", "targets": ["c"]}, "itself"),
    ]:
        with pytest.raises(InvalidRequestError, match=msg):
            parse_combo(bad)
    a = ComboSpec("a", targets=(ComboTarget("b"),))
    b = ComboSpec("b", targets=(ComboTarget("a"),))
    with pytest.raises(InvalidRequestError, match="cycle"):
        check_no_cycles({"a": a, "b": b})
    deep = {f"c{i}": ComboSpec(f"c{i}", targets=(ComboTarget(f"c{i + 1}"),)) for i in range(4)}
    deep["c4"] = ComboSpec("c4", targets=(ComboTarget("openai/x"),))
    with pytest.raises(InvalidRequestError, match="deep"):
        check_no_cycles(deep)


def test_aliases_exact_first_then_most_specific_wildcard() -> None:
    aliases = [("fast", "groq/llama-3.1-8b-instant"), ("claude-*", "anthropic/claude-*"), ("claude-sonnet-*", "cheap")]
    assert match_alias(aliases, "fast") == "groq/llama-3.1-8b-instant"
    assert match_alias(aliases, "claude-opus-5") == "anthropic/claude-opus-5"
    assert match_alias(aliases, "claude-sonnet-4-6") == "cheap"
    assert match_alias(aliases, "gpt-4o") is None


def _registry(**kw: object) -> Registry:
    catalog = load_catalog()
    accounts = {
        "openai": (Account(1, "openai", "a", "k"), Account(2, "openai", "b", "k", priority=1)),
        "anthropic": (Account(3, "anthropic", "a", "k"),),
        "openrouter": (Account(4, "openrouter", "a", "k"),),
    }
    return replace(Registry(catalog, accounts, {}, None), **kw)  # type: ignore[arg-type]


def test_resolution_order() -> None:
    combo = ComboSpec("smart", "priority", (ComboTarget("anthropic/claude-sonnet-4-5"), ComboTarget("fast")))
    reg = _registry(
        combos={"smart": combo, "openai": ComboSpec("openai", targets=(ComboTarget("anthropic/x"),))},
        aliases=(("fast", "openai/gpt-4o-mini"), ("gpt-4o-mini", "anthropic/claude-haiku"), ("claude-*", "openrouter/anthropic/claude-*")),
    )
    plan = resolve(reg, "smart")
    assert isinstance(plan.root, ComboNode) and plan.combo == "smart"
    assert [t.label for t in plan.targets] == ["anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini"]
    assert [t.label for t in resolve(reg, "fast").targets] == ["openai/gpt-4o-mini"]  # exact alias
    assert [t.label for t in resolve(reg, "gpt-4o-mini").targets] == ["anthropic/claude-haiku"]  # alias shadows catalog
    assert [t.label for t in resolve(reg, "openai/o-new").targets] == ["openai/o-new"]  # provider/* passthrough
    assert [t.label for t in resolve(reg, "claude-3-x").targets] == ["openrouter/anthropic/claude-3-x"]
    with pytest.raises(ModelNotFoundError):
        resolve(reg, "nothing-matches")
    assert [t.label for t in resolve(reg, "nothing-matches", default_model="fast").targets] == ["openai/gpt-4o-mini"]
    disabled = _registry(combos={"off": ComboSpec("off", targets=(ComboTarget("openai/x"),), enabled=False)})
    with pytest.raises(ModelNotFoundError, match="disabled"):
        resolve(disabled, "off")


def test_nested_combo_order_applies_each_strategy() -> None:
    inner = ComboSpec("inner", "round-robin", (ComboTarget("openai/a"), ComboTarget("openai/b")))
    outer = ComboSpec("outer", "priority", (ComboTarget("anthropic/c"), ComboTarget("inner"), ComboTarget("openai/a")))
    reg = _registry(combos={"inner": inner, "outer": outer})
    plan = resolve(reg, "outer")
    rotations: dict[str, RoundRobin] = {}

    def cand(t: Target) -> Candidate:
        return Candidate()

    first = [t.label for t in order(plan, cand, random.Random(), rotations)]
    second = [t.label for t in order(plan, cand, random.Random(), rotations)]
    assert first == ["anthropic/c", "openai/a", "openai/b"]  # openai/a appears once, at its first place
    assert second == ["anthropic/c", "openai/b", "openai/a"]


# ----------------------------------------------------------------------------------------------------------


def test_breaker_opens_half_opens_with_one_probe_and_closes() -> None:
    b = Breaker(threshold=3, window_s=10, open_s=5)
    for t in (0, 1, 2):
        assert b.allow(t)
        b.failure(t)
    assert not b.allow(3)  # open
    assert b.allow(7.5)  # half-open: the probe
    assert not b.allow(7.6) and not b.allow(8)  # everyone else waits for the probe's verdict
    b.success()
    assert b.allow(8) and b.allow(8)
    for t in (10, 11, 12):
        b.failure(t)
    assert b.allow(17.1)  # probe
    b.failure(17.2)  # probe failed: open again, twice as long
    assert not b.allow(20) and not b.allow(27.1) and b.allow(27.3)


def test_failures_outside_the_window_do_not_add_up() -> None:
    b = Breaker(threshold=3, window_s=10)
    for t in (0, 11, 22, 33):
        b.failure(t)
    assert b.allow(34)


def test_cooldowns_follow_hints_else_double() -> None:
    assert rate_limit_cooldown(20.0, 0) == 20.0
    assert [rate_limit_cooldown(None, n) for n in range(10)][:5] == [2, 4, 8, 16, 32]
    assert rate_limit_cooldown(None, 50) == 300.0
    now = [100.0]
    book = HealthBook(lambda: now[0])
    book.record_failure("p", 1, "m", RateLimitError("slow down", retry_after=20))
    assert book.account_blocked(1, "p", "m") == 120.0
    now[0] = 121.0
    assert book.account_blocked(1, "p", "m") is None
    book.record_failure("p", 2, "m", QuotaExhaustedError("out of credit"))
    assert book.account_blocked(2, "p", "m") == 121.0 + 3600
    for _ in range(5):  # 5xx: the breakers; 429s never count towards them
        book.record_failure("p", 3, "m", UpstreamError("boom"))
    assert book.provider_blocked("p") is not None and book.account_blocked(3, "p", "m") is not None
    restored = HealthBook(lambda: now[0])
    restored.restore(book.snapshot())  # what survives a restart
    assert restored.account_blocked(2, "p", "m") == 121.0 + 3600 and restored.provider_blocked("p") is not None


# ----------------------------------------------------------------------------------------------------------

T0 = 1_760_000_000.0  # a Thursday


def test_the_rolling_window_keeps_minutes_not_requests() -> None:
    # the 10-minute soak grew the gateway by 5 MB a minute when every request was kept for five hours
    now = [T0]
    q = QuotaBook(lambda: now[0])
    for i in range(6 * 3600 * 5):  # five requests a second for six hours
        now[0] = T0 + i / 5
        q.record(1, 10)
    assert len(q.accounts[1].rolling) <= 301
    tokens, requests = q.used(1, "5h")
    assert 5 * 3600 * 5 - 5 * 60 <= requests <= 5 * 3600 * 5  # the last five hours, give or take a minute
    assert tokens == requests * 10


def test_quota_windows_count_and_reset() -> None:
    now = [T0]
    q = QuotaBook(lambda: now[0], reset_hour=4)
    limits = {"quota": {"5h": {"requests": 3}, "daily": {"tokens": 1000}}}
    for _ in range(3):
        q.record(7, 100)
    until = q.exhausted_until(7, limits)
    assert until == T0 + 5 * 3600  # when the oldest request leaves the rolling window
    now[0] = T0 + 5 * 3600 + 1
    assert q.exhausted_until(7, limits) is None
    q.record(7, 800)
    daily_reset = window_reset("daily", now[0], 4)
    assert q.exhausted_until(7, limits) == daily_reset
    assert window_start("weekly", T0) <= T0 < window_reset("weekly", T0)
    assert window_reset("monthly", T0) - window_start("monthly", T0) >= 28 * 86400


def test_budgets_add_up_in_nano_dollars_and_reset_per_period() -> None:
    now = [T0]
    b = BudgetBook(lambda: now[0])
    b.configure([Budget("provider", "openai", "day", 0.01), Budget("key", "5", "month", 1.0)])
    for _ in range(9):
        b.record(5, "openai", 0.001)
    assert b.over("provider", "openai") is None
    b.record(5, "openai", 0.001)
    assert b.over("provider", "openai") is not None and b.over("key", "5") is None
    now[0] = window_reset("daily", T0) + 1
    assert b.over("provider", "openai") is None  # a new day
    assert b.spent("key", "5", "month") == pytest.approx(0.01)

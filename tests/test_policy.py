"""The request policy (system prompt injection, thinking budget modes): the pure functions against real
parse/render of every format, then end to end over real sockets (dashboard save -> fake upstream)."""

from __future__ import annotations

import copy
import json
from typing import Any, cast

import httpx
import pytest

from omniroute import JsonObj
from omniroute_providers import ir
from omniroute_providers.formats import get_format
from omniroute_providers.policy import (
    ADAPTIVE_MAX_BUDGET_TOKENS,
    RequestPolicy,
    SystemPromptMode,
    ThinkingMode,
    adaptive_budget,
    apply_policy,
    apply_thinking,
    fit_budget,
    inject_system_prompt,
)
from tests.conftest import Harness
from tests.fakes.fixtures import MakeFake

CLAUDE = "claude-sonnet-4-6"


def parse(fmt: str, body: JsonObj) -> ir.ChatRequest:
    return get_format(fmt).parse_request(body)


def render(req: ir.ChatRequest, upstream: str, caps: ir.TargetCaps | None = None) -> JsonObj:
    ctx = ir.Context(
        client_format=req.source_format,
        upstream_format=upstream,
        provider=upstream,
        upstream_model="m",
        caps=caps or ir.TargetCaps(),
    )
    return get_format(upstream).render_request(req, ctx)


def gemini_thinking(req: ir.ChatRequest, style: str) -> JsonObj:
    caps = ir.TargetCaps(thinking_style=style)  # type: ignore[arg-type]
    config: JsonObj = render(req, "gemini", caps)["generationConfig"]["thinkingConfig"]
    return config


def chat(**extra: Any) -> JsonObj:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


def messages(**extra: Any) -> JsonObj:
    return {"model": "m", "max_tokens": 32000, "messages": [{"role": "user", "content": "hi"}], **extra}


# ----------------------------------------------------------------------------------------------------------
# the policy object
# ----------------------------------------------------------------------------------------------------------


def test_default_policy_is_inactive_and_leaves_the_request_itself() -> None:
    req = parse("openai-chat", chat(reasoning_effort="high"))
    assert not RequestPolicy().active
    assert not RequestPolicy(system_prompt="x", system_prompt_mode="off").active
    assert not RequestPolicy(system_prompt="  \n", system_prompt_mode="prepend").active
    assert apply_policy(req, RequestPolicy()) is req
    assert RequestPolicy(thinking_mode="auto").active
    assert RequestPolicy(system_prompt="x", system_prompt_mode="append").active


def test_policy_from_saved_settings_keeps_defaults_for_malformed_values() -> None:
    p = RequestPolicy.from_settings(
        {
            "system_prompt": "Be kind.",
            "system_prompt_mode": "prepend",
            "thinking_mode": "custom",
            "thinking_budget_tokens": 4096,
        }
    )
    assert p == RequestPolicy("Be kind.", "prepend", "custom", 4096)
    odd = RequestPolicy.from_settings(
        {
            "system_prompt": 3,
            "system_prompt_mode": "sideways",
            "thinking_mode": None,
            "thinking_budget_tokens": -5,
        }
    )
    assert odd == RequestPolicy()
    assert RequestPolicy.from_settings({"thinking_budget_tokens": True}) == RequestPolicy()


# ----------------------------------------------------------------------------------------------------------
# system prompt
# ----------------------------------------------------------------------------------------------------------


def test_system_prompt_is_prepended_with_a_blank_line_and_the_original_request_is_untouched() -> None:
    body = chat(messages=[{"role": "system", "content": "Client rules."}, {"role": "user", "content": "hi"}])
    req = parse("openai-chat", body)
    before = copy.deepcopy(req)
    out = inject_system_prompt(req, "Gateway rules.", "prepend")
    assert [p.text for p in out.system] == ["Gateway rules.\n\nClient rules."]
    assert req == before  # never mutated: the caller's parse may be shared
    assert render(out, "anthropic")["system"] == [{"type": "text", "text": "Gateway rules.\n\nClient rules."}]


def test_system_prompt_is_appended_to_the_last_system_part_keeping_its_cache_breakpoint() -> None:
    cached = {"type": "ephemeral"}
    body = messages(
        system=[
            {"type": "text", "text": "One."},
            {"type": "text", "text": "Two.", "cache_control": cached},
        ]
    )
    out = inject_system_prompt(parse("anthropic", body), "Three.", "append")
    assert [(p.text, p.cache_control) for p in out.system] == [("One.", None), ("Two.\n\nThree.", cached)]


@pytest.mark.parametrize("mode", ["prepend", "append"])
def test_system_prompt_is_inserted_when_the_client_sent_none(mode: str) -> None:
    policy = RequestPolicy("Gateway rules.", cast(SystemPromptMode, mode))
    out = apply_policy(parse("gemini", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}), policy)
    assert render(out, "gemini")["systemInstruction"] == {"parts": [{"text": "Gateway rules."}]}
    assert render(out, "openai-chat")["messages"][0] == {"role": "system", "content": "Gateway rules."}


def test_responses_instructions_get_the_system_prompt() -> None:
    req = parse("openai-responses", {"model": "m", "instructions": "Client.", "input": "hi"})
    out = apply_policy(req, RequestPolicy("Gateway.", "prepend"))
    assert render(out, "openai-responses")["instructions"] == "Gateway.\n\nClient."


# ----------------------------------------------------------------------------------------------------------
# thinking: auto and custom
# ----------------------------------------------------------------------------------------------------------


def test_auto_strips_every_reasoning_setting_so_the_provider_default_applies() -> None:
    req = parse(
        "anthropic",
        messages(thinking={"type": "enabled", "budget_tokens": 4000}, output_config={"effort": "high"}),
    )
    out = apply_thinking(req, "auto", 0)
    assert out.reasoning is None
    body = render(out, "anthropic")
    assert "thinking" not in body
    assert "output_config" not in body
    assert req.reasoning is not None  # the input is left as it was
    odd = parse("anthropic", messages(thinking={"type": "between_tools"}))  # a kind the IR keeps raw
    assert "thinking" not in render(apply_thinking(odd, "auto", 0), "anthropic")
    chat_req = parse("openai-chat", chat(reasoning_effort="high", reasoning={"max_tokens": 5}, seed=1))
    rendered = render(apply_thinking(chat_req, "auto", 0), "openai-chat")
    assert "reasoning_effort" not in rendered
    assert "reasoning" not in rendered
    assert rendered["seed"] == 1


def test_custom_forces_the_budget_in_every_target_format() -> None:
    req = apply_thinking(parse("openai-chat", chat(reasoning_effort="low")), "custom", 16000)
    assert render(req, "anthropic")["thinking"] == {"type": "enabled", "budget_tokens": 16000}
    assert render(req, "openai-chat")["reasoning_effort"] == "high"  # the renderer's budget -> level table
    assert render(req, "openai-responses")["reasoning"]["effort"] == "high"
    assert gemini_thinking(req, "budget")["thinkingBudget"] == 16000
    assert gemini_thinking(req, "level")["thinkingLevel"] == "HIGH"


def test_custom_replaces_an_anthropic_clients_own_thinking_in_the_same_format() -> None:
    body = messages(
        thinking={"type": "between_tools", "display": "summarized"}, output_config={"effort": "max"}
    )
    out = render(apply_thinking(parse("anthropic", body), "custom", 5000), "anthropic")
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 5000, "display": "summarized"}
    assert "output_config" not in out  # the client's effort was part of what the policy replaced


def test_custom_zero_turns_thinking_off_everywhere() -> None:
    req = apply_thinking(parse("openai-chat", chat(reasoning_effort="high")), "custom", 0)
    assert render(req, "anthropic")["thinking"] == {"type": "disabled"}
    assert render(req, "openai-chat")["reasoning_effort"] == "none"
    assert render(req, "openai-responses")["reasoning"]["effort"] == "none"
    assert gemini_thinking(req, "budget")["thinkingBudget"] == 0
    same = render(
        apply_thinking(parse("anthropic", messages(thinking={"type": "adaptive"})), "custom", 0), "anthropic"
    )
    assert same["thinking"] == {"type": "disabled"}
    assert "output_config" not in same  # Anthropic's effort has no "none"


@pytest.mark.parametrize("mode", ["custom", "adaptive"])
def test_a_request_that_did_not_ask_for_reasoning_gets_none(mode: str) -> None:
    req = parse("openai-chat", chat())
    assert apply_thinking(req, cast(ThinkingMode, mode), 9000) is req


def test_a_forced_budget_fits_the_clients_max_tokens() -> None:
    assert fit_budget(8192, None) == 8192
    assert fit_budget(8192, 4000) == 4000 - 1024  # room for the answer
    assert fit_budget(8192, 1500) == 0  # not even Anthropic's minimum fits: off
    assert fit_budget(100, None) == 1024  # Anthropic's floor
    assert fit_budget(0, 4000) == 0
    body = messages(max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2000})
    out = render(apply_thinking(parse("anthropic", body), "custom", 8192), "anthropic")
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2976}
    assert out["max_tokens"] == 4000


# ----------------------------------------------------------------------------------------------------------
# thinking: adaptive
# ----------------------------------------------------------------------------------------------------------


def _busy(effort: str | None = None, **reasoning: Any) -> ir.ChatRequest:
    """Eleven messages, four tools and a last user message of 2001 characters: every multiplier on."""
    msgs = [ir.Message("user" if i % 2 == 0 else "assistant", [ir.TextPart("x")]) for i in range(10)]
    msgs.append(ir.Message("user", [ir.TextPart("y" * 2001)]))
    return ir.ChatRequest(
        model="m",
        messages=msgs,
        tools=[ir.ToolSpec(name=f"t{i}") for i in range(4)],
        reasoning=ir.ReasoningConfig(effort=effort, **reasoning),
    )


def test_adaptive_scales_the_effort_budget_by_conversation_tools_and_prompt_size() -> None:
    small = parse("openai-chat", chat(reasoning_effort="medium"))
    assert adaptive_budget(small) == 10240
    assert adaptive_budget(_busy("low")) == round(1024 * 2.3)
    assert adaptive_budget(_busy("medium")) == round(10240 * 2.3)
    assert adaptive_budget(_busy("high")) == ADAPTIVE_MAX_BUDGET_TOKENS  # capped
    assert adaptive_budget(_busy(None, budget_tokens=2000)) == 4600  # the client's own budget as the base
    assert adaptive_budget(_busy(None, enabled=True, adaptive=True)) == round(10240 * 2.3)  # level unsaid
    assert adaptive_budget(_busy("none", enabled=False)) == 0
    only_tools = parse(
        "openai-chat",
        chat(
            reasoning_effort="low",
            tools=[
                {"type": "function", "function": {"name": f"f{i}", "parameters": {"type": "object"}}}
                for i in range(4)
            ],
        ),
    )
    assert adaptive_budget(only_tools) == 1536


def test_adaptive_renders_the_scaled_budget_and_leaves_a_clients_off_alone() -> None:
    out = apply_thinking(_busy("low"), "adaptive", 0)
    assert render(out, "anthropic")["thinking"] == {"type": "enabled", "budget_tokens": 2355}
    off = parse("openai-chat", chat(reasoning_effort="none"))
    assert apply_thinking(off, "adaptive", 0) is off
    capped = apply_thinking(
        parse("anthropic", messages(max_tokens=20000, output_config={"effort": "high"})), "adaptive", 0
    )
    assert capped.reasoning is not None
    assert capped.reasoning.budget_tokens == 20000 - 1024


# ----------------------------------------------------------------------------------------------------------
# end to end: dashboard -> pipeline -> fake upstream
# ----------------------------------------------------------------------------------------------------------


async def _save(h: Harness, **values: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=h.url, headers={"authorization": f"Bearer {h.admin_token}"}, timeout=30
    ) as admin:
        r = await admin.put("/api/dashboard/settings", json={"values": values})
        assert r.status_code == 200, r.text
        return {s["name"]: s for s in r.json()["settings"]}


async def _anthropic_gateway(gateway: Harness, make_fake_upstream: MakeFake) -> Any:
    fake = await make_fake_upstream(prefix="/v1")
    gateway.add_account("anthropic", base_url=fake.base_url)
    await gateway.reload()
    return fake


async def test_saved_policy_reaches_a_translated_and_a_same_format_anthropic_upstream_at_once(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await _anthropic_gateway(gateway, make_fake_upstream)
    listed = await _save(
        gateway,
        system_prompt="Answer in French.",
        system_prompt_mode="prepend",
        thinking_mode="custom",
        thinking_budget_tokens=4096,
    )
    assert all(
        listed[n]["applied"]
        for n in ("system_prompt", "system_prompt_mode", "thinking_mode", "thinking_budget_tokens")
    )

    # an OpenAI client on an Anthropic upstream (the IR path anyway)
    r = await gateway.http.post(
        "/v1/chat/completions",
        json={
            "model": f"anthropic/{CLAUDE}",
            "reasoning_effort": "high",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]
    sent = fake.requests[-1].json
    assert sent["system"] == [{"type": "text", "text": "Answer in French.\n\nBe brief."}]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}

    # an Anthropic client on an Anthropic upstream: no byte passthrough while the policy is on
    body = {
        "model": f"anthropic/{CLAUDE}",
        "max_tokens": 16000,
        "system": "Be brief.",
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    r = await gateway.http.post("/v1/messages", json=body)
    assert r.status_code == 200, r.text
    assert "event: message_stop" in r.text
    sent = fake.requests[-1].json
    assert sent["model"] == CLAUDE
    assert sent["system"] == [{"type": "text", "text": "Answer in French.\n\nBe brief."}]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert sent["max_tokens"] == 16000

    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"authorization": f"Bearer {gateway.admin_token}"}, timeout=30
    ) as admin:  # the playground previews what the upstream gets, policy included
        r = await admin.post("/api/playground/translate", json={"format": "anthropic", "body": body})
        assert r.json()["passthrough"] is False
        assert r.json()["body"]["thinking"] == {"type": "enabled", "budget_tokens": 4096}

    await _save(gateway, system_prompt_mode="append", thinking_mode="auto")
    r = await gateway.http.post("/v1/messages", json={**body, "stream": False})
    assert r.status_code == 200, r.text
    assert r.json()["content"][0]["type"] == "text"
    sent = fake.requests[-1].json
    assert sent["system"] == [{"type": "text", "text": "Be brief.\n\nAnswer in French."}]
    assert "thinking" not in sent

    await _save(gateway, system_prompt_mode="off", thinking_mode="passthrough")
    assert gateway.gw.pipeline.policy is None
    r = await gateway.http.post("/v1/messages", json=body)
    assert r.status_code == 200, r.text
    assert json.loads(fake.requests[-1].body) == {**body, "model": CLAUDE}  # passthrough again, as sent


async def test_a_reload_picks_up_a_policy_saved_by_another_process(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    fake = await _anthropic_gateway(gateway, make_fake_upstream)
    await _save(gateway, system_prompt="Gateway.", system_prompt_mode="append")
    gateway.gw.pipeline.set_policy(RequestPolicy())  # as if this process had not seen the save
    await gateway.reload()  # what the config poll does when another process saved settings
    assert gateway.gw.pipeline.policy == RequestPolicy("Gateway.", "append")
    r = await gateway.http.post("/v1/messages", json=messages(model=f"anthropic/{CLAUDE}"))
    assert r.status_code == 200, r.text
    assert fake.requests[-1].json["system"] == [{"type": "text", "text": "Gateway."}]

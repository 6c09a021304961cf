"""Request policy: rules the operator sets once (dashboard Settings -> AI) and the pipeline applies to every
request's IR before rendering it for an upstream: system prompt injection and the thinking budget mode
(omniroute-features §8.5, §8.6).

Invariants:
* Pure: no I/O, no clock, no settings lookups. `apply_policy` returns a new ChatRequest and never mutates the
  one it is given, nor any part, list or config object inside it.
* An inactive policy returns the request itself; the pipeline then does not call this module at all, and a
  same-format request keeps its byte passthrough.
* The result is IR for any target, applied once per request (a fallback chain may render it for several
  formats). Reasoning is stated only as `ReasoningConfig` and each renderer maps it to its own knob:
  Anthropic `thinking.budget_tokens`, OpenAI `reasoning_effort` / `reasoning.effort` (budget -> level by the
  renderer's own table), Gemini `thinkingConfig` (thinkingBudget on 2.5, thinkingLevel on 3).
* custom and adaptive change how much a request thinks, never whether a request that said nothing about
  reasoning thinks at all: the catalog does not know which models reason, and a reasoning knob sent to a
  model that has none is a 400 (OpenAI reasoning_effort to gpt-4o, Anthropic thinking to Claude 3 Haiku).
* A forced budget fits the request's own max_tokens when it has one: Anthropic rejects budget_tokens >=
  max_tokens, and a budget that eats the whole output limit leaves no room for the answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast, get_args

from omniroute import JsonObj
from omniroute_providers.formats.anthropic import ANSWER_ROOM_TOKENS, MIN_THINKING_BUDGET_TOKENS, X_THINKING
from omniroute_providers.ir import ChatRequest, ReasoningConfig, TextPart

SystemPromptMode = Literal["off", "prepend", "append"]
ThinkingMode = Literal["passthrough", "auto", "custom", "adaptive"]
SYSTEM_PROMPT_MODES: tuple[str, ...] = get_args(SystemPromptMode)
THINKING_MODES: tuple[str, ...] = get_args(ThinkingMode)

# The dashboard's setting names, in one place: the web layer stores them, the gateway builds the policy.
POLICY_SETTINGS = ("system_prompt", "system_prompt_mode", "thinking_mode", "thinking_budget_tokens")

DEFAULT_THINKING_BUDGET_TOKENS = 8192  # custom mode until the operator picks a budget: a "medium" effort
SYSTEM_PROMPT_SEPARATOR = "\n\n"  # a blank line between the operator's prompt and the client's (§8.6)

# adaptive (§8.5): the request's effort level -> a base budget, times the complexity multipliers below.
ADAPTIVE_EFFORT_BUDGET_TOKENS: Mapping[str, int] = {
    "none": 0,
    "minimal": 1024,  # not in §8.5's table; the nearest level there is low
    "low": 1024,
    "medium": 10240,
    "high": 131072,
    "xhigh": 131072,
    "max": 131072,
}
ADAPTIVE_DEFAULT_EFFORT = "medium"  # thinking on without a level (Anthropic enabled/adaptive, Gemini -1)
ADAPTIVE_MAX_BUDGET_TOKENS = 131072  # the top of the table: the multipliers never push past it
MANY_MESSAGES = 10  # a conversation longer than this is a long task: +50 %
MANY_TOOLS = 3  # more tools than this is an agent loop: +50 %
LONG_USER_MESSAGE_CHARS = 2000  # a last user message longer than this is a big ask: +30 %

# Top-level fields (req.extras, re-sent only to the client's own format) that also carry a reasoning setting.
# Whenever the policy decides the reasoning, they go: else they would contradict it (an Anthropic client's
# unknown `thinking` kind is re-sent verbatim instead of the forced budget; OpenRouter-style `reasoning`,
# DeepSeek/GLM-style `thinking`, Qwen's `enable_thinking` on OpenAI Chat; Responses `reasoning` leftovers).
REASONING_EXTRAS = frozenset(
    {X_THINKING, "reasoning", "thinking", "enable_thinking", "thinking_budget", "thinking_config"}
)


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """What the operator asked for. The default is inactive: every request goes through untouched."""

    system_prompt: str = ""
    system_prompt_mode: SystemPromptMode = "off"
    thinking_mode: ThinkingMode = "passthrough"
    thinking_budget_tokens: int = DEFAULT_THINKING_BUDGET_TOKENS  # custom mode; 0 turns thinking off

    @property
    def injects_system_prompt(self) -> bool:
        return self.system_prompt_mode != "off" and bool(self.system_prompt.strip())

    @property
    def active(self) -> bool:
        """False when applying it would change nothing (the pipeline then keeps its passthrough)."""
        return self.injects_system_prompt or self.thinking_mode != "passthrough"

    @classmethod
    def from_settings(cls, values: Mapping[str, object]) -> RequestPolicy:
        """From the dashboard's saved settings. A missing or malformed value keeps its default: the
        dashboard validates on save, so that only happens with a store written by something else."""
        prompt = values.get("system_prompt")
        prompt_mode = values.get("system_prompt_mode")
        thinking = values.get("thinking_mode")
        budget = values.get("thinking_budget_tokens")
        default = cls()
        return cls(
            system_prompt=prompt if isinstance(prompt, str) else default.system_prompt,
            system_prompt_mode=(
                cast(SystemPromptMode, prompt_mode)
                if prompt_mode in SYSTEM_PROMPT_MODES
                else default.system_prompt_mode
            ),
            thinking_mode=(
                cast(ThinkingMode, thinking) if thinking in THINKING_MODES else default.thinking_mode
            ),
            thinking_budget_tokens=(
                budget
                if isinstance(budget, int) and not isinstance(budget, bool) and budget >= 0
                else default.thinking_budget_tokens
            ),
        )


# ----------------------------------------------------------------------------------------------------------
# applying it
# ----------------------------------------------------------------------------------------------------------


def apply_policy(req: ChatRequest, policy: RequestPolicy) -> ChatRequest:
    """The request as the upstream should see it under `policy` (a new object when anything changed)."""
    if not policy.active:
        return req
    if policy.injects_system_prompt:
        req = inject_system_prompt(req, policy.system_prompt, policy.system_prompt_mode)
    return apply_thinking(req, policy.thinking_mode, policy.thinking_budget_tokens)


def inject_system_prompt(req: ChatRequest, prompt: str, mode: SystemPromptMode) -> ChatRequest:
    """§8.6: `prompt` joins the request's leading system text, before it (prepend) or after it (append),
    separated by a blank line, inside the first / last system part so that every format renders one text
    (and the part keeps its cache_control); a request without system text gets `prompt` as its system."""
    if mode == "off" or not prompt.strip():
        return req
    system = list(req.system)
    if not system:
        system = [TextPart(prompt)]
    elif mode == "prepend":
        system[0] = dataclasses.replace(system[0], text=prompt + SYSTEM_PROMPT_SEPARATOR + system[0].text)
    else:
        system[-1] = dataclasses.replace(system[-1], text=system[-1].text + SYSTEM_PROMPT_SEPARATOR + prompt)
    return dataclasses.replace(req, system=system)


def apply_thinking(req: ChatRequest, mode: ThinkingMode, budget_tokens: int) -> ChatRequest:
    """§8.5 thinking budget modes.

    passthrough  the request as it came.
    auto         every reasoning setting removed: the provider's default applies.
    custom       a request that carries a reasoning setting thinks with `budget_tokens` (0 = off).
    adaptive     a request that carries a reasoning setting thinks with `adaptive_budget(req)`; one that
                 turned thinking off itself stays as it was.
    """
    if mode == "passthrough":
        return req
    if mode == "auto":
        return dataclasses.replace(req, reasoning=None, extras=_without_reasoning_extras(req.extras))
    if req.reasoning is None:
        return req  # see the module docstring: no reasoning knob is added to a request that had none
    if mode == "custom":
        budget = budget_tokens
    else:
        budget = adaptive_budget(req)
        if budget == 0:
            return req  # the client's own "off", rendered as it wrote it
    reasoning = forced_reasoning(req.reasoning, fit_budget(budget, req.max_tokens), req.source_format)
    return dataclasses.replace(req, reasoning=reasoning, extras=_without_reasoning_extras(req.extras))


def adaptive_budget(req: ChatRequest) -> int:
    """§8.5 adaptive: a base budget from the request's own reasoning setting, times 1 + 0.5 for more than
    MANY_MESSAGES messages + 0.5 for more than MANY_TOOLS tools + 0.3 for a last user message longer than
    LONG_USER_MESSAGE_CHARS, capped at ADAPTIVE_MAX_BUDGET_TOKENS. 0 = the request turned thinking off.

    The base: 0 for thinking off; else the effort level's budget (an unknown level counts as medium); else
    the request's own budget; else (thinking on, amount unsaid) the medium budget."""
    base = _base_budget(req.reasoning)
    if base <= 0:
        return 0
    multiplier = 1.0
    if len(req.messages) > MANY_MESSAGES:
        multiplier += 0.5
    if len(req.tools) > MANY_TOOLS:
        multiplier += 0.5
    if _last_user_chars(req) > LONG_USER_MESSAGE_CHARS:
        multiplier += 0.3
    return min(ADAPTIVE_MAX_BUDGET_TOKENS, round(base * multiplier))


def fit_budget(budget: int, max_tokens: int | None) -> int:
    """A thinking budget every format takes: at least MIN_THINKING_BUDGET_TOKENS (Anthropic's floor), and
    below the request's max_tokens with ANSWER_ROOM_TOKENS left for the answer when it would not fit;
    0 (off) when not even the minimum fits. The same rule the Anthropic renderer applies to translated
    requests, here for every request, since a same-format Anthropic request is rendered as written."""
    if budget <= 0:
        return 0
    budget = max(MIN_THINKING_BUDGET_TOKENS, budget)
    if max_tokens is not None and budget >= max_tokens:
        budget = max_tokens - ANSWER_ROOM_TOKENS
        if budget < MIN_THINKING_BUDGET_TOKENS:
            return 0
    return budget


def forced_reasoning(old: ReasoningConfig, budget: int, source_format: str) -> ReasoningConfig:
    """The reasoning config that says "think with `budget` tokens" (0: "do not think") to every renderer.

    How the thinking is shown (Responses summary, Anthropic display, Gemini includeThoughts) stays the
    client's. Off also carries the effort word "none": OpenAI Chat renders a bare `enabled=False` as the
    model's default (not every model takes "none" from a translated request) and would not switch anything
    off, while every renderer reads "none" as off. Not for an Anthropic-format request: its effort goes
    verbatim into output_config.effort, which has no "none".
    """
    if budget <= 0:
        return ReasoningConfig(
            enabled=False, budget_tokens=0, effort=None if source_format == "anthropic" else "none"
        )
    return ReasoningConfig(
        enabled=True,
        budget_tokens=budget,
        summary=old.summary,
        display=old.display,
        include_thoughts=old.include_thoughts,
    )


def _base_budget(r: ReasoningConfig | None) -> int:
    if r is None:
        return ADAPTIVE_EFFORT_BUDGET_TOKENS[ADAPTIVE_DEFAULT_EFFORT]
    if r.enabled is False or r.budget_tokens == 0:
        return 0
    if r.effort:
        default = ADAPTIVE_EFFORT_BUDGET_TOKENS[ADAPTIVE_DEFAULT_EFFORT]
        return ADAPTIVE_EFFORT_BUDGET_TOKENS.get(r.effort.lower(), default)
    if r.budget_tokens is not None and r.budget_tokens > 0:
        return r.budget_tokens
    return ADAPTIVE_EFFORT_BUDGET_TOKENS[ADAPTIVE_DEFAULT_EFFORT]


def _last_user_chars(req: ChatRequest) -> int:
    for msg in reversed(req.messages):
        if msg.role == "user":
            return sum(len(p.text) for p in msg.parts if isinstance(p, TextPart))
    return 0


def _without_reasoning_extras(extras: JsonObj) -> JsonObj:
    if REASONING_EXTRAS.isdisjoint(extras):
        return extras
    return {k: v for k, v in extras.items() if k not in REASONING_EXTRAS}


__all__ = [
    "POLICY_SETTINGS",
    "SYSTEM_PROMPT_MODES",
    "THINKING_MODES",
    "RequestPolicy",
    "SystemPromptMode",
    "ThinkingMode",
    "adaptive_budget",
    "apply_policy",
    "apply_thinking",
    "fit_budget",
    "forced_reasoning",
    "inject_system_prompt",
]

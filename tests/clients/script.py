"""What the fake upstream answers an agent, and how a test reads what the gateway forwarded to it.

The fake speaks every upstream format, so the helpers here read a recorded request in whichever format the
gateway translated it to: which tools it declared, which tool results it carried back, which reasoning
tokens it replayed. `ToolTurn` scripts one tool round trip: the first request that declares the tool gets
a call to it, or two parallel ones, with thinking and a signature so reasoning round trips are exercised
too; the request that brings the tools' output back gets the final answer; a request for structured output
(Gemini CLI's routing call) gets JSON; anything else (title generation) gets the final answer as well, so
side calls never disturb the conversation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.reply import Reply
from tests.fakes.upstream import RecordedRequest

JsonSchema = dict[str, Any]

# upstream format -> (catalog provider whose account points at the fake, path prefix its base URL needs)
UPSTREAMS: dict[str, tuple[str, str]] = {
    "openai-chat": ("openai", "/v1"),
    "openai-responses": ("openai-responses", "/v1"),
    "anthropic": ("anthropic", "/v1"),
    "gemini": ("gemini", "/v1beta"),
}
UPSTREAM_MODEL = "fake-model"  # any id passes through `<provider>/<model>` to the provider unchanged

SECRET = "MARMALADE"  # what the file the agent is asked to read says: seen upstream only if the tool ran
NOTE = f"the secret word is {SECRET}\n"
SECOND = "TANGERINE"  # what a second file says, read by a parallel call in the same turn
SECOND_NOTE = f"the second word is {SECOND}\n"
THINKING = "The user wants the note; reading it is the way."
SIGNATURE = "sig-fake-opaque-7f3a"  # the upstream's reasoning token, to be replayed on the next turn


def model_for(upstream: str) -> str:
    return f"{UPSTREAMS[upstream][0]}/{UPSTREAM_MODEL}"


def final_answer(upstream: str) -> str:
    return f"The note names the secret word, says the {upstream} upstream."


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text_of(c.get("text", c.get("content", ""))) for c in content if isinstance(c, dict))
    return json.dumps(content)


def tool_names(rec: RecordedRequest) -> list[str]:
    """The function tools a request declares, in the request's own format."""
    body = rec.json if isinstance(rec.json, dict) else {}
    names: list[str] = []
    for tool in body.get("tools") or []:
        if rec.format == "gemini":
            names.extend(d.get("name", "") for d in tool.get("functionDeclarations") or [])
        elif rec.format == "openai-chat":
            names.append((tool.get("function") or {}).get("name", ""))
        elif tool.get("type") == "namespace":
            names.extend(t.get("name", "") for t in tool.get("tools") or [])
        else:
            names.append(tool.get("name", ""))
    return names


def tool_results(rec: RecordedRequest) -> list[str]:
    """The text of every tool result a request carries back, in the request's own format."""
    body = rec.json if isinstance(rec.json, dict) else {}
    out: list[str] = []
    if rec.format == "openai-chat":
        out = [_text_of(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "tool"]
    elif rec.format == "openai-responses":
        items: list[Any] = body["input"] if isinstance(body.get("input"), list) else []
        out = [_text_of(i.get("output")) for i in items if i.get("type") == "function_call_output"]
    elif rec.format == "anthropic":
        for m in body.get("messages") or []:
            if isinstance(m.get("content"), list):
                out += [_text_of(b.get("content")) for b in m["content"] if b.get("type") == "tool_result"]
    elif rec.format == "gemini":
        for c in body.get("contents") or []:
            out += [
                json.dumps(p["functionResponse"]) for p in c.get("parts") or [] if "functionResponse" in p
            ]
    return out


def replayed_signatures(rec: RecordedRequest) -> list[str]:
    """Reasoning tokens a request replays from earlier turns: Anthropic thinking signatures, Responses
    encrypted_content, Gemini thoughtSignature."""
    body = rec.json if isinstance(rec.json, dict) else {}
    found: list[str] = []
    if rec.format == "anthropic":
        for m in body.get("messages") or []:
            if isinstance(m.get("content"), list):
                found += [b.get("signature", "") for b in m["content"] if b.get("type") == "thinking"]
    elif rec.format == "openai-responses":
        items: list[Any] = body["input"] if isinstance(body.get("input"), list) else []
        found = [i.get("encrypted_content") or "" for i in items if i.get("type") == "reasoning"]
    elif rec.format == "gemini":
        for c in body.get("contents") or []:
            found += [p["thoughtSignature"] for p in c.get("parts") or [] if "thoughtSignature" in p]
    return found


def json_schema_asked(rec: RecordedRequest) -> JsonSchema | None:
    """The JSON schema a request asks the answer to follow (structured output), in any format."""
    body = rec.json if isinstance(rec.json, dict) else {}
    config = body.get("generationConfig") or {}
    candidates = [
        ((body.get("output_config") or {}).get("format") or {}).get("schema"),  # Anthropic
        ((body.get("response_format") or {}).get("json_schema") or {}).get("schema"),  # OpenAI Chat
        ((body.get("text") or {}).get("format") or {}).get("schema"),  # OpenAI Responses
        config.get("responseJsonSchema") or config.get("responseSchema"),  # Gemini
    ]
    return next((dict(c) for c in candidates if isinstance(c, dict) and c), None)


# Gemini CLI's routing call (its default models): a complexity score as JSON
ROUTER_ANSWER = '{"complexity_reasoning": "reading one file", "complexity_score": 5}'


@dataclass
class ToolTurn:
    """One scripted tool round trip (see the module docstring)."""

    upstream: str
    tool: str
    arguments: Mapping[str, Any]
    also: Mapping[str, Any] | None = None  # a second, parallel call to the same tool in the same turn
    calls_made: list[RecordedRequest] = field(default_factory=list)
    answered: list[RecordedRequest] = field(default_factory=list)
    structured: list[RecordedRequest] = field(default_factory=list)

    def __call__(self, rec: RecordedRequest) -> Reply:
        if json_schema_asked(rec):
            self.structured.append(rec)
            return Reply(text=ROUTER_ANSWER)
        if any(SECRET in r for r in tool_results(rec)):
            self.answered.append(rec)
            return Reply(text=final_answer(self.upstream))
        if self.tool in tool_names(rec) and not self.calls_made:
            self.calls_made.append(rec)
            return Reply(
                text="Let me read it.",
                thinking=THINKING,
                signature=SIGNATURE,
                tool_calls=[(self.tool, dict(a)) for a in (self.arguments, self.also) if a is not None],
            )
        return Reply(text=final_answer(self.upstream))


def describe(requests: list[RecordedRequest]) -> str:
    """What the fake saw, for assertion messages."""
    return "\n".join(
        f"{r.method} {r.path} format={r.format} tools={len(tool_names(r))} results={tool_results(r)!r:.200}"
        for r in requests
    )

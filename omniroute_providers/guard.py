"""The prompt-injection guard: regular expressions over the user and system text of a request.

Off by default. `injection_guard` = "log" records a match (which pattern, where; never the text: prompts
are not logged) and lets the request through; "block" refuses it with InvalidRequestError
(`injection_detected`, HTTP 400) before any provider is called, which the client's format renders as its
own error body.

What is inspected: system/developer instructions and user messages, in the client's wire format (the
raw body, so a body the IR cannot parse is still inspected) or in an already-parsed `ir.ChatRequest`.
Assistant turns and tool results are not: the first are the model's own words, the second hold files and
web pages that legitimately contain such phrases (reading a security write-up would be refused). Text is
normalised before matching (NFKC, zero-width characters removed, whitespace runs collapsed), and
patterns match case-insensitively, so full-width letters or a zero-width space inside a phrase change
nothing.

This is a tripwire for known phrasings, not a defence: a determined attacker rewords. Patterns come from
`injection_patterns`: empty = the built-in list below; text starting with `[` = a JSON list of regular
expressions (a list in config.json arrives this way); anything else = the path of a file with one
expression per line (blank lines and lines starting with `#` skipped). Patterns are compiled once per
distinct setting value; `validate` compiles them at startup so a bad pattern stops the gateway with a
message instead of failing requests.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterator
from typing import Protocol

from omniroute import InvalidRequestError, JSONDecodeError, JsonObj, loads
from omniroute_providers import ir

log = logging.getLogger("omniroute.guard")

MODES = ("off", "log", "block")

DEFAULT_PATTERNS: tuple[str, ...] = (
    # "ignore all previous instructions" and its many rewordings
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|every|the|your|my|these|those|of)\s+)*"
    r"(?:previous|prior|above|earlier|preceding|initial|original|system)\s+"
    r"(?:instructions?|prompts?|rules|directions|directives|guidelines|messages?)",
    # asking for the hidden prompt
    r"\b(?:reveal|print|show|output|repeat|leak|dump)\s+(?:me\s+)?(?:your|the)\s+(?:full\s+|entire\s+)?"
    r"(?:system\s+prompt|hidden\s+(?:prompt|instructions)|initial\s+instructions|developer\s+message)",
    # persona jailbreaks
    r"\byou\s+are\s+now\s+(?:DAN|in\s+developer\s+mode|jailbroken|unrestricted|unfiltered)\b",
    r"\bdo\s+anything\s+now\b",
    r"\bpretend\s+(?:that\s+)?you\s+(?:have\s+no|are\s+not\s+bound\s+by|are\s+free\s+of)\s+"
    r"(?:restrictions|rules|guidelines|limitations)",
    # chat-template control tokens smuggled into plain text
    r"<\|im_start\|>\s*system|<\|start_header_id\|>\s*system|<<SYS>>|\[/?INST\]",
)

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_WHITESPACE = re.compile(r"\s+")


class GuardSettings(Protocol):
    injection_guard: str
    injection_patterns: str


# ----------------------------------------------------------------------------------------------------------
# patterns
# ----------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def load_patterns(spec: str) -> tuple[re.Pattern[str], ...]:
    """The compiled patterns a setting value names. ValueError saying what is wrong."""
    spec = spec.strip()
    if not spec:
        sources = list(DEFAULT_PATTERNS)
    elif spec.startswith("["):
        try:
            value = loads(spec)
        except JSONDecodeError as exc:
            raise ValueError(f"setting injection_patterns: not a JSON list ({exc})") from None
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise ValueError("setting injection_patterns: expected a list of regular expressions")
        sources = [str(p) for p in value]
    else:
        try:
            with open(spec, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except OSError as exc:
            raise ValueError(f"setting injection_patterns: cannot read {spec}: {exc.strerror}") from None
        sources = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    compiled = []
    for i, source in enumerate(sources):
        if not source:
            raise ValueError(
                f"setting injection_patterns: pattern {i + 1} is empty (it would match anything)"
            )
        try:
            compiled.append(re.compile(source, re.IGNORECASE))
        except re.error as exc:
            raise ValueError(f"setting injection_patterns: pattern {i + 1} {source!r}: {exc}") from None
    return tuple(compiled)


def validate(settings: GuardSettings) -> None:
    """Check the mode and compile the patterns now (at startup); ValueError on a bad setting."""
    if settings.injection_guard not in MODES:
        raise ValueError(
            f"setting injection_guard: {settings.injection_guard!r} is not one of {', '.join(MODES)}"
        )
    if settings.injection_guard != "off":
        load_patterns(settings.injection_patterns)


# ----------------------------------------------------------------------------------------------------------
# the text a request carries
# ----------------------------------------------------------------------------------------------------------


def _texts_of_content(content: object, text_types: tuple[str, ...]) -> Iterator[str]:
    """Text from a content value: a string, or a list of parts whose type is one of `text_types`."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                yield part
            elif isinstance(part, dict) and part.get("type", "text") in text_types:
                text = part.get("text")
                if isinstance(text, str):
                    yield text


def _chat_texts(body: JsonObj) -> Iterator[tuple[str, str]]:
    messages = body.get("messages")
    for i, msg in enumerate(messages if isinstance(messages, list) else []):
        if isinstance(msg, dict) and msg.get("role") in ("system", "developer", "user"):
            for text in _texts_of_content(msg.get("content"), ("text",)):
                yield f"messages[{i}]", text
    prompt = body.get("prompt")  # legacy /v1/completions
    for text in _texts_of_content(prompt, ("text",)):
        yield "prompt", text


def _responses_texts(body: JsonObj) -> Iterator[tuple[str, str]]:
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        yield "instructions", instructions
    items = body.get("input")
    if isinstance(items, str):
        yield "input", items
        return
    for i, item in enumerate(items if isinstance(items, list) else []):
        if (
            isinstance(item, dict)
            and item.get("type", "message") == "message"
            and item.get("role") in ("system", "developer", "user")
        ):
            for text in _texts_of_content(item.get("content"), ("input_text", "text")):
                yield f"input[{i}]", text


def _anthropic_texts(body: JsonObj) -> Iterator[tuple[str, str]]:
    for text in _texts_of_content(body.get("system"), ("text",)):
        yield "system", text
    messages = body.get("messages")
    for i, msg in enumerate(messages if isinstance(messages, list) else []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            for text in _texts_of_content(msg.get("content"), ("text",)):
                yield f"messages[{i}]", text


def _gemini_parts(content: object) -> Iterator[str]:
    if isinstance(content, str):
        yield content
        return
    parts = content.get("parts") if isinstance(content, dict) else None
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought"):
            yield part["text"]


def _gemini_texts(body: JsonObj) -> Iterator[tuple[str, str]]:
    for key in ("systemInstruction", "system_instruction"):
        for text in _gemini_parts(body.get(key)):
            yield key, text
    contents = body.get("contents")
    if isinstance(contents, (dict, str)):
        contents = [contents]
    for i, content in enumerate(contents if isinstance(contents, list) else []):
        if isinstance(content, str) or (isinstance(content, dict) and content.get("role", "user") == "user"):
            for text in _gemini_parts(content):
                yield f"contents[{i}]", text


_BY_FORMAT = {
    "openai-chat": _chat_texts,
    "openai-responses": _responses_texts,
    "anthropic": _anthropic_texts,
    "gemini": _gemini_texts,
}


def _ir_texts(request: ir.ChatRequest) -> Iterator[tuple[str, str]]:
    for part in request.system:
        yield "system", part.text
    for i, msg in enumerate(request.messages):
        if msg.role in ("system", "user"):
            for p in msg.parts:
                if isinstance(p, ir.TextPart):
                    yield f"messages[{i}]", p.text


def request_texts(body: JsonObj | ir.ChatRequest, client_format: str) -> Iterator[tuple[str, str]]:
    """(where, text) for every user and system text of a request."""
    if isinstance(body, ir.ChatRequest):
        return _ir_texts(body)
    extract = _BY_FORMAT.get(client_format)
    if extract is None:
        raise ValueError(f"unknown client format {client_format!r}")
    return extract(body)


def normalise(text: str) -> str:
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH))


# ----------------------------------------------------------------------------------------------------------
# the check
# ----------------------------------------------------------------------------------------------------------


def find(
    body: JsonObj | ir.ChatRequest, client_format: str, patterns: tuple[re.Pattern[str], ...]
) -> tuple[int, str] | None:
    """(pattern index, where) of the first match, or None."""
    for where, text in request_texts(body, client_format):
        flat = normalise(text)
        for i, pattern in enumerate(patterns):
            if pattern.search(flat):
                return i, where
    return None


def check(call_body: JsonObj | ir.ChatRequest, client_format: str, settings: GuardSettings) -> None:
    """Apply the guard to one request: nothing when off or clean; a warning in the log when mode is
    "log"; InvalidRequestError(code="injection_detected") when mode is "block"."""
    mode = settings.injection_guard
    if mode == "off":
        return
    if mode not in MODES:
        raise ValueError(f"setting injection_guard: {mode!r} is not one of {', '.join(MODES)}")
    hit = find(call_body, client_format, load_patterns(settings.injection_patterns))
    if hit is None:
        return
    index, where = hit
    if mode == "log":
        log.warning(
            "prompt-injection guard: pattern %d matched in %s (mode log: let through)", index + 1, where
        )
        return
    log.info("prompt-injection guard: pattern %d matched in %s (refused)", index + 1, where)
    raise InvalidRequestError(
        f"the request was refused by the gateway's prompt-injection guard (pattern {index + 1} matched "
        f"in {where})",
        code="injection_detected",
        param=where,
    )

"""Tool names and tool-call ids made acceptable to a stricter upstream, deterministically.

Invariants:

* Pure and deterministic: the same input always gives the same output, in every process, so a name
  renamed in a request is recognised again in the next turn of the conversation without shared state.
* Outputs never exceed `max_len` and only use the target's allowed characters.
* An input that is already valid comes back unchanged (the common case costs one regex match).
* A shortened value ends in `_` + 8 hex digits of sha256(original), so two long names that share a
  prefix stay distinct.

Callers record every rename (ctx.tool_names / ctx.call_ids) so responses show the client's originals.
"""

from __future__ import annotations

import hashlib
import re

# Anthropic: ^[a-zA-Z0-9_-]{1,64}$ for tool names and ^[a-zA-Z0-9_-]+$ for tool_use ids; OpenAI is the
# same for function names. Gemini also allows "." and ":" and wants a letter or "_" first.
_NAME_OK = re.compile(r"[A-Za-z0-9_-]+")
_NAME_OK_DOTS = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")
_NAME_BAD_DOTS = re.compile(r"[^A-Za-z0-9_.:-]")
_HASH_HEX = 8  # 32 bits of hash: collisions among one request's tools are negligible
EMPTY_TOOL_NAME = "_"  # what an empty name becomes: one valid character rather than a 400


def _digest(value: str, n: int) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def _cut(original: str, clean: str, max_len: int) -> str:
    """`clean` shortened to `max_len` with a hash of `original` as the tail."""
    if len(clean) <= max_len:
        return clean
    digest = _digest(original, _HASH_HEX)
    if max_len <= _HASH_HEX + 1:
        return digest[:max_len]
    return clean[: max_len - _HASH_HEX - 1] + "_" + digest


def sanitize_tool_name(name: str, *, max_len: int = 64, allow_dots: bool = False) -> str:
    """A tool name the upstream accepts: bad characters -> `_`, too long -> prefix + `_` + 8 hex."""
    ok = _NAME_OK_DOTS if allow_dots else _NAME_OK
    if ok.fullmatch(name) and len(name) <= max_len:
        return name
    if not name:
        return EMPTY_TOOL_NAME
    clean = (_NAME_BAD_DOTS if allow_dots else _NAME_BAD).sub("_", name)
    if allow_dots and not (clean[0].isascii() and (clean[0].isalpha() or clean[0] == "_")):
        clean = "_" + clean
    return _cut(name, clean, max_len)


def disambiguate(original: str, clean: str, max_len: int = 64) -> str:
    """`clean` made distinct by a hash of `original`: for two originals that sanitize to the same name
    or id (`a.b` and `a:b`). Fits `max_len`; deterministic like everything here."""
    digest = _digest(original, _HASH_HEX)
    if max_len <= _HASH_HEX + 1:
        return digest[:max_len]
    return clean[: max_len - _HASH_HEX - 1] + "_" + digest


def sanitize_call_id(call_id: str) -> str:
    """A tool-call id matching Anthropic's ^[a-zA-Z0-9_-]+$ (other characters -> `_`).

    An empty id becomes `toolu_` + 24 hex, the same every time, so a tool_use and its tool_result
    that both lacked an id still pair up.
    """
    if _NAME_OK.fullmatch(call_id):
        return call_id
    if not call_id:
        return "toolu_" + _digest("", 24)
    return _NAME_BAD.sub("_", call_id)


def shorten_call_id(call_id: str, max_len: int = 64) -> str:
    """`call_id` unchanged when it fits, else its prefix + `_` + 8 hex of its hash."""
    return _cut(call_id, call_id, max_len)


__all__ = ["EMPTY_TOOL_NAME", "disambiguate", "sanitize_call_id", "sanitize_tool_name", "shorten_call_id"]

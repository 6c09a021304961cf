"""Tool names and call ids made acceptable to strict upstreams, deterministically."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from omniroute_providers.formats.names import (
    disambiguate,
    sanitize_call_id,
    sanitize_tool_name,
    shorten_call_id,
)

STRICT_NAME = re.compile(r"[A-Za-z0-9_-]+")
GEMINI_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")


def test_valid_name_comes_back_unchanged() -> None:
    assert sanitize_tool_name("get_weather-2") == "get_weather-2"


def test_dots_colons_and_spaces_become_underscores() -> None:
    assert sanitize_tool_name("functions.Bash:0") == "functions_Bash_0"
    assert sanitize_tool_name("my tool/x") == "my_tool_x"


def test_gemini_keeps_dots_and_colons_and_needs_a_leading_letter() -> None:
    assert sanitize_tool_name("ns.tool:v1", allow_dots=True) == "ns.tool:v1"
    assert sanitize_tool_name("1st-tool", allow_dots=True) == "_1st-tool"
    assert sanitize_tool_name("1st-tool") == "1st-tool"  # OpenAI/Anthropic allow a leading digit


def test_long_mcp_name_is_cut_with_a_hash_and_stays_distinct() -> None:
    a = "mcp__my_server__" + "a" * 70 + "_one"
    b = "mcp__my_server__" + "a" * 70 + "_two"
    short_a, short_b = sanitize_tool_name(a), sanitize_tool_name(b)
    assert len(short_a) == len(short_b) == 64
    assert short_a != short_b
    assert short_a.startswith("mcp__my_server__")
    assert re.fullmatch(r".*_[0-9a-f]{8}", short_a)
    assert sanitize_tool_name(a) == short_a  # same input, same output


def test_max_len_is_honoured() -> None:
    assert len(sanitize_tool_name("x" * 200, max_len=128)) == 128
    assert sanitize_tool_name("x" * 100, max_len=128) == "x" * 100


def test_empty_name_becomes_one_valid_character() -> None:
    assert STRICT_NAME.fullmatch(sanitize_tool_name(""))


def test_call_id_sanitized_for_anthropic() -> None:
    assert sanitize_call_id("call.abc:1") == "call_abc_1"  # formats.md case 31
    assert sanitize_call_id("toolu_01AbC") == "toolu_01AbC"


def test_empty_call_id_gets_a_deterministic_toolu_id() -> None:
    first = sanitize_call_id("")
    assert re.fullmatch(r"toolu_[0-9a-f]{24}", first)
    assert sanitize_call_id("") == first


def test_shorten_call_id() -> None:
    assert shorten_call_id("call_1") == "call_1"
    long_id = "toolu_" + "z" * 80
    short = shorten_call_id(long_id)
    assert len(short) == 64
    assert short == shorten_call_id(long_id)
    assert short != shorten_call_id(long_id + "y")
    assert len(shorten_call_id(long_id, max_len=40)) == 40


def test_disambiguate_separates_names_that_sanitize_alike() -> None:
    clean = sanitize_tool_name("a.b")
    assert clean == sanitize_tool_name("a:b")
    assert disambiguate("a.b", clean) != disambiguate("a:b", clean)
    assert len(disambiguate("x" * 100, "x" * 100, 64)) == 64


@given(st.text(max_size=200), st.integers(min_value=1, max_value=200))
def test_any_name_becomes_valid_for_strict_targets(name: str, max_len: int) -> None:
    out = sanitize_tool_name(name, max_len=max_len)
    assert STRICT_NAME.fullmatch(out)
    assert len(out) <= max_len
    assert out == sanitize_tool_name(name, max_len=max_len)


@given(st.text(max_size=200))
def test_any_name_becomes_valid_for_gemini(name: str) -> None:
    out = sanitize_tool_name(name, allow_dots=True)
    assert GEMINI_NAME.fullmatch(out)
    assert len(out) <= 64


@given(st.text(max_size=100))
def test_any_call_id_becomes_valid_for_anthropic(call_id: str) -> None:
    out = sanitize_call_id(call_id)
    assert STRICT_NAME.fullmatch(out)
    assert out == sanitize_call_id(call_id)


@given(st.text(max_size=300), st.integers(min_value=1, max_value=100))
def test_shortened_ids_fit(call_id: str, max_len: int) -> None:
    out = shorten_call_id(call_id, max_len)
    assert len(out) <= max_len
    if len(call_id) <= max_len:
        assert out == call_id

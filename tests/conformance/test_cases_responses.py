"""formats.md §5, answer side: what the client gets when an upstream of another format answers.

Each test scripts the fake upstream (a Reply, or raw bytes where a Reply cannot say it), sends a real
client request through the gateway and asserts on the client's answer after it was validated with the
client format's SDK types and stream grammar (tests/conformance/clients.py). Case numbers are §5's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conformance import clients as c
from tests.conformance import raw
from tests.conformance.clients import AM, GG, OC, OR, Mode
from tests.conformance.conftest import Mesh
from tests.fakes import render as fake_render
from tests.fakes.reply import Reply, Usage
from tests.fakes.wire import RenderContext

CHAT, RESPONSES, MESSAGES, GEMINI = Mode(OC), Mode(OR), Mode(AM), Mode(GG)
CHAT_S, RESPONSES_S, MESSAGES_S, GEMINI_S = Mode(OC, True), Mode(OR, True), Mode(AM, True), Mode(GG, True)
TOOLS = {fmt: [c.tool_spec(fmt)] for fmt in c.FORMATS}


async def ok(
    mesh: Mesh, mode: Mode, upstream: str, body: dict[str, Any] | None = None, **kw: Any
) -> c.Answer:
    ans = await mesh.send(mode, upstream, body or c.body_for(mode.client, [c.user("hi")]), **kw)
    assert ans.status == 200, ans.raw
    return ans


def chat_tool_deltas(ans: c.Answer) -> list[dict[str, Any]]:
    return [
        tc for e in ans.raw if e.get("choices") for tc in e["choices"][0]["delta"].get("tool_calls") or []
    ]


# ----------------------------------------------------------------------------------------------------------
# streaming tool arguments (36-43)
# ----------------------------------------------------------------------------------------------------------

TRICKY_ARGS = {"path": 'say "hi"\\now', "n": 1}
TRICKY_JSON = json.dumps(TRICKY_ARGS)


def split_at_escape(text: str, pieces: int) -> list[str]:
    """`text` in `pieces` fragments, one boundary right after a backslash (between \\ and ")."""
    cut = text.index('\\"') + 1
    tail = text[cut:]
    step = max(1, len(tail) // (pieces - 1))
    rest = [tail[i : i + step] for i in range(0, len(tail), step)]
    return [text[:cut], *rest]


async def test_case_36_anthropic_json_fragments_become_chat_tool_deltas(mesh: Mesh) -> None:
    fragments = split_at_escape(TRICKY_JSON, 5)
    assert len(fragments) >= 5
    block = {"type": "tool_use", "id": "toolu_36", "name": "get_weather", "input": {}}
    mesh.fakes[AM].default = raw.am_stream([(block, raw.json_deltas("", *fragments))], "tool_use")
    ans = await ok(mesh, CHAT_S, AM, c.body_for(OC, [c.user("go")], tools=TOOLS[OC]))
    deltas = chat_tool_deltas(ans)
    first, later = deltas[0], deltas[1:]
    assert first["index"] == 0
    assert first["id"]
    assert first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    assert all(set(d) == {"index", "function"} and set(d["function"]) == {"arguments"} for d in later)
    assert "".join(d["function"]["arguments"] for d in later) == TRICKY_JSON
    assert ans.stop_raw == "tool_calls"


async def test_case_37_split_id_name_and_escape_make_one_anthropic_tool_block(mesh: Mesh) -> None:
    fragments = split_at_escape(TRICKY_JSON, 4)
    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "content": ""},
        {"tool_calls": [{"index": 0, "id": "call_37", "type": "function"}]},
        {"tool_calls": [{"index": 0, "function": {"name": "get_weather", "arguments": ""}}]},
        *({"tool_calls": [{"index": 0, "function": {"arguments": f}}]} for f in fragments),
    ]
    mesh.fakes[OC].default = raw.oc_stream(deltas, "tool_calls")
    ans = await ok(mesh, MESSAGES_S, OC, c.body_for(AM, [c.user("go")], tools=TOOLS[AM]))
    starts = [e for e in ans.raw if e["type"] == "content_block_start"]
    assert len(starts) == 1
    assert starts[0]["content_block"]["id"] == "call_37"
    assert starts[0]["content_block"]["name"] == "get_weather"
    (block,) = ans.extra["blocks"]
    assert block["raw_json"] == TRICKY_JSON
    assert ans.calls[0].arguments == TRICKY_ARGS
    assert ans.stop_raw == "tool_use"


async def test_case_38_interleaved_chat_calls_become_sequential_anthropic_blocks(mesh: Mesh) -> None:
    mesh.fakes[OC].default = Reply(
        text="",
        tool_calls=[("get_weather", {"city": "A"}), ("get_time", {"zone": "B"})],
        interleave_tool_calls=True,
    )
    ans = await ok(mesh, MESSAGES_S, OC, c.body_for(AM, [c.user("go")], tools=TOOLS[AM]))
    # the reader asserted: blocks never interleave, indices 0..n; every block's JSON parsed
    assert [(call.name, call.arguments) for call in ans.calls] == [
        ("get_weather", {"city": "A"}),
        ("get_time", {"zone": "B"}),
    ]


async def test_case_39_two_gemini_calls_in_one_chunk_become_two_anthropic_blocks(mesh: Mesh) -> None:
    mesh.fakes[GG].default = Reply(
        text="", tool_calls=[("get_weather", {"city": "A"}), ("get_weather", {"city": "B"})]
    )
    ans = await ok(mesh, MESSAGES_S, GG, c.body_for(AM, [c.user("go")], tools=TOOLS[AM]))
    blocks = ans.extra["blocks"]
    assert [b["type"] for b in blocks] == ["tool_use", "tool_use"]
    for i, args in enumerate(({"city": "A"}, {"city": "B"})):
        deltas = [e for e in ans.raw if e["type"] == "content_block_delta" and e["index"] == i]
        assert [json.loads(d["delta"]["partial_json"]) for d in deltas if d["delta"]["partial_json"]] == [
            args
        ]
    assert ans.stop_raw == "tool_use"


async def test_case_40_streamed_anthropic_tool_use_is_one_whole_gemini_function_call(mesh: Mesh) -> None:
    mesh.fakes[AM].default = Reply(text="", tool_calls=[("get_weather", {"city": "Paris"})], args_chunks=6)
    ans = await ok(mesh, GEMINI_S, AM, c.body_for(GG, [c.user("go")], tools=TOOLS[GG]))
    (part,) = ans.extra["call_parts"]
    assert part["functionCall"]["args"] == {"city": "Paris"}


async def test_case_41_responses_argument_deltas_become_chat_deltas_under_the_call_id(mesh: Mesh) -> None:
    mesh.fakes[OR].default = Reply(text="", tool_calls=[("get_weather", {"city": "Paris"})], args_chunks=4)
    ans = await ok(mesh, CHAT_S, OR, c.body_for(OC, [c.user("go")], tools=TOOLS[OC]))
    (call,) = ans.calls
    assert call.id.startswith("call_"), "the call id, not the fc_ item id"  # type: ignore[union-attr]
    assert len(chat_tool_deltas(ans)) >= 4, "argument deltas are forwarded as they come"


async def test_case_42_chat_tool_call_streams_as_ordered_responses_events(mesh: Mesh) -> None:
    mesh.fakes[OC].default = Reply(text="", tool_calls=[("get_weather", {"city": "Paris"})], args_chunks=3)
    ans = await ok(mesh, RESPONSES_S, OC, c.body_for(OR, [c.user("go")], tools=TOOLS[OR]))
    kinds = [e["type"] for e in ans.raw]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    body = kinds[2:-1]
    assert body[0] == "response.output_item.added"
    assert set(body[1:-2]) == {"response.function_call_arguments.delta"}
    assert body[-2:] == ["response.function_call_arguments.done", "response.output_item.done"]
    assert kinds[-1] == "response.completed"
    assert ans.raw[-1]["response"]["usage"] is not None
    assert [e["sequence_number"] for e in ans.raw] == list(range(len(kinds)))
    done = next(e for e in ans.raw if e["type"] == "response.output_item.done")["item"]
    assert done["arguments"] == json.dumps({"city": "Paris"})


@pytest.mark.parametrize("mode", [CHAT_S, RESPONSES_S], ids=str)
async def test_case_43_max_tokens_inside_a_tool_use_is_a_truncation(mesh: Mesh, mode: Mode) -> None:
    block = {"type": "tool_use", "id": "toolu_43", "name": "get_weather", "input": {}}
    mesh.fakes[AM].default = raw.am_stream([(block, raw.json_deltas('{"city": "Pa'))], "max_tokens")
    ans = await ok(mesh, mode, AM, c.body_for(mode.client, [c.user("go")], tools=TOOLS[mode.client]))
    assert ans.stop == "length"
    if mode.client == OC:
        assert "".join(d["function"].get("arguments", "") for d in chat_tool_deltas(ans)) == '{"city": "Pa'
    else:
        assert ans.raw[-1]["type"] == "response.incomplete"
        assert ans.raw[-1]["response"]["incomplete_details"]["reason"] == "max_output_tokens"
        streamed = "".join(
            e["delta"] for e in ans.raw if e["type"] == "response.function_call_arguments.delta"
        )
        assert streamed == '{"city": "Pa', "arguments are not silently rewritten"


# ----------------------------------------------------------------------------------------------------------
# thinking / reasoning (44-53)
# ----------------------------------------------------------------------------------------------------------


async def test_case_44_anthropic_thinking_streams_as_chat_reasoning_content(mesh: Mesh) -> None:
    mesh.fakes[AM].default = Reply(
        text="Answer.", thinking="step one, step two", signature="EqSig44", chunks=3
    )
    ans = await ok(mesh, CHAT_S, AM)
    chunks = [e["choices"][0]["delta"] for e in ans.raw if e.get("choices")]
    reasoning_at = [i for i, d in enumerate(chunks) if d.get("reasoning_content")]
    content_at = [i for i, d in enumerate(chunks) if d.get("content")]
    assert len(reasoning_at) == 3
    assert max(reasoning_at) < min(content_at), "reasoning first, then the answer"
    assert ans.reasoning == "step one, step two"
    assert "EqSig44" not in json.dumps([d.get("content") for d in chunks])
    assert any("EqSig44" in s for s in ans.signatures), "the signature rides only in the extension field"


async def test_case_45_chat_reasoning_with_signature_rebuilds_anthropic_thinking_first(mesh: Mesh) -> None:
    mesh.fakes[AM].default = Reply(
        text="", thinking="plan", signature="EqSig45", tool_calls=[("get_weather", {"city": "A"})]
    )
    body = c.body_for(OC, [c.user("go")], tools=TOOLS[OC], reasoning_effort="medium")
    first = await ok(mesh, CHAT, AM, body)
    (call,) = first.calls
    assistant = first.raw["choices"][0]["message"]
    history = {
        "role": "assistant",
        "content": None,
        "tool_calls": assistant["tool_calls"],
        "reasoning_content": assistant["reasoning_content"],
        "thinking_blocks": assistant["thinking_blocks"],
    }
    mesh.fakes[AM].default = Reply(text="done")
    body2 = {
        **body,
        "messages": [*body["messages"], history, {"role": "tool", "tool_call_id": call.id, "content": "18C"}],
    }
    await ok(mesh, CHAT, AM, body2)
    sent = mesh.last(AM).json  # checked: thinking rules
    blocks = sent["messages"][1]["content"]
    assert [b["type"] for b in blocks] == ["thinking", "tool_use"]
    assert blocks[0]["signature"] == "EqSig45"
    assert sent["thinking"]["type"] in ("enabled", "adaptive"), "accepted with thinking on"


async def test_case_46_anthropic_passthrough_echoes_thinking_byte_exact(mesh: Mesh) -> None:
    history = [
        {"type": "thinking", "thinking": "first", "signature": "EqA=="},
        {"type": "thinking", "thinking": "", "signature": "EqEmpty=="},
        {"type": "redacted_thinking", "data": "RedactedBlob=="},
        {"type": "text", "text": "hello"},
    ]
    body = {
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": history},
            {"role": "user", "content": "again"},
        ],
    }
    await ok(mesh, MESSAGES, AM, body)
    assert mesh.last(AM).json["messages"][1]["content"] == history


async def test_case_47_claude_signatures_never_become_gemini_thought_signatures(mesh: Mesh) -> None:
    body = {
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "one", "signature": "EqClaude1"},
                    {"type": "tool_use", "id": "toolu_1", "name": "a", "input": {}},
                    {"type": "tool_use", "id": "toolu_2", "name": "b", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "y"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "two", "signature": "EqClaude2"},
                    {"type": "tool_use", "id": "toolu_3", "name": "a", "input": {}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_3", "content": "z"}]},
        ],
    }
    await ok(mesh, MESSAGES, GG, body)
    sent = mesh.last(GG).json
    assert "EqClaude" not in json.dumps(sent)
    model_turns = [ct for ct in sent["contents"] if ct["role"] == "model"]
    for turn in model_turns:
        calls = [p for p in turn["parts"] if "functionCall" in p]
        assert calls[0]["thoughtSignature"] == "skip_thought_signature_validator"
        assert all("thoughtSignature" not in p for p in calls[1:])


async def test_case_48_gemini_thoughts_and_empty_part_signature_reach_anthropic_and_come_back(
    mesh: Mesh,
) -> None:
    mesh.fakes[GG].default = Reply(
        text="", thinking="think", signature="R0dTaWc0OA==", tool_calls=[("get_weather", {"city": "A"})]
    )
    body = c.body_for(
        AM,
        [c.user("go")],
        tools=TOOLS[AM],
        thinking={"type": "enabled", "budget_tokens": 2048},
        max_tokens=4096,
    )
    ans = await ok(mesh, MESSAGES_S, GG, body)
    thinking = [b for b in ans.extra["blocks"] if b["type"] == "thinking"]
    assert thinking
    assert thinking[0]["thinking"] == "think"
    assert any(b.get("signature") for b in thinking)
    (call,) = ans.calls
    # next turn: the client echoes its blocks; Gemini gets its signature back on the functionCall part
    mesh.fakes[GG].default = Reply(text="done")
    assistant_blocks = [{k: v for k, v in b.items() if k != "raw_json"} for b in ans.extra["blocks"]]
    body2 = {
        **body,
        "messages": [
            *body["messages"],
            {"role": "assistant", "content": assistant_blocks},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]},
        ],
    }
    await ok(mesh, MESSAGES, GG, body2)
    sent = mesh.last(GG).json
    (fc,) = [p for ct in sent["contents"] for p in ct["parts"] if "functionCall" in p]
    assert fc["thoughtSignature"] == "R0dTaWc0OA=="

    # signature on an empty-text part (no thought text, no call): a signature_delta still reaches the client
    mesh.fakes[GG].default = Reply(text="", signature="RW1wdHk=")
    ans = await ok(mesh, MESSAGES_S, GG, body)
    deltas = [e["delta"] for e in ans.raw if e["type"] == "content_block_delta"]
    assert any(d["type"] == "signature_delta" for d in deltas)


async def test_case_49_gemini_signature_survives_a_chat_client_that_keeps_only_standard_fields(
    mesh: Mesh,
) -> None:
    mesh.fakes[GG].default = Reply(
        text="",
        signature="R0dTaWc0OQ==",
        tool_calls=[("get_weather", {"city": "A"}), ("get_weather", {"city": "B"})],
    )
    body = c.body_for(OC, [c.user("go")], tools=TOOLS[OC])
    ans = await ok(mesh, CHAT, GG, body)
    standard = [
        {"id": tc["id"], "type": "function", "function": tc["function"]}
        for tc in ans.raw["choices"][0]["message"]["tool_calls"]
    ]
    mesh.fakes[GG].default = Reply(text="done")
    body2 = {
        **body,
        "messages": [
            *body["messages"],
            {"role": "assistant", "content": None, "tool_calls": standard},
            *({"role": "tool", "tool_call_id": tc["id"], "content": "ok"} for tc in standard),
        ],
    }
    await ok(mesh, CHAT, GG, body2)
    calls = [p for p in mesh.last(GG).json["contents"][1]["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] == "R0dTaWc0OQ=="
    assert "thoughtSignature" not in calls[1], "only the first call of a parallel set"


async def test_case_50_responses_reasoning_reaches_anthropic_and_goes_back_without_rs_id(mesh: Mesh) -> None:
    mesh.fakes[OR].default = Reply(text="Hi.", thinking="summary text", signature="gAAAAAencrypted50")
    body = c.body_for(
        AM, [c.user("hi")], thinking={"type": "enabled", "budget_tokens": 2048}, max_tokens=4096
    )
    ans = await ok(mesh, MESSAGES_S, OR, body)
    (thinking,) = [b for b in ans.extra["blocks"] if b["type"] == "thinking"]
    assert thinking["thinking"] == "summary text"
    assert thinking["signature"]

    blocks = [{k: v for k, v in b.items() if k != "raw_json"} for b in ans.extra["blocks"]]
    body2 = {
        **body,
        "messages": [
            *body["messages"],
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": "more"},
        ],
    }
    await ok(mesh, MESSAGES, OR, body2)
    sent = mesh.last(OR).json
    (item,) = [i for i in sent["input"] if i.get("type") == "reasoning"]
    assert item["encrypted_content"] == "gAAAAAencrypted50"
    assert "id" not in item
    assert sent.get("store") is False


async def test_case_51_claude_thinking_is_dropped_for_responses_and_budget_maps_to_effort(mesh: Mesh) -> None:
    body = {
        "max_tokens": 16000,
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "EqClaude51"},
                    {"type": "text", "text": "hello"},
                ],
            },
            {"role": "user", "content": "again"},
        ],
    }
    await ok(mesh, MESSAGES, OR, body)
    sent = mesh.last(OR).json
    assert "EqClaude51" not in json.dumps(sent)
    assert sent["reasoning"]["effort"] in ("low", "medium", "high", "xhigh")
    assert sent["store"] is False
    assert "reasoning.encrypted_content" in sent["include"]


async def test_case_52_chat_effort_to_gemini_budget_or_level_never_both(mesh: Mesh) -> None:
    body = c.body_for(OC, [c.user("hi")], reasoning_effort="low")
    await ok(mesh, CHAT, GG, body, model="gemini-2.5-flash")
    config = mesh.last(GG).json["generationConfig"]["thinkingConfig"]
    assert "thinkingBudget" in config
    assert "thinkingLevel" not in config
    assert config["includeThoughts"] is True
    await ok(mesh, CHAT, GG, body, model="gemini-3.5-flash")
    config = mesh.last(GG).json["generationConfig"]["thinkingConfig"]
    assert config.get("thinkingLevel", "").upper() == "LOW"
    assert "thinkingBudget" not in config


async def test_case_53_deepseek_reasoning_reaches_anthropic_and_is_replayed_to_deepseek(mesh: Mesh) -> None:
    fake = mesh.fakes[OC]
    mesh.gw.add_account("deepseek", base_url=fake.base_url, key="sk-deepseek-key")
    await mesh.gw.reload()
    fake.default = Reply(text="", thinking="deep thoughts", tool_calls=[("get_weather", {"city": "A"})])
    body = c.body_for(AM, [c.user("go")], tools=TOOLS[AM])
    ans = await _deepseek(mesh, body, stream=True)
    thinking = [b for b in ans.extra["blocks"] if b["type"] == "thinking"]
    assert [b["thinking"] for b in thinking] == ["deep thoughts"]
    (call,) = ans.calls

    fake.default = Reply(text="done")
    blocks = [{k: v for k, v in b.items() if k != "raw_json"} for b in ans.extra["blocks"]]
    body2 = {
        **body,
        "messages": [
            *body["messages"],
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]},
        ],
    }
    await _deepseek(mesh, body2, stream=False)
    assistant = next(m for m in mesh.last(OC).json["messages"] if m["role"] == "assistant")
    assert assistant["reasoning_content"] == "deep thoughts"


async def _deepseek(mesh: Mesh, body: dict[str, Any], *, stream: bool) -> c.Answer:
    mode = Mode(AM, stream)
    ans = await c.send(mesh.gw.http, mode, "deepseek/deepseek-v4-pro", body)
    assert ans.status == 200, ans.raw
    return ans


# ----------------------------------------------------------------------------------------------------------
# usage (54-58)
# ----------------------------------------------------------------------------------------------------------


async def test_case_54_anthropic_cache_usage_for_chat_and_responses(mesh: Mesh) -> None:
    mesh.fakes[AM].default = Reply(text="ok", usage=Usage(input=1050, output=30, cached=900, cache_write=50))
    ans = await ok(mesh, CHAT, AM)
    usage = ans.raw["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (1050, 30, 1080)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 900
    ans = await ok(mesh, RESPONSES, AM)
    usage = ans.raw["usage"]
    assert (usage["input_tokens"], usage["input_tokens_details"]["cached_tokens"]) == (1050, 900)
    assert mesh.fakes[AM].requests[-1].json["messages"]  # sanity: the Anthropic fake answered both


async def test_case_55_chat_usage_for_anthropic_subtracts_the_cache(mesh: Mesh) -> None:
    mesh.fakes[OC].default = Reply(text="ok", usage=Usage(input=1000, output=50, cached=800, reasoning=20))
    ans = await ok(mesh, MESSAGES, OC)
    usage = ans.raw["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"], usage["output_tokens"]) == (200, 800, 50)


async def test_case_56_gemini_usage_for_chat_and_anthropic(mesh: Mesh) -> None:
    mesh.fakes[GG].default = Reply(text="ok", usage=Usage(input=1000, output=100, cached=600, reasoning=60))
    ans = await ok(mesh, CHAT, GG)
    usage = ans.raw["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (1000, 100)
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 60
    assert usage["prompt_tokens_details"]["cached_tokens"] == 600
    ans = await ok(mesh, MESSAGES, GG)
    usage = ans.raw["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"], usage["output_tokens"]) == (
        400,
        600,
        100,
    )


@pytest.mark.parametrize("upstream", c.FORMATS)
async def test_case_57_chat_usage_chunk_only_when_asked(mesh: Mesh, upstream: str) -> None:
    mesh.fakes[upstream].default = Reply(text="ok", usage=Usage(input=20, output=5))
    asked = await ok(
        mesh, CHAT_S, upstream, c.body_for(OC, [c.user("hi")], stream_options={"include_usage": True})
    )
    last = asked.raw[-1]
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 20
    assert all(e.get("usage") is None for e in asked.raw[:-1])
    plain = await ok(mesh, CHAT_S, upstream)
    assert all(e.get("choices") for e in plain.raw), "no usage chunk without include_usage"
    assert plain.usage is None


@pytest.mark.parametrize("upstream", c.FORMATS)
async def test_case_58_anthropic_stream_usage_placement(mesh: Mesh, upstream: str) -> None:
    mesh.fakes[upstream].default = Reply(text="ok", usage=Usage(input=20, output=5))
    ans = await ok(mesh, MESSAGES_S, upstream)
    assert "usage" in ans.raw[0]["message"]
    delta = next(e for e in ans.raw if e["type"] == "message_delta")
    assert delta["usage"]["output_tokens"] == 5, "message_delta carries the cumulative output"
    assert ans.raw[-1]["type"] == "message_stop"
    assert ans.usage is not None
    assert ans.usage["input"] == 20


# ----------------------------------------------------------------------------------------------------------
# finish reasons (59-63)
# ----------------------------------------------------------------------------------------------------------


async def test_case_59_gemini_max_tokens_in_every_client_format(mesh: Mesh) -> None:
    mesh.fakes[GG].default = Reply(text="cut", stop_reason="length")
    assert (await ok(mesh, CHAT, GG)).stop_raw == "length"
    assert (await ok(mesh, MESSAGES, GG)).stop_raw == "max_tokens"
    assert (await ok(mesh, RESPONSES, GG)).stop_raw == ("incomplete", "max_output_tokens")


async def test_case_60_gemini_safety_and_prompt_block_are_content_filter_never_empty_success(
    mesh: Mesh,
) -> None:
    mesh.fakes[GG].default = Reply(text="", stop_reason="content_filter")
    assert (await ok(mesh, CHAT, GG)).stop_raw == "content_filter"
    assert (await ok(mesh, MESSAGES, GG)).stop_raw == "refusal"
    assert (await ok(mesh, RESPONSES, GG)).stop_raw == ("incomplete", "content_filter")

    blocked = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-flash",
    }
    for mode, expected in (
        (CHAT, "content_filter"),
        (MESSAGES, "refusal"),
        (RESPONSES_S, None),
        (CHAT_S, None),
    ):
        mesh.fakes[GG].default = (
            raw.json_reply(blocked) if not mode.stream else raw.sse_reply([(None, blocked)])
        )
        ans = await ok(mesh, mode, GG)
        assert ans.stop == "content_filter", (mode, ans.stop_raw)
        if expected:
            assert ans.stop_raw == expected


async def test_case_61_chat_named_tool_choice_stop_with_calls_is_a_tool_use(mesh: Mesh) -> None:
    mesh.fakes[OC].default = Reply(text="", tool_calls=[("get_weather", {"city": "A"})], stop_reason="stop")
    assert (
        await ok(mesh, MESSAGES, OC, c.body_for(AM, [c.user("go")], tools=TOOLS[AM]))
    ).stop_raw == "tool_use"
    gem = await ok(mesh, GEMINI, OC, c.body_for(GG, [c.user("go")], tools=TOOLS[GG]))
    assert gem.stop_raw == "STOP"
    assert gem.calls
    resp = await ok(mesh, RESPONSES, OC, c.body_for(OR, [c.user("go")], tools=TOOLS[OR]))
    assert [i["type"] for i in resp.raw["output"]] == ["function_call"]


async def test_case_62_anthropic_stop_sequence(mesh: Mesh) -> None:
    body = raw.am_message([{"type": "text", "text": "1, 2, 3"}], "stop_sequence", stop_sequence="4")
    mesh.fakes[AM].default = raw.json_reply(body)
    assert (await ok(mesh, CHAT, AM)).stop_raw == "stop"
    assert (await ok(mesh, GEMINI, AM)).stop_raw == "STOP"
    assert (await ok(mesh, RESPONSES, AM)).stop_raw == ("completed", None)
    ans = await ok(mesh, MESSAGES, AM)
    assert (ans.stop_raw, ans.extra["stop_sequence"]) == ("stop_sequence", "4")


async def test_case_63_anthropic_refusal_with_stop_details(mesh: Mesh) -> None:
    """Policy: the refusal's words are the model's text block, kept as text; the stop becomes each format's
    safety stop (OC content_filter, OR incomplete/content_filter, GG SAFETY). stop_details has no slot."""
    details = {"type": "refusal", "category": "cyber", "explanation": "Declined."}
    body = raw.am_message(
        [{"type": "text", "text": "I can't help with that."}], "refusal", stop_details=details
    )
    mesh.fakes[AM].default = raw.json_reply(body)
    chat = await ok(mesh, CHAT, AM)
    assert (chat.stop_raw, chat.text) == ("content_filter", "I can't help with that.")
    resp = await ok(mesh, RESPONSES, AM)
    assert (resp.stop_raw, resp.text) == (("incomplete", "content_filter"), "I can't help with that.")
    gem = await ok(mesh, GEMINI, AM)
    assert (gem.stop_raw, gem.text) == ("SAFETY", "I can't help with that.")


# ----------------------------------------------------------------------------------------------------------
# errors and limits (66-71)
# ----------------------------------------------------------------------------------------------------------


async def test_case_66_anthropic_overload_in_each_client_format(mesh: Mesh) -> None:
    mesh.fakes[AM].default = Reply(status=529, error="Overloaded", headers={"retry-after": "3"})
    expected = {
        CHAT: (503, "overloaded"),
        RESPONSES: (503, "overloaded"),
        GEMINI: (503, "UNAVAILABLE"),
        MESSAGES: (529, "overloaded_error"),
    }
    for mode, (status, kind) in expected.items():
        ans = await mesh.send(mode, AM, c.body_for(mode.client, [c.user("hi")]))
        assert ans.status == status, (mode, ans.raw)
        assert ans.headers.get("retry-after") == "3"
        assert ans.error is not None
        assert kind in (ans.error["type"], ans.error.get("code")), ans.error


async def test_case_67_chat_rate_limit_headers_become_anthropic_retry_after_seconds(mesh: Mesh) -> None:
    mesh.fakes[OC].default = Reply(
        status=429,
        error="Rate limit reached",
        headers={"retry-after-ms": "2500", "x-ratelimit-reset-requests": "6s"},
    )
    ans = await mesh.send(MESSAGES, OC, c.body_for(AM, [c.user("hi")]))
    assert ans.status == 429
    assert ans.error is not None
    assert ans.error["type"] == "rate_limit_error"
    assert ans.headers["retry-after"] == "3"


@pytest.mark.parametrize("mode", [CHAT, MESSAGES], ids=str)
async def test_case_68_gemini_retry_info_becomes_retry_after(mesh: Mesh, mode: Mode) -> None:
    mesh.fakes[GG].default = Reply(status=429, error="Resource has been exhausted", retry_delay="17s")
    ans = await mesh.send(mode, GG, c.body_for(mode.client, [c.user("hi")]))
    assert ans.status == 429
    assert ans.headers["retry-after"] == "17"


OVERFLOWS = {
    AM: Reply(status=400, error="prompt is too long: 210000 tokens > 200000 maximum"),
    GG: Reply(
        status=400,
        error="The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
    ),
    OC: Reply(
        status=400,
        error="This model's maximum context length is 128000 tokens.",
        error_code="context_length_exceeded",
    ),
    OR: Reply(
        status=400,
        error="Your input exceeds the context window of this model.",
        error_code="context_length_exceeded",
    ),
}


@pytest.mark.parametrize("upstream", c.FORMATS)
async def test_case_69_context_overflow_is_context_length_exceeded_for_openai_clients(
    mesh: Mesh, upstream: str
) -> None:
    mesh.fakes[upstream].default = OVERFLOWS[upstream]
    ans = await mesh.send(CHAT, upstream, c.body_for(OC, [c.user("hi")]))
    assert ans.status == 400
    assert ans.error is not None
    assert ans.error["code"] == "context_length_exceeded"
    ans = await mesh.send(RESPONSES_S, upstream, c.body_for(OR, [c.user("hi")]))
    assert ans.error is not None
    assert ans.error["code"] == "context_length_exceeded", "Codex classifies on this code"


@pytest.mark.parametrize("mode", [CHAT_S, RESPONSES_S, GEMINI_S, Mode(GG, True, array=True)], ids=str)
async def test_case_71_anthropic_pings_are_not_surfaced(mesh: Mesh, mode: Mode) -> None:
    mesh.fakes[AM].default = Reply(text="one two three", chunks=3, ping_every=1)
    ans = await ok(mesh, mode, AM, c.body_for(mode.client, [c.user("hi")]))
    assert ans.text == "one two three"
    assert "ping" not in json.dumps(ans.raw)


async def test_case_71_pings_pass_through_to_anthropic_clients_harmlessly(mesh: Mesh) -> None:
    mesh.fakes[AM].default = Reply(text="one two three", chunks=3, ping_every=2)
    ans = await ok(mesh, MESSAGES_S, AM)
    assert ans.text == "one two three"


# ----------------------------------------------------------------------------------------------------------
# case 70, the corners: pipeline bugs found here (strict xfails; pipeline.py is not this suite's to fix)
# ----------------------------------------------------------------------------------------------------------


def cut_stream(fmt: str, drop: int) -> Reply:
    """The fake's stream for a short text with its last `drop` frames missing, ended by a clean EOF."""
    frames = fake_render.render(
        Reply(text="one two three", chunks=3), fmt, True, RenderContext("m", True)
    ).frames
    return raw.sse_bytes(b"".join(frames[:-drop]))


# frames that carry the end of each fake stream: OC finish + usage + [DONE]; OR response.completed;
# AM message_delta + message_stop; GG the chunk with finishReason
END_FRAMES = {OC: 3, OR: 1, AM: 2, GG: 1}
CUT_PAIRS = [(CHAT_S, AM), (RESPONSES_S, GG), (MESSAGES_S, OC), (GEMINI_S, OR)]


@pytest.mark.parametrize(("mode", "upstream"), CUT_PAIRS, ids=[f"{m}-{u}" for m, u in CUT_PAIRS])
async def test_case_70_a_stream_cut_before_its_end_is_not_a_complete_answer(
    mesh: Mesh, mode: Mode, upstream: str
) -> None:
    mesh.fakes[upstream].default = cut_stream(upstream, END_FRAMES[upstream])
    ans = await mesh.send(mode, upstream, c.body_for(mode.client, [c.user("hi")]))
    assert ans.status in (200, 502)
    if ans.status == 200:
        assert ans.error_in_stream, f"reported as a complete answer: {ans.text!r}, stop {ans.stop}"


async def test_case_70_responses_passthrough_failure_continues_the_sequence_numbers(mesh: Mesh) -> None:
    mesh.fakes[OR].default = Reply(text="one two three four", chunks=4, reset_after_chunks=6)
    ans = await mesh.send(RESPONSES_S, OR, c.body_for(OR, [c.user("hi")]))  # the reader checks the numbering
    assert ans.error_in_stream


async def test_gemini_stream_without_alt_sse_to_a_gemini_upstream_is_a_json_array(mesh: Mesh) -> None:
    mesh.fakes[GG].default = Reply(text="one two three", chunks=3)
    ans = await mesh.send(Mode(GG, True, array=True), GG, c.body_for(GG, [c.user("hi")]))
    assert ans.text == "one two three"

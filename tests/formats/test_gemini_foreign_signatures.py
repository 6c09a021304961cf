"""Reasoning signatures minted by another provider, through a Gemini client and back (formats.md §4 case 2).

Gemini CLI drops `thought: true` parts from its history, so a foreign signature must reach the client on
a part it keeps (a functionCall or a non-thought text part, where real Gemini puts its own) and carry the
thinking text with it, so the next request can rebuild the block the minting provider validates.
"""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute import JsonObj
from omniroute_providers.formats import anthropic as am
from omniroute_providers.formats import gemini as g
from omniroute_providers.ir import (
    ChatResponse,
    Context,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    response_events,
)
from tests.formats.test_gemini import (
    SIG,
    assert_valid_response,
    client_ctx,
    gemini_ctx,
    render_stream,
    sse_objects,
)

THOUGHT = "The user wants the weather; the tool knows it."
CLAUDE_SIG = "EqQBCkgIARABGAIiQL2nclaude+signature/bytes=="  # opaque, base64-like, like a real one
T1 = "VDE="  # a Gemini thought-part signature (base64, like the SDK checks)


def claude_turn(*after: Part) -> ChatResponse:
    """An Anthropic response: a signed thinking block, then `after`."""
    return ChatResponse(
        id="msg_1",
        model="claude",
        parts=[ThinkingPart(THOUGHT, signature=CLAUDE_SIG, origin="anthropic"), *after],
        stop_reason="tool_calls" if any(isinstance(p, ToolCallPart) for p in after) else "stop",
    )


CALL = ToolCallPart(id="toolu_1", name="get_weather", arguments='{"city":"Paris"}')


def json_parts(resp: ChatResponse, ctx: Context | None = None) -> list[JsonObj]:
    body = g.render_response(resp, ctx or client_ctx())
    assert_valid_response(body)
    parts: list[JsonObj] = body["candidates"][0]["content"]["parts"]
    return parts


def stream_parts(resp: ChatResponse, ctx: Context | None = None) -> list[JsonObj]:
    chunks = sse_objects(render_stream(response_events(resp), ctx or client_ctx()))
    for c in chunks:
        assert_valid_response(c)
    return [p for c in chunks for p in c["candidates"][0].get("content", {}).get("parts", [])]


def gemini_cli_history(model_parts: list[JsonObj], *, result: bool) -> JsonObj:
    """The next request as Gemini CLI writes it: thought parts gone, the rest of the model turn kept."""
    kept = [p for p in model_parts if not p.get("thought")]
    contents: list[JsonObj] = [
        {"role": "user", "parts": [{"text": "weather in Paris?"}]},
        {"role": "model", "parts": kept},
    ]
    if result:
        fr = {"name": "get_weather", "id": "toolu_1", "response": {"output": "18C"}}
        contents.append({"role": "user", "parts": [{"functionResponse": fr}]})
    else:
        contents.append({"role": "user", "parts": [{"text": "thanks"}]})
    return {"contents": contents}


def to_anthropic(body: JsonObj) -> JsonObj:
    req = g.parse_request(body)
    req.model = "anthropic/claude"
    ctx = Context(
        client_format="gemini", upstream_format="anthropic", provider="anthropic", upstream_model="claude"
    )
    return am.render_request(req, ctx)


def assistant_blocks(out: JsonObj) -> list[JsonObj]:
    (assistant,) = [m for m in out["messages"] if m["role"] == "assistant"]
    blocks: list[JsonObj] = assistant["content"]
    return blocks


# ----------------------------------------------------------------------------------------------------------
# (a) the signature rides the functionCall, never a thought part
# ----------------------------------------------------------------------------------------------------------


def test_claude_signature_before_a_tool_call_rides_the_function_call_part() -> None:
    resp = claude_turn(CALL)
    for parts in (json_parts(resp), stream_parts(resp)):
        thought, call = parts
        assert thought == {"text": THOUGHT, "thought": True}, "the thought is shown, without a signature"
        assert call["functionCall"]["name"] == "get_weather"
        token = base64.b64decode(call["thoughtSignature"]).decode()
        assert token == 'omr1.anthropic.[{"s":"' + CLAUDE_SIG + '","t":"' + THOUGHT + '"}]'


# ----------------------------------------------------------------------------------------------------------
# (b) Gemini CLI's next request rebuilds the thinking block before the tool_use
# ----------------------------------------------------------------------------------------------------------


def test_gemini_cli_history_without_thoughts_gives_anthropic_its_thinking_block_back() -> None:
    resp = claude_turn(CALL)
    for parts in (json_parts(resp), stream_parts(resp)):
        blocks = assistant_blocks(to_anthropic(gemini_cli_history(parts, result=True)))
        assert blocks[0] == {"type": "thinking", "thinking": THOUGHT, "signature": CLAUDE_SIG}
        assert [b["type"] for b in blocks] == ["thinking", "tool_use"]


def test_a_client_that_keeps_thought_parts_gets_one_thinking_block_not_two() -> None:
    # google-genai keeps the content verbatim: the shown thought and the carrier both come back
    parts = json_parts(claude_turn(CALL))
    req = g.parse_request(
        {
            "contents": [
                {"role": "user", "parts": [{"text": "weather in Paris?"}]},
                {"role": "model", "parts": parts},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {}}}]},
            ]
        }
    )
    assert req.messages[1].parts[0] == ThinkingPart(THOUGHT, signature=CLAUDE_SIG, origin="anthropic")
    assert [type(p) for p in req.messages[1].parts] == [ThinkingPart, ToolCallPart]


# ----------------------------------------------------------------------------------------------------------
# (c) no tool call: a text part carries it; nothing after the thinking: an empty text part does
# ----------------------------------------------------------------------------------------------------------


def test_claude_signature_of_a_text_answer_rides_the_text_and_comes_back_first() -> None:
    resp = claude_turn(TextPart("It is 18C."))
    for parts in (json_parts(resp), stream_parts(resp)):
        assert parts[0] == {"text": THOUGHT, "thought": True}
        assert parts[1]["text"] == "It is 18C."
        assert base64.b64decode(parts[1]["thoughtSignature"]).startswith(b"omr1.anthropic.")
        blocks = assistant_blocks(to_anthropic(gemini_cli_history(parts, result=False)))
        assert blocks == [
            {"type": "thinking", "thinking": THOUGHT, "signature": CLAUDE_SIG},
            {"type": "text", "text": "It is 18C."},
        ]


def test_stream_ending_after_thinking_puts_the_signature_on_an_empty_text_part() -> None:
    # e.g. max_tokens hit while thinking: real Gemini also signs an otherwise empty part
    resp = claude_turn()
    resp.stop_reason = "length"
    for parts in (json_parts(resp), stream_parts(resp)):
        assert parts[0] == {"text": THOUGHT, "thought": True}
        assert parts[1]["text"] == ""
        assert "thought" not in parts[1], "a non-thought part, so Gemini CLI keeps it"
        req = g.parse_request(gemini_cli_history(parts, result=False))
        assert req.messages[1].parts == [ThinkingPart(THOUGHT, signature=CLAUDE_SIG, origin="anthropic")]


def test_the_carrier_goes_back_only_to_the_provider_that_minted_it() -> None:
    parts = json_parts(claude_turn(CALL))
    body = gemini_cli_history(parts, result=True)
    out = g.render_request(
        g.parse_request(body), Context(client_format="gemini", upstream_format="gemini", provider="gemini")
    )
    (call,) = out["contents"][1]["parts"]
    assert call["thoughtSignature"] == g.SKIP_SIGNATURE, "Claude's thinking never reaches Gemini"


# ----------------------------------------------------------------------------------------------------------
# (d) Gemini to Gemini: signatures byte-identical, on the parts they came on
# ----------------------------------------------------------------------------------------------------------


def test_gemini_signatures_between_gemini_client_and_upstream_are_untouched() -> None:
    resp = ChatResponse(
        id="r",
        model="gemini",
        parts=[
            ThinkingPart("weighing", signature=T1, origin="gemini"),
            TextPart("Calling."),
            ToolCallPart(id="c1", name="f", arguments="{}", signature=SIG, origin="gemini"),
        ],
    )
    want = [
        {"text": "weighing", "thought": True, "thoughtSignature": T1},
        {"text": "Calling."},
        {"functionCall": {"name": "f", "args": {}, "id": "c1"}, "thoughtSignature": SIG},
    ]
    assert json_parts(resp, gemini_ctx()) == want
    streamed = stream_parts(resp, gemini_ctx())
    assert [p.get("thoughtSignature") for p in streamed if "thoughtSignature" in p] == [T1, SIG]
    assert streamed[-1] == want[-1]
    # the history goes back as google-genai keeps it (thoughts included): the same bytes reach Gemini
    ask, more = {"role": "user", "parts": [{"text": "q"}]}, {"role": "user", "parts": [{"text": "go on"}]}
    body = {"contents": [ask, {"role": "model", "parts": want}, more]}
    out = g.render_request(g.parse_request(body), gemini_ctx())
    assert out["contents"][1]["parts"] == want


# ----------------------------------------------------------------------------------------------------------
# property: signed foreign blocks survive a thought-dropping client, in their order among the other parts
# ----------------------------------------------------------------------------------------------------------

_words = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
_claude_parts = st.lists(
    st.one_of(
        st.builds(
            ThinkingPart, text=st.one_of(st.just(""), _words), signature=_words, origin=st.just("anthropic")
        ),
        st.builds(ThinkingPart, signature=_words, redacted=st.just(True), origin=st.just("anthropic")),
        _words.map(TextPart),
        st.just("call"),
    ),
    max_size=6,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(_claude_parts, st.booleans())
def test_foreign_thinking_round_trips_through_a_client_that_drops_thoughts(
    items: list[Any], stream: bool
) -> None:
    parts: list[Part] = []
    for i, item in enumerate(items):
        parts.append(ToolCallPart(id=f"toolu_{i}", name="f", arguments='{"n":1}') if item == "call" else item)
    resp = ChatResponse(id="r", model="claude", parts=parts)
    rendered = stream_parts(resp) if stream else json_parts(resp)
    assert not any(p.get("thought") and "thoughtSignature" in p for p in rendered), "never on a thought"
    contents: list[JsonObj] = [{"role": "user", "parts": [{"text": "q"}]}]
    kept = [p for p in rendered if not p.get("thought")]
    if kept:
        contents.append({"role": "model", "parts": kept})
    contents.append({"role": "user", "parts": [{"text": "next"}]})
    back = [
        p for m in g.parse_request({"contents": contents}).messages if m.role == "assistant" for p in m.parts
    ]
    assert back == parts, "same blocks, same order, text and signature intact"

"""The official SDKs as clients of the gateway, each reading an answer that a fake upstream of a *different*
wire format produced: openai (Chat, streaming, tools, Responses create and stream), anthropic (messages,
streaming, tools, thinking), google-genai (generate_content and its stream, on /v1 — google-genai 3.x's
default api_version — and on /v1beta).

The SDKs are synchronous, so each call runs in `trio.to_thread.run_sync` while the gateway and the fakes
run on trio. A google-genai Client closes its HTTP client when it is garbage collected, so every client
object stays referenced for the whole call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import anthropic
import openai
import pytest
import trio
from google import genai
from google.genai import types as gtypes

from tests.conftest import Harness
from tests.fakes.fixtures import MakeFake
from tests.fakes.reply import Reply, Usage
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.clients

T = TypeVar("T")

# upstream format -> (provider, model, fake prefix)
UPSTREAMS = {
    "openai-chat": ("openai", "gpt-4o-mini", "/v1"),
    "openai-responses": ("openai-responses", "gpt-4o-mini", "/v1"),
    "anthropic": ("anthropic", "claude-sonnet-4-6", "/v1"),
    "gemini": ("gemini", "gemini-2.5-flash", "/v1beta"),
}
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


async def upstream(
    gateway: Harness, make_fake_upstream: MakeFake, fmt: str, reply: Reply
) -> tuple[str, FakeUpstream]:
    """A fake upstream of `fmt` answering `reply`, with an account on it; returns (model string, fake)."""
    provider, model, prefix = UPSTREAMS[fmt]
    fake = await make_fake_upstream(prefix=prefix)
    fake.default = reply
    gateway.add_account(provider, base_url=fake.base_url, key=f"sk-{provider}-key")
    await gateway.reload()
    return f"{provider}/{model}", fake


async def in_thread(fn: Callable[[], T]) -> T:
    return await trio.to_thread.run_sync(fn)


def openai_client(gateway: Harness) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0)


def anthropic_client(gateway: Harness) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0)


def genai_client(gateway: Harness, api_version: str | None = None) -> genai.Client:
    options = gtypes.HttpOptions(base_url=gateway.url, api_version=api_version)
    return genai.Client(api_key=gateway.key, http_options=options)


# ----------------------------------------------------------------------------------------------------------
# openai
# ----------------------------------------------------------------------------------------------------------


async def test_openai_chat_reads_an_anthropic_answer(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    model, fake = await upstream(
        gateway,
        make_fake_upstream,
        "anthropic",
        Reply(text="Bonjour!", usage=Usage(input=30, output=4, cached=10)),
    )
    client = openai_client(gateway)
    completion = await in_thread(
        lambda: client.chat.completions.create(
            model=model, messages=[{"role": "system", "content": "terse"}, {"role": "user", "content": "hi"}]
        )
    )
    assert completion.choices[0].message.content == "Bonjour!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (30, 4)
    assert fake.requests[-1].json["system"] == [{"type": "text", "text": "terse"}]


async def test_openai_chat_stream_reads_a_gemini_stream(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    model, _ = await upstream(gateway, make_fake_upstream, "gemini", Reply(text="one two three", chunks=3))
    client = openai_client(gateway)

    def run() -> tuple[str, str | None, Any]:
        stream = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, finish, usage = "", None, None
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
        return text, finish, usage

    text, finish, usage = await in_thread(run)
    assert (text, finish) == ("one two three", "stop")
    assert usage is not None
    assert usage.prompt_tokens == 12


async def test_openai_chat_tool_round_trip_with_an_anthropic_upstream(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    model, fake = await upstream(
        gateway,
        make_fake_upstream,
        "anthropic",
        Reply(text="", tool_calls=[("get_weather", {"city": "Paris"})]),
    )
    client = openai_client(gateway)
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = await in_thread(
        lambda: client.chat.completions.create(model=model, messages=messages, tools=tools)
    )
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]

    fake.default = Reply(text="18C")
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    second = await in_thread(
        lambda: client.chat.completions.create(model=model, messages=messages, tools=tools)
    )
    assert second.choices[0].message.content == "18C"
    sent = fake.requests[-1].json["messages"]
    assert sent[1]["content"][0] == {
        "type": "tool_use",
        "id": call.id,
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert sent[2]["content"][0]["tool_use_id"] == call.id


async def test_openai_responses_create_reads_a_gemini_answer(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    model, _ = await upstream(
        gateway, make_fake_upstream, "gemini", Reply(text="Hi!", usage=Usage(input=40, output=9, reasoning=3))
    )
    client = openai_client(gateway)
    response = await in_thread(lambda: client.responses.create(model=model, instructions="terse", input="hi"))
    assert response.status == "completed"
    assert response.output_text == "Hi!"
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == 3


async def test_openai_responses_stream_reads_an_anthropic_tool_call(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    model, _ = await upstream(
        gateway,
        make_fake_upstream,
        "anthropic",
        Reply(
            text="Let me check.",
            thinking="need weather",
            signature="sig",
            tool_calls=[("get_weather", {"city": "Oslo"})],
        ),
    )
    client = openai_client(gateway)
    tools: Any = [{"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": False}]

    def run() -> tuple[list[str], Any]:
        with client.responses.stream(
            model=model, input="weather in Oslo?", tools=tools, reasoning={"effort": "low", "summary": "auto"}
        ) as stream:
            kinds = [str(event.type) for event in stream]
            return kinds, stream.get_final_response()

    kinds, final = await in_thread(run)
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in kinds
    assert final.output_text == "Let me check."
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Oslo"})
    reasoning = [item for item in final.output if item.type == "reasoning"]
    assert [s.text for s in reasoning[0].summary] == ["need weather"]


# ----------------------------------------------------------------------------------------------------------
# anthropic
# ----------------------------------------------------------------------------------------------------------


async def test_anthropic_messages_reads_an_openai_chat_answer(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    model, fake = await upstream(
        gateway,
        make_fake_upstream,
        "openai-chat",
        Reply(text="Hello!", usage=Usage(input=100, output=5, cached=60)),
    )
    client = anthropic_client(gateway)
    message = await in_thread(
        lambda: client.messages.create(
            model=model, max_tokens=200, system="terse", messages=[{"role": "user", "content": "hi"}]
        )
    )
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hello!"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (40, 60)
    assert fake.requests[-1].json["messages"][0] == {"role": "system", "content": "terse"}


async def test_anthropic_stream_reads_a_gemini_stream(gateway: Harness, make_fake_upstream: MakeFake) -> None:
    model, _ = await upstream(gateway, make_fake_upstream, "gemini", Reply(text="alpha beta gamma", chunks=3))
    client = anthropic_client(gateway)

    def run() -> tuple[str, Any]:
        with client.messages.stream(
            model=model, max_tokens=100, messages=[{"role": "user", "content": "go"}]
        ) as s:
            text = "".join(s.text_stream)
            return text, s.get_final_message()

    text, final = await in_thread(run)
    assert text == "alpha beta gamma"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 7


async def test_anthropic_tool_round_trip_with_an_openai_responses_upstream(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    model, fake = await upstream(
        gateway,
        make_fake_upstream,
        "openai-responses",
        Reply(text="", tool_calls=[("get_weather", {"city": "Rome"})]),
    )
    client = anthropic_client(gateway)
    tools: Any = [{"name": "get_weather", "description": "weather", "input_schema": WEATHER}]
    messages: list[Any] = [{"role": "user", "content": "weather in Rome?"}]
    first = await in_thread(
        lambda: client.messages.create(model=model, max_tokens=200, messages=messages, tools=tools)
    )
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert (use.name, use.input) == ("get_weather", {"city": "Rome"})

    fake.default = Reply(text="Sunny.")
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
    ]
    second = await in_thread(
        lambda: client.messages.create(model=model, max_tokens=200, messages=messages, tools=tools)
    )
    assert second.content[0].text == "Sunny."  # type: ignore[union-attr]
    items = fake.requests[-1].json["input"]
    call = next(i for i in items if i.get("type") == "function_call")
    output = next(i for i in items if i.get("type") == "function_call_output")
    assert call["call_id"] == output["call_id"]
    assert output["output"] == "sunny"


async def test_anthropic_thinking_stream_from_a_gemini_upstream(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    model, fake = await upstream(
        gateway,
        make_fake_upstream,
        "gemini",
        Reply(text="42.", thinking="six times seven", signature="R2VtU2ln", chunks=2),
    )
    client = anthropic_client(gateway)

    def run() -> Any:
        with client.messages.stream(
            model=model,
            max_tokens=4096,
            thinking={"type": "enabled", "budget_tokens": 2048},
            messages=[{"role": "user", "content": "6*7?"}],
        ) as s:
            return s.get_final_message()

    final = await in_thread(run)
    thinking = [b for b in final.content if b.type == "thinking"]
    assert thinking[0].thinking == "six times seven"
    # Gemini put its signature on the last text part; it follows that text as a signature-only block
    assert any(b.signature for b in thinking), "a signature the next request can send back"
    assert [b.text for b in final.content if b.type == "text"] == ["42."]
    thinking_config = fake.requests[-1].json["generationConfig"]["thinkingConfig"]
    assert thinking_config["includeThoughts"] is True

    # the SDK's blocks sent back as they are: Gemini gets its own signature back in the model turn
    fake.default = Reply(text="48.")
    messages: list[Any] = [
        {"role": "user", "content": "6*7?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
        {"role": "user", "content": "and 6*8?"},
    ]
    again = await in_thread(
        lambda: client.messages.create(
            model=model,
            max_tokens=4096,
            thinking={"type": "enabled", "budget_tokens": 2048},
            messages=messages,
        )
    )
    assert [b.text for b in again.content if b.type == "text"] == ["48."]
    model_turn = fake.requests[-1].json["contents"][1]
    assert model_turn["role"] == "model"
    assert [p.get("thoughtSignature") for p in model_turn["parts"] if "thoughtSignature" in p] == ["R2VtU2ln"]


# ----------------------------------------------------------------------------------------------------------
# google-genai
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api_version", [None, "v1beta"], ids=["v1-default", "v1beta"])
async def test_genai_generate_content_reads_an_anthropic_answer(
    gateway: Harness, make_fake_upstream: MakeFake, api_version: str | None
) -> None:
    model, fake = await upstream(
        gateway,
        make_fake_upstream,
        "anthropic",
        Reply(text="Ciao!", usage=Usage(input=50, output=3, cached=20)),
    )
    client = genai_client(gateway, api_version)
    config = gtypes.GenerateContentConfig(system_instruction="terse", max_output_tokens=64)
    response = await in_thread(
        lambda: client.models.generate_content(model=model, contents="hi", config=config)
    )
    assert response.text == "Ciao!"
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == 50
    assert response.usage_metadata.cached_content_token_count == 20
    sent = fake.requests[-1].json
    assert sent["system"] == [{"type": "text", "text": "terse"}]
    assert sent["max_tokens"] == 64


@pytest.mark.parametrize("api_version", [None, "v1beta"], ids=["v1-default", "v1beta"])
async def test_genai_stream_reads_an_openai_chat_stream(
    gateway: Harness, make_fake_upstream: MakeFake, api_version: str | None
) -> None:
    model, _ = await upstream(
        gateway, make_fake_upstream, "openai-chat", Reply(text="uno dos tres", chunks=3)
    )
    client = genai_client(gateway, api_version)

    def run() -> list[Any]:
        return list(client.models.generate_content_stream(model=model, contents="count"))

    chunks = await in_thread(run)
    assert "".join(ch.text or "" for ch in chunks) == "uno dos tres"
    assert chunks[-1].candidates is not None
    assert chunks[-1].candidates[0].finish_reason == gtypes.FinishReason.STOP


async def test_genai_function_call_round_trip_with_an_openai_responses_upstream(
    gateway: Harness, make_fake_upstream: MakeFake
) -> None:
    model, fake = await upstream(
        gateway,
        make_fake_upstream,
        "openai-responses",
        Reply(text="", tool_calls=[("get_weather", {"city": "Lima"})]),
    )
    client = genai_client(gateway, "v1beta")
    declaration = gtypes.FunctionDeclaration(
        name="get_weather", description="weather", parameters_json_schema=WEATHER
    )
    config = gtypes.GenerateContentConfig(
        tools=[gtypes.Tool(function_declarations=[declaration])],
        automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
    )
    first = await in_thread(
        lambda: client.models.generate_content(model=model, contents="weather in Lima?", config=config)
    )
    (call,) = first.function_calls or []
    assert (call.name, call.args) == ("get_weather", {"city": "Lima"})

    fake.default = Reply(text="Cloudy.")
    assert first.candidates is not None
    assert first.candidates[0].content is not None
    history = [
        gtypes.Content(role="user", parts=[gtypes.Part(text="weather in Lima?")]),
        first.candidates[0].content,
        gtypes.Content(
            role="user",
            parts=[gtypes.Part.from_function_response(name="get_weather", response={"output": "cloudy"})],
        ),
    ]
    second = await in_thread(
        lambda: client.models.generate_content(model=model, contents=history, config=config)
    )
    assert second.text == "Cloudy."
    items = fake.requests[-1].json["input"]
    sent_call = next(i for i in items if i.get("type") == "function_call")
    output = next(i for i in items if i.get("type") == "function_call_output")
    assert sent_call["call_id"] == output["call_id"]
    assert "cloudy" in output["output"]

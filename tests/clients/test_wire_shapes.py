"""Requests the agents were seen to send, replayed without the agents (so these run everywhere): each
once broke a path through the gateway."""

from __future__ import annotations

from tests.clients.conftest import Routed
from tests.clients.script import model_for
from tests.fakes.reply import Reply

# Codex 0.169 with a model it knows (gpt-6.1-sol): no top-level `tools`, an `additional_tools` input item
# with namespaces instead, before the developer instructions (abridged from the wire).
CODEX_CODE_MODE_INPUT = [
    {
        "type": "additional_tools",
        "role": "developer",
        "tools": [
            {
                "type": "namespace",
                "name": "functions",
                "description": "",
                "tools": [
                    {
                        "type": "custom",
                        "name": "exec",
                        "description": "Run JavaScript code to orchestrate/compose tool calls",
                        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /[\\s\\S]+/"},
                    },
                    {
                        "type": "function",
                        "name": "wait",
                        "description": "Waits on a yielded `exec` cell.",
                        "strict": False,
                        "parameters": {
                            "type": "object",
                            "properties": {"cell_id": {"type": "string"}},
                            "required": ["cell_id"],
                            "additionalProperties": False,
                        },
                    },
                ],
            },
            {
                "type": "namespace",
                "name": "clock",
                "description": "",
                "tools": [
                    {
                        "type": "function",
                        "name": "sleep",
                        "description": "Pause execution.",
                        "parameters": {"type": "object", "properties": {"duration_ms": {"type": "number"}}},
                    }
                ],
            },
        ],
    },
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Read notes.txt"}]},
]


async def test_codex_additional_tools_are_declared_to_an_anthropic_upstream(routed: Routed) -> None:
    routed.fake.default = Reply(text="", tool_calls=[("functions__exec", {"input": "text(1)"})])
    body = {"model": model_for("anthropic"), "input": CODEX_CODE_MODE_INPUT, "store": False}

    r = await routed.gw.http.post("/v1/responses", json=body)

    assert r.status_code == 200, r.text
    sent = routed.fake.requests[-1].json
    assert [t["name"] for t in sent["tools"]] == ["functions__exec", "functions__wait", "clock__sleep"]
    assert sent["tools"][0]["input_schema"]["properties"]["input"]["type"] == "string"  # free-form
    assert "You are Codex." in str(sent["system"])  # still the leading system prompt
    assert [m["role"] for m in sent["messages"]] == ["user"]
    # the call goes back to Codex in its namespace, free-form input unwrapped
    (call,) = [item for item in r.json()["output"] if item["type"] == "custom_tool_call"]
    assert (call["namespace"], call["name"], call["input"]) == ("functions", "exec", "text(1)")


async def test_gemini_action_with_a_provider_prefixed_model_outside_models(routed: Routed) -> None:
    # opencode + @ai-sdk/google with model "openai/fake-model" posts here (seen on the wire)
    path = f"/v1beta/{model_for('openai-chat')}:streamGenerateContent?alt=sse"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

    r = await routed.gw.http.post(path, json=body, headers={"x-goog-api-key": routed.gw.key})

    assert r.status_code == 200, r.text
    assert routed.fake.requests[-1].path == "/v1/chat/completions"


async def test_client_leaving_right_after_response_completed_is_recorded_as_served(routed: Routed) -> None:
    # every frame, then the upstream holds the body open: the client has the whole answer first
    routed.fake.default = Reply(stall_after_chunks=1_000)
    body = {"model": model_for("openai-responses"), "input": "hi", "stream": True}

    async with routed.gw.http.stream("POST", "/v1/responses", json=body) as r:
        async for line in r.aiter_lines():
            if line.startswith("event: response.completed"):
                break  # what Codex does: the turn is over, the connection goes

    (row,) = await routed.gw.usage_rows()
    assert (row["status"], row["outcome"]) == (200, "ok"), row

"""What a real agent sends that the gateway does not serve yet, pinned by strict xfails (no agent needed:
the requests are the ones the agents were seen to send)."""

from __future__ import annotations

from tests.clients.conftest import Routed
from tests.clients.script import model_for
from tests.fakes.reply import Reply


async def test_gemini_action_with_a_provider_prefixed_model_outside_models(routed: Routed) -> None:
    # opencode + @ai-sdk/google with model "openai/fake-model" posts here (seen on the wire)
    path = f"/v1beta/{model_for('openai-chat')}:streamGenerateContent?alt=sse"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

    r = await routed.gw.http.post(path, json=body, headers={"x-goog-api-key": routed.gw.key})

    assert r.status_code == 200, r.text
    assert routed.fake.requests[-1].path == "/v1/chat/completions"


async def test_client_leaving_after_response_completed_is_recorded_as_served(routed: Routed) -> None:
    # every frame, then the upstream holds the body open: the client has the whole answer first
    routed.fake.default = Reply(stall_after_chunks=1_000)
    body = {"model": model_for("openai-responses"), "input": "hi", "stream": True}

    async with routed.gw.http.stream("POST", "/v1/responses", json=body) as r:
        async for line in r.aiter_lines():
            if line.startswith("event: response.completed"):
                break  # what Codex does: the turn is over, the connection goes

    (row,) = await routed.gw.usage_rows()
    assert (row["status"], row["outcome"]) == (200, "ok"), row

import json
from tests.conformance import clients as c, raw
from tests.conformance.clients import AM, GG, OC, OR, Mode
from tests.fakes.reply import Reply


async def test_s(mesh):
    details = {"type": "refusal", "category": "cyber", "explanation": "I can't help with that."}
    body = raw.am_message(
        [{"type": "text", "text": "I can't help with that."}], "refusal", stop_details=details
    )
    mesh.fakes[AM].default = raw.json_reply(body)
    for m in (Mode(OC), Mode(OR), Mode(GG)):
        a = await mesh.send(m, AM, c.body_for(m.client, [c.user("hi")]))
        print(m, json.dumps(a.raw)[:800])
    # case 35
    body = {
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "tool", "tool_call_id": "call_ghost", "content": "orphan output"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_open",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "user", "content": "never mind"},
        ],
        "tools": [c.tool_spec(OC)],
    }
    mesh.fakes[AM].default = Reply()
    await mesh.send(Mode(OC), AM, body)
    print(json.dumps(mesh.last(AM).json["messages"]))
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"name": "ping", "description": "ping", "input_schema": {"type": "object"}}],
        "max_tokens": 10,
    }
    await mesh.send(Mode(AM), GG, body)
    print(json.dumps(mesh.last(GG).json["tools"]))
    await mesh.send(
        Mode(OC),
        AM,
        c.body_for(
            OC,
            [c.user("go")],
            tools=[c.tool_spec(OC)],
            reasoning_effort="high",
            tool_choice="required",
            temperature=0.2,
        ),
    )
    print({k: v for k, v in mesh.last(AM).json.items() if k not in ("messages", "tools")})
    await mesh.send(Mode(OC), AM, c.body_for(OC, [c.user("go")], tools=[c.tool_spec(OC)], tool_choice="none"))
    print({k: v for k, v in mesh.last(AM).json.items() if k not in ("messages",)})

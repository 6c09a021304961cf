"""`provider test`: does this account work? One tiny real request through the normal pipeline."""

from __future__ import annotations

import time

import trio

from omniroute import GatewayError, JsonObj, loads
from omniroute_providers.pipeline import Call, Pipeline
from omniroute_providers.registry import Account, Registry

PROBE_TIMEOUT_S = 30.0


class _Collect:
    """A ClientSink that keeps the answer in memory."""

    def __init__(self) -> None:
        self.started = False
        self.status = 0
        self.body = b""
        self.served_by = ""

    async def send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.started, self.status, self.body = True, status, body
        self.served_by = dict(headers).get("x-omniroute-served-by", "")

    async def start(self, status: int, headers: list[tuple[str, str]], first: bytes = b"") -> None:
        self.started, self.status, self.body = True, status, first

    async def write(self, data: bytes) -> None:
        self.body += data

    async def end(self, last: bytes = b"") -> None:
        self.body += last


async def probe_account(pipeline: Pipeline, registry: Registry, account: Account) -> JsonObj:
    """Send "ping" (max 1-16 tokens) to the account's provider, pinned to this account only."""
    provider = registry.catalog.provider(account.provider)
    if provider is None:
        return {"ok": False, "error": f"unknown provider {account.provider}"}
    model = provider.models[0].id if provider.models else "default"
    pinned = Registry(
        catalog=registry.catalog,
        accounts={account.provider: (account,)},
        keys=registry.keys,
        admin_token=registry.admin_token,
        version=registry.version,
    )
    probe = Pipeline(lambda: pinned, pipeline.upstream, pipeline.store, request_deadline_s=PROBE_TIMEOUT_S)
    return {**await _ping(probe, f"{provider.id}/{model}"), "model": model}


async def probe_model(pipeline: Pipeline, model: str) -> JsonObj:
    """Send "ping" to a model name (a combo, an alias, provider/model) through the real routing, and say which
    target answered."""
    return await _ping(pipeline, model)


async def _ping(pipeline: Pipeline, model: str) -> JsonObj:
    """One small non-streaming chat request through `pipeline`: what it answered, or why it did not."""
    call = Call(
        endpoint="chat",
        client_format="openai-chat",
        body={"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16},
        model=model,
        stream=False,
        request_id="probe",
    )
    sink = _Collect()
    started = time.monotonic()
    try:
        with trio.fail_after(PROBE_TIMEOUT_S):
            await pipeline.handle(call, sink)
    except GatewayError as err:
        return {"ok": False, "status": err.status, "error": err.message, "failure": err.failure}
    except trio.TooSlowError:
        return {"ok": False, "error": f"no answer within {PROBE_TIMEOUT_S:g}s"}
    try:
        text = loads(sink.body)["choices"][0]["message"].get("content") or ""
    except Exception:
        text = ""
    return {
        "ok": sink.status == 200,
        "status": sink.status,
        "served_by": sink.served_by,
        "latency_ms": round((time.monotonic() - started) * 1000, 1),
        "reply": str(text)[:200],
    }

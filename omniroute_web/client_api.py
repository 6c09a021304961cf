"""The client-facing API: /v1 (OpenAI and Anthropic families) and /v1beta (Gemini).

Handlers decode and check the envelope (model, stream flag), then hand a `Call` to the pipeline; everything
about formats and providers happens there.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from omniroute import GatewayError, InvalidRequestError, JsonObj, MethodNotAllowedError, __version__
from omniroute_providers.access import model_allowed, provider_allowed
from omniroute_providers.pipeline import Call, validate_stream_flag
from omniroute_providers.registry import ClientKey
from omniroute_web.messages import read_json, send_json
from omniroute_web.server import Request, Responder

if TYPE_CHECKING:
    from omniroute_web.app import Gateway

Params = dict[str, str]

GEMINI_ACTIONS = {"generateContent", "streamGenerateContent", "countTokens"}


def _model(body: JsonObj) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequestError("`model` is required and must be a string", param="model")
    return model


def _call(
    gw: Gateway,
    request: Request,
    key: ClientKey,
    body: JsonObj,
    *,
    endpoint: str,
    fmt: str,
    model: str,
    stream: bool,
) -> Call:
    return Call(
        endpoint=endpoint,
        client_format=fmt,
        body=body,
        model=model,
        stream=stream,
        request_id=request.request_id,
        key_id=key.id or None,
        key=key if key.id else None,
        client_headers=request.headers,
        drain_expired=lambda: request.drain_expired,
    )


async def health(
    gw: Gateway, request: Request, responder: Responder, params: Params, key: ClientKey | None
) -> None:
    await send_json(
        responder,
        200,
        {
            "status": "draining" if gw.server.draining else "ok",
            "version": __version__,
            "uptime_s": round(gw.uptime(), 1),
        },
    )


async def _serve_body(
    gw: Gateway,
    request: Request,
    responder: Responder,
    key: ClientKey,
    endpoint: str,
    fmt: str,
    legacy: bool = False,
) -> None:
    """The JSON-body endpoints (chat, completions, responses, messages): model and stream come from the
    body."""
    body = await read_json(request, gw.settings.max_body_bytes)
    call = _call(
        gw,
        request,
        key,
        body,
        endpoint=endpoint,
        fmt=fmt,
        model=_model(body),
        stream=validate_stream_flag(body),
    )
    call.legacy = legacy
    await gw.pipeline.handle(call, responder)


async def chat_completions(
    gw: Gateway, request: Request, responder: Responder, params: Params, key: ClientKey
) -> None:
    await _serve_body(gw, request, responder, key, "chat", "openai-chat")


async def completions(
    gw: Gateway, request: Request, responder: Responder, params: Params, key: ClientKey
) -> None:
    await _serve_body(gw, request, responder, key, "completions", "openai-chat", legacy=True)


async def responses(
    gw: Gateway, request: Request, responder: Responder, params: Params, key: ClientKey
) -> None:
    await _serve_body(gw, request, responder, key, "responses", "openai-responses")


async def responses_websocket(
    gw: Gateway, request: Request, responder: Responder, params: Params, key: ClientKey | None
) -> None:
    # Codex's built-in provider tries Responses over WebSocket first; a quick non-101 makes it use POST.
    raise MethodNotAllowedError("this gateway serves /v1/responses over HTTP POST, not WebSocket")


async def messages(
    gw: Gateway, request: Request, responder: Responder, params: Params, key: ClientKey
) -> None:
    await _serve_body(gw, request, responder, key, "messages", "anthropic")


async def count_tokens(
    gw: Gateway, request: Request, responder: Responder, params: Params, key: ClientKey
) -> None:
    body = await read_json(request, gw.settings.max_body_bytes)
    call = _call(
        gw, request, key, body, endpoint="count_tokens", fmt="anthropic", model=_model(body), stream=False
    )
    await send_json(responder, 200, await gw.pipeline.count_tokens(call))


async def gemini_action(
    gw: Gateway, request: Request, responder: Responder, params: Params, key: ClientKey
) -> None:
    action = params["action"]
    if action not in GEMINI_ACTIONS:
        raise InvalidRequestError(f"unsupported method :{action}")
    body = await read_json(request, gw.settings.max_body_bytes)
    model = params["model"].removeprefix("models/")
    if action == "countTokens":
        call = _call(gw, request, key, body, endpoint="count_tokens", fmt="gemini", model=model, stream=False)
        await send_json(responder, 200, await gw.pipeline.count_tokens(call))
        return
    stream = action == "streamGenerateContent"
    call = _call(gw, request, key, body, endpoint="generate", fmt="gemini", model=model, stream=stream)
    call.json_array_stream = stream and request.query.get("alt") != "sse"
    await gw.pipeline.handle(call, responder)


# ----------------------------------------------------------------------------------------------------------
# model lists
# ----------------------------------------------------------------------------------------------------------


def model_entries(gw: Gateway, key: ClientKey | None = None) -> list[tuple[str, str, int | None]]:
    """(public id `alias/model`, provider id, context window) for every configured provider's models and
    every enabled combo that this key may use; providers in `hidden_providers` are left out."""
    entries: list[tuple[str, str, int | None]] = []
    reg = gw.registry
    hidden = {p.strip() for p in gw.settings.hidden_providers.split(",") if p.strip()}
    scoped = key if key is not None and key.id != 0 and key.scopes else None

    def provider_ok(pid: str) -> bool:
        return scoped is None or provider_allowed(scoped, pid)

    def model_ok(name: str, *also: str) -> bool:
        return scoped is None or model_allowed(scoped, name, also)

    for provider in reg.configured_providers():
        if provider.id in hidden or provider.alias in hidden or not provider_ok(provider.id):
            continue
        for m in provider.models:
            public = f"{provider.alias}/{m.id}"
            if model_ok(public, f"{provider.id}/{m.id}"):
                entries.append((public, provider.id, m.context_window))
    for name, combo in reg.combos.items():
        if not combo.enabled or not model_ok(name):
            continue
        try:
            targets = gw.pipeline.plans.get(reg, name).targets
        except GatewayError:
            continue  # a combo with no reachable target is not offered
        if not any(provider_ok(t.provider.id) for t in targets):
            continue
        windows = [t.spec.context_window for t in targets if t.spec is not None and t.spec.context_window]
        # A combo can land on any of its targets: advertise the smallest window so clients compact in time.
        entries.append((name, "combo", min(windows) if windows else None))
    return entries


async def list_models(
    gw: Gateway, request: Request, responder: Responder, params: Params, key: ClientKey
) -> None:
    created = int(gw.started_wall)
    entries = model_entries(gw, key)
    if "anthropic-version" in request.headers:
        data = [
            {
                "type": "model",
                "id": mid,
                "display_name": mid,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
            }
            for mid, _, _ in entries
        ]
        await send_json(
            responder,
            200,
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )
        return
    listed: list[JsonObj] = [
        {"id": mid, "object": "model", "created": created, "owned_by": provider, "context_window": ctx}
        for mid, provider, ctx in entries
    ]
    await send_json(responder, 200, {"object": "list", "data": listed})


async def get_model(
    gw: Gateway, request: Request, responder: Responder, params: Params, key: ClientKey
) -> None:
    from omniroute import ModelNotFoundError

    wanted = params["model"]
    for mid, provider, ctx in model_entries(gw, key):
        if mid == wanted:
            await send_json(
                responder,
                200,
                {
                    "id": mid,
                    "object": "model",
                    "created": int(gw.started_wall),
                    "owned_by": provider,
                    "context_window": ctx,
                },
            )
            return
    raise ModelNotFoundError(f"model {wanted!r} is not listed")


async def gemini_models(
    gw: Gateway, request: Request, responder: Responder, params: Params, key: ClientKey
) -> None:
    from omniroute_providers.formats import get_format

    gemini = get_format("gemini")
    await send_json(responder, 200, gemini.render_model_list(model_entries(gw, key)))  # type: ignore[attr-defined]

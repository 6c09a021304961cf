"""Small request/response helpers shared by the handlers: JSON bodies in, JSON answers out, and the
client-format error renderer the server uses for anything that fails before a handler answers."""

from __future__ import annotations

from omniroute import GatewayError, JsonObj, dumps, loads_object
from omniroute_providers.formats.common import format_retry_after
from omniroute_web.server import Request, Responder

JSON_HEADERS = [("content-type", "application/json")]


def family_for_path(path: str) -> str:
    """Which client format an error on this path must be written in."""
    if path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path.rsplit("/", 1)[-1]):
        return "gemini"
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1/responses"):
        return "openai-responses"
    return "openai-chat"


def render_error(request: Request | None, error: GatewayError) -> tuple[int, list[tuple[str, str]], bytes]:
    from omniroute_providers.formats import get_format

    family = family_for_path(request.path) if request is not None else "openai-chat"
    if request is not None and request.path.startswith("/api/"):
        body = dumps({"error": {"message": error.message, "code": error.code, "status": error.status}})
        return error.status, [*JSON_HEADERS, *format_retry_after(error.retry_after).items()], body
    try:
        status, headers, body = get_format(family).render_error(error)
    except (ImportError, AttributeError):  # pragma: no cover - only while a format module is missing
        body = dumps({"error": {"message": error.message, "type": error.code, "code": error.code}})
        return error.status, list(JSON_HEADERS), body
    return status, list(headers.items()), body


async def read_json(request: Request, limit: int) -> JsonObj:
    return loads_object(await request.body(limit))


async def send_json(
    responder: Responder, status: int, payload: object, headers: list[tuple[str, str]] | None = None
) -> None:
    await responder.send(status, [*JSON_HEADERS, *(headers or [])], dumps(payload))

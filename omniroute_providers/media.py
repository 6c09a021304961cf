"""Remote media for upstreams that cannot fetch it themselves (Gemini takes inline bytes or its own file
URIs, not arbitrary https image URLs): download, check, inline.

Every fetch goes through the upstream client, so the egress guard applies (no loopback, private or metadata
addresses: the URL came from a client), redirects are not followed, and size and time are bounded.
"""

from __future__ import annotations

import base64
import mimetypes

import trio

from omniroute import GatewayError, InvalidRequestError
from omniroute_providers import ir
from omniroute_providers.upstream import UpstreamClient

MAX_MEDIA_BYTES = (
    10 * 1024 * 1024
)  # Gemini's inline request limit is 20 MB in all; one image this big is plenty
MAX_MEDIA_PER_REQUEST = 16
FETCH_TIMEOUT_S = 15.0
ACCEPTED = ("image/", "application/pdf", "audio/", "video/", "text/")


def _remote(part: object) -> bool:
    return (
        isinstance(part, (ir.ImagePart, ir.FilePart))
        and part.data is None
        and isinstance(part.url, str)
        and part.url.startswith(("http://", "https://"))
    )


def remote_parts(req: ir.ChatRequest) -> list[ir.ImagePart | ir.FilePart]:
    found: list[ir.ImagePart | ir.FilePart] = []
    for message in req.messages:
        for part in message.parts:
            if _remote(part):
                found.append(part)  # type: ignore[arg-type]
            elif isinstance(part, ir.ToolResultPart):
                found.extend(c for c in part.content if _remote(c))  # type: ignore[misc]
    return found


async def inline_remote_media(req: ir.ChatRequest, client: UpstreamClient) -> None:
    """Replace http(s) URLs in image/file parts with their bytes (in place, on the gateway's own IR)."""
    parts = remote_parts(req)
    if len(parts) > MAX_MEDIA_PER_REQUEST:
        raise InvalidRequestError(f"at most {MAX_MEDIA_PER_REQUEST} remote images or files per request")
    for part in parts:
        url = part.url or ""
        data, media_type = await fetch(client, url)
        part.data = base64.b64encode(data).decode("ascii")
        part.media_type = part.media_type or media_type
        part.url = None


async def fetch(client: UpstreamClient, url: str) -> tuple[bytes, str]:
    shown = url if len(url) <= 120 else url[:117] + "..."
    try:
        with trio.fail_after(FETCH_TIMEOUT_S):
            reply = await client.request(
                "GET", url, [("accept", "*/*")], b"", first_byte_timeout=FETCH_TIMEOUT_S
            )
            try:
                if reply.status != 200:
                    raise InvalidRequestError(f"fetching {shown} for the provider gave HTTP {reply.status}")
                declared = reply.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_MEDIA_BYTES:
                    raise InvalidRequestError(f"{shown} is larger than {MAX_MEDIA_BYTES // 1048576} MB")
                data = await reply.read(MAX_MEDIA_BYTES)
            finally:
                await reply.aclose()
    except trio.TooSlowError:
        raise InvalidRequestError(f"fetching {shown} took longer than {FETCH_TIMEOUT_S:g}s") from None
    except InvalidRequestError:
        raise
    except GatewayError as err:
        if err.status == 403:
            raise  # the egress guard's refusal, already worded for the client
        raise InvalidRequestError(f"could not fetch {shown} for the provider: {err.message}") from None
    media_type = reply.headers.get("content-type", "").split(";")[0].strip().lower()
    if not media_type.startswith(ACCEPTED):
        media_type = mimetypes.guess_type(url.split("?")[0])[0] or ""
    if not media_type.startswith(ACCEPTED):
        raise InvalidRequestError(
            f"{shown} is not an image or document (content-type {media_type or 'unknown'})"
        )
    return data, media_type

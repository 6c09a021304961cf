"""Pieces every wire format shares: upstream status -> typed error, retry hints, context-overflow text.

Sans-I/O. The per-format modules call these from their parse_error so that a 429 means the same thing
whoever sent it.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping

from omniroute import (
    ContextLengthError,
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamTimeoutError,
)
from omniroute_providers.formats.sse import SSEEvent, parse_block

# Provider wordings of "your prompt does not fit" (formats.md case 69).
_CONTEXT_PATTERNS = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|too many tokens"
    r"|input token count .{0,40}exceeds|exceeds the maximum number of tokens|input is too long"
    r"|reduce the length of the messages|model_context_window_exceeded",
    re.IGNORECASE,
)
# Provider wordings of "you are out of money/quota" as opposed to "slow down".
_QUOTA_PATTERNS = re.compile(
    r"insufficient_quota|exceeded your current quota|credit balance is too low|billing|payment required"
    r"|quota exceeded for|out of credits|daily limit|spend limit",
    re.IGNORECASE,
)
_MODEL_PATTERNS = re.compile(
    r"model[^.]{0,60}(not found|does not exist|not available|not supported|unknown|no access)"
    r"|unknown model|invalid model|no such model|model_not_found",
    re.IGNORECASE,
)
_RETRY_IN_TEXT = re.compile(r"(?:try again|retry) (?:in|after) (\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)\b", re.I)

MAX_ERROR_MESSAGE_CHARS = 2000  # upstream messages are passed on, but not novels of them


def error_from_status(
    status: int,
    message: str,
    *,
    code: str | None = None,
    retry_after: float | None = None,
) -> GatewayError:
    """Map an upstream HTTP status (+ its message and machine code) to a gateway error.

    The message is the provider's own (redacted by the caller), so the user sees what went wrong.
    """
    message = (message or f"upstream returned HTTP {status}").strip()[:MAX_ERROR_MESSAGE_CHARS]
    code_l = (code or "").lower()
    if retry_after is None:
        retry_after = retry_after_from_text(message)
    if status in (400, 413, 422) and (
        code_l == "context_length_exceeded" or _CONTEXT_PATTERNS.search(message)
    ):
        return ContextLengthError(message, upstream_status=status)
    if status == 429 or code_l in ("rate_limit_exceeded", "resource_exhausted", "rate_limit_error"):
        if code_l == "insufficient_quota" or _QUOTA_PATTERNS.search(message):
            return QuotaExhaustedError(message, upstream_status=status, retry_after=retry_after)
        return RateLimitError(message, upstream_status=status, retry_after=retry_after)
    if status == 402 or (status == 403 and _QUOTA_PATTERNS.search(message)):
        return QuotaExhaustedError(message, upstream_status=status, retry_after=retry_after)
    if status == 401:
        return UpstreamAuthError(
            f"the provider rejected the account's credentials: {message}", upstream_status=401
        )
    if status == 403:
        if _MODEL_PATTERNS.search(message):
            return ModelNotFoundError(message, upstream_status=status, status=403)
        return UpstreamAuthError(f"the provider refused access: {message}", upstream_status=403)
    if status == 404:
        return ModelNotFoundError(message, upstream_status=status)
    if status in (408, 504):
        return UpstreamTimeoutError(message, upstream_status=status, retry_after=retry_after)
    if status in (503, 529):
        return ServiceUnavailableError(
            message, upstream_status=status, retry_after=retry_after, code="overloaded"
        )
    if status >= 500:
        return UpstreamError(message, upstream_status=status, retry_after=retry_after)
    if status in (400, 409, 413, 415, 422):
        if _MODEL_PATTERNS.search(message):
            return ModelNotFoundError(message, upstream_status=status, status=400)
        return InvalidRequestError(message, upstream_status=status, status=status)
    if 400 <= status < 500:
        return PermissionDeniedError(message, upstream_status=status, status=status)
    return UpstreamError(message, upstream_status=status)


def _parse_duration(value: str) -> float | None:
    """`1.5`, `20s`, `12ms`, `6m0s`, `1h2m3.5s` -> seconds."""
    value = value.strip().lower()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    total = 0.0
    matched = False
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value):
        matched = True
        total += float(number) * {"ms": 0.001, "h": 3600.0, "m": 60.0, "s": 1.0}[unit]
    return total if matched else None


def _parse_http_time(value: str, now: float) -> float | None:
    """An HTTP date or an RFC 3339 time -> seconds from now (>= 0)."""
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        from datetime import datetime

        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return max(0.0, when - now)


def retry_after_from_headers(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The upstream's own hint of when to come back, in seconds, from any header family that has one.

    Order: retry-after-ms, retry-after (seconds or HTTP date), x-ratelimit-reset-requests/-tokens
    (OpenAI durations), anthropic-ratelimit-*-reset (RFC 3339). The largest reset wins among the last two
    families, since every exhausted limit must have reset before a retry can succeed.
    """
    now = time.time() if now is None else now
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if ra:
        seconds = _parse_duration(ra)
        if seconds is None:
            seconds = _parse_http_time(ra, now)
        if seconds is not None:
            return max(0.0, seconds)
    resets: list[float] = []
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "x-ratelimit-reset"):
        v = headers.get(name)
        if v:
            remaining_name = name.replace("reset", "remaining")
            remaining = headers.get(remaining_name)
            if remaining is not None and remaining.strip() not in ("0", ""):
                continue  # this limit is not the one that ran out
            d = _parse_duration(v)
            if d is not None and name == "x-ratelimit-reset" and d > 1e9:
                d = max(0.0, d - now)  # some providers send an epoch timestamp
            if d is not None:
                resets.append(d)
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        v = headers.get(f"anthropic-ratelimit-{kind}-reset")
        remaining = headers.get(f"anthropic-ratelimit-{kind}-remaining")
        if v and (remaining is None or remaining.strip() == "0"):
            d = _parse_http_time(v, now)
            if d is not None:
                resets.append(d)
    return max(resets) if resets else None


def retry_after_from_text(message: str) -> float | None:
    """'Please try again in 9.8s' / 'retry after 250ms' inside an error message."""
    m = _RETRY_IN_TEXT.search(message or "")
    if not m:
        return None
    value = float(m.group(1))
    return value / 1000.0 if m.group(2).lower() == "ms" else value


def google_retry_delay(details: object) -> float | None:
    """Gemini puts the hint in the error body: RetryInfo.retryDelay "17s" or ErrorInfo quotaResetDelay."""
    if not isinstance(details, list):
        return None
    for d in details:
        if not isinstance(d, dict):
            continue
        delay = d.get("retryDelay")
        if delay is None and isinstance(d.get("metadata"), dict):
            delay = d["metadata"].get("quotaResetDelay")
        if isinstance(delay, str):
            seconds = _parse_duration(delay)
            if seconds is not None:
                return seconds
    return None


def format_retry_after(seconds: float | None) -> dict[str, str]:
    """Headers carrying a retry hint to the client (whole seconds, rounded up, at least 1)."""
    if seconds is None:
        return {}
    return {"retry-after": str(max(1, int(-(-seconds // 1))))}


def refuse_previous_response_id(previous_response_id: str | None) -> None:
    """Refuse a Responses `previous_response_id` on its way to an upstream of another format.

    The id names history that only OpenAI's Responses API stored; the gateway keeps no copy, so rendering
    the request without it would silently drop the conversation (formats.md §5 case 74). A 400 tells the
    client to send the full history instead.
    """
    if previous_response_id:
        raise InvalidRequestError(
            "`previous_response_id` needs an OpenAI Responses upstream, which stores the conversation; "
            "this model is served by another API, so send the full conversation in `input` instead",
            param="previous_response_id",
        )


# Bytes that every event stream_ended() or a format's UsageTap acts on contains (in its data or its
# `event:` name). A passthrough relay looks for them once in a piece of the stream and skips the per-event
# checks when none is there; a false hit only costs those checks.
_STREAM_MARKERS: dict[str, tuple[bytes, ...]] = {
    "anthropic": (b"message_start", b"message_delta", b"message_stop", b"error", b'"usage"'),
    "openai-responses": (b"response.completed", b"response.incomplete", b"response.failed", b"error"),
    "gemini": (b"usageMetadata", b'"finishReason"', b'{"error"'),
    # not a bare "usage": OpenAI sends "usage":null in every chunk of a stream that asked for usage
    "openai-chat": (
        b"[DONE]",
        b'"finish_reason":"',
        b'"finish_reason": "',
        b'{"error"',
        b'"usage":{',
        b'"usage": {',
    ),
}


def marked_events(format_id: str, relayed: bytes, start: int = 0) -> list[SSEEvent]:
    """The events of relayed[start:] (complete SSE blocks) that contain one of the format's markers (see
    _STREAM_MARKERS), in order: all that stream_ended() and a UsageTap need to see. The rest of the bytes
    are searched, not parsed."""
    spans: set[tuple[int, int]] = set()
    for marker in _STREAM_MARKERS[format_id]:
        at = relayed.find(marker, start)
        while at >= 0:
            lo = relayed.rfind(b"\n\n", start, at)
            hi = relayed.find(b"\n\n", at)
            hi = len(relayed) if hi < 0 else hi
            spans.add((start if lo < 0 else lo + 2, hi))
            at = relayed.find(marker, hi)
    events = (parse_block(relayed[lo:hi]) for lo, hi in sorted(spans))
    return [ev for ev in events if ev is not None]


def stream_ended(format_id: str, event: SSEEvent) -> bool:
    """Does this upstream event end a stream in its format (its normal end, or its own in-band error,
    which the client receives as is)? A stream that stops without one was cut, whatever the TCP
    connection says: a clean EOF is not a complete answer."""
    data = event.data
    if format_id == "anthropic":
        return event.event in ("message_stop", "error")
    if format_id == "openai-responses":
        return event.event in ("response.completed", "response.incomplete", "response.failed", "error")
    if data.startswith((b'{"error"', b'[{"error"')):  # the upstream ended it with its own error event
        return True
    if format_id == "gemini":
        return b'"finishReason"' in data
    return data == b"[DONE]" or (b'"finish_reason":"' in data or b'"finish_reason": "' in data)

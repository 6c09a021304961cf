"""omniroute — one local endpoint in front of many LLM providers.

This file is the kernel and the entry point. It is read top to bottom in sections:

    1. constants   defaults with their units and the reason for each
    2. errors      the one exception tree: HTTP status + failure class + user-safe message
    3. codec       JSON in and out (msgspec when importable, else the stdlib)
    4. settings    defaults <- config file <- OMNIROUTE_* env <- CLI flags, with a redacted view
    5. store       SQLite (apsw when importable, else sqlite3), migrations, one writer thread
    6. secrets     sealing provider credentials at rest, hashing client keys
    7. logging     stdlib logging with redaction of keys, tokens and Authorization headers
    8. main        command line: serve, provider, key, usage

The kernel imports neither `omniroute_providers` nor `omniroute_web` at module level; those packages
import the kernel. Nothing here does network I/O.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, ClassVar

__version__ = "0.1.0"

# ==========================================================================================================
# 1. constants
# ==========================================================================================================

DEFAULT_HOST = "127.0.0.1"  # loopback unless the user says otherwise: an open gateway spends their keys
DEFAULT_PORT = 20128  # OmniRoute's port, so client set-ups written for it work unchanged
DEFAULT_DATA_DIR = "~/.omniroute"

MAX_BODY_BYTES = 20 * 1024 * 1024  # request bodies carry base64 images; 20 MB covers a few of them
MAX_HEADER_BYTES = 16 * 1024  # h11's own default cap on the request line + headers
MAX_HEADER_COUNT = 100
MAX_JSON_DEPTH = 64  # real requests nest < 20 deep (tool schemas); deeper is abuse
HEADER_TIMEOUT_S = 10.0  # slowloris: the whole header block must arrive within this
BODY_IDLE_TIMEOUT_S = 30.0  # a request body that stalls this long is abandoned
KEEPALIVE_TIMEOUT_S = 75.0  # idle keep-alive connections are closed after this
MAX_CONNECTIONS = 1024  # beyond this new connections get 503 at once rather than queueing
DRAIN_TIMEOUT_S = 30.0  # graceful shutdown lets streams finish for this long

UPSTREAM_CONNECT_TIMEOUT_S = 10.0
UPSTREAM_FIRST_BYTE_TIMEOUT_S = 120.0  # reasoning models can think a long time before the first token
UPSTREAM_IDLE_TIMEOUT_S = 120.0  # silence between stream chunks after which the stream is dead
REQUEST_DEADLINE_S = 600.0  # covers every attempt of one request, retries and fallbacks included

WRITER_BATCH_S = 0.1  # usage rows are committed in batches: one fsync per batch, not per request
WRITER_QUEUE_MAX = 10_000  # past this, usage rows are dropped (and counted) rather than eating memory


# ==========================================================================================================
# 2. errors
# ==========================================================================================================
#
#   GatewayError                       500 unknown
#   ├── InvalidRequestError            400 caller_fault
#   │   └── ContextLengthError         400 caller_fault   (context_length_exceeded)
#   ├── AuthenticationError            401 credential     (the client's gateway key)
#   ├── BudgetExceededError            402 quota
#   ├── PermissionDeniedError          403 caller_fault   (key scope, IP filter)
#   ├── NotFoundError                  404 caller_fault   (route)
#   │   └── ModelNotFoundError         404 model_access
#   ├── MethodNotAllowedError          405 caller_fault
#   ├── PayloadTooLargeError           413 caller_fault
#   ├── HeaderTooLargeError            431 caller_fault
#   ├── RateLimitError                 429 rate_limit
#   │   └── QuotaExhaustedError        429 quota
#   ├── UpstreamError                  502 transient      (bad answer, connection reset)
#   │   └── UpstreamAuthError          502 credential     (the provider refused the account's key)
#   ├── ServiceUnavailableError        503 transient      (overloaded, no account left, draining)
#   └── UpstreamTimeoutError           504 transient
#
# `failure` is a closed vocabulary; routing decides retry / rotate / fall back / stop from it alone.

FAILURE_CLASSES = frozenset(
    {"credential", "quota", "rate_limit", "model_access", "caller_fault", "transient", "unknown"}
)


class GatewayError(Exception):
    """An error with the HTTP status we answer with and the failure class routing acts on.

    `message` is safe to show to the client: it never contains credentials or internal paths.
    `code` is a short machine code (OpenAI-style) that each client format may expose.
    `retry_after` (seconds) travels to the client as a `retry-after` header.
    `upstream_status` is the status the provider answered with, when the error came from one.
    """

    status: ClassVar[int] = 500
    failure: ClassVar[str] = "unknown"
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str = "internal error",
        *,
        retry_after: float | None = None,
        upstream_status: int | None = None,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.upstream_status = upstream_status
        self.param = param
        if code is not None:
            self.code = code  # type: ignore[misc]  # instance override of the class default
        if status is not None:
            self.status = status  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.failure}, {self.message!r})"


class InvalidRequestError(GatewayError):
    status = 400
    failure = "caller_fault"
    code = "invalid_request_error"


class ContextLengthError(InvalidRequestError):
    code = "context_length_exceeded"


class AuthenticationError(GatewayError):
    status = 401
    failure = "credential"
    code = "invalid_api_key"


class BudgetExceededError(GatewayError):
    status = 402
    failure = "quota"
    code = "budget_exceeded"


class PermissionDeniedError(GatewayError):
    status = 403
    failure = "caller_fault"
    code = "permission_denied"


class NotFoundError(GatewayError):
    status = 404
    failure = "caller_fault"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    failure = "model_access"
    code = "model_not_found"


class MethodNotAllowedError(GatewayError):
    status = 405
    failure = "caller_fault"
    code = "method_not_allowed"


class PayloadTooLargeError(GatewayError):
    status = 413
    failure = "caller_fault"
    code = "request_too_large"


class HeaderTooLargeError(GatewayError):
    status = 431
    failure = "caller_fault"
    code = "headers_too_large"


class RateLimitError(GatewayError):
    status = 429
    failure = "rate_limit"
    code = "rate_limit_exceeded"


class QuotaExhaustedError(RateLimitError):
    failure = "quota"
    code = "insufficient_quota"


class UpstreamError(GatewayError):
    status = 502
    failure = "transient"
    code = "upstream_error"


class UpstreamAuthError(UpstreamError):
    failure = "credential"
    code = "upstream_auth_error"


class ServiceUnavailableError(GatewayError):
    status = 503
    failure = "transient"
    code = "service_unavailable"


class UpstreamTimeoutError(GatewayError):
    status = 504
    failure = "transient"
    code = "upstream_timeout"


# ==========================================================================================================
# 3. codec
# ==========================================================================================================
# msgspec is the fast path; the stdlib json module is the fallback, forced by OMNIROUTE_PURE=1.
# Both accept and produce the same Python values (dicts, lists, str, int, float, bool, None) and
# encode dataclasses field by field, so nothing above this section knows which one is in use.

JsonObj = dict[str, Any]  # a decoded JSON object: the one place `Any` is allowed to stand for JSON
JsonValue = Any

PURE = os.environ.get("OMNIROUTE_PURE", "") not in ("", "0", "false", "no")


class JSONDecodeError(ValueError):
    """Raised for bytes that are not valid JSON (or nest deeper than the interpreter allows)."""


def _encode_default(obj: object) -> object:
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


msgspec: Any = None
if not PURE:
    try:
        import msgspec
    except ImportError:
        msgspec = None

if msgspec is not None:
    _ms_encoder = msgspec.json.Encoder(enc_hook=_encode_default)
    _ms_decode = msgspec.json.decode
    _ms_error = msgspec.DecodeError
    CODEC = "msgspec"

    def dumps(obj: object) -> bytes:
        """Encode to compact UTF-8 JSON bytes."""
        return _ms_encoder.encode(obj)  # type: ignore[no-any-return]

    def loads(data: bytes | bytearray | memoryview | str) -> JsonValue:
        """Decode JSON; raise JSONDecodeError on anything invalid."""
        try:
            return _ms_decode(data)
        except (_ms_error, RecursionError, UnicodeDecodeError) as exc:
            raise JSONDecodeError(str(exc)) from None

else:
    import json as _json

    _std_encoder = _json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, default=_encode_default, allow_nan=False
    )
    _std_decoder = _json.JSONDecoder()
    CODEC = "json"

    def dumps(obj: object) -> bytes:
        """Encode to compact UTF-8 JSON bytes."""
        return _std_encoder.encode(obj).encode("utf-8", "surrogatepass")

    def loads(data: bytes | bytearray | memoryview | str) -> JsonValue:
        """Decode JSON; raise JSONDecodeError on anything invalid."""
        try:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8")
            value, end = _std_decoder.raw_decode(text, _skip_ws(text, 0))
            if _skip_ws(text, end) != len(text):
                raise ValueError("extra data after the JSON value")
            return value
        except (ValueError, RecursionError) as exc:
            raise JSONDecodeError(str(exc)) from None


def _skip_ws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in " \t\r\n":
        pos += 1
    return pos


def dumps_str(obj: object) -> str:
    """Encode to a JSON str (for places that need text, such as tool-call arguments)."""
    return dumps(obj).decode("utf-8")


def json_depth_exceeds(value: JsonValue, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `value` nests containers deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[JsonValue, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node  # type: ignore[assignment]
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def loads_object(data: bytes | bytearray | memoryview | str, *, what: str = "request body") -> JsonObj:
    """Decode a JSON object (not an array or scalar) or raise InvalidRequestError saying why."""
    try:
        value = loads(data)
    except JSONDecodeError as exc:
        raise InvalidRequestError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{what} must be a JSON object")
    return value


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup on a plain mapping (keys already lower-case by convention)."""
    return headers.get(name) or headers.get(name.lower())


# ==========================================================================================================
# 8. main (placeholder until the remaining sections land)
# ==========================================================================================================


def main(argv: list[str] | None = None) -> int:
    print(f"omniroute {__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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

import base64 as _base64
import contextlib
import hashlib as _hashlib
import hmac as _hmac
import logging
import os
import queue as _queue
import random as _random
import re as _re
import secrets as _secrets
import sys
import threading as _threading
import time as _time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
MAX_JSON_DEPTH = 64  # how deep recursive translators (schema rewriting) descend; real schemas nest < 20
# Request bodies themselves nest as deep as the JSON decoder allows (about 1000 levels; deeper is a 400):
# walking every body to enforce 64 would cost more than decoding it (~2 ms for a 300 kB agent request).
HEADER_TIMEOUT_S = 10.0  # slowloris: the whole header block must arrive within this
BODY_IDLE_TIMEOUT_S = 30.0  # a request body that stalls this long is abandoned
KEEPALIVE_TIMEOUT_S = 75.0  # idle keep-alive connections are closed after this
MAX_CONNECTIONS = 1024  # beyond this new connections get 503 at once rather than queueing
DRAIN_TIMEOUT_S = 30.0  # graceful shutdown lets streams finish for this long

UPSTREAM_CONNECT_TIMEOUT_S = 10.0
UPSTREAM_FIRST_BYTE_TIMEOUT_S = 120.0  # reasoning models can think a long time before the first token
UPSTREAM_IDLE_TIMEOUT_S = 120.0  # silence between stream chunks after which the stream is dead
REQUEST_DEADLINE_S = 600.0  # covers every attempt of one request, retries and fallbacks included
# A provider sending faster than this is relayed at most once per interval: a burst leaves in a few writes
# instead of one per event (each costs a wake-up, a read and a write), and nobody sees 2 ms.
STREAM_COALESCE_MS = 2.0

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


_unique = _random.Random(_secrets.randbits(128))  # noqa: S311 - ids, not secrets


def unique_hex(nbytes: int = 16) -> str:
    """A random hex id for request ids, response ids, tool-call ids: unique, not secret. A PRNG seeded once
    from the OS, because uuid4/os.urandom cost a syscall per id on the request path. Never for keys."""
    return f"{_unique.getrandbits(nbytes * 8):0{nbytes * 2}x}"


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
# 4. settings
# ==========================================================================================================
# Precedence, lowest first: defaults <- config file (<data_dir>/config.json or --config) <- OMNIROUTE_<NAME>
# environment variables <- command-line flags. Every setting has a doc line; the README table is checked
# against SETTINGS_DOC by a test.


@dataclass(slots=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: str = DEFAULT_DATA_DIR
    config: str = ""
    no_open: bool = False
    demo: bool = False
    no_auth: bool = False
    log_level: str = "info"
    log_payloads: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    max_connections: int = MAX_CONNECTIONS
    # security settings (omniroute_web/ipfilter.py, ratelimit.py, omniroute_providers/guard.py)
    max_connections_per_ip: int = 0
    rate_limit_per_ip_rpm: int = 0
    ip_allow_v1: str = ""
    ip_block_v1: str = ""
    ip_allow_admin: str = ""
    ip_block_admin: str = ""
    injection_guard: str = "off"
    injection_patterns: str = ""
    header_timeout_s: float = HEADER_TIMEOUT_S
    body_idle_timeout_s: float = BODY_IDLE_TIMEOUT_S
    keepalive_timeout_s: float = KEEPALIVE_TIMEOUT_S
    drain_timeout_s: float = DRAIN_TIMEOUT_S
    upstream_connect_timeout_s: float = UPSTREAM_CONNECT_TIMEOUT_S
    upstream_first_byte_timeout_s: float = UPSTREAM_FIRST_BYTE_TIMEOUT_S
    upstream_idle_timeout_s: float = UPSTREAM_IDLE_TIMEOUT_S
    request_deadline_s: float = REQUEST_DEADLINE_S
    stream_coalesce_ms: float = STREAM_COALESCE_MS
    secret_key: str = ""
    default_model: str = ""
    account_strategy: str = "priority"
    retries_per_account: int = 1
    wait_for_cooldown_s: float = 30.0
    rate_limit_wait_s: float = 10.0
    breaker_failures: int = 5
    breaker_window_s: float = 30.0
    breaker_open_s: float = 30.0
    quota_reset_hour: int = 0
    hidden_providers: str = ""

    @property
    def data_path(self) -> str:
        return os.path.abspath(os.path.expanduser(self.data_dir))

    def redacted(self) -> dict[str, object]:
        """The settings as a dict, secrets masked: safe to log, print or return from the admin API."""
        import dataclasses

        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = ("***" if value else "") if f.name in SECRET_SETTINGS else value
        return out


SECRET_SETTINGS = frozenset({"secret_key"})

SETTINGS_DOC: dict[str, str] = {
    "host": "address to listen on; anything but loopback needs client keys (the default)",
    "port": "TCP port of the gateway and its dashboard",
    "data_dir": "where the SQLite database, the key file and logs live",
    "config": "path of a JSON config file (default: <data_dir>/config.json when it exists)",
    "no_open": "do not open the dashboard in a browser at start",
    "demo": "start with the built-in echo provider configured (no network, no tokens spent)",
    "no_auth": "serve /v1 without client keys; refused unless bound to a loopback address",
    "log_level": "debug, info, warning or error",
    "log_payloads": "keep redacted request/response bodies in the request log (debugging)",
    "max_body_bytes": "largest request body accepted (413 past it)",
    "max_connections": "open client connections at most (503 past it)",
    # security settings (omniroute_web/ipfilter.py, ratelimit.py, omniroute_providers/guard.py)
    "max_connections_per_ip": "open connections one client address may hold (429 past it; IPv6 counted "
    "per /64); 0 = no per-address cap",
    "rate_limit_per_ip_rpm": "requests a minute one client address may make, in bursts of up to a "
    "minute's worth (429 with retry-after past it; IPv6 per /64); 0 = off",
    "ip_allow_v1": "CIDRs allowed to use /v1 and /v1beta (comma-separated or a JSON list); empty = any",
    "ip_block_v1": "CIDRs refused on /v1 and /v1beta (403); wins over the allowlist",
    "ip_allow_admin": "CIDRs allowed to use /api, the dashboard and /health; empty = any",
    "ip_block_admin": "CIDRs refused on /api, the dashboard and /health (403); wins over the allowlist",
    "injection_guard": "prompt-injection guard on user and system text: off, log (warn) or block (400)",
    "injection_patterns": "the guard's regular expressions: empty = built-in list, a JSON list, or the "
    "path of a file with one per line",
    "header_timeout_s": "seconds a client has to send its request headers",
    "body_idle_timeout_s": "seconds a request body may stall before the request is abandoned",
    "keepalive_timeout_s": "seconds an idle keep-alive connection stays open",
    "drain_timeout_s": "seconds in-flight requests get to finish after SIGTERM",
    "upstream_connect_timeout_s": "seconds to connect to a provider",
    "upstream_first_byte_timeout_s": "seconds to wait for a provider's first byte",
    "upstream_idle_timeout_s": "seconds of silence after which a provider stream is considered dead",
    "request_deadline_s": "seconds one request may take over all its attempts",
    "stream_coalesce_ms": "a provider streaming faster than this is relayed at most once per this many "
    "milliseconds (a paced stream is never held); 0 = every piece the moment it arrives",
    "secret_key": "key sealing provider credentials (default: a generated key file in the data dir)",
    "default_model": "model or combo used when a request names a model nothing else resolves",
    "hidden_providers": "provider ids or aliases left out of /v1/models (comma-separated); requests that "
    "name their models are still served",
    "account_strategy": "how one provider's accounts are ordered: priority, round-robin, weighted, random, "
    "least-used, p2c or cost-optimized",
    "retries_per_account": "extra tries on the same account after a transient failure (jittered backoff)",
    "wait_for_cooldown_s": "when every account is cooling down, wait this long at most for the soonest one",
    "rate_limit_wait_s": "longest wait for a per-account rate-limit slot before trying the next account",
    "breaker_failures": "failures within breaker_window_s that open a circuit breaker (429s do not count)",
    "breaker_window_s": "the window in which breaker failures are counted",
    "breaker_open_s": "how long an open breaker waits before letting one probe request through",
    "quota_reset_hour": "UTC hour at which daily/weekly/monthly quotas and budgets reset",
}


def _coerce(name: str, raw: object, current: object) -> object:
    if isinstance(current, str) and isinstance(raw, list):
        return dumps_str(raw)  # a list in config.json (CIDRs, patterns): its consumer reads the JSON text
    if isinstance(current, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"setting {name}: expected a boolean, got {raw!r}")
    if isinstance(current, int):
        return int(str(raw))
    if isinstance(current, float):
        return float(str(raw))
    return str(raw)


def load_settings(cli: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from defaults, the config file, the environment and CLI values (non-None only)."""
    import dataclasses

    env = os.environ if env is None else env
    cli = {k: v for k, v in (cli or {}).items() if v is not None}
    settings = Settings()
    names = [f.name for f in dataclasses.fields(Settings)]

    def apply(source: Mapping[str, object], origin: str) -> None:
        for key, raw in source.items():
            if key not in names:
                raise ValueError(f"unknown setting {key!r} in {origin}")
            setattr(settings, key, _coerce(key, raw, getattr(settings, key)))

    early: dict[str, object] = {
        k: env[f"OMNIROUTE_{k.upper()}"] for k in ("data_dir", "config") if f"OMNIROUTE_{k.upper()}" in env
    }
    early.update({k: cli[k] for k in ("data_dir", "config") if k in cli})
    apply(early, "the environment")
    path = settings.config or os.path.join(settings.data_path, "config.json")
    if os.path.exists(path):
        with open(path, "rb") as fh:
            raw = loads(fh.read())
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: the config file must hold a JSON object")
        apply(raw, path)
    apply(
        {k: env[f"OMNIROUTE_{k.upper()}"] for k in names if f"OMNIROUTE_{k.upper()}" in env},
        "the environment",
    )
    apply(cli, "the command line")
    return settings


def is_loopback_host(host: str) -> bool:
    import ipaddress

    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ==========================================================================================================
# 5. store
# ==========================================================================================================
# One SQLite file. WAL so readers never block the writer; a busy timeout so a CLI command and the running
# server can share the file; foreign keys on. All writes go through one thread fed by a queue: the request
# path enqueues a usage row and moves on, and rows are committed in batches (one fsync per batch).
# Migrations are named functions applied in order and recorded in `migrations`.


BUSY_TIMEOUT_MS = 5000


class Db:
    """The few operations we need, over apsw or sqlite3 (same SQL, same `?` parameters, tuples out)."""

    def __init__(self, path: str, *, readonly: bool = False) -> None:
        self.path = path
        self.driver = "sqlite3"
        self._apsw = False
        if not PURE:
            try:
                import apsw

                flags = (
                    apsw.SQLITE_OPEN_READONLY
                    if readonly
                    else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
                )
                self._conn: Any = apsw.Connection(path, flags=flags)
                self._conn.setbusytimeout(BUSY_TIMEOUT_MS)
                self._apsw = True
                self.driver = "apsw"
            except ImportError:
                pass
        if not self._apsw:
            import sqlite3

            uri = f"file:{path}?mode=ro" if readonly else path
            self._conn = sqlite3.connect(
                uri,
                uri=readonly,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        self.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            self.execute("PRAGMA journal_mode = WAL")
            self.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: consistent after any crash

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql, params))

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._conn.executemany(sql, rows)

    def one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def last_rowid(self) -> int:
        if self._apsw:
            return int(self._conn.last_insert_rowid())
        return int(self.execute("SELECT last_insert_rowid()")[0][0])

    def changes(self) -> int:
        return int(self.execute("SELECT changes()")[0][0])

    def transaction(self) -> _Transaction:
        return _Transaction(self)

    def close(self) -> None:
        self._conn.close()


class _Transaction:
    def __init__(self, db: Db) -> None:
        self.db = db

    def __enter__(self) -> Db:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


Migration = tuple[str, "Callable[[Db], None]"]


def _m0001_initial(db: Db) -> None:
    db.execute(
        """CREATE TABLE kv (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE custom_providers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            format TEXT NOT NULL,
            base_url TEXT NOT NULL,
            auth TEXT NOT NULL DEFAULT 'bearer',
            headers TEXT NOT NULL DEFAULT '{}',
            local INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            provider TEXT NOT NULL,
            name TEXT NOT NULL,
            secret TEXT NOT NULL DEFAULT '',
            base_url TEXT,
            headers TEXT NOT NULL DEFAULT '{}',
            priority INTEGER NOT NULL DEFAULT 0,
            enabled INTEGER NOT NULL DEFAULT 1,
            limits TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (provider, name)
        )"""
    )
    db.execute(
        """CREATE TABLE client_keys (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL UNIQUE,
            salt TEXT NOT NULL,
            hash TEXT NOT NULL,
            scopes TEXT NOT NULL DEFAULT '{}',
            limits TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            expires_at REAL,
            revoked_at REAL,
            last_used_at REAL
        )"""
    )
    db.execute(
        """CREATE TABLE usage (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            request_id TEXT NOT NULL,
            key_id INTEGER,
            endpoint TEXT NOT NULL,
            client_format TEXT NOT NULL,
            model_requested TEXT NOT NULL,
            provider TEXT,
            account_id INTEGER,
            model_served TEXT,
            stream INTEGER NOT NULL,
            status INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            latency_ms REAL NOT NULL,
            ttfb_ms REAL,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            tokens_estimated INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,
            attempts TEXT NOT NULL DEFAULT '[]',
            error TEXT
        )"""
    )
    db.execute("CREATE INDEX usage_ts ON usage (ts)")
    db.execute("CREATE INDEX usage_provider_ts ON usage (provider, ts)")
    db.execute("CREATE INDEX usage_key_ts ON usage (key_id, ts)")


def _m0002_routing(db: Db) -> None:
    db.execute(
        """CREATE TABLE combos (
            name TEXT PRIMARY KEY,
            strategy TEXT NOT NULL DEFAULT 'priority',
            targets TEXT NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            sticky INTEGER NOT NULL DEFAULT 1,
            description TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE model_aliases (
            pattern TEXT PRIMARY KEY,
            target TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE budgets (
            scope TEXT NOT NULL CHECK (scope IN ('key', 'provider')),
            id TEXT NOT NULL,
            period TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
            limit_usd REAL NOT NULL CHECK (limit_usd >= 0),
            PRIMARY KEY (scope, id, period)
        )"""
    )
    db.execute(
        """CREATE TABLE price_overrides (
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            price TEXT NOT NULL,
            PRIMARY KEY (provider, model)
        )"""
    )


MIGRATIONS: list[Migration] = [("0001_initial", _m0001_initial), ("0002_routing", _m0002_routing)]


# dashboard (omniroute_web/session.py): the dashboard password, browser sessions, the audit trail.
def _m0003_dashboard(db: Db) -> None:
    db.execute(
        """CREATE TABLE dashboard_users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE dashboard_sessions (
            id_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES dashboard_users (id) ON DELETE CASCADE,
            csrf TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_seen REAL NOT NULL,
            ip TEXT NOT NULL DEFAULT '',
            user_agent TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute(
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            ip TEXT NOT NULL DEFAULT '',
            status INTEGER NOT NULL DEFAULT 0,
            detail TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute("CREATE INDEX audit_log_ts ON audit_log (ts)")


MIGRATIONS.append(("0003_dashboard", _m0003_dashboard))


# payload logging (omniroute_providers/payloads.py): one row of redacted, capped bodies per usage row, only
# for requests captured (log_payloads on, or x-omniroute-debug); deleted with its usage row.
def _m0004_payloads(db: Db) -> None:
    db.execute(
        """CREATE TABLE payloads (
            usage_id INTEGER PRIMARY KEY REFERENCES usage (id) ON DELETE CASCADE,
            request_id TEXT NOT NULL,
            ts REAL NOT NULL,
            client_request TEXT,
            upstream_method TEXT,
            upstream_url TEXT,
            upstream_headers TEXT,
            upstream_request TEXT,
            upstream_status INTEGER,
            upstream_response_headers TEXT,
            upstream_response TEXT,
            client_response TEXT,
            truncated TEXT NOT NULL DEFAULT '[]'
        )"""
    )
    db.execute("CREATE INDEX payloads_request_id ON payloads (request_id)")


MIGRATIONS.append(("0004_payloads", _m0004_payloads))


def migrate(db: Db, migrations: list[Migration] | None = None) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; return the names applied."""
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM migrations")}
    applied = []
    for name, step in migrations if migrations is not None else MIGRATIONS:
        if name in done:
            continue
        with db.transaction():
            step(db)
            db.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (name, _time.time()))
        applied.append(name)
    return applied


class _Waiter:
    __slots__ = ("error", "event", "result")

    def __init__(self) -> None:
        self.event = _threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class Store:
    """The database: one writer thread for every write, short-lived reads on any thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        new = not os.path.exists(path)
        db = Db(path)
        if new:
            with contextlib.suppress(OSError):
                os.chmod(path, 0o600)
        migrate(db)
        self.driver = db.driver
        self._writer_db = db
        self._queue: _queue.Queue[tuple[Any, Any] | None] = _queue.Queue(maxsize=WRITER_QUEUE_MAX)
        self.dropped_rows = 0
        self.write_errors = 0
        self._local = _threading.local()
        self._readers: list[Db] = []
        self._readers_lock = _threading.Lock()
        self._thread = _threading.Thread(target=self._writer_loop, name="omniroute-writer", daemon=True)
        self._thread.start()

    # writes ------------------------------------------------------------------------------------------------

    def submit(self, fn: Callable[[Db], Any]) -> bool:
        """Queue a write and return at once (the request path). False if the queue is full: dropped."""
        try:
            self._queue.put_nowait((fn, None))
            return True
        except _queue.Full:
            self.dropped_rows += 1
            return False

    def write(self, fn: Callable[[Db], Any]) -> Any:
        """Run `fn(db)` in its own transaction on the writer thread; return its result once committed."""
        waiter = _Waiter()
        self._queue.put((fn, waiter))
        waiter.event.wait()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is committed."""
        waiter = _Waiter()
        self._queue.put((lambda db: None, waiter))
        waiter.event.wait(timeout)

    def _writer_loop(self) -> None:
        db = self._writer_db
        no_item: Any = object()
        pending: Any = no_item  # an item read while gathering a batch that belongs to the next round
        while True:
            item = pending if pending is not no_item else self._queue.get()
            pending = no_item
            if item is None:  # close() asked us to stop
                break
            fn, waiter = item
            if waiter is not None:
                self._run_waited(db, fn, waiter)
                continue
            # Fire-and-forget rows: let the batch window fill, then take everything queued in one transaction.
            # (Sleeping, rather than waiting on the queue, means producers never wake this thread per row.)
            _time.sleep(WRITER_BATCH_S)
            batch = [fn]
            while len(batch) < 1000:
                try:
                    nxt = self._queue.get_nowait()
                except _queue.Empty:
                    break
                if nxt is None or nxt[1] is not None:
                    pending = nxt
                    break
                batch.append(nxt[0])
            self._run_batch(db, batch)
        db.close()

    def _run_waited(self, db: Db, fn: Callable[[Db], Any], waiter: _Waiter) -> None:
        try:
            with db.transaction():
                waiter.result = fn(db)
        except BaseException as exc:
            waiter.error = exc
        waiter.event.set()

    def _run_batch(self, db: Db, batch: list[Callable[[Db], Any]]) -> None:
        try:
            with db.transaction():
                for fn in batch:
                    fn(db)
        except Exception as exc:
            # One bad row must not lose the others: retry them one by one.
            logging.getLogger("omniroute.store").warning("batch write failed (%s); retrying row by row", exc)
            for fn in batch:
                self._run_single(db, fn)

    def _run_single(self, db: Db, fn: Callable[[Db], Any]) -> None:
        try:
            with db.transaction():
                fn(db)
        except Exception as exc:
            self.write_errors += 1
            logging.getLogger("omniroute.store").error("database write failed: %s", exc)

    # reads -------------------------------------------------------------------------------------------------

    def reader(self) -> Db:
        """A read connection for the calling thread (opened on first use)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = Db(self.path)
            self._local.db = db
            with self._readers_lock:
                self._readers.append(db)
        return db

    def read(self, fn: Callable[[Db], Any]) -> Any:
        return fn(self.reader())

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        with self._readers_lock:
            for db in self._readers:
                with contextlib.suppress(Exception):
                    db.close()
            self._readers.clear()


def kv_get(db: Db, key: str) -> str | None:
    row = db.one("SELECT value FROM kv WHERE key = ?", (key,))
    return None if row is None else str(row[0])


def kv_set(db: Db, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def bump_config_version(db: Db) -> None:
    """Tell running servers (this process or another) that accounts/keys/routes changed."""
    db.execute(
        "INSERT INTO kv (key, value) VALUES ('config_version', '1') "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
    )


# ==========================================================================================================
# 6. secrets
# ==========================================================================================================
# Provider credentials are sealed with AES-256-GCM under a 32-byte key kept in <data_dir>/secret.key (0600)
# or given as OMNIROUTE_SECRET_KEY. `cryptography` does the work when installed; otherwise tlslite-ng's
# pure-Python AES-GCM (bundled in the .pyz). Both produce and read the same bytes. Client keys and the
# admin token are never stored: only a salted SHA-256 of them, checked in constant time.


SEALED_PREFIX = "v1:"
_AAD = b"omniroute credential v1"


class SecretKeyError(Exception):
    """The sealing key is missing or does not open the stored credentials."""


def _aesgcm(
    key: bytes, backend: str | None = None
) -> tuple[Callable[[bytes, bytes], bytes], Callable[[bytes, bytes], bytes], str]:
    """(seal, open, backend name). `backend` forces "cryptography" or "tlslite-ng"; OMNIROUTE_PURE=1 forces
    the pure-Python one, like it forces json and sqlite3."""
    want = backend or ("tlslite-ng" if PURE else None)
    try:
        if want == "tlslite-ng":
            raise ImportError("pure mode")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        impl = AESGCM(key)
        return (
            (lambda n, p: impl.encrypt(n, p, _AAD)),
            (lambda n, c: impl.decrypt(n, c, _AAD)),
            "cryptography",
        )
    except ImportError:
        gcm = _pure_aesgcm_module().new(bytearray(key))

        def seal(nonce: bytes, plain: bytes) -> bytes:
            return bytes(gcm.seal(bytearray(nonce), bytearray(plain), bytearray(_AAD)))

        def open_(nonce: bytes, sealed: bytes) -> bytes:
            out = gcm.open(bytearray(nonce), bytearray(sealed), bytearray(_AAD))
            if out is None:
                raise ValueError("authentication failed")
            return bytes(out)

        return seal, open_, "tlslite-ng"


def _pure_aesgcm_module() -> Any:
    """tlslite-ng's python_aesgcm without running `tlslite/__init__.py`, which imports the whole TLS stack:
    about 7 MB of resident memory for the few small modules AES-GCM needs. A bare package module stands in
    for `tlslite` (its submodules import by absolute name, and tlslite's deprecation shim reads its
    callers' source through sys.modules, so they stay registered). Nothing else in the gateway imports
    tlslite; its submodules would still import, only the top-level re-exports are missing."""
    import importlib
    import importlib.util
    import types

    if "tlslite" not in sys.modules:
        spec = importlib.util.find_spec("tlslite")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("tlslite-ng is not installed")
        stand_in = types.ModuleType("tlslite")
        stand_in.__path__ = list(spec.submodule_search_locations)
        sys.modules["tlslite"] = stand_in
    return importlib.import_module("tlslite.utils.python_aesgcm")


class Sealer:
    """Seals and opens credential strings: `v1:<b64 nonce>:<b64 ciphertext+tag>`."""

    def __init__(self, key: bytes, backend: str | None = None) -> None:
        if len(key) != 32:
            raise SecretKeyError("the sealing key must be 32 bytes")
        self._seal, self._open, self.backend = _aesgcm(key, backend)

    def seal(self, plaintext: str) -> str:
        if not plaintext:
            return ""
        nonce = _secrets.token_bytes(12)
        sealed = self._seal(nonce, plaintext.encode("utf-8"))
        return SEALED_PREFIX + _base64.b64encode(nonce).decode() + ":" + _base64.b64encode(sealed).decode()

    def open(self, token: str) -> str:
        if not token:
            return ""
        if not token.startswith(SEALED_PREFIX):
            raise SecretKeyError("stored credential is not sealed")
        try:
            nonce_b64, sealed_b64 = token[len(SEALED_PREFIX) :].split(":", 1)
            plain = self._open(_base64.b64decode(nonce_b64), _base64.b64decode(sealed_b64))
        except Exception as exc:
            raise SecretKeyError("the sealing key does not open this credential (wrong secret.key?)") from exc
        return plain.decode("utf-8")


def load_sealing_key(data_path: str, configured: str = "") -> bytes:
    """The key from OMNIROUTE_SECRET_KEY (base64/hex of 32 bytes, or a passphrase run through scrypt), else
    <data_dir>/secret.key, created 0600 on first use."""
    if configured:
        for decode in (_base64.b64decode, bytes.fromhex):
            try:
                raw = decode(configured)
            except ValueError:
                continue
            if len(raw) == 32:
                return raw
        return _hashlib.scrypt(configured.encode(), salt=b"omniroute-secret-key", n=2**14, r=8, p=1, dklen=32)
    path = os.path.join(data_path, "secret.key")
    if os.path.exists(path):
        with open(path, "rb") as fh:
            raw = _base64.b64decode(fh.read().strip())
        if len(raw) != 32:
            raise SecretKeyError(f"{path} does not hold a 32-byte key")
        return raw
    key = _secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_base64.b64encode(key) + b"\n")
    return key


KEY_PREFIX = "omr"  # client keys look like omr_<id8>_<secret43>: the id is public and indexes the row


def new_client_key() -> tuple[str, str]:
    """(full key shown once, public prefix id)."""
    key_id = _secrets.token_hex(4)
    return f"{KEY_PREFIX}_{key_id}_{_secrets.token_urlsafe(32)}", key_id


def key_prefix(full_key: str) -> str | None:
    parts = full_key.split("_", 2)
    if len(parts) == 3 and parts[0] == KEY_PREFIX and len(parts[1]) == 8:
        return parts[1]
    return None


def hash_secret(secret: str, salt: str | None = None) -> tuple[str, str]:
    """(salt, hex digest). Keys carry 256 random bits, so one SHA-256 round is enough; the salt keeps
    equal keys from having equal hashes and defeats precomputed tables."""
    salt = salt if salt is not None else _secrets.token_hex(16)
    return salt, _hashlib.sha256((salt + secret).encode()).hexdigest()


def verify_secret(secret: str, salt: str, digest: str) -> bool:
    return _hmac.compare_digest(hash_secret(secret, salt)[1], digest)


# ==========================================================================================================
# 7. logging
# ==========================================================================================================
# Every handler gets the redacting filter: Authorization/x-api-key/x-goog-api-key header values, key=…
# query parameters, JSON fields named like keys or tokens, anything shaped like a provider key, and every
# exact secret the process has loaded (registered with `register_secret`) are masked before a line is
# written anywhere.


_known_secrets: set[str] = set()
_SECRET_PATTERNS = [
    _re.compile(r"(?i)(authorization\s*[:=]\s*\"?(?:bearer|basic)?\s*)[^\s\",']+"),
    _re.compile(r"(?i)((?:x-api-key|x-goog-api-key|api-key|cookie|set-cookie)\s*[:=]\s*\"?)[^\s\",']+"),
    _re.compile(r"(?i)([?&](?:key|api_key|token|access_token)=)[^&\s\"']+"),
    _re.compile(
        r"(?i)(\"(?:[a-z_]*api[_-]?key|[a-z_]*token|[a-z_]*secret|password|authorization)\"\s*:\s*\")[^\"]+"
    ),
    _re.compile(r"()\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}"),
    _re.compile(r"()\bAIza[0-9A-Za-z_\-]{30,}"),
    _re.compile(r"()\bomr_[0-9a-f]{8}_[A-Za-z0-9_\-]{20,}"),
]
REDACTED = "[REDACTED]"


def register_secret(value: str) -> None:
    """Mask this exact string in every log line from now on (keys we load, tokens we mint)."""
    if value and len(value) >= 6:
        _known_secrets.add(value)


def redact(text: str) -> str:
    for secret in tuple(_known_secrets):  # a copy: the writer thread redacts while keys get registered
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


class RingBufferHandler(logging.Handler):
    """The last `capacity` log lines, for the dashboard's live console."""

    def __init__(self, capacity: int = 2000) -> None:
        super().__init__()
        from collections import deque

        self.lines: deque[tuple[float, str, str, str]] = deque(maxlen=capacity)
        self.listeners: list[Callable[[tuple[float, str, str, str]], None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        entry = (record.created, record.levelname, record.name, self.format(record))
        self.lines.append(entry)
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                listener(entry)


console_buffer = RingBufferHandler()


def setup_logging(level: str = "info") -> None:
    root = logging.getLogger("omniroute")
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    root.propagate = False
    for h in list(root.handlers):
        root.removeHandler(h)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    console_buffer.setFormatter(logging.Formatter("%(message)s"))
    for handler in (stream, console_buffer):
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)


# ==========================================================================================================
# 8. main
# ==========================================================================================================
# `omniroute` serves; `omniroute provider|key|combo|usage|admin-token ...` manage the data dir directly (they
# work whether or not a gateway is running on it: a running one picks changes up within a second).


def _parser() -> Any:
    import argparse

    p = argparse.ArgumentParser(
        prog="omniroute",
        description="One local endpoint in front of many LLM providers.",
        epilog="Run `omniroute <command> --help` for a command's options. Every option also reads "
        "OMNIROUTE_<NAME> from the environment (e.g. OMNIROUTE_PORT).",
    )
    p.add_argument("--version", action="version", version=f"omniroute {__version__}")
    p.add_argument("--host", help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--data-dir", dest="data_dir", help=f"data directory (default {DEFAULT_DATA_DIR})")
    p.add_argument("--config", help="JSON config file (default <data-dir>/config.json)")
    p.add_argument(
        "--no-open", dest="no_open", action="store_const", const=True, help=SETTINGS_DOC["no_open"]
    )
    p.add_argument("--demo", action="store_const", const=True, help=SETTINGS_DOC["demo"])
    p.add_argument(
        "--no-auth", dest="no_auth", action="store_const", const=True, help=SETTINGS_DOC["no_auth"]
    )
    p.add_argument("--log-level", dest="log_level", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the gateway (the default)")

    prov = sub.add_parser("provider", help="provider accounts").add_subparsers(dest="action", required=True)
    prov.add_parser("catalog", help="list the providers omniroute knows")
    add = prov.add_parser("add", help="add an account (an API key) for a provider")
    add.add_argument("provider", help="provider id or alias (see `omniroute provider catalog`)")
    add.add_argument("--name", default="", help="account name (default: 'default')")
    src = add.add_mutually_exclusive_group()
    src.add_argument("--key", help="the API key (visible in shell history: prefer --key-env or --key-stdin)")
    src.add_argument("--key-env", dest="key_env", help="read the API key from this environment variable")
    src.add_argument("--key-stdin", dest="key_stdin", action="store_true", help="read the API key from stdin")
    add.add_argument("--base-url", dest="base_url", help="override the provider's base URL")
    add.add_argument("--priority", type=int, default=0, help="lower is tried first (default 0)")
    add.add_argument("--header", action="append", default=[], metavar="NAME=VALUE", help="extra header")
    add.add_argument("--disabled", action="store_true", help="add it disabled")
    add.add_argument(
        "--local", action="store_true", help="allow a private/loopback base URL for this account"
    )
    custom = prov.add_parser("add-custom", help="add a custom OpenAI/Anthropic/Gemini-compatible provider")
    custom.add_argument("id", help="new provider id (lower-case, dashes)")
    custom.add_argument("--base-url", dest="base_url", required=True)
    custom.add_argument(
        "--format", default="openai-chat", help="openai-chat, openai-responses, anthropic or gemini"
    )
    custom.add_argument("--name", default="")
    custom.add_argument("--auth", default="bearer", help="bearer, x-api-key, x-goog-api-key or none")
    custom.add_argument("--header", action="append", default=[], metavar="NAME=VALUE")
    custom.add_argument("--local", action="store_true", help="the base URL is on this machine or the LAN")
    prov.add_parser("list", help="list accounts")
    for verb, text in (
        ("test", "send a tiny request"),
        ("enable", "enable"),
        ("disable", "disable"),
        ("remove", "delete"),
    ):
        cmd = prov.add_parser(verb, help=f"{text} an account")
        cmd.add_argument("id", type=int, help="account id (see `omniroute provider list`)")

    keys = sub.add_parser("key", help="client API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="mint a key (shown once)")
    create.add_argument("--name", default="default")
    update = keys.add_parser("update", help="change a key's name, scopes, limits or expiry")
    update.add_argument("id", help="key id or its omr_<prefix>")
    update.add_argument("--name")
    update.add_argument("--no-expiry", action="store_true", help="the key never expires")
    for cmd in (create, update):
        cmd.add_argument("--models", help="allowed models or combos, comma-separated patterns (openai/*)")
        cmd.add_argument("--providers", help="allowed provider ids, comma-separated")
        cmd.add_argument("--rpm", type=int, help="requests per minute")
        cmd.add_argument("--rpd", type=int, help="requests per day")
        cmd.add_argument("--concurrent", type=int, help="requests in flight")
        cmd.add_argument("--budget-day", type=float, help="USD per day")
        cmd.add_argument("--budget-month", type=float, help="USD per month")
        cmd.add_argument("--expires-days", type=float, help="the key stops working after this many days")
    keys.add_parser("list", help="list keys")
    for verb, text in (("revoke", "revoke a key"), ("rotate", "a new secret for a key (shown once)")):
        cmd = keys.add_parser(verb, help=text)
        cmd.add_argument("id", help="key id or its omr_<prefix>")

    combo = sub.add_parser("combo", help="combos: named fallback chains").add_subparsers(
        dest="action", required=True
    )
    cadd = combo.add_parser("add", help="create or replace a combo")
    cadd.add_argument("name")
    cadd.add_argument("targets", nargs="+", help="provider/model, alias or combo names, in order")
    cadd.add_argument(
        "--strategy",
        default="priority",
        help="priority, round-robin, weighted, random, least-used, p2c or cost-optimized",
    )
    cadd.add_argument(
        "--sticky", type=int, default=1, help="round-robin: requests per target before rotating"
    )
    combo.add_parser("list", help="list combos")
    crm = combo.add_parser("remove", help="delete a combo")
    crm.add_argument("name")

    admin = sub.add_parser("admin-token", help="the admin API token").add_subparsers(
        dest="action", required=True
    )
    admin.add_parser("rotate", help="mint a new admin token (the old one stops working)")
    sub.add_parser("reset-password", help="print a one-time link that sets a new dashboard password")

    usage = sub.add_parser("usage", help="usage and cost summary")
    usage.add_argument("--since", default="24h", help="30m, 24h, 7d ... (default 24h)")
    usage.add_argument("--by", default="provider", choices=["provider", "model", "key", "day", "account"])
    return p


def _headers_arg(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--header wants NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _read_key(args: Any) -> str:
    if args.key is not None:
        return str(args.key)
    if args.key_env:
        value = os.environ.get(args.key_env)
        if not value:
            raise SystemExit(f"environment variable {args.key_env} is empty or unset")
        return value
    if args.key_stdin:
        return sys.stdin.readline().strip()
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("API key (leave empty for none): ").strip()
    return ""


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _open_data(settings: Settings) -> tuple[Store, Sealer]:
    data = settings.data_path
    os.makedirs(data, mode=0o700, exist_ok=True)
    return Store(os.path.join(data, "omniroute.sqlite")), Sealer(load_sealing_key(data, settings.secret_key))


def _manage(args: Any, settings: Settings) -> int:
    from omniroute_providers import manage
    from omniroute_providers.catalog import load_catalog
    from omniroute_providers.registry import load_registry

    store, sealer = _open_data(settings)
    try:
        catalog = store.read(lambda db: load_registry(db, sealer)).catalog
        if args.command == "provider":
            if args.action == "catalog":
                rows = [
                    {"id": p.id, "alias": p.alias, "format": p.format, "name": p.name, "base_url": p.base_url}
                    for p in load_catalog().providers.values()
                ]
                _print_table(rows, ["id", "alias", "format", "name", "base_url"])
            elif args.action == "add":
                data = manage.AccountInput(
                    provider=args.provider,
                    name=args.name,
                    key=_read_key(args),
                    base_url=args.base_url,
                    priority=args.priority,
                    enabled=not args.disabled,
                    headers=_headers_arg(args.header),
                    local=args.local,
                )
                account_id = manage.add_account(store, sealer, catalog, data)
                print(f"added account {account_id} for {data.provider}")
            elif args.action == "add-custom":
                pid = manage.add_custom_provider(
                    store,
                    catalog,
                    provider_id=args.id,
                    name=args.name,
                    format=args.format,
                    base_url=args.base_url,
                    headers=_headers_arg(args.header),
                    auth=args.auth,
                    local=args.local,
                )
                print(f"added provider {pid}; now add an account: omniroute provider add {pid}")
            elif args.action == "list":
                rows = store.read(lambda db: manage.list_accounts(db, sealer))
                _print_table(
                    rows, ["id", "provider", "name", "key", "priority", "enabled", "local", "base_url"]
                )
            elif args.action in ("enable", "disable"):
                manage.update_account(store, sealer, args.id, {"enabled": args.action == "enable"})
                print(f"account {args.id} {args.action}d")
            elif args.action == "remove":
                manage.remove_account(store, args.id)
                print(f"account {args.id} removed")
            elif args.action == "test":
                return _probe(store, sealer, args.id)
        elif args.command == "key":
            if args.action == "create":
                spec = _key_spec(args)
                full, key_id = manage.create_key(store, args.name, **spec)
                print(f"key {key_id} ({args.name}): {full}\nshown once: store it now")
            elif args.action == "update":
                changes: dict[str, object] = _key_spec(args, only_given=True)
                if args.name is not None:
                    changes["name"] = args.name
                if args.no_expiry:
                    changes["expires_at"] = None
                manage.update_key(store, args.id, changes)
                print(f"key {args.id} updated")
            elif args.action == "rotate":
                full, key_id = manage.rotate_key(store, args.id)
                print(f"key {key_id}: {full}\nshown once: the old key no longer works")
            elif args.action == "list":
                _print_table(
                    store.read(manage.list_keys),
                    ["id", "name", "prefix", "revoked", "expired", "requests", "cost_usd", "last_used_at"],
                )
            elif args.action == "revoke":
                manage.revoke_key(store, args.id)
                print(f"key {args.id} revoked")
        elif args.command == "combo":
            _combo_command(args, store, catalog)
        elif args.command == "admin-token":
            print(f"admin token: {manage.rotate_admin_token(store)}\nshown once: store it now")
        elif args.command == "usage":
            return _usage(store, args)
    except GatewayError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0


def _key_spec(args: Any, only_given: bool = False) -> dict[str, object]:
    """`key create|update` flags -> {scopes, limits, expires_at}; with only_given, what was not given is
    left out (an update keeps it) — limits are replaced as a whole when any limit flag is given."""
    spec: dict[str, object] = {}
    scopes = {
        name: [v.strip() for v in value.split(",") if v.strip()]
        for name, value in (("models", args.models), ("providers", args.providers))
        if value is not None
    }
    if scopes or not only_given:
        spec["scopes"] = scopes
    flags = {
        "rpm": args.rpm,
        "rpd": args.rpd,
        "concurrent": args.concurrent,
        "budget_usd_day": args.budget_day,
        "budget_usd_month": args.budget_month,
    }
    limits = {k: v for k, v in flags.items() if v is not None}
    if limits or not only_given:
        spec["limits"] = limits
    if args.expires_days is not None:
        spec["expires_at"] = _time.time() + args.expires_days * 86400
    elif not only_given:
        spec["expires_at"] = None
    return spec


def _combo_command(args: Any, store: Store, catalog: Any) -> None:
    from omniroute_providers import manage

    if args.action == "add":
        raw = {"name": args.name, "targets": args.targets, "strategy": args.strategy, "sticky": args.sticky}
        exists = any(c["name"] == args.name for c in store.read(manage.list_combos))
        manage.save_combo(store, catalog, raw, replace=args.name if exists else None)
        print(f"combo {args.name}: {' -> '.join(args.targets)} ({args.strategy})")
    elif args.action == "list":
        rows = [
            {**c, "targets": " -> ".join(t["model"] for t in c["targets"])}
            for c in store.read(manage.list_combos)
        ]
        _print_table(rows, ["name", "strategy", "enabled", "targets"])
    elif args.action == "remove":
        manage.remove_combo(store, args.name)
        print(f"combo {args.name} removed")


def _probe(store: Store, sealer: Sealer, account_id: int) -> int:
    import trio

    from omniroute_providers.pipeline import Pipeline
    from omniroute_providers.probe import probe_account
    from omniroute_providers.registry import load_registry
    from omniroute_providers.upstream import UpstreamClient

    registry = store.read(lambda db: load_registry(db, sealer))
    account = next((a for group in registry.accounts.values() for a in group if a.id == account_id), None)
    if account is None:
        print(f"error: no account with id {account_id}", file=sys.stderr)
        return 2

    async def run() -> dict[str, Any]:
        client = UpstreamClient()
        try:
            return await probe_account(Pipeline(lambda: registry, client, store), registry, account)
        finally:
            await client.aclose()

    result = trio.run(run)
    for k, v in result.items():
        print(f"{k}: {v}")
    return 0 if result.get("ok") else 1


def _usage(store: Store, args: Any) -> int:
    from omniroute_providers.records import usage_summary

    units = {"m": 60, "h": 3600, "d": 86400}
    try:
        since = _time.time() - float(args.since[:-1]) * units[args.since[-1]]
    except (KeyError, ValueError):
        print("error: --since wants 30m, 24h, 7d ...", file=sys.stderr)
        return 2
    rows = store.read(lambda db: usage_summary(db, since=since, by=args.by))
    for r in rows:
        r["cost_usd"] = "unknown" if r["cost_usd"] is None else f"{r['cost_usd']:.4f}"
    print(f"usage since {args.since} by {args.by}")
    _print_table(
        rows,
        [
            args.by,
            "requests",
            "errors",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "cost_usd",
            "avg_latency_ms",
        ],
    )
    return 0


def _serve(settings: Settings) -> int:
    import trio

    from omniroute_web.app import Gateway

    try:
        gateway = Gateway(settings)
    except GatewayError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    first = gateway.first_run

    def banner(port: int) -> None:
        host = settings.host if ":" not in settings.host else f"[{settings.host}]"
        url = f"http://{host}:{port}"
        lines = [
            f"omniroute {__version__} on {url}  (data: {settings.data_path}, codec: {CODEC}, "
            f"store: {gateway.store.driver}, sealing: {gateway.sealer.backend})"
        ]
        if first.client_key:
            lines.append(f"  first client key (shown once): {first.client_key}")
        if first.admin_token:
            lines.append(f"  admin token for /api (shown once): {first.admin_token}")
        if gateway.setup_token:  # no dashboard password yet (omniroute_web/session.py)
            lines.append(f"  set the dashboard password (one-time link): {url}/setup#{gateway.setup_token}")
        if settings.no_auth:
            lines.append("  --no-auth: /v1 accepts requests without a key (loopback only)")
        if settings.demo:
            lines.append(
                "  demo: the `echo` provider answers model 'echo' (try: curl .../v1/chat/completions)"
            )
        lines.append(f"  OpenAI base URL: {url}/v1   Anthropic base URL: {url}   Gemini base URL: {url}")
        print("\n".join(lines), file=sys.stderr, flush=True)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(gateway.run)
            banner(port)

    try:
        trio.run(run)
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cli = {
        k: getattr(args, k, None)
        for k in ("host", "port", "data_dir", "config", "no_open", "demo", "no_auth", "log_level")
    }
    try:
        settings = load_settings(cli)
    except (ValueError, JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    if args.command in (None, "serve"):
        return _serve(settings)
    if args.command == "reset-password":
        from omniroute_web.session import reset_password_cli

        return reset_password_cli(settings)
    return _manage(args, settings)


if __name__ == "__main__":
    # `python -m omniroute` runs this file as __main__; the packages import it as `omniroute`. Run the latter
    # so there is one error tree (an exception raised in a package must match the `except` here).
    import omniroute

    sys.exit(omniroute.main())

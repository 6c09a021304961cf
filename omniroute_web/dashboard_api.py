"""What only the dashboard needs: its static files, and admin endpoints the JSON admin API does not have.

    GET  /, /setup, /static/...         the single-page app (read with importlib.resources: works in a .pyz)
    GET  /api/dashboard/system          version, uptime, memory, data dir, database size
    GET  /api/dashboard/settings        every dashboard-editable setting: value, where it came from, its doc
    PUT  /api/dashboard/settings        save some (in the kv table; they win over file/env/flags at start)
    GET|PUT /api/dashboard/custom-models   extra model ids per provider, for the pickers
    GET  /api/usage/series              usage over time in buckets, by provider / model / key / account
    GET  /api/usage/latency             p50/p95/p99 latency and time to first byte per provider
    GET  /api/logs/requests[/{id}]      the request log with filters (request_id too); one request with its
                                        attempts and, when they were kept, its payloads (redacted bodies)
    GET  /api/logs/audit                the audit trail
    GET  /api/logs/console              the live console (SSE; the last lines first)
    POST /api/logs/purge                drop request/audit rows past the retention
    POST /api/playground/translate      the body the upstream would receive for a client request

Invariants: every endpoint here is admin-only (the route table says so; a test walks it). Nothing returns a
secret: settings go through `Settings.redacted()`; request rows carry bodies only when payload logging kept
them, redacted (omniroute_providers/payloads.py). Dashboard pages are served with a strict
Content-Security-Policy (no inline script or style, no other origin).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.resources
import logging
import math
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from omniroute import (
    SETTINGS_DOC,
    Db,
    InvalidRequestError,
    JSONDecodeError,
    JsonObj,
    NotFoundError,
    Settings,
    Store,
    __version__,
    bump_config_version,
    console_buffer,
    dumps,
    dumps_str,
    kv_get,
    kv_set,
    loads,
)
from omniroute_providers.payloads import read_payloads
from omniroute_providers.policy import (
    DEFAULT_THINKING_BUDGET_TOKENS,
    POLICY_SETTINGS,
    SYSTEM_PROMPT_MODES,
    THINKING_MODES,
    RequestPolicy,
    apply_policy,
)
from omniroute_providers.records import SUMMARY_GROUPS
from omniroute_web.messages import read_json, send_json
from omniroute_web.server import Request, Responder

if TYPE_CHECKING:
    from omniroute_web.app import Gateway

log = logging.getLogger("omniroute.dashboard")

Params = dict[str, str]
BODY_LIMIT = 1024 * 1024
NO_STORE = [("cache-control", "no-store"), ("x-content-type-options", "nosniff")]


async def _run(fn: Any, *args: Any) -> Any:
    return await trio.to_thread.run_sync(fn, *args)


async def _body(request: Request) -> JsonObj:
    return await read_json(request, BODY_LIMIT)


async def _ok(responder: Responder, payload: object, status: int = 200) -> None:
    await send_json(responder, status, payload, NO_STORE)


# ==========================================================================================================
# static files
# ==========================================================================================================

# No inline script or style, nothing from another origin; frames, plugins and <base> refused.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    ("content-security-policy", CSP),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
]
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


_static: dict[str, StaticFile] | None = None


def load_static() -> dict[str, StaticFile]:
    """Every file under omniroute_web/static, read once (from a directory or from inside the .pyz)."""
    global _static
    if _static is None:
        files: dict[str, StaticFile] = {}
        root = importlib.resources.files("omniroute_web").joinpath("static")
        stack: list[tuple[str, Any]] = [("", root)]
        while stack:
            prefix, node = stack.pop()
            for child in node.iterdir():
                name = prefix + child.name
                if child.is_dir():
                    stack.append((name + "/", child))
                    continue
                ext = os.path.splitext(name)[1].lower()
                if ext not in CONTENT_TYPES:
                    continue  # only the types we mean to serve (no stray editor backups)
                body = child.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
                files[name] = StaticFile(body, CONTENT_TYPES[ext], etag)
        _static = files
    return _static


async def _send_static(request: Request, responder: Responder, f: StaticFile) -> None:
    headers = [
        ("content-type", f.content_type),
        ("cache-control", "no-cache"),  # revalidate each time: the ETag makes that a 304
        ("etag", f.etag),
        *SECURITY_HEADERS,
    ]
    if request.headers.get("if-none-match") == f.etag:
        await responder.send(304, headers, b"")
        return
    await responder.send(200, headers, f.body)


async def index(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    """The app shell (also at /setup, whose fragment carries the one-time setup token)."""
    await _send_static(request, responder, load_static()["index.html"])


async def static_file(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    f = load_static().get(params["path"])  # a lookup in what we loaded: no path ever reaches the disk
    if f is None:
        raise NotFoundError(f"no such file: /static/{params['path'][:100]}")
    await _send_static(request, responder, f)


# ==========================================================================================================
# system
# ==========================================================================================================


def memory_mb() -> float | None:
    """Resident memory of this process (Linux /proc; else the peak from getrusage)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
    except (ImportError, OSError):
        return None


def _db_bytes(path: str) -> int:
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += os.path.getsize(path + suffix)
    return total


async def system(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    db_bytes = await _run(_db_bytes, gw.store.path)
    await _ok(
        responder,
        {
            "version": __version__,
            "uptime_s": round(gw.uptime(), 1),
            "started_at": gw.started_wall,
            "memory_mb": memory_mb(),
            "python": sys.version.split()[0],
            "pid": os.getpid(),
            "data_dir": gw.settings.data_path,
            "db_bytes": db_bytes,
            "codec": gw.codec,
            "store": gw.store.driver,
            "sealer": gw.sealer.backend,
            "host": gw.settings.host,
            "no_auth": gw.settings.no_auth,
            "log_payloads": gw.settings.log_payloads,
        },
    )


# ==========================================================================================================
# settings saved from the dashboard
# ==========================================================================================================
# Stored as one JSON object in kv `dashboard_settings`. Every Settings field is editable except those that
# say where the gateway lives or how it starts; the gateway applies saved values at start (so they win over
# the config file, the environment and flags) and log_level at once. A few dashboard-only settings that no
# Settings field carries are stored too: the request policy (system prompt, thinking budget), which the
# pipeline applies from the next request on, and the log retention, which this module honours.

SETTINGS_KV = "dashboard_settings"
NOT_EDITABLE = frozenset({"host", "port", "data_dir", "config", "secret_key", "no_auth", "demo", "no_open"})
LOG_LEVELS = ("debug", "info", "warning", "error")
EXTRA_SETTINGS: dict[str, tuple[object, str]] = {
    "system_prompt": ("", "a system prompt injected into every request (see system_prompt_mode)"),
    "system_prompt_mode": ("off", "off, prepend (before the client's own system prompt) or append"),
    "thinking_mode": (
        "passthrough",
        "thinking budget: passthrough (as the client asked), auto (the provider's default), custom (the "
        "budget below) or adaptive (scaled from the client's effort by conversation length, tools and "
        "prompt size); custom and adaptive apply to requests that ask for reasoning",
    ),
    "thinking_budget_tokens": (
        DEFAULT_THINKING_BUDGET_TOKENS,
        "the thinking budget used by thinking_mode custom (0 turns thinking off)",
    ),
    "log_retention_days": (30, "request and audit log rows older than this are deleted (0 keeps them)"),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "log_level": LOG_LEVELS,
    "thinking_mode": THINKING_MODES,
    "system_prompt_mode": SYSTEM_PROMPT_MODES,
    "account_strategy": (
        "priority",
        "round-robin",
        "weighted",
        "random",
        "least-used",
        "p2c",
        "cost-optimized",
    ),
    "injection_guard": ("off", "log", "block"),
}
APPLIED_BY_DASHBOARD = frozenset({"log_retention_days"})  # extras the dashboard code itself honours
APPLIED_BY_PIPELINE = frozenset(POLICY_SETTINGS)  # the request policy: Gateway -> Pipeline.set_policy
MAX_SETTING_CHARS = 20_000


def _editable_fields() -> dict[str, object]:
    defaults = Settings()
    return {
        f.name: getattr(defaults, f.name) for f in dataclasses.fields(Settings) if f.name not in NOT_EDITABLE
    }


def _coerce(name: str, raw: object, like: object) -> object:
    if isinstance(like, bool):
        if isinstance(raw, bool):
            return raw
        raise InvalidRequestError(f"{name}: expected true or false", param=name)
    if isinstance(like, int):
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise InvalidRequestError(f"{name}: expected a whole number", param=name)
        try:
            value: object = int(str(raw).strip())
        except ValueError:
            raise InvalidRequestError(f"{name}: expected a whole number", param=name) from None
    elif isinstance(like, float):
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise InvalidRequestError(f"{name}: expected a number", param=name)
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise InvalidRequestError(f"{name}: expected a number", param=name) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidRequestError(f"{name}: expected a finite number", param=name)
    else:
        if not isinstance(raw, str) or len(raw) > MAX_SETTING_CHARS:
            raise InvalidRequestError(f"{name}: expected a text of at most {MAX_SETTING_CHARS} characters")
        value = raw
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise InvalidRequestError(f"{name}: must not be negative", param=name)
    if name in CHOICES and value not in CHOICES[name]:
        raise InvalidRequestError(f"{name}: one of {', '.join(CHOICES[name])}", param=name)
    return value


def read_saved_settings(db: Db) -> dict[str, object]:
    raw = kv_get(db, SETTINGS_KV)
    if not raw:
        return {}
    value = loads(raw)
    return value if isinstance(value, dict) else {}


def apply_saved_settings(settings: Settings) -> list[str]:
    """At start, before anything reads `settings`: lay the values saved in the dashboard over it; return the
    names applied. A saved value that no longer validates (a setting renamed or retyped since) is skipped."""
    path = os.path.join(settings.data_path, "omniroute.sqlite")
    if not os.path.exists(path):
        return []
    try:
        db = Db(path, readonly=True)
        try:
            saved = read_saved_settings(db)
        finally:
            db.close()
    except Exception as exc:  # an old or damaged file: the gateway starts with its own settings
        log.warning("could not read the dashboard's saved settings: %s", exc)
        return []
    fields = _editable_fields()
    applied = []
    for name, value in saved.items():
        if name not in fields:
            continue
        try:
            setattr(settings, name, _coerce(name, value, fields[name]))
            applied.append(name)
        except InvalidRequestError as exc:
            log.warning("ignoring the dashboard's saved %s: %s", name, exc.message)
    return applied


def saved_request_policy(db: Db) -> RequestPolicy:
    """The request policy saved in the dashboard (the gateway reads it at start and on every reload)."""
    try:
        saved = read_saved_settings(db)
    except JSONDecodeError as exc:  # a damaged value: requests go through untouched rather than not at all
        log.warning("could not read the dashboard's saved settings: %s", exc)
        saved = {}
    return RequestPolicy.from_settings(saved)


def _settings_view(gw: Gateway, saved: dict[str, object]) -> list[JsonObj]:
    current = gw.settings.redacted()
    out: list[JsonObj] = []
    for name, default in _editable_fields().items():
        out.append(
            {
                "name": name,
                "value": current.get(name),
                "default": default,
                "type": type(default).__name__,
                "choices": list(CHOICES.get(name, ())),
                "saved": name in saved,
                "applied": True,
                "doc": SETTINGS_DOC.get(name, ""),
            }
        )
    for name, (default, doc) in EXTRA_SETTINGS.items():
        if name in current:
            continue  # became a real setting: listed above
        out.append(
            {
                "name": name,
                "value": saved.get(name, default),
                "default": default,
                "type": type(default).__name__,
                "choices": list(CHOICES.get(name, ())),
                "saved": name in saved,
                "applied": name in APPLIED_BY_DASHBOARD or name in APPLIED_BY_PIPELINE,
                "doc": doc,
            }
        )
    return out


async def get_settings(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    saved = await _run(lambda: gw.store.read(read_saved_settings))
    await _ok(responder, {"settings": _settings_view(gw, saved)})


async def put_settings(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    """Body: {values: {name: value}, reset: [names]} — validated as a whole before anything is saved."""
    body = await _body(request)
    values = body.get("values") or {}
    reset = body.get("reset") or []
    if not isinstance(values, dict) or not isinstance(reset, list):
        raise InvalidRequestError("send {values: {name: value}, reset: [name, ...]}")
    fields = _editable_fields()
    extras = {k: v[0] for k, v in EXTRA_SETTINGS.items() if k not in fields}
    clean: dict[str, object] = {}
    for name, raw in values.items():
        like = fields.get(name, extras.get(name))
        if like is None:
            raise InvalidRequestError(f"{name} cannot be set from the dashboard", param=str(name))
        clean[name] = _coerce(name, raw, like)

    def write(db: Db) -> dict[str, object]:
        saved = read_saved_settings(db)
        saved.update(clean)
        for name in reset:
            saved.pop(str(name), None)
        kv_set(db, SETTINGS_KV, dumps_str(saved))
        bump_config_version(db)
        return saved

    saved = await _run(gw.store.write, write)
    for name, value in clean.items():
        if name in fields:
            setattr(gw.settings, name, value)
    gw.pipeline.log_payloads = gw.settings.log_payloads  # applies to the next request
    gw.pipeline.stream_coalesce_s = gw.settings.stream_coalesce_ms / 1000
    if "log_level" in clean:
        logging.getLogger("omniroute").setLevel(str(clean["log_level"]).upper())
    gw.pipeline.set_policy(RequestPolicy.from_settings(saved))  # at once, not at the next config poll
    await _ok(responder, {"ok": True, "settings": _settings_view(gw, saved), "restart_may_be_needed": True})


# ==========================================================================================================
# custom model ids per provider (a picker convenience: `<provider>/<any id>` routes anyway)
# ==========================================================================================================

CUSTOM_MODELS_KV = "dashboard_custom_models"
MAX_CUSTOM_MODELS = 500


def _custom_models(db: Db) -> dict[str, list[str]]:
    raw = kv_get(db, CUSTOM_MODELS_KV)
    value = loads(raw) if raw else {}
    return value if isinstance(value, dict) else {}


async def get_custom_models(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    def read(db: Db) -> JsonObj:
        customs = [str(r[0]) for r in db.execute("SELECT id FROM custom_providers ORDER BY id")]
        return {"models": _custom_models(db), "custom_providers": customs}

    await _ok(responder, await _run(lambda: gw.store.read(read)))


async def put_custom_models(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    """Body: {provider, models: [ids]} replaces that provider's list."""
    body = await _body(request)
    provider = str(body.get("provider") or "")
    models = body.get("models")
    if gw.registry.catalog.provider(provider) is None:
        raise InvalidRequestError(f"unknown provider {provider!r}", param="provider")
    if not isinstance(models, list) or len(models) > MAX_CUSTOM_MODELS:
        raise InvalidRequestError(f"models: a list of at most {MAX_CUSTOM_MODELS} ids", param="models")
    ids = []
    for m in models:
        if not isinstance(m, str) or not m.strip() or len(m) > 200 or any(ord(c) < 33 for c in m.strip()):
            raise InvalidRequestError(
                "model ids: non-empty, no spaces, at most 200 characters", param="models"
            )
        if m.strip() not in ids:
            ids.append(m.strip())

    def write(db: Db) -> dict[str, list[str]]:
        current = _custom_models(db)
        if ids:
            current[provider] = ids
        else:
            current.pop(provider, None)
        kv_set(db, CUSTOM_MODELS_KV, dumps_str(current))
        return current

    models = await _run(gw.store.write, write)
    customs = await _run(
        lambda: gw.store.read(lambda db: [str(r[0]) for r in db.execute("SELECT id FROM custom_providers")])
    )
    await _ok(responder, {"models": models, "custom_providers": customs})


# ==========================================================================================================
# usage over time, latency percentiles
# ==========================================================================================================

BUCKETS_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400)
MAX_BUCKETS = 60  # enough points for a readable chart, few enough to draw at once
MAX_SERIES = 8  # the biggest groups; the rest is summed as "other"


def since_arg(value: str | None, now: float | None = None) -> float:
    """`24h`, `7d`, `30m` or a unix time -> unix time."""
    now = time.time() if now is None else now
    if not value:
        return now - 86400
    units = {"m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
        return now - float(value[:-1]) * units[value[-1]]
    try:
        return float(value)
    except ValueError:
        raise InvalidRequestError("since: use 30m, 24h, 7d or a unix time", param="since") from None


def bucket_for(span_s: float) -> int:
    span_s = round(span_s)  # "1h" measured a few milliseconds late is still one hour
    for b in BUCKETS_S:
        if span_s / b <= MAX_BUCKETS:
            return b
    return BUCKETS_S[-1]


def usage_series(db: Db, *, since: float, until: float, by: str) -> JsonObj:
    group = SUMMARY_GROUPS[by]
    bucket = bucket_for(until - since)
    start = since - since % bucket
    n = int((until - start) // bucket) + 1
    rows = db.execute(
        f"SELECT CAST((ts - ?) / ? AS INTEGER) AS b, {group} AS g, COUNT(*), SUM(outcome != 'ok'), "  # noqa: S608 - group from a fixed table
        "SUM(input_tokens + output_tokens), SUM(cost_usd) FROM usage WHERE ts >= ? GROUP BY b, g",
        (start, bucket, start),
    )
    totals: dict[str, int] = {}
    for _b, g, count, *_ in rows:
        totals[str(g)] = totals.get(str(g), 0) + int(count)
    top = sorted(totals, key=lambda k: -totals[k])[:MAX_SERIES]
    series: dict[str, JsonObj] = {}
    for b, g, count, errors, tokens, cost in rows:
        name = str(g) if str(g) in top else "other"
        s = series.setdefault(
            name, {"name": name, "requests": [0] * n, "errors": [0] * n, "tokens": [0] * n, "cost": [0.0] * n}
        )
        i = min(max(int(b), 0), n - 1)
        s["requests"][i] += int(count)
        s["errors"][i] += int(errors or 0)
        s["tokens"][i] += int(tokens or 0)
        s["cost"][i] = round(s["cost"][i] + float(cost or 0.0), 6)
    ordered = [series[k] for k in [*top, "other"] if k in series]
    return {
        "since": since,
        "by": by,
        "bucket_s": bucket,
        "buckets": [start + i * bucket for i in range(n)],
        "series": ordered,
    }


async def series(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    by = request.query.get("by", "provider")
    if by not in SUMMARY_GROUPS or by == "day":
        raise InvalidRequestError("by: provider, model, key or account", param="by")
    since = since_arg(request.query.get("since"))
    now = time.time()
    out = await _run(lambda: gw.store.read(lambda db: usage_series(db, since=since, until=now, by=by)))
    await _ok(responder, out)


LATENCY_ROWS_MAX = 50_000  # percentiles over the most recent rows only: bounded work per call


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least q of the values at or below it."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return round(sorted_values[k], 1)


def latency_table(db: Db, *, since: float) -> list[JsonObj]:
    rows = db.execute(
        "SELECT COALESCE(provider, '-'), outcome, latency_ms, ttfb_ms FROM usage WHERE ts >= ? "
        "ORDER BY id DESC LIMIT ?",
        (since, LATENCY_ROWS_MAX),
    )
    groups: dict[str, dict[str, list[float]]] = {}
    for provider, outcome, latency, ttfb in rows:
        g = groups.setdefault(str(provider), {"lat": [], "ttfb": [], "ok": [], "n": []})
        g["n"].append(1)
        if outcome == "ok":
            g["ok"].append(1)
            g["lat"].append(float(latency))
            if ttfb is not None:
                g["ttfb"].append(float(ttfb))
    out = []
    for provider, g in sorted(groups.items(), key=lambda kv: -len(kv[1]["n"])):
        lat, ttfb = sorted(g["lat"]), sorted(g["ttfb"])
        out.append(
            {
                "provider": provider,
                "requests": len(g["n"]),
                "success_rate": round(len(g["ok"]) / len(g["n"]), 4),
                "p50_ms": percentile(lat, 0.5),
                "p95_ms": percentile(lat, 0.95),
                "p99_ms": percentile(lat, 0.99),
                "ttfb_p50_ms": percentile(ttfb, 0.5),
                "ttfb_p95_ms": percentile(ttfb, 0.95),
            }
        )
    return out


async def latency(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    since = since_arg(request.query.get("since"))
    rows = await _run(lambda: gw.store.read(lambda db: latency_table(db, since=since)))
    await _ok(responder, {"since": since, "providers": rows})


# ==========================================================================================================
# request log, audit log, retention
# ==========================================================================================================

LOG_COLUMNS = (
    "id",
    "ts",
    "request_id",
    "key_id",
    "endpoint",
    "client_format",
    "model_requested",
    "provider",
    "account_id",
    "model_served",
    "stream",
    "status",
    "outcome",
    "latency_ms",
    "ttfb_ms",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "tokens_estimated",
    "cost_usd",
    "error",
)
LOG_PAGE_MAX = 500


def _int_arg(value: str | None, name: str, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise InvalidRequestError(f"{name} must be a number", param=name)
    return int(value)


def request_log(db: Db, query: dict[str, str]) -> list[JsonObj]:
    where: list[str] = []
    args: list[object] = []
    status = query.get("status", "")
    if status == "ok":
        where.append("outcome = 'ok'")
    elif status == "error":
        where.append("outcome != 'ok'")
    elif status:
        where.append("status = ?")
        args.append(_int_arg(status, "status"))
    if query.get("provider"):
        where.append("provider = ?")
        args.append(query["provider"])
    if query.get("model"):
        pattern = "%" + query["model"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(model_requested LIKE ? ESCAPE '\\' OR model_served LIKE ? ESCAPE '\\')")
        args.extend([pattern, pattern])
    if query.get("key"):
        where.append("key_id = ?")
        args.append(_int_arg(query["key"], "key"))
    if query.get("request_id"):  # the id the gateway answered with (x-request-id): the playground's way in
        where.append("request_id = ?")
        args.append(query["request_id"])
    before = _int_arg(query.get("before"), "before")
    if before is not None:
        where.append("id < ?")
        args.append(before)
    since = query.get("since")
    if since:
        where.append("ts >= ?")
        args.append(since_arg(since))
    limit = min(_int_arg(query.get("limit"), "limit", 100) or 100, LOG_PAGE_MAX)
    sql = f"SELECT {', '.join(LOG_COLUMNS)} FROM usage"  # noqa: S608 - fixed column names
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    rows = db.execute(sql, [*args, limit])
    return [dict(zip(LOG_COLUMNS, r, strict=True)) for r in rows]


async def requests_log(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    query = dict(request.query)
    await _run(_maybe_prune, gw)
    rows = await _run(lambda: gw.store.read(lambda db: request_log(db, query)))
    await _ok(responder, {"requests": rows, "payloads_kept": gw.settings.log_payloads})


async def request_detail(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    rid = _int_arg(params["id"], "id")

    def read(db: Db) -> JsonObj | None:
        row = db.one(f"SELECT {', '.join(LOG_COLUMNS)}, attempts FROM usage WHERE id = ?", (rid,))  # noqa: S608
        if row is None:
            return None
        out = dict(zip((*LOG_COLUMNS, "attempts"), row, strict=True))
        out["attempts"] = loads(out["attempts"]) if out["attempts"] else []
        # Kept, redacted and capped, only when payload logging was on or the request had x-omniroute-debug.
        out["payloads"] = read_payloads(db, int(out["id"]))
        return out

    row = await _run(lambda: gw.store.read(read))
    if row is None:
        raise NotFoundError(f"no request #{rid}")
    await _ok(responder, {"request": row, "payloads_kept": gw.settings.log_payloads})


AUDIT_COLUMNS = ("id", "ts", "actor", "action", "target", "ip", "status", "detail")


async def audit_log(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    limit = min(_int_arg(request.query.get("limit"), "limit", 100) or 100, LOG_PAGE_MAX)
    before = _int_arg(request.query.get("before"), "before")

    def read(db: Db) -> list[JsonObj]:
        sql = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log"  # noqa: S608 - fixed column names
        args: list[object] = []
        if before is not None:
            sql += " WHERE id < ?"
            args.append(before)
        rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])
        return [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in rows]

    await _ok(responder, {"entries": await _run(lambda: gw.store.read(read))})


PRUNE_EVERY_S = 3600.0
_last_prune: dict[str, float] = {}


def prune(store: Store, retention_days: int) -> int:
    """Delete request and audit rows older than the retention; the number of rows deleted."""
    if retention_days <= 0:
        return 0
    cutoff = time.time() - retention_days * 86400

    def write(db: Db) -> int:
        db.execute("DELETE FROM usage WHERE ts < ?", (cutoff,))
        n = db.changes()
        db.execute("DELETE FROM audit_log WHERE ts < ?", (cutoff,))
        return n + db.changes()

    return int(store.write(write))


def _retention_days(store: Store) -> int:
    saved = store.read(read_saved_settings)
    try:
        return int(str(saved.get("log_retention_days", EXTRA_SETTINGS["log_retention_days"][0])))
    except (TypeError, ValueError):
        return 0


def _maybe_prune(gw: Gateway) -> None:
    """Retention without a timer: applied at most hourly, when someone looks at the logs."""
    now = time.time()
    if now - _last_prune.get(gw.store.path, 0.0) < PRUNE_EVERY_S:
        return
    _last_prune[gw.store.path] = now
    prune(gw.store, _retention_days(gw.store))


async def purge_logs(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    """Body: {older_than_days?} (default: the retention setting)."""
    body = await _body(request)
    days = body.get("older_than_days")
    if days is None:
        days = await _run(_retention_days, gw.store)
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise InvalidRequestError("older_than_days: a whole number of days", param="older_than_days")
    deleted = await _run(prune, gw.store, days)
    await _ok(responder, {"ok": True, "deleted": deleted})


# ==========================================================================================================
# live console (SSE)
# ==========================================================================================================

CONSOLE_BACKLOG_LINES = 200
CONSOLE_PENDING_MAX = 2000  # a burst past this drops the oldest lines of the burst (the client is told)
CONSOLE_POLL_S = 0.25  # log lines come from any thread; polling a deque keeps this lock-free
CONSOLE_PING_S = 15.0
CONSOLE_STREAM_MAX_S = 600.0  # the browser reconnects by itself; each reconnect re-checks the session


def _sse(entry: tuple[float, str, str, str]) -> bytes:
    ts, level, name, message = entry
    data = dumps({"ts": ts, "level": level, "logger": name, "message": message})
    return b"data: " + data + b"\n\n"


async def console(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    # Reading the (empty) body is what lets the server watch for the browser leaving and cancel this stream.
    await request.body(1024)
    pending: deque[tuple[float, str, str, str]] = deque(maxlen=CONSOLE_PENDING_MAX)
    listener = pending.append
    backlog = list(console_buffer.lines)[-CONSOLE_BACKLOG_LINES:]
    console_buffer.listeners.append(listener)
    try:
        await responder.start(
            200,
            [("content-type", "text/event-stream"), ("x-accel-buffering", "no"), *NO_STORE],
            b"retry: 3000\n\n" + b"".join(_sse(e) for e in backlog),
        )
        started = quiet_since = trio.current_time()
        while not gw.server.draining and trio.current_time() - started < CONSOLE_STREAM_MAX_S:
            await trio.sleep(CONSOLE_POLL_S)
            out = []
            while pending:
                out.append(_sse(pending.popleft()))
            if out:
                await responder.write(b"".join(out))
                quiet_since = trio.current_time()
            elif trio.current_time() - quiet_since > CONSOLE_PING_S:
                await responder.write(b": ping\n\n")
                quiet_since = trio.current_time()
        await responder.end()
    finally:
        with contextlib.suppress(ValueError):
            console_buffer.listeners.remove(listener)


# ==========================================================================================================
# playground: what the upstream receives
# ==========================================================================================================

CLIENT_PATHS = {
    "openai-chat": "/v1/chat/completions",
    "openai-responses": "/v1/responses",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/{model}:generateContent",
}


def translate_for_upstream(
    gw: Gateway, client_format: str, body: JsonObj, model: str, stream: bool
) -> JsonObj:
    """The request body the first target of `model` would receive, rendered by the format modules the
    pipeline uses (same-format requests pass through with only `model` rewritten)."""
    from omniroute_providers import ir, routing
    from omniroute_providers.formats import MODULES, get_format

    if client_format not in MODULES:
        raise InvalidRequestError(f"format: one of {', '.join(MODULES)}", param="format")
    registry = gw.registry
    default_model = str(getattr(gw.settings, "default_model", "") or "")
    plan = (
        routing.resolve(registry, model, default_model=default_model)  # type: ignore[call-arg,unused-ignore]
        if default_model
        else routing.resolve(registry, model)
    )
    targets = list(plan.targets)
    if not targets:
        raise InvalidRequestError(f"nothing serves {model!r}", param="model")
    target = targets[0]
    provider = target.provider
    upstream = get_format(provider.format)
    client = get_format(client_format)
    caps = registry.catalog.caps_for(provider, target.model)
    policy = gw.pipeline.policy
    passthrough = (
        client_format == provider.format
        and not caps.system_as_user
        and not caps.think_tags
        and policy is None  # an active request policy takes the IR path, as in the pipeline
    )
    if passthrough:
        out = upstream.prepare_passthrough(body)
        if provider.format != "gemini":
            out = {**out, "model": target.model}
    else:
        req = client.parse_request(body)
        if not req.model:
            req.model = model
        req.stream = stream
        if policy is not None:
            req = apply_policy(req, policy)
        ctx = ir.Context(
            client_format=client_format,
            upstream_format=provider.format,
            provider=provider.id,
            upstream_model=target.model,
            client_model=model,
            caps=caps,
            request=req,
        )
        out = upstream.render_request(req, ctx)
    account = target.accounts[0] if target.accounts else None
    base = ((account.base_url if account else None) or provider.base_url).rstrip("/")
    return {
        "target": target.label,
        "targets": [t.label for t in targets],
        "provider": provider.id,
        "account": account.name if account else None,
        "upstream_format": provider.format,
        "passthrough": passthrough,
        "url": base + upstream.request_path(target.model, stream),
        "body": out,
    }


async def playground_translate(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    """Body: {format, body, model?} (Gemini puts the model in the URL, so it comes separately)."""
    payload = await _body(request)
    fmt = str(payload.get("format") or "")
    body = payload.get("body")
    if not isinstance(body, dict):
        raise InvalidRequestError("body: the client request as a JSON object", param="body")
    model = str(payload.get("model") or body.get("model") or "")
    if not model:
        raise InvalidRequestError("model is required", param="model")
    stream = bool(payload.get("stream", body.get("stream", False)))
    out = translate_for_upstream(gw, fmt, body, model, stream)
    await _ok(responder, out)

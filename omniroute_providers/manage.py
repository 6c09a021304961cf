"""Management operations shared by the CLI and the admin API: accounts, custom providers, client keys.

Each function validates its input (raising InvalidRequestError / NotFoundError with a message a user can act
on), writes through the store's writer thread in one transaction, and bumps `config_version` so every running
gateway reloads its Registry. Secrets go in sealed and never come back out: listings show a masked hint.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from omniroute import (
    Db,
    InvalidRequestError,
    JsonObj,
    NotFoundError,
    Sealer,
    Store,
    bump_config_version,
    dumps_str,
    hash_secret,
    kv_get,
    kv_set,
    loads,
    new_client_key,
    register_secret,
)
from omniroute_providers import egress
from omniroute_providers.catalog import Catalog
from omniroute_providers.combos import ComboSpec, check_no_cycles, parse_combo
from omniroute_providers.formats import MODULES
from omniroute_providers.quotas import WINDOWS

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,63}$")
_CUSTOM_ID_OK = re.compile(r"^[a-z0-9][a-z0-9-]{1,47}$")
AUTH_SCHEMES = ("bearer", "x-api-key", "x-goog-api-key", "none")


def mask(secret: str) -> str:
    """What listings show of a credential: enough to tell two apart, never enough to use."""
    if not secret:
        return ""
    return f"…{secret[-4:]}" if len(secret) >= 12 else "…"


def check_base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    # urlsplit quietly drops tabs and newlines; a URL holding one (or any control or space character)
    # would reach the upstream request line differently from what was checked
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url) or len(url) > 2048:
        raise InvalidRequestError(
            "base URL must be one line of at most 2048 characters, no spaces", param="base_url"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError("base URL must look like https://host[:port]/path", param="base_url")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidRequestError(
            "base URL must not carry credentials, a query or a fragment", param="base_url"
        )
    return url


def check_headers(headers: object) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidRequestError("headers must be an object of name -> value", param="headers")
    out = {}
    for k, v in headers.items():
        name = str(k).strip().lower()
        if not re.match(r"^[a-z0-9-]{1,64}$", name) or name in (
            "host",
            "content-length",
            "transfer-encoding",
        ):
            raise InvalidRequestError(f"header name {k!r} is not allowed", param="headers")
        if not isinstance(v, str) or "\n" in v or "\r" in v:
            raise InvalidRequestError(f"header {k!r} must be a one-line string", param="headers")
        out[name] = v
    return out


# ----------------------------------------------------------------------------------------------------------
# accounts
# ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class AccountInput:
    provider: str
    name: str = ""
    key: str = ""
    base_url: str | None = None
    priority: int = 0
    enabled: bool = True
    headers: Mapping[str, str] | None = None
    local: bool = False


def add_account(store: Store, sealer: Sealer, catalog: Catalog, data: AccountInput) -> int:
    provider = catalog.provider(data.provider)
    if provider is None:
        raise NotFoundError(
            f"unknown provider {data.provider!r} (see `omniroute provider catalog`)", param="provider"
        )
    name = (data.name or "default").strip()
    if not _NAME_OK.match(name):
        raise InvalidRequestError("account name: 1-64 letters, digits, space, . _ @ : -", param="name")
    key = data.key.strip()
    if not key and not (provider.key_optional or provider.local or provider.category == "builtin"):
        raise InvalidRequestError(f"provider {provider.id} needs an API key", param="key")
    base_url = check_base_url(data.base_url) if data.base_url else None
    if base_url:
        egress.check_url(base_url, allow_private=data.local or provider.local)  # refuse it now, not at use
    headers = check_headers(data.headers)
    sealed = sealer.seal(key)
    register_secret(key)
    now = time.time()
    limits = {"local": True} if data.local else {}

    def write(db: Db) -> int:
        if db.one("SELECT 1 FROM accounts WHERE provider = ? AND name = ?", (provider.id, name)):
            raise InvalidRequestError(
                f"provider {provider.id} already has an account named {name!r}", param="name"
            )
        db.execute(
            "INSERT INTO accounts (provider, name, secret, base_url, headers, priority, enabled, limits, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                provider.id,
                name,
                sealed,
                base_url,
                dumps_str(headers),
                data.priority,
                int(data.enabled),
                dumps_str(limits),
                now,
                now,
            ),
        )
        new_id = db.last_rowid()
        bump_config_version(db)
        return new_id

    return int(store.write(write))


def list_accounts(db: Db, sealer: Sealer) -> list[JsonObj]:
    rows = db.execute(
        "SELECT id, provider, name, secret, base_url, headers, priority, enabled, limits, created_at "
        "FROM accounts ORDER BY provider, priority, id"
    )
    out = []
    for aid, provider, name, sealed, base_url, headers, priority, enabled, limits, created in rows:
        try:
            hint = mask(sealer.open(sealed))
        except Exception:
            hint = "(cannot open: wrong secret key?)"
        lim = loads(limits) if limits else {}
        out.append(
            {
                "id": aid,
                "provider": provider,
                "name": name,
                "key": hint,
                "base_url": base_url,
                "headers": sorted((loads(headers) or {}).keys()),  # names only: values may be secret
                "priority": priority,
                "enabled": bool(enabled),
                "local": bool(lim.get("local", False)),
                "created_at": created,
            }
        )
    return out


def update_account(store: Store, sealer: Sealer, account_id: int, changes: Mapping[str, object]) -> None:
    allowed = {"name", "key", "base_url", "priority", "enabled", "headers", "local", "limits"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidRequestError(f"cannot change {', '.join(sorted(unknown))}")
    sets: list[str] = []
    params: list[object] = []
    if "name" in changes:
        name = str(changes["name"]).strip()
        if not _NAME_OK.match(name):
            raise InvalidRequestError("account name: 1-64 letters, digits, space, . _ @ : -", param="name")
        sets.append("name = ?")
        params.append(name)
    if "key" in changes:
        key = str(changes["key"] or "").strip()
        register_secret(key)
        sets.append("secret = ?")
        params.append(sealer.seal(key))
    if "base_url" in changes:
        raw = changes["base_url"]
        sets.append("base_url = ?")
        params.append(check_base_url(str(raw)) if raw else None)
    if "priority" in changes:
        try:
            priority = int(str(changes["priority"]))
        except ValueError:
            raise InvalidRequestError("priority must be an integer", param="priority") from None
        sets.append("priority = ?")
        params.append(priority)
    if "enabled" in changes:
        sets.append("enabled = ?")
        params.append(int(bool(changes["enabled"])))
    if "headers" in changes:
        sets.append("headers = ?")
        params.append(dumps_str(check_headers(changes["headers"])))
    local = changes.get("local")
    new_limits = check_limits(changes["limits"]) if "limits" in changes else None

    def write(db: Db) -> None:
        row = db.one("SELECT limits FROM accounts WHERE id = ?", (account_id,))
        if row is None:
            raise NotFoundError(f"no account with id {account_id}")
        all_sets, all_params = list(sets), list(params)
        stored = loads(row[0]) if row[0] else {}
        if changes.get("base_url"):
            allow = bool(local) if local is not None else bool(stored.get("local"))
            egress.check_url(str(changes["base_url"]), allow_private=allow)
        if local is not None or new_limits is not None:
            limits = dict(stored)
            if new_limits is not None:
                limits = {**new_limits, "local": limits.get("local", False)}
            if local is not None:
                limits["local"] = bool(local)
            all_sets.append("limits = ?")
            all_params.append(dumps_str(limits))
        if not all_sets:
            return
        all_sets.append("updated_at = ?")
        all_params.extend([time.time(), account_id])
        db.execute(f"UPDATE accounts SET {', '.join(all_sets)} WHERE id = ?", all_params)  # noqa: S608 - fixed column names
        bump_config_version(db)

    store.write(write)


def remove_account(store: Store, account_id: int) -> None:
    def write(db: Db) -> None:
        db.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
        if not db.changes():
            raise NotFoundError(f"no account with id {account_id}")
        bump_config_version(db)

    store.write(write)


# ----------------------------------------------------------------------------------------------------------
# custom providers (OpenAI- or Anthropic-compatible nodes)
# ----------------------------------------------------------------------------------------------------------


def add_custom_provider(
    store: Store,
    catalog: Catalog,
    *,
    provider_id: str,
    name: str,
    format: str,
    base_url: str,
    headers: Mapping[str, str] | None = None,
    auth: str = "bearer",
    local: bool = False,
) -> str:
    pid = provider_id.strip().lower()
    if not _CUSTOM_ID_OK.match(pid):
        raise InvalidRequestError("provider id: 2-48 lower-case letters, digits and dashes", param="id")
    if catalog.provider(pid) is not None:
        raise InvalidRequestError(f"{pid!r} is already a provider id or alias", param="id")
    if format not in MODULES:
        raise InvalidRequestError(f"format must be one of {', '.join(MODULES)}", param="format")
    if auth not in AUTH_SCHEMES:
        raise InvalidRequestError(f"auth must be one of {', '.join(AUTH_SCHEMES)}", param="auth")
    url = check_base_url(base_url)
    egress.check_url(url, allow_private=local)
    hdrs = check_headers(headers)

    def write(db: Db) -> None:
        db.execute(
            "INSERT INTO custom_providers (id, name, format, base_url, auth, headers, local, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (pid, name.strip() or pid, format, url, auth, dumps_str(hdrs), int(local), time.time()),
        )
        bump_config_version(db)

    store.write(write)
    return pid


def remove_custom_provider(store: Store, provider_id: str) -> None:
    def write(db: Db) -> None:
        if db.one("SELECT 1 FROM accounts WHERE provider = ?", (provider_id,)):
            raise InvalidRequestError(f"remove the accounts of {provider_id} first")
        db.execute("DELETE FROM custom_providers WHERE id = ?", (provider_id,))
        if not db.changes():
            raise NotFoundError(f"no custom provider {provider_id!r}")
        bump_config_version(db)

    store.write(write)


# ----------------------------------------------------------------------------------------------------------
# client keys and the admin token
# ----------------------------------------------------------------------------------------------------------


KEY_LIMITS = ("rpm", "rpd", "concurrent")  # requests a minute, a day, in flight
KEY_BUDGETS = {"budget_usd_day": "day", "budget_usd_week": "week", "budget_usd_month": "month"}
KEY_SCOPES = ("models", "providers")
_MAX_SCOPE_ENTRIES = 200


def check_key_scopes(raw: object) -> dict[str, list[str]]:
    """{models?: [pattern], providers?: [provider id]}; an empty or missing list means no restriction."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(
            "scopes must be an object: {models?: [...], providers?: [...]}", param="scopes"
        )
    out: dict[str, list[str]] = {}
    for name, value in raw.items():
        if name not in KEY_SCOPES:
            raise InvalidRequestError(f"unknown scope {name!r}: models or providers", param="scopes")
        if value is None:
            continue
        if isinstance(value, str):
            value = [v for v in (x.strip() for x in value.split(",")) if v]
        if not isinstance(value, list) or len(value) > _MAX_SCOPE_ENTRIES:
            raise InvalidRequestError(
                f"scopes.{name}: a list of at most {_MAX_SCOPE_ENTRIES} names", param="scopes"
            )
        entries = []
        for v in value:
            if not isinstance(v, str) or not v.strip() or len(v) > 200 or any(c in v for c in "\r\n\t"):
                raise InvalidRequestError(f"scopes.{name}: names of 1-200 characters", param="scopes")
            entries.append(v.strip())
        if entries:
            out[name] = entries
    return out


def check_key_limits(raw: object) -> tuple[dict[str, int], dict[str, float]]:
    """(request limits, budgets by period). 0 or null means no limit and is dropped."""
    if raw is None:
        return {}, {}
    if not isinstance(raw, Mapping):
        raise InvalidRequestError("limits must be an object", param="limits")
    limits: dict[str, int] = {}
    budgets: dict[str, float] = {}
    for name, value in raw.items():
        if name not in KEY_LIMITS and name not in KEY_BUDGETS:
            known = ", ".join((*KEY_LIMITS, *KEY_BUDGETS))
            raise InvalidRequestError(f"unknown limit {name!r}: {known}", param="limits")
        if value is None or value == 0:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not value > 0
            or value == float("inf")
        ):
            raise InvalidRequestError(f"limits.{name}: a number > 0, or 0/null for none", param="limits")
        if name in KEY_BUDGETS:
            budgets[KEY_BUDGETS[name]] = float(value)
        elif value != int(value):
            raise InvalidRequestError(f"limits.{name}: a whole number", param="limits")
        else:
            limits[name] = int(value)
    return limits, budgets


def check_expiry(raw: object, now: float) -> float | None:
    """A unix time in the future, or null for a key that never expires."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw != raw:
        raise InvalidRequestError("expires_at: a unix time, or null", param="expires_at")
    if raw <= now:
        raise InvalidRequestError("expires_at is in the past", param="expires_at")
    return float(raw)


def _write_key_budgets(db: Db, key_id: int, budgets: Mapping[str, float]) -> None:
    """A key's budgets live with the others (the budget book enforces them); this replaces the key's set."""
    db.execute("DELETE FROM budgets WHERE scope = 'key' AND id = ?", (str(key_id),))
    for period, limit in budgets.items():
        db.execute(
            "INSERT INTO budgets (scope, id, period, limit_usd) VALUES ('key', ?, ?, ?)",
            (str(key_id), period, limit),
        )


def create_key(
    store: Store,
    name: str = "default",
    *,
    scopes: object = None,
    limits: object = None,
    expires_at: object = None,
) -> tuple[str, int]:
    """Mint a client key; the full key is returned once and never stored."""
    name = _key_name(name)
    checked_scopes = check_key_scopes(scopes)
    checked_limits, budgets = check_key_limits(limits)
    expiry = check_expiry(expires_at, time.time())
    full, prefix = new_client_key()
    salt, digest = hash_secret(full)
    register_secret(full)

    def write(db: Db) -> int:
        db.execute(
            "INSERT INTO client_keys (name, prefix, salt, hash, scopes, limits, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                prefix,
                salt,
                digest,
                dumps_str(checked_scopes),
                dumps_str(checked_limits),
                time.time(),
                expiry,
            ),
        )
        key_id = db.last_rowid()
        _write_key_budgets(db, key_id, budgets)
        bump_config_version(db)
        return key_id

    return full, int(store.write(write))


def _key_name(name: str) -> str:
    name = name.strip() or "default"
    if not _NAME_OK.match(name):
        raise InvalidRequestError("key name: 1-64 letters, digits, space, . _ @ : -", param="name")
    return name


def _active_key_id(db: Db, key: str) -> int:
    """A key named by numeric id or public prefix (`omr_<prefix>_…` or the 8 characters), not revoked."""
    ident = key.strip()
    if ident.startswith("omr_"):
        ident = ident.split("_")[1]
    column = "id" if ident.isdigit() else "prefix"
    row = db.one(
        f"SELECT id FROM client_keys WHERE {column} = ? AND revoked_at IS NULL",  # noqa: S608 - fixed names
        (int(ident) if ident.isdigit() else ident,),
    )
    if row is None:
        raise NotFoundError(f"no active key {key!r}")
    return int(row[0])


def update_key(store: Store, key: str, changes: Mapping[str, object]) -> int:
    """Change a key's name, scopes, limits (which replace the old ones, budgets included) or expiry; the
    secret stays the same."""
    unknown = set(changes) - {"name", "scopes", "limits", "expires_at"}
    if unknown:
        raise InvalidRequestError(f"cannot change {', '.join(sorted(unknown))} of a key")
    sets: list[str] = []
    params: list[object] = []
    if "name" in changes:
        sets.append("name = ?")
        params.append(_key_name(str(changes["name"] or "")))
    if "scopes" in changes:
        sets.append("scopes = ?")
        params.append(dumps_str(check_key_scopes(changes["scopes"])))
    budgets: dict[str, float] | None = None
    if "limits" in changes:
        limits, budgets = check_key_limits(changes["limits"])
        sets.append("limits = ?")
        params.append(dumps_str(limits))
    if "expires_at" in changes:
        sets.append("expires_at = ?")
        params.append(check_expiry(changes["expires_at"], time.time()))

    def write(db: Db) -> int:
        key_id = _active_key_id(db, key)
        if sets:
            db.execute(f"UPDATE client_keys SET {', '.join(sets)} WHERE id = ?", (*params, key_id))  # noqa: S608
        if budgets is not None:
            _write_key_budgets(db, key_id, budgets)
        bump_config_version(db)
        return key_id

    return int(store.write(write))


def rotate_key(store: Store, key: str) -> tuple[str, int]:
    """A new secret for the same key (its id, name, scopes, limits, budgets and usage stay); the old secret
    stops working as soon as the gateway reloads, which the admin API does at once."""
    full, prefix = new_client_key()
    salt, digest = hash_secret(full)
    register_secret(full)

    def write(db: Db) -> int:
        key_id = _active_key_id(db, key)
        db.execute(
            "UPDATE client_keys SET prefix = ?, salt = ?, hash = ? WHERE id = ?",
            (prefix, salt, digest, key_id),
        )
        bump_config_version(db)
        return key_id

    return full, int(store.write(write))


def list_keys(db: Db) -> list[JsonObj]:
    usage = {
        int(kid): (int(n or 0), int(tin or 0), int(tout or 0), float(cost or 0.0), last)
        for kid, n, tin, tout, cost, last in db.execute(
            "SELECT key_id, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), MAX(ts) "
            "FROM usage WHERE key_id IS NOT NULL GROUP BY key_id"
        )
    }
    budgets: dict[int, dict[str, float]] = {}
    by_period = {period: name for name, period in KEY_BUDGETS.items()}
    for ident, period, limit in db.execute("SELECT id, period, limit_usd FROM budgets WHERE scope = 'key'"):
        if str(ident).isdigit() and period in by_period:
            budgets.setdefault(int(ident), {})[by_period[period]] = float(limit)
    rows = db.execute(
        "SELECT id, name, prefix, created_at, expires_at, revoked_at, scopes, limits "
        "FROM client_keys ORDER BY id"
    )
    out: list[JsonObj] = []
    for kid, name, prefix, created, expires, revoked, scopes, limits in rows:
        count, tin, tout, cost, last = usage.get(int(kid), (0, 0, 0, 0.0, None))
        out.append(
            {
                "id": kid,
                "name": name,
                "prefix": f"omr_{prefix}_…",
                "created_at": created,
                "expires_at": expires,
                "expired": expires is not None and expires <= time.time(),
                "revoked": revoked is not None,
                "scopes": loads(scopes) if scopes else {},
                "limits": {**(loads(limits) if limits else {}), **budgets.get(int(kid), {})},
                "requests": count,
                "input_tokens": tin,
                "output_tokens": tout,
                "cost_usd": round(cost, 6),
                "last_used_at": last,
            }
        )
    return out


def revoke_key(store: Store, key: str) -> None:
    """Revoke by numeric id or by public prefix (`omr_<prefix>_…` or the 8-character prefix)."""

    def write(db: Db) -> None:
        key_id = _active_key_id(db, key)
        db.execute("UPDATE client_keys SET revoked_at = ? WHERE id = ?", (time.time(), key_id))
        bump_config_version(db)

    store.write(write)


@dataclass(slots=True)
class FirstRun:
    admin_token: str | None = None  # minted now: show once
    client_key: str | None = None  # minted now: show once


def ensure_first_run(store: Store) -> FirstRun:
    """Mint the admin token and a first client key if this data dir has none. Idempotent."""
    import secrets

    result = FirstRun()

    def write(db: Db) -> None:
        if kv_get(db, "admin_token") is None:
            token = "omradmin_" + secrets.token_urlsafe(32)
            salt, digest = hash_secret(token)
            kv_set(db, "admin_token", f"{salt}:{digest}")
            register_secret(token)
            result.admin_token = token
        if kv_get(db, "first_key_minted") is None:
            kv_set(db, "first_key_minted", "1")
            if not db.one("SELECT 1 FROM client_keys"):
                full, prefix = new_client_key()
                salt, digest = hash_secret(full)
                db.execute(
                    "INSERT INTO client_keys (name, prefix, salt, hash, created_at) VALUES (?, ?, ?, ?, ?)",
                    ("first key", prefix, salt, digest, time.time()),
                )
                register_secret(full)
                result.client_key = full
        bump_config_version(db)

    store.write(write)
    return result


def rotate_admin_token(store: Store) -> str:
    import secrets

    token = "omradmin_" + secrets.token_urlsafe(32)
    salt, digest = hash_secret(token)
    register_secret(token)

    def write(db: Db) -> None:
        kv_set(db, "admin_token", f"{salt}:{digest}")
        bump_config_version(db)

    store.write(write)
    return token


def ensure_demo_account(store: Store, sealer: Sealer, catalog: Catalog) -> None:
    """`--demo`: make sure the echo provider has an account."""

    def exists(db: Db) -> bool:
        return db.one("SELECT 1 FROM accounts WHERE provider = 'echo'") is not None

    if not store.read(exists):
        add_account(store, sealer, catalog, AccountInput(provider="echo", name="demo"))


# ----------------------------------------------------------------------------------------------------------
# combos, aliases, budgets, prices, account limits
# ----------------------------------------------------------------------------------------------------------


def _all_combos(db: Db) -> dict[str, ComboSpec]:
    out = {}
    for name, strategy, targets, enabled, sticky, description in db.execute(
        "SELECT name, strategy, targets, enabled, sticky, description FROM combos"
    ):
        out[str(name)] = parse_combo(
            {
                "name": name,
                "strategy": strategy,
                "targets": loads(targets),
                "enabled": bool(enabled),
                "sticky": int(sticky),
                "description": description,
            }
        )
    return out


def save_combo(
    store: Store, catalog: Catalog, raw: Mapping[str, object], *, replace: str | None = None
) -> str:
    """Create (replace=None) or update (replace=old name) a combo; validates names, cycles and depth."""
    combo = parse_combo(raw)
    if catalog.provider(combo.name) is not None:
        raise InvalidRequestError(
            f"{combo.name!r} is a provider id or alias; pick another combo name", param="name"
        )

    def write(db: Db) -> None:
        combos = _all_combos(db)
        if replace is None and combo.name in combos:
            raise InvalidRequestError(f"a combo named {combo.name!r} exists already", param="name")
        if replace is not None and replace not in combos:
            raise NotFoundError(f"no combo named {replace!r}")
        if replace is not None:
            combos.pop(replace)
        combos[combo.name] = combo
        check_no_cycles(combos)
        now = time.time()
        if replace is not None:
            db.execute("DELETE FROM combos WHERE name = ?", (replace,))
        db.execute(
            "INSERT INTO combos (name, strategy, targets, enabled, sticky, description, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                combo.name,
                combo.strategy,
                dumps_str(combo.view()["targets"]),
                int(combo.enabled),
                combo.sticky,
                combo.description,
                now,
                now,
            ),
        )
        bump_config_version(db)

    store.write(write)
    return combo.name


def remove_combo(store: Store, name: str) -> None:
    def write(db: Db) -> None:
        users = [c.name for c in _all_combos(db).values() if any(t.model == name for t in c.targets)]
        if users:
            raise InvalidRequestError(f"combo {name!r} is used by {', '.join(users)}; remove it there first")
        db.execute("DELETE FROM combos WHERE name = ?", (name,))
        if not db.changes():
            raise NotFoundError(f"no combo named {name!r}")
        bump_config_version(db)

    store.write(write)


def list_combos(db: Db) -> list[JsonObj]:
    return [c.view() for c in sorted(_all_combos(db).values(), key=lambda c: c.name)]


def set_alias(store: Store, pattern: str, target: str) -> None:
    pattern, target = pattern.strip(), target.strip()
    if not pattern or len(pattern) > 128 or not target or len(target) > 256 or pattern == target:
        raise InvalidRequestError(
            "an alias needs a pattern (<=128 chars) and a different target", param="pattern"
        )

    def write(db: Db) -> None:
        db.execute(
            "INSERT INTO model_aliases (pattern, target, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(pattern) DO UPDATE SET target = excluded.target",
            (pattern, target, time.time()),
        )
        bump_config_version(db)

    store.write(write)


def remove_alias(store: Store, pattern: str) -> None:
    def write(db: Db) -> None:
        db.execute("DELETE FROM model_aliases WHERE pattern = ?", (pattern,))
        if not db.changes():
            raise NotFoundError(f"no alias {pattern!r}")
        bump_config_version(db)

    store.write(write)


def list_aliases(db: Db) -> list[JsonObj]:
    return [
        {"pattern": p, "target": t}
        for p, t in db.execute("SELECT pattern, target FROM model_aliases ORDER BY pattern")
    ]


def set_budget(store: Store, scope: str, ident: str, period: str, limit_usd: float | None) -> None:
    """A USD limit per key or provider and period; None removes it."""
    if scope not in ("key", "provider") or period not in ("day", "week", "month"):
        raise InvalidRequestError("scope: key|provider; period: day|week|month")
    if limit_usd is not None and (not isinstance(limit_usd, (int, float)) or limit_usd < 0):
        raise InvalidRequestError("limit_usd: a number >= 0, or null to remove the budget", param="limit_usd")

    def write(db: Db) -> None:
        if limit_usd is None:
            db.execute(
                "DELETE FROM budgets WHERE scope = ? AND id = ? AND period = ?", (scope, ident, period)
            )
        else:
            db.execute(
                "INSERT INTO budgets (scope, id, period, limit_usd) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(scope, id, period) DO UPDATE SET limit_usd = excluded.limit_usd",
                (scope, ident, period, float(limit_usd)),
            )
        bump_config_version(db)

    store.write(write)


def set_price(store: Store, provider: str, model: str, price: Mapping[str, object] | None) -> None:
    """Override the catalog price of one model ($ per 1M tokens: input, output, cached_input, cache_write,
    reasoning); None restores the catalog's."""
    fields = ("input", "output", "cached_input", "cache_write", "reasoning")
    clean: dict[str, float] = {}
    if price is not None:
        for k, v in price.items():
            if k not in fields or not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise InvalidRequestError(
                    f"price.{k}: one of {', '.join(fields)}, a number >= 0", param="price"
                )
            clean[k] = float(v)
        if "input" not in clean or "output" not in clean:
            raise InvalidRequestError("a price needs at least input and output", param="price")

    def write(db: Db) -> None:
        if price is None:
            db.execute("DELETE FROM price_overrides WHERE provider = ? AND model = ?", (provider, model))
        else:
            db.execute(
                "INSERT INTO price_overrides (provider, model, price) VALUES (?, ?, ?) "
                "ON CONFLICT(provider, model) DO UPDATE SET price = excluded.price",
                (provider, model, dumps_str(clean)),
            )
        bump_config_version(db)

    store.write(write)


def check_limits(raw: object) -> dict[str, object]:
    """Per-account limits: rpm, min_gap_ms, max_concurrent, weight, quota {window: {tokens, requests}}."""
    if not isinstance(raw, Mapping):
        raise InvalidRequestError("limits must be an object", param="limits")
    out: dict[str, object] = {}
    for k, v in raw.items():
        if k in ("rpm", "min_gap_ms", "max_concurrent", "weight"):
            if v is None:
                continue
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise InvalidRequestError(f"limits.{k} must be a number >= 0", param="limits")
            out[k] = v
        elif k == "quota":
            if not isinstance(v, Mapping):
                raise InvalidRequestError("limits.quota: {window: {tokens?, requests?}}", param="limits")
            for window, spec in v.items():
                if window not in WINDOWS or not isinstance(spec, Mapping):
                    raise InvalidRequestError(f"limits.quota windows: {', '.join(WINDOWS)}", param="limits")
            out["quota"] = {str(w): dict(spec) for w, spec in v.items()}
        else:
            raise InvalidRequestError(f"unknown limit {k!r}", param="limits")
    return out

"""Backups, export and import of the data dir, for the dashboard's Settings page (admin only).

    GET    /api/backups              the snapshots in <data_dir>/backups
    POST   /api/backups              take one now (`VACUUM INTO`: consistent while the gateway runs)
    GET    /api/backups/{name}       download one
    DELETE /api/backups/{name}
    POST   /api/export               {secrets?: bool} -> the configuration as JSON
    POST   /api/import               that JSON -> merged into this gateway (nothing existing is overwritten)

Invariants: nothing leaves in plaintext unless asked. A backup is the SQLite file itself: provider keys
stay sealed under secret.key, which is never in it (restoring needs this data dir's secret.key) and client
keys are salted hashes. An export carries no provider key and no header value unless `secrets: true`, and
then says so in its first field. Import never replaces what exists (same provider id, account name, key
prefix): it adds what is missing and reports what it skipped.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from typing import TYPE_CHECKING, Any

import trio

from omniroute import (
    Db,
    InvalidRequestError,
    JsonObj,
    NotFoundError,
    Sealer,
    __version__,
    bump_config_version,
    dumps,
    dumps_str,
    kv_get,
    kv_set,
    loads,
    loads_object,
    register_secret,
)
from omniroute_web.messages import read_json, send_json
from omniroute_web.server import Request, Responder

if TYPE_CHECKING:
    from omniroute_web.app import Gateway

Params = dict[str, str]
NO_STORE = [("cache-control", "no-store"), ("x-content-type-options", "nosniff")]
BACKUP_NAME = re.compile(r"^omniroute-\d{8}-\d{6}(?:-\d{1,3})?\.sqlite$")
EXPORT_FORMAT = 1
SECRETS_WARNING = (
    "THIS FILE CONTAINS PLAINTEXT PROVIDER KEYS AND HEADER VALUES. Anyone who reads it can spend your "
    "accounts. Keep it offline and delete it after use."
)
# Tables other parts of omniroute own that hold no secret: exported and imported row by row when present.
PLAIN_TABLES = ("combos", "model_aliases", "budgets", "price_overrides")
KV_KEYS = ("dashboard_settings", "dashboard_custom_models")


def _backup_dir(gw: Gateway) -> str:
    return os.path.join(gw.settings.data_path, "backups")


# ----------------------------------------------------------------------------------------------------------
# backups
# ----------------------------------------------------------------------------------------------------------


def list_backups(directory: str) -> list[JsonObj]:
    if not os.path.isdir(directory):
        return []
    out = []
    for name in sorted(os.listdir(directory), reverse=True):
        if BACKUP_NAME.match(name):
            st = os.stat(os.path.join(directory, name))
            out.append({"name": name, "bytes": st.st_size, "created_at": st.st_mtime})
    return out


def take_backup(gw: Gateway) -> JsonObj:
    directory = _backup_dir(gw)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    name = f"omniroute-{stamp}.sqlite"
    n = 1
    while os.path.exists(os.path.join(directory, name)):
        n += 1
        name = f"omniroute-{stamp}-{n}.sqlite"
    path = os.path.join(directory, name)
    # VACUUM INTO cannot run inside a transaction, so not on the writer thread: a reader connection does it,
    # and WAL gives it a consistent snapshot while writes go on.
    gw.store.read(lambda db: db.execute("VACUUM INTO ?", (path,)))
    os.chmod(path, 0o600)
    return {"name": name, "bytes": os.path.getsize(path), "created_at": os.path.getmtime(path)}


def _backup_path(gw: Gateway, name: str) -> str:
    if not BACKUP_NAME.match(name):
        raise NotFoundError("no such backup")
    path = os.path.join(_backup_dir(gw), name)
    if not os.path.isfile(path):
        raise NotFoundError("no such backup")
    return path


async def backups(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    rows = await trio.to_thread.run_sync(list_backups, _backup_dir(gw))
    pending = await trio.Path(gw.settings.data_path, PENDING_RESTORE).exists()
    await send_json(
        responder,
        200,
        {"backups": rows, "directory": _backup_dir(gw), "restore_pending": pending, "restored": gw.restored},
        NO_STORE,
    )


async def create_backup(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    row = await trio.to_thread.run_sync(take_backup, gw)
    await send_json(responder, 201, row, NO_STORE)


async def download_backup(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    path = _backup_path(gw, params["name"])
    data = await trio.Path(path).read_bytes()
    await responder.send(
        200,
        [
            ("content-type", "application/vnd.sqlite3"),
            ("content-disposition", f'attachment; filename="{params["name"]}"'),
            *NO_STORE,
        ],
        data,
    )


async def delete_backup(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    path = _backup_path(gw, params["name"])
    await trio.Path(path).unlink()
    await send_json(responder, 200, {"ok": True}, NO_STORE)


# ----------------------------------------------------------------------------------------------------------
# restore: staged now, applied at the next start
# ----------------------------------------------------------------------------------------------------------
# Swapping the database under a running gateway would tear every open reader, the writer thread and the
# in-memory state built from it; so a restore is staged (a checked copy next to the database) and the next
# start swaps it in before anything opens the database, keeping the current one as a backup first.

PENDING_RESTORE = "restore-pending.sqlite"
DB_NAME = "omniroute.sqlite"


def check_backup_file(path: str) -> None:
    """A readable omniroute database that passes SQLite's integrity check, or InvalidRequestError."""
    try:
        db = Db(path, readonly=True)
    except Exception as exc:
        raise InvalidRequestError(f"not a readable SQLite database: {exc}") from None
    try:
        ok = db.one("PRAGMA integrity_check")
        if ok is None or ok[0] != "ok":
            raise InvalidRequestError("the backup fails SQLite's integrity check")
        if db.one("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'client_keys'") is None:
            raise InvalidRequestError("not an omniroute database")
    except InvalidRequestError:
        raise
    except Exception as exc:
        raise InvalidRequestError(f"not a readable omniroute database: {exc}") from None
    finally:
        db.close()


def stage_restore(data_dir: str, backup_path: str) -> None:
    check_backup_file(backup_path)
    staged = os.path.join(data_dir, PENDING_RESTORE)
    tmp = staged + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(backup_path, "rb") as src, open(fd, "wb") as dst:
        while block := src.read(1 << 20):
            dst.write(block)
    os.replace(tmp, staged)


def apply_pending_restore(data_dir: str) -> str | None:
    """At start, before the database is opened: swap in a staged restore. The database it replaces is kept
    in backups/ (a consistent copy, its WAL included); returns that backup's name, or None."""
    staged = os.path.join(data_dir, PENDING_RESTORE)
    if not os.path.exists(staged):
        return None
    current = os.path.join(data_dir, DB_NAME)
    kept = None
    if os.path.exists(current):
        directory = os.path.join(data_dir, "backups")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        kept = f"omniroute-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-0.sqlite"
        db = Db(current)
        try:
            db.execute("VACUUM INTO ?", (os.path.join(directory, kept),))
        finally:
            db.close()
        os.chmod(os.path.join(directory, kept), 0o600)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(current + suffix)
    os.replace(staged, current)
    return kept


async def restore_backup(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    path = _backup_path(gw, params["name"])
    await trio.to_thread.run_sync(stage_restore, gw.settings.data_path, path)
    await send_json(
        responder,
        202,
        {
            "pending": params["name"],
            "note": "restart the gateway to restore this backup; the current database is kept in backups/",
        },
        NO_STORE,
    )


async def cancel_restore(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    staged = os.path.join(gw.settings.data_path, PENDING_RESTORE)
    try:
        await trio.Path(staged).unlink()
    except FileNotFoundError:
        raise NotFoundError("no restore is pending") from None
    await send_json(responder, 200, {"ok": True}, NO_STORE)


# ----------------------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------------------


def _columns(db: Db, table: str) -> list[str]:
    return [str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")]


def _json_field(text: object) -> Any:
    return loads(str(text)) if text else {}


def export_data(db: Db, sealer: Sealer, *, include_secrets: bool) -> JsonObj:
    out: JsonObj = {}
    if include_secrets:
        out["warning"] = SECRETS_WARNING
    out.update(
        {
            "omniroute_export": EXPORT_FORMAT,
            "version": __version__,
            "created_at": time.time(),
            "secrets_included": include_secrets,
        }
    )
    out["custom_providers"] = [
        {
            "id": r[0],
            "name": r[1],
            "format": r[2],
            "base_url": r[3],
            "auth": r[4],
            "headers": _json_field(r[5]),
            "local": bool(r[6]),
        }
        for r in db.execute("SELECT id, name, format, base_url, auth, headers, local FROM custom_providers")
    ]
    if not include_secrets:
        for p in out["custom_providers"]:
            p["headers"] = dict.fromkeys(p["headers"], None)  # names only: values may be credentials
    accounts = []
    for provider, name, secret, base_url, headers, priority, enabled, limits in db.execute(
        "SELECT provider, name, secret, base_url, headers, priority, enabled, limits "
        "FROM accounts ORDER BY id"
    ):
        row: JsonObj = {
            "provider": provider,
            "name": name,
            "base_url": base_url,
            "priority": priority,
            "enabled": bool(enabled),
            "limits": _json_field(limits),
            "has_key": bool(secret),
            "headers": _json_field(headers),
        }
        if include_secrets:
            row["key"] = sealer.open(str(secret)) if secret else ""
        else:
            row["headers"] = dict.fromkeys(row["headers"], None)
        accounts.append(row)
    out["accounts"] = accounts
    # Client keys as salted hashes: they keep working after an import and reveal nothing.
    out["client_keys"] = [
        {
            "name": r[0],
            "prefix": r[1],
            "salt": r[2],
            "hash": r[3],
            "scopes": _json_field(r[4]),
            "limits": _json_field(r[5]),
            "created_at": r[6],
            "expires_at": r[7],
            "revoked_at": r[8],
        }
        for r in db.execute(
            "SELECT name, prefix, salt, hash, scopes, limits, created_at, expires_at, revoked_at "
            "FROM client_keys"
        )
    ]
    tables: JsonObj = {}
    for table in PLAIN_TABLES:
        cols = _columns(db, table)
        if cols:
            tables[table] = [dict(zip(cols, r, strict=True)) for r in db.execute(f"SELECT * FROM {table}")]  # noqa: S608 - fixed names
    out["tables"] = tables
    out["kv"] = {k: loads(v) for k in KV_KEYS if (v := kv_get(db, k))}
    return out


async def export(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    body = await read_json(request, 64 * 1024)
    include = body.get("secrets") is True
    data = await trio.to_thread.run_sync(
        lambda: gw.store.read(lambda db: export_data(db, gw.sealer, include_secrets=include))
    )
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    suffix = "-WITH-SECRETS" if include else ""
    await responder.send(
        200,
        [
            ("content-type", "application/json"),
            ("content-disposition", f'attachment; filename="omniroute-export-{stamp}{suffix}.json"'),
            *NO_STORE,
        ],
        dumps(data),
    )


# ----------------------------------------------------------------------------------------------------------
# import
# ----------------------------------------------------------------------------------------------------------


def _check_custom_provider(p: JsonObj) -> None:
    from omniroute_providers.formats import MODULES
    from omniroute_providers.manage import AUTH_SCHEMES

    if str(p.get("format") or "openai-chat") not in MODULES:
        raise InvalidRequestError(f"custom provider {p.get('id')!r}: unknown format {p.get('format')!r}")
    if str(p.get("auth") or "bearer") not in AUTH_SCHEMES:
        raise InvalidRequestError(f"custom provider {p.get('id')!r}: unknown auth {p.get('auth')!r}")
    if not re.match(r"^[a-z0-9][a-z0-9-]{1,47}$", str(p.get("id") or "")):
        raise InvalidRequestError(f"custom provider id {p.get('id')!r} is not valid")


def _decoded(value: object, what: str) -> object:
    if not isinstance(value, str):
        return value
    try:
        return loads(value)
    except ValueError:
        raise InvalidRequestError(f"{what} is not valid JSON") from None


def _check_row(table: str, row: JsonObj) -> None:
    """A row another part of omniroute will load at every start: refuse what it could not read."""
    from omniroute_providers.combos import parse_combo

    if table == "combos":
        parsed = _decoded(row.get("targets"), f"combo {row.get('name')!r}: targets")
        parse_combo({**row, "targets": parsed, "enabled": bool(row.get("enabled", True))})
    elif table == "model_aliases":
        for col in ("pattern", "target"):
            value = row.get(col)
            if not isinstance(value, str) or not value.strip() or len(value) > 256:
                raise InvalidRequestError(f"model alias: {col} must be a short text")
    elif table == "price_overrides" and not isinstance(_decoded(row.get("price"), "price override"), dict):
        raise InvalidRequestError("price override: price must be an object")


def _list(data: JsonObj, name: str) -> list[JsonObj]:
    value = data.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidRequestError(f"{name}: expected a list of objects", param=name)
    return value


def import_data(gw: Gateway, data: JsonObj) -> JsonObj:
    """Merge an export into this data dir; returns {added: {...}, skipped: {...}}."""
    from omniroute_providers import manage

    if data.get("omniroute_export") != EXPORT_FORMAT:
        raise InvalidRequestError("this is not an omniroute export (omniroute_export: 1 missing)")
    customs = _list(data, "custom_providers")
    accounts = _list(data, "accounts")
    keys = _list(data, "client_keys")
    tables = data.get("tables") or {}
    kv = data.get("kv") or {}
    if not isinstance(tables, dict) or not isinstance(kv, dict):
        raise InvalidRequestError("tables and kv must be objects")
    added = {"custom_providers": 0, "accounts": 0, "client_keys": 0, "rows": 0, "settings": 0}
    skipped: dict[str, list[str]] = {"custom_providers": [], "accounts": [], "client_keys": []}
    # Validate and seal outside the transaction (sealing is CPU work); insert everything in one transaction.
    for p in customs:
        _check_custom_provider(p)
    for table in PLAIN_TABLES:
        rows = tables.get(table) or []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InvalidRequestError(f"tables.{table}: expected a list of objects")
        for row in rows:
            _check_row(table, row)
    sealed: list[tuple[JsonObj, str]] = []
    for a in accounts:
        key = a.get("key")
        key = key if isinstance(key, str) else ""
        if key:
            register_secret(key)
        sealed.append((a, gw.sealer.seal(key)))
    now = time.time()

    def write(db: Db) -> None:
        for p in customs:
            pid = str(p.get("id") or "")
            headers = {k: v for k, v in (p.get("headers") or {}).items() if isinstance(v, str)}
            if db.one("SELECT 1 FROM custom_providers WHERE id = ?", (pid,)) or not pid:
                skipped["custom_providers"].append(pid)
                continue
            db.execute(
                "INSERT INTO custom_providers (id, name, format, base_url, auth, headers, local, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    pid,
                    str(p.get("name") or pid),
                    str(p.get("format") or "openai-chat"),
                    manage.check_base_url(str(p.get("base_url") or "")),
                    str(p.get("auth") or "bearer"),
                    dumps_str(manage.check_headers(headers)),
                    int(bool(p.get("local"))),
                    now,
                ),
            )
            added["custom_providers"] += 1
        for a, secret in sealed:
            provider, name = str(a.get("provider") or ""), str(a.get("name") or "default")
            if not provider or db.one(
                "SELECT 1 FROM accounts WHERE provider = ? AND name = ?", (provider, name)
            ):
                skipped["accounts"].append(f"{provider}/{name}")
                continue
            headers = {k: v for k, v in (a.get("headers") or {}).items() if isinstance(v, str)}
            limits = a.get("limits") if isinstance(a.get("limits"), dict) else {}
            missing_key = bool(a.get("has_key")) and not a.get("key")
            base_url = a.get("base_url")
            db.execute(
                "INSERT INTO accounts (provider, name, secret, base_url, headers, priority, enabled, limits, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    provider,
                    name,
                    secret,
                    manage.check_base_url(str(base_url)) if base_url else None,
                    dumps_str(manage.check_headers(headers)),
                    int(a.get("priority") or 0),
                    # an account exported without its key cannot work until one is set: it arrives disabled
                    int(bool(a.get("enabled", True)) and not missing_key),
                    dumps_str(limits),
                    now,
                    now,
                ),
            )
            added["accounts"] += 1
        for k in keys:
            prefix = str(k.get("prefix") or "")
            if not re.match(r"^[0-9a-f]{8}$", prefix) or db.one(
                "SELECT 1 FROM client_keys WHERE prefix = ?", (prefix,)
            ):
                skipped["client_keys"].append(prefix)
                continue
            db.execute(
                "INSERT INTO client_keys (name, prefix, salt, hash, scopes, limits, created_at, expires_at, "
                "revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(k.get("name") or "imported"),
                    prefix,
                    str(k.get("salt") or ""),
                    str(k.get("hash") or ""),
                    dumps_str(k.get("scopes") or {}),
                    dumps_str(k.get("limits") or {}),
                    float(k.get("created_at") or now),
                    k.get("expires_at"),
                    k.get("revoked_at"),
                ),
            )
            added["client_keys"] += 1
        for table in PLAIN_TABLES:
            rows = tables.get(table) or []
            cols = set(_columns(db, table))
            if not cols or not isinstance(rows, list):
                continue
            for raw_row in rows:
                if not isinstance(raw_row, dict):
                    continue
                # timestamps a hand-written row may lack (NOT NULL would make INSERT OR IGNORE drop it)
                row = {**{c: now for c in ("created_at", "updated_at") if c in cols}, **raw_row}
                names = [c for c in row if c in cols]
                if not names:
                    continue
                values = [dumps_str(row[c]) if isinstance(row[c], (dict, list)) else row[c] for c in names]
                marks = ", ".join("?" * len(names))
                sql = f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608 - PRAGMA names
                db.execute(sql, values)
                added["rows"] += db.changes()
        for kv_key in KV_KEYS:
            if isinstance(kv.get(kv_key), dict):
                kv_set(db, kv_key, dumps_str(kv[kv_key]))
                added["settings"] += 1
        bump_config_version(db)

    gw.store.write(write)
    return {"added": added, "skipped": skipped}


IMPORT_BODY_LIMIT = 20 * 1024 * 1024


async def import_(gw: Gateway, request: Request, responder: Responder, params: Params, _: object) -> None:
    data = loads_object(await request.body(IMPORT_BODY_LIMIT))
    result = await trio.to_thread.run_sync(import_data, gw, data)
    await gw.reload()
    await send_json(responder, 200, {"ok": True, **result}, NO_STORE)

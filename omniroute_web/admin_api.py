"""The JSON admin API under /api: providers, accounts, custom providers, client keys, usage, settings.

Every route here requires admin credentials (the route table says so and a test enumerates it). Blocking
database work runs in worker threads so the request path never waits on disk.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import trio

from omniroute import InvalidRequestError, JsonObj
from omniroute_providers import manage
from omniroute_providers.catalog import ModelSpec
from omniroute_providers.records import SUMMARY_GROUPS, usage_summary
from omniroute_web.messages import read_json, send_json
from omniroute_web.server import Request, Responder

if TYPE_CHECKING:
    from omniroute_web.app import Gateway

Params = dict[str, str]
ADMIN_BODY_LIMIT = 1024 * 1024


def _int(value: str, what: str) -> int:
    if not value.isdigit():
        raise InvalidRequestError(f"{what} must be a number")
    return int(value)


async def _body(request: Request) -> JsonObj:
    return await read_json(request, ADMIN_BODY_LIMIT)


async def _run(fn: Any, *args: Any) -> Any:
    return await trio.to_thread.run_sync(fn, *args)


def _price(m: ModelSpec) -> JsonObj | None:
    if m.price is None:
        return None
    return {"input": m.price.input, "output": m.price.output, "cached_input": m.price.cached_input}


async def providers(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    reg = gw.registry
    out = [
        {
            "id": p.id,
            "alias": p.alias,
            "name": p.name,
            "format": p.format,
            "base_url": p.base_url,
            "category": p.category,
            "local": p.local,
            "accounts": len(reg.accounts.get(p.id, ())),
            "models": [
                {"id": m.id, "context_window": m.context_window, "price": _price(m)} for m in p.models
            ],
        }
        for p in reg.catalog.providers.values()
    ]
    await send_json(responder, 200, {"providers": out})


async def accounts(gw: Gateway, request: Request, responder: Responder, params: Params, _key: object) -> None:
    rows = await _run(lambda: gw.store.read(lambda db: manage.list_accounts(db, gw.sealer)))
    await send_json(responder, 200, {"accounts": rows})


async def add_account(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    body = await _body(request)
    data = manage.AccountInput(
        provider=str(body.get("provider") or ""),
        name=str(body.get("name") or ""),
        key=str(body.get("key") or ""),
        base_url=body.get("base_url") or None,
        priority=int(body.get("priority") or 0),
        enabled=bool(body.get("enabled", True)),
        headers=body.get("headers"),
        local=bool(body.get("local", False)),
    )
    account_id = await _run(manage.add_account, gw.store, gw.sealer, gw.registry.catalog, data)
    await gw.reload()
    await send_json(responder, 201, {"id": account_id})


async def update_account(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    body = await _body(request)
    account_id = _int(params["id"], "account id")
    await _run(manage.update_account, gw.store, gw.sealer, account_id, body)
    gw.balancer.health.clear_account(account_id)  # a new key or re-enabling deserves a fresh start
    await gw.reload()
    await send_json(responder, 200, {"ok": True})


async def delete_account(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    await _run(manage.remove_account, gw.store, _int(params["id"], "account id"))
    await gw.reload()
    await send_json(responder, 200, {"ok": True})


async def probe_account(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    from omniroute_providers import probe

    account_id = _int(params["id"], "account id")
    for group in gw.registry.accounts.values():
        for account in group:
            if account.id == account_id:
                result = await probe.probe_account(gw.pipeline, gw.registry, account)
                await send_json(responder, 200, result)
                return
    from omniroute import NotFoundError

    raise NotFoundError(f"no account with id {account_id}")


async def add_custom_provider(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    body = await _body(request)
    pid = await _run(
        lambda: manage.add_custom_provider(
            gw.store,
            gw.registry.catalog,
            provider_id=str(body.get("id") or ""),
            name=str(body.get("name") or ""),
            format=str(body.get("format") or "openai-chat"),
            base_url=str(body.get("base_url") or ""),
            headers=body.get("headers"),
            auth=str(body.get("auth") or "bearer"),
            local=bool(body.get("local", False)),
        )
    )
    await gw.reload()
    await send_json(responder, 201, {"id": pid})


async def delete_custom_provider(
    gw: Gateway, request: Request, responder: Responder, params: Params, _: object
) -> None:
    await _run(manage.remove_custom_provider, gw.store, params["id"])
    await gw.reload()
    await send_json(responder, 200, {"ok": True})


async def keys(gw: Gateway, request: Request, responder: Responder, params: Params, _key: object) -> None:
    rows = await _run(lambda: gw.store.read(manage.list_keys))
    await send_json(responder, 200, {"keys": rows})


async def create_key(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    """Body: {name?, scopes?: {models?, providers?}, limits?: {rpm?, rpd?, concurrent?, budget_usd_day?,
    budget_usd_week?, budget_usd_month?}, expires_at?: unix time}."""
    body = await _body(request)
    full, key_id = await _run(
        lambda: manage.create_key(
            gw.store,
            str(body.get("name") or "default"),
            scopes=body.get("scopes"),
            limits=body.get("limits"),
            expires_at=body.get("expires_at"),
        )
    )
    await gw.reload()
    await send_json(responder, 201, {"id": key_id, "key": full, "note": "shown once: store it now"})


async def update_key(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    """Body: any of {name, scopes, limits, expires_at}; limits replace the key's limits and budgets."""
    body = await _body(request)
    key_id = await _run(manage.update_key, gw.store, params["id"], body)
    await gw.reload()
    rows = await _run(lambda: gw.store.read(manage.list_keys))
    await send_json(responder, 200, {"key": next(r for r in rows if r["id"] == key_id)})


async def rotate_key(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    full, key_id = await _run(manage.rotate_key, gw.store, params["id"])
    await gw.reload()
    await send_json(
        responder, 200, {"id": key_id, "key": full, "note": "shown once: the old key no longer works"}
    )


async def revoke_key(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    await _run(manage.revoke_key, gw.store, params["id"])
    await gw.reload()
    await send_json(responder, 200, {"ok": True})


def _since(value: str | None) -> float:
    """`24h`, `7d`, `30m` or a unix time -> unix time."""
    if not value:
        return time.time() - 86400
    units = {"m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(value[:-1]) * units[value[-1]]
    try:
        return float(value)
    except ValueError:
        raise InvalidRequestError("since: use 30m, 24h, 7d or a unix time") from None


async def usage(gw: Gateway, request: Request, responder: Responder, params: Params, _key: object) -> None:
    by = request.query.get("by", "provider")
    if by not in SUMMARY_GROUPS:
        raise InvalidRequestError(f"by: one of {', '.join(SUMMARY_GROUPS)}")
    since = _since(request.query.get("since"))
    rows = await _run(lambda: gw.store.read(lambda db: usage_summary(db, since=since, by=by)))
    await send_json(responder, 200, {"since": since, "by": by, "rows": rows})


async def settings(gw: Gateway, request: Request, responder: Responder, params: Params, _key: object) -> None:
    await send_json(
        responder,
        200,
        {
            "settings": gw.settings.redacted(),
            "codec": gw.codec,
            "store": gw.store.driver,
            "sealer": gw.sealer.backend,
        },
    )


# ----------------------------------------------------------------------------------------------------------
# routing: combos, aliases, health, quotas, budgets, prices
# ----------------------------------------------------------------------------------------------------------


async def combos(gw: Gateway, request: Request, responder: Responder, params: Params, _key: object) -> None:
    rows = await _run(lambda: gw.store.read(manage.list_combos))
    await send_json(responder, 200, {"combos": rows})


async def create_combo(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    body = await _body(request)
    name = await _run(lambda: manage.save_combo(gw.store, gw.registry.catalog, body))
    await gw.reload()
    await send_json(responder, 201, {"name": name})


async def update_combo(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    body = await _body(request)
    body.setdefault("name", params["name"])
    await _run(lambda: manage.save_combo(gw.store, gw.registry.catalog, body, replace=params["name"]))
    await gw.reload()
    await send_json(responder, 200, {"ok": True})


async def delete_combo(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    await _run(manage.remove_combo, gw.store, params["name"])
    await gw.reload()
    await send_json(responder, 200, {"ok": True})


async def probe_combo(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    from omniroute_providers import probe

    result = await probe.probe_model(gw.pipeline, params["name"])
    await send_json(responder, 200, result)


async def aliases(gw: Gateway, request: Request, responder: Responder, params: Params, _key: object) -> None:
    rows = await _run(lambda: gw.store.read(manage.list_aliases))
    await send_json(responder, 200, {"aliases": rows})


async def set_alias(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    body = await _body(request)
    await _run(manage.set_alias, gw.store, str(body.get("pattern") or ""), str(body.get("target") or ""))
    await gw.reload()
    await send_json(responder, 201, {"ok": True})


async def delete_alias(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    from urllib.parse import unquote

    await _run(manage.remove_alias, gw.store, unquote(params["pattern"]))
    await gw.reload()
    await send_json(responder, 200, {"ok": True})


def rss_mb() -> float:
    """Resident memory of this process (procfs reads do not block)."""
    import resource

    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def health(gw: Gateway, request: Request, responder: Responder, params: Params, _key: object) -> None:
    memory_mb = rss_mb()
    from omniroute import __version__

    await send_json(
        responder,
        200,
        {
            "uptime_s": round(gw.uptime(), 1),
            "version": __version__,
            "memory_mb": round(memory_mb, 1),
            "codec": gw.codec,
            "store": gw.store.driver,
            "connections": gw.server.connections,
            "in_flight": gw.server.active_requests,
            "dropped_usage_rows": gw.store.dropped_rows,
            "providers": gw.balancer.health_view(gw.registry),
        },
    )


async def reset_health(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    body = await _body(request)
    account = body.get("account")
    provider = body.get("provider")
    if account is not None and not isinstance(account, int):
        raise InvalidRequestError("account: an account id", param="account")
    gw.balancer.health.reset(provider=str(provider) if provider else None, account=account)
    gw.balancer.persist()
    await send_json(responder, 200, {"ok": True})


async def quotas(gw: Gateway, request: Request, responder: Responder, params: Params, _key: object) -> None:
    await send_json(responder, 200, {"accounts": gw.balancer.quota_view(gw.registry)})


async def budgets(gw: Gateway, request: Request, responder: Responder, params: Params, _key: object) -> None:
    await send_json(responder, 200, {"budgets": gw.balancer.budgets.view()})


async def set_budget(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    body = await _body(request)
    limit = body.get("limit_usd")
    await _run(
        manage.set_budget,
        gw.store,
        str(body.get("scope") or ""),
        str(body.get("id") or ""),
        str(body.get("period") or ""),
        limit,
    )
    await gw.reload()
    await send_json(responder, 200, {"ok": True})


async def set_price(
    gw: Gateway, request: Request, responder: Responder, params: Params, _key: object
) -> None:
    body = await _body(request)
    price = body.get("price")
    await _run(
        manage.set_price, gw.store, str(body.get("provider") or ""), str(body.get("model") or ""), price
    )
    await gw.reload()
    await send_json(responder, 200, {"ok": True})

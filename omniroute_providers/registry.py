"""The configuration the request path reads: accounts, client keys, custom providers — in memory.

The database is the source of truth; a `Registry` is an immutable snapshot of it, rebuilt when the
`config_version` counter in the kv table moves (after any admin change, from the API or the CLI of another
process) and swapped in one assignment. The request path only ever reads the current snapshot: no disk.
Provider credentials are opened (unsealed) once, at load, and registered with the log redactor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from omniroute import Db, JsonObj, Sealer, kv_get, loads, register_secret
from omniroute_providers.catalog import Catalog, PriceSpec, ProviderSpec, custom_provider, load_catalog
from omniroute_providers.combos import ComboSpec, ComboTarget
from omniroute_providers.quotas import Budget


@dataclass(frozen=True, slots=True)
class Account:
    """One credential for one provider (an API key, later an OAuth token)."""

    id: int
    provider: str
    name: str
    secret: str = field(repr=False)
    base_url: str | None = None  # overrides the provider's default
    headers: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0  # lower first
    enabled: bool = True
    local: bool = False  # the base URL may be a private/loopback address (Ollama on the same box)
    limits: Mapping[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.provider}#{self.id}"


@dataclass(frozen=True, slots=True)
class ClientKey:
    id: int
    name: str
    prefix: str
    salt: str
    hash: str = field(repr=False)
    scopes: Mapping[str, object] = field(default_factory=dict)
    limits: Mapping[str, object] = field(default_factory=dict)
    expires_at: float | None = None
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class Registry:
    catalog: Catalog
    accounts: Mapping[str, tuple[Account, ...]]  # provider id -> enabled and disabled, by priority
    keys: Mapping[str, ClientKey]  # public prefix -> key
    admin_token: tuple[str, str] | None  # (salt, hash)
    version: int = 0
    combos: Mapping[str, ComboSpec] = field(default_factory=dict)
    aliases: tuple[tuple[str, str], ...] = ()  # (pattern, target), patterns may hold * and ?
    budgets: tuple[Budget, ...] = ()
    prices: Mapping[tuple[str, str], PriceSpec] = field(default_factory=dict)  # user overrides

    def account(self, account_id: int) -> Account | None:
        for group in self.accounts.values():
            for a in group:
                if a.id == account_id:
                    return a
        return None

    def price(self, provider: str, model: str) -> PriceSpec | None:
        """The user's override when there is one, else the catalog's price."""
        override = self.prices.get((provider, model))
        if override is not None:
            return override
        spec = self.catalog.provider(provider)
        m = spec.model(model) if spec is not None else None
        return m.price if m is not None else None

    def enabled_accounts(self, provider: str) -> tuple[Account, ...]:
        return tuple(a for a in self.accounts.get(provider, ()) if a.enabled)

    def configured_providers(self) -> list[ProviderSpec]:
        """Providers with at least one enabled account, in catalog order."""
        return [p for pid, p in self.catalog.providers.items() if self.enabled_accounts(pid)]


def _json(text: str | None) -> JsonObj:
    if not text:
        return {}
    value = loads(text)
    return value if isinstance(value, dict) else {}


def load_registry(db: Db, sealer: Sealer, catalog: Catalog | None = None) -> Registry:
    """Read everything the request path needs in one go (a read transaction keeps it consistent)."""
    catalog = catalog or load_catalog()
    db.execute("BEGIN")
    try:
        customs = [
            custom_provider(
                id=str(pid),
                name=str(name),
                format=str(fmt),
                base_url=str(base_url),
                headers={str(k): str(v) for k, v in _json(headers).items()},
                auth=str(auth),
                local=bool(local),
            )
            for pid, name, fmt, base_url, auth, headers, local in db.execute(
                "SELECT id, name, format, base_url, auth, headers, local FROM custom_providers ORDER BY id"
            )
        ]
        account_rows = db.execute(
            "SELECT id, provider, name, secret, base_url, headers, priority, enabled, limits "
            "FROM accounts ORDER BY priority, id"
        )
        key_rows = db.execute(
            "SELECT id, name, prefix, salt, hash, scopes, limits, expires_at, revoked_at FROM client_keys"
        )
        admin = kv_get(db, "admin_token")
        version = int(kv_get(db, "config_version") or 0)
        combo_rows = db.execute(
            "SELECT name, strategy, targets, enabled, sticky, description FROM combos ORDER BY name"
        )
        alias_rows = db.execute("SELECT pattern, target FROM model_aliases ORDER BY pattern")
        budget_rows = db.execute("SELECT scope, id, period, limit_usd FROM budgets")
        price_rows = db.execute("SELECT provider, model, price FROM price_overrides")
    finally:
        db.execute("COMMIT")
    if customs:
        catalog = catalog.with_providers(customs)
    accounts: dict[str, list[Account]] = {}
    for aid, provider, name, sealed, base_url, headers, priority, enabled, limits in account_rows:
        secret = sealer.open(str(sealed)) if sealed else ""
        register_secret(secret)
        lim = _json(limits)
        accounts.setdefault(str(provider), []).append(
            Account(
                id=int(aid),
                provider=str(provider),
                name=str(name),
                secret=secret,
                base_url=str(base_url) if base_url else None,
                headers={str(k): str(v) for k, v in _json(headers).items()},
                priority=int(priority),
                enabled=bool(enabled),
                local=bool(lim.pop("local", False)),
                limits=lim,
            )
        )
    keys = {
        str(prefix): ClientKey(
            id=int(kid),
            name=str(name),
            prefix=str(prefix),
            salt=str(salt),
            hash=str(digest),
            scopes=_json(scopes),
            limits=_json(limits),
            expires_at=float(expires) if expires is not None else None,
            revoked_at=float(revoked) if revoked is not None else None,
        )
        for kid, name, prefix, salt, digest, scopes, limits, expires, revoked in key_rows
    }
    admin_token = None
    if admin:
        salt, _, digest = admin.partition(":")
        admin_token = (salt, digest)
    combos = {
        str(name): ComboSpec(
            name=str(name),
            strategy=str(strategy),
            targets=tuple(ComboTarget(str(t["model"]), float(t.get("weight", 1))) for t in loads(targets)),
            enabled=bool(enabled),
            sticky=int(sticky),
            description=str(description),
        )
        for name, strategy, targets, enabled, sticky, description in combo_rows
    }
    prices = {}
    for provider, model, raw in price_rows:
        p = loads(raw)
        prices[(str(provider), str(model))] = PriceSpec(
            input=float(p.get("input", 0)),
            output=float(p.get("output", 0)),
            cached_input=p.get("cached_input"),
            cache_write=p.get("cache_write"),
            reasoning=p.get("reasoning"),
        )
    return Registry(
        catalog=catalog,
        accounts={k: tuple(v) for k, v in accounts.items()},
        keys=keys,
        admin_token=admin_token,
        version=version,
        combos=combos,
        aliases=tuple((str(p), str(t)) for p, t in alias_rows),
        budgets=tuple(Budget(str(sc), str(i), str(pe), float(lim)) for sc, i, pe, lim in budget_rows),
        prices=prices,
    )

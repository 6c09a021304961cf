"""Providers and models as data: the packaged `catalog.json`, validated once and indexed for lookups.

Invariants every `Catalog` holds (checked by `parse_catalog`, `custom_provider` and `with_providers`):

* ids and aliases are unique across providers, and no alias names another provider;
* `format` is a wire format of `ir.FORMATS`; `auth` is one of `AUTH_KINDS`;
* `base_url` is http(s) with no trailing slash, query or endpoint path (the format appends
  `/chat/completions`, `/messages`, `/responses` or `/models/{m}:generateContent`), or `builtin:<name>`
  for built-in providers; plain http only for `local` providers, whose host must be on this machine or
  the private network;
* prices are USD per 1M tokens and never negative; a model without a price has unknown cost;
* every caps key is a field of `ir.TargetCaps` (read from the live dataclass) with a value of its type;
* headers carry no credentials: keys live in the store, the catalog is public data.

Specs are frozen and their mappings read-only, so one catalog is shared by every request. Nothing here
does I/O except reading the packaged JSON through `importlib.resources`, which also works from a zip.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import ipaddress
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal, Union
from urllib.parse import urlsplit

from omniroute import JSONDecodeError, loads
from omniroute_providers.ir import FORMATS, TargetCaps

CATALOG_VERSION = 1
AUTH_KINDS = ("bearer", "x-api-key", "x-goog-api-key", "none")
CATEGORIES = ("api-key", "local", "builtin", "oauth")

# The path each format appends to base_url; a base_url ending in one of these was pasted with its
# endpoint and would produce ".../chat/completions/chat/completions".
ENDPOINT_SUFFIXES = ("/chat/completions", "/completions", "/messages", "/responses", "/models")
# Headers that carry credentials: the catalog is shareable data, secrets go through the store.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"}
)
# Host names that only ever resolve on this machine or the local network.
LOCAL_HOST_SUFFIXES = (".localhost", ".local", ".lan", ".internal", ".home.arpa")

# caps_for is on the request path; client model strings are arbitrary on passthrough providers, so
# the memo is bounded: past this many entries the oldest half is forgotten.
CAPS_CACHE_MAX = 4096

# TargetCaps fields declared as plain `str` whose values are nonetheless a closed set (see ir.py).
CAPS_STR_CHOICES: Mapping[str, frozenset[str]] = types.MappingProxyType(
    {
        "max_tokens_field": frozenset({"max_tokens", "max_completion_tokens"}),
        "gemini_schema": frozenset({"json_schema", "openapi"}),
    }
)

# Model-name rules: cheaper than listing every model. Matched with fnmatch against the lower-cased last
# path segment of the model id ("google/gemini-3-pro" -> "gemini-3-pro"), only for providers of the
# given formats. Applied before provider caps, which apply before model caps: the more specific wins.
MODEL_RULES: tuple[tuple[str, frozenset[str], Mapping[str, object]], ...] = (
    ("gemini-3*", frozenset({"gemini"}), types.MappingProxyType({"thinking_style": "level"})),
    ("gemini-2.5*", frozenset({"gemini"}), types.MappingProxyType({"thinking_style": "budget"})),
    ("claude*", frozenset({"anthropic"}), types.MappingProxyType({"cache_control": True})),
    ("*deepseek-r1*", frozenset({"openai-chat"}), types.MappingProxyType({"think_tags": True})),
    ("qwq*", frozenset({"openai-chat"}), types.MappingProxyType({"think_tags": True})),
)

_EMPTY: Mapping[str, object] = types.MappingProxyType({})
_NO_HEADERS: Mapping[str, str] = types.MappingProxyType({})
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class CatalogError(ValueError):
    """The catalog (or a custom provider) is invalid; `problems` lists every problem found."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid provider catalog:\n  " + "\n  ".join(self.problems))


# ----------------------------------------------------------------------------------------------------------
# specs
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceSpec:
    """USD per 1M tokens. None = the provider lists no separate rate for that kind of token."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    name: str
    context_window: int | None = None
    max_output_tokens: int | None = None
    price: PriceSpec | None = None  # None: cost is unknown, never guessed
    caps: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    aliases: tuple[str, ...] = ()
    free: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "caps", _frozen(self.caps))
        object.__setattr__(self, "aliases", tuple(self.aliases))

    def __hash__(self) -> int:
        return hash(self.id)


_V = typing.TypeVar("_V")


def _frozen(mapping: Mapping[str, _V]) -> Mapping[str, _V]:
    if isinstance(mapping, types.MappingProxyType):
        return mapping
    return types.MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    id: str
    alias: str
    name: str
    format: str
    base_url: str
    auth: str
    headers: Mapping[str, str] = field(default_factory=lambda: _NO_HEADERS)
    category: str = "api-key"
    local: bool = False
    passthrough_models: bool = False
    key_optional: bool = False
    deprecated: bool = False
    caps: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    models: tuple[ModelSpec, ...] = ()
    docs_url: str | None = None
    notes: str = ""
    _by_name: Mapping[str, ModelSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Specs are shared by every request: freeze whatever mappings the caller handed in.
        object.__setattr__(self, "headers", _frozen(self.headers))
        object.__setattr__(self, "caps", _frozen(self.caps))
        object.__setattr__(self, "models", tuple(self.models))
        index: dict[str, ModelSpec] = {}
        for model in self.models:
            for name in (model.id, *model.aliases):
                index.setdefault(name, model)
        object.__setattr__(self, "_by_name", types.MappingProxyType(index))

    def __hash__(self) -> int:
        return hash(self.id)

    def model(self, model_id: str) -> ModelSpec | None:
        """The listed model with this id or alias, else None (passthrough providers take any id)."""
        return self._by_name.get(model_id)


# ----------------------------------------------------------------------------------------------------------
# catalog
# ----------------------------------------------------------------------------------------------------------


class Catalog:
    """Validated providers in catalog order, with id/alias and bare-model indexes."""

    __slots__ = ("_by_model", "_by_name", "_caps_memo", "providers")

    def __init__(self, providers: Iterable[ProviderSpec]) -> None:
        ordered = {spec.id: spec for spec in providers}
        self.providers: Mapping[str, ProviderSpec] = types.MappingProxyType(ordered)
        self._by_name: dict[str, ProviderSpec] = {}
        self._by_model: dict[str, list[tuple[ProviderSpec, ModelSpec]]] = {}
        for spec in ordered.values():
            self._by_name.setdefault(spec.id, spec)
            self._by_name.setdefault(spec.alias, spec)
            for model in spec.models:
                for name in dict.fromkeys((model.id, *model.aliases)):
                    self._by_model.setdefault(name, []).append((spec, model))
        self._caps_memo: dict[tuple[str, str], tuple[ProviderSpec, TargetCaps]] = {}

    def __repr__(self) -> str:
        return f"<Catalog of {len(self.providers)} providers>"

    def provider(self, id_or_alias: str) -> ProviderSpec | None:
        return self._by_name.get(id_or_alias) or self._by_name.get(id_or_alias.lower())

    def find_bare_model(self, model_id: str) -> list[tuple[ProviderSpec, ModelSpec]]:
        """Every (provider, model) that lists `model_id` as a model id or alias, in catalog order."""
        return list(self._by_model.get(model_id, ()))

    def caps_for(self, provider: ProviderSpec, model_id: str) -> TargetCaps:
        """TargetCaps for one model on one provider: name rules <- provider caps <- model caps.

        Memoised per (provider id, model id); the returned object is shared, so callers only read it.
        """
        key = (provider.id, model_id)
        hit = self._caps_memo.get(key)
        if hit is not None and hit[0] is provider:
            return hit[1]
        caps = _build_caps(provider, model_id)
        if len(self._caps_memo) >= CAPS_CACHE_MAX:
            for old in list(self._caps_memo)[: CAPS_CACHE_MAX // 2]:
                self._caps_memo.pop(old, None)
        self._caps_memo[key] = (provider, caps)
        return caps

    def with_providers(self, extra: Iterable[ProviderSpec]) -> Catalog:
        """A new catalog with user-defined providers appended; raises CatalogError on any conflict."""
        added = list(extra)
        problems = [p for spec in added for p in _check_provider(spec, _label(spec))]
        problems += _check_unique([*self.providers.values(), *added])
        if problems:
            raise CatalogError(problems)
        return Catalog([*self.providers.values(), *added])


def _build_caps(provider: ProviderSpec, model_id: str) -> TargetCaps:
    merged: dict[str, object] = {}
    leaf = model_id.rsplit("/", 1)[-1].lower()
    for pattern, formats, caps in MODEL_RULES:
        if provider.format in formats and fnmatch.fnmatchcase(leaf, pattern):
            merged.update(caps)
    merged.update(provider.caps)
    model = provider.model(model_id)
    if model is not None:
        merged.update(model.caps)
        if model.max_output_tokens is not None:
            merged.setdefault("max_output_tokens", model.max_output_tokens)
    limit = merged.get("max_output_tokens")
    if isinstance(limit, int) and "default_max_tokens" not in merged:
        # Anthropic-format upstreams need max_tokens; the default must not exceed what the model allows.
        merged["default_max_tokens"] = min(limit, _CAPS_DEFAULT_MAX_TOKENS)
    return TargetCaps(**merged)  # type: ignore[arg-type]  # keys and value types validated on load


_CAPS_DEFAULT_MAX_TOKENS: int = TargetCaps().default_max_tokens


# ----------------------------------------------------------------------------------------------------------
# loading and parsing
# ----------------------------------------------------------------------------------------------------------


@functools.cache
def load_catalog() -> Catalog:
    """The packaged catalog, parsed once per process."""
    data = resources.files("omniroute_providers").joinpath("catalog.json").read_bytes()
    try:
        raw = loads(data)
    except JSONDecodeError as exc:
        raise CatalogError([f"catalog.json is not valid JSON: {exc}"]) from None
    return parse_catalog(raw)


def parse_catalog(raw: object) -> Catalog:
    """Validate a decoded catalog document; raise CatalogError listing every problem found."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise CatalogError(["catalog: expected a JSON object"])
    _unknown_keys(raw, ("version", "providers"), "catalog", problems)
    if raw.get("version") != CATALOG_VERSION:
        problems.append(f"catalog.version: expected {CATALOG_VERSION}, got {raw.get('version')!r}")
    entries = raw.get("providers")
    if not isinstance(entries, list):
        problems.append("catalog.providers: expected a list")
        entries = []
    specs: list[ProviderSpec] = []
    for index, entry in enumerate(entries):
        spec = _parse_provider(entry, f"providers[{index}]", problems)
        if spec is not None:
            problems += _check_provider(spec, f"providers[{index}] ({spec.id})")
            specs.append(spec)
    problems += _check_unique(specs)
    if problems:
        raise CatalogError(problems)
    return Catalog(specs)


def custom_provider(
    id: str,
    name: str,
    format: str,
    base_url: str,
    headers: Mapping[str, str],
    auth: str = "bearer",
    local: bool = False,
) -> ProviderSpec:
    """A user-defined OpenAI/Anthropic/...-compatible node: any model id is passed through as is."""
    spec = ProviderSpec(
        id=id,
        alias=id,
        name=name,
        format=format,
        base_url=base_url.rstrip("/"),
        auth=auth,
        headers=types.MappingProxyType(dict(headers)),
        category="local" if local else "api-key",
        local=local,
        passthrough_models=True,
        key_optional=local or auth == "none",
        notes="user-defined",
    )
    problems = _check_provider(spec, f"custom provider {id!r}")
    if problems:
        raise CatalogError(problems)
    return spec


_PROVIDER_KEYS = (
    "id",
    "alias",
    "name",
    "format",
    "base_url",
    "auth",
    "headers",
    "category",
    "local",
    "passthrough_models",
    "key_optional",
    "deprecated",
    "caps",
    "docs_url",
    "notes",
    "models",
)
_MODEL_KEYS = ("id", "name", "context_window", "max_output_tokens", "price", "caps", "aliases", "free")
_PRICE_KEYS = ("input", "output", "cached_input", "cache_write", "reasoning")


def _parse_provider(raw: object, where: str, problems: list[str]) -> ProviderSpec | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected an object")
        return None
    pid = raw.get("id")
    if isinstance(pid, str) and pid:
        where = f"{where} ({pid})"
    _unknown_keys(raw, _PROVIDER_KEYS, where, problems)
    get = _Reader(raw, where, problems)
    pid = get.text("id", required=True)
    models_raw = raw.get("models", [])
    if not isinstance(models_raw, list):
        problems.append(f"{where}.models: expected a list")
        models_raw = []
    models = tuple(
        model
        for i, entry in enumerate(models_raw)
        if (model := _parse_model(entry, f"{where}.models[{i}]", problems)) is not None
    )
    return ProviderSpec(
        id=pid,
        alias=get.text("alias", default=pid),
        name=get.text("name", default=pid),
        format=get.text("format", required=True),
        base_url=get.text("base_url", required=True),
        auth=get.text("auth", required=True),
        headers=get.str_map("headers"),
        category=get.text("category", default="api-key"),
        local=get.flag("local"),
        passthrough_models=get.flag("passthrough_models"),
        key_optional=get.flag("key_optional"),
        deprecated=get.flag("deprecated"),
        caps=get.caps("caps"),
        models=models,
        docs_url=get.opt_text("docs_url"),
        notes=get.text("notes", default=""),
    )


def _parse_model(raw: object, where: str, problems: list[str]) -> ModelSpec | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected an object")
        return None
    mid = raw.get("id")
    if isinstance(mid, str) and mid:
        where = f"{where} ({mid})"
    _unknown_keys(raw, _MODEL_KEYS, where, problems)
    get = _Reader(raw, where, problems)
    mid = get.text("id", required=True)
    return ModelSpec(
        id=mid,
        name=get.text("name", default=mid),
        context_window=get.count("context_window"),
        max_output_tokens=get.count("max_output_tokens"),
        price=_parse_price(raw.get("price"), f"{where}.price", problems),
        caps=get.caps("caps"),
        aliases=get.str_list("aliases"),
        free=get.flag("free"),
    )


def _parse_price(raw: object, where: str, problems: list[str]) -> PriceSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected an object or null")
        return None
    _unknown_keys(raw, _PRICE_KEYS, where, problems)
    get = _Reader(raw, where, problems)
    return PriceSpec(
        input=get.usd("input", required=True) or 0.0,
        output=get.usd("output", required=True) or 0.0,
        cached_input=get.usd("cached_input"),
        cache_write=get.usd("cache_write"),
        reasoning=get.usd("reasoning"),
    )


class _Reader:
    """Typed field reads from one JSON object; a wrong value is recorded and replaced by a default."""

    __slots__ = ("obj", "problems", "where")

    def __init__(self, obj: dict[str, object], where: str, problems: list[str]) -> None:
        self.obj, self.where, self.problems = obj, where, problems

    def _bad(self, key: str, expected: str) -> None:
        self.problems.append(f"{self.where}.{key}: expected {expected}, got {self.obj[key]!r}")

    def text(self, key: str, *, required: bool = False, default: str = "") -> str:
        if key not in self.obj:
            if required:
                self.problems.append(f"{self.where}.{key}: missing")
            return default
        value = self.obj[key]
        if isinstance(value, str) and (value or not required):
            return value
        self._bad(key, "a non-empty string" if required else "a string")
        return default

    def opt_text(self, key: str) -> str | None:
        if self.obj.get(key) is None:
            return None
        return self.text(key) or None

    def flag(self, key: str) -> bool:
        value = self.obj.get(key, False)
        if isinstance(value, bool):
            return value
        self._bad(key, "true or false")
        return False

    def count(self, key: str) -> int | None:
        value = self.obj.get(key)
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            return value
        self._bad(key, "a positive integer or null")
        return None

    def usd(self, key: str, *, required: bool = False) -> float | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.problems.append(f"{self.where}.{key}: missing")
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf:
            return float(value)
        self._bad(key, "a non-negative number of USD per 1M tokens")
        return None

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self.obj.get(key, [])
        if isinstance(value, list) and all(isinstance(item, str) and item for item in value):
            return tuple(value)
        self._bad(key, "a list of non-empty strings")
        return ()

    def str_map(self, key: str) -> Mapping[str, str]:
        value = self.obj.get(key, {})
        if isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return types.MappingProxyType(dict(value))
        self._bad(key, "an object of strings")
        return _NO_HEADERS

    def caps(self, key: str) -> Mapping[str, object]:
        value = self.obj.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            self._bad(key, "an object")
            return _EMPTY
        return types.MappingProxyType(dict(value))  # keys and value types: _check_caps


def _unknown_keys(obj: dict[str, object], known: tuple[str, ...], where: str, problems: list[str]) -> None:
    problems.extend(f"{where}: unknown key {key!r}" for key in obj if key not in known)


# ----------------------------------------------------------------------------------------------------------
# semantic checks (shared by the packaged catalog and user-defined providers)
# ----------------------------------------------------------------------------------------------------------


def _label(spec: ProviderSpec) -> str:
    return f"provider {spec.id!r}"


def _check_provider(spec: ProviderSpec, where: str) -> list[str]:
    problems: list[str] = []
    if not _ID.match(spec.id):
        problems.append(f"{where}.id: {spec.id!r} is not a lower-case id ([a-z0-9._-])")
    if not _ID.match(spec.alias):
        problems.append(f"{where}.alias: {spec.alias!r} is not a lower-case id ([a-z0-9._-])")
    if spec.format not in FORMATS:
        problems.append(f"{where}.format: {spec.format!r} is not one of {', '.join(FORMATS)}")
    if spec.auth not in AUTH_KINDS:
        problems.append(f"{where}.auth: {spec.auth!r} is not one of {', '.join(AUTH_KINDS)}")
    if spec.category not in CATEGORIES:
        problems.append(f"{where}.category: {spec.category!r} is not one of {', '.join(CATEGORIES)}")
    if spec.local != (spec.category == "local"):
        problems.append(f"{where}: local must be true exactly when category is 'local'")
    if spec.auth == "none" and not spec.key_optional:
        problems.append(f"{where}.key_optional: must be true when auth is 'none'")
    if not spec.models and not spec.passthrough_models:
        problems.append(f"{where}.models: empty, so passthrough_models must be true")
    problems += _check_base_url(spec, where)
    problems += _check_headers(spec.headers, f"{where}.headers")
    problems += _check_caps(spec.caps, f"{where}.caps")
    if spec.docs_url is not None and urlsplit(spec.docs_url).scheme not in ("http", "https"):
        problems.append(f"{where}.docs_url: {spec.docs_url!r} is not an http(s) URL")
    problems += _check_models(spec.models, where)
    return problems


def _check_base_url(spec: ProviderSpec, where: str) -> list[str]:
    url = spec.base_url
    if spec.category == "builtin" or url.startswith("builtin:"):
        ok = spec.category == "builtin" and re.fullmatch(r"builtin:[a-z0-9-]+", url) is not None
        return [] if ok else [f"{where}.base_url: 'builtin:<name>' goes with category 'builtin' only"]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return [f"{where}.base_url: {url!r} is not a URL"]
    problems: list[str] = []
    if parts.scheme not in ("http", "https") or not host:
        problems.append(f"{where}.base_url: {url!r} is not an http(s) URL with a host")
    elif parts.scheme == "http" and not spec.local:
        problems.append(
            f"{where}.base_url: plain http is for local providers only (the key would travel "
            "in clear text); use https"
        )
    if url.endswith("/"):
        problems.append(f"{where}.base_url: {url!r} ends with '/'")
    if parts.query or parts.fragment or parts.username or parts.password:
        problems.append(f"{where}.base_url: {url!r} must not carry a query, fragment or credentials")
    path = parts.path.rstrip("/")
    if path.endswith(ENDPOINT_SUFFIXES) or ":generateContent" in path or ":streamGenerateContent" in path:
        problems.append(f"{where}.base_url: {url!r} includes the endpoint path; the format appends it")
    if spec.local and host and not _is_local_host(host):
        problems.append(
            f"{where}.base_url: local provider on {host!r}, which is not this machine or the private network"
        )
    return problems


def is_loopback_url(url: str) -> bool:
    """True when `url`'s host is this machine (localhost or a loopback address)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_local_host(host: str) -> bool:
    if host == "localhost" or host.endswith(LOCAL_HOST_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def _check_headers(headers: Mapping[str, str], where: str) -> list[str]:
    problems: list[str] = []
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            problems.append(f"{where}: {name!r} is not a valid header name")
        elif name.lower() in CREDENTIAL_HEADERS:
            problems.append(f"{where}: {name!r} carries credentials; set `auth` and store the key instead")
        if any(ch in value for ch in "\r\n\0"):
            problems.append(f"{where}.{name}: value contains a line break or NUL")
    return problems


def _check_models(models: tuple[ModelSpec, ...], where: str) -> list[str]:
    problems: list[str] = []
    seen: dict[str, str] = {}
    for model in models:
        at = f"{where}.models ({model.id})"
        if not model.id or model.id != model.id.strip() or any(ch.isspace() for ch in model.id):
            problems.append(f"{at}.id: must be non-empty without whitespace")
        for name in dict.fromkeys((model.id, *model.aliases)):
            if name in seen:
                problems.append(f"{at}: {name!r} already names model {seen[name]!r}")
            seen.setdefault(name, model.id)
        if (
            model.context_window
            and model.max_output_tokens
            and model.max_output_tokens > model.context_window
        ):
            problems.append(f"{at}: max_output_tokens exceeds context_window")
        if model.free and model.price is not None and (model.price.input or model.price.output):
            problems.append(f"{at}: free, yet priced above zero")
        problems += _check_price(model.price, f"{at}.price")
        problems += _check_caps(model.caps, f"{at}.caps")
    return problems


def _check_price(price: PriceSpec | None, where: str) -> list[str]:
    if price is None:
        return []
    return [
        f"{where}.{name}: {value!r} is not a non-negative number"
        for name in _PRICE_KEYS
        if (value := getattr(price, name)) is not None
        and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0)
    ]


def _check_unique(specs: Iterable[ProviderSpec]) -> list[str]:
    problems: list[str] = []
    owner: dict[str, str] = {}
    for spec in specs:
        for name in dict.fromkeys((spec.id, spec.alias)):
            if name in owner and owner[name] != spec.id:
                problems.append(f"provider {spec.id!r}: {name!r} already names provider {owner[name]!r}")
            elif name in owner:
                problems.append(f"provider {spec.id!r}: defined twice")
            owner.setdefault(name, spec.id)
    return problems


# ----------------------------------------------------------------------------------------------------------
# caps validation against the live TargetCaps dataclass
# ----------------------------------------------------------------------------------------------------------


@functools.cache
def caps_field_types() -> Mapping[str, object]:
    """TargetCaps field name -> resolved type, read from the dataclass itself (so new fields just work)."""
    hints = typing.get_type_hints(TargetCaps)
    return types.MappingProxyType({f.name: hints[f.name] for f in dataclasses.fields(TargetCaps)})


def _check_caps(caps: Mapping[str, object], where: str) -> list[str]:
    fields = caps_field_types()
    problems: list[str] = []
    for key, value in caps.items():
        if key not in fields:
            problems.append(f"{where}: {key!r} is not a TargetCaps field ({', '.join(fields)})")
        elif not _value_fits(fields[key], value):
            problems.append(f"{where}.{key}: {value!r} does not fit {_type_name(fields[key])}")
        elif key in CAPS_STR_CHOICES and value not in CAPS_STR_CHOICES[key]:
            problems.append(f"{where}.{key}: {value!r} is not one of {sorted(CAPS_STR_CHOICES[key])}")
    return problems


def _value_fits(tp: object, value: object) -> bool:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in typing.get_args(tp))
    if origin is Union or origin is types.UnionType:
        return any(_value_fits(arg, value) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(tp, type) and isinstance(value, tp)


def _type_name(tp: object) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")

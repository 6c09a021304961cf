"""Model string -> Plan: the ordered targets that may serve a request.

Resolution order (first match wins):
  1. `<provider-id or alias>/<model>`  -> that provider, model passed through as given (any model id: the
     provider decides; this is the `provider/*` wildcard passthrough). Model ids may themselves contain
     slashes (`openrouter/meta-llama/llama-3.1-8b-instruct`).
  2. a bare model id listed in the catalog -> every configured provider that lists it (by id or alias), in
     catalog order, as successive fallback targets.
  3. anything else -> ModelNotFoundError naming the accepted forms.
A target only counts when its provider has an enabled account. Pure: reads the Registry snapshot only.
"""

from __future__ import annotations

from dataclasses import dataclass

from omniroute import ModelNotFoundError
from omniroute_providers.catalog import ModelSpec, ProviderSpec
from omniroute_providers.registry import Account, Registry


@dataclass(frozen=True, slots=True)
class Target:
    provider: ProviderSpec
    model: str  # the id the upstream expects
    accounts: tuple[Account, ...]
    spec: ModelSpec | None = None  # catalog entry when the model is known (prices, context window)

    @property
    def label(self) -> str:
        return f"{self.provider.id}/{self.model}"


@dataclass(frozen=True, slots=True)
class Plan:
    requested: str
    targets: tuple[Target, ...]


def _target(registry: Registry, provider: ProviderSpec, model: str) -> Target | None:
    accounts = registry.enabled_accounts(provider.id)
    if not accounts:
        return None
    spec = provider.model(model)
    return Target(provider=provider, model=spec.id if spec else model, accounts=accounts, spec=spec)


def resolve(registry: Registry, model: str) -> Plan:
    model = model.strip()
    if not model or len(model) > 256 or any(ord(c) < 32 for c in model):
        raise ModelNotFoundError("the model name is empty or malformed", param="model")
    catalog = registry.catalog
    head, sep, tail = model.partition("/")
    if sep and tail:
        provider = catalog.provider(head)
        if provider is not None:
            target = _target(registry, provider, tail)
            if target is None:
                raise ModelNotFoundError(
                    f"provider '{provider.id}' has no enabled account; add one with "
                    f"`omniroute provider add {provider.id}` or in the dashboard",
                    param="model",
                )
            return Plan(model, (target,))
    targets = []
    for provider, spec in catalog.find_bare_model(model):
        target = _target(registry, provider, spec.id)
        if target is not None:
            targets.append(target)
    if targets:
        return Plan(model, tuple(targets))
    raise ModelNotFoundError(
        f"no configured provider serves model '{model}'; use '<provider>/<model>' (see GET /v1/models)",
        param="model",
    )

"""Model string -> Plan: the tree of targets that may serve a request, and its order for one request.

Resolution order (first match wins; user-defined names come before the catalog so they can shadow it):
  1. a combo name                        -> the combo (disabled combos answer 404 with a reason)
  2. a user model alias, exact           -> its target, resolved again
  3. `<provider id or alias>/<model>`    -> that provider with that model id, passed through as given: any
                                            model id works (the `provider/*` wildcard passthrough); model ids
                                            may contain slashes (`openrouter/meta-llama/llama-3.1-8b`)
  4. a user model alias, wildcard        -> the most specific matching pattern (`claude-*`), resolved again
  5. a bare model id in the catalog      -> every configured provider that lists it, in catalog order
  6. the configured default model        -> resolved again (only for the name the client sent)
A target counts only when its provider has an enabled account. Nested combos may go MAX_DEPTH deep.

`resolve` is pure and its result is cached per (registry version, model string): the request path does not
repeat it. `order` then flattens the tree for one request, applying each combo's strategy with the current
statistics: O(targets), no disk.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from omniroute import ModelNotFoundError
from omniroute_providers.catalog import ModelSpec, ProviderSpec
from omniroute_providers.combos import MAX_DEPTH, ComboSpec, match_alias
from omniroute_providers.registry import Account, Registry
from omniroute_providers.strategies import Candidate, RoundRobin
from omniroute_providers.strategies import order as strategy_order


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
class ComboNode:
    combo: ComboSpec
    children: tuple[tuple[Target | ComboNode, float], ...]  # (child, weight)


Node = Target | ComboNode


@dataclass(frozen=True, slots=True)
class Plan:
    requested: str
    root: Node
    combo: str | None = None  # the combo the client named, if it named one

    @property
    def targets(self) -> tuple[Target, ...]:
        """Every target in configured order (what the `priority` strategy gives)."""
        return tuple(_walk(self.root))


def _walk(node: Node) -> list[Target]:
    if isinstance(node, Target):
        return [node]
    out: list[Target] = []
    for child, _ in node.children:
        out.extend(_walk(child))
    return out


def _target(registry: Registry, provider: ProviderSpec, model: str) -> Target | None:
    accounts = registry.enabled_accounts(provider.id)
    if not accounts:
        return None
    spec = provider.model(model)
    return Target(provider=provider, model=spec.id if spec else model, accounts=accounts, spec=spec)


class _Resolver:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.why: list[str] = []  # reasons a name did not resolve, for the error message

    def node(self, name: str, depth: int) -> Node | None:
        reg = self.registry
        if depth > MAX_DEPTH + 2:
            self.why.append(f"'{name}': aliases and combos nest too deep")
            return None
        combo = reg.combos.get(name)
        if combo is not None:
            if not combo.enabled:
                self.why.append(f"combo '{name}' is disabled")
                return None
            children = []
            for entry in combo.targets:
                child = self.node(entry.model, depth + 1)
                if child is not None:
                    children.append((child, entry.weight))
            if not children:
                self.why.append(f"no target of combo '{name}' has an enabled account")
                return None
            return ComboNode(combo, tuple(children))
        for pattern, target in reg.aliases:
            if pattern == name:
                return self.node(target, depth + 1)
        head, sep, tail = name.partition("/")
        if sep and tail:
            provider = reg.catalog.provider(head)
            if provider is not None:
                found = _target(reg, provider, tail)
                if found is None:
                    self.why.append(
                        f"provider '{provider.id}' has no enabled account; add one with "
                        f"`omniroute provider add {provider.id}` or in the dashboard"
                    )
                return found
        wildcard = match_alias([(p, t) for p, t in reg.aliases if "*" in p or "?" in p], name)
        if wildcard is not None and wildcard != name:
            return self.node(wildcard, depth + 1)
        found_targets = [
            _target(reg, provider, spec.id) for provider, spec in reg.catalog.find_bare_model(name)
        ]
        targets = [t for t in found_targets if t is not None]
        if len(targets) == 1:
            return targets[0]
        if targets:
            bare = ComboSpec(name=name, targets=())
            return ComboNode(bare, tuple((t, 1.0) for t in targets))
        return None


def resolve(registry: Registry, model: str, *, default_model: str = "") -> Plan:
    model = model.strip()
    if not model or len(model) > 256 or any(ord(c) < 32 for c in model):
        raise ModelNotFoundError("the model name is empty or malformed", param="model")
    resolver = _Resolver(registry)
    root = resolver.node(model, 0)
    if root is None and default_model and default_model != model:
        root = resolver.node(default_model, 0)
    if root is None:
        reason = (
            resolver.why[0]
            if resolver.why
            else (
                f"no configured provider serves model '{model}'; use '<provider>/<model>', a combo or "
                "an alias (see GET /v1/models)"
            )
        )
        raise ModelNotFoundError(reason, param="model")
    return Plan(model, root, combo=model if model in registry.combos else None)


class PlanCache:
    """Resolved plans per model string, valid for one registry version."""

    def __init__(self, max_entries: int = 2048) -> None:
        self.registry: Registry | None = None
        self.plans: dict[tuple[str, str], Plan] = {}
        self.max_entries = max_entries

    def get(self, registry: Registry, model: str, default_model: str = "") -> Plan:
        if registry is not self.registry:  # a reload swaps in a new snapshot: plans may have changed
            self.plans.clear()
            self.registry = registry
        key = (model, default_model)
        plan = self.plans.get(key)
        if plan is None:
            plan = resolve(registry, model, default_model=default_model)
            if len(self.plans) >= self.max_entries:
                self.plans.clear()
            self.plans[key] = plan
        return plan


# ----------------------------------------------------------------------------------------------------------
# ordering for one request
# ----------------------------------------------------------------------------------------------------------

CandidateOf = Callable[[Target], Candidate]
STATELESS = frozenset({"priority", "round-robin", "random", "weighted"})  # strategies that ignore stats


def order(
    plan: Plan,
    candidate_of: CandidateOf,
    rng: random.Random,
    rotations: dict[str, RoundRobin],
) -> list[Target]:
    """The targets of `plan` in the order to try them, each combo's strategy applied with fresh stats.
    A target reached twice (through two combos) is tried once, at its first place."""
    out: list[Target] = []
    seen: set[tuple[str, str]] = set()

    def visit(node: Node) -> None:
        if isinstance(node, Target):
            key = (node.provider.id, node.model)
            if key not in seen:
                seen.add(key)
                out.append(node)
            return
        combo = node.combo
        if combo.strategy in STATELESS:  # order without statistics: no per-account work at all
            cands = [Candidate(weight=weight) for _, weight in node.children]
        else:
            cands = [_candidate(child, weight, candidate_of) for child, weight in node.children]
        rr = rotations.setdefault(combo.name, RoundRobin()) if combo.strategy == "round-robin" else None
        for i in strategy_order(combo.strategy, cands, rng=rng, rr=rr, sticky=combo.sticky):
            visit(node.children[i][0])

    visit(plan.root)
    return out


def _candidate(node: Node, weight: float, candidate_of: CandidateOf) -> Candidate:
    if isinstance(node, Target):
        c = candidate_of(node)
        return Candidate(
            weight=weight, cost=c.cost, uses=c.uses, in_flight=c.in_flight, latency_ms=c.latency_ms
        )
    inner = [candidate_of(t) for t in _walk(node)]
    costs = [c.cost for c in inner if c.cost is not None]
    return Candidate(
        weight=weight,
        cost=min(costs) if costs else None,
        uses=sum(c.uses for c in inner),
        in_flight=sum(c.in_flight for c in inner),
        latency_ms=min((c.latency_ms for c in inner if c.latency_ms), default=0.0),
    )

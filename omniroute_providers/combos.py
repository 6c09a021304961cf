"""Combos and model aliases as data: a combo is a named, ordered, nestable list of targets with a balancing
strategy; an alias maps a user-chosen name (or a wildcard pattern) to a target. Pure: validation only."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omniroute import InvalidRequestError
from omniroute_providers.strategies import normalize

NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
MAX_TARGETS = 50
MAX_DEPTH = 3  # combos may contain combos, this deep at most


@dataclass(frozen=True, slots=True)
class ComboTarget:
    model: str  # `provider/model`, an alias, a bare model id, or another combo's name
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class ComboSpec:
    name: str
    strategy: str = "priority"
    targets: tuple[ComboTarget, ...] = ()
    enabled: bool = True
    sticky: int = 1  # round-robin: requests served by one target before rotating
    description: str = ""

    def view(self) -> dict[str, object]:
        return {
            "name": self.name,
            "strategy": self.strategy,
            "targets": [{"model": t.model, "weight": t.weight} for t in self.targets],
            "enabled": self.enabled,
            "sticky": self.sticky,
            "description": self.description,
        }


def parse_combo(raw: Mapping[str, object]) -> ComboSpec:
    """Validate a combo as the API/CLI gives it; InvalidRequestError says what is wrong."""
    name = str(raw.get("name") or "").strip()
    if not NAME_OK.match(name):
        raise InvalidRequestError(
            "combo name: 1-64 letters, digits and . _ : / -, starting alphanumeric", param="name"
        )
    try:
        strategy = normalize(str(raw.get("strategy") or "priority"))
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="strategy") from None
    targets_raw = raw.get("targets")
    if not isinstance(targets_raw, Sequence) or isinstance(targets_raw, (str, bytes)) or not targets_raw:
        raise InvalidRequestError("targets: a non-empty list of {model, weight?}", param="targets")
    if len(targets_raw) > MAX_TARGETS:
        raise InvalidRequestError(f"a combo holds at most {MAX_TARGETS} targets", param="targets")
    targets = []
    for i, t in enumerate(targets_raw):
        if isinstance(t, str):
            t = {"model": t}
        if not isinstance(t, Mapping):
            raise InvalidRequestError(f"targets[{i}]: an object {{model, weight?}}", param="targets")
        model = str(t.get("model") or "").strip()
        if not model or len(model) > 256:
            raise InvalidRequestError(f"targets[{i}].model is required", param="targets")
        if model == name:
            raise InvalidRequestError("a combo cannot contain itself", param="targets")
        weight = t.get("weight", 1)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise InvalidRequestError(f"targets[{i}].weight must be a number >= 0", param="targets")
        targets.append(ComboTarget(model, float(weight)))
    sticky = raw.get("sticky", 1)
    if not isinstance(sticky, int) or isinstance(sticky, bool) or not 1 <= sticky <= 1000:
        raise InvalidRequestError("sticky: an integer from 1 to 1000", param="sticky")
    return ComboSpec(
        name=name,
        strategy=strategy,
        targets=tuple(targets),
        enabled=bool(raw.get("enabled", True)),
        sticky=sticky,
        description=str(raw.get("description") or "")[:500],
    )


def check_no_cycles(combos: Mapping[str, ComboSpec]) -> None:
    """Reject a combo graph with a cycle or nesting deeper than MAX_DEPTH."""

    def depth(name: str, path: tuple[str, ...]) -> int:
        if name in path:
            raise InvalidRequestError(f"combos form a cycle: {' -> '.join((*path, name))}", param="targets")
        combo = combos[name]
        inner = [depth(t.model, (*path, name)) for t in combo.targets if t.model in combos]
        return 1 + max(inner, default=0)

    for name in combos:
        if depth(name, ()) > MAX_DEPTH:
            raise InvalidRequestError(
                f"combo {name!r} nests more than {MAX_DEPTH} levels deep", param="targets"
            )


def match_alias(aliases: Sequence[tuple[str, str]], name: str) -> str | None:
    """The target for `name`: an exact alias first, then the most specific wildcard pattern (longest
    pattern wins). A `*` in the target takes what the pattern's first `*` matched."""
    for pattern, target in aliases:
        if pattern == name:
            return target
    best: tuple[int, str, str] | None = None
    for pattern, target in aliases:
        wildcard = "*" in pattern or "?" in pattern
        if wildcard and fnmatch.fnmatchcase(name, pattern) and (best is None or len(pattern) > best[0]):
            best = (len(pattern), pattern, target)
    if best is None:
        return None
    _, pattern, target = best
    if "*" in target:
        prefix, _, suffix = pattern.partition("*")
        rest = suffix.split("*")[0]
        middle = name[len(prefix) : len(name) - len(rest) if rest else None]
        return target.replace("*", middle, 1)
    return target

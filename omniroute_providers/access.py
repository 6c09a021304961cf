"""What a client key may do: its scopes (models, providers), its limits (per minute, per day, concurrent)
and its budget. Checked in memory before routing; counters rebuild from the usage table at start."""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from omniroute import BudgetExceededError, Db, PermissionDeniedError, RateLimitError
from omniroute_providers.quotas import BudgetBook, window_reset, window_start
from omniroute_providers.registry import ClientKey
from omniroute_providers.routing import Plan, Target


def _patterns(scopes: object, name: str) -> list[str]:
    if not isinstance(scopes, dict):
        return []
    value = scopes.get(name)
    return [str(v) for v in value] if isinstance(value, list) else []


def model_allowed(key: ClientKey, model: str, also: Iterable[str] = ()) -> bool:
    """Allowed models are patterns (`openai/*`, `*sonnet*`, a combo name); none listed = all allowed.
    `also`: other names of the same single target (`provider-id/model`, `alias/model`), so a key scoped to
    `openai/*` may ask for `gpt-4o` by its bare name; a combo's targets are not names of the combo."""
    patterns = _patterns(key.scopes, "models")
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(name, p) for name in (model, *also) for p in patterns)


def target_names(plan: Plan) -> tuple[str, ...]:
    """The canonical names of a plan that lands on one provider model; none for a combo."""
    root = plan.root
    if not isinstance(root, Target):
        return ()
    return (f"{root.provider.id}/{root.model}", f"{root.provider.alias}/{root.model}")


def provider_allowed(key: ClientKey, provider: str) -> bool:
    allowed = _patterns(key.scopes, "providers")
    return not allowed or provider in allowed


def _limit(key: ClientKey, name: str) -> int | None:
    v = key.limits.get(name)
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None


@dataclass(slots=True)
class _KeyState:
    minute: deque[float] = field(default_factory=deque)
    day_start: float = 0.0
    day_count: int = 0
    in_flight: int = 0


class KeyGate:
    def __init__(self, clock: Callable[[], float], budgets: BudgetBook, reset_hour: int = 0) -> None:
        self.clock = clock
        self.budgets = budgets
        self.reset_hour = reset_hour
        self.state: dict[int, _KeyState] = {}

    def _state(self, key_id: int, now: float) -> _KeyState:
        st = self.state.get(key_id)
        if st is None:
            st = self.state[key_id] = _KeyState()
        start = window_start("daily", now, self.reset_hour)
        if st.day_start != start:
            st.day_start, st.day_count = start, 0
        return st

    def admit(self, key: ClientKey, model: str, plan: Plan | None = None) -> None:
        """Raise when the key may not send this request now; otherwise count it (call `done` after)."""
        if key.id == 0:  # --no-auth: no key, no limits
            return
        if key.scopes and not model_allowed(key, model, target_names(plan) if plan is not None else ()):
            raise PermissionDeniedError(f"this API key may not use model '{model}'", code="model_not_allowed")
        budget = self.budgets.over("key", str(key.id))
        if budget is not None:
            raise BudgetExceededError(
                f"this API key has spent its {budget.period}ly budget of ${budget.limit_usd:g}",
                retry_after=max(1.0, self.budgets.resets_at(budget.period) - self.clock()),
            )
        now = self.clock()
        st = self._state(key.id, now)
        rpm, rpd, concurrent = _limit(key, "rpm"), _limit(key, "rpd"), _limit(key, "concurrent")
        while st.minute and now - st.minute[0] >= 60.0:
            st.minute.popleft()
        if rpm is not None and len(st.minute) >= rpm:
            raise RateLimitError(
                f"this API key is limited to {rpm} requests per minute", retry_after=st.minute[0] + 60.0 - now
            )
        if rpd is not None and st.day_count >= rpd:
            raise RateLimitError(
                f"this API key is limited to {rpd} requests per day",
                retry_after=window_reset("daily", now, self.reset_hour) - now,
            )
        if concurrent is not None and st.in_flight >= concurrent:
            raise RateLimitError(f"this API key may have {concurrent} requests in flight", retry_after=1.0)
        st.minute.append(now)
        st.day_count += 1
        st.in_flight += 1

    def done(self, key: ClientKey) -> None:
        st = self.state.get(key.id)
        if st is not None:
            st.in_flight = max(0, st.in_flight - 1)

    def load(self, db: Db) -> None:
        now = self.clock()
        since = window_start("daily", now, self.reset_hour)
        for key_id, count in db.execute(
            "SELECT key_id, COUNT(*) FROM usage WHERE ts >= ? AND key_id IS NOT NULL GROUP BY key_id",
            (since,),
        ):
            self._state(int(key_id), now).day_count = int(count)

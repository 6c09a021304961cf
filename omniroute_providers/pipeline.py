"""One request, end to end: plan -> attempts -> translate -> upstream -> stream back -> record.

Invariants:
* Before the first meaningful upstream event ("first byte") nothing is written to the client, so any failure
  can still fall over to the next account or target and a final failure gets a real HTTP status and the
  client format's own error body.
* After it, there is no fallback: a broken stream ends with the client format's in-stream error event.
* Same format on both sides (and no provider quirk needing a rewrite, and no active request policy) =
  passthrough: the upstream's bytes are forwarded as they arrive; only `model` is rewritten in the request,
  and usage is tapped from the stream with a substring test per event. Otherwise every event goes upstream
  parser -> IR -> client renderer.
* The client leaving cancels this coroutine; the upstream response is then closed, not pooled, so the
  provider sees the connection drop. Every request leaves exactly one usage record, whatever happened.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import trio

from omniroute import (
    GatewayError,
    InvalidRequestError,
    JSONDecodeError,
    JsonObj,
    PermissionDeniedError,
    ServiceUnavailableError,
    Store,
    UpstreamError,
    UpstreamTimeoutError,
    __version__,
    dumps,
    loads,
    redact,
)
from omniroute_providers import ir
from omniroute_providers.access import KeyGate, provider_allowed
from omniroute_providers.balancer import Balancer, wall_clock
from omniroute_providers.echo import EchoResponse
from omniroute_providers.formats import StreamRenderer, WireFormat, get_format
from omniroute_providers.formats.common import marked_events, stream_ended
from omniroute_providers.formats.sse import SSEDecoder, SSEEvent, encode, iter_events, parse_events
from omniroute_providers.health import AccountLimiter, Stats, jittered_backoff
from omniroute_providers.media import inline_remote_media
from omniroute_providers.payloads import DEBUG_HEADER, DebugBudget, PayloadRecord
from omniroute_providers.policy import RequestPolicy, apply_policy
from omniroute_providers.pricing import request_cost
from omniroute_providers.records import AttemptRecord, UsageRecord
from omniroute_providers.registry import Account, ClientKey, Registry
from omniroute_providers.routing import Plan, PlanCache, Target
from omniroute_providers.upstream import MAX_ERROR_BODY_BYTES, UpstreamClient

log = logging.getLogger("omniroute.pipeline")

USER_AGENT = f"omniroute/{__version__}"
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
COUNT_TOKENS_PATHS = {"anthropic": "/messages/count_tokens", "gemini": "/models/{model}:countTokens"}


class ClientSink(Protocol):
    """Where the answer goes (the web layer's Responder satisfies it)."""

    started: bool

    async def send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None: ...
    async def start(self, status: int, headers: list[tuple[str, str]], first: bytes = b"") -> None: ...
    async def write(self, data: bytes) -> None: ...
    async def end(self, last: bytes = b"") -> None: ...


class UpstreamReply(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...

    def iter_bytes(self) -> AsyncIterator[bytes]: ...
    async def read(self, limit: int = ...) -> bytes: ...
    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Call:
    """A client request, decoded and authenticated."""

    endpoint: str  # chat | responses | messages | generate | completions
    client_format: str
    body: JsonObj  # the decoded client body; never mutated
    model: str
    stream: bool
    request_id: str = ""
    key_id: int | None = None
    key: ClientKey | None = None  # for scopes, limits and budget (None: no key checks, e.g. probes)
    client_headers: Mapping[str, str] = field(default_factory=dict)
    json_array_stream: bool = False  # Gemini streamGenerateContent without alt=sse
    legacy: bool = False  # /v1/completions
    drain_expired: Callable[[], bool] = lambda: False
    parsed: ir.ChatRequest | None = None  # the IR, parsed at most once per request
    payloads: PayloadRecord | None = None  # set by the pipeline when this request's bodies are kept


@dataclass(slots=True)
class _Route:
    """How one attempt talks to one target through one account."""

    target: Target
    account: Account
    upstream: WireFormat
    client: WireFormat
    ctx: ir.Context
    passthrough: bool
    legacy: bool = False  # /v1/completions: chat upstream, text_completion answer
    strip_usage_chunk: bool = False  # we asked an OpenAI upstream for usage the client did not ask for


class _Opened:
    """An attempt that got past the first byte: ready to be delivered."""

    def __init__(self, route: _Route, reply: UpstreamReply) -> None:
        self.route = route
        self.reply = reply
        self.json_body: bytes | None = None  # non-streaming answer, already in the client's format
        self.chunks: AsyncIterator[bytes] = _empty()
        self.buffered: list[bytes] = []
        self.decoder = SSEDecoder()
        self.parser = route.upstream.StreamParser(route.ctx)
        self.renderer = _client_renderer(route)
        self.tap = route.upstream.UsageTap()  # read only on the passthrough path
        self.usage: ir.Usage | None = None
        self.output_chars = 0
        self.committed = False  # a content event was seen: the stream is the client's now
        self.finished = False  # the upstream's end-of-answer event was seen (and forwarded)
        self.truncated = False  # the upstream body ended without that event
        self.closed = False  # finish() ran
        self.first_relayed = b""  # passthrough: the first and last events relayed, for a coherent error
        self.last_relayed = b""
        self.slot: tuple[AccountLimiter, Stats] | None = None  # held until the request ends

    def release(self) -> None:
        if self.slot is not None:
            limiter, stats = self.slot
            self.slot = None
            stats.in_flight = max(0, stats.in_flight - 1)
            if not limiter.unlimited:
                limiter.release()

    # IR events from the upstream parser -> bytes for the client; remembers usage and output size
    def _render(self, events: list[ir.StreamEvent]) -> bytes:
        out = []
        for ev in events:
            if isinstance(ev, (ir.UsageUpdate, ir.StreamStart)):
                if ev.usage is not None:
                    self.usage = ir.merge_usage(self.usage, ev.usage)
            elif isinstance(ev, (ir.TextDelta, ir.ThinkingDelta, ir.RefusalDelta)):
                self.output_chars += len(ev.text)
            elif isinstance(ev, ir.ToolCallDelta):
                self.output_chars += len(ev.arguments)
            if not self.committed and isinstance(ev, ir.CONTENT_EVENTS):
                self.committed = True
            if isinstance(ev, ir.Finish):
                self.finished = True
            if not self.route.passthrough:
                out.append(self.renderer.feed(ev))
        return b"".join(out)

    def process(self, chunk: bytes) -> bytes:
        """One upstream body chunk -> bytes for the client (may be empty)."""
        if not self.route.passthrough:
            parsed: list[ir.StreamEvent] = []
            for ev in self.decoder.feed(chunk):
                parsed.extend(self.parser.feed(ev))
            return self._render(parsed)
        relayed = self.decoder.split(chunk)
        if not relayed:
            return b"" if self.route.strip_usage_chunk else chunk
        # Relayed as received: the events are parsed until the answer starts; after that only the ones
        # holding one of the format's usage or end markers are (the rest are searched, not parsed).
        fmt = self.route.upstream.FORMAT_ID
        tap = self.tap
        looked = 0  # relayed[:looked] was parsed event by event
        if not self.committed:
            for ev, end in iter_events(relayed):
                tap.feed(ev)
                self._render(self.parser.feed(ev))
                self.finished = self.finished or stream_ended(fmt, ev)
                looked = end
                if self.committed:
                    break
            else:
                looked = len(relayed)
        for ev in marked_events(fmt, relayed, looked) if looked < len(relayed) else ():
            tap.feed(ev)
            self.finished = self.finished or stream_ended(fmt, ev)
        if b"data:" in relayed:  # not only comments: fail() may continue from these events
            self.first_relayed = self.first_relayed or relayed
            self.last_relayed = relayed
        if self.route.strip_usage_chunk:
            if b'"choices":[]' not in relayed:
                return relayed
            kept = (ev for ev in parse_events(relayed) if b'"choices":[]' not in ev.data)
            return b"".join(encode(ev.data, ev.event) for ev in kept)
        return chunk

    def finish(self) -> bytes:
        """The upstream body ended: the last bytes for the client. A stream that ended without its
        format's end marker was cut: `truncated` is set and the caller adds the error event instead of a
        normal ending (a clean EOF is not a complete answer: Codex, for one, treats it as an error)."""
        if self.closed:
            return b""
        self.closed = True
        tail = self.decoder.close()
        if self.route.passthrough:
            fmt = self.route.upstream.FORMAT_ID
            for ev in tail:
                self.tap.feed(ev)
                self.finished = self.finished or stream_ended(fmt, ev)
            self.truncated = not self.finished
            if not self.route.strip_usage_chunk:
                return b""  # the raw bytes of these events were forwarded already
            return b"".join(encode(ev.data, ev.event) for ev in tail if b'"choices":[]' not in ev.data)
        events: list[ir.StreamEvent] = []
        for ev in tail:
            events.extend(self.parser.feed(ev))
        events.extend(self.parser.close())
        out = self._render(events)
        if not self.finished:
            self.truncated = True
            return out
        return out + self.renderer.close()

    def final_usage(self) -> ir.Usage | None:
        if self.route.passthrough and self.tap.usage is not None:
            return ir.merge_usage(self.usage, self.tap.usage)
        return self.usage

    def fail(self, error: GatewayError) -> bytes:
        resume = getattr(self.renderer, "resume_from", None)
        if self.route.passthrough and resume is not None:
            first, last = parse_events(self.first_relayed), parse_events(self.last_relayed)
            # continue the relayed stream's numbering
            resume(first[0] if first else None, last[-1] if last else None)
        return self.renderer.fail(error)


def _client_renderer(route: _Route) -> StreamRenderer:
    if route.legacy:
        return route.client.LegacyCompletionRenderer(route.ctx)  # type: ignore[attr-defined,no-any-return]
    return route.client.StreamRenderer(route.ctx)


class Pipeline:
    def __init__(
        self,
        registry: Callable[[], Registry],
        upstream: UpstreamClient,
        store: Store | None,
        *,
        request_deadline_s: float = 600.0,
        stream_coalesce_s: float = 0.0,
        signatures: ir.SignatureCache | None = None,
        balancer: Balancer | None = None,
        default_model: str = "",
        guard: Callable[[Call], None] | None = None,
        log_payloads: bool = False,
    ) -> None:
        self.registry = registry
        self.upstream = upstream
        self.store = store
        self.request_deadline_s = request_deadline_s
        self.stream_coalesce_s = stream_coalesce_s
        self.signatures = signatures or ir.SignatureCache()
        self.balancer = balancer or Balancer(wall_clock())
        self.keys = KeyGate(self.balancer.clock, self.balancer.budgets, self.balancer.config.quota_reset_hour)
        self.plans = PlanCache()
        self.default_model = default_model
        self.guard = guard  # prompt-injection guard: raises to refuse a request before any provider sees it
        self.log_payloads = log_payloads  # keep every request's bodies (the dashboard may flip it live)
        self.debug_budget = DebugBudget()  # requests kept for their x-omniroute-debug header
        self.policy: RequestPolicy | None = None  # the operator's request policy; None while inactive

    def set_policy(self, policy: RequestPolicy) -> None:
        """Takes effect with the next request. An inactive policy is stored as None, so that the hot path
        pays one attribute test for the feature."""
        self.policy = policy if policy.active else None

    # ------------------------------------------------------------------------------------------------------
    # the request
    # ------------------------------------------------------------------------------------------------------

    async def handle(self, call: Call, sink: ClientSink) -> None:
        started = trio.current_time()
        record = UsageRecord(
            request_id=call.request_id,
            endpoint=call.endpoint,
            client_format=call.client_format,
            model_requested=call.model,
            stream=call.stream,
            key_id=call.key_id,
        )
        opened: _Opened | None = None
        admitted = False
        if self.log_payloads or DEBUG_HEADER in call.client_headers:
            sink = self._keep_payloads(call, record, sink, started)
        try:
            if self.guard is not None:
                self.guard(call)
            plan = self.plans.get(self.registry(), call.model, self.default_model)
            if call.key is not None:
                self.keys.admit(call.key, call.model, plan)
                admitted = True
            opened = await self._first_byte(call, plan, record, started)
            await self._deliver(call, sink, opened, record, started)
        except GatewayError as err:
            err.message = redact(err.message)
            record.status, record.error = err.status, f"{err.code}: {err.message}"[:500]
            if not sink.started:
                if call.payloads is not None:
                    call.payloads.client_error(get_format(call.client_format).render_error(err)[2])
                raise
            log.warning("request %s failed after the response started: %r", call.request_id, err)
        except trio.Cancelled:
            if record.outcome != "ok":
                record.status, record.outcome = 499, "cancelled"
            raise
        finally:
            if admitted and call.key is not None:
                self.keys.done(call.key)
            record.latency_ms = (trio.current_time() - started) * 1000
            if opened is not None:
                self._settle(call, opened, record)
            if self.store is not None:
                self.store.submit(record.insert)

    def _keep_payloads(self, call: Call, record: UsageRecord, sink: ClientSink, now: float) -> ClientSink:
        """Keep this request's bodies (payload logging is on, or the request asked with x-omniroute-debug):
        the record collects them as they pass and is written, redacted, with the usage row."""
        if not self.log_payloads and not self.debug_budget.allow(now):
            log.info("request %s: x-omniroute-debug ignored (over the per-minute allowance)", call.request_id)
            return sink
        call.payloads = record.payloads = PayloadRecord(call.body, call.client_headers)
        return call.payloads.sink(sink)

    def _settle(self, call: Call, opened: _Opened, record: UsageRecord) -> None:
        """The request is over: free its account slot, teach the balancer, price it, count it."""
        route = opened.route
        target, account = route.target, route.account
        bal = self.balancer
        opened.release()
        ok = record.outcome == "ok"
        bal.health.stats_for(account.id).record(ok, record.latency_ms, record.ttfb_ms or record.latency_ms)
        record.usage = self._final_usage(call, opened)
        record.cost_usd = request_cost(record.usage, self.registry().price(target.provider.id, target.model))
        bal.quotas.record(account.id, record.usage.input_tokens + record.usage.output_tokens)
        bal.budgets.record(call.key_id, target.provider.id, record.cost_usd)

    def _final_usage(self, call: Call, opened: _Opened) -> ir.Usage:
        usage = opened.final_usage()
        if usage is not None and (usage.input_tokens or usage.output_tokens):
            return usage
        # The upstream did not say (a cut stream, an odd provider): estimate, and say so.
        if call.parsed is not None:
            prompt = ir.estimate_tokens(call.parsed)
        else:
            prompt = max(1, len(dumps(call.body)) // ir.CHARS_PER_TOKEN)
        return ir.Usage(
            input_tokens=prompt, output_tokens=opened.output_chars // ir.CHARS_PER_TOKEN, estimated=True
        )

    async def _first_byte(self, call: Call, plan: Plan, record: UsageRecord, started: float) -> _Opened:
        """Walk targets and accounts in the balancer's order until one answers with content.

        Unhealthy candidates (cooling down, breaker open, quota spent, over budget, no rate-limit slot) are
        skipped. When nothing could even be tried, wait for the soonest cooldown (bounded) and walk again.
        Raises the deciding error: a caller fault at once, else the last failure, else "all cooling down".
        """
        reg, bal = self.registry(), self.balancer
        deadline = started + self.request_deadline_s
        bal.retry_budget.earn()
        last: GatewayError | None = None
        waited = 0.0
        while True:
            soonest: float | None = None
            skipped: list[str] = []
            unfit: list[str] = []
            forbidden: list[str] = []  # providers this client key may not use
            for target in bal.order_targets(reg, plan):
                pid = target.provider.id
                if call.key is not None and not provider_allowed(call.key, pid):
                    forbidden.append(pid)
                    continue
                why_not = _unfit(call, target)
                if why_not:
                    unfit.append(why_not)
                    continue
                if bal.budgets.over("provider", pid) is not None:
                    skipped.append(f"{pid}: over budget")
                    continue
                until = bal.health.provider_blocked(pid)
                if until is not None:
                    soonest = min(soonest or until, until)
                    continue
                for account in bal.order_accounts(reg, target):
                    until = bal.blocked_until(target, account)
                    if until is not None:
                        soonest = min(soonest or until, until)
                        continue
                    opened, err = await self._try_account(call, target, account, record, deadline)
                    if opened is not None:
                        record.provider, record.account_id, record.model_served = (
                            pid,
                            account.id,
                            target.model,
                        )
                        record.ttfb_ms = (trio.current_time() - started) * 1000
                        return opened
                    if err is None:
                        continue  # skipped: breaker probe taken, or no rate-limit slot in time
                    last = err
                    if err.failure == "caller_fault":
                        raise err  # any provider would say the same: no fallback
                    if err.failure == "model_access":
                        break  # other accounts of this provider will not know the model either
            now = bal.clock()
            if last is None:
                remembered = bal.health.remembered_error(plan.targets)
                if remembered is not None:
                    raise remembered  # the provider said "no such model" a moment ago: say it again
            if soonest is not None and last is None:
                wait = soonest - now
                budget = min(bal.config.wait_for_cooldown_s - waited, deadline - trio.current_time())
                if 0 <= wait <= budget:
                    log.info("every account for %s is cooling down; waiting %.1fs", call.model, wait)
                    await trio.sleep(wait + 0.01)
                    waited += wait
                    continue
            if last is not None:
                raise last
            if soonest is not None:
                raise ServiceUnavailableError(
                    f"every account that can serve '{call.model}' is cooling down or rate limited",
                    retry_after=max(1.0, soonest - now),
                )
            if forbidden and not skipped and not unfit:
                names = ", ".join(dict.fromkeys(forbidden))
                raise PermissionDeniedError(
                    f"this API key may not use provider {names}", code="provider_not_allowed"
                )
            if unfit and not skipped:
                raise InvalidRequestError(unfit[0])
            skipped += [f"{pid}: not allowed for this key" for pid in dict.fromkeys(forbidden)]
            reason = "; ".join(skipped + unfit) if skipped or unfit else "no account could take the request"
            raise ServiceUnavailableError(reason)

    async def _try_account(
        self, call: Call, target: Target, account: Account, record: UsageRecord, deadline: float
    ) -> tuple[_Opened | None, GatewayError | None]:
        """One account, with up to `retries_per_account` jittered retries of transient failures.
        (None, None) = skipped without an attempt."""
        bal = self.balancer
        health = bal.health
        pid, model = target.provider.id, target.model
        pb, mb = health.provider_breaker(pid), health.model_breaker(account.id, model)
        now = bal.clock()
        if not (pb.would_allow(now) and mb.would_allow(now)):
            return None, None
        limiter = health.limiter(account.id, dict(account.limits))
        if not limiter.unlimited:
            wait = min(bal.config.rate_limit_wait_s, max(0.0, deadline - trio.current_time()))
            if not await limiter.acquire(wait, bal.clock):
                return None, None
        pb.allow(now)  # in half-open these take the single probe slot
        mb.allow(now)
        stats = health.stats_for(account.id)
        stats.in_flight += 1
        settled = False
        retry = 0
        try:
            while True:
                attempt = AttemptRecord(provider=pid, account=account.id, model=model)
                record.attempts.append(attempt)
                t0 = trio.current_time()
                try:
                    with trio.fail_at(deadline):
                        opened = await self._open(call, target, account)
                except trio.TooSlowError:
                    attempt.failure, attempt.error = "transient", "request deadline"
                    raise UpstreamTimeoutError(
                        f"no provider answered within the {self.request_deadline_s:g}s request deadline"
                    ) from None
                except GatewayError as err:
                    attempt.ms = (trio.current_time() - t0) * 1000
                    attempt.status = err.upstream_status or 0
                    attempt.failure, attempt.error = err.failure, redact(err.message)[:300]
                    log.info(
                        "attempt %s via %s failed: %s %s",
                        target.label,
                        account.label,
                        err.failure,
                        attempt.error[:200],
                    )
                    health.record_failure(pid, account.id, model, err)
                    if (
                        err.failure == "transient"
                        and retry < bal.config.retries_per_account
                        and bal.retry_budget.spend()
                    ):
                        retry += 1
                        with trio.fail_at(deadline):
                            await trio.sleep(jittered_backoff(retry - 1, rng=bal.rng))
                        continue
                    return None, err
                attempt.ms = (trio.current_time() - t0) * 1000
                attempt.status = opened.reply.status
                health.record_success(pid, account.id, model)
                opened.slot = (limiter, stats)
                settled = True
                return opened, None
        finally:
            if not settled:
                stats.in_flight = max(0, stats.in_flight - 1)
                if not limiter.unlimited:
                    limiter.release()
                health.release(pid, account.id, model)

    # ------------------------------------------------------------------------------------------------------
    # one attempt
    # ------------------------------------------------------------------------------------------------------

    def _route(self, call: Call, target: Target, account: Account) -> _Route:
        provider = target.provider
        upstream = get_format(provider.format)
        client = get_format(call.client_format)
        caps = self.registry().catalog.caps_for(provider, target.model)
        passthrough = (
            call.client_format == provider.format
            and not call.legacy
            and not call.json_array_stream  # we always ask Gemini for SSE: the array is re-rendered
            and not caps.system_as_user
            and not caps.think_tags
            # An active policy rewrites the request, so it goes through the IR both ways (parse, apply,
            # render the same format; the answer is re-rendered too). Splicing only the request would keep
            # the answer's bytes, but renders may rename tools or call ids that such an answer would then
            # not map back; the IR path is the one every format pair is tested on.
            and self.policy is None
        )
        ctx = ir.Context(
            client_format=call.client_format,
            upstream_format=provider.format,
            provider=provider.id,
            upstream_model=target.model,
            client_model=call.model,
            caps=caps,
            include_usage=_client_wants_usage(call),
            json_array_stream=call.json_array_stream,
            signatures=self.signatures,
        )
        return _Route(target, account, upstream, client, ctx, passthrough, legacy=call.legacy)

    def _request_body(self, call: Call, route: _Route) -> bytes:
        if route.passthrough:
            body = route.upstream.prepare_passthrough(call.body)
            if route.upstream.FORMAT_ID != "gemini" and body.get("model") != route.target.model:
                body = {**body, "model": route.target.model}
            if call.stream and route.upstream.FORMAT_ID == "openai-chat" and not route.ctx.include_usage:
                opts = body.get("stream_options")
                body = {
                    **body,
                    "stream_options": {**(opts if isinstance(opts, dict) else {}), "include_usage": True},
                }
                route.strip_usage_chunk = True
            return dumps(body)
        req = self._parsed(call, route.client)
        route.ctx.request = req
        return dumps(route.upstream.render_request(req, route.ctx))

    def _parsed(self, call: Call, client: WireFormat) -> ir.ChatRequest:
        if call.parsed is None:
            if call.legacy:
                call.parsed = client.parse_legacy_completion(call.body)  # type: ignore[attr-defined]
            else:
                call.parsed = client.parse_request(call.body)
            if not call.parsed.model:
                call.parsed.model = call.model
            call.parsed.stream = call.stream
            if self.policy is not None:
                call.parsed = apply_policy(call.parsed, self.policy)  # once: every attempt renders this
        return call.parsed

    def _headers(self, call: Call, route: _Route) -> list[tuple[str, str]]:
        provider, account = route.target.provider, route.account
        headers: list[tuple[str, str]] = [("user-agent", USER_AGENT), ("content-type", "application/json")]
        if call.stream:
            headers.append(("accept", "text/event-stream"))
        secret = account.secret
        if secret:
            if provider.auth == "x-api-key":
                headers.append(("x-api-key", secret))
            elif provider.auth == "x-goog-api-key":
                headers.append(("x-goog-api-key", secret))
            else:
                headers.append(("authorization", f"Bearer {secret}"))
        headers.extend(provider.headers.items())
        headers.extend(account.headers.items())
        if provider.format == "anthropic" and call.client_format == "anthropic":
            beta = call.client_headers.get("anthropic-beta")
            if beta:
                headers.append(("anthropic-beta", beta))
        return headers

    async def _open(self, call: Call, target: Target, account: Account) -> _Opened:
        route = self._route(call, target, account)
        if not route.passthrough and route.upstream.FORMAT_ID == "gemini":
            # Gemini takes image bytes, not arbitrary URLs: fetch them (guarded) before rendering.
            await inline_remote_media(self._parsed(call, route.client), self.upstream)
        payload = self._request_body(call, route)
        base = (account.base_url or target.provider.base_url).rstrip("/")
        builtin = base.startswith("builtin:")
        url = base if builtin else base + route.upstream.request_path(target.model, call.stream)
        headers = [] if builtin else self._headers(call, route)
        if call.payloads is not None:
            call.payloads.attempt("POST", url, headers, payload, account.secret)
        reply: UpstreamReply
        if builtin:
            reply = EchoResponse(payload)
        else:
            reply = await self.upstream.request(
                "POST",
                url,
                headers,
                payload,
                allow_private=target.provider.local or account.local,
            )
        if call.payloads is not None:
            reply = call.payloads.reply(reply)
        self.balancer.quotas.note_headers(account.id, reply.headers)
        opened = _Opened(route, reply)
        try:
            if reply.status >= 400:
                body = await _read_capped(reply, MAX_ERROR_BODY_BYTES)
                raise route.upstream.parse_error(reply.status, body, reply.headers)
            if reply.status >= 300:  # never followed: a redirect could carry the key somewhere else
                raise UpstreamError(f"the provider answered with a redirect ({reply.status}); not followed")
            if call.stream:
                await self._read_to_first_content(opened)
            else:
                await self._read_whole(call, opened)
        except BaseException:
            with trio.CancelScope(shield=True):
                await reply.aclose()
            raise
        return opened

    async def _read_whole(self, call: Call, opened: _Opened) -> None:
        route, reply = opened.route, opened.reply
        raw = await reply.read(MAX_RESPONSE_BYTES)
        if _is_event_stream(reply):
            # A provider that streams even when asked not to: fold the stream into one response.
            acc = ir.StreamAccumulator()
            for ev in [*opened.decoder.feed(raw), *opened.decoder.close()]:
                for event in opened.parser.feed(ev):
                    acc.feed(event)
            for event in opened.parser.close():
                acc.feed(event)
            response = acc.result()
            opened.usage = response.usage
            opened.json_body = dumps(self._render_response(call, route, response))
            return
        decoded = _json_object(raw)
        if route.passthrough:
            opened.usage = route.upstream.response_usage(decoded)
            opened.json_body = raw
            return
        response = route.upstream.parse_response(decoded, route.ctx)
        opened.usage = response.usage
        opened.json_body = dumps(self._render_response(call, route, response))

    def _render_response(self, call: Call, route: _Route, response: ir.ChatResponse) -> JsonObj:
        if call.legacy:
            return route.client.render_legacy_completion(response, route.ctx)  # type: ignore[attr-defined,no-any-return]
        return route.client.render_response(response, route.ctx)

    async def _read_to_first_content(self, opened: _Opened) -> None:
        """Read the stream until its first meaningful event; keep what was read for delivery."""
        reply = opened.reply
        if not _is_event_stream(reply):
            # Asked to stream but got one JSON answer: replay it as a stream.
            decoded = _json_object(await reply.read(MAX_RESPONSE_BYTES))
            response = opened.route.upstream.parse_response(decoded, opened.route.ctx)
            opened.route.passthrough = False
            opened.renderer = _client_renderer(opened.route)
            opened.buffered.append(opened._render(ir.response_events(response)))
            opened.chunks = _empty()
            return
        opened.chunks = reply.iter_bytes()
        async for chunk in opened.chunks:
            opened.buffered.append(opened.process(chunk))
            if opened.committed:
                return
        # The upstream ended without any content: a well-formed empty answer still counts; a stream cut
        # before anything arrived is a failure like any other (the next account or target may serve).
        opened.buffered.append(opened.finish())
        if opened.truncated:
            raise UpstreamError("the provider's stream ended before any content")
        opened.chunks = _empty()
        opened.committed = True

    # ------------------------------------------------------------------------------------------------------
    # count_tokens
    # ------------------------------------------------------------------------------------------------------

    async def count_tokens(self, call: Call) -> JsonObj:
        """Anthropic and Gemini upstreams count for us when the client speaks their format; everything else
        gets the documented estimate (ir.estimate_tokens: characters / 4 plus flat image costs)."""
        plan = self.plans.get(self.registry(), call.model, self.default_model)
        client = get_format(call.client_format)
        parse = getattr(client, "parse_count_tokens_request", client.parse_request)
        req = parse(call.body)
        if self.policy is not None:
            req = apply_policy(req, self.policy)  # the estimate counts an injected system prompt too
        target = plan.targets[0]
        path = COUNT_TOKENS_PATHS.get(target.provider.format)
        if (
            target.provider.format == call.client_format
            and path
            and not target.provider.base_url.startswith("builtin:")
        ):
            account = target.accounts[0]
            route = self._route(call, target, account)
            body = {**call.body, "model": target.model} if call.client_format != "gemini" else call.body
            url = (account.base_url or target.provider.base_url).rstrip("/") + path.format(model=target.model)
            try:
                reply = await self.upstream.request(
                    "POST",
                    url,
                    self._headers(call, route),
                    dumps(body),
                    allow_private=target.provider.local or account.local,
                )
                try:
                    raw = await reply.read(MAX_ERROR_BODY_BYTES)
                finally:
                    await reply.aclose()
                if reply.status == 200:
                    counted = loads(raw)
                    if isinstance(counted, dict):
                        return counted
                log.info("count_tokens upstream answered %s; estimating instead", reply.status)
            except GatewayError as err:
                log.info("count_tokens upstream failed (%s); estimating instead", err.message[:200])
        return client.render_count_tokens(ir.estimate_tokens(req))  # type: ignore[attr-defined,no-any-return]

    # ------------------------------------------------------------------------------------------------------
    # delivery
    # ------------------------------------------------------------------------------------------------------

    async def _deliver(
        self, call: Call, sink: ClientSink, opened: _Opened, record: UsageRecord, started: float
    ) -> None:
        route = opened.route
        served = [("x-omniroute-served-by", f"{route.target.label} (account {route.account.id})")]
        try:
            if opened.json_body is not None:
                await sink.send(200, [("content-type", "application/json"), *served], opened.json_body)
                record.status, record.outcome = 200, "ok"
                return
            content_type = "application/json" if call.json_array_stream else "text/event-stream"
            head = [
                ("content-type", content_type),
                ("cache-control", "no-cache"),
                ("x-accel-buffering", "no"),
            ]
            await sink.start(200, [*head, *served], b"".join(opened.buffered))
            opened.buffered.clear()
            record.status = 200
            tail = b""
            try:
                coalesce = self.stream_coalesce_s
                asked = trio.current_time()
                async for chunk in opened.chunks:
                    got = trio.current_time()
                    out = opened.process(chunk)
                    if out:
                        await sink.write(out)
                    if got - asked < coalesce and not opened.finished:
                        # the provider is sending faster than we relay: let the rest of the burst gather
                        await trio.sleep_until(got + coalesce)
                    asked = trio.current_time()
                tail = opened.finish()
                if opened.truncated:
                    raise UpstreamError("the provider's stream ended before the answer was complete")
            except GatewayError as err:
                err.message = redact(err.message)
                record.outcome, record.error = "partial", f"{err.code}: {err.message}"[:500]
                await sink.end((tail if opened.truncated else b"") + opened.fail(err))
                return
            await sink.end(tail)
            record.outcome = "ok"
        except trio.Cancelled:
            if opened.finished:  # the client left after the whole answer (Codex closes on completion)
                record.outcome = "ok"
                raise
            if call.drain_expired():
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    await sink.end(opened.fail(ServiceUnavailableError("the gateway is shutting down")))
                record.outcome = "partial"
            raise
        finally:
            with trio.CancelScope(shield=True):
                await opened.reply.aclose()


class _Empty:
    def __aiter__(self) -> _Empty:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration


def _empty() -> AsyncIterator[bytes]:
    return _Empty()


async def _read_capped(reply: UpstreamReply, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in reply.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    except GatewayError:
        pass  # a broken error body still tells us the status
    return b"".join(chunks)[:limit]


def _unfit(call: Call, target: Target) -> str | None:
    """A request feature this target cannot serve at all (skip it, do not count it as a failure)."""
    previous = call.body.get("previous_response_id") if call.client_format == "openai-responses" else None
    if previous and target.provider.format != "openai-responses":
        return (
            f"previous_response_id needs an OpenAI Responses upstream; {target.label} is not one. Send the "
            "whole conversation in `input` instead (clients such as Codex do, with store: false)"
        )
    return None


def _json_object(raw: bytes) -> JsonObj:
    try:
        decoded = loads(raw)
    except JSONDecodeError:
        raise UpstreamError("the provider's response is not valid JSON") from None
    if not isinstance(decoded, dict):
        raise UpstreamError("the provider's response is not a JSON object")
    return decoded


def _is_event_stream(reply: UpstreamReply) -> bool:
    return "event-stream" in reply.headers.get("content-type", "")


def _client_wants_usage(call: Call) -> bool:
    if call.client_format != "openai-chat":
        return True
    opts = call.body.get("stream_options")
    return isinstance(opts, dict) and bool(opts.get("include_usage"))


def validate_stream_flag(body: JsonObj) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise InvalidRequestError("`stream` must be a boolean", param="stream")
    return stream


__all__ = ["Call", "ClientSink", "Pipeline", "SSEEvent", "validate_stream_flag"]

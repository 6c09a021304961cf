// Health: uptime, version, memory; circuit breakers per provider/account, cooldowns and lockouts with
// reset buttons; p50/p95/p99 latency and time to first byte. Refreshes every 10 s.
import { api, getOptional } from "../api.js";
import { t } from "../i18n.js";
import { actionButton, badge, card, fmtBytes, fmtDuration, fmtMs, fmtNumber, fmtPercent, h, notAvailable, replace, table, toast } from "../dom.js";

const REFRESH_S = 10;
const STATE_KIND = { closed: "ok", open: "error", "half-open": "warn" };

function breaker(b) {
  if (!b) return "–";
  const open = b.state !== "closed" && b.opened_until;
  return h("span", null, badge(t(`health.state_${b.state}`, null, b.state), STATE_KIND[b.state] || ""), b.failures ? h("span", { class: "muted small" }, ` ${t("health.failures", { n: b.failures })}`) : null,
    open ? h("span", { class: "muted small" }, ` ${t("health.until", { time: fmtDuration(b.opened_until - Date.now() / 1000) })}`) : null);
}

export async function render(root) {
  const sys = h("div");
  const breakers = h("div");
  const lat = h("div");
  root.append(h("h1", null, t("nav.health")), sys, breakers, lat);

  async function resetHealth(body) {
    await api.post("/api/health/reset", body);
    toast(t("health.reset_done"), "ok");
    await load();
  }

  async function load() {
    const [s, health, latency] = await Promise.all([api.get("/api/dashboard/system"), getOptional("/api/health"), api.get("/api/usage/latency?since=1h")]);
    replace(sys, card(t("health.system"), h("div", { class: "stats" },
      h("div", { class: "stat" }, h("div", { class: "stat-label" }, t("health.uptime")), h("div", { class: "stat-value", "data-testid": "uptime" }, fmtDuration(s.uptime_s))),
      h("div", { class: "stat" }, h("div", { class: "stat-label" }, t("health.version")), h("div", { class: "stat-value" }, s.version)),
      h("div", { class: "stat" }, h("div", { class: "stat-label" }, t("health.memory")), h("div", { class: "stat-value" }, s.memory_mb === null ? "–" : `${fmtNumber(s.memory_mb, 1)} MB`)),
      h("div", { class: "stat" }, h("div", { class: "stat-label" }, t("health.database")), h("div", { class: "stat-value" }, fmtBytes(s.db_bytes)))),
    h("p", { class: "muted small" }, `${t("health.data_dir")}: ${s.data_dir} · Python ${s.python} · codec ${s.codec} · store ${s.store} · sealing ${s.sealer}`)));
    if (health === null) {
      replace(breakers, card(t("health.breakers"), notAvailable(t("health.not_available"))));
    } else {
      const now = Date.now() / 1000;
      replace(breakers, card(t("health.breakers"),
        h("div", { class: "row end" }, actionButton(t("health.reset_all"), () => resetHealth({}), { testid: "health-reset-all" })),
        (health.providers || []).map((p) => h("div", { class: "health-provider" },
          h("div", { class: "row between" }, h("h3", null, p.id), breaker(p.breaker), actionButton(t("health.reset"), () => resetHealth({ provider: p.id }), { kind: "small" })),
          table([
            { label: t("providers.account_name"), cell: (a) => h("span", null, a.name, a.enabled ? null : badge(t("health.disabled"))) },
            { label: t("health.breaker"), cell: (a) => breaker(a.breaker) },
            { label: t("health.cooldown"), cell: (a) => (a.cooldown_until && a.cooldown_until > now ? h("span", null, badge(t("health.cooling"), "warn"), ` ${fmtDuration(a.cooldown_until - now)}`, a.cooldown_reason ? h("span", { class: "muted small" }, ` (${a.cooldown_reason})`) : null) : "–") },
            { label: t("health.in_flight"), num: true, cell: (a) => fmtNumber(a.in_flight) },
            { label: t("usage.requests"), num: true, cell: (a) => fmtNumber(a.requests) },
            { label: t("usage.success_rate"), num: true, cell: (a) => fmtPercent(a.success_rate) },
            { label: "p50 / p95 / p99", num: true, cell: (a) => `${fmtMs(a.p50_ms)} / ${fmtMs(a.p95_ms)} / ${fmtMs(a.p99_ms)}` },
            { label: t("usage.ttfb"), num: true, cell: (a) => fmtMs(a.ttfb_p50_ms) },
            { label: "", cell: (a) => actionButton(t("health.reset"), () => resetHealth({ provider: p.id, account: a.id }), { kind: "small" }) },
          ], p.accounts || []))),
        (health.providers || []).length ? null : h("p", { class: "empty" }, t("health.no_providers"))));
    }
    replace(lat, card(t("health.latency_1h"), table([
      { label: t("usage.by_provider"), cell: (r) => h("strong", null, r.provider) },
      { label: t("usage.requests"), num: true, cell: (r) => fmtNumber(r.requests) },
      { label: t("usage.success_rate"), num: true, cell: (r) => fmtPercent(r.success_rate) },
      { label: "p50", num: true, cell: (r) => fmtMs(r.p50_ms) },
      { label: "p95", num: true, cell: (r) => fmtMs(r.p95_ms) },
      { label: "p99", num: true, cell: (r) => fmtMs(r.p99_ms) },
      { label: t("health.ttfb_p50"), num: true, cell: (r) => fmtMs(r.ttfb_p50_ms) },
      { label: t("health.ttfb_p95"), num: true, cell: (r) => fmtMs(r.ttfb_p95_ms) },
    ], latency.providers, { empty: t("usage.no_data") })));
  }

  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_S * 1000);
  return () => clearInterval(timer);
}

// Logs: the request log (filters, detail with every attempt), the audit trail, and the live console
// streamed over SSE.
import { api, qs } from "../api.js";
import { t } from "../i18n.js";
import { badge, button, card, checkbox, fmtCost, fmtMs, fmtNumber, fmtTime, h, input, replace, select, table, tabs } from "../dom.js";
import { payloadSections } from "../payloads.js";

let active = "requests";

function statusBadge(r) {
  if (r.outcome === "ok") return badge(String(r.status), "ok");
  return badge(`${r.status || "–"} ${t(`logs.outcome_${r.outcome}`, null, r.outcome)}`, r.outcome === "cancelled" ? "warn" : "error");
}

export async function render(root) {
  const bar = h("div");
  const body = h("div");
  let stop = null;
  root.append(h("h1", null, t("nav.logs")), bar, body);

  async function show(tab) {
    active = tab;
    if (stop) stop();
    stop = null;
    replace(bar, tabs([["requests", t("logs.requests")], ["audit", t("logs.audit")], ["console", t("logs.console")]], active, show));
    if (tab === "requests") await requests(body);
    else if (tab === "audit") await audit(body);
    else stop = consoleView(body);
  }

  await show(active);
  return () => stop && stop();
}

async function requests(body) {
  const [providers, keys] = await Promise.all([api.get("/api/providers"), api.get("/api/keys")]);
  const keyNames = Object.fromEntries(keys.keys.map((k) => [String(k.id), k.name]));
  const status = select([["", t("logs.all")], ["ok", t("logs.ok")], ["error", t("logs.errors")], ["429", "429"], ["502", "502"], ["503", "503"]], "", { "data-testid": "log-status" });
  const provider = select([["", t("logs.all_providers")], ...providers.providers.filter((p) => p.accounts).map((p) => [p.id, p.id])], "", { "data-testid": "log-provider" });
  const model = input({ type: "search", placeholder: t("logs.model_filter"), "data-testid": "log-model" });
  const key = select([["", t("logs.all_keys")], ...keys.keys.map((k) => [String(k.id), k.name])], "", { "data-testid": "log-key" });
  const list = h("div", { "data-testid": "request-log" });
  const detail = h("div");
  let rows = [];

  async function load(more = false) {
    const before = more && rows.length ? rows[rows.length - 1].id : undefined;
    const data = await api.get(`/api/logs/requests${qs({ status: status.value, provider: provider.value, model: model.value.trim(), key: key.value, before, limit: 100 })}`);
    rows = more ? [...rows, ...data.requests] : data.requests;
    replace(list, table([
      { label: t("logs.time"), cell: (r) => fmtTime(r.ts) },
      { label: t("logs.status"), cell: statusBadge },
      { label: t("logs.model"), cell: (r) => h("span", null, h("code", null, r.model_requested), r.model_served && r.model_served !== r.model_requested ? h("span", { class: "muted" }, ` → ${r.model_served}`) : null) },
      { label: t("logs.provider"), cell: (r) => (r.provider ? `${r.provider}#${r.account_id}` : "–") },
      { label: t("logs.key"), cell: (r) => (r.key_id ? keyNames[String(r.key_id)] || `#${r.key_id}` : "–") },
      { label: t("logs.format"), cell: (r) => r.client_format },
      { label: t("usage.tokens_in_out"), num: true, cell: (r) => `${fmtNumber(r.input_tokens)} / ${fmtNumber(r.output_tokens)}${r.tokens_estimated ? "*" : ""}` },
      { label: t("usage.cost"), num: true, cell: (r) => fmtCost(r.cost_usd) },
      { label: t("logs.latency"), num: true, cell: (r) => fmtMs(r.latency_ms) },
      { label: t("usage.ttfb"), num: true, cell: (r) => fmtMs(r.ttfb_ms) },
    ], rows, { empty: t("logs.none"), onRow: (r) => showDetail(r.id) }),
    data.requests.length === 100 ? button(t("logs.more"), () => load(true)) : null);
  }

  async function showDetail(id) {
    const { request: r, payloads_kept: kept } = await api.get(`/api/logs/requests/${id}`);
    replace(detail, card(t("logs.detail", { id: r.request_id }),
      h("dl", { class: "kv", "data-testid": "request-detail" },
        [["logs.time", fmtTime(r.ts)], ["logs.status", `${r.status} (${r.outcome})`], ["logs.endpoint", `${r.endpoint} · ${r.client_format}${r.stream ? " · stream" : ""}`],
          ["logs.model", `${r.model_requested} → ${r.model_served || "–"}`], ["logs.provider", r.provider ? `${r.provider}#${r.account_id}` : "–"],
          ["usage.tokens", `${fmtNumber(r.input_tokens)} in · ${fmtNumber(r.output_tokens)} out · ${fmtNumber(r.cached_tokens)} cached · ${fmtNumber(r.reasoning_tokens)} reasoning${r.tokens_estimated ? ` (${t("logs.estimated")})` : ""}`],
          ["usage.cost", fmtCost(r.cost_usd)], ["logs.latency", `${fmtMs(r.latency_ms)} (${t("usage.ttfb")} ${fmtMs(r.ttfb_ms)})`], ["logs.error", r.error || "–"]]
          .map(([k, v]) => [h("dt", null, t(k)), h("dd", null, v)])),
      h("h3", null, t("logs.attempts")),
      table([
        { label: "#", cell: (a) => String(r.attempts.indexOf(a) + 1) },
        { label: t("logs.provider"), cell: (a) => `${a.provider}#${a.account}` },
        { label: t("logs.model"), cell: (a) => a.model },
        { label: t("logs.status"), cell: (a) => String(a.status || "–") },
        { label: t("logs.failure"), cell: (a) => a.failure || "–" },
        { label: t("logs.error"), cell: (a) => a.error || "–" },
        { label: "ms", num: true, cell: (a) => fmtMs(a.ms) },
      ], r.attempts || []),
      h("h3", null, t("logs.payloads")),
      r.payloads ? payloadSections(r.payloads) : h("p", { class: "muted", "data-testid": "payloads-absent" }, kept ? t("logs.payloads_none") : t("logs.payloads_off"))));
    detail.scrollIntoView({ block: "nearest" });
  }

  for (const el of [status, provider, key]) el.addEventListener("change", () => load());
  let debounce = null;
  model.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => load(), 250);
  });
  replace(body, h("div", { class: "row toolbar" }, status, provider, model, key, button(t("logs.refresh"), () => load(), { testid: "log-refresh" })), list, detail);
  await load();
}

async function audit(body) {
  const data = await api.get("/api/logs/audit?limit=200");
  replace(body, table([
    { label: t("logs.time"), cell: (e) => fmtTime(e.ts) },
    { label: t("logs.actor"), cell: (e) => e.actor },
    { label: t("logs.action"), cell: (e) => h("code", null, e.action) },
    { label: t("logs.ip"), cell: (e) => e.ip || "–" },
    { label: t("logs.status"), cell: (e) => (e.status ? badge(String(e.status), e.status < 400 ? "ok" : "error") : "–") },
  ], data.entries, { empty: t("logs.none") }));
}

function consoleView(body) {
  const level = select([["DEBUG", "debug"], ["INFO", "info"], ["WARNING", "warning"], ["ERROR", "error"]], "DEBUG");
  const search = input({ type: "search", placeholder: t("logs.search") });
  const pause = checkbox(t("logs.pause"), false);
  const state = h("span", { class: "muted small", "data-testid": "console-state" }, t("logs.connecting"));
  const screen = h("pre", { class: "console", "data-testid": "console", "aria-live": "off" });
  const RANK = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };
  const lines = [];
  const MAX = 2000;
  const visible = (e) => (RANK[e.level] || 0) >= RANK[level.value] && (!search.value || e.message.toLowerCase().includes(search.value.toLowerCase()));
  const line = (e) => h("div", { class: ["console-line", `lvl-${e.level.toLowerCase()}`] }, `${new Date(e.ts * 1000).toLocaleTimeString()} ${e.level.padEnd(7)} ${e.logger}: ${e.message}`);
  const redraw = () => replace(screen, lines.filter(visible).map(line));
  level.addEventListener("change", redraw);
  search.addEventListener("input", redraw);
  replace(body, h("div", { class: "row toolbar" }, level, search, pause.el, button(t("logs.clear"), () => {
    lines.length = 0;
    redraw();
  }), state), screen);
  const source = new EventSource("/api/logs/console");
  source.onopen = () => (state.textContent = t("logs.live"));
  source.onerror = () => (state.textContent = t("logs.reconnecting"));
  source.onmessage = (ev) => {
    const e = JSON.parse(ev.data);
    lines.push(e);
    if (lines.length > MAX) lines.splice(0, lines.length - MAX);
    if (pause.box.checked || !visible(e)) return;
    const stick = screen.scrollTop + screen.clientHeight >= screen.scrollHeight - 4;
    screen.append(line(e));
    while (screen.childNodes.length > MAX) screen.firstChild.remove();
    if (stick) screen.scrollTop = screen.scrollHeight;
  };
  return () => source.close();
}

// Usage & costs: stat cards, charts over time by provider / model / key, a provider table with success
// rate and latency, and the time range to look at.
import { api, qs } from "../api.js";
import { language, t } from "../i18n.js";
import { card, fmtCost, fmtMs, fmtNumber, fmtPercent, h, replace, segmented, table } from "../dom.js";
import { chart } from "../chart.js";
import { statCards, totals } from "./home.js";

const RANGES = ["1h", "24h", "7d", "30d"];
const GROUPS = ["provider", "model", "key", "account"];
let range = "24h";
let group = "provider";

function timeFormatter(bucket) {
  const opts = bucket >= 86400 ? { month: "short", day: "numeric" } : bucket >= 3 * 3600 ? { month: "short", day: "numeric", hour: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
  const f = new Intl.DateTimeFormat(language(), opts);
  return (unix) => f.format(new Date(unix * 1000));
}

export async function render(root) {
  const body = h("div");
  const controls = h("div", { class: "row toolbar" });
  root.append(h("h1", null, t("nav.usage")), controls, body);

  function drawControls() {
    replace(controls,
      h("span", { class: "muted" }, t("usage.range")),
      segmented(RANGES.map((r) => [r, t(`usage.range_${r}`)]), range, (r) => {
        range = r;
        reload();
      }, { "data-testid": "usage-range" }),
      h("span", { class: "muted" }, t("usage.group_by")),
      segmented(GROUPS.map((g) => [g, t(`usage.by_${g}`)]), group, (g) => {
        group = g;
        reload();
      }, { "data-testid": "usage-group" }));
  }

  async function reload() {
    drawControls();
    const [byProvider, byModel, series, latency, keys] = await Promise.all([
      api.get(`/api/usage${qs({ since: range, by: "provider" })}`),
      api.get(`/api/usage${qs({ since: range, by: "model" })}`),
      api.get(`/api/usage/series${qs({ since: range, by: group })}`),
      api.get(`/api/usage/latency${qs({ since: range })}`),
      group === "key" ? api.get("/api/keys") : Promise.resolve(null),
    ]);
    const keyNames = keys ? Object.fromEntries(keys.keys.map((k) => [String(k.id), k.name])) : {};
    const named = series.series.map((s) => ({ ...s, name: group === "key" && keyNames[s.name] ? keyNames[s.name] : s.name }));
    const tf = timeFormatter(series.bucket_s);
    const lat = Object.fromEntries(latency.providers.map((p) => [p.provider, p]));
    const empty = !series.series.length;
    replace(body,
      statCards(totals(byProvider.rows)),
      card(t("usage.requests_over_time"), empty ? h("p", { class: "empty" }, t("usage.no_data")) : chart({ times: series.buckets, series: named.map((s) => ({ name: s.name, values: s.requests })), kind: "bar", integer: true, format: (v) => fmtNumber(v), timeFormat: tf, label: t("usage.requests_over_time") })),
      h("div", { class: "grid2" },
        card(t("usage.tokens_over_time"), empty ? h("p", { class: "empty" }, t("usage.no_data")) : chart({ times: series.buckets, series: named.map((s) => ({ name: s.name, values: s.tokens })), kind: "line", integer: true, format: (v) => fmtNumber(v), timeFormat: tf, height: 180 })),
        card(t("usage.cost_over_time"), empty ? h("p", { class: "empty" }, t("usage.no_data")) : chart({ times: series.buckets, series: named.map((s) => ({ name: s.name, values: s.cost })), kind: "line", format: (v) => fmtCost(v), timeFormat: tf, height: 180 }))),
      h("div", { "data-testid": "usage-providers" }, card(t("usage.providers"), table([
        { label: t("usage.by_provider"), cell: (r) => h("strong", null, r.provider) },
        { label: t("usage.requests"), num: true, cell: (r) => fmtNumber(r.requests) },
        { label: t("usage.success_rate"), num: true, cell: (r) => fmtPercent(r.requests ? (r.requests - r.errors) / r.requests : null) },
        { label: "p50", num: true, cell: (r) => fmtMs((lat[r.provider] || {}).p50_ms) },
        { label: "p95", num: true, cell: (r) => fmtMs((lat[r.provider] || {}).p95_ms) },
        { label: t("usage.ttfb"), num: true, cell: (r) => fmtMs((lat[r.provider] || {}).ttfb_p50_ms) },
        { label: t("usage.tokens_in_out"), num: true, cell: (r) => `${fmtNumber(r.input_tokens)} / ${fmtNumber(r.output_tokens)}` },
        { label: t("usage.cost"), num: true, cell: (r) => fmtCost(r.cost_usd) },
      ], byProvider.rows, { empty: t("usage.no_data") }))),
      card(t("usage.models"), table([
        { label: t("usage.by_model"), cell: (r) => h("code", null, r.model) },
        { label: t("usage.requests"), num: true, cell: (r) => fmtNumber(r.requests) },
        { label: t("usage.errors"), num: true, cell: (r) => fmtNumber(r.errors) },
        { label: t("usage.tokens_in_out"), num: true, cell: (r) => `${fmtNumber(r.input_tokens)} / ${fmtNumber(r.output_tokens)}` },
        { label: t("usage.avg_latency"), num: true, cell: (r) => fmtMs(r.avg_latency_ms) },
        { label: t("usage.cost"), num: true, cell: (r) => fmtCost(r.cost_usd) },
      ], byModel.rows, { empty: t("usage.no_data") })));
    body.dataset.loaded = String(Date.now());
  }

  await reload();
}

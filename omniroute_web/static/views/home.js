// Home: where to point your tools, the last 24 hours at a glance, and the way to the set-up wizard.
import { api } from "../api.js";
import { t } from "../i18n.js";
import { button, card, code, fmtCost, fmtMs, fmtNumber, fmtPercent, h, stat } from "../dom.js";

export function totals(rows) {
  const s = { requests: 0, errors: 0, tokens: 0, cost: 0, costKnown: true, latency: 0 };
  for (const r of rows) {
    s.requests += r.requests;
    s.errors += r.errors;
    s.tokens += r.input_tokens + r.output_tokens;
    if (r.cost_usd === null) s.costKnown = false;
    else s.cost += r.cost_usd;
    s.latency += r.avg_latency_ms * r.requests;
  }
  s.successRate = s.requests ? (s.requests - s.errors) / s.requests : null;
  s.avgLatency = s.requests ? s.latency / s.requests : null;
  return s;
}

export function statCards(s) {
  return h("div", { class: "stats", "data-testid": "stat-cards" },
    stat(t("usage.requests"), fmtNumber(s.requests)),
    stat(t("usage.tokens"), fmtNumber(s.tokens)),
    stat(t("usage.cost"), s.costKnown ? fmtCost(s.cost) : `${fmtCost(s.cost)}+`, s.costKnown ? null : t("usage.cost_partial")),
    stat(t("usage.success_rate"), fmtPercent(s.successRate)),
    stat(t("usage.avg_latency"), fmtMs(s.avgLatency)));
}

export async function render(root, { navigate }) {
  const [usage, accounts] = await Promise.all([api.get("/api/usage?since=24h&by=provider"), api.get("/api/accounts")]);
  const origin = location.origin;
  root.append(h("h1", null, t("home.title")));
  if (!accounts.accounts.length) {
    root.append(h("div", { class: "banner" }, h("span", null, t("home.no_providers")), button(t("home.run_wizard"), () => navigate("wizard"), { kind: "primary", testid: "run-wizard" })));
  }
  root.append(
    card(t("home.last_24h"), statCards(totals(usage.rows))),
    card(t("home.endpoints"),
      h("p", null, t("home.endpoints_intro")),
      code(`${origin}/v1`, { label: t("home.openai_base") }),
      code(origin, { label: t("home.anthropic_base") }),
      code(origin, { label: t("home.gemini_base") })),
    card(t("home.next_steps"), h("div", { class: "row wrap" },
      button(t("home.run_wizard"), () => navigate("wizard")),
      button(t("nav.providers"), () => navigate("providers")),
      button(t("nav.keys"), () => navigate("keys")),
      button(t("nav.cli_tools"), () => navigate("cli-tools")),
      button(t("nav.playground"), () => navigate("playground")))),
  );
}

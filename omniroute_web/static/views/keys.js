// API keys: create (shown once, with a copy button), scopes, limits, budgets, revoke; usage per key.
import { api, getOptional, missing } from "../api.js";
import { t } from "../i18n.js";
import { actionButton, badge, button, busy, card, confirmDialog, copyButton, errorText, field, fmtCost, fmtNumber, fmtTime, h, input, modal, notAvailable, replace, select, sessionStore, table, toast } from "../dom.js";

const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
const num = (el) => (el.value === "" ? undefined : Number(el.value));

function scopeFields(cur = {}) {
  const scopes = cur.scopes || {};
  const limits = cur.limits || {};
  const f = {
    models: input({ value: (scopes.models || []).join(", "), placeholder: "openai/*, my-combo", "data-testid": "key-scope-models" }),
    providers: input({ value: (scopes.providers || []).join(", "), placeholder: "openai, anthropic" }),
    rpm: input({ type: "number", min: "0", value: limits.rpm ?? "", class: "narrow", "data-testid": "key-rpm" }),
    rpd: input({ type: "number", min: "0", value: limits.rpd ?? "", class: "narrow" }),
    concurrent: input({ type: "number", min: "0", value: limits.concurrent ?? "", class: "narrow" }),
    budget: input({ type: "number", min: "0", step: "0.01", value: limits.budget_usd_day ?? "", class: "narrow" }),
    expires: input({ type: "date", value: cur.expires_at ? new Date(cur.expires_at * 1000).toISOString().slice(0, 10) : "" }),
  };
  f.el = h("div", { class: "form" },
    h("div", { class: "grid2" }, field(t("keys.scope_models"), f.models, t("keys.scope_models_hint")), field(t("keys.scope_providers"), f.providers)),
    h("div", { class: "grid4" }, field(t("keys.rpm"), f.rpm), field(t("keys.rpd"), f.rpd), field(t("keys.concurrent"), f.concurrent), field(t("keys.budget_day"), f.budget)),
    field(t("keys.expires"), f.expires));
  f.value = () => {
    const out = { scopes: {}, limits: {} };
    if (f.models.value.trim()) out.scopes.models = list(f.models.value);
    if (f.providers.value.trim()) out.scopes.providers = list(f.providers.value);
    for (const [k, el] of [["rpm", f.rpm], ["rpd", f.rpd], ["concurrent", f.concurrent], ["budget_usd_day", f.budget]]) if (num(el) !== undefined) out.limits[k] = num(el);
    out.expires_at = f.expires.value ? Date.parse(`${f.expires.value}T23:59:59Z`) / 1000 : null;
    return out;
  };
  return f;
}

function shownOnce(key) {
  sessionStore("omr.key", key);
  return h("div", { class: "secret-once", "data-testid": "key-once" }, h("p", null, h("strong", null, t("keys.shown_once"))), h("code", { class: "secret", "data-testid": "new-key" }, key), copyButton(key));
}

export async function render(root) {
  const created = h("div");
  const listHost = h("div", { "data-testid": "key-list" });
  const budgetsHost = h("div");
  root.append(h("h1", null, t("nav.keys")), createCard(), created, listHost, budgetsHost);

  function createCard() {
    const name = input({ placeholder: "laptop", "data-testid": "key-name" });
    const extra = scopeFields();
    const go = button(t("keys.create"), null, { kind: "primary", type: "submit", testid: "key-create" });
    const form = h("form", { class: "form" }, field(t("keys.name"), name), h("details", null, h("summary", { "data-testid": "key-more" }, t("keys.scopes_limits")), extra.el), h("div", { class: "row" }, go));
    form.addEventListener("submit", busy(go, async () => {
      const r = await api.post("/api/keys", { name: name.value.trim() || "default", ...extra.value() });
      replace(created, card(t("keys.created", { name: name.value || "default" }), shownOnce(r.key)));
      name.value = "";
      await drawList();
    }));
    return card(t("keys.new"), form);
  }

  async function drawList() {
    const [keys, usage] = await Promise.all([api.get("/api/keys"), api.get("/api/usage?since=30d&by=key")]);
    const byKey = Object.fromEntries(usage.rows.map((r) => [String(r.key), r]));
    replace(listHost, card(t("keys.list"), table([
      { label: t("keys.name"), cell: (k) => h("strong", null, k.name) },
      { label: t("keys.prefix"), cell: (k) => h("code", null, k.prefix) },
      { label: t("keys.status"), cell: (k) => (k.revoked ? badge(t("keys.revoked"), "error") : k.expires_at && k.expires_at < Date.now() / 1000 ? badge(t("keys.expired"), "warn") : badge(t("keys.active"), "ok")) },
      { label: t("keys.scopes_limits"), cell: (k) => h("span", { "data-testid": `key-summary-${k.id}` }, summary(k)) },
      { label: t("keys.requests_30d"), num: true, cell: (k) => fmtNumber((byKey[String(k.id)] || {}).requests || 0) },
      { label: t("usage.tokens"), num: true, cell: (k) => { const u = byKey[String(k.id)]; return u ? fmtNumber(u.input_tokens + u.output_tokens) : "0"; } },
      { label: t("usage.cost"), num: true, cell: (k) => { const u = byKey[String(k.id)]; return u ? fmtCost(u.cost_usd) : fmtCost(0); } },
      { label: t("keys.last_used"), cell: (k) => fmtTime(k.last_used_at) },
      { label: "", cell: (k) => (k.revoked ? null : h("div", { class: "row nowrap" },
        button(t("common.edit"), () => editKey(k), { kind: "small" }),
        actionButton(t("keys.rotate"), async () => {
          if (!(await confirmDialog(t("keys.rotate_confirm", { name: k.name })))) return;
          try {
            const r = await api.post(`/api/keys/${k.id}/rotate`);
            replace(created, card(t("keys.rotated", { name: k.name }), shownOnce(r.key)));
          } catch (err) {
            toast(missing(err) ? t("common.not_available") : errorText(err), "error");
          }
          await drawList();
        }, { kind: "small" }),
        actionButton(t("keys.revoke"), async () => {
          if (!(await confirmDialog(t("keys.revoke_confirm", { name: k.name }), { danger: true }))) return;
          await api.del(`/api/keys/${k.id}`);
          await drawList();
        }, { kind: "small danger", testid: "key-revoke" }))) },
    ], keys.keys, { rowClass: (k) => (k.revoked ? "dim" : "") })));
    return keys.keys;
  }

  function summary(k) {
    const parts = [];
    const s = k.scopes || {};
    const l = k.limits || {};
    if ((s.models || []).length) parts.push(`${t("keys.models")}: ${s.models.join(", ")}`);
    if ((s.providers || []).length) parts.push(`${t("keys.providers")}: ${s.providers.join(", ")}`);
    for (const [name, v] of Object.entries(l)) parts.push(`${name}: ${v}`);
    if (k.expires_at) parts.push(`${t("keys.expires")}: ${fmtTime(k.expires_at)}`);
    return parts.length ? h("span", { class: "muted small" }, parts.join(" · ")) : h("span", { class: "muted" }, t("keys.unrestricted"));
  }

  async function editKey(k) {
    const f = scopeFields(k);
    const ok = await modal(t("keys.edit", { name: k.name }), (close) => h("div", null, f.el, h("div", { class: "row end" }, button(t("common.cancel"), () => close(false)), button(t("common.save"), () => close(true), { kind: "primary" }))));
    if (!ok) return;
    try {
      await api.patch(`/api/keys/${k.id}`, f.value());
      toast(t("common.saved"), "ok");
      await drawList();
    } catch (err) {
      toast(missing(err) ? `${t("common.not_available")} ${t("keys.edit_not_available")}` : errorText(err), "error");
    }
  }

  async function drawBudgets() {
    const data = await getOptional("/api/budgets");
    if (data === null) {
      replace(budgetsHost, card(t("keys.budgets"), notAvailable(t("keys.budgets_not_available"))));
      return;
    }
    const scope = select([["key", t("keys.budget_key")], ["provider", t("keys.budget_provider")]], "key");
    const id = input({ placeholder: "1 / openai", class: "narrow" });
    const period = select([["day", t("keys.day")], ["week", t("keys.week")], ["month", t("keys.month")]], "day");
    const limit = input({ type: "number", min: "0", step: "0.01", class: "narrow" });
    const save = button(t("common.save"), null, { kind: "primary", type: "submit" });
    const form = h("form", { class: "inline-form" }, field(t("keys.budget_scope"), scope), field(t("keys.budget_id"), id), field(t("keys.budget_period"), period), field(t("keys.budget_limit"), limit), save);
    form.addEventListener("submit", busy(save, async () => {
      await api.put("/api/budgets", { scope: scope.value, id: id.value.trim(), period: period.value, limit_usd: limit.value === "" ? null : Number(limit.value) });
      await drawBudgets();
    }));
    replace(budgetsHost, card(t("keys.budgets"), table([
      { label: t("keys.budget_scope"), cell: (b) => b.scope },
      { label: t("keys.budget_id"), cell: (b) => String(b.id) },
      { label: t("keys.budget_period"), cell: (b) => b.period },
      { label: t("keys.budget_spent"), num: true, cell: (b) => `${fmtCost(b.spent_usd)} / ${fmtCost(b.limit_usd)}` },
      { label: t("quotas.resets"), cell: (b) => fmtTime(b.resets_at) },
      { label: "", cell: (b) => actionButton(t("common.delete"), async () => {
        await api.put("/api/budgets", { scope: b.scope, id: b.id, period: b.period, limit_usd: null });
        await drawBudgets();
      }, { kind: "small danger" }) },
    ], data.budgets, { empty: t("keys.no_budgets") }), form));
  }

  await Promise.all([drawList(), drawBudgets()]);
}

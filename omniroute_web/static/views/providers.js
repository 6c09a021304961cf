// Providers: the catalog with search; per provider its accounts (add, test, enable, priority, base URL,
// limits, key), a provider-wide toggle, its models and custom model ids; custom OpenAI/Anthropic nodes.
import { api } from "../api.js";
import { t } from "../i18n.js";
import { actionButton, badge, button, busy, card, checkbox, confirmDialog, errorText, field, fmtCost, fmtNumber, h, input, modal, replace, select, table, toast } from "../dom.js";

const FORMATS = ["openai-chat", "openai-responses", "anthropic", "gemini"];
const AUTHS = ["bearer", "x-api-key", "x-goog-api-key", "none"];
const WINDOWS = ["5h", "daily", "weekly", "monthly"];

export async function render(root) {
  let providers = [];
  let accounts = [];
  let custom = { models: {}, custom_providers: [] };
  let open = null;
  const list = h("div", { class: "provider-list", "data-testid": "provider-list" });
  const search = input({ type: "search", placeholder: t("providers.search"), "data-testid": "provider-search" });
  const onlyConfigured = checkbox(t("providers.only_configured"), false);

  async function load() {
    [providers, accounts, custom] = await Promise.all([
      api.get("/api/providers").then((r) => r.providers),
      api.get("/api/accounts").then((r) => r.accounts),
      api.get("/api/dashboard/custom-models"),
    ]);
  }

  function draw() {
    const q = search.value.trim().toLowerCase();
    const rows = providers.filter((p) => (!q || p.id.includes(q) || p.name.toLowerCase().includes(q) || (p.alias || "").includes(q)) && (!onlyConfigured.box.checked || p.accounts));
    replace(list, rows.length ? rows.map(providerRow) : h("p", { class: "empty" }, t("common.empty")));
  }

  async function refresh() {
    await load();
    draw();
  }

  function providerRow(p) {
    const mine = accounts.filter((a) => a.provider === p.id);
    const isCustom = custom.custom_providers.includes(p.id);
    const head = h("button", { type: "button", class: "provider-head", "aria-expanded": open === p.id ? "true" : "false", "data-provider": p.id, onclick: () => {
      open = open === p.id ? null : p.id;
      draw();
    } },
      h("span", { class: "provider-name" }, p.name),
      h("span", { class: "muted" }, p.id),
      badge(p.format),
      p.local ? badge(t("providers.local_badge")) : null,
      isCustom ? badge(t("providers.custom_badge"), "info") : null,
      mine.length ? badge(t("providers.accounts_n", { n: mine.length }), mine.some((a) => a.enabled) ? "ok" : "") : null);
    return h("div", { class: ["provider", open === p.id && "open"] }, head, open === p.id ? detail(p, mine, isCustom) : null);
  }

  function detail(p, mine, isCustom) {
    const toggle = checkbox(t("providers.provider_enabled"), mine.some((a) => a.enabled), { disabled: !mine.length, "data-testid": "provider-toggle" });
    toggle.box.addEventListener("change", busy(toggle.box, async () => {
      for (const a of mine) await api.patch(`/api/accounts/${a.id}`, { enabled: toggle.box.checked });
      await refresh();
    }));
    return h("div", { class: "provider-detail" },
      h("div", { class: "row between" }, toggle.el, h("span", { class: "muted" }, p.base_url),
        isCustom ? actionButton(t("providers.delete_custom"), async () => {
          if (!(await confirmDialog(t("providers.delete_custom_confirm", { id: p.id }), { danger: true }))) return;
          await api.del(`/api/custom-providers/${encodeURIComponent(p.id)}`);
          open = null;
          await refresh();
        }, { kind: "danger" }) : null),
      h("h3", null, t("providers.accounts")),
      accountsTable(mine),
      addAccountForm(p),
      h("h3", null, t("providers.models")),
      modelsBlock(p));
  }

  function accountsTable(mine) {
    return table([
      { label: t("providers.account_name"), cell: (a) => a.name },
      { label: t("providers.key"), cell: (a) => h("code", null, a.key || "–") },
      { label: t("providers.enabled"), cell: (a) => {
        const c = h("input", { type: "checkbox", checked: a.enabled, "aria-label": t("providers.enabled"), "data-testid": "account-enabled" });
        c.addEventListener("change", busy(c, async () => {
          await api.patch(`/api/accounts/${a.id}`, { enabled: c.checked });
          await refresh();
        }));
        return c;
      } },
      { label: t("providers.priority"), cell: (a) => {
        const n = input({ type: "number", value: String(a.priority), class: "narrow", "aria-label": t("providers.priority") });
        n.addEventListener("change", busy(n, async () => {
          await api.patch(`/api/accounts/${a.id}`, { priority: Number(n.value) });
          toast(t("common.saved"), "ok");
          await refresh();
        }));
        return n;
      } },
      { label: t("providers.base_url"), cell: (a) => {
        const u = input({ value: a.base_url || "", placeholder: t("providers.base_url_default"), "aria-label": t("providers.base_url") });
        u.addEventListener("change", busy(u, async () => {
          await api.patch(`/api/accounts/${a.id}`, { base_url: u.value.trim() || null });
          toast(t("common.saved"), "ok");
        }));
        return u;
      } },
      { label: "", cell: (a) => {
        const out = h("span", { class: "test-result", "data-testid": "account-test-result" });
        return h("div", { class: "row nowrap" },
          actionButton(t("providers.test"), async () => {
            replace(out, t("common.loading"));
            const r = await api.post(`/api/accounts/${a.id}/test`);
            replace(out, r.ok ? badge(t("providers.test_ok", { ms: Math.round(r.latency_ms), model: r.model || "" }), "ok") : badge(`${t("providers.test_failed")} ${r.error || r.status}`, "error"));
          }, { kind: "small", testid: "account-test" }),
          button(t("providers.limits"), () => limitsDialog(a), { kind: "small", testid: "account-limits" }),
          button(t("providers.replace_key"), () => keyDialog(a), { kind: "small" }),
          actionButton(t("common.delete"), async () => {
            if (!(await confirmDialog(t("providers.delete_account_confirm", { name: a.name }), { danger: true }))) return;
            await api.del(`/api/accounts/${a.id}`);
            await refresh();
          }, { kind: "small danger" }),
          out);
      } },
    ], mine, { empty: t("providers.no_accounts") });
  }

  function addAccountForm(p) {
    const name = input({ placeholder: "default", "data-testid": "account-name" });
    const key = input({ type: "password", placeholder: "sk-...", "data-testid": "account-key" });
    const baseUrl = input({ placeholder: p.base_url, "data-testid": "account-base-url" });
    const priority = input({ type: "number", value: "0", class: "narrow" });
    const local = checkbox(t("providers.local"), p.local, { "data-testid": "account-local" });
    const add = button(t("providers.add_account"), null, { kind: "primary", type: "submit", testid: "account-add" });
    const form = h("form", { class: "inline-form" }, field(t("providers.account_name"), name), field(t("providers.key"), key), field(t("providers.base_url"), baseUrl), field(t("providers.priority"), priority), local.el, add);
    form.addEventListener("submit", busy(add, async () => {
      await api.post("/api/accounts", { provider: p.id, name: name.value || undefined, key: key.value, base_url: baseUrl.value.trim() || undefined, priority: Number(priority.value) || 0, local: local.box.checked });
      toast(t("providers.account_added"), "ok");
      await refresh();
    }));
    return form;
  }

  function modelsBlock(p) {
    const ids = custom.models[p.id] || [];
    const newId = input({ placeholder: t("providers.custom_model_placeholder"), "data-testid": "custom-model-id" });
    const save = async (next) => {
      custom = { ...custom, ...(await api.put("/api/dashboard/custom-models", { provider: p.id, models: next })) };
      draw();
    };
    const add = button(t("providers.add_model"), null, { type: "submit" });
    const form = h("form", { class: "row" }, newId, add);
    form.addEventListener("submit", busy(add, () => (newId.value.trim() ? save([...ids, newId.value.trim()]) : null)));
    return h("div", null,
      table([
        { label: t("providers.model"), cell: (m) => h("code", null, m.id) },
        { label: t("providers.context"), num: true, cell: (m) => (m.context_window ? fmtNumber(m.context_window) : "–") },
        { label: t("providers.price_in"), num: true, cell: (m) => (m.price ? fmtCost(m.price.input) : t("common.unknown")) },
        { label: t("providers.price_out"), num: true, cell: (m) => (m.price ? fmtCost(m.price.output) : t("common.unknown")) },
      ], p.models, { empty: t("providers.any_model") }),
      h("div", { class: "chips" }, ids.map((id) => h("span", { class: "chip" }, h("code", null, id), button("×", () => save(ids.filter((x) => x !== id)), { kind: "chip-x", title: t("common.delete") })))),
      form,
      h("p", { class: "hint" }, t("providers.custom_models_hint", { id: p.id })));
  }

  async function keyDialog(a) {
    const key = input({ type: "password" });
    const ok = await modal(t("providers.replace_key"), (close) => h("div", { class: "form" }, field(t("providers.key"), key), h("div", { class: "row end" }, button(t("common.cancel"), () => close(false)), button(t("common.save"), () => close(true), { kind: "primary" }))));
    if (!ok) return;
    try {
      await api.patch(`/api/accounts/${a.id}`, { key: key.value });
      toast(t("common.saved"), "ok");
      await refresh();
    } catch (err) {
      toast(errorText(err), "error");
    }
  }

  async function limitsDialog(a) {
    const cur = a.limits || {};
    const num = (v, id) => input({ type: "number", min: "0", value: v === undefined || v === null ? "" : String(v), class: "narrow", "data-limit": id });
    const rpm = num(cur.rpm, "rpm");
    const conc = num(cur.max_concurrent, "max_concurrent");
    const gap = num(cur.min_gap_ms, "min_gap_ms");
    const weight = num(cur.weight, "weight");
    const quota = cur.quota || {};
    const win = WINDOWS.map((w) => ({ w, tokens: num((quota[w] || {}).tokens, `${w}-tokens`), requests: num((quota[w] || {}).requests, `${w}-requests`) }));
    const ok = await modal(t("providers.limits_title", { name: a.name }), (close) => h("div", { class: "form" },
      h("div", { class: "grid4" }, field(t("providers.rpm"), rpm), field(t("providers.max_concurrent"), conc), field(t("providers.min_gap_ms"), gap), field(t("providers.weight"), weight, t("providers.weight_hint"))),
      h("h3", null, t("providers.quota")),
      table([
        { label: t("quotas.window"), cell: (r) => t(`quotas.w_${r.w}`) },
        { label: t("usage.tokens"), cell: (r) => r.tokens },
        { label: t("usage.requests"), cell: (r) => r.requests },
      ], win),
      h("div", { class: "row end" }, button(t("common.cancel"), () => close(false)), button(t("common.save"), () => close(true), { kind: "primary", testid: "limits-save" }))));
    if (!ok) return;
    const val = (el) => (el.value === "" ? undefined : Number(el.value));
    const limits = { rpm: val(rpm), max_concurrent: val(conc), min_gap_ms: val(gap), weight: val(weight), quota: {} };
    for (const r of win) if (r.tokens.value || r.requests.value) limits.quota[r.w] = { tokens: val(r.tokens), requests: val(r.requests) };
    try {
      await api.patch(`/api/accounts/${a.id}`, { limits });
      toast(t("common.saved"), "ok");
      await refresh();
    } catch (err) {
      toast(`${t("providers.limits_unsupported")} (${errorText(err)})`, "error");
    }
  }

  function customForm() {
    const id = input({ placeholder: "my-llm", "data-testid": "custom-id" });
    const name = input({ placeholder: "My LLM" });
    const fmt = select(FORMATS, "openai-chat", { "data-testid": "custom-format" });
    const url = input({ placeholder: "https://llm.example.com/v1", "data-testid": "custom-base-url" });
    const auth = select(AUTHS, "bearer");
    const local = checkbox(t("providers.local"), false, { "data-testid": "custom-local" });
    const add = button(t("providers.add_custom"), null, { kind: "primary", type: "submit", testid: "custom-add" });
    const form = h("form", { class: "inline-form" }, field(t("providers.custom_id"), id), field(t("providers.custom_name"), name), field(t("providers.format"), fmt), field(t("providers.base_url"), url), field(t("providers.auth"), auth), local.el, add);
    form.addEventListener("submit", busy(add, async () => {
      const created = await api.post("/api/custom-providers", { id: id.value.trim(), name: name.value.trim() || undefined, format: fmt.value, base_url: url.value.trim(), auth: auth.value, local: local.box.checked });
      open = created.id;
      toast(t("providers.custom_added"), "ok");
      await refresh();
    }));
    return card(t("providers.custom_title"), h("p", { class: "hint" }, t("providers.custom_intro")), form);
  }

  search.addEventListener("input", draw);
  onlyConfigured.box.addEventListener("change", draw);
  await load();
  root.append(h("h1", null, t("nav.providers")), h("div", { class: "row toolbar" }, search, onlyConfigured.el), list, customForm());
  draw();
}

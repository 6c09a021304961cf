// First run, after the password: connect a provider (key + test), create a client key, pick the default
// model or combo, copy the set-up for your tool.
import { api, getOptional } from "../api.js";
import { t } from "../i18n.js";
import { button, busy, checkbox, code, copyButton, errorText, field, h, input, replace, select, sessionStore, toast } from "../dom.js";
import { datalist, modelChoices, preferredModel, rememberModel } from "../models.js";

const STEPS = ["wizard.step_provider", "wizard.step_key", "wizard.step_model", "wizard.step_tool"];

export async function render(root, { navigate }) {
  const providers = (await api.get("/api/providers")).providers;
  let step = 0;
  const body = h("div", { class: "wizard-body" });
  const stepper = h("ol", { class: "stepper" });
  root.append(h("h1", null, t("wizard.title")), h("p", { class: "lead" }, t("wizard.intro")), stepper, body);

  function show(n) {
    step = n;
    replace(stepper, STEPS.map((k, i) => h("li", { class: [i === step && "active", i < step && "done"] }, t(k))));
    const views = [provider, key, model, tool];
    replace(body, views[step]());
    body.dataset.step = String(step + 1);
  }

  function nav(canNext = true) {
    const next = button(step === STEPS.length - 1 ? t("wizard.finish") : t("wizard.next"), () => (step === STEPS.length - 1 ? navigate("home") : show(step + 1)), { kind: "primary", testid: "wizard-next" });
    next.disabled = !canNext;
    return { next, el: h("div", { class: "row end" }, step ? button(t("wizard.back"), () => show(step - 1)) : null, button(t("wizard.skip"), () => (step === STEPS.length - 1 ? navigate("home") : show(step + 1)), { kind: "ghost" }), next) };
  }

  function provider() {
    const sorted = [...providers].sort((a, b) => a.name.localeCompare(b.name));
    const search = input({ placeholder: t("providers.search"), "data-testid": "wizard-provider-search" });
    const pick = select(sorted.map((p) => [p.id, `${p.name} (${p.id})`]), "openai", { "data-testid": "wizard-provider" });
    search.addEventListener("input", () => {
      const q = search.value.toLowerCase();
      const match = sorted.find((p) => p.id.includes(q) || p.name.toLowerCase().includes(q));
      if (match) pick.value = match.id;
    });
    const keyIn = input({ type: "password", autocomplete: "off", "data-testid": "wizard-provider-key", placeholder: "sk-..." });
    const baseUrl = input({ placeholder: t("providers.base_url_default"), "data-testid": "wizard-base-url" });
    const local = checkbox(t("providers.local"), false, { "data-testid": "wizard-local" });
    const result = h("div", { class: "result", "data-testid": "wizard-test-result" });
    const { next, el } = nav(false);
    const go = button(t("wizard.connect_test"), null, { kind: "primary", testid: "wizard-connect" });
    go.addEventListener("click", busy(go, async () => {
      replace(result);
      let created;
      try {
        created = await api.post("/api/accounts", { provider: pick.value, name: "default", key: keyIn.value, base_url: baseUrl.value || undefined, local: local.box.checked });
      } catch (err) {
        replace(result, h("div", { class: "error-box" }, errorText(err)));
        return;
      }
      const test = await api.post(`/api/accounts/${created.id}/test`);
      if (test.ok) {
        replace(result, h("div", { class: "ok-box" }, t("providers.test_ok", { ms: Math.round(test.latency_ms), model: test.model || "" }), test.reply ? h("div", { class: "hint" }, `“${test.reply}”`) : null));
      } else {
        replace(result, h("div", { class: "error-box" }, t("providers.test_failed"), " ", test.error || String(test.status)));
      }
      next.disabled = false;
    }));
    return h("div", { class: "card" }, h("h2", null, t("wizard.step_provider")), h("p", null, t("wizard.provider_intro")),
      field(t("providers.search"), search), field(t("providers.provider"), pick), field(t("providers.key"), keyIn),
      h("details", null, h("summary", null, t("common.advanced")), field(t("providers.base_url"), baseUrl), local.el),
      h("div", { class: "row" }, go), result, el);
  }

  function key() {
    const name = input({ value: "my computer", "data-testid": "wizard-key-name" });
    const out = h("div", { "data-testid": "wizard-key-result" });
    const { next, el } = nav(Boolean(sessionStore("omr.key")));
    const go = button(t("keys.create"), null, { kind: "primary", testid: "wizard-create-key" });
    go.addEventListener("click", busy(go, async () => {
      const created = await api.post("/api/keys", { name: name.value || "default" });
      sessionStore("omr.key", created.key);
      replace(out, h("div", { class: "secret-once" }, h("p", null, t("keys.shown_once")), h("code", { class: "secret", "data-testid": "new-key" }, created.key), copyButton(created.key)));
      next.disabled = false;
    }));
    return h("div", { class: "card" }, h("h2", null, t("wizard.step_key")), h("p", null, t("wizard.key_intro")), field(t("keys.name"), name), h("div", { class: "row" }, go), out, el);
  }

  function model() {
    const holder = h("div", null, t("common.loading"));
    const { el } = nav(true);
    modelChoices().then((choices) => {
      const modelIn = input({ list: "wizard-models", value: preferredModel(choices), "data-testid": "wizard-model" });
      const save = button(t("common.save"), null, { kind: "primary", testid: "wizard-save-model" });
      save.addEventListener("click", busy(save, async () => {
        rememberModel(modelIn.value);
        try {
          await api.put("/api/dashboard/settings", { values: { default_model: modelIn.value } });
          toast(t("wizard.model_saved"), "ok");
        } catch {
          toast(t("wizard.model_remembered"), "ok"); // no default_model setting in this gateway yet
        }
      }));
      replace(holder, datalist("wizard-models", choices), field(t("wizard.model_label"), modelIn, t("wizard.model_hint")), h("div", { class: "row" }, save));
    }, (err) => replace(holder, h("div", { class: "error-box" }, errorText(err))));
    return h("div", { class: "card" }, h("h2", null, t("wizard.step_model")), h("p", null, t("wizard.model_intro")), holder, el);
  }

  function tool() {
    const holder = h("div", null, t("common.loading"));
    const { el } = nav(true);
    const modelName = preferredModel();
    getOptional(`/api/cli-tools?base_url=${encodeURIComponent(location.origin)}&model=${encodeURIComponent(modelName || "")}`).then((data) => {
      const tools = (data && data.tools) || [];
      const pick = select(tools.map((x) => [x.id, x.name]), "claude-code", { "data-testid": "wizard-tool" });
      const out = h("div");
      const key = sessionStore("omr.key");
      const fill = (text) => (key ? text.split(data.tools[0].key_placeholder).join(key) : text);
      const draw = () => {
        const x = tools.find((y) => y.id === pick.value);
        if (!x) return;
        replace(out,
          x.env.length ? code(x.env.map((e) => `export ${e.name}=${JSON.stringify(fill(e.value))}`).join("\n"), { label: t("cli.env") }) : null,
          x.files.map((f) => code(fill(f.content), { label: f.path })),
          x.settings.length ? code(x.settings.map((s) => `${t(s.label)}: ${fill(s.value)}`).join("\n"), { label: t("cli.settings") }) : null);
      };
      pick.addEventListener("change", draw);
      replace(holder, field(t("wizard.tool_label"), pick), out, h("p", { class: "hint" }, t("wizard.tool_hint")));
      draw();
    }, (err) => replace(holder, h("div", { class: "error-box" }, errorText(err))));
    return h("div", { class: "card" }, h("h2", null, t("wizard.step_tool")), holder, el);
  }

  show(0);
}

// CLI tools: the exact settings or files for each coding agent, filled with this gateway's URL, your key
// and your model, with copy buttons and — where the config is a file on this machine — "apply".
import { api, qs } from "../api.js";
import { t } from "../i18n.js";
import { actionButton, badge, button, card, code, confirmDialog, copyButton, field, h, input, replace, sessionStore, table, toast } from "../dom.js";
import { datalist, modelChoices, preferredModel, rememberModel } from "../models.js";

export async function render(root) {
  // The tool list needs a model; the remembered one lets both requests start at once.
  const remembered = preferredModel();
  const first = remembered ? api.get(`/api/cli-tools${qs({ base_url: location.origin, model: remembered })}`) : null;
  const choices = await modelChoices().catch(() => []);
  const baseUrl = input({ value: location.origin, "data-testid": "cli-base-url" });
  const key = input({ type: "password", value: sessionStore("omr.key"), placeholder: "omr_...", "data-testid": "cli-key" });
  const model = input({ value: preferredModel(choices), list: "cli-models", "data-testid": "cli-model" });
  const reveal = button(t("cli.show_key"), () => {
    key.type = key.type === "password" ? "text" : "password";
  }, { kind: "small" });
  const list = h("div", { "data-testid": "cli-tools" });
  root.append(h("h1", null, t("nav.cli_tools")), h("p", { class: "lead" }, t("cli.intro")), datalist("cli-models", choices),
    card(null, h("div", { class: "grid3" }, field(t("cli.base_url"), baseUrl), field(t("cli.key"), h("div", { class: "row nowrap" }, key, reveal), t("cli.key_hint")), field(t("cli.model"), model))),
    list);

  let data = null;
  const fill = (text) => (key.value ? text.split(data.tools[0].key_placeholder).join(key.value) : text.split(data.tools[0].key_placeholder).join("<your-omniroute-key>"));

  function toolCard(x) {
    const parts = [];
    if (x.env.length) parts.push(code(x.env.map((e) => `export ${e.name}=${JSON.stringify(fill(e.value))}`).join("\n"), { label: t("cli.env") }));
    for (const f of x.files) parts.push(code(fill(f.content), { label: `${f.path}${f.merge ? ` — ${t("cli.merged")}` : ""}` }));
    if (x.settings.length) {
      parts.push(h("p", null, t(`cli.steps_${x.id}`, null, t("cli.steps_settings"))));
      parts.push(table([
        { label: t("cli.setting"), cell: (s) => t(s.label) },
        { label: t("cli.value"), cell: (s) => h("code", null, s.label === "cli.field.api_key" || s.label === "cli.field.openai_key" ? (key.value ? "••••••••" : "<your-omniroute-key>") : fill(s.value)) },
        { label: "", cell: (s) => copyButton(() => fill(s.value)) },
      ], x.settings));
    }
    if (x.run) parts.push(code(x.run, { label: t("cli.try_it") }));
    const note = t(`cli.note_${x.id}`, null, "");
    if (note) parts.push(h("p", { class: "hint" }, note));
    const head = h("div", { class: "row between" }, h("h2", { class: "card-title" }, x.name), x.installed ? badge(t("cli.installed"), "ok") : null,
      x.applicable ? actionButton(t("cli.apply"), async () => {
        if (!key.value) {
          toast(t("cli.need_key"), "error");
          return;
        }
        if (!(await confirmDialog(t("cli.apply_confirm", { files: x.files.map((f) => f.path).join(", ") })))) return;
        const r = await api.post(`/api/cli-tools/${x.id}/apply`, { base_url: baseUrl.value, model: model.value, key: key.value });
        toast(t("cli.applied", { files: r.written.join(", ") }) + (r.backups.length ? ` ${t("cli.backups", { files: r.backups.join(", ") })}` : ""), "ok");
      }, { kind: "primary", testid: `apply-${x.id}` }) : null);
    return h("section", { class: "card", "data-tool": x.id }, head, parts);
  }

  async function load(prefetched) {
    rememberModel(model.value.trim());
    data = (await prefetched) || (await api.get(`/api/cli-tools${qs({ base_url: baseUrl.value.trim(), model: model.value.trim() })}`));
    replace(list, data.tools.map(toolCard));
  }

  let debounce = null;
  for (const el of [baseUrl, model]) el.addEventListener("change", () => load(null).catch((err) => toast(err.message, "error")));
  key.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      sessionStore("omr.key", key.value);
      replace(list, data.tools.map(toolCard));
    }, 200);
  });
  await load(first);
}

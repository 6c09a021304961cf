// Settings: resilience defaults, system prompt and thinking budget, IP filters, logging and retention,
// the dashboard password, and backup / export / import of the data dir.
import { api, request, setCsrf } from "../api.js";
import { has, t } from "../i18n.js";
import { actionButton, badge, button, busy, card, checkbox, confirmDialog, errorText, field, fmtBytes, fmtTime, h, input, replace, select, table, toast } from "../dom.js";

const GROUPS = ["routing", "resilience", "ai", "security", "logging", "server"];
const EXPLICIT = { default_model: "routing", account_strategy: "routing", system_prompt: "ai", system_prompt_mode: "ai", thinking_mode: "ai", thinking_budget_tokens: "ai", rate_limit_per_ip_rpm: "security", max_connections_per_ip: "security", quota_reset_hour: "resilience", request_deadline_s: "resilience", retries_per_account: "resilience" };

export function groupOf(name) {
  if (EXPLICIT[name]) return EXPLICIT[name];
  if (name.startsWith("ip_") || name.startsWith("injection")) return "security";
  if (name.startsWith("log")) return "logging";
  if (/^(breaker|upstream|wait|rate_limit_wait|cooldown)/.test(name)) return "resilience";
  return "server";
}

function control(s) {
  if (s.type === "bool") {
    const c = checkbox(t("common.on"), Boolean(s.value), { "data-setting": s.name });
    return { el: c.el, get: () => c.box.checked };
  }
  if (s.choices.length) {
    const el = select(s.choices, String(s.value), { "data-setting": s.name });
    return { el, get: () => el.value };
  }
  if (s.name === "system_prompt" || s.name === "injection_patterns") {
    const el = h("textarea", { rows: 4, "data-setting": s.name }, String(s.value ?? ""));
    return { el, get: () => el.value };
  }
  const numeric = s.type === "int" || s.type === "float";
  const el = input({ type: numeric ? "number" : "text", step: s.type === "float" ? "any" : "1", value: String(s.value ?? ""), "data-setting": s.name });
  return { el, get: () => (numeric ? Number(el.value) : el.value) };
}

export async function render(root) {
  root.append(h("h1", null, t("nav.settings")));
  const holder = h("div");
  root.append(holder, passwordCard(), backupCard(), exportCard());

  async function drawSettings(list) {
    const byGroup = Object.fromEntries(GROUPS.map((g) => [g, []]));
    for (const s of list) byGroup[groupOf(s.name)].push(s);
    replace(holder, GROUPS.filter((g) => byGroup[g].length).map((g) => {
      const controls = byGroup[g].map((s) => ({ s, c: control(s) }));
      const save = button(t("common.save"), null, { kind: "primary", type: "submit", testid: `save-${g}` });
      const form = h("form", { class: "settings-form" }, controls.map(({ s, c }) => h("div", { class: "setting" },
        h("div", { class: "setting-head" }, h("code", null, s.name), s.saved ? badge(t("settings.saved_here"), "info") : null, s.applied ? null : badge(t("settings.not_applied"), "warn"),
          s.saved ? button(t("settings.reset"), async () => drawSettings((await api.put("/api/dashboard/settings", { reset: [s.name] })).settings), { kind: "small ghost" }) : null),
        h("div", { class: "hint" }, has(`setting.${s.name}`) ? t(`setting.${s.name}`) : s.doc),
        c.el)), h("div", { class: "row end" }, save));
      form.addEventListener("submit", busy(save, async () => {
        const values = {};
        for (const { s, c } of controls) {
          const v = c.get();
          if (String(v) !== String(s.value ?? "")) values[s.name] = v;
        }
        if (!Object.keys(values).length) {
          toast(t("settings.nothing_changed"));
          return;
        }
        const r = await api.put("/api/dashboard/settings", { values });
        toast(t("settings.saved_restart"), "ok");
        await drawSettings(r.settings);
      }));
      return card(t(`settings.group_${g}`), form);
    }));
  }

  function passwordCard() {
    const current = input({ type: "password", autocomplete: "current-password" });
    const next = input({ type: "password", autocomplete: "new-password" });
    const again = input({ type: "password", autocomplete: "new-password" });
    const save = button(t("settings.change_password"), null, { kind: "primary", type: "submit" });
    const form = h("form", { class: "form narrow-form" }, field(t("settings.current_password"), current), field(t("settings.new_password"), next, t("setup.password_hint")), field(t("setup.confirm"), again), save);
    form.addEventListener("submit", busy(save, async () => {
      if (next.value !== again.value) {
        toast(t("setup.mismatch"), "error");
        return;
      }
      const r = await api.post("/api/session/password", { current: current.value, new: next.value });
      setCsrf(r.csrf);
      current.value = next.value = again.value = "";
      toast(t("settings.password_changed"), "ok");
    }));
    return card(t("settings.password"), h("p", { class: "hint" }, t("settings.password_intro")), form);
  }

  function backupCard() {
    const list = h("div");
    const draw = async () => {
      const data = await api.get("/api/backups");
      replace(list, table([
        { label: t("settings.backup_name"), cell: (b) => h("a", { href: `/api/backups/${encodeURIComponent(b.name)}`, download: b.name }, b.name) },
        { label: t("settings.backup_size"), num: true, cell: (b) => fmtBytes(b.bytes) },
        { label: t("logs.time"), cell: (b) => fmtTime(b.created_at) },
        { label: "", cell: (b) => h("div", { class: "row nowrap" },
          actionButton(t("settings.restore"), async () => {
            if (!(await confirmDialog(t("settings.restore_confirm", { name: b.name }), { danger: true }))) return;
            await api.post(`/api/backups/${encodeURIComponent(b.name)}/restore`);
            await draw();
          }, { kind: "small", testid: "backup-restore" }),
          actionButton(t("common.delete"), async () => {
            if (!(await confirmDialog(t("settings.backup_delete_confirm", { name: b.name }), { danger: true }))) return;
            await api.del(`/api/backups/${encodeURIComponent(b.name)}`);
            await draw();
          }, { kind: "small danger" })) },
      ], data.backups, { empty: t("settings.no_backups") }),
      data.restore_pending ? h("div", { class: "warn-box", "data-testid": "restore-pending" }, t("settings.restore_pending"), " ",
        actionButton(t("settings.restore_cancel"), async () => { await api.del("/api/restore"); await draw(); }, { kind: "small" })) : null,
      data.restored ? h("p", { class: "hint" }, t("settings.restored", { name: data.restored })) : null,
      h("p", { class: "hint" }, t("settings.backup_dir", { dir: data.directory })));
    };
    const create = actionButton(t("settings.backup_now"), async () => {
      await api.post("/api/backups");
      toast(t("settings.backup_done"), "ok");
      await draw();
    }, { kind: "primary", testid: "backup-now" });
    draw().catch((err) => replace(list, h("div", { class: "error-box" }, errorText(err))));
    return card(t("settings.backups"), h("p", { class: "hint" }, t("settings.backup_intro")), h("div", { class: "row" }, create), list);
  }

  function exportCard() {
    const download = async (secrets) => {
      const res = await request("POST", "/api/export", { body: { secrets }, raw: true });
      if (!res.ok) throw new Error(`${res.status}`);
      const blob = await res.blob();
      const name = (res.headers.get("content-disposition") || "").match(/filename="([^"]+)"/);
      const a = h("a", { href: URL.createObjectURL(blob), download: name ? name[1] : "omniroute-export.json" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    };
    const plain = actionButton(t("settings.export"), () => download(false), { testid: "export" });
    const secret = actionButton(t("settings.export_secrets"), async () => {
      if (await confirmDialog(t("settings.export_secrets_warning"), { danger: true, ok: t("settings.export_secrets_ok") })) await download(true);
    }, { kind: "danger" });
    const file = h("input", { type: "file", accept: "application/json,.json", "data-testid": "import-file" });
    const result = h("div");
    const importBtn = actionButton(t("settings.import"), async () => {
      if (!file.files.length) {
        toast(t("settings.import_pick"), "error");
        return;
      }
      const text = await file.files[0].text();
      const r = await api.post("/api/import", JSON.parse(text));
      replace(result, h("div", { class: "ok-box" }, t("settings.import_done", { providers: r.added.custom_providers, accounts: r.added.accounts, keys: r.added.client_keys, rows: r.added.rows }),
        Object.values(r.skipped).some((x) => x.length) ? h("div", { class: "hint" }, `${t("settings.import_skipped")}: ${Object.entries(r.skipped).filter(([, v]) => v.length).map(([k, v]) => `${k}: ${v.join(", ")}`).join("; ")}`) : null));
    });
    return card(t("settings.export_import"), h("p", { class: "hint" }, t("settings.export_intro")), h("div", { class: "row" }, plain, secret), h("div", { class: "row" }, file, importBtn), result);
  }

  await drawSettings((await api.get("/api/dashboard/settings")).settings);
}

// Sign in with the dashboard password (there is no default one: the setup link sets it).
import { api } from "../api.js";
import { t } from "../i18n.js";
import { button, busy, errorText, field, h, input } from "../dom.js";

export async function render(root, { info, onSignedIn }) {
  const card = h("div", { class: "auth-card" }, h("h1", null, "OmniRoute"));
  root.append(card);
  if (info && info.needs_setup) {
    card.append(h("p", null, t("login.needs_setup")), h("pre", { class: "code" }, "omniroute reset-password"));
    return;
  }
  const pw = input({ type: "password", autocomplete: "current-password", "data-testid": "login-password" });
  const error = h("div", { class: "form-error", role: "alert" });
  const submit = button(t("login.submit"), null, { kind: "primary", type: "submit", testid: "login-submit" });
  const form = h("form", { class: "form" }, field(t("login.password"), pw), error, submit, h("p", { class: "hint" }, t("login.forgot"), " ", h("code", null, "omniroute reset-password")));
  form.addEventListener("submit", busy(submit, async () => {
    error.textContent = "";
    try {
      await onSignedIn(await api.post("/api/session/login", { password: pw.value }));
    } catch (err) {
      error.textContent = errorText(err);
      pw.select();
    }
  }));
  card.append(form);
  pw.focus();
}

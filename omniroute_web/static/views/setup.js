// The one-time setup link (/setup#<token>): choose the dashboard password, then the first-run wizard.
import { api } from "../api.js";
import { t } from "../i18n.js";
import { button, busy, errorText, field, h, input } from "../dom.js";

export async function render(root, { onSignedIn }) {
  const token = location.hash.replace(/^#/, "");
  const card = h("div", { class: "auth-card" }, h("h1", null, t("setup.title")));
  root.append(card);
  if (!token) {
    card.append(h("p", null, t("setup.no_token")), h("pre", { class: "code" }, "omniroute reset-password"));
    return;
  }
  const pw = input({ type: "password", autocomplete: "new-password", "data-testid": "setup-password", minlength: 8 });
  const again = input({ type: "password", autocomplete: "new-password", "data-testid": "setup-confirm" });
  const error = h("div", { class: "form-error", role: "alert" });
  const submit = button(t("setup.submit"), null, { kind: "primary", type: "submit", testid: "setup-submit" });
  const form = h("form", { class: "form" }, h("p", null, t("setup.intro")), field(t("setup.password"), pw, t("setup.password_hint")), field(t("setup.confirm"), again), error, submit);
  form.addEventListener("submit", busy(submit, async () => {
    error.textContent = "";
    if (pw.value.length < 8) {
      error.textContent = t("setup.too_short");
      return;
    }
    if (pw.value !== again.value) {
      error.textContent = t("setup.mismatch");
      return;
    }
    try {
      const result = await api.post("/api/session/setup", { token, password: pw.value });
      await onSignedIn(result);
    } catch (err) {
      error.textContent = errorText(err);
    }
  }));
  card.append(form);
  pw.focus();
}

// Quotas: per account, used / limit bars for each window (5 h, daily, weekly, monthly) with a live
// countdown to the reset.
import { getOptional } from "../api.js";
import { t } from "../i18n.js";
import { badge, card, fmtDuration, fmtNumber, h, meter, notAvailable, replace } from "../dom.js";

const REFRESH_S = 30;

export async function render(root) {
  root.append(h("h1", null, t("nav.quotas")), h("p", { class: "lead" }, t("quotas.intro")));
  const body = h("div", { class: "quota-grid" });
  root.append(body);
  const countdowns = [];

  function countdown(until) {
    const el = h("span", { class: "countdown", "data-until": String(until) });
    countdowns.push(el);
    return el;
  }

  function tick() {
    const now = Date.now() / 1000;
    for (const el of countdowns) {
      const left = Number(el.dataset.until) - now;
      el.textContent = left > 0 ? t("quotas.resets_in", { time: fmtDuration(left) }) : t("quotas.reset_now");
    }
  }

  async function load() {
    const data = await getOptional("/api/quotas");
    countdowns.length = 0;
    if (data === null) {
      replace(body, notAvailable(t("quotas.not_available")));
      return false;
    }
    const accounts = data.accounts || [];
    replace(body, accounts.length ? accounts.map((a) => card(`${a.provider} · ${a.name}`,
      a.exhausted_until && a.exhausted_until > Date.now() / 1000 ? h("div", { class: "row" }, badge(t("quotas.exhausted"), "error"), countdown(a.exhausted_until)) : null,
      (a.windows || []).length ? a.windows.map((w) => h("div", { class: "quota-window" },
        h("div", { class: "row between" }, h("strong", null, t(`quotas.w_${w.window}`, null, w.window)), countdown(w.resets_at)),
        w.limit_tokens ? meter(w.used_tokens, w.limit_tokens, t("usage.tokens")) : h("div", { class: "muted small" }, `${t("usage.tokens")}: ${fmtNumber(w.used_tokens)}`),
        w.limit_requests ? meter(w.used_requests, w.limit_requests, t("usage.requests")) : h("div", { class: "muted small" }, `${t("usage.requests")}: ${fmtNumber(w.used_requests)}`)))
        : h("p", { class: "muted" }, t("quotas.no_limits")))) : h("p", { class: "empty" }, t("quotas.none")));
    tick();
    return true;
  }

  const available = await load();
  if (!available) return undefined;
  const ticker = setInterval(tick, 1000);
  const refresher = setInterval(() => load().catch(() => {}), REFRESH_S * 1000);
  return () => {
    clearInterval(ticker);
    clearInterval(refresher);
  };
}

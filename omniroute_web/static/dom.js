// DOM building from elements and text nodes only: every text goes in as a text node, so nothing from the gateway (model
// names, error messages, log lines) can ever become markup. Small shared widgets live here too.
import { t, language } from "./i18n.js";
import { missing } from "./api.js";

/** h("div", {class: "x", onclick: fn, dataset: {a: 1}}, child, [children], "text") */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = Array.isArray(v) ? v.filter(Boolean).join(" ") : v;
      else if (k === "text") el.textContent = String(v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "value" || k === "checked" || k === "disabled" || k === "selected" || k === "indeterminate") el[k] = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// ---------------------------------------------------------------------------------------------------------
// formatting
// ---------------------------------------------------------------------------------------------------------

export function fmtNumber(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return new Intl.NumberFormat(language(), { maximumFractionDigits: digits }).format(n);
}

export function fmtCost(usd) {
  if (usd === null || usd === undefined) return t("common.unknown");
  if (usd > 0 && usd < 0.0001) return `< ${fmtCost(0.0001)}`; // tiny, but not free
  const digits = usd !== 0 && Math.abs(usd) < 0.01 ? 4 : 2;
  return new Intl.NumberFormat(language(), { style: "currency", currency: "USD", maximumFractionDigits: digits, minimumFractionDigits: digits }).format(usd);
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms >= 10000 ? `${fmtNumber(ms / 1000, 1)} s` : `${fmtNumber(ms, 0)} ms`;
}

export function fmtPercent(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return "–";
  return new Intl.NumberFormat(language(), { style: "percent", maximumFractionDigits: 1 }).format(ratio);
}

export function fmtTime(unix) {
  if (!unix) return "–";
  return new Intl.DateTimeFormat(language(), { dateStyle: "short", timeStyle: "medium" }).format(new Date(unix * 1000));
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${fmtNumber(n, i ? 1 : 0)} ${units[i]}`;
}

/** "1 h 02 min", "3 min 05 s", "12 s" */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  seconds = Math.max(0, Math.round(seconds));
  const d = Math.floor(seconds / 86400);
  const hh = Math.floor((seconds % 86400) / 3600);
  const mm = Math.floor((seconds % 3600) / 60);
  const ss = seconds % 60;
  const p = (n) => String(n).padStart(2, "0");
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${p(mm)} min`;
  if (mm) return `${mm} min ${p(ss)} s`;
  return `${ss} s`;
}

// ---------------------------------------------------------------------------------------------------------
// widgets
// ---------------------------------------------------------------------------------------------------------

export function button(label, onclick, { kind = "", type = "button", disabled = false, title, testid } = {}) {
  return h("button", { type, class: ["btn", kind && `btn-${kind}`], onclick, disabled, title, "data-testid": testid }, label);
}

/** Run an async action with the button disabled; errors become a toast. */
export function busy(btn, fn) {
  return async (ev) => {
    if (ev) ev.preventDefault();
    btn.disabled = true;
    btn.classList.add("is-busy");
    try {
      await fn(ev);
    } catch (err) {
      toast(errorText(err), "error");
    } finally {
      btn.disabled = false;
      btn.classList.remove("is-busy");
    }
  };
}

export function actionButton(label, fn, opts = {}) {
  const b = button(label, null, opts);
  b.addEventListener("click", busy(b, fn));
  return b;
}

export function errorText(err) {
  if (!err) return "";
  return err.message || String(err);
}

export function card(title, ...body) {
  return h("section", { class: "card" }, title ? h("h2", { class: "card-title" }, title) : null, ...body);
}

export function stat(label, value, hint) {
  return h("div", { class: "stat" }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value), hint ? h("div", { class: "stat-hint" }, hint) : null);
}

export function badge(text, kind = "") {
  return h("span", { class: ["badge", kind && `badge-${kind}`] }, text);
}

/** A labelled form control. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("div", { class: "hint" }, hint) : null);
}

export function input(attrs = {}) {
  return h("input", { type: "text", autocomplete: "off", spellcheck: "false", ...attrs });
}

export function select(options, value, attrs = {}) {
  const el = h("select", attrs);
  for (const o of options) {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    el.append(h("option", { value: v, selected: v === value }, label));
  }
  return el;
}

export function checkbox(label, checked, attrs = {}) {
  const box = h("input", { type: "checkbox", checked, ...attrs });
  return { box, el: h("label", { class: "check" }, box, h("span", null, label)) };
}

export function table(columns, rows, { empty, onRow, rowClass } = {}) {
  const head = h("thead", null, h("tr", null, columns.map((c) => h("th", { class: c.num ? "num" : "" }, c.label))));
  const body = h("tbody");
  if (!rows.length) {
    body.append(h("tr", null, h("td", { colspan: columns.length, class: "empty" }, empty || t("common.empty"))));
  }
  for (const r of rows) {
    const tr = h("tr", { class: rowClass ? rowClass(r) : "" }, columns.map((c) => h("td", { class: c.num ? "num" : "" }, c.cell(r))));
    if (onRow) {
      tr.classList.add("clickable");
      tr.tabIndex = 0;
      tr.addEventListener("click", () => onRow(r, tr));
      tr.addEventListener("keydown", (e) => e.key === "Enter" && onRow(r, tr));
    }
    body.append(tr);
  }
  return h("div", { class: "table-wrap" }, h("table", { class: "table" }, head, body));
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h("textarea", { class: "offscreen", readonly: true }, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  toast(t("common.copied"), "ok");
}

export function copyButton(getText, label) {
  return button(label || t("common.copy"), () => copyText(typeof getText === "function" ? getText() : getText), { kind: "small", testid: "copy" });
}

/** Code with a copy button. */
export function code(text, { label } = {}) {
  const pre = h("pre", { class: "code" }, h("code", null, text));
  return h("div", { class: "code-block" }, label ? h("div", { class: "code-label" }, label) : null, h("div", { class: "code-actions" }, copyButton(() => pre.textContent)), pre);
}

let toastHost = null;
export function toast(message, kind = "") {
  if (!toastHost) {
    toastHost = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(toastHost);
  }
  const el = h("div", { class: ["toast", kind && `toast-${kind}`] }, message);
  toastHost.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 3500);
}

/** A modal dialog; resolves with the value passed to close(). */
export function modal(title, build) {
  return new Promise((resolve) => {
    const dlg = h("dialog", { class: "modal" });
    const close = (value) => {
      dlg.close();
      dlg.remove();
      resolve(value);
    };
    dlg.append(h("h2", { class: "modal-title" }, title), build(close));
    dlg.addEventListener("cancel", (e) => {
      e.preventDefault();
      close(undefined);
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

export function confirmDialog(message, { danger = false, ok } = {}) {
  return modal(t("common.confirm"), (close) =>
    h("div", null, h("p", { class: danger ? "warning-text" : "" }, message), h("div", { class: "row end" }, button(t("common.cancel"), () => close(false)), button(ok || t("common.ok"), () => close(true), { kind: danger ? "danger" : "primary", testid: "confirm-ok" }))),
  );
}

/** The panel a page shows while the endpoint it needs is not built yet. */
export function notAvailable(what) {
  return h("div", { class: "not-available", "data-testid": "not-available" }, h("strong", null, t("common.not_available")), " ", what ? h("span", null, what) : null);
}

/** Render `fn()` into `el`, or the not-available panel / the error when it fails. */
export async function section(el, fn, what) {
  try {
    replace(el, await fn());
  } catch (err) {
    replace(el, missing(err) ? notAvailable(what) : h("div", { class: "error-box" }, errorText(err)));
  }
}

export function tabs(items, active, onSelect) {
  const bar = h("div", { class: "tabs", role: "tablist" });
  for (const [id, label] of items) {
    bar.append(h("button", { type: "button", role: "tab", class: ["tab", id === active && "active"], "aria-selected": id === active ? "true" : "false", "data-tab": id, onclick: () => onSelect(id) }, label));
  }
  return bar;
}

export function segmented(items, active, onSelect, attrs = {}) {
  const bar = h("div", { class: "segmented", ...attrs });
  for (const [id, label] of items) {
    bar.append(h("button", { type: "button", class: ["seg", id === active && "active"], "data-value": id, onclick: () => onSelect(id) }, label));
  }
  return bar;
}

/** Meter: used / limit with a bar. */
export function meter(used, limit, label) {
  const ratio = limit ? Math.min(1, used / limit) : 0;
  const bar = h("div", { class: ["meter-fill", ratio >= 0.9 ? "hot" : ratio >= 0.7 ? "warm" : ""] });
  bar.style.width = `${(ratio * 100).toFixed(1)}%`; // CSSOM, not a style attribute: allowed by the CSP
  return h("div", { class: "meter" }, h("div", { class: "meter-label" }, label, h("span", { class: "meter-nums" }, limit ? `${fmtNumber(used)} / ${fmtNumber(limit)} (${fmtPercent(ratio)})` : fmtNumber(used))), h("div", { class: "meter-track" }, bar));
}

export function sessionStore(key, value) {
  if (value === undefined) return sessionStorage.getItem(key) || "";
  if (value) sessionStorage.setItem(key, value);
  else sessionStorage.removeItem(key);
  return value;
}

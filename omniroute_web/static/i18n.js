// UI strings live in /static/i18n/<lang>.json (one flat object of key -> text, `{name}` placeholders).
// English is always loaded as the fallback; Arabic and Hebrew switch the page to right-to-left.

export const LANGUAGES = [
  ["en", "English"],
  ["it", "Italiano"],
  ["pt-BR", "Português (Brasil)"],
  ["es", "Español"],
  ["zh-CN", "简体中文"],
  ["ar", "العربية"],
];
const RTL = new Set(["ar", "he", "fa", "ur"]);
const STORAGE_KEY = "omr.lang";

let current = "en";
let catalog = {};
let fallback = {};

async function fetchCatalog(lang) {
  const res = await fetch(`/static/i18n/${lang}.json`, { credentials: "same-origin" });
  if (!res.ok) throw new Error(`no catalog for ${lang}`);
  return res.json();
}

function pick() {
  const saved = localStorage.getItem(STORAGE_KEY);
  const codes = LANGUAGES.map(([c]) => c);
  if (saved && codes.includes(saved)) return saved;
  for (const want of navigator.languages || [navigator.language || "en"]) {
    if (codes.includes(want)) return want;
    const base = want.split("-")[0];
    const match = codes.find((c) => c.split("-")[0] === base);
    if (match) return match;
  }
  return "en";
}

export async function initI18n() {
  const lang = pick();
  const wanted = lang === "en" ? null : fetchCatalog(lang).catch(() => null); // both catalogs at once
  fallback = await fetchCatalog("en");
  catalog = (await wanted) || fallback;
  applyLanguage(lang);
}

function applyLanguage(lang) {
  current = lang;
  document.documentElement.lang = lang;
  document.documentElement.dir = RTL.has(lang) ? "rtl" : "ltr";
}

export async function setLanguage(lang, { save = true } = {}) {
  catalog = lang === "en" ? fallback : await fetchCatalog(lang).catch(() => fallback);
  if (save) localStorage.setItem(STORAGE_KEY, lang);
  applyLanguage(lang);
}

export function language() {
  return current;
}

/** The text for `key` with `{name}` placeholders filled; `otherwise` when no catalog has the key. */
export function t(key, vars, otherwise) {
  let s = catalog[key] ?? fallback[key];
  if (s === undefined) return otherwise !== undefined ? otherwise : key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  return s;
}

/** `t` only when the key exists (for texts built from data, e.g. a setting's name). */
export function has(key) {
  return key in catalog || key in fallback;
}

// Boot: load the language, ask the gateway who we are, then show the setup page (the one-time link),
// the sign-in page, or the dashboard. Pages are ES modules in views/, one per page, loaded on first use;
// each exports render(root, ctx) and may return a function that stops its timers when the page is left.
import { api, onUnauthorized, setCsrf } from "./api.js";
import { LANGUAGES, initI18n, language, setLanguage, t } from "./i18n.js";
import { button, h, replace, select, toast } from "./dom.js";

export const PAGES = [
  ["home", "nav.home"],
  ["providers", "nav.providers"],
  ["combos", "nav.combos"],
  ["keys", "nav.keys"],
  ["usage", "nav.usage"],
  ["quotas", "nav.quotas"],
  ["health", "nav.health"],
  ["logs", "nav.logs"],
  ["cli-tools", "nav.cli_tools"],
  ["playground", "nav.playground"],
  ["settings", "nav.settings"],
];
const VIEWS = {
  home: () => import("./views/home.js"),
  wizard: () => import("./views/wizard.js"),
  providers: () => import("./views/providers.js"),
  combos: () => import("./views/combos.js"),
  keys: () => import("./views/keys.js"),
  usage: () => import("./views/usage.js"),
  quotas: () => import("./views/quotas.js"),
  health: () => import("./views/health.js"),
  logs: () => import("./views/logs.js"),
  "cli-tools": () => import("./views/clitools.js"),
  playground: () => import("./views/playground.js"),
  settings: () => import("./views/settings.js"),
};

const root = document.getElementById("app");
let session = null;
let dispose = null;
let main = null;
let renderSeq = 0;
let lastInfo = { authenticated: false, needs_setup: false };

function currentPage() {
  const name = location.hash.replace(/^#\/?/, "").split("?")[0];
  return VIEWS[name] ? name : "home";
}

function languagePicker() {
  const el = select(LANGUAGES, language(), { class: "lang-picker", "aria-label": t("common.language"), "data-testid": "lang" });
  el.addEventListener("change", async () => {
    await setLanguage(el.value);
    if (session) {
      renderShell();
      await route();
    } else {
      await showSignIn(lastInfo);
    }
  });
  return el;
}

async function signOut() {
  try {
    await api.post("/api/session/logout");
  } finally {
    setCsrf(null);
    session = null;
    location.hash = "";
    await showSignIn({ authenticated: false, needs_setup: false });
  }
}

function renderShell() {
  const page = currentPage();
  const nav = h("nav", { class: "nav", "aria-label": t("nav.label") },
    PAGES.map(([id, key]) => h("a", { href: `#/${id}`, class: ["nav-link", id === page && "active"], "data-page": id }, t(key))));
  main = h("main", { class: "main", id: "main", tabindex: "-1" });
  replace(root,
    h("header", { class: "topbar" },
      h("a", { class: "brand", href: "#/home" }, h("img", { src: "/static/favicon.svg", alt: "", width: 22, height: 22 }), "OmniRoute"),
      h("div", { class: "topbar-end" }, languagePicker(), button(t("common.sign_out"), signOut, { kind: "ghost", testid: "sign-out" }))),
    h("div", { class: "layout" }, nav, main));
  root.classList.remove("boot");
}

export async function route() {
  if (!session || !main) return;
  const page = currentPage();
  const seq = ++renderSeq;
  if (dispose) {
    try {
      dispose();
    } catch {
      /* a page that fails to stop cleanly must not block the next one */
    }
    dispose = null;
  }
  for (const a of document.querySelectorAll(".nav-link")) a.classList.toggle("active", a.dataset.page === page);
  document.body.dataset.view = page;
  delete document.body.dataset.ready;
  const started = performance.now();
  replace(main, h("div", { class: "loading" }, t("common.loading")));
  try {
    const mod = await VIEWS[page]();
    const holder = h("div", { class: "page", "data-page": page });
    const cleanup = await mod.render(holder, { session, route, navigate });
    if (seq !== renderSeq) {
      if (typeof cleanup === "function") cleanup();
      return;
    }
    replace(main, holder);
    dispose = typeof cleanup === "function" ? cleanup : null;
  } catch (err) {
    if (seq !== renderSeq) return;
    replace(main, h("div", { class: "error-box" }, err.message || String(err)));
  }
  document.body.dataset.renderMs = String(Math.round(performance.now() - started));
  // time from navigation start to the first page on screen (the load-time budget the tests check)
  if (!document.body.dataset.bootMs) document.body.dataset.bootMs = String(Math.round(performance.now()));
  document.body.dataset.ready = page;
}

export function navigate(page) {
  if (location.hash === `#/${page}`) route();
  else location.hash = `#/${page}`;
}

async function signedIn(result, { next = "home" } = {}) {
  session = { authenticated: true, user: result.user, csrf: result.csrf };
  setCsrf(result.csrf);
  history.replaceState(null, "", `/#/${next}`); // drops a setup token from the address bar
  renderShell();
  await route();
}

async function showSignIn(info) {
  lastInfo = info;
  root.classList.remove("boot");
  const onSetupPage = location.pathname === "/setup";
  const mod = onSetupPage ? await import("./views/setup.js") : await import("./views/login.js");
  const holder = h("div", { class: "auth-page" }, h("div", { class: "auth-top" }, languagePicker()));
  replace(root, holder);
  await mod.render(holder, {
    info,
    onSignedIn: (result) => signedIn(result, { next: onSetupPage ? "wizard" : "home" }),
  });
  document.body.dataset.view = onSetupPage ? "setup" : "login";
  document.body.dataset.ready = document.body.dataset.view;
}

async function boot() {
  // Start everything the first screen needs at once: who we are, the language, the page's module.
  const sessionP = api.get("/api/session");
  if (location.pathname !== "/setup") VIEWS[currentPage()]().catch(() => null);
  await initI18n();
  onUnauthorized(() => {
    if (!session) return;
    session = null;
    setCsrf(null);
    toast(t("common.session_ended"), "error");
    showSignIn({ authenticated: false, needs_setup: false });
  });
  let info;
  try {
    info = await sessionP;
  } catch (err) {
    replace(root, h("div", { class: "error-box" }, err.message));
    return;
  }
  if (info.authenticated && location.pathname !== "/setup") {
    session = info;
    setCsrf(info.csrf);
    renderShell();
    await route();
  } else {
    await showSignIn(info);
  }
  window.addEventListener("hashchange", () => route());
}

boot();

// Model choices for pickers: combos, then `<provider>/<model>` for every provider with an account
// (catalog models and the user's custom ids). Any `<provider>/<id>` routes, so pickers also accept free text.
import { api, getOptional } from "./api.js";
import { h } from "./dom.js";

const PREFERRED = "omr.model";

export async function modelChoices() {
  const [providers, custom, combos] = await Promise.all([
    api.get("/api/providers"),
    api.get("/api/dashboard/custom-models").catch(() => ({ models: {} })),
    getOptional("/api/combos").catch(() => null),
  ]);
  const out = [];
  for (const c of (combos && combos.combos) || []) if (c.enabled !== false) out.push({ id: c.name, kind: "combo" });
  for (const p of providers.providers) {
    if (!p.accounts) continue;
    for (const m of p.models) out.push({ id: `${p.id}/${m.id}`, kind: "model", provider: p.id });
    for (const id of custom.models[p.id] || []) out.push({ id: `${p.id}/${id}`, kind: "custom", provider: p.id });
  }
  return out;
}

export function datalist(id, choices) {
  return h("datalist", { id }, choices.map((c) => h("option", { value: c.id }, c.kind === "combo" ? "combo" : "")));
}

export function preferredModel(choices = []) {
  const saved = localStorage.getItem(PREFERRED);
  if (saved) return saved;
  return choices.length ? choices[0].id : "";
}

export function rememberModel(model) {
  if (model) localStorage.setItem(PREFERRED, model);
}

// Playground: send a request in any client format to any model, through the gateway's own client
// endpoints, and see the body the upstream receives and the answer translated back — the translator
// made visible. The dry-run preview shows at once; once the answer is in, the request log's payloads
// (the request carries x-omniroute-debug) replace it with what the upstream really received, and show
// the upstream's raw answer beside the translated one.
import { api, request } from "../api.js";
import { t } from "../i18n.js";
import { actionButton, badge, button, card, checkbox, code, errorText, field, fmtMs, h, input, replace, select, sessionStore, toast } from "../dom.js";
import { datalist, modelChoices, preferredModel, rememberModel } from "../models.js";
import { payloadsFor, upstreamRequest, upstreamResponse } from "../payloads.js";

const FORMATS = [
  ["openai-chat", "OpenAI Chat Completions"],
  ["openai-responses", "OpenAI Responses"],
  ["anthropic", "Anthropic Messages"],
  ["gemini", "Gemini generateContent"],
];
const PROMPT = "Say hello in five words.";

export function template(format, model, stream) {
  if (format === "openai-responses") return { model, input: PROMPT, stream };
  if (format === "anthropic") return { model, max_tokens: 256, messages: [{ role: "user", content: PROMPT }], stream };
  if (format === "gemini") return { contents: [{ role: "user", parts: [{ text: PROMPT }] }] };
  return { model, messages: [{ role: "user", content: PROMPT }], stream };
}

export function endpoint(format, model, stream) {
  if (format === "openai-responses") return "/v1/responses";
  if (format === "anthropic") return "/v1/messages";
  if (format === "gemini") return `/v1beta/models/${encodeURIComponent(model).replace(/%2F/g, "/")}:${stream ? "streamGenerateContent?alt=sse" : "generateContent"}`;
  return "/v1/chat/completions";
}

export async function render(root) {
  const choices = await modelChoices().catch(() => []);
  const format = select(FORMATS, "openai-chat", { "data-testid": "pg-format" });
  const model = input({ value: preferredModel(choices), list: "pg-models", "data-testid": "pg-model" });
  const stream = checkbox(t("playground.stream"), false, { "data-testid": "pg-stream" });
  const key = input({ type: "password", value: sessionStore("omr.key"), placeholder: "omr_...", "data-testid": "pg-key" });
  const mint = actionButton(t("playground.mint_key"), async () => {
    const r = await api.post("/api/keys", { name: "playground" });
    key.value = sessionStore("omr.key", r.key);
    toast(t("playground.key_minted"), "ok");
  }, { kind: "small", testid: "pg-mint" });
  const body = h("textarea", { class: "code-input", rows: 12, spellcheck: "false", "data-testid": "pg-body", "aria-label": t("playground.body") });
  const upstream = h("div", { "data-testid": "pg-upstream" });
  const upstreamAnswer = h("div", { "data-testid": "pg-upstream-response" });
  const response = h("div", { "data-testid": "pg-response" });
  let runs = 0; // a newer send wins: an older one's late results are dropped
  const reset = () => {
    body.value = JSON.stringify(template(format.value, model.value.trim(), stream.box.checked), null, 2);
  };
  format.addEventListener("change", reset);
  stream.box.addEventListener("change", reset);
  model.addEventListener("change", reset);
  reset();

  const send = actionButton(t("playground.send"), async () => {
    let parsed;
    try {
      parsed = JSON.parse(body.value);
    } catch (err) {
      toast(`${t("playground.bad_json")} ${err.message}`, "error");
      return;
    }
    if (!key.value) {
      toast(t("playground.need_key"), "error");
      return;
    }
    const fmt = format.value;
    const m = fmt === "gemini" ? model.value.trim() : parsed.model || model.value.trim();
    const wantsStream = fmt === "gemini" ? stream.box.checked : Boolean(parsed.stream);
    rememberModel(m);
    const run = ++runs;
    let sent = false;
    for (const el of [upstream, upstreamAnswer, response]) {
      replace(el, t("common.loading"));
      delete el.dataset.done;
    }
    const headline = (r) => h("p", null, badge(r.passthrough ? t("playground.passthrough") : t("playground.translated", { from: fmt, to: r.upstream_format }), r.passthrough ? "" : "info"), ` · ${t("playground.target")}: ${r.target}`);
    const preview = api.post("/api/playground/translate", { format: fmt, body: parsed, model: m, stream: wantsStream }).then(
      (r) => {
        if (run === runs && !sent) replace(upstream, headline(r), h("p", { class: "muted" }, h("code", null, `POST ${r.url}`), ` · ${t("playground.preview")}`), code(JSON.stringify(r.body, null, 2)));
        return r;
      },
      (err) => {
        if (run === runs && !sent) replace(upstream, h("div", { class: "error-box" }, errorText(err)));
        return null;
      });
    const started = performance.now();
    const res = await request("POST", endpoint(fmt, m, wantsStream), { body: parsed, raw: true, headers: { authorization: `Bearer ${key.value}`, "x-omniroute-debug": "upstream-request" } });
    const pre = h("pre", { class: "code", "data-testid": "pg-raw" });
    const meta = h("p", null, badge(String(res.status), res.ok ? "ok" : "error"), " ", res.headers.get("x-omniroute-served-by") ? h("span", { "data-testid": "pg-served-by" }, `${t("playground.served_by")}: ${res.headers.get("x-omniroute-served-by")}`) : null);
    const timing = h("span", { class: "muted" });
    meta.append(" ", timing);
    replace(response, meta, pre);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
      pre.textContent = text;
    }
    try {
      pre.textContent = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      /* a stream: keep the raw events */
    }
    timing.textContent = fmtMs(performance.now() - started);
    response.dataset.done = "1";
    const requestId = res.headers.get("x-request-id");
    const kept = requestId ? await payloadsFor(requestId).catch(() => null) : null;
    const r = await preview;
    if (run !== runs) return;
    if (kept && kept.upstream_request) {
      sent = true;
      replace(upstream, r ? headline(r) : null, h("p", { class: "muted" }, t("playground.sent")), h("div", { "data-testid": "pg-upstream-sent" }, upstreamRequest(kept.upstream_request)));
    } else {
      upstream.append(h("p", { class: "muted" }, t("playground.not_kept")));
    }
    replace(upstreamAnswer, kept && kept.upstream_response ? upstreamResponse(kept.upstream_response) : h("p", { class: "muted" }, t("playground.not_kept")));
    upstreamAnswer.dataset.done = "1";
  }, { kind: "primary", testid: "pg-send" });

  root.append(h("h1", null, t("nav.playground")), h("p", { class: "lead" }, t("playground.intro")), datalist("pg-models", choices),
    card(null,
      h("div", { class: "grid3" }, field(t("playground.format"), format), field(t("playground.model"), model), field(t("playground.key"), h("div", { class: "row nowrap" }, key, mint))),
      h("div", { class: "row" }, stream.el, button(t("playground.reset"), reset, { kind: "small", testid: "pg-reset" })),
      field(t("playground.body"), body),
      h("div", { class: "row" }, send)),
    card(t("playground.upstream"), upstream),
    h("div", { class: "grid2" }, card(t("playground.upstream_response"), upstreamAnswer), card(t("playground.response"), response)));
}

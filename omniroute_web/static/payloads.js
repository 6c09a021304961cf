// Payloads kept in the request log (payload logging on, or a request sent with x-omniroute-debug): what the
// client sent, what the upstream received (URL, headers with credentials redacted, body), what it answered
// and what the client got back. Shared by the Logs page and the Playground. Bodies arrive decoded when they
// were JSON, as text otherwise (streams are kept as their raw SSE bytes).
import { api, qs } from "./api.js";
import { t } from "./i18n.js";
import { badge, code, h } from "./dom.js";

const FIND_TRIES = 20;
const FIND_PAUSE_MS = 250; // usage rows are written in batches off the request path: give them a moment

export function pretty(body) {
  if (body === null || body === undefined) return "";
  return typeof body === "string" ? body : JSON.stringify(body, null, 2);
}

function headerLines(headers) {
  return Object.entries(headers || {}).map(([name, value]) => `${name}: ${value}`).join("\n");
}

function cut(part) {
  return part.truncated ? badge(t("payloads.truncated"), "warn") : null;
}

/** What the upstream received: method and URL, headers, body. */
export function upstreamRequest(part) {
  return h("div", null,
    h("p", null, h("code", null, `${part.method} ${part.url}`), " ", cut(part)),
    code(headerLines(part.headers), { label: t("payloads.headers") }),
    code(pretty(part.body), { label: t("payloads.body") }));
}

/** What the upstream answered: status, headers, body (a stream as its raw SSE text). */
export function upstreamResponse(part) {
  return h("div", null,
    h("p", null, badge(String(part.status), part.status < 400 ? "ok" : "error"), " ", cut(part)),
    code(headerLines(part.headers), { label: t("payloads.headers") }),
    code(pretty(part.body), { label: t("payloads.body") }));
}

function bodyOnly(part) {
  return h("div", null, cut(part), code(pretty(part.body)));
}

/** The four payloads, each collapsible; the upstream's side open. */
export function payloadSections(p) {
  const section = (title, testid, part, view, open) => h("details", { class: "payload", open, "data-testid": testid },
    h("summary", null, title),
    part ? view(part) : h("p", { class: "muted" }, t("payloads.absent")));
  return h("div", { "data-testid": "payloads" },
    section(t("payloads.client_request"), "payload-client-request", p.client_request, bodyOnly, false),
    section(t("payloads.upstream_request"), "payload-upstream-request", p.upstream_request, upstreamRequest, true),
    section(t("payloads.upstream_response"), "payload-upstream-response", p.upstream_response, upstreamResponse, true),
    section(t("payloads.client_response"), "payload-client-response", p.client_response, bodyOnly, false));
}

/** The payloads of the request the gateway answered with this x-request-id; null when none were kept. */
export async function payloadsFor(requestId) {
  for (let i = 0; i < FIND_TRIES; i++) {
    const { requests } = await api.get(`/api/logs/requests${qs({ request_id: requestId, limit: 1 })}`);
    if (requests.length) return (await api.get(`/api/logs/requests/${requests[0].id}`)).request.payloads;
    await new Promise((done) => setTimeout(done, FIND_PAUSE_MS));
  }
  return null;
}

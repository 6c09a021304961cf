// The one door to the gateway: every request of every page goes through `api()`, to this origin only.
// Error answers ({error: {message, code, status}}) become ApiError exceptions; a state-changing request
// carries the session's CSRF token.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

let csrfToken = null;
const unauthorizedHandlers = [];

export function setCsrf(token) {
  csrfToken = token || null;
}

/** Called with the error when the gateway answers 401 (the session ended). */
export function onUnauthorized(fn) {
  unauthorizedHandlers.push(fn);
}

function errorFrom(status, data, fallback) {
  const e = data && typeof data === "object" ? data.error : null;
  if (e && typeof e === "object") {
    return new ApiError(status, e.code || e.type || "error", e.message || fallback);
  }
  return new ApiError(status, "error", typeof e === "string" ? e : fallback);
}

/** A raw fetch to the gateway (same origin, session cookie, CSRF header on state changes). */
export async function request(method, path, { body, headers = {}, raw = false, signal } = {}) {
  if (!path.startsWith("/")) throw new Error("api paths are same-origin paths");
  const h = { accept: "application/json", ...headers };
  let payload;
  if (body !== undefined) {
    if (typeof body === "string" || body instanceof Blob) {
      payload = body;
      h["content-type"] = h["content-type"] || "application/json";
    } else {
      payload = JSON.stringify(body);
      h["content-type"] = "application/json";
    }
  }
  if (method !== "GET" && method !== "HEAD" && csrfToken) h["x-csrf-token"] = csrfToken;
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: payload, credentials: "same-origin", cache: "no-store", signal });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "the gateway did not answer");
  }
  if (raw) return res;
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    const err = errorFrom(res.status, data, `${res.status} ${res.statusText}`);
    if (res.status === 401 && !path.startsWith("/api/session")) unauthorizedHandlers.forEach((fn) => fn(err));
    throw err;
  }
  return data;
}

export const api = {
  get: (path, opts) => request("GET", path, opts),
  post: (path, body, opts) => request("POST", path, { ...opts, body: body === undefined ? {} : body }),
  put: (path, body, opts) => request("PUT", path, { ...opts, body }),
  patch: (path, body, opts) => request("PATCH", path, { ...opts, body }),
  del: (path, opts) => request("DELETE", path, opts),
};

/** True when the endpoint itself does not exist yet (answered 404/405 by the route table). */
export function missing(err) {
  if (!(err instanceof ApiError)) return false;
  return err.status === 405 || (err.status === 404 && /^no route for /.test(err.message));
}

/** GET that resolves to null (not an exception) while the endpoint is not built yet. */
export async function getOptional(path) {
  try {
    return await api.get(path);
  } catch (err) {
    if (missing(err)) return null;
    throw err;
  }
}

/** Query string from an object, skipping empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

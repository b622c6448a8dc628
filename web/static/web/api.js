// Calls to the server's APIs with the signed-in token, and their failures in plain words.

export class ApiError extends Error {
  constructor(message, { status = 0, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export function inWords(seconds) {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

export function megabytes(bytes) {
  return `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB`;
}

function retryAfterOf(headers) {
  const value = headers.get("Retry-After");
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

// What an error body says, whichever API answered: Mastodon's {"error"}, /v1's {"detail"},
// or a form's {"field": ["message"]}.
function said(body) {
  if (!body || typeof body !== "object") return "";
  if (typeof body.error_description === "string") return body.error_description; // OAuth's
  if (typeof body.error === "string") return body.error;
  if (typeof body.detail === "string") return body.detail;
  return Object.values(body).filter(Array.isArray).flat().filter((m) => typeof m === "string").join(" ");
}

/** The plain-words message for a refused request. */
export function refusal(status, body, headers) {
  const retryAfter = retryAfterOf(headers);
  const wait = retryAfter !== null ? ` Try again in ${inWords(retryAfter)}.` : " Try again in a moment.";
  switch (status) {
    case 401: return new ApiError("Your sign-in has ended. Please sign in again.", { status });
    case 403: return new ApiError(said(body) || "You may not do that.", { status });
    case 404: return new ApiError(said(body) || "That isn't here any more.", { status });
    case 413: return new ApiError(`That is too large for the server. ${said(body)}`.trim(), { status });
    case 429: return new ApiError(`You're doing that too often.${wait}`, { status, retryAfter });
    case 502: case 503: case 504:
      return new ApiError(`The service is busy or partly down.${wait}`, { status, retryAfter });
    default:
      if (status >= 500) return new ApiError("Something went wrong on the server. Try again in a moment.", { status });
      return new ApiError(said(body) || `The server refused that (HTTP ${status}).`, { status, retryAfter });
  }
}

export const OFFLINE = "You're offline, or the server can't be reached. Check your connection and try again.";

/** `Link` header targets by relation ({next, prev}), as Mastodon pages its lists. */
export function links(header) {
  const found = {};
  for (const part of (header || "").split(",")) {
    const match = part.match(/<([^>]+)>\s*;\s*rel="?([a-z]+)"?/);
    if (match) found[match[2]] = match[1];
  }
  return found;
}

export class Api {
  constructor(tokenSource, onSignedOut) {
    this.token = tokenSource;
    this.onSignedOut = onSignedOut;
  }

  /** `{data, links, headers}`; throws an ApiError in plain words. */
  async request(path, { method = "GET", json, form, headers = {}, anonymous = false, keepalive = false } = {}) {
    const sent = { ...headers };
    const token = anonymous ? null : this.token();
    if (token) sent.Authorization = `Bearer ${token}`;
    let body;
    if (json !== undefined) {
      sent["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = new URLSearchParams(form);
    }
    let response;
    try {
      response = await fetch(path, { method, headers: sent, body, credentials: "omit", keepalive });
    } catch {
      throw new ApiError(OFFLINE);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = refusal(response.status, data, response.headers);
      if (response.status === 401 && token && this.onSignedOut) this.onSignedOut(error.message);
      throw error;
    }
    return { data, links: links(response.headers.get("Link")), headers: response.headers };
  }

  get(path, options) { return this.request(path, options); }
  post(path, options) { return this.request(path, { ...options, method: "POST" }); }
  delete(path, options) { return this.request(path, { ...options, method: "DELETE" }); }
}

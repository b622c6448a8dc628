// Signing in as any third-party web app does: register the app (POST /api/v1/apps), send the
// person to /oauth/authorize with a PKCE challenge (RFC 7636, S256), and trade the code that
// comes back for a token (POST /oauth/token). Signing up is the same trip, through the
// sign-up page first. Nothing here is private to this client.

const APP_KEY = "hometimeline.app";
const TOKEN_KEY = "hometimeline.token";
const PENDING_KEY = "hometimeline.pending";

function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function challengeOf(verifier) {
  if (!crypto.subtle) {
    throw new Error("Signing in needs a secure page: open this site over https (or on localhost).");
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function redirectUri() {
  return `${location.origin}/`;
}

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

// The app this browser registered, as `app()` saved it, or null.
function savedApp() {
  return JSON.parse(localStorage.getItem(APP_KEY) || "null");
}

// Whether the server still knows the app this browser registered (it may have been removed, or
// the server's data reset): revoking a token that is none answers 200 to a known client
// (RFC 7009 §2.2) and 401 to an unknown one, and changes nothing.
async function known(api, client) {
  try {
    await api.post("/oauth/revoke", { anonymous: true, form: {
      client_id: client.client_id, client_secret: client.client_secret, token: "none" } });
    return true;
  } catch (error) {
    if (error.status === 401 || error.status === 400) return false;
    throw error;
  }
}

async function app(api, scopes) {
  const saved = savedApp();
  if (saved && saved.redirect_uri === redirectUri() && saved.scopes === scopes && await known(api, saved)) {
    return saved;
  }
  const { data } = await api.post("/api/v1/apps", {
    anonymous: true,
    json: { client_name: "Home Timeline (web)", redirect_uris: redirectUri(), scopes, website: location.origin },
  });
  const registered = { client_id: data.client_id, client_secret: data.client_secret, redirect_uri: redirectUri(),
    scopes };
  localStorage.setItem(APP_KEY, JSON.stringify(registered));
  return registered;
}

/** Send the person to the sign-in (or, with `signUp`, the sign-up) page, to come back to `/`. */
export async function beginSignIn(api, config, { signUp = false } = {}) {
  const client = await app(api, config.scopes);
  const verifier = randomString(48);
  const state = randomString(16);
  const returnTo = location.pathname === "/" ? "/" : location.pathname;
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, returnTo }));
  const query = new URLSearchParams({
    response_type: "code", client_id: client.client_id, redirect_uri: client.redirect_uri, scope: config.scopes,
    state, code_challenge: await challengeOf(verifier), code_challenge_method: "S256",
  });
  const authorize = `/oauth/authorize?${query}`;
  location.assign(signUp ? `${config.sign_up_url}?${new URLSearchParams({ next: authorize })}` : authorize);
}

/**
 * Finish a sign-in the authorization server sent back here (`?code=…&state=…`, or `?error=…`):
 * the path to go on to, or null when this page was not such a return. Throws in plain words.
 */
export async function finishSignIn(api) {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
  sessionStorage.removeItem(PENDING_KEY);
  history.replaceState(null, "", "/");
  if (params.has("error")) {
    throw new Error(params.get("error") === "access_denied" ? "You did not allow the sign-in."
      : `The sign-in failed: ${params.get("error_description") || params.get("error")}`);
  }
  if (!pending || pending.state !== params.get("state")) {
    throw new Error("That sign-in was not started from this page. Please sign in again.");
  }
  const client = savedApp();
  if (!client) throw new Error("This browser forgot the sign-in it started. Please sign in again.");
  let data;
  try {
    ({ data } = await api.post("/oauth/token", {
      anonymous: true,
      form: {
        grant_type: "authorization_code", code: params.get("code"), redirect_uri: client.redirect_uri,
        client_id: client.client_id, client_secret: client.client_secret, code_verifier: pending.verifier,
      },
    }));
  } catch (error) {
    if (error.status === 401) localStorage.removeItem(APP_KEY); // the server forgot this app: a new one next time
    throw new Error("The sign-in could not be completed. Please sign in again.");
  }
  localStorage.setItem(TOKEN_KEY, data.access_token);
  return pending.returnTo || "/";
}

/** Revoke the token, forget it, and end the sign-in pages' session (back to `/`). */
export async function signOut(api) {
  const client = savedApp();
  const current = token();
  forgetToken();
  if (client && current) {
    try {
      await api.post("/oauth/revoke", { anonymous: true, form: {
        client_id: client.client_id, client_secret: client.client_secret, token: current } });
    } catch {
      // Offline: the token is forgotten here; it still ends on a new password or from another session.
    }
  }
  document.getElementById("sign-out-form").submit();
}

// The web client: sign in (auth.js), the home timeline with compose and live updates, a
// profile per account (/@username), and follow requests to answer. It uses only the public
// APIs, with the token its OAuth sign-in got, as any other app does.

import { Api, ApiError } from "./api.js";
import * as auth from "./auth.js";
import { Compose } from "./compose.js";
import { el, statusElement } from "./dom.js";
import { Feed } from "./feed.js";
import { Live } from "./live.js";

const config = JSON.parse(document.getElementById("config").textContent);
const main = document.getElementById("main");
const statusLine = document.getElementById("status");
const alertLine = document.getElementById("alert");
const offline = document.getElementById("offline");

const api = new Api(auth.token, (message) => {
  auth.forgetToken();
  welcome(message);
});

let me = null;
let streaming = null;
let view = null; // the shown view's {stop()}

// --- Telling the reader --------------------------------------------------------------------

// Two live regions, always in the page: news (said politely, gone after a while) and errors
// (said at once, kept until the next message).
let statusTimer = null;
function tell(message, { error = false } = {}) {
  clearTimeout(statusTimer);
  statusLine.textContent = error ? "" : message;
  alertLine.textContent = error ? message : "";
  if (message && !error) statusTimer = setTimeout(() => { statusLine.textContent = ""; }, 4000);
}

function failed(error) {
  tell(error instanceof ApiError || error instanceof Error ? error.message : String(error), { error: true });
}

function showOnline() {
  offline.hidden = navigator.onLine;
}
addEventListener("online", () => { showOnline(); tell("You're back online."); });
addEventListener("offline", showOnline);

// --- Routes --------------------------------------------------------------------------------

function go(path) {
  if (path !== location.pathname) history.pushState(null, "", path);
  route();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-route]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  go(new URL(link.href).pathname);
});
addEventListener("popstate", () => route());

// Stop the shown view and make `next` the shown one; a view that awaits checks `shown(next)`
// after each wait, so an answer arriving after the reader moved on draws nothing.
function show(next, title) {
  view?.stop();
  view = next;
  document.title = title ? `${title} · Home Timeline` : "Home Timeline";
  return next;
}

function shown(candidate) {
  return view === candidate;
}

function route() {
  if (!me) return;
  const profile = location.pathname.match(/^\/@([A-Za-z0-9_]{1,15})$/);
  const single = location.pathname.match(/^\/@[A-Za-z0-9_]{1,15}\/([0-9]{1,20})$/);
  if (profile) profileView(profile[1]);
  else if (single) statusView(single[1]);
  else if (location.pathname === "/follow_requests") requestsView();
  else homeView();
  main.focus({ preventScroll: true });
}

// --- Signed out ----------------------------------------------------------------------------

function welcome(message) {
  me = null;
  show({ stop() {} });
  document.getElementById("nav").hidden = true;
  const begin = (signUp) => {
    for (const button of main.querySelectorAll(".welcome-actions button")) button.disabled = true;
    auth.beginSignIn(api, config, { signUp }).catch((error) => {
      for (const button of main.querySelectorAll(".welcome-actions button")) button.disabled = false;
      failed(error);
    });
  };
  main.replaceChildren(el("section", { class: "welcome" },
    el("h1", {}, "Home Timeline"),
    el("p", {}, "Short tweets from the people you follow, newest first, as they happen."),
    message ? el("p", { class: "error", role: "alert" }, message) : null,
    el("div", { class: "welcome-actions" },
      el("button", { type: "button", id: "sign-in", class: "primary", onclick: () => begin(false) }, "Sign in"),
      el("button", { type: "button", id: "sign-up", onclick: () => begin(true) }, "Create an account"))));
}

// --- Home ----------------------------------------------------------------------------------

const CATCH_UP_PAGES = 25; // after a drop, at most this many pages of 40 are fetched; then a reload is better

function homeView() {
  const feed = new Feed(api, { path: "/api/v1/timelines/home?limit=20", me, onError: failed,
    emptyText: "Nothing here yet. Follow someone, or post your first tweet." });
  const pending = [];
  const newBar = el("button", { type: "button", id: "new-bar", class: "new-bar", hidden: true });
  const atTop = () => scrollY < 40;
  const showBar = () => {
    newBar.textContent = `${pending.length} new tweet${pending.length === 1 ? "" : "s"} — show`;
    newBar.hidden = pending.length === 0;
  };
  // Waiting tweets go on top; the reader is taken there only when they asked (the bar, ".").
  const showPending = ({ asked }) => {
    feed.prepend(pending.splice(0));
    showBar();
    if (asked) {
      scrollTo({ top: 0 });
      feed.list.firstElementChild?.focus({ preventScroll: true });
    }
  };
  newBar.addEventListener("click", () => showPending({ asked: true }));
  const arrived = (statuses) => {
    if (atTop() && pending.length === 0) {
      feed.prepend(statuses);
      return;
    }
    // Scrolled down: nothing moves under the reader; a bar says how many are waiting.
    for (const status of statuses) {
      if (!feed.ids.has(status.id) && !pending.some((p) => p.id === status.id)) pending.push(status);
    }
    showBar();
  };
  const onScroll = () => { if (atTop() && pending.length) showPending({ asked: false }); };
  addEventListener("scroll", onScroll, { passive: true });

  const compose = new Compose(api, config, { onError: failed, onPosted: (status) => {
    feed.prepend([...pending.splice(0), status]); // the waiting ones are older: all in order
    showBar();
    tell("Posted.");
  } });
  main.replaceChildren(el("h1", { class: "visually-hidden" }, "Home"), compose.element, newBar, feed.element);
  const firstPage = feed.more();

  // What entered the timeline since the newest tweet shown: the page just newer each time
  // (min_id), until none is left. Run once the stream listens, so nothing falls in between.
  let catchingUp = null;
  const catchUp = async () => {
    for (let page = 0; page < CATCH_UP_PAGES && shown(current); page += 1) {
      const shownIds = [feed.newestId(), ...pending.map((p) => p.id)].filter(Boolean);
      if (shownIds.length === 0) return; // nothing shown yet: the first page is all there is
      const newest = shownIds.reduce((a, b) => (BigInt(a) > BigInt(b) ? a : b));
      const { data } = await api.get(`/api/v1/timelines/home?limit=40&min_id=${newest}`);
      if (!shown(current) || data.length === 0) return;
      arrived(data);
    }
  };
  const live = streaming ? new Live(streaming, auth.token(), {
    onUpdate: (status) => arrived([status]),
    onDelete: (id) => {
      feed.remove(id);
      const at = pending.findIndex((p) => p.id === id);
      if (at >= 0) pending.splice(at, 1);
      showBar();
    },
    onOpen: () => {
      catchingUp ??= firstPage.then(catchUp).catch(failed).finally(() => { catchingUp = null; });
    },
  }) : null;

  // The reading position, kept across reloads (and devices) as the home marker.
  let savedMarker = null;
  let markerTimer = null;
  const saveMarker = ({ leaving = false } = {}) => {
    const id = feed.topmostVisible(document.querySelector(".bar").getBoundingClientRect().bottom);
    if (!id || id === savedMarker) return;
    savedMarker = id;
    api.post("/api/v1/markers", { json: { home: { last_read_id: id } }, keepalive: leaving })
      .catch(() => { savedMarker = null; });
  };
  const onScrollMarker = () => { clearTimeout(markerTimer); markerTimer = setTimeout(saveMarker, 1000); };
  addEventListener("scroll", onScrollMarker, { passive: true });
  const onHide = () => { if (document.visibilityState === "hidden") saveMarker({ leaving: true }); };
  document.addEventListener("visibilitychange", onHide);

  // Back to the saved position, unless the reader has started moving meanwhile.
  let restoring = true;
  const moved = () => { restoring = false; };
  const moves = ["wheel", "keydown", "pointerdown", "touchstart"];
  for (const type of moves) addEventListener(type, moved, { once: true, passive: true });
  Promise.all([firstPage, api.get("/api/v1/markers?timeline[]=home").catch(() => ({ data: {} }))])
    .then(async ([, { data }]) => {
      const marker = data?.home?.last_read_id;
      if (!marker || marker === feed.newestId()) return;
      savedMarker = marker;
      const article = await feed.reach(marker, 10);
      if (article && restoring && shown(current)) {
        // Its top just under the bar, where it was.
        const bar = document.querySelector(".bar").getBoundingClientRect().bottom;
        scrollTo(0, article.getBoundingClientRect().top + scrollY - bar);
        article.focus({ preventScroll: true });
      }
    });

  const current = show({
    stop() {
      feed.stop();
      live?.stop();
      removeEventListener("scroll", onScroll);
      removeEventListener("scroll", onScrollMarker);
      document.removeEventListener("visibilitychange", onHide);
      for (const type of moves) removeEventListener(type, moved);
      if (main.contains(feed.element)) saveMarker();
    },
  }, "Home");
}

// --- A profile -----------------------------------------------------------------------------

async function profileView(username) {
  let feed = null;
  const current = show({ stop() { feed?.stop(); } }, `@${username}`);
  main.replaceChildren(el("p", { class: "loading" }, "Loading…"));
  let account;
  try {
    ({ data: account } = await api.get(`/api/v1/accounts/lookup?acct=${encodeURIComponent(username)}`));
    if (!shown(current)) return;
  } catch (error) {
    if (!shown(current)) return;
    main.replaceChildren(el("p", { class: "error" }, error.status === 404 ? `There is no @${username}.`
      : error.message));
    return;
  }
  const followButton = el("button", { type: "button", id: "follow", class: "primary", hidden: true });
  const note = el("p", { class: "relationship" });
  const counts = el("p", { class: "counts" });
  const showCounts = () => counts.replaceChildren(
    el("span", {}, el("strong", {}, account.followers_count), account.followers_count === 1 ? " follower"
      : " followers"), " · ",
    el("span", {}, el("strong", {}, account.following_count), " following"));
  showCounts();
  let relationship = null;
  const showRelationship = () => {
    if (account.id === me.id) {
      note.textContent = "This is you.";
      return;
    }
    followButton.hidden = false;
    followButton.textContent = relationship.following ? "Unfollow"
      : relationship.requested ? "Cancel request" : account.locked ? "Request to follow" : "Follow";
    note.textContent = [relationship.followed_by ? "Follows you." : "",
      relationship.requested ? "Your request is waiting for approval." : ""].join(" ").trim();
  };
  followButton.addEventListener("click", async () => {
    const undo = relationship.following || relationship.requested;
    followButton.disabled = true;
    try {
      ({ data: relationship } = await api.post(`/api/v1/accounts/${account.id}/${undo ? "unfollow" : "follow"}`));
      ({ data: account } = await api.get(`/api/v1/accounts/${account.id}`));
      if (!shown(current)) return;
      showRelationship();
      showCounts();
      loadTweets();
    } catch (error) {
      failed(error);
    } finally {
      followButton.disabled = false;
    }
  });
  const tweets = el("div", { class: "profile-tweets" });
  const loadTweets = () => {
    feed?.stop();
    const hidden = account.locked && account.id !== me.id && !relationship?.following;
    if (hidden) {
      tweets.replaceChildren(el("p", { class: "empty" }, `Only people @${account.username} approves see their tweets.`));
      return;
    }
    feed = new Feed(api, { path: `/api/v1/accounts/${account.id}/statuses?limit=20`, me, onError: failed,
      emptyText: `@${account.username} hasn't posted yet.` });
    tweets.replaceChildren(feed.element);
    feed.more();
  };
  main.replaceChildren(el("section", { class: "profile" },
    el("h1", {}, account.display_name || account.username, account.locked ? el("span", {
      class: "locked", title: "Locked: followers are approved" }, " 🔒") : null),
    el("p", { class: "acct" }, `@${account.acct}`), counts, note, followButton), tweets);
  if (account.id !== me.id) {
    try {
      ({ data: [relationship] } = await api.get(`/api/v1/accounts/relationships?id[]=${account.id}`));
      if (!shown(current)) return;
      showRelationship();
    } catch (error) {
      failed(error);
    }
  } else {
    showRelationship();
  }
  loadTweets();
}

// --- One status ---------------------------------------------------------------------------

async function statusView(id) {
  const current = show({ stop() {} }, "Tweet");
  main.replaceChildren(el("p", { class: "loading" }, "Loading…"));
  try {
    const { data: status } = await api.get(`/api/v1/statuses/${id}`);
    if (!shown(current)) return;
    const article = statusElement(status, { me, onDelete: async () => {
      try {
        await api.delete(`/api/v1/statuses/${status.id}`);
        tell("Deleted.");
        go("/");
      } catch (error) {
        failed(error);
      }
    } });
    main.replaceChildren(el("h1", { class: "visually-hidden" }, "Tweet"), article,
      el("p", {}, el("a", { href: `/@${status.account.username}`, "data-route": true },
        `More from @${status.account.acct}`)));
    article.focus();
  } catch (error) {
    if (!shown(current)) return;
    main.replaceChildren(el("p", { class: "error" }, error.status === 404
      ? "This tweet isn't here: it was deleted, or it isn't yours to see." : error.message));
  }
}

// --- Follow requests -----------------------------------------------------------------------

async function requestsView() {
  const current = show({ stop() {} }, "Follow requests");
  const list = el("ul", { class: "requests" });
  const more = el("button", { type: "button", class: "retry", hidden: true }, "Show more");
  const none = el("p", { class: "empty", hidden: true }, "No one is waiting for your approval.");
  main.replaceChildren(el("h1", {}, "Follow requests"), list, none, more);
  const item = (account) => {
    const answered = el("li", { "data-account": account.username },
      el("a", { href: `/@${account.username}`, "data-route": true }, account.display_name || account.username,
        " ", el("span", { class: "acct" }, `@${account.acct}`)));
    const answer = async (verb) => {
      for (const button of answered.querySelectorAll("button")) button.disabled = true;
      try {
        await api.post(`/api/v1/follow_requests/${account.id}/${verb}`);
        answered.replaceChildren(el("span", {},
          `@${account.acct} ${verb === "authorize" ? "now follows you" : "was declined"}.`));
      } catch (error) {
        for (const button of answered.querySelectorAll("button")) button.disabled = false;
        failed(error);
      }
    };
    answered.append(
      el("button", { type: "button", class: "primary approve", onclick: () => answer("authorize") }, "Approve"),
      el("button", { type: "button", class: "reject", onclick: () => answer("reject") }, "Decline"));
    return answered;
  };
  // A page at a time, following `Link: rel="next"` when asked for more.
  const load = async (path) => {
    more.hidden = true;
    try {
      const { data, links } = await api.get(path);
      if (!shown(current)) return;
      list.append(...data.map(item));
      none.hidden = list.children.length > 0;
      if (links.next && data.length) {
        more.hidden = false;
        more.onclick = () => load(links.next);
      }
    } catch (error) {
      failed(error);
    }
  };
  await load("/api/v1/follow_requests?limit=40");
}

// --- The keyboard --------------------------------------------------------------------------

// The one-key shortcuts work while the reader is reading (the focus on the page, the timeline
// or a tweet), never while they type or are on a link or a button.
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, textarea, select, [contenteditable]")) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const reading = event.target === document.body || event.target === main || event.target.matches("article.status");
  if (!reading) return;
  const articles = [...main.querySelectorAll("article.status")];
  const at = articles.indexOf(document.activeElement);
  if (event.key === "j" || event.key === "k") {
    const next = articles[event.key === "j" ? at + 1 : Math.max(at - 1, 0)];
    if (next) {
      event.preventDefault();
      next.focus();
      next.scrollIntoView({ block: "nearest" });
    }
  } else if (event.key === "n") {
    const text = document.getElementById("compose-text");
    if (text) {
      event.preventDefault();
      text.focus();
    }
  } else if (event.key === ".") {
    const bar = document.getElementById("new-bar");
    if (bar && !bar.hidden) bar.click();
  }
});

// --- Start ---------------------------------------------------------------------------------

async function start() {
  showOnline();
  document.getElementById("sign-out").addEventListener("click", () => auth.signOut(api));
  try {
    const returnTo = await auth.finishSignIn(api);
    if (returnTo && returnTo !== "/") history.replaceState(null, "", returnTo);
  } catch (error) {
    welcome(error.message);
    return;
  }
  if (!auth.token()) {
    welcome();
    return;
  }
  try {
    const [{ data: account }, { data: instance }] = await Promise.all([
      api.get("/api/v1/accounts/verify_credentials"), api.get("/api/v2/instance", { anonymous: true })]);
    me = account;
    streaming = instance.configuration?.urls?.streaming || null;
  } catch (error) {
    if (!auth.token()) return; // a 401: already back at the welcome
    main.replaceChildren(el("p", { class: "error", role: "alert" }, error.message),
      el("button", { type: "button", onclick: () => location.reload() }, "Try again"));
    return;
  }
  const nav = document.getElementById("nav");
  nav.hidden = false;
  const profileLink = document.getElementById("nav-profile");
  profileLink.href = `/@${me.username}`;
  profileLink.textContent = `@${me.username}`;
  route();
}

start();

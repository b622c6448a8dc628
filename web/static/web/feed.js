// A list of statuses paged by `Link` headers, newest first: the next page loads as its end
// comes into view, down to the very first tweet; new ones go on top, each id shown once.

import { el, statusElement } from "./dom.js";

export class Feed {
  constructor(api, { path, me, emptyText, onError }) {
    this.api = api;
    this.me = me;
    this.next = path;
    this.onError = onError;
    this.ids = new Set();
    this.list = el("div", { class: "feed", role: "feed", "aria-busy": "false" });
    this.empty = el("p", { class: "empty", hidden: true }, emptyText);
    this.end = el("p", { class: "end", hidden: true }, "You've reached the first tweet.");
    this.retry = el("button", { type: "button", class: "retry", hidden: true, onclick: () => this.more() },
      "Load more");
    this.sentinel = el("div", { class: "sentinel", "aria-hidden": "true" });
    this.element = el("section", {}, this.list, this.empty, this.retry, this.end, this.sentinel);
    this.loading = null;
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.more();
    }, { rootMargin: "600px 0px" });
    this.observer.observe(this.sentinel);
  }

  stop() {
    this.stopped = true;
    this.observer.disconnect();
  }

  get done() {
    return this.next === null;
  }

  /** Load the next (older) page, once at a time; resolves when it is shown. */
  more() {
    if (this.loading || this.done || this.stopped) return this.loading || Promise.resolve();
    this.list.setAttribute("aria-busy", "true");
    this.retry.hidden = true;
    this.loading = this.api.get(this.next).then(({ data, links }) => {
      for (const status of data) this.append(status);
      this.next = data.length && links.next ? links.next : null;
      this.empty.hidden = !(this.done && this.ids.size === 0);
      this.end.hidden = !(this.done && this.ids.size > 0);
    }).catch((error) => {
      this.retry.hidden = false;
      this.onError(error);
    }).finally(() => {
      this.loading = null;
      this.list.setAttribute("aria-busy", "false");
      // Observed afresh, the sentinel is reported as it is at the next frame. Otherwise a
      // sentinel that was in view, was pushed out by this page and was scrolled back in
      // before any frame (or a short page that never pushed it out) is never reported again.
      this.observer.unobserve(this.sentinel);
      if (!this.done && !this.stopped && this.retry.hidden) this.observer.observe(this.sentinel);
    });
    return this.loading;
  }

  elementOf(status) {
    return statusElement(status, { me: this.me, onDelete: (shown, article) => this.delete(shown, article) });
  }

  append(status) {
    if (this.ids.has(status.id)) return;
    this.ids.add(status.id);
    this.list.append(this.elementOf(status));
  }

  /** Put newer statuses (any order) on top, newest first; true if any was new here. */
  prepend(statuses) {
    const fresh = statuses.filter((status) => !this.ids.has(status.id))
      .sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    for (const status of fresh) {
      this.ids.add(status.id);
      this.list.prepend(this.elementOf(status));
    }
    if (fresh.length) this.empty.hidden = true;
    return fresh.length > 0;
  }

  remove(id) {
    if (!this.ids.delete(id)) return;
    this.list.querySelector(`[data-id="${CSS.escape(id)}"]`)?.remove();
    this.empty.hidden = !(this.done && this.ids.size === 0);
  }

  newestId() {
    return this.list.firstElementChild?.dataset.id ?? null;
  }

  async delete(status, article) {
    for (const button of article.querySelectorAll(".actions button")) button.disabled = true;
    try {
      await this.api.delete(`/api/v1/statuses/${status.id}`);
    } catch (error) {
      if (error.status !== 404) { // a 404: already gone, so gone from here too
        for (const button of article.querySelectorAll(".actions button")) button.disabled = false;
        this.onError(error);
        return;
      }
    }
    const next = article.nextElementSibling || article.previousElementSibling;
    this.remove(status.id);
    next?.focus();
  }

  /** The first status whose bottom is below `top` pixels: where the reader is. */
  topmostVisible(top) {
    for (const article of this.list.children) {
      if (article.getBoundingClientRect().bottom > top) return article.dataset.id;
    }
    return null;
  }

  /** Load pages until `id` (or an older one) is shown, at most `pages` more; its article or null. */
  async reach(id, pages) {
    const target = BigInt(id);
    for (let page = 0; ; page += 1) {
      const found = this.list.querySelector(`[data-id="${CSS.escape(id)}"]`);
      if (found) return found;
      const oldest = this.list.lastElementChild?.dataset.id;
      if (this.done || page >= pages || (oldest && BigInt(oldest) < target)) return null;
      await this.more();
    }
  }
}

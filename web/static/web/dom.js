// Building the page: elements from data, statuses, and the server's status HTML made safe.

/** `el("a", {href, class: "x", onclick}, "text", child)`: an element, never parsed HTML. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const KEPT = new Set(["P", "BR", "A", "SPAN"]);

/** A status's `content` (the server's HTML) with only paragraphs, breaks, spans and web links. */
export function safeContent(html) {
  const parsed = new DOMParser().parseFromString(html, "text/html");
  const copy = (source, target) => {
    for (const node of source.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        target.append(node.textContent);
      } else if (node.nodeType === Node.ELEMENT_NODE) {
        if (!KEPT.has(node.tagName)) {
          copy(node, target);
          continue;
        }
        const kept = document.createElement(node.tagName);
        if (node.tagName === "A") {
          const href = node.getAttribute("href") || "";
          if (/^https?:\/\//i.test(href)) {
            kept.setAttribute("href", href);
            kept.setAttribute("rel", "nofollow noopener noreferrer");
            kept.setAttribute("target", "_blank");
          }
        }
        copy(node, kept);
        target.append(kept);
      }
    }
  };
  const fragment = document.createDocumentFragment();
  copy(parsed.body, fragment);
  return fragment;
}

const RELATIVE = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

export function ago(iso) {
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  const steps = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"], [Infinity, "week"]];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return RELATIVE.format(Math.round(value), unit);
    value /= size;
  }
  return iso;
}

/** A status as an article; `onDelete(status, article)` when it is the reader's own. */
export function statusElement(status, { me, onDelete }) {
  const account = status.account;
  const media = status.media_attachments.map((attachment) => el("a", { href: attachment.url, target: "_blank",
    rel: "noopener", class: "attachment" },
  attachment.type === "video"
    ? el("video", { src: attachment.url, controls: true, preload: "metadata" })
    : el("img", { src: attachment.preview_url || attachment.url, alt: attachment.description || "An image",
      loading: "lazy" })));
  const article = el("article", { class: "status", "data-id": status.id, tabindex: "0",
    "aria-labelledby": `author-${status.id} content-${status.id}` },
  el("header", {},
    el("a", { href: `/@${account.username}`, "data-route": true, class: "author", id: `author-${status.id}` },
      el("strong", {}, account.display_name || account.username), " ",
      el("span", { class: "acct" }, `@${account.acct}`)),
    el("a", { href: `/@${account.username}/${status.id}`, "data-route": true, class: "permalink" },
      el("time", { datetime: status.created_at, title: new Date(status.created_at).toLocaleString() },
        ago(status.created_at)))),
  el("div", { class: "content", id: `content-${status.id}` }, safeContent(status.content)),
  media.length ? el("div", { class: `media media-${media.length}` }, media) : null);
  if (me && account.id === me.id && onDelete) {
    const actions = el("div", { class: "actions" });
    const ask = () => {
      actions.replaceChildren(
        el("span", {}, "Delete this tweet? "),
        el("button", { type: "button", class: "danger confirm-delete", onclick: () => onDelete(status, article) },
          "Delete"),
        el("button", { type: "button", onclick: () => { actions.replaceChildren(button); button.focus(); } },
          "Keep"));
      actions.querySelector(".confirm-delete").focus();
    };
    const button = el("button", { type: "button", class: "delete", onclick: ask }, "Delete");
    actions.append(button);
    article.append(actions);
  }
  return article;
}

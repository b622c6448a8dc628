// Compose: a counter that counts as the server does, images uploaded straight to storage
// (POST /v1/media presigns, then the browser POSTs the file to the storage's URL, with
// progress), and the post itself (POST /api/v1/statuses with an Idempotency-Key, so a retry
// after a lost answer posts once).

import { ApiError, megabytes, OFFLINE } from "./api.js";
import { countingRules, makeCounter } from "./count.js";
import { el } from "./dom.js";

function idempotencyKey() {
  return crypto.randomUUID ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// The direct upload: a multipart POST of the presigned fields and the file, reporting progress.
function upload(target, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(target.fields)) form.append(name, value);
    form.append("file", file);
    const request = new XMLHttpRequest();
    request.open("POST", target.url);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) resolve();
      else if (request.status === 413 || /EntityTooLarge/.test(request.responseText)) {
        reject(new ApiError("Storage refused the file: it is too large.", { status: 413 }));
      } else reject(new ApiError(`Storage refused the upload (HTTP ${request.status}).`, { status: request.status }));
    });
    request.addEventListener("error", () => reject(new ApiError(OFFLINE)));
    request.send(form);
  });
}

export class Compose {
  constructor(api, config, { onPosted, onError }) {
    this.api = api;
    this.config = config;
    this.count = null; // until the server's counting rules are in; the server checks the length anyway
    countingRules(config.counting_rules_url).then((rules) => {
      this.count = makeCounter(rules);
      this.update();
    }).catch(() => this.say("The character counter could not load; the server still checks the length."));
    this.onPosted = onPosted;
    this.onError = onError;
    this.attachments = [];
    this.key = idempotencyKey();

    this.text = el("textarea", { id: "compose-text", rows: "3", placeholder: "What's happening?" });
    this.counter = el("span", { id: "compose-counter", class: "counter", "aria-hidden": "true" });
    // Said to screen readers only near the limit and past it, not at every key.
    this.counterSaid = el("span", { class: "visually-hidden", "aria-live": "polite" });
    this.file = el("input", { type: "file", id: "compose-file", class: "visually-hidden", tabindex: "-1",
      accept: Object.keys(config.media_types).join(","), multiple: true });
    this.attach = el("button", { type: "button", id: "compose-attach" }, "Add image");
    this.post = el("button", { type: "submit", id: "compose-post", class: "primary" }, "Post");
    this.list = el("ul", { class: "attachments", "aria-label": "Attached images" });
    this.message = el("p", { class: "compose-error", role: "alert", hidden: true });
    this.element = el("form", { id: "compose", class: "compose", "aria-label": "Write a tweet" },
      el("label", { for: "compose-text", class: "visually-hidden" }, "Your tweet"),
      this.text, this.list, this.message,
      el("div", { class: "compose-tools" }, this.attach, this.file, this.counter, this.counterSaid, this.post));

    this.text.addEventListener("input", () => { this.key = idempotencyKey(); this.update(); });
    this.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) this.element.requestSubmit();
    });
    this.attach.addEventListener("click", () => this.file.click());
    this.file.addEventListener("change", () => {
      for (const file of this.file.files) this.add(file);
      this.file.value = "";
    });
    this.element.addEventListener("submit", (event) => { event.preventDefault(); this.submit(); });
    this.update();
  }

  say(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }

  update() {
    const left = this.count ? this.config.max_characters - this.count(this.text.value) : null;
    this.counter.textContent = left === null ? "" : String(left);
    this.counter.classList.toggle("over", left !== null && left < 0);
    const said = left === null || left > 20 ? "" : left < 0 ? `${-left} characters too many` : `${left} characters left`;
    if (this.counterSaid.textContent !== said) this.counterSaid.textContent = said;
    const uploading = this.attachments.some((a) => !a.mediaId);
    const blank = !this.text.value.trim() && this.attachments.length === 0;
    this.post.disabled = (left !== null && left < 0) || blank || uploading || this.posting;
    this.attach.disabled = this.attachments.length >= this.config.max_media;
  }

  add(file) {
    this.say("");
    const limit = this.config.media_types[file.type];
    if (limit === undefined) {
      this.say(`${file.name} can't be attached: only ${Object.keys(this.config.media_types)
        .map((t) => t.split("/")[1].toUpperCase()).join(", ")} files can.`);
      return;
    }
    if (file.size > limit) {
      this.say(`${file.name} is too large (${megabytes(file.size)}); the most is ${megabytes(limit)}.`);
      return;
    }
    if (this.attachments.length >= this.config.max_media) {
      this.say(`A tweet carries at most ${this.config.max_media} images.`);
      return;
    }
    const preview = URL.createObjectURL(file);
    const progress = el("progress", { max: "1", value: "0", "aria-label": `Uploading ${file.name}` });
    const remove = el("button", { type: "button", class: "remove", "aria-label": `Remove ${file.name}` }, "×");
    const item = el("li", { class: "attachment uploading" },
      file.type.startsWith("video/") ? el("video", { src: preview, muted: true })
        : el("img", { src: preview, alt: `Preview of ${file.name}` }),
      progress, remove);
    const attachment = { file, item, preview, mediaId: null };
    this.key = idempotencyKey();
    remove.addEventListener("click", () => {
      this.key = idempotencyKey(); // another post now: the server would refuse the key with other media
      this.attachments = this.attachments.filter((a) => a !== attachment);
      item.remove();
      URL.revokeObjectURL(preview);
      this.update();
      this.attach.focus();
    });
    this.attachments.push(attachment);
    this.list.append(item);
    this.update();
    this.api.post("/v1/media", { json: { content_type: file.type, size_bytes: file.size } })
      .then(({ data }) => upload(data.upload, file, (share) => { progress.value = share; })
        .then(() => data.media_id))
      .then((mediaId) => {
        attachment.mediaId = mediaId;
        progress.value = 1;
        item.classList.remove("uploading");
        item.classList.add("uploaded");
        item.dataset.mediaId = mediaId;
        this.update();
      })
      .catch((error) => {
        this.attachments = this.attachments.filter((a) => a !== attachment);
        item.remove();
        URL.revokeObjectURL(preview);
        this.say(`${file.name}: ${error.message}`);
        this.update();
      });
  }

  async submit() {
    this.update();
    if (this.post.disabled) return;
    this.posting = true;
    this.update();
    this.say("");
    try {
      const { data } = await this.api.post("/api/v1/statuses", {
        json: { status: this.text.value, media_ids: this.attachments.map((a) => a.mediaId) },
        headers: { "Idempotency-Key": this.key },
      });
      this.text.value = "";
      for (const attachment of this.attachments) {
        attachment.item.remove();
        URL.revokeObjectURL(attachment.preview);
      }
      this.attachments = [];
      this.key = idempotencyKey();
      this.onPosted(data);
    } catch (error) {
      this.say(error.message);  // the draft stays, and the same key posts it once on a retry
    } finally {
      this.posting = false;
      this.update();
    }
  }
}

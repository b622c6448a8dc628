// The home timeline as it happens: Mastodon's streaming WebSocket (`stream=user`), at the
// address the instance document names, the token sent as the WebSocket protocol (as
// Mastodon's own web app sends it, so it never appears in a URL). When the connection drops
// it comes back, with growing pauses, and says so (`onOpen(again)`) so the page can fetch
// what it missed meanwhile.

export class Live {
  constructor(streamingUrl, token, { onUpdate, onDelete, onOpen }) {
    this.url = `${streamingUrl.replace(/\/$/, "")}/api/v1/streaming?stream=user`;
    this.token = token;
    this.handlers = { onUpdate, onDelete, onOpen };
    this.pause = 1000;
    this.opened = false;
    this.stopped = false;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    const socket = new WebSocket(this.url, this.token);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.pause = 1000;
      this.handlers.onOpen(this.opened);
      this.opened = true;
    });
    socket.addEventListener("message", (message) => {
      let frame;
      let status;
      try {
        frame = JSON.parse(message.data);
        if (frame.event === "update") status = JSON.parse(frame.payload);
      } catch {
        return; // not a frame of Mastodon's: nothing to show
      }
      if (frame.event === "update") this.handlers.onUpdate(status);
      else if (frame.event === "delete") this.handlers.onDelete(String(frame.payload));
    });
    socket.addEventListener("close", () => {
      if (this.stopped) return;
      setTimeout(() => this.connect(), this.pause);
      this.pause = Math.min(this.pause * 2, 30_000);
    });
  }

  stop() {
    this.stopped = true;
    this.socket?.close();
  }
}

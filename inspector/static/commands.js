// Device commands on the console (docs/design.md, "Device commands"): a service's logs panel (tail,
// follow, download) filling the slot app.js leaves for it, and a ping shown on the device page. Both
// ask the device's agent through this server (/api/commands/…); env values come back as <redacted>.
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const enc = encodeURIComponent;

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { status: r.status, offline: body.offline === true });
  return body;
}

function span(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${m % 60}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
}

/**
 * Where a follow stands: the runtime stamps lines to the second, so asking again from the last
 * line's time gets that second's lines again; they are skipped by count (as fleetctl logs -f does).
 */
class FollowCursor {
  constructor(lines) {
    this.at = null;
    this.seenAtLast = 0;
    this.advance(lines);
  }
  fresh(lines) {
    let skip = 0;
    while (skip < lines.length && skip < this.seenAtLast && lines[skip].at === this.at) skip++;
    const out = lines.slice(skip);
    this.advance(out);
    return out;
  }
  advance(lines) {
    for (const l of lines) {
      if (l.at === this.at) this.seenAtLast++;
      else {
        this.at = l.at;
        this.seenAtLast = 1;
      }
    }
  }
}

const TAILS = [50, 200, 1000, 10000];
const DEFAULT_TAIL = 200;
const FOLLOW_EVERY_MS = 1000;
/** The newest lines a panel keeps on the page while following. */
const KEEP_LINES = 10000;

const lineHtml = (l) =>
  `<div class="log-line log-${esc(l.stream)}"><time class="log-at" datetime="${esc(l.at)}" title="${esc(l.at)}">${esc(l.at.slice(11, 19))}</time><span class="log-stream">${l.stream === "stderr" ? "err" : "out"}</span><span class="log-text">${esc(l.text)}</span></div>`;

class LogsPanel {
  constructor(el, { device, deployment, service }) {
    this.el = el;
    this.target = { device, deployment, service };
    this.cursor = null;
    this.timer = null;
    this.asking = false;
    this.stopped = false;
    el.classList.add("logs-panel");
    el.innerHTML = `<div class="logs-bar">
        <label>tail <select class="logs-tail">${TAILS.map((n) => `<option value="${n}"${n === DEFAULT_TAIL ? " selected" : ""}>${n}</option>`).join("")}</select></label>
        <label><input type="checkbox" class="logs-follow"> follow</label>
        <a class="logs-download" download>download</a>
        <span class="logs-status" role="status"></span>
      </div>
      <div class="logs-lines" tabindex="0"></div>`;
    this.linesEl = el.querySelector(".logs-lines");
    this.statusEl = el.querySelector(".logs-status");
    this.tailEl = el.querySelector(".logs-tail");
    this.followEl = el.querySelector(".logs-follow");
    this.tailEl.addEventListener("change", () => this.load());
    this.followEl.addEventListener("change", () => (this.followEl.checked ? this.schedule() : this.pause()));
  }

  query(extra = {}) {
    const q = new URLSearchParams({ ...this.target, tail: this.tailEl.value, ...extra });
    return q.toString();
  }

  status(text, bad = false) {
    this.statusEl.textContent = text;
    this.statusEl.classList.toggle("bad", bad);
  }

  async load() {
    this.pause();
    this.el.querySelector(".logs-download").href = `/api/commands/logs.txt?${this.query()}`;
    this.status("asking the device…");
    try {
      const r = await get(`/api/commands/logs?${this.query()}`);
      if (this.stopped) return;
      this.linesEl.innerHTML = r.lines.map(lineHtml).join("") || '<div class="log-none">no output</div>';
      this.cursor = new FollowCursor(r.lines);
      this.count = r.lines.length;
      this.status(`${r.lines.length} lines${r.truncated ? " · older lines left out (a reply holds at most the server's max payload)" : ""}`);
      this.linesEl.scrollTop = this.linesEl.scrollHeight;
    } catch (e) {
      this.linesEl.innerHTML = "";
      this.status(e.offline ? e.message : `logs: ${e.message}`, true);
      return;
    }
    if (this.followEl.checked) this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => this.poll(), FOLLOW_EVERY_MS);
  }

  pause() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  stop() {
    this.stopped = true;
    this.pause();
  }

  /** One ask of a follow: the lines since the last one shown, while the panel is on the page. */
  async poll() {
    if (!this.el.isConnected) return this.stop();
    if (!this.followEl.checked || !this.cursor) return;
    if (this.el.closest("[hidden]")) return this.schedule(); // folded away: ask again once it is shown
    try {
      const since = this.cursor.at;
      const r = await get(`/api/commands/logs?${this.query({ tail: "10000", ...(since ? { since } : {}) })}`);
      if (this.stopped) return;
      const fresh = this.cursor.fresh(r.lines);
      if (fresh.length) {
        const atBottom = this.linesEl.scrollHeight - this.linesEl.scrollTop - this.linesEl.clientHeight < 24;
        this.linesEl.querySelector(".log-none")?.remove();
        this.linesEl.insertAdjacentHTML("beforeend", fresh.map(lineHtml).join(""));
        while (this.linesEl.childElementCount > KEEP_LINES) this.linesEl.firstElementChild.remove();
        if (atBottom) this.linesEl.scrollTop = this.linesEl.scrollHeight;
        this.count += fresh.length;
      }
      this.status(`${this.count} lines · following${r.truncated ? " · some lines left out" : ""}`);
    } catch (e) {
      this.status(e.offline ? e.message : `follow: ${e.message}`, true);
    }
    this.schedule();
  }
}

const panels = new WeakMap();

/** Renders (or renders again) the logs panel of one service into `el`. */
function logsPanel(el, target) {
  panels.get(el)?.stop();
  const p = new LogsPanel(el, target);
  panels.set(el, p);
  void p.load();
}

/** Each device's last ping answer: a page that redraws on every report shows it again without asking. */
const pings = new Map();
const PING_FRESH_MS = 15_000;

/**
 * Shows in `el` whether `device`'s agent answers a ping: online with its round trip, version and
 * uptime, or offline. Asks again when the last answer is older than PING_FRESH_MS, or `again`.
 */
async function pingInto(el, device, { again = false } = {}) {
  const last = pings.get(device);
  if (last && !again && Date.now() - last.at < PING_FRESH_MS) return showPing(el, last);
  el.className = "ping pending";
  el.textContent = "pinging…";
  let result;
  try {
    const r = await get(`/api/commands/ping?device=${enc(device)}`);
    result = r.online
      ? { at: Date.now(), ok: true, text: `answers a ping in ${r.rtt_ms} ms · agent ${r.agent_version} · up ${span(r.uptime_secs * 1000)}`, title: `answered at ${r.at}` }
      : { at: Date.now(), ok: false, text: "offline: its agent does not answer a ping", title: r.error };
  } catch (e) {
    result = { at: Date.now(), ok: false, text: `ping: ${e.message}`, title: e.message };
  }
  pings.set(device, result);
  showPing(el, result);
}

function showPing(el, r) {
  el.className = `ping ${r.ok ? "online" : "offline"}`;
  el.textContent = r.text;
  el.title = r.title;
}

window.fleetConsole = Object.assign(window.fleetConsole || {}, { logsPanel, pingInto });

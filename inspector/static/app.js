// The operator console: fleet summary, devices, one device, one deployment's visualiser, comparisons,
// and the actions (retry, delete, restart a service) behind a confirmation. Plain ES modules, no
// dependencies, no network beyond this server. Env values never reach this page. Fields the agents
// add over time (per-service status, retry_at, tick_secs, signing) are read where present.
const app = document.getElementById("app");
const crumbs = document.getElementById("crumbs");
const liveBadge = document.getElementById("live");

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const short = (id) => String(id ?? "").slice(0, 12);
const enc = encodeURIComponent;
const api = async (path, init) => {
  const r = await fetch(path, { cache: "no-store", ...init });
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { status: r.status });
  return body;
};
function dur(ms) {
  if (ms == null || !isFinite(ms)) return "–";
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${m % 60}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
}
const ago = (iso) => (iso ? dur(Date.now() - Date.parse(iso)) : "–");
const until = (iso) => (iso ? (Date.parse(iso) > Date.now() ? `in ${dur(Date.parse(iso) - Date.now())}` : "due now") : "–");
const phase = (p) => `<span class="badge phase-${esc(p)}">${esc(p)}</span>`;
// What a device's reports can be trusted for: it applies unsigned desired states (UNSIGNED), a report
// it did not sign (FORGED), no key recorded to check against (UNVERIFIED). docs/design.md, "Report signatures".
const badge = (cls, text, title) => `<span class="badge ${cls}" title="${esc(title)}">${esc(text)}</span>`;
function deviceTrust(d) {
  const out = [];
  if (d.signing === "off") out.push(badge("unsigned", "UNSIGNED", "applies desired states without an operator's signature (no --operator-keys)"));
  if (d.signing === "unknown") out.push(badge("unverified", "signing unknown", "no device-info"));
  for (const [what, c] of [["info", d.checks?.info], ["heartbeat", d.checks?.heartbeat]]) {
    if (c?.verdict === "forged") out.push(badge("forged", `FORGED ${what}`, c.why));
  }
  const checks = [d.checks?.info, d.checks?.heartbeat, ...Object.values(d.checks?.deployments || {})];
  const unverified = checks.find((c) => c?.verdict === "unverified");
  if (unverified) out.push(badge("unverified", "UNVERIFIED", unverified.why));
  return out.join(" ");
}
const stateTrust = (d, deployment) => {
  const c = d.checks?.deployments?.[deployment];
  return c?.verdict === "forged" ? badge("forged", "FORGED", c.why) : "";
};
const devLink = (d) => `<a href="#/device/${enc(d)}" class="device-link">${esc(d)}</a>`;
const depHref = (d, dep) => `#/d/${enc(d)}/${enc(dep)}`;
const containers = (ids, unknown = [], partial = false) => {
  const known = Object.entries(ids || {}).map(([svc, id]) => `<span class="container" data-service="${esc(svc)}"><span class="svc">${esc(svc)}</span> <code class="container-id" title="${esc(id)}">${esc(short(id))}</code></span>`);
  const unk = unknown.map((svc) => `<span class="container unknown" data-service="${esc(svc)}" title="set before this page"><span class="svc">${esc(svc)}</span> <code>?</code></span>`);
  const all = [...known, ...unk].join("");
  return (all || '<span class="faint">none</span>') + (partial ? ' <span class="note">· any set before this page not shown</span>' : "");
};
const imagesOf = (services) =>
  `<div class="images">${services.map((s) => `<span class="image-line" data-service="${esc(s.service)}"><span class="svc">${esc(s.service)}</span> <span class="image">${esc(s.image ?? "?")}</span>${s.image_source === "desired" ? '<span class="tag-desired" title="from the desired state: this agent does not report per-service images">desired</span>' : ""}</span>`).join("") || '<span class="faint">–</span>'}</div>`;

// ---- toast and confirmation ------------------------------------------------------------------
const toastEl = document.getElementById("toast");
let toastTimer = null;
function toast(text, bad = false) {
  toastEl.textContent = text;
  toastEl.className = `toast${bad ? " bad" : ""}`;
  toastEl.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (toastEl.hidden = true), 6000);
}

const dialog = document.getElementById("confirm");
/** Asks before acting; `typed` makes the operator type a word (a deletion). Resolves true when confirmed. */
function confirmAction({ title, text, button, typed, danger = true }) {
  dialog.querySelector(".confirm-title").textContent = title;
  dialog.querySelector(".confirm-text").textContent = text;
  const label = dialog.querySelector(".confirm-typed");
  const input = label.querySelector("input");
  const ok = dialog.querySelector("button.ok");
  label.hidden = !typed;
  input.value = "";
  dialog.querySelector(".confirm-word").textContent = typed || "";
  dialog.querySelector(".confirm-error").hidden = true;
  ok.textContent = button;
  ok.className = `ok ${danger ? "danger" : "primary"}`;
  ok.disabled = Boolean(typed);
  input.oninput = () => (ok.disabled = input.value !== typed);
  dialog.returnValue = "";
  dialog.showModal();
  (typed ? input : dialog.querySelector("button.cancel")).focus();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

/** The three actions, each confirmed first; the server checks `confirm` names the same target. */
const actions = {
  async retry(device, deployment) {
    const target = `${device}/${deployment}`;
    if (!(await confirmAction({ title: `Retry ${target}?`, text: "Writes the same desired state again. The agent retries a failed deployment when the same score arrives at a newer revision.", button: "Retry", danger: false }))) return;
    await act("retry", { device, deployment, confirm: target }, (r) => `retry written: revision ${r.revision} (was ${r.previous_revision})`);
  },
  async delete(device, deployment) {
    const target = `${device}/${deployment}`;
    if (!(await confirmAction({ title: `Delete ${target}?`, text: "Deletes its desired state. The agent stops and removes every container of this deployment.", button: "Delete", typed: deployment }))) return;
    await act("delete", { device, deployment, confirm: target }, (r) => `deleted ${target} (was revision ${r.deleted_revision})`);
  },
  async restart(device, deployment, service) {
    const target = `${device}/${deployment}/${service}`;
    if (!(await confirmAction({ title: `Restart ${service}?`, text: `Asks ${device} to restart the container of ${service} in ${deployment} now.`, button: "Restart" }))) return;
    await act("restart", { device, deployment, service, confirm: target }, (r) => `restarted ${service}: ${short(r.id)}`);
  },
};
async function act(verb, body, done) {
  try {
    const r = await api(`/api/actions/${verb}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    toast(done(r));
  } catch (e) {
    toast(`${verb}: ${e.message}`, true);
  }
}
document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-action]");
  if (!b) return;
  e.preventDefault();
  const { action, device, deployment, service } = b.dataset;
  actions[action]?.(device, deployment, service);
});
const actionButtons = (row) =>
  `<span class="actions">${row.phase === "Failed" ? `<button class="small" data-action="retry" data-device="${esc(row.device)}" data-deployment="${esc(row.deployment)}">Retry</button>` : ""}
   <button class="small danger" data-action="delete" data-device="${esc(row.device)}" data-deployment="${esc(row.deployment)}">Delete</button></span>`;

// ---- per-service logs: the slot a logs panel fills ---------------------------------------------
/**
 * Renders a service's logs into `el`. Logs come over the device command `fleet.cmd.<device>.logs`
 * (docs/design.md, device commands); until this build has them the slot says so. A logs panel
 * replaces this function through `window.fleetConsole.logsPanel`.
 */
function logsPanel(el, { device, deployment, service }) {
  el.innerHTML = `<span class="faint">Logs of ${esc(service)} on ${esc(device)}/${esc(deployment)} come with device commands; not available in this build.</span>`;
}
window.fleetConsole = { logsPanel };

function servicesTable(device, deployment, services) {
  if (!services.length) return '<p class="faint">no services reported</p>';
  const rows = services.map((s) => {
    const key = `${deployment}/${s.service}`;
    return `<tr class="service-row" data-service="${esc(s.service)}">
      <td><b>${esc(s.service)}</b></td>
      <td class="image mono">${esc(s.image ?? "?")}${s.image_source === "desired" ? '<span class="tag-desired" title="from the desired state: this agent does not report per-service images">desired</span>' : ""}</td>
      <td class="svc-state svc-state-${esc(s.state ?? "")}">${esc(s.state ?? "–")}</td>
      <td class="health health-${esc(s.health ?? "")}">${esc(s.health ?? "–")}</td>
      <td class="restarts">${s.restarts ?? "–"}${s.restart_at ? ` <span class="note">next ${esc(until(s.restart_at))}</span>` : ""}</td>
      <td class="exit">${s.last_exit_code ?? "–"}</td>
      <td>${s.container_id ? `<code class="container-id" title="${esc(s.container_id)}">${esc(short(s.container_id))}</code>` : '<span class="faint">–</span>'}</td>
      <td><span class="actions"><button class="small" data-action="restart" data-device="${esc(device)}" data-deployment="${esc(deployment)}" data-service="${esc(s.service)}">Restart</button>
        <button class="small logs-toggle" data-key="${esc(key)}" data-service="${esc(s.service)}">Logs</button></span></td></tr>
      <tr class="logs-row" data-key="${esc(key)}" hidden><td colspan="8"><div class="service-logs" data-device="${esc(device)}" data-deployment="${esc(deployment)}" data-service="${esc(s.service)}"></div></td></tr>`;
  });
  return `<div class="table-wrap"><table class="services"><colgroup><col style="width:13%"><col style="width:24%"><col style="width:9%"><col style="width:9%"><col style="width:9%"><col style="width:6%"><col style="width:13%"><col style="width:17%"></colgroup>
    <thead><tr><th>service</th><th>image</th><th>state</th><th>health</th><th>restarts</th><th>exit</th><th>container</th><th></th></tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
}
document.addEventListener("click", (e) => {
  const b = e.target.closest("button.logs-toggle");
  if (!b) return;
  const row = document.querySelector(`tr.logs-row[data-key="${CSS.escape(b.dataset.key)}"]`);
  if (!row) return;
  row.hidden = !row.hidden;
  if (!row.hidden) {
    const el = row.querySelector(".service-logs");
    window.fleetConsole.logsPanel(el, { ...el.dataset });
  }
});

// ---- live feed ---------------------------------------------------------------------------
let chart = null;
/** Asked for at once: a view's first data request need not wait for it. */
const chartReady = api("/api/chart");
let view = null; // { render(), onEvent(type, data), dispose() }
/** Bumped on every route: a view's late answer (a debounced reload) must not draw over the next view. */
let generation = 0;
const current = () => { const g = generation; return () => g === generation; };
const source = new EventSource("/api/events");
source.onopen = () => { liveBadge.textContent = "live"; liveBadge.className = "live on"; };
source.onerror = () => { liveBadge.textContent = "reconnecting"; liveBadge.className = "live off"; };
for (const type of ["state", "desired", "heartbeat", "info", "journal"]) {
  source.addEventListener(type, (m) => view?.onEvent?.(type, JSON.parse(m.data)));
}
const debounce = (f, ms) => { let t = null; return () => { clearTimeout(t); t = setTimeout(f, ms); }; };
const keyOf = (e) => e.key ?? (e.deployment ? `${e.device}.${e.deployment}` : e.device);

// ---- routing -----------------------------------------------------------------------------
window.addEventListener("hashchange", route);
async function route() {
  const h = location.hash.slice(1) || "/";
  const [path, query] = h.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const q = new URLSearchParams(query || "");
  view?.dispose?.();
  view = null;
  generation++;
  try {
    if (parts[0] === "d" && parts.length === 3) view = deploymentView(parts[1], parts[2]);
    else if (parts[0] === "device" && parts.length === 2) view = deviceView(parts[1]);
    else if (parts[0] === "compare") view = compareView(q.get("a"), q.get("b"));
    else if (parts[0] === "compare-devices") view = compareDevicesView(q.get("a"), q.get("b"));
    else view = fleetView(q);
    chart = chart ?? (await chartReady);
    await view.render();
  } catch (e) {
    app.innerHTML = `<div class="card error">${esc(e.message)}</div>`;
  }
}
const setCrumbs = (items) => {
  crumbs.innerHTML = items.map(([label, href]) => (href ? `<a href="${href}">${esc(label)}</a>` : `<span>${esc(label)}</span>`)).join('<span class="sep">/</span>');
};

// ---- fleet: summary, filter, devices and their deployments -----------------------------------
const FILTERS = ["all", "Running", "Pending", "Degraded", "Failed", "stale", "unsigned"];
function fleetView(q) {
  let data = null;
  let search = q.get("q") || "";
  let filter = FILTERS.includes(q.get("filter")) ? q.get("filter") : "all";
  const picked = new Set();
  const pickedDevices = new Set();
  const remember = () => history.replaceState(null, "", `#/?${new URLSearchParams({ ...(search ? { q: search } : {}), ...(filter !== "all" ? { filter } : {}) })}`);
  const matchesText = (d, s) => {
    if (!search) return true;
    const words = [d.device, d.info?.hostname, s?.deployment, s?.state, s?.phase, ...(s?.services ?? []).flatMap((x) => [x.service, x.image])];
    return search.toLowerCase().split(/\s+/).filter(Boolean).every((w) => words.some((x) => String(x ?? "").toLowerCase().includes(w)));
  };
  const PHASE_FILTERS = ["Running", "Pending", "Degraded", "Failed"];
  /** Devices left by the filter and the search, each with the deployments that match. */
  const visible = () =>
    data.devices.flatMap((d) => {
      if (filter === "stale" && !d.stale) return [];
      if (filter === "unsigned" && d.signing !== "off") return [];
      const byPhase = PHASE_FILTERS.includes(filter) ? filter : null;
      const deviceMatches = matchesText(d, null);
      const deps = d.deployments.filter((s) => (!byPhase || s.phase === byPhase) && (deviceMatches || matchesText(d, s)));
      return deps.length || (!byPhase && deviceMatches) ? [{ d, deps }] : [];
    });
  const card = (key, label, value, detail) =>
    `<button class="summary-card${filter === key ? " active" : ""}" data-key="${esc(key)}" title="show ${esc(label.toLowerCase())}"><div class="label">${esc(label)}</div><div class="value">${value}</div><div class="detail">${detail}</div></button>`;
  const draw = () => {
    if (!data) return;
    const s = data.summary;
    const rows = visible().map(({ d, deps }) => {
      const hb = d.heartbeat_age_ms === null ? "never" : dur(Date.now() - Date.parse(d.heartbeat.at));
      const head = `<tr class="device-row" data-device="${esc(d.device)}">
        <td><input type="checkbox" class="pick-device" data-device="${esc(d.device)}" ${pickedDevices.has(d.device) ? "checked" : ""} title="pick to compare devices" aria-label="compare ${esc(d.device)}">
          <span class="device-name">${devLink(d.device)}</span> ${d.stale ? '<span class="badge stale">STALE</span>' : ""} <span class="trust">${deviceTrust(d)}</span></td>
        <td colspan="4" class="muted">${esc(d.info ? `${d.info.hostname} · ${d.info.arch} · agent ${d.info.agent_version}${d.info.podman_version ? ` · podman ${d.info.podman_version}` : ""}` : "no device info")}</td>
        <td class="heartbeat" title="tick ${esc(d.tick_secs)} s${d.tick_from_device ? " (the device's own)" : ""}">${esc(hb)}</td></tr>`;
      const body = deps.map((r) => `<tr class="deployment-row" data-device="${esc(r.device)}" data-deployment="${esc(r.deployment)}" data-phase="${esc(r.phase)}">
          <td><input type="checkbox" class="pick" data-key="${esc(`${r.device}/${r.deployment}`)}" ${picked.has(`${r.device}/${r.deployment}`) ? "checked" : ""} title="pick to compare deployments" aria-label="compare ${esc(r.deployment)}">
            <a class="open" href="${depHref(r.device, r.deployment)}">${esc(r.deployment)}</a> ${stateTrust(d, r.deployment)}</td>
          <td>${phase(r.phase)}</td><td class="state mono">${esc(r.state)}</td><td>${imagesOf(r.services)}</td>
          <td class="containers">${containers(Object.fromEntries(r.services.filter((x) => x.container_id).map((x) => [x.service, x.container_id])))}</td>
          <td class="error">${esc(r.last_error ?? "")}${r.retry_at ? `<div class="note">retry ${esc(until(r.retry_at))}</div>` : ""}</td></tr>`);
      return head + body.join("");
    });
    app.innerHTML = `
      <div class="summary" id="summary">
        ${card("all", "Devices", s.devices, `${s.deployments} deployments`)}
        ${card("Running", "Running", s.phases.Running, "deployments")}
        ${card("Pending", "Pending", s.phases.Pending, "deployments")}
        ${card("Degraded", "Degraded", s.phases.Degraded, "deployments")}
        ${card("Failed", "Failed", s.phases.Failed, `${s.failing} failing in all`)}
        ${card("stale", "Stale", s.stale, `devices · ${s.unsigned} unsigned`)}
      </div>
      <div class="toolbar">
        <input type="search" id="search" placeholder="Search devices, deployments, images…" value="${esc(search)}" aria-label="search">
        <div class="chips">${FILTERS.map((f) => `<button class="chip${filter === f ? " active" : ""}" data-filter="${f}">${f}</button>`).join("")}</div>
        <span class="spacer"></span>
        <button id="cmp" ${picked.size === 2 ? "" : "disabled"}>Compare 2 deployments</button>
        <button id="cmpd" ${pickedDevices.size === 2 ? "" : "disabled"}>Compare 2 devices</button>
      </div>
      <div class="table-wrap"><table id="devices"><colgroup><col style="width:22%"><col style="width:9%"><col style="width:10%"><col style="width:22%"><col style="width:19%"><col style="width:18%"></colgroup>
        <thead><tr><th>device / deployment</th><th>phase</th><th>state</th><th>images</th><th>containers</th><th>heartbeat · last error</th></tr></thead>
        <tbody>${rows.join("") || `<tr><td colspan="6" class="muted">${data.devices.length ? "no device matches" : "no devices known"}</td></tr>`}</tbody></table></div>
      <p class="note">Stale: no heartbeat for ${esc(data.stale_ticks)} ticks of the device (its own tick when it reports one, else ${esc(data.tick_secs)} s).</p>`;
    const input = app.querySelector("#search");
    input.addEventListener("input", () => { search = input.value; remember(); redraw(); });
    app.querySelectorAll("[data-filter], .summary-card").forEach((b) => b.addEventListener("click", () => { filter = b.dataset.filter || b.dataset.key; remember(); redraw(); }));
    app.querySelectorAll("input.pick").forEach((c) => c.addEventListener("change", () => { c.checked ? picked.add(c.dataset.key) : picked.delete(c.dataset.key); redraw(); }));
    app.querySelectorAll("input.pick-device").forEach((c) => c.addEventListener("change", () => { c.checked ? pickedDevices.add(c.dataset.device) : pickedDevices.delete(c.dataset.device); redraw(); }));
    app.querySelector("#cmp").addEventListener("click", () => { const [a, b] = [...picked]; location.hash = `#/compare?a=${enc(a)}&b=${enc(b)}`; });
    app.querySelector("#cmpd").addEventListener("click", () => { const [a, b] = [...pickedDevices]; location.hash = `#/compare-devices?a=${enc(a)}&b=${enc(b)}`; });
  };
  // Keeps the search box's focus and caret across a redraw.
  const redraw = () => {
    const focused = document.activeElement?.id === "search";
    const caret = focused ? document.activeElement.selectionStart : null;
    draw();
    if (focused) { const i = app.querySelector("#search"); i.focus(); i.setSelectionRange(caret, caret); }
  };
  const live = current();
  const load = async () => { const d = await api("/api/fleet"); if (!live()) return; data = d; setCrumbs([["fleet"]]); redraw(); };
  const reload = debounce(() => load().catch(() => undefined), 300);
  const ticker = setInterval(() => app.querySelectorAll("tr.device-row").length && redraw(), 5000);
  return { render: load, onEvent: reload, dispose: () => clearInterval(ticker) };
}

// ---- one device ----------------------------------------------------------------------------
function deviceView(device) {
  const live = current();
  const load = async () => {
    const { device: d, stale_ticks } = await api(`/api/device?device=${enc(device)}`);
    if (!live()) return;
    setCrumbs([["fleet", "#/"], [device]]);
    const i = d.info;
    const hb = d.heartbeat ? ago(d.heartbeat.at) : "never";
    const deps = d.deployments.map((r) => `<div class="card deployment-card" data-deployment="${esc(r.deployment)}">
      <div class="card-head"><h3><a href="${depHref(device, r.deployment)}">${esc(r.deployment)}</a> ${phase(r.phase)} <span class="mono muted">${esc(r.state)}</span> ${stateTrust(d, r.deployment)}</h3>${actionButtons(r)}</div>
      <dl class="kv"><dt>score</dt><dd class="mono">${esc((r.score_hash ?? "–").slice(0, 19))} · revision ${esc(r.desired_revision ?? "–")}${r.desired_hash && r.desired_hash !== r.score_hash ? ` <span class="badge phase-Pending">desired ${esc(r.desired_hash.slice(7, 19))} not applied</span>` : ""}</dd>
        <dt>last event</dt><dd>${r.last_event_at ? `#${esc(r.last_event_seq)} · ${esc(ago(r.last_event_at))} ago` : '<span class="faint">none journaled</span>'}</dd>
        ${r.last_error ? `<dt>last error</dt><dd class="error">${esc(r.last_error)}</dd>` : ""}
        ${r.retry_at ? `<dt>next retry</dt><dd>${esc(until(r.retry_at))} <span class="muted">(${esc(new Date(r.retry_at).toLocaleString())})</span></dd>` : ""}</dl>
      <div style="margin-top:12px">${servicesTable(device, r.deployment, r.services)}</div></div>`);
    // The page is drawn again on every report: an open logs panel (and its follow) is kept as it is.
    const openLogs = [...app.querySelectorAll("tr.logs-row:not([hidden])")].map((r) => [r.dataset.key, r.querySelector(".service-logs")]);
    app.innerHTML = `<div class="page-head"><div><h2>${esc(device)} ${d.stale ? '<span class="badge stale">STALE</span>' : '<span class="badge phase-Running">online</span>'} <span class="trust">${deviceTrust(d)}</span>${d.signing === "on" ? ' <span class="badge neutral">signed only</span>' : ""}</h2>
        <div class="sub"><span>heartbeat ${esc(hb)} ago</span><span>tick ${esc(d.tick_secs)} s${d.tick_from_device ? "" : " (assumed)"}</span><span>stale after ${esc(stale_ticks)} ticks</span>
          <span class="ping-wrap"><span class="ping" id="device-ping"></span> <button class="small ping-again" type="button">ping</button></span></div></div>
        <a class="button" href="#/?q=${enc(device)}">in the fleet list</a></div>
      <div class="card"><dl class="device-facts" id="device-info"><div><dt>hostname</dt><dd>${esc(i?.hostname ?? "–")}</dd></div><div><dt>arch</dt><dd>${esc(i?.arch ?? "–")}</dd></div>
        <div><dt>agent</dt><dd>${esc(i?.agent_version ?? "–")}</dd></div><div><dt>podman</dt><dd>${esc(i?.podman_version ?? "–")}</dd></div>
        <div><dt>signing</dt><dd>${d.signing === "on" ? "applies only operator-signed desired state" : d.signing === "off" ? '<span class="error">off: applies unsigned desired state</span>' : "–"}</dd></div>
        <div><dt>device key</dt><dd class="mono">${d.device_key ? `${esc(d.device_key.slice(0, 16))}…` : '<span class="muted">none recorded: reports unverified</span>'}</dd></div></dl></div>
      ${deps.join("") || '<div class="card muted">no deployments reported</div>'}`;
    for (const [key, el] of openLogs) {
      const row = app.querySelector(`tr.logs-row[data-key="${CSS.escape(key)}"]`);
      if (!row || !el) continue;
      row.querySelector(".service-logs").replaceWith(el);
      row.hidden = false;
    }
    // The agent's own answer, beside what it last reported (commands.js: a device command).
    const ping = app.querySelector("#device-ping");
    window.fleetConsole.pingInto?.(ping, device);
    app.querySelector("button.ping-again").onclick = () => window.fleetConsole.pingInto?.(ping, device, { again: true });
  };
  const reload = debounce(() => load().catch(() => undefined), 250);
  return { render: load, onEvent: (type, e) => String(keyOf(e) ?? "").split(".")[0] === device && reload() };
}

// ---- the visualiser ------------------------------------------------------------------------
/**
 * One deployment's chart, step control and timeline page, in `el`. Pages come from the server
 * (`before` = the first event number of the page after the one wanted); steps are within a page,
 * and stepping past a page's edge loads the next page.
 */
function timelinePanel(el, device, deployment, opts = {}) {
  let first = opts.preload ?? null;
  let page = null;
  let state = null;
  let idx = -1;
  let follow = true;
  let known = null;
  el.innerHTML = `<div class="grid-viz${opts.compact ? " compact" : ""}">
      <div><div class="chart-wrap">${chart.svg}</div>
        <div class="legend"><span><span class="sw" style="border-color:var(--hl-line);background:var(--hl)"></span>state at this step</span><span><span class="sw" style="border-color:var(--accent);border-style:dashed"></span>state before it</span><span>dashed edge: a desired value that waited for the step to end</span></div></div>
      <div class="steps">
        <div class="controls">
          <button class="icon first" title="the deployment's first recorded event" aria-label="first"><svg viewBox="0 0 16 16" aria-hidden="true"><path d="M3 2h2v12H3zM14 2v12L6 8z"/></svg></button><button class="icon prev" title="previous step (←)" aria-label="previous"><svg viewBox="0 0 16 16" aria-hidden="true"><path d="M12 2v12L3 8z"/></svg></button>
          <input type="range" class="slider" min="0" max="0" value="0" aria-label="step">
          <button class="icon next" title="next step (→)" aria-label="next"><svg viewBox="0 0 16 16" aria-hidden="true"><path d="M4 2v12l9-6z"/></svg></button><button class="icon last" title="latest step (follow live)" aria-label="latest"><svg viewBox="0 0 16 16" aria-hidden="true"><path d="M11 2h2v12h-2zM2 2v12l8-6z"/></svg></button>
        </div>
        <div class="pager"><span class="stepno mono"></span><span class="page-signatures"></span><span class="spacer"></span><button class="small older">older page</button><button class="small newer">newer page</button></div>
        <div class="step-detail"></div>
        <ol class="timeline"></ol>
      </div></div>`;
  const $ = (s) => el.querySelector(s);
  const live = current();
  const q = (before) => `/api/deployment?device=${enc(device)}&deployment=${enc(deployment)}${before ? `&before=${before}` : ""}${opts.size ? `&size=${opts.size}` : ""}`;
  const loadPage = async (before, pick) => {
    const d = await (first && before === undefined ? first : api(q(before)));
    first = null;
    if (!live()) return d;
    // Only steps that arrive on the page being watched are marked as new.
    if (page && d.page.first_n !== page.first_n) known = null;
    state = d.state;
    page = d.page;
    idx = pick === "first" ? 0 : page.steps.length - 1;
    follow = !page.has_newer && pick !== "first" && pick !== "keep";
    paint();
    opts.onLoad?.(d);
    return d;
  };
  const go = async (i) => {
    const steps = page.steps;
    if (i < 0 && page.has_older) return loadPage(page.first_n, "last");
    if (i >= steps.length && page.has_newer) return loadPage(page.last_n + 1 + (opts.size || 100), "first");
    idx = Math.max(0, Math.min(steps.length - 1, i));
    follow = !page.has_newer && idx === steps.length - 1;
    paint();
  };
  $(".first").onclick = () => (page.has_older ? loadPage((page.oldest_n ?? 1) + (opts.size || 100), "first") : go(0));
  $(".prev").onclick = () => go(idx - 1);
  $(".next").onclick = () => go(idx + 1);
  $(".last").onclick = () => loadPage(undefined, "last");
  $(".older").onclick = () => loadPage(page.first_n, "last");
  $(".newer").onclick = () => (page.has_newer ? loadPage(page.last_n + 1 + (opts.size || 100), "first") : undefined);
  $(".slider").oninput = (e) => go(Number(e.target.value));
  $("ol.timeline").addEventListener("click", (e) => { const li = e.target.closest("li[data-i]"); if (li) go(Number(li.dataset.i)); });
  el.addEventListener("keydown", (e) => {
    if (e.target.matches("input:not([type=range])")) return;
    if (e.key === "ArrowLeft") { e.preventDefault(); go(idx - 1); }
    if (e.key === "ArrowRight") { e.preventDefault(); go(idx + 1); }
  });
  // Only what the last step lit is unlit: re-marking every edge restyles the whole chart.
  let lit = [];
  const highlight = (s) => {
    const svg = $("svg.statechart");
    for (const g of lit) {
      g.classList.remove("current", "previous", "taken");
      if (g.classList.contains("edge")) g.querySelector("path").setAttribute("marker-end", "url(#arrow)");
    }
    lit = [];
    const mark = (g, cls) => { if (!g) return; g.classList.add(cls); lit.push(g); if (cls === "taken") g.querySelector("path").setAttribute("marker-end", "url(#arrow-taken)"); };
    const current = s ? s.to : state?.state;
    mark(svg.querySelector(`.state[data-state="${CSS.escape(current || "")}"]`), "current");
    if (s) {
      if (s.from !== s.to) mark(svg.querySelector(`.state[data-state="${CSS.escape(s.from)}"]`), "previous");
      const edge = (a, b) => svg.querySelector(`.edge[data-from="${CSS.escape(a)}"][data-to="${CSS.escape(b)}"]`);
      const direct = s.from !== s.to && edge(s.from, s.to);
      if (direct) mark(direct, "taken");
      else {
        // One journaled step through an eventless transition (running → pending → pulling): light both edges.
        for (const g of svg.querySelectorAll(`.edge[data-from="${CSS.escape(s.from)}"]`)) {
          const via = edge(g.dataset.to, s.to);
          if (via) { mark(g, "taken"); mark(via, "taken"); break; }
        }
      }
    }
    el.dataset.currentState = current || "";
  };
  const changes = (list) => (list ? `<div class="changes">${list.map((c) => `<span class="change ${c.action}" data-service="${esc(c.service)}">${{ add: "+", replace: "~", remove: "−", unchanged: "=" }[c.action]} ${esc(c.service)}${c.details.length ? ` ${esc(c.details.join("; "))}` : ""}</span>`).join("")}</div>` : "");
  const paint = () => {
    const steps = page.steps;
    const s = steps[idx];
    highlight(s);
    const slider = $(".slider");
    slider.max = String(Math.max(0, steps.length - 1));
    slider.value = String(Math.max(0, idx));
    const sig = page.signatures;
    $(".page-signatures").innerHTML = steps.length
      ? sig.forged.length
        ? badge("forged", `FORGED ${sig.forged.length} of ${steps.length} events`, sig.forged.map((f) => `#${f.n}: ${f.why}`).join("; "))
        : sig.unverified
          ? badge("unverified", "UNVERIFIED events", "no key recorded for the device")
          : `<span class="muted">all ${steps.length} events signed by the device</span>`
      : "";
    $(".stepno").textContent = steps.length
      ? `event ${s.n} · ${idx + 1} of ${steps.length} on this page (${page.first_n}–${page.last_n} of ${page.oldest_n}–${page.newest_n})${follow ? " · live" : ""}`
      : "no events yet";
    $(".prev").disabled = idx <= 0 && !page.has_older;
    $(".first").disabled = idx <= 0 && !page.has_older;
    $(".next").disabled = $(".last").disabled = idx >= steps.length - 1 && !page.has_newer;
    $(".older").disabled = !page.has_older;
    $(".newer").disabled = !page.has_newer;
    $(".step-detail").innerHTML = s
      ? `<dl class="kv"><dt>event</dt><dd><span class="ev-name step-name">${esc(s.name)}</span> <span class="ev-summary">${esc(s.summary)}</span></dd>
         <dt>transition</dt><dd><b>${esc(s.from)}</b> → <b class="step-to">${esc(s.to)}</b></dd>
         <dt>signature</dt><dd class="step-signature">${s.signature === "verified" ? "signed by the device" : s.signature === "forged" ? badge("forged", "FORGED", s.signature_why) + ` <span class="error">${esc(s.signature_why)}</span>` : `<span class="muted">${esc(s.signature_why ?? "unverified")}</span>`}</dd>
         <dt>at</dt><dd class="mono">${esc(s.at)} <span class="muted">· stayed ${s.spent_ms === null ? "(still there)" : esc(dur(s.spent_ms))}</span></dd>
         <dt>containers</dt><dd class="step-containers">${containers(s.container_ids, s.unknown_services, s.containers_partial)}</dd>
         ${s.last_error_known && s.last_error ? `<dt>last error</dt><dd class="error">${esc(s.last_error)}</dd>` : ""}
         ${s.changes ? `<dt>changes</dt><dd class="step-changes">${changes(s.changes)}</dd>` : s.changes_note ? `<dt>changes</dt><dd class="note">${esc(s.changes_note)}</dd>` : ""}</dl>
         <details ${opts.compact ? "" : "open"}><summary>event as journaled</summary><pre class="payload">${esc(JSON.stringify(s.event, null, 2))}</pre></details>`
      : `<span class="muted">no events yet</span>`;
    const ol = $("ol.timeline");
    ol.innerHTML = steps
      .map((t, i) => `<li class="step${i === idx ? " selected" : ""}${!known || known.has(t.n) ? "" : " fresh"}" data-i="${i}" data-n="${esc(t.n)}">
        <span class="mono muted">#${esc(t.n)}</span>
        <span><span class="ev-name">${esc(t.name)}</span> <span class="ev-summary">${esc(t.summary)}</span>${t.signature === "forged" ? ` ${badge("forged", "FORGED", t.signature_why)}` : ""}<div class="ev-move">${esc(t.from)} → ${esc(t.to)}</div>${changes(t.changes)}</span>
        <span class="mono muted" title="${esc(t.at)}">${t.spent_ms === null ? "now" : esc(dur(t.spent_ms))}</span></li>`)
      .reverse()
      .join("");
    known = new Set(steps.map((t) => t.n));

    // Scrolls the list only, never the page (scrollIntoView would move the window too), once the
    // frame is laid out anyway rather than forcing a layout now.
    requestAnimationFrame(() => {
      const sel = ol.querySelector("li.selected");
      if (sel && (sel.offsetTop < ol.scrollTop || sel.offsetTop + sel.offsetHeight > ol.scrollTop + ol.clientHeight)) ol.scrollTop = sel.offsetTop - ol.clientHeight / 2;
    });
  };
  return {
    /** The newest page, or refreshes the page shown; a followed view moves to new steps. */
    async refresh() {
      if (!page || follow) return loadPage(undefined, "last");
      // The page shown, from the same first event, with whatever has arrived since (up to a page).
      const d = await api(q(page.first_n + (opts.size || 100)));
      if (!live()) return d;
      state = d.state;
      const n = page.steps[idx]?.n;
      page = d.page;
      idx = Math.max(0, page.steps.findIndex((t) => t.n === n));
      paint();
      opts.onLoad?.(d);
      return d;
    },
  };
}

function deploymentView(device, deployment) {
  let panel = null;
  let shown = "";
  const head = (d) => {
    const key = JSON.stringify([d.state, d.services, d.desired]);
    if (key === shown) return;
    shown = key;
    const s = d.state;
    const r = d.row;
    app.querySelector(".page-head").innerHTML = `<div><h2>${esc(deployment)} <span class="muted" style="font-weight:500">on ${devLink(device)}</span></h2>
      <div class="sub">${s ? `${phase(s.phase)} <span>state <b class="live-state mono">${esc(s.state)}</b></span><span class="mono">${esc((s.score_hash || "–").slice(0, 19))}</span><span>revision ${esc(s.desired_revision ?? "–")}</span><span>last event #${esc(s.last_event_seq)}</span>` : '<span class="muted">no device-state reported</span>'}</div>
      ${s?.last_error ? `<div class="error" style="margin-top:6px">${esc(s.last_error)}</div>` : ""}</div>
      <div class="actions">${r ? actionButtons(r) : ""}<a class="button" id="export" href="/api/export?device=${enc(device)}&deployment=${enc(deployment)}" download>Export timeline</a></div>`;
    app.querySelector("#services").innerHTML = servicesTable(device, deployment, d.services);
    app.querySelector(".desired").innerHTML = d.desired
      ? `<p class="muted desired-meta" style="margin-top:0">revision ${esc(d.desired.revision)} · ${esc((d.desired.hash || "").slice(0, 19))} · ${d.desired.signed ? `signed by <span class="mono">${esc(d.desired.signed.by.slice(0, 12))}…</span> at ${esc(d.desired.signed.at)}` : "unsigned"} · env values are never shown</p>${d.desired.errors.length ? `<div class="error">${esc(d.desired.errors.join("; "))}</div>` : ""}
         <div class="table-wrap"><table><thead><tr><th>service</th><th>image</th><th>env (names)</th><th>ports · volumes</th></tr></thead><tbody>${d.desired.services.map((svc) => `<tr><td><b>${esc(svc.name)}</b></td><td class="mono">${esc(svc.image)}</td><td class="mono muted">${esc(svc.env.join(", ") || "–")}</td><td class="mono muted">${esc([...svc.ports, ...svc.volumes].join(" ") || "–")}${svc.health ? " · health check" : ""}</td></tr>`).join("")}</tbody></table></div>`
      : '<span class="muted">no desired state (deleted?)</span>';
  };
  const preload = api(`/api/deployment?device=${enc(device)}&deployment=${enc(deployment)}`);
  preload.catch(() => undefined);
  const render = async () => {
    setCrumbs([["fleet", "#/"], [device, `#/device/${enc(device)}`], [deployment]]);
    app.innerHTML = `<div class="page-head"></div>
      <div class="card" id="visualiser" tabindex="-1"></div>
      <div class="card"><h3>services</h3><div id="services"></div></div>
      <div class="grid-2"><div class="card"><h3>desired state</h3><div class="desired"></div></div>
        <div class="card"><h3>compare with</h3><p class="muted" style="margin-top:0">Another deployment, side by side, with what differs highlighted.</p><form id="cmpform" class="controls"><input name="other" placeholder="device/deployment" size="28" aria-label="other deployment"><button>Compare</button></form></div></div>`;
    app.querySelector("#cmpform").addEventListener("submit", (e) => {
      e.preventDefault();
      location.hash = `#/compare?a=${enc(`${device}/${deployment}`)}&b=${enc(new FormData(e.target).get("other"))}`;
    });
    panel = timelinePanel(app.querySelector("#visualiser"), device, deployment, { onLoad: head, preload });
    await panel.refresh();
  };
  const reload = debounce(() => panel?.refresh().catch(() => undefined), 150);
  return { render, onEvent: (type, e) => type !== "heartbeat" && type !== "info" && keyOf(e) === `${device}.${deployment}` && reload() };
}

// ---- comparisons -----------------------------------------------------------------------------
/** Rows of [label, a, b]; a cell pair that differs is marked on both sides. */
function compareTable(rows, names) {
  let differs = 0;
  const body = rows.map((r) => {
    if (r.section) return `<tr class="section"><td colspan="3">${esc(r.section)}</td></tr>`;
    const [label, a, b, key, info] = r;
    const d = !info && String(a ?? "") !== String(b ?? "");
    if (d) differs++;
    const cell = (v) => `<td class="${d ? "differs" : ""} mono">${v === null || v === undefined || v === "" ? '<span class="faint">–</span>' : esc(v)}</td>`;
    return `<tr data-row="${esc(key ?? label)}"><td class="key">${esc(label)}</td>${cell(a)}${cell(b)}</tr>`;
  });
  return { differs, html: `<div class="table-wrap"><table class="compare"><colgroup><col style="width:22%"><col style="width:39%"><col style="width:39%"></colgroup><thead><tr><th></th><th>${names[0]}</th><th>${names[1]}</th></tr></thead><tbody>${body.join("")}</tbody></table></div>` };
}
function serviceCompareRows(a, b) {
  const by = (list) => new Map((list || []).map((s) => [s.service, s]));
  const [ma, mb] = [by(a), by(b)];
  const names = [...new Set([...ma.keys(), ...mb.keys()])];
  return names.flatMap((n) => {
    const [x, y] = [ma.get(n), mb.get(n)];
    return [
      { section: `service ${n}` },
      ["image", x?.image, y?.image, `${n}.image`],
      ["state", x?.state, y?.state, `${n}.state`],
      ["health", x?.health, y?.health, `${n}.health`],
      ["restarts", x?.restarts, y?.restarts, `${n}.restarts`],
    ];
  });
}

function compareView(a, b) {
  const pairs = [a, b].map((x) => String(x || "").split("/"));
  const names = pairs.map(([dev, dep]) => `<a href="${depHref(dev, dep)}">${esc(dev)} / ${esc(dep)}</a>`);
  const views = [null, null];
  const table = () => {
    if (!views[0] || !views[1]) return;
    const [x, y] = views;
    const rows = [
      { section: "deployment" },
      ["phase", x.state?.phase, y.state?.phase, "phase"],
      ["state", x.state?.state, y.state?.state, "state"],
      ["score hash", x.state?.score_hash?.slice(0, 19), y.state?.score_hash?.slice(0, 19), "score_hash"],
      ["last error", x.state?.last_error, y.state?.last_error, "last_error"],
      ["journal events", x.page.newest_n, y.page.newest_n, "events", true],
      ...serviceCompareRows(x.services, y.services),
    ];
    const t = compareTable(rows, names);
    app.querySelector("#compare-table").innerHTML = t.html;
    app.querySelector(".diff-count").textContent = t.differs ? `${t.differs} field${t.differs === 1 ? "" : "s"} differ` : "no difference";
  };
  const panels = [];
  const render = async () => {
    setCrumbs([["fleet", "#/"], ["compare deployments"]]);
    app.innerHTML = `<div class="page-head"><div><h2>Compare deployments</h2><div class="sub"><span class="diff-count"></span><span>highlighted: what differs</span></div></div></div>
      <div class="card" id="compare-table"></div>
      <div class="grid-2">${pairs.map((_, i) => `<div class="card"><h3>${names[i]}</h3><div class="panel" id="p${i}"></div></div>`).join("")}</div>`;
    pairs.forEach(([dev, dep], i) => panels.push(timelinePanel(app.querySelector(`#p${i}`), dev, dep, { compact: true, onLoad: (d) => { views[i] = d; table(); } })));
    await Promise.all(panels.map((p) => p.refresh()));
  };
  const reload = debounce(() => Promise.all(panels.map((p) => p.refresh())).catch(() => undefined), 200);
  return { render, onEvent: (type) => (type === "journal" || type === "state") && reload() };
}

function compareDevicesView(a, b) {
  const live = current();
  const load = async () => {
    setCrumbs([["fleet", "#/"], ["compare devices"]]);
    const [x, y] = await Promise.all([a, b].map((dev) => api(`/api/device?device=${enc(dev)}`).then((r) => r.device).catch(() => ({ device: dev, deployments: [] }))));
    if (!live()) return;
    const deps = [...new Set([...x.deployments, ...y.deployments].map((r) => r.deployment))].sort();
    const pick = (d, name) => d.deployments.find((r) => r.deployment === name);
    const rows = [
      { section: "device" },
      ["hostname", x.info?.hostname, y.info?.hostname, "hostname"],
      ["arch", x.info?.arch, y.info?.arch, "arch"],
      ["agent", x.info?.agent_version, y.info?.agent_version, "agent"],
      ["podman", x.info?.podman_version, y.info?.podman_version, "podman"],
      ["signing", x.signing, y.signing, "signing"],
      ["device key", x.device_key ? `${x.device_key.slice(0, 16)}…` : "none recorded", y.device_key ? `${y.device_key.slice(0, 16)}…` : "none recorded", "device_key", true],
      ["tick (s)", `${x.tick_secs ?? "–"}${x.tick_from_device === false ? " (assumed)" : ""}`, `${y.tick_secs ?? "–"}${y.tick_from_device === false ? " (assumed)" : ""}`, "tick"],
      ["stale", x.stale ? "stale" : "online", y.stale ? "stale" : "online", "stale"],
      ...deps.flatMap((n) => {
        const [p, q] = [pick(x, n), pick(y, n)];
        return [{ section: `deployment ${n}` }, ["phase", p?.phase, q?.phase, `${n}.phase`], ["state", p?.state, q?.state, `${n}.state`], ["score hash", p?.score_hash?.slice(0, 19), q?.score_hash?.slice(0, 19), `${n}.score_hash`],
          ...serviceCompareRows(p?.services, q?.services).map((r) => (r.section ? { section: `${n} · ${r.section}` } : [r[0], r[1], r[2], `${n}.${r[3]}`]))];
      }),
    ];
    const t = compareTable(rows, [a, b].map(devLink));
    app.innerHTML = `<div class="page-head"><div><h2>Compare devices</h2><div class="sub"><span class="diff-count">${t.differs ? `${t.differs} fields differ` : "no difference"}</span><span>highlighted: what differs</span></div></div></div><div class="card">${t.html}</div>`;
  };
  const reload = debounce(() => load().catch(() => undefined), 300);
  return { render: load, onEvent: reload };
}

route();

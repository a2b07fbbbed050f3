// The dashboard: devices, deployments, the transition visualiser, comparisons. Plain ES modules,
// no dependencies, no network beyond this server. Env values never reach this page.
const app = document.getElementById("app");
const liveBadge = document.getElementById("live");

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const short = (id) => String(id).slice(0, 12);
const api = async (path) => {
  const r = await fetch(path, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
};
function dur(ms) {
  if (ms == null || !isFinite(ms)) return "-";
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return ms < 10000 ? `${(ms / 1000).toFixed(1)}s` : `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h${m % 60}m` : `${Math.floor(h / 24)}d${h % 24}h`;
}
const containers = (ids) =>
  Object.entries(ids || {}).map(([svc, id]) => `<span class="container" data-service="${esc(svc)}">${esc(svc)}=<code class="container-id" title="${esc(id)}">${esc(short(id))}</code></span>`).join(" ") || '<span class="muted">-</span>';
const phase = (p) => `<span class="badge phase-${esc(p)}">${esc(p)}</span>`;
// What a device's reports can be trusted for: the device applies unsigned desired states (UNSIGNED),
// a report it did not sign (FORGED), no key recorded to check against (UNVERIFIED).
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

let chart = null;
let view = null; // { kind, render(), onEvent(type, data) }

// ---- live feed ---------------------------------------------------------------------------
const source = new EventSource("/api/events");
source.onopen = () => { liveBadge.textContent = "live"; liveBadge.className = "live on"; };
source.onerror = () => { liveBadge.textContent = "live: reconnecting"; liveBadge.className = "live off"; };
for (const type of ["state", "heartbeat", "journal"]) {
  source.addEventListener(type, (m) => view?.onEvent?.(type, JSON.parse(m.data)));
}
const debounce = (f, ms) => { let t = null; return () => { clearTimeout(t); t = setTimeout(f, ms); }; };

// ---- routing -----------------------------------------------------------------------------
window.addEventListener("hashchange", route);
async function route() {
  const h = decodeURIComponent(location.hash.slice(1) || "/");
  const parts = h.split("?")[0].split("/").filter(Boolean);
  const q = new URLSearchParams(h.split("?")[1] || "");
  view?.dispose?.();
  view = null;
  try {
    if (!chart) chart = await api("/api/chart");
    if (parts[0] === "d" && parts.length === 3) view = deploymentView(parts[1], parts[2]);
    else if (parts[0] === "compare") view = compareView(q.get("a"), q.get("b"));
    else if (parts[0] === "compare-devices") view = compareDevicesView(q.get("a"), q.get("b"));
    else view = fleetView();
    await view.render();
  } catch (e) {
    app.innerHTML = `<div class="card error">${esc(e.message)}</div>`;
  }
}

// ---- fleet: devices and their deployments ------------------------------------------------
function fleetView() {
  let data = null;
  const picked = new Set();
  const pickedDevices = new Set();
  const draw = () => {
    if (!data) return;
    const now = Date.now();
    const rows = data.devices.map((d) => {
      const age = d.heartbeat ? now - Date.parse(d.heartbeat.at) : null;
      const stale = age === null || age > 3 * data.tick_secs * 1000;
      const head = `<tr class="device-row" data-device="${esc(d.device)}">
        <td><input type="checkbox" class="pick-device" data-device="${esc(d.device)}" ${pickedDevices.has(d.device) ? "checked" : ""} title="compare devices"> ${esc(d.device)} <span class="trust">${deviceTrust(d)}</span></td>
        <td colspan="4" class="muted">${esc(d.info ? `${d.info.hostname} · ${d.info.arch} · agent ${d.info.agent_version}${d.info.podman_version ? ` · podman ${d.info.podman_version}` : ""}` : "")}</td>
        <td class="heartbeat">${age === null ? "never" : esc(dur(age))} ${stale ? '<span class="badge stale">STALE</span>' : ""}</td></tr>`;
      const deps = d.deployments.map((s) => {
        const k = `${s.device}/${s.deployment}`;
        return `<tr class="deployment-row" data-device="${esc(s.device)}" data-deployment="${esc(s.deployment)}">
          <td style="padding-left:26px"><input type="checkbox" class="pick" data-key="${esc(k)}" ${picked.has(k) ? "checked" : ""} title="compare deployments">
            <a class="open" href="#/d/${encodeURIComponent(s.device)}/${encodeURIComponent(s.deployment)}">${esc(s.deployment)}</a> ${stateTrust(d, s.deployment)}</td>
          <td>${phase(s.phase)}</td><td class="state">${esc(s.state)}</td><td class="containers">${containers(s.container_ids)}</td>
          <td class="error">${esc(s.last_error ?? "")}</td><td class="muted">#${esc(s.last_event_seq)}</td></tr>`;
      });
      return head + deps.join("");
    });
    app.innerHTML = `<div class="card"><h2>Devices</h2>
      <div class="controls"><button id="cmp" ${picked.size === 2 ? "" : "disabled"}>compare 2 deployments</button>
      <button id="cmpd" ${pickedDevices.size === 2 ? "" : "disabled"}>compare 2 devices</button>
      <span class="muted">stale: heartbeat older than 3 ticks (${data.tick_secs}s each)</span></div>
      <table id="devices"><thead><tr><th>device / deployment</th><th>phase</th><th>state</th><th>containers</th><th>last error</th><th>heartbeat</th></tr></thead>
      <tbody>${rows.join("") || '<tr><td colspan="6" class="muted">no devices known</td></tr>'}</tbody></table></div>`;
    app.querySelectorAll("input.pick").forEach((c) => c.addEventListener("change", () => { c.checked ? picked.add(c.dataset.key) : picked.delete(c.dataset.key); draw(); }));
    app.querySelectorAll("input.pick-device").forEach((c) => c.addEventListener("change", () => { c.checked ? pickedDevices.add(c.dataset.device) : pickedDevices.delete(c.dataset.device); draw(); }));
    app.querySelector("#cmp").addEventListener("click", () => { const [a, b] = [...picked]; location.hash = `#/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`; });
    app.querySelector("#cmpd").addEventListener("click", () => { const [a, b] = [...pickedDevices]; location.hash = `#/compare-devices?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`; });
  };
  const load = async () => { data = await api("/api/fleet"); draw(); };
  const reload = debounce(() => load().catch(() => undefined), 300);
  const ticker = setInterval(draw, 1000);
  return { render: load, onEvent: reload, dispose: () => clearInterval(ticker) };
}

// ---- the visualiser --------------------------------------------------------------------------
function timelinePanel(container, opts = {}) {
  // Renders one deployment's chart + timeline + step control into `container`; returns an updater.
  let data = null;
  let step = -1; // index into steps
  let follow = true; // at the last step, follow new events
  let knownN = new Set();
  const id = opts.id || "v";
  container.innerHTML = `<div class="chart-wrap">${chart.svg}</div>
    <div class="controls">
      <button class="first" title="first step">|◀</button><button class="prev" title="previous step">◀</button>
      <input type="range" class="slider" min="0" max="0" value="0">
      <button class="next" title="next step">▶</button><button class="last" title="latest step (follow live)">▶|</button>
      <span class="stepno mono"></span>
    </div>
    <div class="step-detail"></div>
    <ol class="timeline"></ol>`;
  const $ = (s) => container.querySelector(s);
  const forgedN = (n) => {
    const f = data?.signatures?.forged.find((x) => x.n === n);
    return f ? ` ${badge("forged", "FORGED", f.why)}` : "";
  };
  const select = (i) => {
    const steps = data.timeline.steps;
    if (!steps.length) return;
    step = Math.max(0, Math.min(steps.length - 1, i));
    follow = step === steps.length - 1;
    paint();
  };
  $(".first").onclick = () => select(0);
  $(".prev").onclick = () => select(step - 1);
  $(".next").onclick = () => select(step + 1);
  $(".last").onclick = () => select(Infinity);
  $(".slider").oninput = (e) => select(Number(e.target.value));
  const paint = () => {
    const steps = data.timeline.steps;
    const s = steps[step];
    const svg = $("svg.statechart");
    svg.querySelectorAll(".state").forEach((g) => g.classList.remove("current", "previous"));
    svg.querySelectorAll(".edge").forEach((g) => g.classList.remove("taken"));
    const current = s ? s.to : data.state?.state;
    svg.querySelector(`.state[data-state="${CSS.escape(current || "")}"]`)?.classList.add("current");
    if (s) {
      if (s.from !== s.to) svg.querySelector(`.state[data-state="${CSS.escape(s.from)}"]`)?.classList.add("previous");
      const edge = (a, b) => svg.querySelector(`.edge[data-from="${CSS.escape(a)}"][data-to="${CSS.escape(b)}"]`);
      const direct = edge(s.from, s.to);
      if (direct) direct.classList.add("taken");
      else {
        // A macrostep through an eventless transition (running → pending → pulling): light both edges.
        for (const g of svg.querySelectorAll(`.edge[data-from="${CSS.escape(s.from)}"]`)) {
          const via = edge(g.dataset.to, s.to);
          if (via) { g.classList.add("taken"); via.classList.add("taken"); break; }
        }
      }
    }
    container.dataset.currentState = current || "";
    const slider = $(".slider");
    slider.max = String(Math.max(0, steps.length - 1));
    slider.value = String(step);
    $(".stepno").textContent = steps.length ? `step ${step + 1} / ${steps.length}${follow ? " · live" : ""}` : "no events yet";
    $(".prev").disabled = $(".first").disabled = step <= 0;
    $(".next").disabled = $(".last").disabled = step >= steps.length - 1;
    $(".step-detail").innerHTML = s
      ? `<dl class="kv"><dt>n</dt><dd class="mono">${esc(s.n)}</dd><dt>at</dt><dd class="mono">${esc(s.at)}</dd>
         <dt>transition</dt><dd><b>${esc(s.from)}</b> → <b class="step-to">${esc(s.to)}</b></dd>
         <dt>event</dt><dd>${esc(s.label)}</dd><dt>stayed</dt><dd>${s.spent_ms === null ? "(still there)" : esc(dur(s.spent_ms))}</dd>
         <dt>containers</dt><dd class="step-containers">${containers(s.container_ids)}</dd>
         ${s.last_error ? `<dt>last error</dt><dd class="error">${esc(s.last_error)}</dd>` : ""}</dl>
         <details ${opts.compact ? "" : "open"}><summary>event payload</summary><pre class="payload">${esc(JSON.stringify(s.event, null, 2))}</pre></details>`
      : "";
    const ol = $("ol.timeline");
    ol.innerHTML = steps
      .map((t, i) => `<li class="step${i === step ? " selected" : ""}${knownN.has(t.n) ? "" : " fresh"}" data-i="${i}" data-n="${esc(t.n)}">
        <span class="mono muted">${esc(t.n)}</span><span><b>${esc(t.from)}</b> → <b>${esc(t.to)}</b> <span class="muted">${esc(t.label)}</span>${forgedN(t.n)}</span>
        <span class="mono muted" title="${esc(t.at)}">${t.spent_ms === null ? "now" : esc(dur(t.spent_ms))}</span></li>`)
      .join("");
    knownN = new Set(steps.map((t) => t.n));
    ol.querySelectorAll("li").forEach((li) => li.addEventListener("click", () => select(Number(li.dataset.i))));
    ol.querySelector("li.selected")?.scrollIntoView({ block: "nearest" });
  };
  return {
    update(next) {
      const first = data === null;
      data = next;
      if (first) knownN = new Set(next.timeline.steps.map((t) => t.n));
      const n = next.timeline.steps.length;
      if (follow || step < 0) step = n - 1;
      else step = Math.min(step, n - 1);
      paint();
    },
  };
}

function deploymentView(device, deployment) {
  const q = `device=${encodeURIComponent(device)}&deployment=${encodeURIComponent(deployment)}`;
  let panel = null;
  const load = async () => {
    const d = await api(`/api/deployment?${q}`);
    if (!panel) {
      app.innerHTML = `<div class="card"><h2>${esc(device)} / ${esc(deployment)}</h2><div class="summary"></div></div>
        <div class="viz"><div class="card" id="visualiser"></div><div class="card"><h3>desired state</h3><div class="desired"></div>
        <h3>export</h3><a class="button" id="export" href="/api/export?${q}" download>timeline as JSON</a>
        <h3>compare</h3><form id="cmpform" class="controls"><input name="other" placeholder="device/deployment" size="24"><button>compare</button></form></div></div>`;
      panel = timelinePanel(app.querySelector("#visualiser"));
      app.querySelector("#cmpform").addEventListener("submit", (e) => {
        e.preventDefault();
        const other = new FormData(e.target).get("other");
        location.hash = `#/compare?a=${encodeURIComponent(`${device}/${deployment}`)}&b=${encodeURIComponent(other)}`;
      });
    }
    const s = d.state;
    app.querySelector(".summary").innerHTML = s
      ? `${phase(s.phase)} state <b class="live-state">${esc(s.state)}</b> · containers ${containers(s.container_ids)} · revision ${esc(s.desired_revision)} · ${esc((s.score_hash || "").slice(0, 19))}…
         ${s.last_error ? `<div class="error">${esc(s.last_error)}</div>` : ""}`
      : '<span class="muted">no device-state reported</span>';
    const sig = d.signatures;
    const events = sig ? sig.verified + sig.unverified + sig.forged.length : 0;
    app.querySelector(".summary").innerHTML += sig && events
      ? `<div class="signatures">${sig.forged.length ? badge("forged", `FORGED ${sig.forged.length} of ${events} events`, sig.forged.map((f) => `n ${f.n}: ${f.why}`).join("; ")) : sig.unverified ? badge("unverified", "UNVERIFIED events", "no key recorded for the device") : `<span class="muted">all ${events} events signed by the device</span>`}</div>`
      : "";
    app.querySelector(".desired").innerHTML = d.desired
      ? `<div class="muted">revision ${esc(d.desired.revision)} · env values hidden · ${d.desired.signed ? `signed by <span class="mono">${esc(d.desired.signed.by.slice(0, 12))}…</span> at ${esc(d.desired.signed.at)}` : "unsigned"}</div>${d.desired.errors.length ? `<div class="error">${esc(d.desired.errors.join("; "))}</div>` : ""}
         <table>${(d.desired.score?.data.services || []).map((svc) => `<tr><td><b>${esc(svc.name)}</b></td><td class="mono">${esc(svc.image)}</td><td class="muted">${svc.env ? `env: ${esc(Object.keys(svc.env).join(", "))}` : ""}</td></tr>`).join("")}</table>`
      : '<span class="muted">no desired state (deleted?)</span>';
    panel.update(d);
  };
  const reload = debounce(() => load().catch(() => undefined), 150);
  return {
    render: load,
    onEvent(type, e) {
      if ((type === "journal" || type === "state") && (e.device === device || e.key === `${device}.${deployment}`) && (type !== "journal" || e.deployment === deployment)) reload();
    },
  };
}

function compareView(a, b) {
  const pairs = [a, b].map((x) => String(x || "").split("/"));
  const panels = [];
  const load = async () => {
    const ds = await Promise.all(pairs.map(([dev, dep]) => api(`/api/deployment?device=${encodeURIComponent(dev)}&deployment=${encodeURIComponent(dep)}`)));
    if (!panels.length) {
      app.innerHTML = `<h2>compare deployments</h2><div class="side">${pairs.map(([dev, dep], i) => `<div class="card"><h3><a href="#/d/${encodeURIComponent(dev)}/${encodeURIComponent(dep)}">${esc(dev)} / ${esc(dep)}</a></h3><div class="summary"></div><div class="panel" id="p${i}"></div></div>`).join("")}</div>`;
      for (let i = 0; i < 2; i++) panels.push(timelinePanel(app.querySelector(`#p${i}`), { compact: true, id: `p${i}` }));
    }
    ds.forEach((d, i) => {
      const ms = Object.entries(d.timeline.time_in_state).map(([st, v]) => `${st} ${dur(v)}`).join(", ");
      app.querySelectorAll(".summary")[i].innerHTML = `${d.state ? phase(d.state.phase) : ""} ${d.timeline.steps.length} transitions · ${esc(ms)}`;
      panels[i].update(d);
    });
  };
  const reload = debounce(() => load().catch(() => undefined), 200);
  return { render: load, onEvent: (type) => type === "journal" && reload() };
}

function compareDevicesView(a, b) {
  const load = async () => {
    const data = await api("/api/fleet");
    const cols = [a, b].map((dev) => {
      const d = data.devices.find((x) => x.device === dev);
      if (!d) return `<div class="card"><h3>${esc(dev)}</h3><p class="muted">unknown device</p></div>`;
      const age = d.heartbeat ? Date.now() - Date.parse(d.heartbeat.at) : null;
      return `<div class="card device-panel" data-device="${esc(dev)}"><h3>${esc(dev)} <span class="trust">${deviceTrust(d)}</span></h3>
        <dl class="kv"><dt>heartbeat</dt><dd>${age === null ? "never" : esc(dur(age))} ${d.stale ? '<span class="badge stale">STALE</span>' : ""}</dd>
        <dt>agent</dt><dd>${esc(d.info?.agent_version ?? "-")}</dd><dt>host</dt><dd>${esc(d.info ? `${d.info.hostname} (${d.info.arch})` : "-")}</dd>
        <dt>podman</dt><dd>${esc(d.info?.podman_version ?? "-")}</dd></dl>
        <table><tr><th>deployment</th><th>phase</th><th>state</th><th>containers</th><th>hash</th></tr>
        ${d.deployments.map((s) => `<tr><td><a href="#/d/${encodeURIComponent(s.device)}/${encodeURIComponent(s.deployment)}">${esc(s.deployment)}</a></td><td>${phase(s.phase)}</td><td>${esc(s.state)}</td><td>${containers(s.container_ids)}</td><td class="mono">${esc((s.score_hash || "").slice(7, 19))}</td></tr>${s.last_error ? `<tr><td></td><td colspan="4" class="error">${esc(s.last_error)}</td></tr>` : ""}`).join("")}</table></div>`;
    });
    app.innerHTML = `<h2>compare devices</h2><div class="side">${cols.join("")}</div>`;
  };
  const reload = debounce(() => load().catch(() => undefined), 300);
  return { render: load, onEvent: reload };
}

route();

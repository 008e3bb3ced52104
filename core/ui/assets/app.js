// driftd's status page. It reads the daemon's read-only API from the page's
// origin: GET /v1/status (a summary, and one page of model versions),
// GET /v1/models/{model}/versions/{version}/window (the held values of the
// model version shown) and one GET /v1/events stream for that model version.
// Everything inserted into the page goes in as text, never as HTML.
"use strict";

const PAGE = 50;          // model versions per page
const POINTS = 1000;      // values per metric plotted
const REFRESH_MS = 3000;  // summary and list refresh
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function stateTag(state) {
  return el("span", { class: "state " + state }, state);
}

function fmt(v) {
  if (typeof v !== "number" || !isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return String(Math.round(v * 10000) / 10000);
}

function ago(t) {
  const d = (Date.now() - Date.parse(t)) / 1000;
  if (!isFinite(d)) return "";
  if (d < 60) return Math.max(0, Math.round(d)) + "s ago";
  if (d < 3600) return Math.round(d / 60) + "m ago";
  if (d < 86400) return Math.round(d / 3600) + "h ago";
  return Math.round(d / 86400) + "d ago";
}

function fill(tbody, rows, empty, cols) {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { class: "muted", colspan: cols }, empty))]));
}

async function getJSON(url, signal) {
  const r = await fetch(url, { signal, headers: { Accept: "application/json" } });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
  return body;
}

// ---- summary -------------------------------------------------------------

function showSummary(st) {
  $("summary").textContent = `${st.version} · generation ${st.generation} · up ${st.uptime || "–"} · ` +
    `${st.windows.model_versions} model versions, ${st.windows.streams} streams · ` +
    `${st.ingest.accepted} lines accepted, ${st.ingest.rejected} rejected` + (st.ready ? "" : " · NOT READY");

  $("mvcount").textContent = `${st.windows.model_versions} in all`;
  const lr = st.last_reload;
  const reload = $("reload");
  reload.replaceChildren();
  if (lr && lr.time && !lr.time.startsWith("0001")) {
    reload.append(stateTag(lr.ok ? "ok" : "failed"), " ",
      `${lr.source || "load"} ${ago(lr.time)}, generation ${lr.generation}` + (lr.changed ? " (changed)" : ""));
  } else {
    reload.textContent = "–";
  }
  $("diagnostics").replaceChildren(...(lr.diagnostics || []).map((d) =>
    el("li", { class: d.severity }, `${d.file || ""}:${d.line || 0}:${d.column || 0}: ${d.summary}${d.detail ? ": " + d.detail : ""}`)));

  fill($("detectors").tBodies[0], st.plugins.map((p) => el("tr", {},
    el("td", {}, p.detector), el("td", {}, p.plugin + (p.version ? " " + p.version : "")), el("td", {}, p.metric),
    el("td", { title: p.error || "" }, stateTag(p.state)), el("td", { class: "num" }, p.restarts))), "no detectors", 5);

  fill($("sinks").tBodies[0], st.sinks.map((s) => el("tr", {},
    el("td", {}, s.sink), el("td", {}, s.plugin + (s.version ? " " + s.version : "")), el("td", {}, stateTag(s.state)),
    el("td", { class: "num" }, s.pending), el("td", { class: "num" }, s.failed))), "no sinks", 5);

  const j = st.jobs;
  $("jobcounts").textContent = `${j.pending.length} pending · ${j.failed.length} failed · ${j.delivered.length} delivered lately`;
  const jobs = [...j.failed, ...j.pending, ...j.delivered.slice(-5).reverse()].slice(0, 12);
  fill($("jobs").tBodies[0], jobs.map((x) => el("tr", { title: x.id },
    el("td", {}, stateTag(x.state)), el("td", {}, x.sink), el("td", {}, x.model + " " + x.version), el("td", {}, x.metric),
    el("td", { class: "num" }, x.attempts), el("td", { class: "err" }, x.last_error || ""))), "no jobs", 6);
}

// ---- model versions: search and pages ------------------------------------

const list = { cursors: [""], page: 0, next: "", model: "", version: "", seq: 0 };

// asGlob makes plain text a substring search; a glob stays as it is.
function asGlob(q) {
  q = q.trim();
  if (q === "") return "";
  return /[*?[\\]/.test(q) ? q : "*" + q + "*";
}

function listURL() {
  const p = new URLSearchParams({ limit: String(PAGE) });
  const m = asGlob(list.model), v = asGlob(list.version);
  p.set("model", m || "*");
  if (v) p.set("version", v);
  const c = list.cursors[list.page];
  if (c) p.set("cursor", c);
  return "/v1/status?" + p.toString();
}

function showList(st) {
  list.next = st.next_cursor || "";
  const rows = (st.streams || []).map((s) => {
    const names = Object.keys(s.metrics).sort();
    let drifts = 0, last = null, state = "ok";
    for (const n of names) {
      const m = s.metrics[n];
      drifts += m.drifts;
      if (m.state === "drifting") state = "drifting";
      if (m.last_drift && (!last || m.last_drift.time > last.time)) last = { ...m.last_drift, metric: n };
    }
    const tr = el("tr", { "data-model": s.model, "data-version": s.version },
      el("td", {}, s.model), el("td", {}, s.version), el("td", { class: "muted" }, s.monitor || "–"),
      el("td", {}, stateTag(state)), el("td", {}, names.join(", ")), el("td", { class: "num" }, drifts),
      el("td", { class: "muted" }, last ? `${last.metric} #${last.index} ${ago(last.time)}` : ""));
    if (detail.model === s.model && detail.version === s.version) tr.classList.add("selected");
    tr.addEventListener("click", () => open(s.model, s.version));
    return tr;
  });
  fill($("versions").tBodies[0], rows, list.model || list.version ? "no model version matches" : "no model versions yet", 7);
  const from = list.page * PAGE;
  $("pageinfo").textContent = rows.length ? `${from + 1}–${from + rows.length}` : "";
  $("prev").disabled = list.page === 0;
  $("next").disabled = !list.next;
}

async function refreshList() {
  const seq = ++list.seq;
  try {
    const st = await getJSON(listURL());
    if (seq === list.seq) showList(st);
  } catch (e) {
    if (seq === list.seq) fill($("versions").tBodies[0], [], "cannot list: " + e.message, 7);
  }
}

// listSoon refreshes the list once after a burst of drifts, so that the
// shown model version's state follows its drifts.
let listTimer = 0;
function listSoon() {
  if (!listTimer) listTimer = setTimeout(() => { listTimer = 0; refreshList(); }, 300);
}

let searchTimer = 0;
function searchChanged() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    list.model = $("q-model").value;
    list.version = $("q-version").value;
    list.cursors = [""];
    list.page = 0;
    refreshList();
  }, 150);
}

// ---- one model version: plots and live events ----------------------------

const detail = { model: "", version: "", plots: new Map(), abort: null, seq: 0, drawPending: false };

function open(model, version) {
  const h = "#" + new URLSearchParams({ model, version }).toString();
  if (location.hash !== h) location.hash = h; else showDetail(model, version);
}

function fromHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  const m = p.get("model"), v = p.get("version");
  if (m && v) showDetail(m, v); else closeDetail();
}

function closeDetail() {
  if (detail.abort) detail.abort.abort();
  detail.abort = null;
  detail.model = detail.version = "";
  detail.plots.clear();
  $("detail").hidden = true;
  $("plots").replaceChildren();
  for (const tr of $("versions").tBodies[0].rows) tr.classList.remove("selected");
}

async function showDetail(model, version) {
  closeDetail();
  detail.model = model;
  detail.version = version;
  const seq = ++detail.seq;
  const ctl = new AbortController();
  detail.abort = ctl;
  $("detail").hidden = false;
  $("detail-title").textContent = `${model} ${version}`;
  $("detail-monitor").textContent = "";
  $("plots").replaceChildren(el("p", { class: "muted" }, "loading…"));
  for (const tr of $("versions").tBodies[0].rows) {
    tr.classList.toggle("selected", tr.dataset.model === model && tr.dataset.version === version);
  }
  let win;
  try {
    win = await getJSON(`/v1/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}/window?points=${POINTS}`, ctl.signal);
  } catch (e) {
    if (seq === detail.seq && !ctl.signal.aborted) $("plots").replaceChildren(el("p", { class: "muted" }, e.message));
    return;
  }
  if (seq !== detail.seq) return;
  $("detail-monitor").textContent = win.monitor ? "monitor " + win.monitor : "";
  $("plots").replaceChildren();
  for (const name of Object.keys(win.metrics).sort()) {
    const m = win.metrics[name];
    const p = plotFor(name);
    for (let i = 0; i < m.values.length; i++) p.points.push([m.first + i, m.values[i], m.means[i]]);
    p.status = m;
    // The last drift shows even when the event history no longer holds it.
    if (m.last_drift) addMarker(p, { type: "drift", index: m.last_drift.index, detector: m.last_drift.detector, mean: null });
    p.held = m.held;
  }
  draw();
  follow(model, version, ctl.signal);
}

function plotFor(name) {
  let p = detail.plots.get(name);
  if (p) return p;
  const root = el("div", { class: "plot", "data-metric": name });
  const title = el("h3", {}, name);
  const info = el("span", { class: "muted" });
  title.append(" ", info);
  const box = svg("svg", { viewBox: "0 0 900 240", role: "img" });
  root.append(title, box);
  const plots = $("plots");
  const after = [...plots.children].find((c) => c.dataset.metric > name);
  plots.insertBefore(root, after || null);
  p = { name, points: [], markers: [], info, box, status: null, held: 0 };
  detail.plots.set(name, p);
  return p;
}

// follow reads the model version's events, from the oldest the daemon
// still holds (so past drifts show too), and keeps reading; a broken
// stream is resumed after the last event seen.
async function follow(model, version, signal) {
  let since = 0;
  while (!signal.aborted) {
    const p = new URLSearchParams({ model, version, since: String(since) });
    for (const t of ["metric", "drift", "warning"]) p.append("type", t);
    try {
      const r = await fetch("/v1/events?" + p.toString(), { signal });
      if (!r.ok) throw new Error(r.status + " " + r.statusText);
      setConn(true);
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim() === "") continue;
          const e = JSON.parse(line);
          since = Math.max(since, e.seq);
          take(e);
        }
      }
    } catch (e) {
      if (signal.aborted) return;
    }
    setConn(false);
    await new Promise((res) => setTimeout(res, 2000));
  }
}

function take(e) {
  if (e.model !== detail.model || e.version !== detail.version || !e.metric) return;
  const p = plotFor(e.metric);
  if (e.type === "metric") {
    const last = p.points.length ? p.points[p.points.length - 1][0] : -1;
    if (e.index <= last) return;
    p.points.push([e.index, e.value, liveMean(p, e.index, e.value)]);
    if (p.points.length > POINTS) p.points.splice(0, p.points.length - POINTS);
  } else if (e.type === "drift" || e.type === "warning") {
    if (!addMarker(p, { type: e.type, index: e.index, detector: e.detector, mean: e.window_mean })) return;
    if (e.type === "drift") listSoon();
  } else {
    return;
  }
  if (!detail.drawPending) {
    detail.drawPending = true;
    requestAnimationFrame(() => { detail.drawPending = false; draw(); });
  }
}

// liveMean is the window mean after a value that came as an event (events
// carry no mean): the previous mean with the value added and, once the
// window is full, the value that left it taken out. null when unknown.
function liveMean(p, index, v) {
  const n = p.points.length;
  if (!p.status || n === 0) return null;
  const [pi, , pm] = p.points[n - 1];
  if (pm === null || pi !== index - 1) return null;
  const cap = p.status.capacity;
  const held = Math.min(cap, p.held + 1);
  let m;
  if (held > p.held) {
    m = (pm * p.held + v) / held;
  } else {
    const gone = p.points[n - cap];
    if (!gone || gone[0] !== index - cap) return null;
    m = pm + (v - gone[1]) / cap;
  }
  p.held = held;
  return m;
}

// ticks returns round values between lo and hi, about five of them.
function ticks(lo, hi) {
  const raw = (hi - lo) / 4;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

// addMarker adds a drift or warning marker unless the plot has it; it
// reports whether it did.
function addMarker(p, m) {
  if (p.markers.some((o) => o.type === m.type && o.index === m.index && o.detector === m.detector)) return false;
  p.markers.push(m);
  return true;
}

function draw() {
  for (const p of detail.plots.values()) drawPlot(p);
}

function drawPlot(p) {
  const W = 900, H = 240, L = 56, R = 12, T = 12, B = 26;
  const box = p.box;
  box.replaceChildren();
  const pts = p.points;
  const lo = pts.length ? pts[0][0] : 0;
  p.markers = p.markers.filter((m) => m.index >= lo || pts.length === 0);
  const drifts = p.markers.filter((m) => m.type === "drift").length;
  const warnings = p.markers.length - drifts;
  p.info.textContent = `${pts.length} values` + (pts.length ? `, last ${fmt(pts[pts.length - 1][1])}` : "") +
    ` · ${drifts} drift${drifts === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"} shown` +
    (p.status ? ` · window ${p.status.capacity}` : "");
  if (!pts.length) return;
  const hi = Math.max(pts[pts.length - 1][0], lo + 1);
  let ymin = Infinity, ymax = -Infinity;
  for (const [, v, m] of pts) {
    ymin = Math.min(ymin, v); ymax = Math.max(ymax, v);
    if (m !== null) { ymin = Math.min(ymin, m); ymax = Math.max(ymax, m); }
  }
  if (ymin === ymax) { ymin -= 0.5; ymax += 0.5; }
  const pad = (ymax - ymin) * 0.05;
  ymin -= pad; ymax += pad;
  const x = (i) => L + (i - lo) / (hi - lo) * (W - L - R);
  const y = (v) => T + (ymax - v) / (ymax - ymin) * (H - T - B);
  for (const v of ticks(ymin, ymax)) {
    box.append(svg("line", { class: "grid-line", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    const t = svg("text", { class: "axis", x: L - 6, y: y(v) + 4, "text-anchor": "end" });
    t.textContent = fmt(v);
    box.append(t);
  }
  for (const [i, anchor] of [[lo, "start"], [hi, "end"]]) {
    const t = svg("text", { class: "axis", x: x(i), y: H - 8, "text-anchor": anchor });
    t.textContent = "#" + i;
    box.append(t);
  }
  const line = (cls, get) => {
    let d = "";
    for (const q of pts) {
      const v = get(q);
      if (v === null) continue;
      d += (d ? " " : "") + x(q[0]).toFixed(1) + "," + y(v).toFixed(1);
    }
    if (d) box.append(svg("polyline", { class: cls, points: d }));
  };
  line("means", (q) => q[2]);
  line("values", (q) => q[1]);
  for (const m of p.markers) {
    const g = svg("line", { class: "marker " + m.type, x1: x(m.index), x2: x(m.index), y1: T, y2: H - B, "data-index": m.index });
    const tip = svg("title");
    tip.textContent = `${m.type} at #${m.index} by ${m.detector}` + (m.mean === null ? "" : `, window mean ${fmt(m.mean)}`);
    g.append(tip);
    box.append(g);
  }
}

// ---- refresh -------------------------------------------------------------

function setConn(ok) {
  const c = $("conn");
  c.textContent = ok ? "live" : "disconnected";
  c.className = "pill " + (ok ? "live" : "down");
}

async function refresh() {
  try {
    showSummary(await getJSON("/v1/status"));
    if (!detail.abort) setConn(true);
  } catch (e) {
    setConn(false);
  }
  await refreshList();
}

function start() {
  $("q-model").addEventListener("input", searchChanged);
  $("q-version").addEventListener("input", searchChanged);
  $("search").addEventListener("submit", (e) => { e.preventDefault(); searchChanged(); });
  $("prev").addEventListener("click", () => { if (list.page > 0) { list.page--; refreshList(); } });
  $("next").addEventListener("click", () => {
    if (!list.next) return;
    list.cursors[list.page + 1] = list.next;
    list.page++;
    refreshList();
  });
  $("close").addEventListener("click", () => { history.replaceState(null, "", location.pathname + location.search); closeDetail(); });
  window.addEventListener("hashchange", fromHash);
  refresh();
  fromHash();
  setInterval(refresh, REFRESH_MS);
}

start();

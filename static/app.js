// streamd UI: the wall. Every camera in one screen (a layout of 1, 2x2,
// 3x3 or 4x4 tiles that fits the window without scrolling; auto picks the
// smallest that holds them all, up to 4x4, and pages beyond), each tile
// with its stats (refreshed every second), the analyzer's boxes and badge
// while an event is active, and the event list in a panel that folds
// away, kept live through server-sent events. Keys: 1-9 open the camera
// of that tile, F the fullscreen wall, E the events panel, arrows (and
// Page Up/Down) change page.
//
// The tiles' video comes through ONE multiplexed stream (/api/live) for
// all the tiles in view, read with fetch() and drawn into canvases: an
// <img> per tile would hold a connection each, and browsers open only six
// per host, so a grid of more than five cameras would stall (and the
// stats and events requests behind it). Tiles on other pages (or, on a
// narrow screen where tiles scroll, out of view) are left out of the
// stream, and a hidden tab streams nothing.
"use strict";
const grid = document.getElementById("grid");
const status = document.getElementById("status");
const tiles = new Map();
// A token in the page's URL (?token=…) is passed on to streams and the API;
// with basic auth the browser sends the credentials by itself.
const token = new URLSearchParams(location.search).get("token");
const withToken = (url) => token ? `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : url;

function tile(cam) {
  const el = document.createElement("section");
  el.className = "tile";
  el.dataset.camera = cam.id;
  el.innerHTML = `<div class="view"><div class="frame"><canvas></canvas><div class="boxes"></div><div class="badge"></div></div><div class="nosignal">no signal</div></div>
    <div class="tline" title="click to replay from there"><div class="marks"></div></div>
    <div class="bar"><span class="key"></span><span class="name"><span class="dot"></span><a></a></span>
    <span class="fps"></span><span class="lat"></span><span class="viewers"></span><span class="held"></span></div>`;
  const link = el.querySelector(".name a");
  link.textContent = cam.id;
  link.href = withToken(`/cameras/${encodeURIComponent(cam.id)}`);
  el.querySelector(".view").addEventListener("click", () => { location.href = link.href; });
  el.querySelector(".tline").addEventListener("click", (ev) => {
    const r = ev.currentTarget.getBoundingClientRect();
    const rg = ranges.get(cam.id);
    if (!rg) return;
    const t = rg.oldest + (ev.clientX - r.left) / r.width * (rg.newest - rg.oldest);
    location.href = withToken(`/cameras/${encodeURIComponent(cam.id)}?at=${(t / 1000).toFixed(3)}`);
  });
  el.querySelector("canvas").setAttribute("aria-label", `camera ${cam.id}`);
  grid.append(el);
  seen.observe(el);
  const opt = document.createElement("option");
  opt.value = opt.textContent = cam.id;
  document.getElementById("ev-camera").append(opt);
  return el;
}

// ---- the wall's layout ----
// layout.choice is the picker (0: auto, else n for n x n); the page is
// the one shown when the cameras need more than one screen.
const prefs = (() => { try { return JSON.parse(localStorage.getItem("streamd.wall")) || {}; } catch (_) { return {}; } })();
const layout = { choice: [0, 1, 2, 3, 4].includes(prefs.layout) ? prefs.layout : 0, cols: 1, rows: 1, page: 0, pages: 1, perPage: 1 };
const savePrefs = () => { try { localStorage.setItem("streamd.wall", JSON.stringify({ layout: layout.choice, events: !document.body.classList.contains("no-events") })); } catch (_) { /* private mode */ } };
if (prefs.events === false) document.body.classList.add("no-events");
document.getElementById("layout-pick").value = String(layout.choice);

// applyLayout sizes the grid for the cameras and shows the current page's
// tiles; the others are hidden, so they leave the stream.
const narrow = matchMedia("(max-width: 700px)");
narrow.addEventListener("change", () => applyLayout());
function applyLayout() {
  if (narrow.matches) {
    // One scrolling column: every tile, streaming while in view.
    let i = 0;
    for (const el of tiles.values()) { el.hidden = false; el.querySelector(".key").textContent = i < 9 ? String(i + 1) : ""; i++; }
    document.getElementById("pager").hidden = true;
    Object.assign(layout, { page: 0, pages: 1 });
    live.layout = { cols: 1, rows: tiles.size, page: 0, pages: 1 };
    return;
  }
  const n = tiles.size;
  const cols = layout.choice || Math.min(4, Math.max(1, Math.ceil(Math.sqrt(n))));
  const perPage = cols * cols;
  const pages = Math.max(1, Math.ceil(n / perPage));
  layout.page = Math.min(Math.max(0, layout.page), pages - 1);
  const onPage = Math.max(1, Math.min(perPage, n - layout.page * perPage));
  // Auto fits the rows to the cameras (3 cameras: 2x2 with one cell
  // empty; 2: side by side); a chosen layout keeps its shape.
  const rows = layout.choice ? cols : Math.max(1, Math.ceil(onPage / cols));
  Object.assign(layout, { cols, rows, pages, perPage });
  grid.style.setProperty("--cols", String(layout.choice ? cols : Math.min(cols, onPage)));
  grid.style.setProperty("--rows", String(rows));
  let i = 0;
  for (const el of tiles.values()) {
    const page = Math.floor(i / perPage);
    el.hidden = page !== layout.page;
    el.querySelector(".key").textContent = page === layout.page && i % perPage < 9 ? String(i % perPage + 1) : "";
    i++;
  }
  document.getElementById("pager").hidden = pages < 2;
  document.getElementById("page-no").textContent = `${layout.page + 1}/${pages}`;
  live.layout = { cols: layout.choice ? cols : Math.min(cols, onPage), rows, page: layout.page, pages };
}
function turnPage(d) {
  if (layout.pages < 2) return;
  layout.page = (layout.page + d + layout.pages) % layout.pages;
  applyLayout();
}
document.getElementById("layout-pick").addEventListener("change", (ev) => {
  layout.choice = parseInt(ev.target.value, 10) || 0;
  layout.page = 0;
  savePrefs();
  applyLayout();
});
document.getElementById("page-prev").addEventListener("click", () => turnPage(-1));
document.getElementById("page-next").addEventListener("click", () => turnPage(1));
function toggleEvents() {
  const folded = document.body.classList.toggle("no-events");
  document.getElementById("toggle-events").setAttribute("aria-pressed", String(!folded));
  savePrefs();
}
document.getElementById("toggle-events").setAttribute("aria-pressed", String(!document.body.classList.contains("no-events")));
document.getElementById("toggle-events").addEventListener("click", toggleEvents);
// The fullscreen wall is the grid alone, black between the tiles.
function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen?.();
  else grid.requestFullscreen?.().catch(() => {});
}
document.getElementById("wall-full").addEventListener("click", toggleFullscreen);
document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || /^(INPUT|SELECT|TEXTAREA)$/.test(ev.target.tagName)) return;
  if (ev.key >= "1" && ev.key <= "9") {
    const el = [...tiles.values()].filter((t) => !t.hidden)[parseInt(ev.key, 10) - 1];
    if (el) location.href = el.querySelector(".name a").href;
  } else if (ev.key === "f" || ev.key === "F") {
    toggleFullscreen();
  } else if (ev.key === "e" || ev.key === "E") {
    toggleEvents();
  } else if (ev.key === "ArrowRight" || ev.key === "PageDown") {
    turnPage(1);
  } else if (ev.key === "ArrowLeft" || ev.key === "PageUp") {
    turnPage(-1);
  } else {
    return;
  }
  ev.preventDefault();
});

async function refresh() {
  try {
    const res = await fetch(withToken("/api/cameras"), { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const cams = await res.json();
    status.textContent = cams.length ? `${cams.length} camera${cams.length > 1 ? "s" : ""}` : "no cameras yet";
    let added = false;
    for (const cam of cams) {
      if (!tiles.has(cam.id)) { tiles.set(cam.id, tile(cam)); added = true; }
      const el = tiles.get(cam.id);
      el.classList.toggle("live", cam.live);
      el.classList.toggle("stale", !cam.live);
      // The frame takes the camera's shape inside its cell, so that boxes
      // in 0..1 frame coordinates are percentages of it.
      if (cam.width && cam.height) el.style.setProperty("--ar", `${cam.width} / ${cam.height}`);
      el.querySelector(".fps").textContent = `${cam.fps.toFixed(1)} fps`;
      el.querySelector(".lat").textContent = `${cam.latency_ms.toFixed(1)} ms`;
      el.querySelector(".viewers").textContent = `${cam.viewers} viewer${cam.viewers === 1 ? "" : "s"}`;
    }
    if (added) applyLayout();
  } catch (e) {
    status.textContent = `cannot load cameras: ${e.message}`;
  }
  // After the camera list, not beside it: one request at a time keeps
  // the page's API calls on one connection.
  if (refreshes % 10 === 1) await refreshStorage();
  if (refreshes % 5 === 2) await refreshUnreviewed();
  refreshes++;
  drawOverlays();
}
let refreshes = 0;

// The review items of the last 24 hours nobody marked as reviewed
// (/api/review/summary), every 5th refresh: a link to the review page.
async function refreshUnreviewed() {
  const a = document.getElementById("unreviewed");
  try {
    const res = await fetch(withToken("/api/review/summary"), { cache: "no-store" });
    if (!res.ok) { a.hidden = true; return; }
    const s = await res.json();
    const items = s.alert + s.detection + s.motion;
    a.textContent = s.unreviewed ? `${s.unreviewed} unreviewed` : items ? "all reviewed" : "nothing to review";
    a.classList.toggle("warn", s.unreviewed > 0);
    a.dataset.count = String(s.unreviewed);
    a.hidden = false;
  } catch (_) { /* next time */ }
}

// How far back each camera's recording goes ("2 d 4 h"), from
// /api/storage, every 10th refresh; a warning when the disk budget cuts
// it short.
async function refreshStorage() {
  try {
    const res = await fetch(withToken("/api/storage"), { cache: "no-store" });
    if (!res.ok) return; // no recording here, or not allowed
    for (const c of (await res.json()).cameras) {
      const el = tiles.get(c.camera);
      if (!el || !c.held) continue;
      const h = el.querySelector(".held");
      // The recorder's lag is known where it runs in this process; past
      // 2 s it is falling behind (encoding slower than the camera).
      const lag = c.recorder_lag_seconds;
      const behind = lag !== undefined && lag > 2;
      const lost = c.recorder_lost_frames || 0; // removed by retention before the recorder read them
      h.textContent = `rec ${c.held}` + (behind ? ` · ${Math.round(lag)} s behind` : "") + (lost ? ` · ${lost} frames lost` : "");
      h.title = lost ? `${lost} frames were not recorded: the recorder fell further behind than the frames topic's retention`
        : behind ? `the recorder is ${Math.round(lag)} s behind the camera: it records from the frames topic while it catches up`
        : c.budget_cut ? "recording.max_bytes removes recordings younger than recording.retain" : `recorded back ${c.held}`;
      h.classList.toggle("warn", c.budget_cut || behind || lost > 0);
    }
  } catch (_) { /* next time */ }
}


// ---- the multiplexed live stream ----
// For tests and the curious: frames painted and the last capture→paint
// latency per camera, and how many times the stream was (re)opened.
const live = window.streamd = { painted: {}, latency: {}, opened: 0, cameras: "", layout: null };
const visible = new Set();
const seen = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const id = e.target.dataset.camera;
    if (e.isIntersecting) visible.add(id); else visible.delete(id);
  }
  restream();
}, { rootMargin: "200px" });
let muxAbort = null, restreamTimer = 0;
// restream (debounced) opens one stream for the tiles in view, replacing
// the previous one when that set changes; none while the tab is hidden.
function restream() {
  clearTimeout(restreamTimer);
  restreamTimer = setTimeout(() => {
    const want = document.hidden ? "" : [...visible].sort().join(",");
    if (want === live.cameras && muxAbort) return;
    if (muxAbort) muxAbort.abort();
    muxAbort = null;
    live.cameras = want;
    if (want) stream(want);
  }, 150);
}
async function stream(ids) {
  const ac = muxAbort = new AbortController();
  live.opened++;
  const url = withToken(`/api/live?cameras=${ids.split(",").map(encodeURIComponent).join(",")}&rendition=sub`);
  try {
    for await (const part of mjpegParts(url, ac.signal)) {
      const el = tiles.get(part.camera);
      if (!el) continue;
      let bmp;
      try {
        bmp = await createImageBitmap(part.blob);
      } catch (_) { continue; } // one undecodable frame: skip it, keep the stream
      const c = el.querySelector("canvas");
      if (c.width !== bmp.width || c.height !== bmp.height) { c.width = bmp.width; c.height = bmp.height; }
      c.getContext("2d").drawImage(bmp, 0, 0);
      bmp.close();
      live.painted[part.camera] = (live.painted[part.camera] || 0) + 1;
      live.latency[part.camera] = performance.timeOrigin + performance.now() - part.time;
    }
  } catch (_) { /* aborted, or the server went away: retried below */ }
  if (ac.signal.aborted) return;
  muxAbort = null;
  setTimeout(restream, 2000); // reconnect (server restart, network drop)
}
document.addEventListener("visibilitychange", restream);

// ---- timelines: what Kafka holds per camera, with event marks ----
const ranges = new Map();
async function loadRanges() {
  for (const id of tiles.keys()) {
    try {
      const res = await fetch(withToken(`/api/cameras/${encodeURIComponent(id)}/range`), { cache: "no-store" });
      if (res.ok) {
        const r = await res.json();
        ranges.set(id, { oldest: Date.parse(r.oldest), newest: Date.parse(r.newest) });
      }
    } catch (_) { /* next time */ }
  }
  drawTimelines();
}
function drawTimelines() {
  for (const [id, el] of tiles) {
    const rg = ranges.get(id);
    if (!rg || rg.newest <= rg.oldest) continue;
    const f = (ms) => Math.min(1, Math.max(0, (ms - rg.oldest) / (rg.newest - rg.oldest)));
    el.querySelector(".tline .marks").replaceChildren(...[...events.values()].filter((e) => e.camera === id).map((e) => {
      const d = document.createElement("div");
      const s = f(Date.parse(e.start)), end = e.end ? f(Date.parse(e.end)) : 1;
      d.className = `mark ${eventKind(e)}`;
      d.style.left = `${s * 100}%`;
      d.style.width = `${Math.max(0.5, (end - s) * 100)}%`;
      return d;
    }));
  }
}

// ---- events ----
const events = new Map(); // id → latest state
const list = document.getElementById("ev-list");
const filterCamera = document.getElementById("ev-camera");
const filterType = document.getElementById("ev-type");
const filterLabel = document.getElementById("ev-label");
const filterSeverity = document.getElementById("ev-severity");

const fmtTime = (t) => new Date(t).toLocaleTimeString([], { hour12: false });
function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

// The label filter offers every label seen so far.
function labelOptions() {
  const have = new Set([...filterLabel.options].map((o) => o.value));
  for (const e of events.values()) {
    if (e.label && !have.has(e.label)) {
      have.add(e.label);
      filterLabel.append(new Option(e.label, e.label));
    }
  }
}

function renderList() {
  const cam = filterCamera.value, type = filterType.value, label = filterLabel.value, sev = filterSeverity.value;
  labelOptions();
  const shown = [...events.values()]
    .filter((e) => (!cam || e.camera === cam) && (!type || e.type === type) && (!label || e.label === label) && (!sev || e.severity === sev))
    .sort((a, b) => new Date(b.start) - new Date(a.start))
    .slice(0, 200);
  list.replaceChildren(...shown.map((e) => {
    const li = document.createElement("li");
    li.className = `event ${eventKind(e)}${e.end ? "" : " active"}`;
    li.dataset.id = e.id;
    const thumb = e.snapshot ? `<img class="thumb" loading="lazy" alt="" src="${withToken(`/api/events/${encodeURIComponent(e.id)}/snapshot.jpg`)}">` : `<span class="thumb"></span>`;
    const dur = e.end ? fmtDuration(new Date(e.end) - new Date(e.start)) : `${fmtDuration(Date.now() - new Date(e.start))}, active`;
    li.innerHTML = `${thumb}<div><span class="sev"></span><b class="type"></b> <span class="cam"></span><br><span class="muted">${fmtTime(e.start)} · ${dur}</span><span class="zones muted"></span></div>`;
    li.querySelector(".type").textContent = eventTitle(e);
    li.querySelector(".cam").textContent = e.camera;
    li.querySelector(".sev").textContent = e.severity === "alert" ? "ALERT" : "";
    li.querySelector(".zones").textContent = e.zones && e.zones.length ? ` · in ${e.zones.join(", ")}` : "";
    // Replay the event from 5 s before it started.
    li.addEventListener("click", () => {
      location.href = withToken(`/cameras/${encodeURIComponent(e.camera)}?at=${((Date.parse(e.start) - 5000) / 1000).toFixed(3)}`);
    });
    return li;
  }));
  document.getElementById("ev-empty").hidden = shown.length > 0;
}

// drawOverlays puts each active event's latest boxes over its camera's
// tile, and a badge naming what is going on.
function drawOverlays() {
  for (const [id, el] of tiles) {
    const active = [...events.values()].filter((e) => e.camera === id && !e.end);
    const boxes = el.querySelector(".boxes");
    boxes.replaceChildren(...active.flatMap((e) => e.boxes.map((b) => {
      const d = document.createElement("div");
      d.className = `box ${eventKind(e)}`;
      Object.assign(d.style, { left: `${b.x * 100}%`, top: `${b.y * 100}%`, width: `${b.w * 100}%`, height: `${b.h * 100}%` });
      if (e.type === "object") {
        const cap = document.createElement("span");
        cap.className = "cap";
        cap.textContent = eventTitle(e);
        d.append(cap);
      }
      return d;
    })));
    const badge = el.querySelector(".badge");
    const types = [...new Set(active.map((e) => e.label || e.type))];
    badge.textContent = types.join(" + ").toUpperCase();
    el.classList.toggle("alert", types.length > 0);
  }
}

function apply(e) {
  const old = events.get(e.id);
  if (old && new Date(old.updated) > new Date(e.updated)) return;
  events.set(e.id, e);
}

async function loadEvents() {
  try {
    const res = await fetch(withToken("/api/events?limit=200"), { cache: "no-store" });
    if (!res.ok) return;
    for (const e of await res.json()) apply(e);
    renderList();
    drawOverlays();
  } catch (_) { /* the live stream retries */ }
}

function followEvents() {
  const es = new EventSource(withToken("/api/events/live"));
  for (const phase of ["start", "update", "end"]) {
    es.addEventListener(phase, (m) => {
      apply(JSON.parse(m.data));
      renderList();
      drawOverlays();
    });
  }
  // The server could not replay what we missed: reload the list.
  es.addEventListener("reset", () => serial(loadEvents));
}

filterCamera.addEventListener("change", renderList);
filterType.addEventListener("change", renderList);
filterLabel.addEventListener("change", renderList);
filterSeverity.addEventListener("change", renderList);
// The page's API requests go one at a time, so that they share one
// connection: with the stream and the events' they make three, whatever
// the number of cameras. A task still queued is not queued again.
let chain = Promise.resolve();
const queued = new Set();
function serial(fn) {
  if (queued.has(fn)) return chain;
  queued.add(fn);
  chain = chain.then(() => { queued.delete(fn); return fn(); }).catch(() => {});
  return chain;
}
serial(refresh);
setInterval(() => serial(refresh), 1000);
setInterval(renderList, 1000); // active events' durations
serial(loadEvents).then(followEvents);
setTimeout(() => serial(loadRanges), 1500);
setInterval(() => serial(loadRanges), 10000);

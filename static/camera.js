// streamd single-camera view: full resolution, fullscreen, the camera's
// events, and a timeline over what Kafka holds, with replay (play, pause,
// speed, frame steps, live). The position is kept in the URL (?at=, unix
// seconds; &speed=), so a reload continues where it was and a link can be
// shared. Frames are read with fetch() so that each one's capture time
// (X-Timestamp) is known and shown.
"use strict";
const id = decodeURIComponent(location.pathname.split("/").pop());
const params = new URLSearchParams(location.search);
const token = params.get("token");
const withToken = (url) => token ? `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : url;
const $ = (s) => document.getElementById(s);
const canvas = $("screen"), ctx2d = canvas.getContext("2d");
document.title = `streamd · ${id}`;
$("cam-name").textContent = id;

// State, exposed for tests: mode is live, replay or paused; position is
// the capture time (ms) of the frame on screen.
const st = window.streamd = { mode: "live", position: 0, speed: 1, painted: 0, interval: 100, error: "" };
let abort = null;
let range = { oldest: 0, newest: 0 };
let spans = [];      // the recording's spans (/api/cameras/{id}/spans)
let storage = null;  // this camera's /api/storage entry
let camEvents = [];

const fmt = (ms) => new Date(ms).toLocaleString([], { hour12: false });

async function draw(blob, time) {
  const bmp = await createImageBitmap(blob);
  if (canvas.width !== bmp.width || canvas.height !== bmp.height) {
    canvas.width = bmp.width;
    canvas.height = bmp.height;
  }
  ctx2d.drawImage(bmp, 0, 0);
  bmp.close();
  if (st.position && time > st.position) st.interval = Math.min(1000, time - st.position);
  st.position = time;
  st.painted++;
  $("clock").textContent = fmt(time);
  drawCursor();
}

function setURL() {
  const q = new URLSearchParams();
  if (token) q.set("token", token);
  if (st.mode !== "live" && st.position) q.set("at", (st.position / 1000).toFixed(3));
  if (st.speed !== 1) q.set("speed", String(st.speed));
  history.replaceState(null, "", `${location.pathname}${q.toString() ? "?" + q : ""}`);
}

function showMode() {
  const caughtUp = st.mode === "replay" && Date.now() - st.position < 2000;
  $("mode").textContent = st.mode === "live" ? "live" : st.mode === "paused" ? "paused" : caughtUp ? `replay ×${st.speed}, caught up: live` : `replay ×${st.speed}`;
  $("badge").textContent = st.mode === "live" ? "LIVE" : st.mode === "paused" ? "PAUSED" : "REPLAY";
  $("badge").className = st.mode;
  $("play").textContent = st.mode === "paused" ? "play" : "pause";
  $("back").disabled = $("fwd").disabled = st.mode !== "paused";
}

// play streams url onto the canvas until aborted or the stream ends; a
// stream that ends or fails (a restart, a network drop) is opened again
// from where it was, unless the user moved on meanwhile.
async function play(url, mode) {
  if (abort) abort.abort();
  const ac = abort = new AbortController();
  st.mode = mode;
  st.error = "";
  showMode();
  setURL();
  let status = 0;
  try {
    for await (const part of mjpegParts(withToken(url), ac.signal)) {
      try {
        await draw(part.blob, part.time);
      } catch (_) { continue; } // one undecodable frame: skip it
      if (ac.signal.aborted) return; // a seek replaced this stream meanwhile
      if (st.mode !== "live") setURL();
      showMode();
    }
  } catch (e) {
    if (ac.signal.aborted) return;
    st.error = e.message;
    status = e.status || 0;
    $("status").textContent = e.message;
  }
  if (ac.signal.aborted || (status >= 400 && status < 500)) return;
  setTimeout(() => {
    if (abort !== ac) return; // the user paused or seeked meanwhile
    if (mode === "live") live(); else replay(st.position + 1);
  }, 2000);
}

const live = () => play(`/stream/${encodeURIComponent(id)}`, "live");
const replay = (ms) => {
  st.position = ms;
  st.seek = ms; // the last time asked for (for tests)
  $("status").textContent = "";
  play(`/stream/${encodeURIComponent(id)}?at=${(ms / 1000).toFixed(3)}&speed=${st.speed}`, "replay");
};

function pause() {
  if (abort) abort.abort();
  st.mode = "paused";
  showMode();
  setURL();
}

async function step(dir) {
  if (st.mode !== "paused") return;
  const at = dir > 0 ? st.position + 1 : st.position - 1.5 * st.interval;
  const res = await fetch(withToken(`/snapshot/${encodeURIComponent(id)}?at=${(at / 1000).toFixed(3)}`), { cache: "no-store" });
  if (!res.ok) return;
  const t = parseFloat(res.headers.get("X-Timestamp")) * 1000;
  if (dir < 0 && t >= st.position) { st.interval *= 2; return; } // no earlier frame found that close
  await draw(await res.blob(), t);
  setURL();
}

// ---- timeline ----
const tl = $("timeline");
const frac = (ms) => range.newest > range.oldest ? (ms - range.oldest) / (range.newest - range.oldest) : 0;
function drawCursor() {
  $("tl-cursor").style.left = `${Math.min(1, Math.max(0, frac(st.position))) * 100}%`;
}
// Recorded spans under the events: full rate (every frame, around
// events) dark, reduced rate (a frame a second) light; where the timeline
// has neither, only the frames topic holds video (full rate, recent).
function drawSpans() {
  $("tl-spans").replaceChildren(...spans.map((s) => {
    const d = document.createElement("div");
    const a = Date.parse(s.start), b = Date.parse(s.end);
    d.className = `span ${s.tier}`;
    d.style.left = `${Math.max(0, frac(a)) * 100}%`;
    d.style.width = `${Math.max(0.2, (Math.min(1, frac(b)) - Math.max(0, frac(a))) * 100)}%`;
    d.title = `${s.tier === "full" ? "full rate" : "1 frame/s"} ${fmt(a)} – ${fmt(b)}`;
    return d;
  }));
}
function drawTimeline() {
  drawSpans();
  const lag = storage ? storage.recorder_lag_seconds : undefined;
  const behind = lag !== undefined && lag > 2; // the recorder falls behind
  const lost = storage ? storage.recorder_lost_frames || 0 : 0;
  $("tl-held").textContent = storage ? `recorded back ${storage.held}${storage.budget_cut ? " (cut short by recording.max_bytes)" : ""}${behind ? `; the recorder is ${Math.round(lag)} s behind` : ""}${lost ? `; ${lost} frames lost (the recorder fell further behind than the frames topic's retention)` : ""}` : "";
  $("tl-held").classList.toggle("warn", !!(storage && (storage.budget_cut || behind || lost)));
  $("tl-oldest").textContent = range.oldest ? fmt(range.oldest) : "";
  $("tl-newest").textContent = range.newest ? fmt(range.newest) : "";
  $("tl-events").replaceChildren(...camEvents.map((e) => {
    const d = document.createElement("div");
    const s = Date.parse(e.start), end = e.end ? Date.parse(e.end) : range.newest;
    d.className = `mark ${eventKind(e)}`;
    d.style.left = `${Math.max(0, frac(s)) * 100}%`;
    d.style.width = `${Math.max(0.3, (frac(end) - Math.max(0, frac(s))) * 100)}%`;
    d.title = `${eventTitle(e)} ${fmt(s)}`;
    return d;
  }));
  drawCursor();
}
async function loadRange() {
  try {
    const res = await fetch(withToken(`/api/cameras/${encodeURIComponent(id)}/range`), { cache: "no-store" });
    if (res.ok) {
      const r = await res.json();
      range = { oldest: Date.parse(r.oldest), newest: Date.parse(r.newest) };
    }
    const ev = await fetch(withToken(`/api/events?camera=${encodeURIComponent(id)}&limit=500`), { cache: "no-store" });
    if (ev.ok) camEvents = await ev.json();
    const sp = await fetch(withToken(`/api/cameras/${encodeURIComponent(id)}/spans`), { cache: "no-store" });
    if (sp.ok) spans = (await sp.json()).spans;
    const so = await fetch(withToken("/api/storage"), { cache: "no-store" });
    if (so.ok) storage = (await so.json()).cameras.find((c) => c.camera === id) || null;
  } catch (_) { /* next time */ }
  drawTimeline();
  renderEvents();
}
let dragging = false;
const seekAt = (ev) => {
  const r = tl.getBoundingClientRect();
  const f = Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
  return range.oldest + f * (range.newest - range.oldest);
};
tl.addEventListener("pointerdown", (ev) => { dragging = true; st.position = seekAt(ev); drawCursor(); });
tl.addEventListener("pointermove", (ev) => { if (dragging) { st.position = seekAt(ev); drawCursor(); } });
tl.addEventListener("pointerup", (ev) => { dragging = false; replay(seekAt(ev)); });

function renderEvents() {
  const list = $("ev-list");
  list.replaceChildren(...camEvents.slice(0, 200).map((e) => {
    const li = document.createElement("li");
    li.className = `event ${eventKind(e)}${e.end ? "" : " active"}`;
    const thumb = e.snapshot ? `<img class="thumb" alt="" src="${withToken(`/api/events/${encodeURIComponent(e.id)}/snapshot.jpg`)}">` : `<span class="thumb"></span>`;
    li.innerHTML = `${thumb}<div><span class="sev"></span><b class="type"></b><br><span class="muted">${fmt(Date.parse(e.start))}</span><span class="zones muted"></span></div>`;
    li.querySelector(".type").textContent = eventTitle(e);
    li.querySelector(".sev").textContent = e.severity === "alert" ? "ALERT" : "";
    li.querySelector(".zones").textContent = e.zones && e.zones.length ? ` · in ${e.zones.join(", ")}` : "";
    li.addEventListener("click", () => replay(Date.parse(e.start) - 5000));
    if (e.end) {
      const a = document.createElement("a");
      a.className = "clip";
      a.textContent = "MP4";
      a.href = withToken(`/api/events/${encodeURIComponent(e.id)}/clip.mp4`);
      a.addEventListener("click", (ev) => ev.stopPropagation());
      li.append(a);
    }
    return li;
  }));
  $("ev-empty").hidden = camEvents.length > 0;
}

// ---- the day timeline: 24 hours of one day, two clicks to a moment ----
// A day button (or the date field), then a click on the day: replay from
// there. The bar draws how much of the frame moved, minute by minute (the
// analyzer's activity), the recorded spans under it and the events over
// it; previous and next event jump between the camera's events.
const pad2 = (n) => String(n).padStart(2, "0");
const dayKey = (d) => `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
function dayStart(key) {
  const [y, m, d] = key.split("-").map((x) => parseInt(x, 10));
  return new Date(y, m - 1, d).getTime();
}
const dayEnd = (key) => { const d = new Date(dayStart(key)); d.setDate(d.getDate() + 1); return d.getTime(); };
const day = { key: dayKey(new Date()), minutes: [], spans: [], events: [], loadedKey: "", loadedAt: 0, follow: true };
st.day = day.key;
// Every camera event held (for previous / next), newest first.
let allEvents = [];

function dayButtons() {
  const oldest = range.oldest ? new Date(range.oldest) : new Date();
  const today = new Date();
  const keys = [];
  for (const d = new Date(today.getFullYear(), today.getMonth(), today.getDate()); keys.length < 8 && d.getTime() >= new Date(oldest.getFullYear(), oldest.getMonth(), oldest.getDate()).getTime(); d.setDate(d.getDate() - 1)) {
    keys.push(dayKey(d));
  }
  keys.reverse();
  const have = [...$("days").children].map((b) => b.dataset.day).join(",");
  if (have !== keys.join(",")) {
    $("days").replaceChildren(...keys.map((k) => {
      const b = document.createElement("button");
      b.dataset.day = k;
      const d = new Date(dayStart(k));
      b.textContent = k === dayKey(today) ? "today" : d.toLocaleDateString([], { weekday: "short", day: "numeric" });
      b.title = d.toLocaleDateString();
      b.addEventListener("click", () => showDay(k, false));
      return b;
    }));
  }
  for (const b of $("days").children) b.classList.toggle("on", b.dataset.day === day.key);
  $("day-pick").value = day.key;
  if (range.oldest) $("day-pick").min = dayKey(new Date(range.oldest));
  $("day-pick").max = dayKey(today);
}

// showDay shows a day; follow keeps it on the day of the position (live
// or replay) until the user picks one.
function showDay(key, follow) {
  day.key = key;
  day.follow = follow;
  st.day = key;
  loadDay();
}

async function loadDay() {
  const key = day.key, from = dayStart(key), to = dayEnd(key);
  const iso = (ms) => new Date(ms).toISOString();
  try {
    const a = await fetch(withToken(`/api/cameras/${encodeURIComponent(id)}/activity?from=${iso(from)}&to=${iso(to)}`), { cache: "no-store" });
    day.minutes = a.ok ? (await a.json()).minutes : [];
    const sp = await fetch(withToken(`/api/cameras/${encodeURIComponent(id)}/spans?from=${iso(from)}&to=${iso(to)}`), { cache: "no-store" });
    day.spans = sp.ok ? (await sp.json()).spans : [];
    const ev = await fetch(withToken(`/api/events?camera=${encodeURIComponent(id)}&since=${iso(from)}&until=${iso(to)}&limit=1000`), { cache: "no-store" });
    day.events = ev.ok ? await ev.json() : [];
    const all = await fetch(withToken(`/api/events?camera=${encodeURIComponent(id)}&limit=1000`), { cache: "no-store" });
    if (all.ok) allEvents = await all.json();
  } catch (_) { /* next time */ }
  if (key !== day.key) return; // another day was picked meanwhile
  day.loadedKey = key;
  day.loadedAt = Date.now();
  st.dayMinutes = day.minutes.length;
  drawDay();
}

const dayFrac = (ms) => (ms - dayStart(day.key)) / (dayEnd(day.key) - dayStart(day.key));
function drawDay() {
  dayButtons();
  // Density: a column a minute, its height how much of the frame moved
  // (the square root of the mean changed area, full at a quarter of the
  // frame, so that small motion still shows), brighter the more of the
  // minute's frames had motion.
  const c = $("day-density"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const from = dayStart(day.key), span = dayEnd(day.key) - from;
  for (const m of day.minutes) {
    const x = Math.floor((Date.parse(m.t) - from) / span * c.width);
    const h = Math.max(m.area > 0 ? 2 : 1, Math.min(1, Math.sqrt(m.area / 0.25)) * c.height);
    g.fillStyle = m.area > 0 ? `rgba(255, 136, 0, ${0.35 + 0.65 * m.moving})` : "rgba(120, 120, 120, 0.6)";
    g.fillRect(x, c.height - h, Math.max(1, Math.ceil(c.width / (span / 60000))), h);
  }
  const bar = (s, e, cls, title) => {
    const d = document.createElement("div");
    const a = Math.max(0, dayFrac(s)), b = Math.min(1, dayFrac(e));
    d.className = cls;
    d.style.left = `${a * 100}%`;
    d.style.width = `${Math.max(0.15, (b - a) * 100)}%`;
    d.title = title;
    return d;
  };
  $("day-spans").replaceChildren(...day.spans.map((sp) => bar(Date.parse(sp.start), Date.parse(sp.end), `span ${sp.tier}`, `${sp.tier === "full" ? "full rate" : "1 frame/s"} ${fmt(Date.parse(sp.start))} – ${fmt(Date.parse(sp.end))}`)));
  $("day-events").replaceChildren(...day.events.map((e) => {
    const s = Date.parse(e.start), end = e.end ? Date.parse(e.end) : Date.now();
    const d = bar(s, end, `mark ${e.type}`, `${e.label || e.type} ${fmt(s)}`);
    d.dataset.id = e.id;
    return d;
  }));
  if (!$("day-hours").children.length) {
    $("day-hours").replaceChildren(...[0, 3, 6, 9, 12, 15, 18, 21, 24].map((h) => {
      const s = document.createElement("span");
      s.textContent = `${pad2(h)}:00`;
      s.style.left = `${h / 24 * 100}%`;
      return s;
    }));
  }
  const moved = day.minutes.filter((m) => m.area > 0).length;
  $("day-info").textContent = `${day.events.length} event${day.events.length === 1 ? "" : "s"}, motion in ${moved} of ${day.minutes.length} minutes analysed`;
  drawDayCursor();
}
function drawDayCursor() {
  const f = dayFrac(st.mode === "live" ? Date.now() : st.position);
  $("day-cursor").hidden = !(f >= 0 && f <= 1);
  $("day-cursor").style.left = `${Math.min(1, Math.max(0, f)) * 100}%`;
}
const dayTL = $("day-tl");
const dayAt = (ev) => {
  const r = dayTL.getBoundingClientRect();
  return dayStart(day.key) + Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width)) * (dayEnd(day.key) - dayStart(day.key));
};
dayTL.addEventListener("pointermove", (ev) => {
  const r = dayTL.getBoundingClientRect();
  const h = $("day-hover");
  h.textContent = new Date(dayAt(ev)).toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit" });
  h.style.left = `${ev.clientX - r.left}px`;
  h.hidden = false;
});
dayTL.addEventListener("pointerleave", () => { $("day-hover").hidden = true; });
dayTL.addEventListener("click", (ev) => {
  // The minute the label under the pointer shows.
  const at = Math.floor(dayAt(ev) / 60000) * 60000;
  if (at > Date.now()) return;
  replay(at);
});
$("day-pick").addEventListener("change", (ev) => { if (ev.target.value) showDay(ev.target.value, false); });

// Previous and next event, from the position on screen: the camera's
// events held (events.history), played from 2 s before their start. Right
// after a jump (the position within 3 s of it, or a chunk before it) they step from the jump's
// point, not the position, so that events a moment apart (people walking
// in together) are each visited, and P after N comes back.
let lastJump = null;
function jumpEvent(dir) {
  const pos = st.mode === "live" ? Date.now() : st.position;
  const near = lastJump !== null && st.mode !== "live" && pos > lastJump - 2500 && pos < lastJump + 3000;
  const points = [...new Set(allEvents.map((e) => Date.parse(e.start) - 2000))].sort((a, b) => a - b);
  const t = dir > 0
    ? points.find((p) => (near ? p > lastJump : p > pos + 500))
    : points.reverse().find((p) => (near ? p < lastJump : p < pos - 1500));
  if (t === undefined) {
    $("status").textContent = dir > 0 ? "no later event" : "no earlier event held";
    return;
  }
  $("status").textContent = "";
  lastJump = t;
  replay(t);
}
$("ev-prev").addEventListener("click", () => jumpEvent(-1));
$("ev-next").addEventListener("click", () => jumpEvent(1));
// The day follows the position unless one was picked; data reloads every
// 30 s (today's grows).
setInterval(() => {
  const pos = st.mode === "live" ? Date.now() : st.position;
  if (day.follow && pos && dayKey(new Date(pos)) !== day.key) { showDay(dayKey(new Date(pos)), true); return; }
  drawDayCursor();
  if (Date.now() - day.loadedAt > 30000) loadDay();
}, 1000);

// ---- export several cameras: one window, a ZIP of MP4s ----
const localInput = (ms) => { const d = new Date(ms); return `${dayKey(d)}T${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`; };
$("export-many").addEventListener("toggle", async () => {
  if (!$("export-many").open) return;
  const to = st.mode === "live" ? Date.now() : st.position;
  $("xp-to").value = localInput(to);
  $("xp-from").value = localInput(to - 60000);
  try {
    const res = await fetch(withToken("/api/cameras"), { cache: "no-store" });
    const cams = res.ok ? await res.json() : [];
    $("xp-cams").replaceChildren(...cams.map((c) => {
      const l = document.createElement("label");
      l.innerHTML = `<input type="checkbox"> <span></span>`;
      l.querySelector("input").value = c.id;
      l.querySelector("input").checked = c.id === id;
      l.querySelector("span").textContent = c.id;
      return l;
    }));
  } catch (_) { /* the list stays empty */ }
});
function exportURL() {
  const cams = [...document.querySelectorAll("#xp-cams input:checked")].map((c) => encodeURIComponent(c.value));
  const from = new Date($("xp-from").value).getTime() / 1000, to = new Date($("xp-to").value).getTime() / 1000;
  return withToken(`/api/export?cameras=${cams.join(",")}&from=${from.toFixed(3)}&to=${to.toFixed(3)}`);
}
$("xp-go").addEventListener("click", async () => {
  const url = exportURL();
  st.exportURL = url;
  // The window and the cameras are checked first (a HEAD costs no
  // encoding), so that a mistake is said here, not as a download.
  const res = await fetch(url, { method: "HEAD", cache: "no-store" }).catch(() => null);
  if (!res || !res.ok) {
    $("xp-note").textContent = !res ? "the server did not answer" : res.status === 400 ? "pick at least one camera and a window no longer than recording.max_export (10 min by default)" : res.status === 429 ? "too many exports running: try again in a moment" : `refused: HTTP ${res.status}`;
    return;
  }
  $("xp-note").textContent = "encoding… the download starts when the first camera is done";
  location.href = url;
});

// ---- masks and zones editor: polygons on a snapshot, YAML out ----
// Everything stays in the page: the server never writes its config.
const ed = st.editor = { polygons: [], current: null, yaml: "" };
const edCanvas = $("ed-canvas"), edCtx = edCanvas.getContext("2d");
const zoneName = /^[A-Za-z0-9_-]{1,64}$/;
function edSnapshot() {
  $("ed-img").src = withToken(`/snapshot/${encodeURIComponent(id)}?t=${Date.now()}`);
}
$("ed-img").addEventListener("load", () => {
  edCanvas.width = $("ed-img").naturalWidth;
  edCanvas.height = $("ed-img").naturalHeight;
  edDraw();
});
$("editor").addEventListener("toggle", () => { if ($("editor").open && !$("ed-img").src) edSnapshot(); });
$("ed-snap").addEventListener("click", edSnapshot);
const showZoneFields = () => { const z = $("ed-kind").value === "zone"; $("ed-zone").hidden = !z; $("ed-inertia-l").hidden = !z; };
$("ed-kind").addEventListener("change", showZoneFields);
showZoneFields();
// The point under the pointer, in 0..1 of the frame.
function edPoint(ev) {
  const r = edCanvas.getBoundingClientRect();
  return [Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height))];
}
// A vertex within 10 px of the pointer: [polygon, index], or null.
function edNear(ev) {
  const r = edCanvas.getBoundingClientRect();
  const all = ed.current ? [...ed.polygons, ed.current] : ed.polygons;
  for (const p of all) {
    for (let i = 0; i < p.points.length; i++) {
      const [x, y] = p.points[i];
      if (Math.hypot(x * r.width - (ev.clientX - r.left), y * r.height - (ev.clientY - r.top)) < 10) return [p, i];
    }
  }
  return null;
}
let edDrag = null;
edCanvas.addEventListener("pointerdown", (ev) => {
  const near = edNear(ev);
  if (near && near[0] === ed.current && near[1] === 0 && ed.current.points.length >= 3) { edFinish(); return; }
  if (near) { edDrag = near; edCanvas.setPointerCapture(ev.pointerId); return; }
  if (!ed.current) {
    const kind = $("ed-kind").value;
    ed.current = { kind, name: kind === "zone" ? $("ed-name").value.trim() : "", inertia: parseInt($("ed-inertia").value, 10) || 3, points: [] };
  }
  ed.current.points.push(edPoint(ev));
  edDraw();
});
edCanvas.addEventListener("pointermove", (ev) => {
  if (!edDrag) return;
  edDrag[0].points[edDrag[1]] = edPoint(ev);
  edDraw();
});
edCanvas.addEventListener("pointerup", () => { edDrag = null; });
function edFinish() {
  const p = ed.current;
  if (!p || p.points.length < 3) { $("ed-note").textContent = "a polygon needs at least three points"; return; }
  if (p.kind === "zone") {
    if (!zoneName.test(p.name)) { $("ed-note").textContent = "name the zone with letters, digits, _ or - (up to 64)"; return; }
    if (ed.polygons.some((q) => q.kind === "zone" && q.name === p.name)) { $("ed-note").textContent = `there is a zone ${p.name} already`; return; }
  }
  ed.polygons.push(p);
  ed.current = null;
  $("ed-note").textContent = "";
  // The next zone gets a fresh name.
  if (p.kind === "zone") { let n = ed.polygons.filter((q) => q.kind === "zone").length + 1; while (ed.polygons.some((q) => q.name === `zone${n}`)) n++; $("ed-name").value = `zone${n}`; }
  edDraw();
}
$("ed-done").addEventListener("click", edFinish);
$("ed-undo").addEventListener("click", () => { if (ed.current) { ed.current.points.pop(); if (!ed.current.points.length) ed.current = null; } edDraw(); });
$("ed-clear").addEventListener("click", () => { ed.polygons = []; ed.current = null; edDraw(); });
$("ed-copy").addEventListener("click", async () => {
  try { await navigator.clipboard.writeText(ed.yaml); $("ed-note").textContent = "copied"; } catch (_) { $("ed-yaml").select(); $("ed-note").textContent = "press Ctrl+C to copy"; }
});
$("editor").addEventListener("keydown", (ev) => {
  if (ev.target.tagName === "INPUT") return;
  if (ev.key === "Enter") { edFinish(); ev.preventDefault(); ev.stopPropagation(); }
  if (ev.key === "Backspace") { $("ed-undo").click(); ev.preventDefault(); ev.stopPropagation(); }
});
const num = (v) => String(Math.round(v * 1000) / 1000);
const pts = (p) => `[${p.points.map(([x, y]) => `[${num(x)}, ${num(y)}]`).join(", ")}]`;
// The YAML of the camera's entry: cameras[].motion.masks and
// cameras[].zones, in the shapes the config reads.
function edYAML() {
  const masks = ed.polygons.filter((p) => p.kind === "mask"), zones = ed.polygons.filter((p) => p.kind === "zone");
  const idYAML = /^[A-Za-z0-9_.-]+$/.test(id) && !/^[0-9.-]+$/.test(id) ? id : JSON.stringify(id);
  let y = `cameras:\n  - id: ${idYAML}\n`;
  if (masks.length) y += "    motion:\n      masks:\n" + masks.map((p) => `        - ${pts(p)}\n`).join("");
  if (zones.length) y += "    zones:\n" + zones.map((p) => `      - name: ${p.name}\n        points: ${pts(p)}\n        inertia: ${p.inertia}\n`).join("");
  if (!masks.length && !zones.length) y += "    # draw a mask or a zone on the snapshot\n";
  return y;
}
function edDraw() {
  const w = edCanvas.width, h = edCanvas.height;
  edCtx.clearRect(0, 0, w, h);
  const all = ed.current ? [...ed.polygons, ed.current] : ed.polygons;
  for (const p of all) {
    const color = p.kind === "mask" ? "229, 85, 85" : "68, 170, 255";
    edCtx.beginPath();
    p.points.forEach(([x, y], i) => (i ? edCtx.lineTo(x * w, y * h) : edCtx.moveTo(x * w, y * h)));
    if (p !== ed.current) edCtx.closePath();
    edCtx.fillStyle = `rgba(${color}, 0.3)`;
    edCtx.strokeStyle = `rgb(${color})`;
    edCtx.lineWidth = Math.max(2, w / 400);
    if (p !== ed.current) edCtx.fill();
    edCtx.stroke();
    for (const [x, y] of p.points) { edCtx.fillStyle = `rgb(${color})`; edCtx.fillRect(x * w - 4, y * h - 4, 8, 8); }
    if (p.kind === "zone" && p.points.length) {
      edCtx.font = `${Math.max(14, w / 50)}px sans-serif`;
      edCtx.fillStyle = "#fff";
      edCtx.fillText(p.name, p.points[0][0] * w + 6, p.points[0][1] * h - 6);
    }
  }
  $("ed-list").replaceChildren(...ed.polygons.map((p, i) => {
    const li = document.createElement("li");
    li.textContent = `${p.kind === "mask" ? "mask" : `zone ${p.name}`}: ${p.points.length} points `;
    const b = document.createElement("button");
    b.textContent = "delete";
    b.addEventListener("click", () => { ed.polygons.splice(i, 1); edDraw(); });
    li.append(b);
    return li;
  }));
  ed.yaml = $("ed-yaml").value = edYAML();
}
edDraw();

$("play").addEventListener("click", () => st.mode === "paused" ? replay(st.position + 1) : pause());
$("back").addEventListener("click", () => step(-1));
$("fwd").addEventListener("click", () => step(1));
$("live").addEventListener("click", live);
$("speed").addEventListener("change", (e) => {
  st.speed = parseFloat(e.target.value);
  if (st.mode === "replay") replay(st.position + 1);
  else setURL();
});
$("export").addEventListener("click", (ev) => {
  const to = (st.mode === "live" ? Date.now() : st.position) / 1000;
  ev.currentTarget.href = withToken(`/api/cameras/${encodeURIComponent(id)}/export?from=${(to - 60).toFixed(3)}&to=${to.toFixed(3)}`);
});
$("full").addEventListener("click", () => $("player").requestFullscreen?.());
// Keys: arrows step one frame while paused, space plays or pauses, F
// fullscreen, L live; not while typing in a field.
document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || /^(INPUT|SELECT|TEXTAREA)$/.test(ev.target.tagName)) return;
  if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
    if (st.mode !== "paused") return;
    step(ev.key === "ArrowRight" ? 1 : -1);
  } else if (ev.key === " ") {
    if (st.mode === "paused") replay(st.position + 1); else pause();
  } else if (ev.key === "f" || ev.key === "F") {
    if (document.fullscreenElement) document.exitFullscreen?.(); else $("player").requestFullscreen?.().catch(() => {});
  } else if (ev.key === "l" || ev.key === "L") {
    live();
  } else if (ev.key === "n" || ev.key === "N") {
    jumpEvent(1);
  } else if (ev.key === "p" || ev.key === "P") {
    jumpEvent(-1);
  } else {
    return;
  }
  ev.preventDefault();
});

const at = parseFloat(params.get("at"));
const sp = parseFloat(params.get("speed"));
if (sp >= 0.25 && sp <= 8) { st.speed = sp; $("speed").value = String(sp); }
loadRange().then(() => { if (at > 0) showDay(dayKey(new Date(at * 1000)), true); else loadDay(); });
setInterval(loadRange, 5000);
if (at > 0) replay(at * 1000); else live();

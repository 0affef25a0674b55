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
    d.className = `mark ${e.type}`;
    d.style.left = `${Math.max(0, frac(s)) * 100}%`;
    d.style.width = `${Math.max(0.3, (frac(end) - Math.max(0, frac(s))) * 100)}%`;
    d.title = `${e.type} ${fmt(s)}`;
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
    li.className = `event ${e.type}${e.end ? "" : " active"}`;
    const thumb = e.snapshot ? `<img class="thumb" alt="" src="${withToken(`/api/events/${encodeURIComponent(e.id)}/snapshot.jpg`)}">` : `<span class="thumb"></span>`;
    li.innerHTML = `${thumb}<div><b class="type"></b><br><span class="muted">${fmt(Date.parse(e.start))}</span></div>`;
    li.querySelector(".type").textContent = e.type;
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
  } else {
    return;
  }
  ev.preventDefault();
});

const at = parseFloat(params.get("at"));
const sp = parseFloat(params.get("speed"));
if (sp >= 0.25 && sp <= 8) { st.speed = sp; $("speed").value = String(sp); }
loadRange();
setInterval(loadRange, 5000);
if (at > 0) replay(at * 1000); else live();

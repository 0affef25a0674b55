// streamd review page: one day's review items (/api/review), alerts,
// detections and, for cameras without object detection, motion, grouped
// by hour, newest first, filtered by camera, label, zone and kind, with
// the event's snapshot; hovering a picture flips through the event's
// frames from the recording's reduced tier (/api/events/{id}/preview, a
// frame a second as stored); ✓ marks an item reviewed (POST
// /api/review/marks), which every web node then shows. The day and the
// filters are kept in the URL, so a link opens the same view.
"use strict";
const $ = (s) => document.getElementById(s);
const params = new URLSearchParams(location.search);
const token = params.get("token");
const withToken = (url) => token ? `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : url;
// For tests and the curious: the items shown and the requests made.
const st = window.streamd = { items: 0, loads: 0, marked: 0, previews: 0, error: "" };

const pad = (n) => String(n).padStart(2, "0");
const dayString = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

// ---- state: the day and the filters, from and to the URL ----
let day = params.get("date") || dayString(new Date());
$("day").value = day;
for (const [id, key] of [["f-camera", "camera"], ["f-what", "what"], ["f-zone", "zone"]]) {
  const v = params.get(key);
  if (v) { const o = document.createElement("option"); o.value = o.textContent = v; $(id).append(o); $(id).value = v; }
}
if (params.get("reviewed") === "false") $("f-unreviewed").checked = true;
if (params.get("kind")) {
  const kinds = params.get("kind").split(",");
  for (const cb of document.querySelectorAll(".kinds input")) cb.checked = kinds.includes(cb.value);
}
const kinds = () => [...document.querySelectorAll(".kinds input")].filter((cb) => cb.checked).map((cb) => cb.value);

function setURL() {
  const q = new URLSearchParams();
  if (token) q.set("token", token);
  if (day !== dayString(new Date())) q.set("date", day);
  for (const [id, key] of [["f-camera", "camera"], ["f-what", "what"], ["f-zone", "zone"]]) if ($(id).value) q.set(key, $(id).value);
  if (kinds().length < 3) q.set("kind", kinds().join(","));
  if ($("f-unreviewed").checked) q.set("reviewed", "false");
  history.replaceState(null, "", `${location.pathname}${q.toString() ? "?" + q : ""}`);
}

// The day's window in local time: midnight to midnight.
function windowOf(d) {
  const [y, m, dd] = d.split("-").map((x) => parseInt(x, 10));
  const since = new Date(y, m - 1, dd);
  const until = new Date(y, m - 1, dd + 1);
  return { since, until };
}

// ---- loading ----
let data = { items: [] };
async function load() {
  const { since, until } = windowOf(day);
  const q = new URLSearchParams({ since: since.toISOString(), until: until.toISOString(), limit: "5000" });
  for (const [id, key] of [["f-camera", "camera"], ["f-what", "what"], ["f-zone", "zone"]]) if ($(id).value) q.set(key, $(id).value);
  const k = kinds();
  if (k.length === 0) { data = { items: [], counts: data.counts || {} }; render(); return; }
  if (k.length < 3) q.set("kind", k.join(","));
  if ($("f-unreviewed").checked) q.set("reviewed", "false");
  try {
    const res = await fetch(withToken(`/api/review?${q}`), { cache: "no-store" });
    if (!res.ok) throw new Error((await res.json()).error || `HTTP ${res.status}`);
    data = await res.json();
    st.loads++;
    st.error = "";
    $("status").textContent = data.truncated ? "more items than shown: narrow the filters" : "";
  } catch (e) {
    st.error = e.message;
    $("status").textContent = `cannot load the review: ${e.message}`;
  }
  fillSelect("f-camera", data.cameras, "all cameras");
  fillSelect("f-what", data.labels, "all labels");
  fillSelect("f-zone", data.zones, "all zones");
  render();
}

function fillSelect(id, values, all) {
  const sel = $(id), cur = sel.value;
  const want = [...new Set([...(values || []), ...(cur ? [cur] : [])])].sort();
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (want.join("\n") === have.join("\n")) return;
  sel.replaceChildren(new Option(all, ""), ...want.map((v) => new Option(v, v)));
  sel.value = cur;
}

// ---- rendering: hours, newest first ----
function render() {
  const c = data.counts || {};
  for (const k of ["alert", "detection", "motion"]) $(`n-${k}`).textContent = String(c[k] || 0);
  $("n-unreviewed").textContent = `${c.unreviewed || 0} unreviewed`;
  const byHour = new Map();
  for (const it of data.items) {
    const h = new Date(it.start);
    h.setMinutes(0, 0, 0);
    const key = h.getTime();
    if (!byHour.has(key)) byHour.set(key, []);
    byHour.get(key).push(it);
  }
  $("hours").replaceChildren(...[...byHour.entries()].map(([hour, items]) => {
    const sec = document.createElement("section");
    sec.className = "hour";
    sec.dataset.hour = String(hour);
    const h = document.createElement("h3");
    const unreviewed = items.filter((it) => !it.reviewed).length;
    h.innerHTML = `<span class="label"></span> <span class="muted"></span> <button class="mark-hour">mark hour reviewed</button>`;
    h.querySelector(".label").textContent = `${pad(new Date(hour).getHours())}:00`;
    h.querySelector(".muted").textContent = `${items.length} item${items.length === 1 ? "" : "s"}${unreviewed ? `, ${unreviewed} unreviewed` : ""}`;
    h.querySelector(".mark-hour").disabled = unreviewed === 0;
    h.querySelector(".mark-hour").addEventListener("click", () => mark(items.filter((it) => !it.reviewed).map((it) => it.id)));
    const cards = document.createElement("div");
    cards.className = "cards";
    cards.append(...items.map(card));
    sec.append(h, cards);
    return sec;
  }));
  st.items = data.items.length;
  $("empty").hidden = data.items.length > 0;
  $("mark-all").disabled = !data.items.some((it) => !it.reviewed);
}

function card(it) {
  const el = document.createElement("article");
  el.className = `item ${it.kind}${it.reviewed ? " reviewed" : ""}${it.end ? "" : " active"}`;
  el.dataset.id = it.id;
  el.dataset.camera = it.camera;
  const snap = withToken(`/api/events/${encodeURIComponent(it.id)}/snapshot.jpg`);
  el.innerHTML = `<div class="pic">${it.snapshot ? `<img alt="" loading="lazy">` : `<span class="nopic">no picture</span>`}<span class="kind"></span></div>
    <div class="meta"><b class="what"></b> <span class="cam"></span> <span class="zones"></span><br><span class="muted when"></span></div>
    <button class="mark" title="${it.reviewed ? "reviewed: click to unmark" : "mark reviewed"}">✓</button>`;
  if (it.snapshot) el.querySelector("img").src = snap;
  el.querySelector(".kind").textContent = it.kind;
  el.querySelector(".what").textContent = it.what;
  el.querySelector(".cam").textContent = it.camera;
  el.querySelector(".zones").textContent = (it.zones || []).join(", ");
  const start = Date.parse(it.start);
  const dur = it.end ? fmtDuration(Date.parse(it.end) - start) : `${fmtDuration(Date.now() - start)}, active`;
  el.querySelector(".when").textContent = `${fmtTime(start)} · ${dur}${it.continues ? " · continued" : ""}`;
  if (it.reviewed) el.querySelector(".mark").title = `reviewed by ${it.reviewed.by} at ${fmtTime(Date.parse(it.reviewed.at))}: click to unmark`;
  el.querySelector(".mark").addEventListener("click", (ev) => {
    ev.stopPropagation();
    if (it.reviewed) unmark(it.id); else mark([it.id]);
  });
  // Open: mark it reviewed, then play it from 5 s before.
  el.addEventListener("click", async () => {
    if (!it.reviewed) await mark([it.id], true);
    location.href = withToken(`/cameras/${encodeURIComponent(it.camera)}?at=${((start - 5000) / 1000).toFixed(3)}`);
  });
  const pic = el.querySelector(".pic");
  pic.addEventListener("pointerenter", () => flip(it, el));
  pic.addEventListener("pointerleave", () => stopFlip(el, snap));
  return el;
}

// ---- previews: the reduced tier's frames of an event ----
// Fetched once per event (and kept for the 60 events hovered last), then
// shown in turn while the pointer stays on the picture.
const previews = new Map(); // event id → object URLs (or a pending promise)
let flipping = null;
async function framesOf(it) {
  if (previews.has(it.id)) return previews.get(it.id);
  const p = (async () => {
    const urls = [];
    try {
      for await (const part of mjpegParts(withToken(`/api/events/${encodeURIComponent(it.id)}/preview?n=12`))) urls.push(URL.createObjectURL(part.blob));
    } catch (_) { /* not recorded (yet): the snapshot stays */ }
    st.previews++;
    return urls;
  })();
  previews.set(it.id, p);
  if (previews.size > 60) {
    const [oldest, urls] = previews.entries().next().value;
    previews.delete(oldest);
    Promise.resolve(urls).then((u) => u.forEach((x) => URL.revokeObjectURL(x)));
  }
  const urls = await p;
  // Nothing recorded yet (the recording is a few seconds behind, and
  // lists a new camera after its first 30 s): ask again next time.
  if (urls.length === 0) previews.delete(it.id); else previews.set(it.id, urls);
  return urls;
}
async function flip(it, el) {
  const img = el.querySelector(".pic img");
  if (!img) return;
  const mine = flipping = { el };
  const urls = await framesOf(it);
  if (flipping !== mine || urls.length === 0) return;
  el.classList.add("flipping");
  let i = 0;
  const next = () => {
    if (flipping !== mine) return;
    img.src = urls[i++ % urls.length];
    el.dataset.frame = String(i);
    mine.timer = setTimeout(next, 400);
  };
  next();
}
function stopFlip(el, snap) {
  if (flipping && flipping.el === el) { clearTimeout(flipping.timer); flipping = null; }
  el.classList.remove("flipping");
  const img = el.querySelector(".pic img");
  if (img) img.src = snap;
}

// ---- marks ----
async function mark(ids, quiet) {
  for (let i = 0; i < ids.length; i += 100) {
    try {
      const res = await fetch(withToken("/api/review/marks"), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ids: ids.slice(i, i + 100) }) });
      if (!res.ok) throw new Error((await res.json()).error || `HTTP ${res.status}`);
      st.marked += ids.slice(i, i + 100).length;
    } catch (e) {
      $("status").textContent = `cannot mark: ${e.message}`;
      break;
    }
  }
  if (!quiet) await load();
}
async function unmark(id) {
  try {
    const res = await fetch(withToken(`/api/review/marks/${encodeURIComponent(id)}`), { method: "DELETE" });
    if (!res.ok) throw new Error((await res.json()).error || `HTTP ${res.status}`);
  } catch (e) {
    $("status").textContent = `cannot unmark: ${e.message}`;
  }
  await load();
}

// ---- controls ----
function go(d) {
  day = d;
  $("day").value = d;
  setURL();
  load();
}
function shift(n) {
  const { since } = windowOf(day);
  since.setDate(since.getDate() + n);
  go(dayString(since));
}
$("day").addEventListener("change", (ev) => { if (ev.target.value) go(ev.target.value); });
$("day-prev").addEventListener("click", () => shift(-1));
$("day-next").addEventListener("click", () => shift(1));
$("day-today").addEventListener("click", () => go(dayString(new Date())));
for (const id of ["f-camera", "f-what", "f-zone", "f-unreviewed"]) $(id).addEventListener("change", () => { setURL(); load(); });
for (const cb of document.querySelectorAll(".kinds input")) cb.addEventListener("change", () => { setURL(); load(); });
$("mark-all").addEventListener("click", () => mark(data.items.filter((it) => !it.reviewed).map((it) => it.id)));

load();
// Today's items keep coming (and other nodes' marks): reload every 10 s,
// unless the pointer is flipping through a preview.
setInterval(() => { if (!flipping && !document.hidden) load(); }, 10000);

// streamd UI: one live tile per camera, stats refreshed every second.
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
  el.innerHTML = `<div class="view"><img alt=""><div class="nosignal">no signal</div></div>
    <div class="bar"><span class="name"><span class="dot"></span></span>
    <span class="fps"></span><span class="lat"></span><span class="viewers"></span></div>`;
  el.querySelector(".name").append(cam.id);
  const img = el.querySelector("img");
  img.alt = `camera ${cam.id}`;
  img.src = withToken(`/stream/${encodeURIComponent(cam.id)}`);
  // Reconnect a stream that ended (server restart, network drop).
  img.addEventListener("error", () => setTimeout(() => {
    img.src = withToken(`/stream/${encodeURIComponent(cam.id)}?r=${Date.now()}`);
  }, 2000));
  grid.append(el);
  return el;
}

async function refresh() {
  try {
    const res = await fetch(withToken("/api/cameras"), { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const cams = await res.json();
    status.textContent = cams.length ? `${cams.length} camera${cams.length > 1 ? "s" : ""}` : "no cameras yet";
    for (const cam of cams) {
      const el = tiles.get(cam.id) || tiles.set(cam.id, tile(cam)).get(cam.id);
      el.classList.toggle("live", cam.live);
      el.classList.toggle("stale", !cam.live);
      el.querySelector(".fps").textContent = `${cam.fps.toFixed(1)} fps`;
      el.querySelector(".lat").textContent = `${cam.latency_ms.toFixed(1)} ms`;
      el.querySelector(".viewers").textContent = `${cam.viewers} viewer${cam.viewers === 1 ? "" : "s"}`;
    }
  } catch (e) {
    status.textContent = `cannot load cameras: ${e.message}`;
  }
}
refresh();
setInterval(refresh, 1000);

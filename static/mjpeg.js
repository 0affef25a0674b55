// streamd: what both pages share (one file, so that the page opens no
// more connections than it needs): reading an MJPEG stream with fetch(),
// part by part, with each part's capture time (X-Timestamp) and sequence
// (X-Sequence), which an <img> cannot tell; and what an event is called.
"use strict";

// eventKind is an event's CSS classes: its type and, for objects, its
// review severity (alert or detection).
function eventKind(e) {
  return e.severity ? `${e.type} ${e.severity}` : e.type;
}

// eventTitle is an event's name in lists, marks and box captions: an
// object's label and its score ("person 0.64"), otherwise the type.
function eventTitle(e) {
  if (e.type !== "object") return e.type;
  return typeof e.score === "number" ? `${e.label} ${e.score.toFixed(2)}` : e.label;
}

// mjpegParts yields {time (ms since epoch), seq, blob} for each part of the
// multipart/x-mixed-replace stream at url until it ends or signal aborts.
// A failed request throws an Error with the server's JSON message and
// .status; res (for its headers) is passed to onResponse.
async function* mjpegParts(url, signal, onResponse) {
  const res = await fetch(url, { signal, cache: "no-store" });
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    try { msg = (await res.json()).error || msg; } catch (_) { /* not JSON */ }
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  if (onResponse) onResponse(res);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = new Uint8Array(0);
  const append = (chunk) => {
    const b = new Uint8Array(buf.length + chunk.length);
    b.set(buf);
    b.set(chunk, buf.length);
    buf = b;
  };
  const headerEnd = () => {
    for (let i = 0; i + 3 < buf.length; i++) {
      if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
    }
    return -1;
  };
  for (;;) {
    let end;
    while ((end = headerEnd()) < 0) {
      const { value, done } = await reader.read();
      if (done) return;
      append(value);
    }
    const headers = {};
    for (const line of dec.decode(buf.subarray(0, end)).split("\r\n")) {
      const i = line.indexOf(":");
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const len = parseInt(headers["content-length"], 10);
    const start = end + 4;
    if (!(len >= 0)) throw new Error("part without Content-Length");
    while (buf.length < start + len) {
      const { value, done } = await reader.read();
      if (done) return;
      append(value);
    }
    const blob = new Blob([buf.slice(start, start + len)], { type: headers["content-type"] || "image/jpeg" });
    buf = buf.slice(start + len);
    yield { time: parseFloat(headers["x-timestamp"]) * 1000, seq: headers["x-sequence"], camera: headers["x-camera"], blob };
  }
}

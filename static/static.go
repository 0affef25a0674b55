// Package static holds the web UI's files, embedded into the binary.
package static

import "embed"

// FS holds the pages (index.html, camera.html), their scripts (mjpeg.js is
// shared by both) and style.
//
//go:embed index.html app.js style.css camera.html camera.js mjpeg.js
var FS embed.FS

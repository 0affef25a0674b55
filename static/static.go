// Package static holds the web UI's files, embedded into the binary.
package static

import "embed"

// FS holds the pages (index.html, camera.html, review.html), their
// scripts (mjpeg.js is shared by the index and camera pages) and style.
//
//go:embed index.html app.js style.css camera.html camera.js mjpeg.js review.html review.js
var FS embed.FS

// Package static holds the web UI's files, embedded into the binary.
package static

import "embed"

// FS holds index.html, app.js and style.css.
//
//go:embed index.html app.js style.css
var FS embed.FS

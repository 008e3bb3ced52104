// Package ui holds the status page: plain HTML, CSS and JavaScript,
// embedded in the binary, that reads the daemon's read-only API (GET
// /v1/status, GET /v1/events, GET /v1/models/{model}/versions/{version}/window)
// from the same origin.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handler serves the page's files under prefix (such as "/ui/"). Every
// answer forbids scripts and styles from elsewhere than the page's origin
// and inline, so that nothing a page shows can run as code.
func Handler(prefix string) http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the directory is embedded: it is there
	}
	files := http.StripPrefix(prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

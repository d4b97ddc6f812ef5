package webui

import "net/http"

// Device: Phone (S-17, S-19) and the Expressway-C entry's edit page (S-12).

// devicePages are this file's pages (see allPages).
var devicePages = []page{}

// deviceRoutes mounts this file's handlers.
func (u *UI) deviceRoutes(m *http.ServeMux) {}

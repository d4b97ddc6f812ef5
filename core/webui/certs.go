package webui

import "net/http"

// Certificate Management (S-8, S-11) and activation codes in bulk as CSV (S-17).

// certPages are this file's pages (see allPages).
var certPages = []page{}

// certRoutes mounts this file's handlers.
func (u *UI) certRoutes(m *http.ServeMux) {}

package webui

import "net/http"

// System: Enterprise Parameters (S-9, S-10, token lifetimes), Cisco Unified CM nodes (S-11), Phone Security Profile (S-15, S-16) and utils sipOAuth-mode (S-13, S-14).

// systemPages are this file's pages (see allPages).
var systemPages = []page{}

// systemRoutes mounts this file's handlers.
func (u *UI) systemRoutes(m *http.ServeMux) {}

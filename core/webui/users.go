package webui

import "net/http"

// User Management: a user's refresh-token families, with revoke.

// userPages are this file's pages (see allPages).
var userPages = []page{}

// userRoutes mounts this file's handlers.
func (u *UI) userRoutes(m *http.ServeMux) {}

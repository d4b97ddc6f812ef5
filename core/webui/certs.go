package webui

import "net/http"

// Certificate Management (S-8), activation codes in bulk as CSV, and a user's refresh-token families.

// certPages are this file's pages (see allPages).
var certPages = []page{}

// certRoutes mounts this file's handlers.
func (u *UI) certRoutes(m *http.ServeMux) {}

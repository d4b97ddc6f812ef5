package core

import "github.com/edgeway/edgeway/core/admin"

// The admin API's views of refresh-token families (R-2), as the `edgeway
// admin user …` and `edgeway admin family …` commands decode them.
type (
	FamilyView          = admin.FamilyView
	UserFamilies        = admin.UserFamilies
	RevokedUserFamilies = admin.RevokedUserFamilies
)

package node

// SetActive replaces what a drain waits for, so a test can hold a drain
// open or let it end.
func SetActive(n *Node, f func() (dialogs, allocations int)) { n.activeFn = f }

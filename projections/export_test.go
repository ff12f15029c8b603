package projections

import "testing"

// SetLoadRows makes rebuilds write a Load's rows whenever it holds n, until the test ends: small
// n makes a short log flush many times.
func SetLoadRows(t testing.TB, n int) {
	old := loadRows
	loadRows = n
	t.Cleanup(func() { loadRows = old })
}

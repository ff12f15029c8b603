package search_test

import (
	"testing"

	"github.com/techvault/techvault/internal/testdb"
)

// TestMain drops the package's migrated template database when its tests end.
func TestMain(m *testing.M) { testdb.Main(m) }

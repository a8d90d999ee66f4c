package driver

import (
	"testing"

	"akvinterop/harness"
)

// TestDriver runs the interop suite with the driver's client code at v1.5.6 (this module's
// go.mod; scripts/interop.sh prints the version it resolved to).
func TestDriver(t *testing.T) { harness.Run(t) }

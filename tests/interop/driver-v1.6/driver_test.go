package driver

import (
	"testing"

	"akvinterop/harness"
)

// TestDriver runs the interop suite with the driver's client code at v1.6.0 (this module's go.mod).
func TestDriver(t *testing.T) {
	if got := harness.DriverVersion(); got != "v1.6.0" {
		t.Fatalf("linked sigs.k8s.io/secrets-store-csi-driver %q, want v1.6.0", got)
	}
	harness.Run(t)
}

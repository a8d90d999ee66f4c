// Package mlog stands in for monis.app/mlog, which the Go module proxy does not serve
// (403 "not available" for every version). The driver's packages this suite imports use one
// function of it, mlog.Fatal, in pkg/secrets-store/server.go (the CSI server, which the suite
// never runs); this package gives that function the same shape so the driver's code builds
// unchanged. It is written here, not copied: log the error on stderr and exit.
package mlog

import (
	"fmt"
	"os"
)

// Fatal reports err (and key/value pairs) on stderr and exits with status 255.
func Fatal(err error, keysAndValues ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"fatal:", err}, keysAndValues...)...)
	os.Exit(255)
}

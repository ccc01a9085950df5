package testutil

import (
	"fmt"
	"os"
	"testing"
)

// SkipReportEnv names the file where Skip appends a line per skipped test;
// make test sets it and prints the file after go test's results, so that a
// path the machine could not test is seen in CI's log, with its reason,
// not only in go test -v.
const SkipReportEnv = "GOTF_SKIP_REPORT"

// Skip skips t for reason (fmt.Sprintf(format, args...)) and records the
// test and reason in the file $GOTF_SKIP_REPORT names, if set.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if path := os.Getenv(SkipReportEnv); path != "" {
		// One short O_APPEND write per skip: lines from parallel test
		// binaries do not interleave.
		if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintf(f, "%s: %s\n", t.Name(), reason)
			f.Close()
		}
	}
	t.Skip(reason)
}

// Package apicheck holds a test of the public surface as a whole: every
// exported method of every exported type of the user-facing packages,
// called on a nil receiver and on a zero value with zero arguments, returns
// (an error, a zero value) and never panics or hangs. A service that passes
// a value it forgot to initialize must get an error it can log, not a crash.
// The values that hold resources are checked after Close too
// (closed_test.go): using one fails with an error, or does what its
// documentation promises (a keraslike Model starts a fresh session), and
// closing it again is harmless.
//
// The list of types is generated from the packages' sources (types_test.go,
// `go test ./internal/apicheck -run TestTypesListed -update`), and a test
// fails when it is out of date, so a new type cannot be missed.
package apicheck

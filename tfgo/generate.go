package tfgo

// The typed op wrappers of ops_gen.go are generated from the runtime's op registry.
//go:generate go run ./internal/genop -out ops_gen.go

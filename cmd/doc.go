// Package cmd is the home of the project's command-line tools, one directory
// each (Go convention): inspect, convert, serve, train. None exists yet.
package cmd

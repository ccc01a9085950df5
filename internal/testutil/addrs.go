package testutil

import (
	"net"
	"testing"
)

// FreeAddrs returns n 127.0.0.1 addresses whose ports were free a moment
// ago, for the servers of multi-process tests (a port can be taken again
// before the server binds it; the tests' servers bind at once).
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs
}

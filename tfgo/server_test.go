package tfgo

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// The running server and sessions on its target are tested in child
// processes by packages cgo and distribute: a started server outlives every
// test of the process that starts it.
func TestServerCreateAndClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	def := &cpb.ServerDef{
		Cluster:  &cpb.ClusterDef{Job: []*cpb.JobDef{{Name: "worker", Tasks: map[int32]string{0: addr}}}},
		JobName:  "worker",
		Protocol: "grpc",
	}
	s, err := NewServer(def)
	require.NoError(t, err)
	assert.Equal(t, "grpc://"+addr, s.Target())
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	assert.Equal(t, "", s.Target())
	assert.Error(t, s.Start())
}

func TestServerBadDef(t *testing.T) {
	_, err := NewServer(nil)
	assert.ErrorContains(t, err, "nil ServerDef")
	_, err = NewServer(&cpb.ServerDef{
		Cluster:  &cpb.ClusterDef{Job: []*cpb.JobDef{{Name: "worker", Tasks: map[int32]string{0: "127.0.0.1:1"}}}},
		JobName:  "chief",
		Protocol: "grpc",
	})
	assert.ErrorContains(t, err, "/job:chief/task:0")
	assert.ErrorContains(t, err, `Job "chief" was not defined`)

	var zero Server
	assert.Error(t, zero.Start())
	assert.Error(t, zero.Stop())
	assert.NoError(t, zero.Close())
	var nilServer *Server
	assert.Error(t, nilServer.Start())
	assert.NoError(t, nilServer.Close())
}

#!/usr/bin/env bash
# Generates serve/tfserving (Go code for TF Serving's gRPC API) from the .proto
# files in serve/proto; `make gen-serve` and `go generate ./serve/tfserving` run it.
# The generated code is committed: neither the build nor the tests need protoc.
#
# protoc comes from Debian (protobuf-compiler), the plugins from the Go module
# proxy at pinned versions: protoc-gen-go at go.mod's google.golang.org/protobuf,
# protoc-gen-go-grpc at a release whose output go.mod's google.golang.org/grpc
# supports. TensorFlow's own messages (TensorProto, SignatureDef, Example) are
# not generated again: their descriptors come from graft's packages
# (serve/proto/descset.go), so the generated code imports graft's types.
set -euo pipefail

PROTOC_GEN_GO_GRPC_VERSION=v1.5.1

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}

log() { printf 'gen-serve: %s\n' "$*" >&2; }

if ! command -v protoc >/dev/null; then
  command -v apt-get >/dev/null || { log "protoc missing and no apt-get to install protobuf-compiler"; exit 1; }
  log "installing Debian's protobuf-compiler"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq protobuf-compiler >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

protobuf_version=$($GO list -m -f '{{.Version}}' google.golang.org/protobuf)
log "protoc $(protoc --version | cut -d' ' -f2), protoc-gen-go $protobuf_version, protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION"
GOBIN="$tmp/bin" $GO install "google.golang.org/protobuf/cmd/protoc-gen-go@$protobuf_version"
GOBIN="$tmp/bin" $GO install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

$GO run serve/proto/descset.go >"$tmp/tensorflow.pb"

pkg=github.com/gotf/gotf/serve/tfserving
protos=(serve/proto/tensorflow_serving/apis/*.proto serve/proto/tensorflow_serving/config/*.proto serve/proto/tensorflow_serving/servables/tensorflow/*.proto)
maps=()
for f in "${protos[@]}"; do
  maps+=("M${f#serve/proto/}=$pkg")
done
go_opts=$(IFS=,; echo "module=github.com/gotf/gotf,${maps[*]}")

rm -f serve/tfserving/*.pb.go
PATH="$tmp/bin:$PATH" protoc \
  --descriptor_set_in="$tmp/tensorflow.pb" -I serve/proto \
  --go_out=. --go_opt="$go_opts" \
  --go-grpc_out=. --go-grpc_opt="$go_opts" \
  "${protos[@]#serve/proto/}"
log "wrote $(ls serve/tfserving/*.pb.go | wc -l) files in serve/tfserving"

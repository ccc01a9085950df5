# The two commands for a fresh machine: `make run` (the main job) and `make test`.
# Every target sets up what is missing first (scripts/setup.sh, idempotent).

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
export PKG_CONFIG_PATH := $(ROOT)/.libtensorflow/lib/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))
GO ?= go
# go test's default 10m per package is too short for the interop packages on 2 cores.
TESTFLAGS ?= -timeout 40m

.PHONY: all setup setup-runtime run test vet env clean bench-train

all: test

setup:
	@bash scripts/setup.sh all

setup-runtime:
	@bash scripts/setup.sh runtime

## run: the main job: train the GPT-style language model (examples/transformer); ARGS="-steps 50" to change it
run: setup-runtime
	$(GO) run ./examples/transformer $(ARGS)

## test: every test tier (unit, runtime, interop with Python TensorFlow), plus vet and gofmt
test: setup
	@unformatted=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

vet: setup-runtime
	$(GO) vet ./...

## env: eval "$$(make -s env)" exports what plain go build/test/run need
env:
	@echo 'export PKG_CONFIG_PATH="$(PKG_CONFIG_PATH)"'

clean:
	rm -rf .libtensorflow

## bench-train: train-step time of two GPT configurations, Go vs Keras fit and tf.function (ratios)
bench-train: setup
	.venv/bin/python scripts/bench_train.py $(ARGS)

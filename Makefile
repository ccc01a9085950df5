# The two commands for a fresh machine: `make run` (the main job) and `make test`.
# Every target sets up what is missing first (scripts/setup.sh, idempotent).

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
export PKG_CONFIG_PATH := $(ROOT)/.libtensorflow/lib/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))
GO ?= go
# go test's default 10m per package is too short for the interop packages on 2 cores.
TESTFLAGS ?= -timeout 40m

.PHONY: all setup setup-runtime run test vet env clean bench-train bench-checkpoint bench-memory bench-shards fuzz leak kill h5-campaign

# `make` builds the gotf command before it runs the tests.
all: gotf
all: test

setup:
	@bash scripts/setup.sh all

setup-runtime:
	@bash scripts/setup.sh runtime

## run: the main job: train the GPT-style language model (examples/transformer); ARGS="-steps 50" to change it
run: setup-runtime
	$(GO) run ./examples/transformer $(ARGS)

# Run again under the race detector: the pure-Go packages and those with
# concurrency (savedmodel's parallel writers and publication scanners,
# runner's concurrent runs, the Python worker's pipes, the binding's
# finalizers and tfgo's shared scopes, HDF5 files shared between
# goroutines, writers' locked temporaries).
RACE_PKGS ?= ./dtypes/... ./internal/testutil/... ./internal/pyref ./internal/h5 ./internal/atomicfile ./savedmodel/... ./cgo ./tfgo
# How long each fuzzer runs beyond its seed corpus.
FUZZTIME ?= 10s

## test: every test tier (unit, runtime, interop with Python TensorFlow), plus vet and gofmt,
## then the tests skipped and why, the race detector on RACE_PKGS and each fuzzer for FUZZTIME
test: setup
	@unformatted=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@report=$$(mktemp) && trap 'rm -f "$$report"' EXIT; \
	  echo "$(GO) test $(TESTFLAGS) ./..."; \
	  GOTF_SKIP_REPORT="$$report" $(GO) test $(TESTFLAGS) ./...; status=$$?; \
	  if [ -s "$$report" ]; then echo "Skipped (testutil.Skip):"; sort "$$report" | sed 's/^/  /'; fi; \
	  exit $$status
	$(GO) test -race $(TESTFLAGS) $(RACE_PKGS)
	GO="$(GO)" bash scripts/fuzz.sh $(FUZZTIME)

vet: setup-runtime
	$(GO) vet ./...

## env: eval "$$(make -s env)" exports what plain go build/test/run need (PKG_CONFIG_PATH)
env:
	@echo 'export PKG_CONFIG_PATH="$(PKG_CONFIG_PATH)"'

clean:
	rm -rf .libtensorflow

## bench-train: train-step time of two GPT configurations, Go vs Keras fit and tf.function (ratios)
bench-train: setup
	.venv/bin/python scripts/bench_train.py $(ARGS)

## bench-checkpoint: save/restore of ~1 GB and ~4 GB of variables, Go vs tf.train.Checkpoint (ratios, peak RSS, disk speed)
bench-checkpoint: setup
	.venv/bin/python scripts/bench_checkpoint.py $(ARGS)

## bench: every case of issue 21 (train steps, MatMul ceiling and MFU, SavedModel inference and load, 1 GiB checkpoints), Go beside Python with ratios, in one table (writes bench/<date>-bench-<cpu>.md; ~15 min)
.PHONY: bench
bench: setup
	.venv/bin/python scripts/bench.py $(ARGS)

## bench-memory: GPT train step under float32, mixed_bfloat16 and remat: step time, TensorFlow's peak step memory, bfloat16 kernels (writes bench/<date>-memory-<cpu>.md)
bench-memory: setup
	$(GO) run ./cmd/benchmem $(ARGS)

## bench-shards: save and load a ~1 GiB model as Keras sharded weights (.weights.json): peak RSS rise against the largest shard and weight
bench-shards: setup-runtime
	$(GO) run ./cmd/benchshards $(ARGS)

## bench-quant: the main job's GPT trained briefly, then float32 vs int8 vs weight-only int8 (Model.Quantize): latency at batch 1 and 32, kernels that ran, SavedModel size, validation loss (writes bench/<date>-quant-<cpu>.md)
bench-quant: setup-runtime
	$(GO) run ./cmd/benchquant $(ARGS)

## bench-serve: load test of the model server (gotf-serve) on loopback with the main job's export: 60 s at a fixed rate over REST and gRPC, batch 1: errors, p50/p99, throughput, server RSS, beside Python's saved_model.load signature latency (writes bench/<date>-serve-<cpu>.md)
.PHONY: bench-serve
bench-serve: setup
	$(GO) run ./cmd/benchserve $(ARGS)

## fuzz: each fuzzer for FUZZTIME (default 10m here: make fuzz FUZZTIME=1h for a long campaign)
fuzz: FUZZTIME = 10m
fuzz: setup
	GO="$(GO)" bash scripts/fuzz.sh $(FUZZTIME)

## leak: every leak loop (RSS and goroutines) 10,000 times; make test runs them a few hundred times
leak: setup
	GOTF_LEAK_ITERS=10000 $(GO) test $(TESTFLAGS) -count 1 -v -run 'RSS|Freed' ./tfgo ./savedmodel/runner ./keraslike

## kill: 100 SIGKILLs per writer (checkpoints, Keras files, SavedModel export and publication); make test makes a few
kill: setup
	GOTF_KILLS=100 $(GO) test $(TESTFLAGS) -count 1 -v -run 'Kill' ./savedmodel/... ./tfgo ./keraslike

## h5-campaign: 20,000 mutated HDF5/Keras files opened in child processes (crashes, hangs, peak RSS)
h5-campaign: setup
	GOTF_H5_CAMPAIGN=$(or $(N),20000) $(GO) test $(TESTFLAGS) -count 1 -v -run TestCampaign ./internal/h5

## gotf: build the gotf command into out/gotf (inspect, run, version; out/ is ignored by git)
.PHONY: gotf
gotf: setup-runtime
	$(GO) build -o out/gotf ./cmd/gotf

## gotf-serve: build the model server out/gotf-serve (TensorFlow Serving's API)
.PHONY: gotf-serve
gotf-serve: setup-runtime
	$(GO) build -o out/gotf-serve ./cmd/gotf-serve

## gen-serve: regenerate serve/tfserving (TF Serving's gRPC API) from serve/proto with Debian's protoc and pinned Go plugins (installs protobuf-compiler if missing)
.PHONY: gen-serve
gen-serve:
	GO="$(GO)" bash scripts/gen_serve.sh

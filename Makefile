# connhost — build, run and test. Binaries build with CGO_ENABLED=0; tests
# use cgo only for the race detector.
# A fresh machine needs only Go: every tool
# is pinned in go.mod and run with `go tool`.

GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -s -w -X github.com/connhost/connhost/host/version.Version=$(VERSION) \
             -X github.com/connhost/connhost/host/version.Commit=$(COMMIT)
PLUGINS   := $(notdir $(wildcard plugins/*))
DATA_DIR  ?= ./var
# make run: where the host listens and which plugin dir it scans
# (make run LISTEN=127.0.0.1:17480 DATA_DIR=/tmp/x PLUGIN_DIR=bin/plugins).
LISTEN     ?= 127.0.0.1:7480
PLUGIN_DIR ?= $(BIN)/plugins
# An execution count, not a duration: a duration budget trips a race in the
# Go 1.26 fuzz coordinator (go.dev/issue/75804, fixed in 1.27) that fails a
# clean target with "context deadline exceeded" on a loaded machine.
FUZZTIME  ?= 50000x
BENCHTIME ?= 1x
BENCHCOUNT ?= 1

# make cluster: three hosts on the local PostgreSQL.
CLUSTER_DIR   ?= $(DATA_DIR)/cluster
CLUSTER_DB    ?= connhost_cluster
CLUSTER_PG    ?= postgres://postgres@127.0.0.1:5432
CLUSTER_STORE ?= $(CLUSTER_PG)/$(CLUSTER_DB)?sslmode=disable
CLUSTER_PORTS ?= 7481 7482 7483

# make chaos: kill -9 cycles of the fault suite.
CHAOS_CYCLES ?= 30

# The Go modules: the host (the root), the SDK (sdk/) and one per
# first-party connector (plugins/<name>/). go.work joins them for work in one
# checkout: test, fuzz and bench run in workspace mode with one package
# pattern per module (`./...` alone stops at a nested module); vet and the
# tidy check run each module on its own (GOWORK=off), as its users build it.
MODULES  := . sdk $(addprefix plugins/,$(PLUGINS))
PKGS     := ./... $(patsubst %,./%/...,$(filter-out .,$(MODULES)))
PLUGIN_LDFLAGS := -s -w
define newline


endef

.PHONY: all build run test test-unit check generate generate-check lint fmt bench bench-compare fuzz clean cluster cluster-stop chaos

all: build

## build: bin/connhost and one executable per first-party connector under
## bin/plugins/, each connector built in its own module (GOWORK=off) against
## the SDK module, as an outside author builds one
build:
	@mkdir -p $(BIN)/plugins
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/connhost ./host/cmd/connhost
	$(foreach p,$(PLUGINS),GOWORK=off CGO_ENABLED=0 $(GO) -C plugins/$(p) build -trimpath -ldflags '$(PLUGIN_LDFLAGS)' -o $(abspath $(BIN))/plugins/$(p) .$(newline))

## run: build, then serve on the embedded default (SQLite + dev keyset in
## $(DATA_DIR), listening on $(LISTEN), plugins from $(PLUGIN_DIR))
run: build
	$(BIN)/connhost serve --listen '$(LISTEN)' --data-dir '$(DATA_DIR)' --plugin-dir '$(PLUGIN_DIR)'

## cluster: three hosts on the local PostgreSQL (ports 7481-7483, a data
## dir each under $(CLUSTER_DIR), one keyset under one KEK file, one
## operator token), in the background; logs and pids in $(CLUSTER_DIR)
cluster: build
	@mkdir -p $(CLUSTER_DIR)/shared && chmod 700 $(CLUSTER_DIR) $(CLUSTER_DIR)/shared
	@psql "$(CLUSTER_PG)/postgres" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$(CLUSTER_DB)'" | grep -q 1 || \
	  psql "$(CLUSTER_PG)/postgres" -qc 'CREATE DATABASE "$(CLUSTER_DB)"'
	@test -f $(CLUSTER_DIR)/kek || (umask 077 && head -c 32 /dev/urandom | base64 > $(CLUSTER_DIR)/kek)
	@test -f $(CLUSTER_DIR)/shared/keyset.json || $(BIN)/connhost keyset init --data-dir $(CLUSTER_DIR)/shared --kek-file $(CLUSTER_DIR)/kek >/dev/null
	@for port in $(CLUSTER_PORTS); do \
	  if [ -f $(CLUSTER_DIR)/$$port.pid ] && kill -0 $$(cat $(CLUSTER_DIR)/$$port.pid) 2>/dev/null; then \
	    echo "host on :$$port already running (pid $$(cat $(CLUSTER_DIR)/$$port.pid))"; continue; fi; \
	  nohup $(BIN)/connhost serve --store '$(CLUSTER_STORE)' --listen 127.0.0.1:$$port \
	    --data-dir $(CLUSTER_DIR)/host-$$port --plugin-dir $(BIN)/plugins --kek-file $(CLUSTER_DIR)/kek \
	    --keyset-file $(CLUSTER_DIR)/shared/keyset.json --token-file $(CLUSTER_DIR)/shared/operator.token \
	    > $(CLUSTER_DIR)/$$port.log 2>&1 & echo $$! > $(CLUSTER_DIR)/$$port.pid; \
	  echo "host on :$$port started (pid $$(cat $(CLUSTER_DIR)/$$port.pid), log $(CLUSTER_DIR)/$$port.log)"; \
	done
	@for port in $(CLUSTER_PORTS); do \
	  for i in $$(seq 1 100); do grep -q "serving on" $(CLUSTER_DIR)/$$port.log 2>/dev/null && break; sleep 0.1; done; \
	  grep -q "serving on" $(CLUSTER_DIR)/$$port.log || { echo "host on :$$port did not start:"; tail -5 $(CLUSTER_DIR)/$$port.log; exit 1; }; \
	done
	@echo "talk to any host:  export CONNHOST_ADDR=http://127.0.0.1:7481 CONNHOST_DATA_DIR=$(CLUSTER_DIR)/shared"
	@echo "stop them all:     make cluster-stop"

## cluster-stop: SIGTERM every host make cluster started
cluster-stop:
	@for port in $(CLUSTER_PORTS); do \
	  pid=$$(cat $(CLUSTER_DIR)/$$port.pid 2>/dev/null) || continue; \
	  kill -TERM $$pid 2>/dev/null && echo "stopping host on :$$port (pid $$pid)"; \
	  while kill -0 $$pid 2>/dev/null; do sleep 0.2; done; rm -f $(CLUSTER_DIR)/$$port.pid; \
	done

## test: every check and every test, as CI runs it
test: check
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) fuzz FUZZTIME=20000x

## chaos: the fault suite — build connhost and the demo, kill -9 `connhost
## serve` mid-run CHAOS_CYCLES times (default 30; make test runs 5),
## checking after each restart; then damaged data dirs, each refused with
## no byte changed. Prints one summary line (the full log on failure).
chaos:
	@log=$$(mktemp); \
	  CHAOS_CYCLES=$(CHAOS_CYCLES) $(GO) test -count=1 -timeout 30m -run '^TestChaos$$' -v ./host/e2e >$$log 2>&1; st=$$?; \
	  grep -m1 '^chaos:' $$log || echo "chaos: no summary"; \
	  if [ $$st -ne 0 ]; then tail -60 $$log; fi; rm -f $$log; exit $$st

## check: formatting, vet, proto lint, tidy modules and generated-code freshness
check: lint tidy-check generate-check

lint:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(foreach m,$(MODULES),GOWORK=off $(GO) -C $(m) vet ./...$(newline))
	$(GO) tool buf lint

## tidy-check: fail when a module's go.mod or go.sum is not `go mod tidy`
.PHONY: tidy-check
tidy-check:
	$(foreach m,$(MODULES),GOWORK=off $(GO) -C $(m) mod tidy -diff$(newline))

fmt:
	gofmt -w $$(git ls-files -co --exclude-standard '*.go' | grep -v '\.pb\.go$$')

## generate: regenerate protobuf code with the tools pinned in go.mod (each
## file's go_package places it: proto/admin/v1, sdk/internal/connectorv1)
generate:
	$(GO) tool buf generate

## generate-check: fail when the committed generated code is stale
GENERATED := proto sdk/internal/connectorv1
generate-check: generate
	@git diff --exit-code -- $(GENERATED) || { echo "generated code differs: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard -- $(GENERATED))" || { echo "untracked generated files in $(GENERATED)"; exit 1; }

## bench: Go benchmarks, benchstat-friendly (BENCHTIME=1x for a smoke run)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) $(PKGS)

## bench-compare: connhost's launch, whole manual run, ingest and 100
## concurrent runs side by side with references it builds (a bare go-plugin
## host and one-RPC plugin, a fork/exec of the demo, a C SQLite bulk load
## into the same schema), interleaved round by round; prints median
## (min–max) and per-round ratios, writes report.json and table.md to
## BENCH_OUT (default: a temp dir it prints). ROUNDS (default 5) and the
## other knobs: package host/internal/benchcompare/compare. Needs cc and
## libsqlite3-dev, and PostgreSQL at BENCH_PG (default the local server).
bench-compare:
	$(GO) run ./host/internal/benchcompare/cmd/benchcompare

## fuzz: a short fuzzing budget on every parser of untrusted input
fuzz:
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$t $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$t || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)

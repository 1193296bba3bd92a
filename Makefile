# connhost — build, run and test. Binaries build with CGO_ENABLED=0; tests
# use cgo only for the race detector.
# A fresh machine needs only Go: every tool
# is pinned in go.mod and run with `go tool`.

GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/connhost/connhost/host/version.Version=$(VERSION)
PLUGINS   := $(notdir $(wildcard plugins/*))
DATA_DIR  ?= ./var
# An execution count, not a duration: a duration budget trips a race in the
# Go 1.26 fuzz coordinator (go.dev/issue/75804, fixed in 1.27) that fails a
# clean target with "context deadline exceeded" on a loaded machine.
FUZZTIME  ?= 50000x
BENCHTIME ?= 1x
BENCHCOUNT ?= 1

.PHONY: all build run test test-unit check generate generate-check lint fmt bench fuzz clean

all: build

## build: bin/connhost and one executable per first-party connector under bin/plugins/
build:
	@mkdir -p $(BIN)/plugins
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/connhost ./host/cmd/connhost
	@for p in $(PLUGINS); do \
	  echo "$(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p"; \
	  CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/plugins/$$p ./plugins/$$p || exit 1; \
	done

## run: build, then serve on the embedded default (SQLite + dev keyset in ./var)
run: build
	$(BIN)/connhost serve --data-dir $(DATA_DIR) --plugin-dir $(BIN)/plugins

## test: every check and every test, as CI runs it
test: check
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz FUZZTIME=20000x

## check: formatting, vet, proto lint and generated-code freshness
check: lint generate-check

lint:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool buf lint

fmt:
	gofmt -w $$(git ls-files -co --exclude-standard '*.go' | grep -v '\.pb\.go$$')

## generate: regenerate protobuf code with the tools pinned in go.mod
generate:
	$(GO) tool buf generate

## generate-check: fail when the committed generated code is stale
generate-check: generate
	@git diff --exit-code -- proto || { echo "generated code differs: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard -- proto)" || { echo "untracked generated files in proto/"; exit 1; }

## bench: Go benchmarks, benchstat-friendly (BENCHTIME=1x for a smoke run)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./...

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

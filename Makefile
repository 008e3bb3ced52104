# driftd — see README.md.
GO      ?= go
PLUGINS := $(notdir $(wildcard plugins/*))
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/driftd/driftd/core.Version=$(VERSION)
GOBIN   ?= $(shell $(GO) env GOPATH)/bin
BIN     ?= bin
# grpcnotrace leaves gRPC's request tracing (golang.org/x/net/trace), which
# nothing turns on, out of the binaries: they are smaller and start sooner.
TAGS    ?= grpcnotrace
# Built binaries are static: no dynamic loader runs at each start, of the
# daemon, of a backtest, of every plugin process (some 4 ms each here).
# Nothing in them needs cgo: name lookups are Go's own.
CGO_ENABLED ?= 0

.PHONY: all build run install test test-deps nats-server test-short vet fmt-check bench bench-fleet bench-replay proto detectors-doc clean

all: build

## build: the daemon as bin/driftd and every plugin as bin/plugins/driftd-plugin-<name>, static
## (BIN=DIR builds into DIR instead of bin; TAGS sets the build tags; CGO_ENABLED=1 links with libc)
build:
	CGO_ENABLED=$(CGO_ENABLED) $(GO) build -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN)/driftd ./cmd/driftd
	@for p in $(PLUGINS); do \
		echo "CGO_ENABLED=$(CGO_ENABLED) $(GO) build -tags \"$(TAGS)\" -o $(BIN)/plugins/driftd-plugin-$$p ./plugins/$$p/cmd/driftd-plugin-$$p"; \
		CGO_ENABLED=$(CGO_ENABLED) $(GO) build -tags "$(TAGS)" -o $(BIN)/plugins/driftd-plugin-$$p ./plugins/$$p/cmd/driftd-plugin-$$p || exit 1; \
	done

## run: build, then run the agent on examples/config.hcl (socket ./driftd.sock)
run: build
	./bin/driftd agent -config examples/config.hcl

## install: bin/driftd to $(PREFIX)/bin, the plugins to $(PREFIX)/lib/driftd/plugins, the systemd
## unit to $(PREFIX)/lib/systemd/system and a config to start from to $(PREFIX)/share/driftd, all with
## their paths under PREFIX; DESTDIR stages the tree elsewhere (the container image's build does)
PREFIX  ?= /usr/local
DESTDIR ?=
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/driftd/plugins \
		$(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/driftd
	install -m 0755 $(BIN)/driftd $(DESTDIR)$(PREFIX)/bin/driftd
	install -m 0755 $(BIN)/plugins/driftd-plugin-* $(DESTDIR)$(PREFIX)/lib/driftd/plugins/
	sed 's#/usr/local/#$(PREFIX)/#g' deploy/systemd/driftd.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/driftd.service
	sed 's#/usr/local/#$(PREFIX)/#g' deploy/driftd.hcl > $(DESTDIR)$(PREFIX)/share/driftd/driftd.hcl

## test: installs what the tests need and the machine lacks (test-deps), then vet, formatting,
## and every test with the race detector, end-to-end ones included; then the example plugin
## module examples/plugins/zscore, which has a go.mod of its own
test: test-deps vet fmt-check nats-server
	$(GO) test -race -count=1 -timeout 20m ./...
	cd examples/plugins/zscore && $(GO) vet ./... && $(GO) test -race -count=1 ./...

## nats-server: bin/nats-server, the NATS server (with JetStream) that fleet mode's tests cluster,
## built from the version go.mod names as a tool
nats-server: $(BIN)/nats-server
$(BIN)/nats-server: go.mod go.sum
	$(GO) build -o $@ github.com/nats-io/nats-server/v2

## test-deps: what the tests need besides Go and make (a C compiler for -race, curl, python3
## with grpcio and protobuf, Alertmanager, systemd-analyze), installed as Debian packages where missing (as root;
## otherwise it says what to install and fails)
test-deps:
	@scripts/test-deps

## test-short: the unit tests only
test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## bench: hot-path Go benchmarks and the end-to-end load run with the performance targets' settings
## (BENCH_FLAGS), ending with one line per target; LOAD_FLAGS adds or overrides driftd-load flags
## (see go run ./cmd/driftd-load -h), e.g. make bench LOAD_FLAGS="-duration 10s -mem-streams 0"
BENCH_FLAGS ?= -duration 30s -ratio-rounds 6 -ratio-duration 5s -latency-rate 100000 -probes 500 -readers -mem-streams 10000 -mem-values 1000
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./core/... ./plugins/... 2>&1 | tee bin/gobench.txt
	@! grep -qE '^(FAIL|--- FAIL|panic:)' bin/gobench.txt
	$(GO) run ./cmd/driftd-load -plugins bin/plugins -gobench bin/gobench.txt $(BENCH_FLAGS) $(LOAD_FLAGS)
	$(MAKE) --no-print-directory bench-replay

## bench-fleet: fleet mode's load run with real processes: nats-server (bin/nats-server; one for R1,
## three clustered for R3, on loopback) and bin/driftd agents with a cluster block; ingest through one
## agent until JetStream acknowledged it, an owner consuming, drift latency from one host to another,
## takeover after kill -9 (FLEET_FLAGS; LOAD_FLAGS adds or overrides, e.g. LOAD_FLAGS="-fleet-replicas 3 -json")
FLEET_FLAGS ?= -fleet -fleet-replicas 1,3 -duration 5s -conns 4 -push posts -post-lines 10000 -latency-rate 10000 -probes 200
bench-fleet: build nats-server
	$(GO) run ./cmd/driftd-load -driftd $(BIN)/driftd -plugins $(BIN)/plugins -nats-server $(BIN)/nats-server $(FLEET_FLAGS) $(LOAD_FLAGS)

## bench-replay: driftd backtest of every detector over a generated stream of 1,000,000 values
## (kswin 100,000), whole command, in ns per value beside River 0.26's Python loop; RIVER, a
## Python with River installed, times River's loop in the same rounds, e.g. make bench-replay RIVER=python3
RIVER ?=
bench-replay: build
	$(GO) run ./cmd/driftd-replay -driftd bin/driftd -plugins bin/plugins $(if $(RIVER),-river '$(RIVER)')

## detectors-doc: rerun the detector evaluation and update its table in docs/detectors.md
detectors-doc:
	$(GO) run ./cmd/driftd-eval -runs 100 -update docs/detectors.md

## proto: regenerate sdk/proto and the Python kit's stubs (sdk/python/driftd_plugin/_proto) from
## plugin.proto (needs Debian's protobuf-compiler and protobuf-compiler-grpc; the Go plugins come
## from the module proxy)
GRPC_PYTHON_PLUGIN ?= /usr/bin/grpc_python_plugin
proto:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	PATH="$(GOBIN):$$PATH" protoc -I sdk/proto \
		--go_out=sdk/proto --go_opt=paths=source_relative \
		--go-grpc_out=sdk/proto --go-grpc_opt=paths=source_relative \
		sdk/proto/plugin.proto
	protoc -I driftd_plugin/_proto=sdk/proto \
		--python_out=sdk/python --pyi_out=sdk/python \
		--plugin=protoc-gen-grpc_python=$(GRPC_PYTHON_PLUGIN) --grpc_python_out=sdk/python \
		sdk/proto/plugin.proto

clean:
	rm -rf bin data driftd.sock

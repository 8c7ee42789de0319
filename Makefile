# gostree — build, test, fuzz, benchmark and demo entry points (see README.md).
#
#   make build   build every ./cmd/* into bin/
#   make unit    quick checks: go vet + go test -short (no root, no apt)
#   make test    what CI runs: deps + gofmt + vet + full go test + a short fuzz pass
#   make fuzz    run every Fuzz* target in the repository, one at a time, FUZZTIME each
#   make bench   Go benchmarks, then gostree vs ostree on real Debian trees
#   make demo    end-to-end demo on a sample tree (root, Debian 12)
#   make e2e     boot a gostree-made disk image in qemu, update it, boot counting (root, ~6 min),
#                then the agent scenario (make e2e-agent: the guest updates itself, rolls back)
#   make deps    install the Debian packages the tests need (idempotent)
#   make openstack-up / openstack-down / openstack-smoke   local Keystone+Glance+Swift+Heat (scripts/openstack-*.sh)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# Prefer the project's Go toolchain over any older Debian one.
ifneq ($(wildcard /usr/local/go/bin/go),)
export PATH := /usr/local/go/bin:$(PATH)
endif

GO          ?= go
FUZZTIME    ?= 10s
BENCHTIME   ?= 1s
TESTTIMEOUT ?= 30m
GOTESTFLAGS ?=
BIN         := bin

# Directories that Go itself ignores (and that hold big generated trees) are skipped here too.
GOFILES = $(shell find . -mindepth 1 \( -type d \( -name '_*' -o -name '.*' -o -name testdata -o -name bin -o -name vendor \) -prune \) -o -type f -name '*.go' -print)

.PHONY: all build deps unit test fmt-check vet fuzz bench demo clean distclean

all: build

build:
	@mkdir -p $(BIN)
	@cmds=$$(find cmd -mindepth 2 -maxdepth 2 -name '*.go' -printf '%h\n' 2>/dev/null | sort -u || true); \
	if [ -z "$$cmds" ]; then echo "build: warning: no commands under cmd/, nothing to build" >&2; fi; \
	for d in $$cmds; do \
	  echo "$(GO) build -o $(BIN)/$${d#cmd/} ./$$d"; \
	  $(GO) build -o $(BIN)/$${d#cmd/} ./$$d; \
	done

deps:
	bash scripts/deps.sh

unit:
	$(GO) vet ./...
	$(GO) test -short ./...

fmt-check:
	@files="$(GOFILES)"; out=; \
	if [ -n "$$files" ]; then out=$$(gofmt -l $$files); fi; \
	if [ -n "$$out" ]; then echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$out"; exit 1; fi; \
	echo "gofmt: ok"

vet:
	$(GO) vet ./...

# The short fuzz pass runs first so that go test's summary is the last thing printed.
# go test runs with the local OpenStack up (scripts/with-openstack.sh) for the Swift/Glance/Heat tests.
test: deps fmt-check vet build
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s
	bash scripts/with-openstack.sh $(GO) test -count=1 -timeout=$(TESTTIMEOUT) $(GOTESTFLAGS) ./...

# Every `func FuzzXxx(` in a _test.go file, one target at a time (go test -fuzz takes one).
fuzz:
	GO=$(GO) bash scripts/fuzz.sh $(FUZZTIME)

bench: build
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...
	bash scripts/bench-compare.sh
	bash scripts/bench-pull.sh
	bash scripts/with-openstack.sh bash scripts/bench-swift.sh
	bash scripts/bench-delta.sh
	bash scripts/bench-sysroot.sh
	bash scripts/bench-agent.sh

demo:
	bash scripts/demo.sh

# The real-VM end-to-end test (issue 7, e2e/vm-e2e.sh): root, qemu under TCG, bounded to 20 minutes;
# serial consoles and images stay in _build/vm/e2e. Not part of `make test` (yet).
# `make e2e` runs both scenarios: the host-driven one, then the agent's (e2e-agent).
.PHONY: e2e e2e-agent
e2e:
	bash scripts/deps.sh --vm
	timeout -k 30 20m bash e2e/vm-e2e.sh
	timeout -k 30 20m bash e2e/vm-agent-e2e.sh

# The agent scenario (e2e/vm-agent-e2e.sh): the guest's gostree-agent updates it as the config
# drive's metadata asks, rolls back a failed health check, reports a deployment that never
# boots; consoles and images in _build/vm/e2e-agent. Root, bounded to 20 minutes.
e2e-agent:
	bash scripts/deps.sh --vm
	timeout -k 30 20m bash e2e/vm-agent-e2e.sh

# A local OpenStack (Keystone, Glance, Swift, Heat from Debian's packages, 127.0.0.1 only) for the
# Swift, Glance and Heat tests: state in $(OPENSTACK_STATE); `. $(OPENSTACK_STATE)/openrc` to use it.
OPENSTACK_STATE ?= $(CURDIR)/_build/openstack
.PHONY: openstack-up openstack-down openstack-smoke
openstack-up:
	bash scripts/openstack-up.sh $(OPENSTACK_STATE)
openstack-down:
	bash scripts/openstack-down.sh $(OPENSTACK_STATE)
openstack-smoke: openstack-up
	bash scripts/openstack-smoke.sh $(OPENSTACK_STATE)

# Keeps _build/trees (the Debian trees take minutes to rebuild); distclean removes them too.
clean:
	rm -rf $(BIN) _build/demo _build/bench _build/logs _build/ci

distclean: clean
	rm -rf _build

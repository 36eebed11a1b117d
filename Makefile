# tenantdrift developer tasks. `make test` is the test command; CI runs
# .ci/run, which calls it. Every target is phony: Go's own cache decides what
# to rebuild.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

GO ?= go

# Version stamped into the binary: the nearest tag, else the commit, with
# -dirty for local changes; `dev` outside a git checkout or before the first
# commit.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

# golangci-lint is pinned and installed into a per-user cache, never into
# go.mod. Keep the version in step with .ci/run.
GOLANGCI_LINT_VERSION := v2.15.0
TOOLS_BIN ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tenantdrift/bin
GOLANGCI_LINT := $(TOOLS_BIN)/golangci-lint

FUZZTIME ?= 30s

.PHONY: test lint fmt-check vet golangci-lint golangci-lint-install bench demo build fuzz clean

## test: the whole suite, with the race detector, against a throwaway
## PostgreSQL the harness starts (or $$TENANTDRIFT_TEST_DSN)
test:
	$(GO) test -race -count=1 ./...

## lint: gofmt, go vet and golangci-lint (config in .golangci.yml)
lint: fmt-check vet golangci-lint

# Lists every Go file gofmt would change (testdata excluded) and fails if any.
fmt-check:
	@unformatted="$$(find . -name '*.go' -not -path './.git/*' -not -path './bin/*' -not -path '*/testdata/*' -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need 'gofmt -w':"; echo "$$unformatted"; exit 1; \
	fi; \
	echo "gofmt: ok"

vet:
	$(GO) vet ./...

golangci-lint: golangci-lint-install
	$(GOLANGCI_LINT) run ./...

# Installs the pinned golangci-lint unless the cached one is that version,
# built with the Go in use (a linter built with an older Go cannot load
# packages that need a newer one).
golangci-lint-install:
	@want="version $(patsubst v%,%,$(GOLANGCI_LINT_VERSION)) built with $$($(GO) env GOVERSION) "; \
	if ! "$(GOLANGCI_LINT)" version 2>/dev/null | grep -qF "$$want"; then \
		echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into $(TOOLS_BIN)"; \
		mkdir -p "$(TOOLS_BIN)"; \
		GOBIN="$(TOOLS_BIN)" $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	fi

## bench: every Go benchmark three times, then the scripts behind
## docs/benchmarks.md (audit vs psql, probes vs pgbench, the daemon)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...
	$(GO) run ./scripts/benchaudit -tenants 100000 -runs 7
	$(GO) run ./scripts/benchprobe -runs 5
	@if [ -d scripts/benchserve ]; then $(GO) run ./scripts/benchserve; fi

## demo: start a throwaway PostgreSQL, load a drifted registry, audit it
demo:
	$(GO) run ./cmd/tenantdrift demo

## build: static binary bin/tenantdrift stamped with $(VERSION)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/tenantdrift ./cmd/tenantdrift
	@echo "built bin/tenantdrift $(VERSION)"

## fuzz: fuzz the Laravel payload decrypter for $(FUZZTIME); a crasher is
## saved under internal/laravel/testdata/fuzz/ and becomes a regression test
fuzz:
	$(GO) test ./internal/laravel -run '^$$' -fuzz '^FuzzDecrypt$$' -fuzztime $(FUZZTIME)

## clean: remove build output (Go's caches are shared; see `go clean`)
clean:
	rm -rf bin

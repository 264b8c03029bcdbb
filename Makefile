# envd build, run and test entry points. See README.md.
FLAVOR  ?= wrenn
VERSION ?= 0.7.0
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PORT    ?= 49983
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.defaultFlavor=$(FLAVOR)
GO      ?= go

.PHONY: build run test test-go test-sdk generate check-generate deps vet

## build: stripped static binary at bin/envd (FLAVOR=wrenn|e2b sets the default flavour)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/envd ./cmd/envd

## run: envd on this machine, no VM needed (localhost:$(PORT))
run: build
	./bin/envd --isnotfc --port $(PORT)

## test: everything CI runs (installs what the tests need first)
test: deps check-generate build vet test-go test-sdk
	@scripts/checkbin.sh bin/envd

deps:
	@scripts/deps.sh

vet:
	$(GO) vet ./...

test-go:
	ENVD_BIN=$(CURDIR)/bin/envd $(GO) test -race -count=1 -timeout 20m ./...

test-sdk:
	tests/sdk/run.sh bin/envd

## generate: regenerate internal/gen from proto/ (buf and plugins pinned in tools/go.mod)
generate:
	$(GO) tool -modfile=tools/go.mod buf generate

## check-generate: fail when the committed generated code is stale
check-generate: generate
	@git diff --exit-code --stat -- internal/gen || (echo "internal/gen is stale: run make generate and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- internal/gen)" || (echo "internal/gen has untracked generated files: commit them" >&2; exit 1)

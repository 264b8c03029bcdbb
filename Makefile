# envd build, run and test entry points. See README.md.
FLAVOR  ?= wrenn
VERSION ?= 0.7.0
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PORT    ?= 49983
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.defaultFlavor=$(FLAVOR)
GO      ?= go
# Binary size is a product feature (issue 2: <= 7 MB). Inlining is turned
# off everywhere except the packages on the hot paths (process output,
# RPC framing, file transfer, the runtime): the cold rest (crypto/tls that
# net/http links but envd never uses, fmt, reflect, flag, slog's
# formatting...) loses nothing measurable and the binary ~0.4 MB.
HOT     := runtime/... internal/... sync/... syscall os io bufio bytes net net/http/... \
           encoding/base64 compress/... hash/... unicode/utf8 strconv github.com/sandboxd/envd/...
GCFLAGS := -gcflags=all=-l $(foreach p,$(HOT),-gcflags=$(p)=)

.PHONY: build run test test-go test-sdk generate check-generate deps vet test-vm

## build: stripped static binary at bin/envd (FLAVOR=wrenn|e2b sets the default flavour), and bin/envdctl
build:
	CGO_ENABLED=0 $(GO) build -trimpath $(GCFLAGS) -ldflags "$(LDFLAGS)" -o bin/envd ./cmd/envd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/envdctl ./cmd/envdctl

## run: envd on this machine, no VM needed (localhost:$(PORT))
run: build
	./bin/envd --isnotfc --port $(PORT)

## test: everything CI runs (installs what the tests need first)
test: deps check-generate build vet test-go test-sdk test-vm
	@scripts/checkbin.sh bin/envd

deps:
	@scripts/deps.sh

vet:
	$(GO) vet ./...

test-go:
	ENVD_BIN=$(CURDIR)/bin/envd $(GO) test -race -count=1 -timeout 20m ./...

# The SDK suite once per flavour: wrenn as Wrenn runs it (no token), e2b as
# E2B runs it (access token set through /init, so secure mode throughout).
SDK_TEST_TOKEN := 0f1e2d3c4b5a69788796a5b4c3d2e1f0sdk-suite-only
test-sdk:
	@echo "SDK suite, flavour wrenn (no token)"
	@ENVD_SDK_FLAVOR=wrenn tests/sdk/run.sh bin/envd --flavor wrenn
	@echo "SDK suite, flavour e2b (secure mode: access token set)"
	@ENVD_SDK_FLAVOR=e2b ENVD_ACCESS_TOKEN=$(SDK_TEST_TOKEN) tests/sdk/run.sh bin/envd --flavor e2b

## test-vm: envd as PID 1 in a qemu microvm: PID 1 mode, host flows, snapshot/restore
## cycles (ENVD_VM_CYCLES=100 for a soak), parallel restores, then the VM figures
test-vm: build
	ENVD_VM_TESTS=1 ENVD_BIN=$(CURDIR)/bin/envd $(GO) test -race -count=1 -timeout 30m -v \
		-run . -bench VMLifecycle -benchtime 1x ./tests/vm

## generate: regenerate internal/gen from proto/ (buf and plugins pinned in tools/go.mod)
generate:
	$(GO) tool -modfile=tools/go.mod buf generate

## check-generate: fail when the committed generated code is stale
check-generate: generate
	@git diff --exit-code --stat -- internal/gen || (echo "internal/gen is stale: run make generate and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- internal/gen)" || (echo "internal/gen has untracked generated files: commit them" >&2; exit 1)

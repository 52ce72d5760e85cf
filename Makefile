# silo — build, install and test.
#
#   make              build bin/runsilo, bin/runsilo-helper, bin/silod, bin/silo,
#                     bin/silo-monitor
#   make install      install the binaries to $(PREFIX)/bin
#   make test         unit tests, root integration tests, OCI conformance
#   make lint         gofmt, go vet, staticcheck
PREFIX    ?= /usr/local
GO        ?= go
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# runsilo-helper: static, cgo (libseccomp, the nsenter constructor), no
# NSS: it runs inside containers' namespaces where the host's libraries are
# absent. Everything else is pure Go (CGO_ENABLED=0), runsilo included: it
# runs the helper for the little that needs C (compiling a seccomp profile
# it has not cached, joining user and time namespaces), so that container
# starts pay for no C library.
TAGS      := osusergo netgo
LDFLAGS   := -s -w -X main.version=$(VERSION) -extldflags '-static'
GOLDFLAGS := -s -w -X main.version=$(VERSION)
BINARIES  := runsilo runsilo-helper silod silo silo-monitor
SHARED    ?= $(abspath ../shared)

.PHONY: all build install test unit integration conformance lint clean

all: build

build: $(addprefix bin/,$(BINARIES))

bin/runsilo-helper: FORCE
	CGO_ENABLED=1 $(GO) build -trimpath -tags '$(TAGS)' -ldflags "$(LDFLAGS)" -o $@ ./cmd/runsilo-helper

bin/%: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(GOLDFLAGS)" -o $@ ./cmd/$*

FORCE:

install: build
	install -m 0755 $(addprefix bin/,$(BINARIES)) $(PREFIX)/bin/

unit: build
	CGO_ENABLED=1 $(GO) test -count=1 ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./cmd/runsilo ./internal/compute/process/...

integration: build
	CGO_ENABLED=1 $(GO) test -count=1 -tags integration -timeout 15m ./test/...

conformance: build
	$(SHARED)/conformance/setup.sh
	SHARED=$(SHARED) test/conformance.sh $(CURDIR)/bin/runsilo

test: unit integration conformance

lint:
	@test -z "$$(gofmt -l cmd internal test)" || { gofmt -l cmd internal test; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags integration ./test/...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

clean:
	rm -rf bin

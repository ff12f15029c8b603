# Tech Vault — developer tasks. `make help` lists them.

SHELL := bash
.DEFAULT_GOAL := help

GO        ?= go
BIN_DIR   := $(CURDIR)/bin
TECHVAULT := ./cmd/techvault

GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT         := $(BIN_DIR)/golangci-lint

# Local stand-ins the integration tests run as real processes (installed into bin/ by `make tools`).
MAILPIT_VERSION := v1.33.1
MAILPIT         := $(BIN_DIR)/mailpit
STRIPE_MOCK_VERSION := v0.203.0
STRIPE_MOCK         := $(BIN_DIR)/stripe-mock

# Optional local settings (see .env.example): KEY=value lines, exported to every command.
ifneq (,$(wildcard .env))
include .env
export $(shell sed -n 's/^[[:space:]]*\(export[[:space:]]\+\)\?\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*=.*/\2/p' .env)
endif

.PHONY: help run build test lint bench wrk migrate seed services tools fmt vet clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Development settings of the local server (only `make run` sets them, so tests see the
# environment as it is): a fixed server secret (never use it in production) and the local mail
# catcher, whose web page shows the verification and reset mail.
run: export TECHVAULT_SECRET ?= dev-only-secret-do-not-use-in-production-0123456789
run: export SMTP_HOST ?= 127.0.0.1
run: export SMTP_PORT ?= 1025
run: services tools ## Start Postgres+Redis+mailpit, migrate, seed the demo catalog, serve HTTP
	@scripts/mailpit.sh
	$(GO) run $(TECHVAULT) migrate
	$(GO) run $(TECHVAULT) seed
	@echo "techvault: register at POST /api/v1/auth/register, then make yourself admin with"
	@echo "           TECHVAULT_SECRET='$(TECHVAULT_SECRET)' go run ./cmd/techvault users promote YOUR_EMAIL admin"
	$(GO) run $(TECHVAULT) serve

build: ## Build bin/techvault
	$(GO) build -o bin/techvault $(TECHVAULT)

test: services tools ## Run all tests with the race detector
	$(GO) test -race -count=1 ./...

lint: $(GOLANGCI_LINT) ## Run golangci-lint (installed into bin/ on first use)
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	GOBIN=$(BIN_DIR) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

tools: $(MAILPIT) $(STRIPE_MOCK) ## Install the pinned test stand-ins into bin/ (mailpit: SMTP with an API; stripe-mock: Stripe's API)

$(MAILPIT):
	GOBIN=$(BIN_DIR) $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION)

$(STRIPE_MOCK):
	GOBIN=$(BIN_DIR) $(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)

# Extra tvbench flags, e.g. make bench BENCH_FLAGS="-saturation-duration 5s" (go run ./cmd/tvbench -h).
BENCH_FLAGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

bench: services build wrk ## Run the benchmark suite (cmd/tvbench) and print its summary table
	$(GO) run ./cmd/tvbench -http-get-techvault $(BIN_DIR)/techvault $(BENCH_FLAGS) all

wrk: ## Install wrk (the http-get benchmark's load generator) if it is missing
	@command -v wrk >/dev/null || $(SUDO) apt-get install -y wrk || { $(SUDO) apt-get update && $(SUDO) apt-get install -y wrk; }

migrate: services ## Apply database migrations
	$(GO) run $(TECHVAULT) migrate

seed: services ## Load the demo catalog (idempotent)
	$(GO) run $(TECHVAULT) seed

services: ## Make sure Postgres and Redis are up and the database exists
	@scripts/services.sh up

fmt: ## Format the Go code
	$(GO) fmt ./...

vet: ## Run go vet
	$(GO) vet ./...

clean: ## Remove build outputs
	rm -rf bin/ coverage.out coverage.html

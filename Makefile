# The front door: every routine action has a target (`make help`).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help run test lint fmt build lambda bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run: ## Build, start a throwaway Postgres + demo heartbeat, serve /health on 127.0.0.1:3000
	@scripts/run-local.sh

test: ## Run every test (unit, real-Postgres integration, CLI, Lambda events)
	cargo test --locked --all-targets

lint: ## cargo fmt --check and clippy with warnings as errors
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt

build: ## Release build for this machine (target/release/meshhook-health)
	cargo build --locked --release

lambda: ## Lambda package build with cargo-lambda (pip install cargo-lambda)
	cargo lambda build --release --arm64

bench: ## Benchmarks (not yet: see the open benchmark issue)
	@echo "make bench: the benchmark suite is not built yet" >&2; exit 1

clean: ## Remove build output
	cargo clean

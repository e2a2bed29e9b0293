# The two commands of the README: `make run` and `make test`.
.PHONY: run test lint bench build release

CARGO ?= cargo

run:
	$(CARGO) run -p vorg -- serve

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p vorg -p vorg-bench

test:
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-python-openai.sh
	$(CARGO) test --workspace --all-targets
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: release
	bash bench/run.sh

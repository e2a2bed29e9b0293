# The two commands of the README: `make run` and `make test`.
.PHONY: run test lint bench build release console

CARGO ?= cargo

run:
	bash scripts/ensure-console.sh
	$(CARGO) run -p vorg -- serve

build:
	$(CARGO) build --workspace

release:
	bash scripts/ensure-console.sh
	$(CARGO) build --release -p vorg -p vorg-bench

test:
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-python-openai.sh
	bash scripts/ensure-console.sh --browser
	$(CARGO) test --workspace --all-targets
	# the tests built target/debug/vorg: the console checks its types against it and drives it
	cd console && npm run check:api && npm test --silent && npm run e2e
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

console:
	bash scripts/ensure-console.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: release
	bash bench/run.sh

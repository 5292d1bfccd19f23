# The two commands: `make dev` runs the product locally, `make test` runs every test.
.PHONY: dev test bench build bootstrap fmt lint clean

dev:
	@scripts/dev.sh

test:
	@scripts/test.sh

bench:
	@scripts/bench.sh

build:
	@scripts/bootstrap.sh && bash scripts/build-worker.sh

bootstrap:
	@scripts/bootstrap.sh

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p recurring-edge --lib --target wasm32-unknown-unknown -- -D warnings

# The local ledger (.wrangler/state) and the sandbox's orders and tokens go together: a clean
# resets both, so neither remembers payments the other never saw.
clean:
	rm -rf build target/e2e .wrangler/state .wrangler/sandbox-state.json .wrangler/sandbox-state.json.tmp

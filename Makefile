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

clean:
	rm -rf build target/e2e .wrangler/state

# The two commands: `make dev` runs the product locally, `make test` runs every test.
.PHONY: dev test bench build bootstrap fmt lint clean deploy predeploy backup restore

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

# The production deployment: every check and resource first, then migrations, deploy, health
# (see docs/operate/deploy.md).
deploy:
	@scripts/deploy.sh

# Back to the previous version (or VERSION=<id>), then health; says what it cannot undo.
.PHONY: rollback
rollback:
	@scripts/rollback.sh $(VERSION)

# An encrypted backup of the ledger and the token vault into backups/ (TARGET=production: the
# production ones), and its restore into an empty ledger and vault (BACKUP=<file>); see
# docs/operate/backups.md.
backup:
	@node scripts/backup.mjs backup $(if $(TARGET),--target $(TARGET))

restore:
	@node scripts/backup.mjs restore $(if $(TARGET),--target $(TARGET)) $(BACKUP)

# Only the offline check of [env.production]: no placeholder ids, URLs or demo settings left.
predeploy:
	@python3 scripts/predeploy-check.py --env production

# The local worker's events on your endpoint, signed (FORWARD_TO=<url>), and an event of any
# type made by a real flow (EVENT=<type>; without it, the types): docs/integrate/events.md.
.PHONY: listen trigger
listen:
	@[ -n "$(FORWARD_TO)" ] || { echo "make listen: set FORWARD_TO to your endpoint, e.g. make listen FORWARD_TO=http://127.0.0.1:3000/webhooks" >&2; exit 2; }
	@python3 scripts/listen.py --forward-to "$(FORWARD_TO)"

trigger:
	@python3 scripts/trigger.py $(EVENT)

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p recurring-edge --lib --target wasm32-unknown-unknown -- -D warnings

# The local ledger (.wrangler/state) and the sandbox's orders and tokens go together: a clean
# resets both, so neither remembers payments the other never saw.
clean: dev_dir := $(or $(DEV_DIR),.wrangler)
clean:
	rm -rf build target/e2e $(dev_dir)/state $(dev_dir)/sandbox-state.json $(dev_dir)/sandbox-state.json.tmp

# The web client: bundle built with npm + esbuild into signal/pea/static/,
# and the browser tests, run inside a loopback-only network namespace.
.PHONY: web test-e2e
WEB_DIR := web
WEB_OUT := signal/pea/static
WEB_STAMP := $(WEB_OUT)/.built
WEB_MODULES := $(WEB_DIR)/node_modules/.installed
WEB_SOURCES := $(shell find $(WEB_DIR)/src -type f 2>/dev/null) $(WEB_DIR)/build.mjs

web: $(WEB_STAMP)

# npm ci only when the lockfile changes: node_modules stays between runs.
$(WEB_MODULES): $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	cd $(WEB_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB_STAMP): $(WEB_MODULES) $(WEB_SOURCES)
	cd $(WEB_DIR) && node build.mjs
	@touch $@

# Browsers, nodes and redis-server only ever see `lo`: no ICE candidate or stray request leaves.
test-e2e: install system-deps web
	unshare -n sh -c 'ip link set lo up; exec $(BIN)/pytest $(PYTEST_FLAGS) tests/e2e'

# The client held to the server's standard: Biome (lint + format check) and tsc over JSDoc.
.PHONY: lint-web
lint-web: $(WEB_MODULES)
	cd $(WEB_DIR) && npm run --silent check

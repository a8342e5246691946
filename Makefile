# pea — the two commands are `make run` and `make test`; both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := redis-server chromium firefox-esr webkit2gtk-driver xvfb nginx-light
PYTEST_FLAGS ?= -q

.PHONY: help install system-deps run test test-unit test-cluster test-e2e test-deploy lint lint-py bench clean

help:
	@echo "make run    set everything up and serve pea on http://localhost:8080"
	@echo "make test   set everything up and run every test (lint, unit, cluster, browser, deploy)"
	@echo "make lint   ruff + mypy over signal, tests, bench, deploy; Biome + tsc over web"
	@echo "make bench  signalling benchmark (python -m bench.signal_load)"

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,cli]'
	@touch $@

# Debian packages, installed only when missing (fresh CI machines have none of them).
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -x /usr/bin/firefox-esr || missing="$$missing firefox-esr"; \
	command -v WebKitWebDriver >/dev/null || missing="$$missing webkit2gtk-driver"; \
	command -v Xvfb >/dev/null || missing="$$missing xvfb"; \
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || missing="$$missing nginx-light"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

-include mk/*.mk

run: install web
	$(BIN)/pea serve

LINT_DIRS = $(wildcard signal tests bench deploy)

# `make lint` is the one gate for style and types: Python below, the web client's
# checks (Biome + tsc, `lint-web`) from mk/web.mk.
lint: lint-py lint-web

lint-py: install
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/mypy

test-unit: install
	$(BIN)/pytest $(PYTEST_FLAGS) tests/unit

test-cluster: install system-deps
	$(BIN)/pytest $(PYTEST_FLAGS) tests/cluster

# Coverage of signal/pea (the nodes the tests start included) is reported, and the
# run fails under the floor in pyproject.toml ([tool.coverage.report] fail_under).
COV_FLAGS ?= --cov --cov-report=term

test: install system-deps web lint
	$(BIN)/pytest $(PYTEST_FLAGS) $(COV_FLAGS) tests/unit tests/cluster $(EXTRA_TEST_DIRS)
	$(MAKE) --no-print-directory test-e2e

bench: install system-deps
	$(BIN)/python -m bench.signal_load

clean:
	rm -rf $(VENV) web/node_modules signal/pea/static .tools .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*

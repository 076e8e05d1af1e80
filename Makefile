# Every target works as the first command on a fresh clone: it creates .venv and installs
# what is missing (idempotent: the install re-runs only when pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run demo test lint typecheck migrations-check pytest fuzz bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: start the bot (needs CONDUCTOR_DISCORD_TOKEN; migrations are applied first)
run: $(STAMP)
	$(BIN)/conductor run

## demo: the whole release train offline, no token: the real bot against simcord (a local
## stand-in for Discord), sealing a local sample app in Debian's Chromium (installed if missing)
CHROMIUM := /usr/bin/chromium
demo: $(STAMP)
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "$(CHROMIUM) is missing: installing Debian's chromium with apt-get"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=; \
	  elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	  else echo "error: $(CHROMIUM) is missing and installing it needs root: run 'apt-get install chromium' as root, then make demo" >&2; exit 2; fi; \
	  command -v apt-get >/dev/null 2>&1 || { echo "error: $(CHROMIUM) is missing and apt-get is not available: install Chromium at $(CHROMIUM), then make demo" >&2; exit 2; }; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	    || { echo "error: apt-get could not install chromium; install Debian's chromium ($(CHROMIUM)), then make demo" >&2; exit 2; }; \
	  test -x $(CHROMIUM) || { echo "error: chromium was installed but $(CHROMIUM) is still missing" >&2; exit 2; }; \
	fi
	$(BIN)/conductor demo

## test: lint, type check, migrations vs models, then the whole test suite
test: lint typecheck migrations-check pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# `alembic check` against a fresh database at head: fails when models and migrations drift.
migrations-check: $(STAMP)
	@tmp=$$(mktemp -d) && url="sqlite+aiosqlite:///$$tmp/check.db" && \
	  CONDUCTOR_DATABASE_URL=$$url $(BIN)/alembic upgrade head && \
	  CONDUCTOR_DATABASE_URL=$$url $(BIN)/alembic check; rc=$$?; rm -rf "$$tmp"; exit $$rc

pytest: $(STAMP)
	$(BIN)/pytest

## fuzz: the property tests with all their examples (make test draws a tenth of them)
fuzz: $(STAMP)
	CONDUCTOR_FUZZ=1 $(BIN)/pytest tests/conductor/handoffs tests/conductor/test_branches.py

## bench: the speed targets of docs/PERFORMANCE.md
bench: $(STAMP)
	$(BIN)/python -m bench.bench_service
	$(BIN)/python -m bench.bench_bot
	$(BIN)/python -m bench.bench_smoke
	$(BIN)/python -m bench.bench_cli
	$(BIN)/python -m bench.bench_git
	$(BIN)/python -m bench.bench_playwright_test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

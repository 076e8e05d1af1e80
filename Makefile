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

# axe-core (package.json, pinned in package-lock.json): the board's accessibility tests inject it
# into Chromium. Needs npm (Debian's `npm`); re-installed only when the lock file changes.
NODE_STAMP := node_modules/.installed
# Without npm the axe-core tests skip, saying why (under CI they fail: .ci/run installs npm).
$(NODE_STAMP): package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --no-audit --no-fund --loglevel=error && touch $(NODE_STAMP); \
	else \
	  echo "warning: npm is missing, so axe-core is not installed and the accessibility tests skip (apt-get install npm, then make test)" >&2; \
	fi

## run: start the bot (needs CONDUCTOR_DISCORD_TOKEN; migrations are applied first)
run: $(STAMP)
	$(BIN)/conductor run

## demo: the whole release train offline, no token: the real bot against simcord (a local
## stand-in for Discord), sealing a local sample app in Debian's Chromium (its headless shell,
## installed when no Chromium is), its test and deploy commands in bubblewrap (installed too)
CHROMIUM := /usr/bin/chromium-headless-shell
FULL_CHROMIUM := /usr/bin/chromium
demo: $(STAMP)
	@need=; \
	  { [ -x $(CHROMIUM) ] || [ -x $(FULL_CHROMIUM) ]; } || need="chromium-headless-shell"; \
	  command -v bwrap >/dev/null 2>&1 || need="$$need bubblewrap"; \
	  if [ -n "$$need" ]; then \
	  echo "missing for the demo (Chromium for the seal, bubblewrap for the sandbox): installing Debian's$$need with apt-get"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=; \
	  elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	  else echo "error: installing$$need needs root: run 'apt-get install$$need' as root, then make demo" >&2; exit 2; fi; \
	  command -v apt-get >/dev/null 2>&1 || { echo "error: apt-get is not available: install$$need yourself, then make demo" >&2; exit 2; }; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need \
	    || { echo "error: apt-get could not install$$need; install it, then make demo" >&2; exit 2; }; \
	  { [ -x $(CHROMIUM) ] || [ -x $(FULL_CHROMIUM) ]; } || { echo "error: chromium-headless-shell was installed but $(CHROMIUM) is still missing" >&2; exit 2; }; \
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

# The suite on every core (at most 4), each file on one worker (module fixtures, the e2e
# bot process and its flows in order); TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ "$$n" -gt 4 ] && n=4; echo $$n)
pytest: $(STAMP) $(NODE_STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

## fuzz: the property tests with all their examples (make test draws a tenth of them)
fuzz: $(STAMP)
	CONDUCTOR_FUZZ=1 $(BIN)/pytest tests/conductor/handoffs tests/conductor/test_branches.py

## bench: the speed targets of docs/PERFORMANCE.md
bench: $(STAMP)
	$(BIN)/python -m bench.bench_service
	$(BIN)/python -m bench.bench_bot
	$(BIN)/python -m bench.bench_wire
	$(BIN)/python -m bench.bench_smoke
	$(BIN)/python -m bench.bench_cli
	$(BIN)/python -m bench.bench_git
	$(BIN)/python -m bench.bench_sandbox
	$(BIN)/python -m bench.bench_growth
	$(BIN)/python -m bench.bench_playwright_test

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Every target works as the first command on a fresh clone: it creates .venv and installs
# what is missing (idempotent: the install re-runs only when pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck migrations-check pytest bench clean

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

## bench: the speed targets of docs/PERFORMANCE.md
bench: $(STAMP)
	$(BIN)/python -m bench.bench_service
	$(BIN)/python -m bench.bench_bot

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

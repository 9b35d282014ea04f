# Two commands: `make run` (the demo, needs only Python) and `make test` (everything, on Postgres and Redis).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` installs only what running needs (requirements.txt); `make test` adds the test tools.
RUN_STAMP := $(VENV)/.installed-run-$(shell cat requirements.txt 2>/dev/null | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-dev-$(shell cat requirements.txt requirements-dev.txt 2>/dev/null | cksum | cut -d' ' -f1)

# The test suite always runs on real PostgreSQL and Redis (never SQLite, never eager Celery); each run owns
# its database and a pair of Redis databases (scripts/test.sh). TEST_DATABASE_URL / TEST_REDIS_URL override.
PYTEST_ARGS ?=

.PHONY: run test install services chromium lint check-deploy clean

$(RUN_STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-run-* && touch $@

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-dev-* $(VENV)/.installed-run-* && touch $@ $(RUN_STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	@bash scripts/run.sh

services:
	@bash scripts/ensure_services.sh

chromium:
	@command -v chromium >/dev/null 2>&1 || bash scripts/install_chromium.sh

test: install services chromium
	@bash scripts/test.sh $(PYTEST_ARGS)

lint: install
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .

check-deploy: install
	@bash scripts/check_deploy.sh

clean:
	rm -rf $(VENV) staticfiles db.sqlite3 .pytest_cache

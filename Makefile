# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: run test test-fast lint bench screenshots translations clean

# Running needs requirements.txt; the tests and tools add requirements-test.txt.
$(BIN)/activate: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(BIN)/activate

$(VENV)/.test-tools: $(BIN)/activate requirements-test.txt
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $(VENV)/.test-tools

## run: the app on SQLite (development), with demo accounts printed
run: $(BIN)/activate
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi demo-accounts
	$(BIN)/python wsgi.py

# axe-core for the accessibility test, pinned by tests/a11y/package-lock.json (without npm
# the test is skipped, and says why).
AXE := tests/a11y/node_modules/axe-core/axe.min.js
$(AXE): tests/a11y/package-lock.json
	-npm ci --prefix tests/a11y --silent --no-audit --no-fund && touch $(AXE)

## test: the whole suite, every tier (SQLite; PostgreSQL too when TEST_DATABASE_URL is set)
test: $(VENV)/.test-tools $(AXE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-fast: the unit and integration tiers, in process (under two minutes on SQLite)
test-fast: $(VENV)/.test-tools
	$(BIN)/python -m pytest tests/unit tests/integration $(PYTEST_ARGS)

## bench: closed and open loads against python wsgi.py on PostgreSQL (docs/BENCHMARKS.md)
bench: $(VENV)/.test-tools
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## screenshots: both pages, desktop and phone, light and dark, into docs/screenshots/
screenshots: $(VENV)/.test-tools
	$(BIN)/python -m tests.screenshots

lint: $(VENV)/.test-tools
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache

## translations: extract the strings of code, pages and scripts, update each language's
## catalog (translations/<lang>/LC_MESSAGES/messages.po), and compile them; commit all three
translations: $(VENV)/.test-tools
	$(BIN)/pybabel extract -F babel.cfg -k _l -k t -o translations/messages.pot --sort-output --omit-header -w 1000 .
	$(BIN)/pybabel update -i translations/messages.pot -d translations -w 1000 --no-fuzzy-matching
	$(BIN)/pybabel compile -d translations --statistics

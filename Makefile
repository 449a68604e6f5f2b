# The two commands newcomers need: `make demo` and `make test`. Each builds .venv itself from the
# lock file, so a fresh clone needs nothing but Python 3.10+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/dev.lock

.PHONY: demo test bench docs lint lock clean translations

# npm ci: axe-core for the accessibility tests (package-lock.json); node_modules/ is gitignored.
$(STAMP): $(LOCK) pyproject.toml package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m example_app

# The suite runs on pytest-xdist workers, one per core up to four, each file's tests together on
# one worker (its module-scoped peers start once); each worker has its own server databases
# (tests/worker_databases.py). PYTEST_WORKERS=0 runs it in this process.
PYTEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks

docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

lint: $(STAMP)
	$(BIN)/ruff check flask_mailconnect tests example_app
	$(BIN)/ruff format --check flask_mailconnect tests example_app
	$(BIN)/mypy
	$(BIN)/lint-imports

# Catalogues of the gettext domain flask_mailconnect: extract the .pot from the sources
# (babel.cfg), merge it into every language's .po, compile the .mo files the wheel ships.
# tests/test_translations.py fails when any of the three is out of date.
I18N     := flask_mailconnect/translations
I18N_KW  := -k _mc -k _mc_n:1,2 -k lazy_gettext -k lazy_ngettext:1,2 -k N_ -k pgettext:1c,2
translations: $(STAMP)
	$(BIN)/pybabel extract --no-default-keywords -k gettext -k ngettext:1,2 $(I18N_KW) -c TRANSLATORS: \
		-F babel.cfg --sort-by-file --project=Flask-MailConnect --copyright-holder="Flask-MailConnect contributors" \
		-o $(I18N)/flask_mailconnect.pot .
	$(BIN)/pybabel update -i $(I18N)/flask_mailconnect.pot -d $(I18N) -D flask_mailconnect
	$(BIN)/pybabel compile -d $(I18N) -D flask_mailconnect --statistics

# Regenerate the lock CI installs (needs uv); pyproject keeps lower bounds only.
lock:
	uv pip compile pyproject.toml --extra test --extra docs --extra demo --extra bench --python-version 3.11 -o $(LOCK)

clean:
	rm -rf $(VENV) node_modules docs/_build .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

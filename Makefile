# The README's commands. Only Python 3.11 is needed for `make run`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format messages bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## make run: embedded platform on http://127.0.0.1:8000 with demo data (SQLite, inline tasks)
run: $(STAMP)
	DJANGO_DEBUG=true $(BIN)/python manage.py migrate --noinput
	DJANGO_DEBUG=true $(BIN)/python manage.py seed_demo --if-empty
	@echo ""
	@echo "  fitplatform runs on http://127.0.0.1:8000/  (stop with Ctrl-C)"
	@echo "  Demo logins (password: fit-demo): anna (therapist), leder-ung (unit leader),"
	@echo "  analytiker (management information), datapolitik (data-policy admin),"
	@echo "  systemansvarlig (system owner), operatoer (platform operator)."
	@echo ""
	DJANGO_DEBUG=true $(BIN)/python manage.py runserver 127.0.0.1:8000

## make test: the whole suite (PostgreSQL/Redis when reachable, else SQLite with a notice)
test: $(STAMP)
	$(BIN)/python scripts/run_tests.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## make messages: extract the strings, fill Danish from locale/da/*.json, compile (under a
## lock, so that two developers' runs on one checkout do not interleave)
messages: $(STAMP)
	flock /tmp/fitplatform-i18n.lock sh -c '\
	  DJANGO_DEBUG=true $(BIN)/python manage.py makemessages -l da --ignore=.venv --ignore=staticfiles && \
	  $(BIN)/python scripts/fill_po.py locale/da/LC_MESSAGES/django.po locale/da/*.json && \
	  DJANGO_DEBUG=true $(BIN)/python manage.py compilemessages --ignore=.venv'

## make bench: both benchmarks against PostgreSQL (BENCH_DATABASE_URL, default a
## database fit_stats_bench that the statistics benchmark fills with 1,000,000 sessions)
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/fit_stats_bench
bench: $(STAMP)
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/stats_bench.py
	DATABASE_URL=$(BENCH_DATABASE_URL) DJANGO_DEBUG=true $(BIN)/python bench/import_bench.py --lines 1000000

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles

# Bouncehouse: every target installs what it needs first (see `install`).
# `make run` and `make test` are the two commands a fresh machine needs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed

# Airflow keeps its metadata database and logs inside the project, never in ~/airflow.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__UNIT_TEST_MODE ?= False
export BOUNCEHOUSE_HOME ?= $(CURDIR)

.PHONY: install run test bench bench-engines docs airflow lint format clean lock

install: $(STAMP)

# Re-runs only when the lock or the package metadata changed, so a second `make install` is instant.
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "bouncehouse needs Python 3.11: set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(UV) pip sync --quiet --python $(PY) requirements.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $@

run: install
	$(PY) -m bouncehouse.airflow_run

test: install
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: install
	$(PY) tests/bench/bench_ingest.py
	$(PY) tests/bench/bench_transform.py

# The same dbt build on DuckDB and on Spark (BOUNCEHOUSE_ENGINE=spark) over 1M events: minutes, on request.
bench-engines: install
	$(PY) tests/bench/bench_engines.py

docs: install
	$(PY) -m bouncehouse docs

airflow: install
	$(PY) -m bouncehouse.airflow_run --standalone

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Re-resolve the lock from requirements.in (PyPI only; Airflow's constraint files are not reachable).
lock: install
	$(UV) pip compile --quiet --python-version 3.11 --no-header requirements.in -o requirements.txt

clean:
	rm -rf data .airflow dbt/target dbt/logs .pytest_cache

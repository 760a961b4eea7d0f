# Two entry points for a fresh machine:
#   make demo   - the whole recipe on the embedded mini task, 3 seeds (recipes/wsj/run_seeds.sh)
#   make test   - the test suite (CPU; GPU tests skip without CUDA)
# Each creates .venv and installs what it needs.  TORCH pins the CPU build that
# lies on the reference machines; on a GPU machine install your own torch first
# or run e.g. `make demo TORCH="torch>=2.1,<2.15"`.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast venv clean bench

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,onnx,synth]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	cd recipes/wsj && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ./run_seeds.sh

test: venv
	$(PY) -m pytest -q -p no:cacheprovider

# the suite without the tests marked slow (recipe runs, kill and fault harnesses,
# torchrun, tests that spawn many processes)
test-fast: venv
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

clean:
	rm -rf $(VENV) recipes/wsj/exp recipes/wsj/data

# nerdata: `make demo` runs the main job, `make test` runs the tests. Both set up everything
# they need on a fresh machine: the project venv (.venv), Label Studio's own venv (.venv-ls)
# and Debian's Chromium for the browser test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
LSVENV := .venv-ls
PY := $(VENV)/bin/python
NERDATA_CORPORA ?= $(abspath ../shared/corpora)
export NERDATA_CORPORA
PYTEST_ARGS ?=

.PHONY: setup test demo clean-venv chromium help

help:
	@echo "make demo   - run the main job (Label Studio + model + agreement + release + retrain)"
	@echo "make test   - run the test suite (starts Label Studio on 127.0.0.1 when needed)"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip wheel setuptools
	# the CPU wheel; a bare `torch` requirement would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $@

$(LSVENV)/.installed:
	test -x $(LSVENV)/bin/python || $(PYTHON) -m venv $(LSVENV)
	$(LSVENV)/bin/python -m pip install -q -U pip wheel
	$(LSVENV)/bin/python -m pip install -q label-studio==1.23.2
	touch $@

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  else sudo apt-get update -q && sudo apt-get install -y -q chromium; fi; }

setup: $(VENV)/.installed $(LSVENV)/.installed chromium

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(PY) -m nerdata.cli.main demo

clean-venv:
	rm -rf $(VENV) $(LSVENV)

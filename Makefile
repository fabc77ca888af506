# nerdata: `make demo` runs the main job, `make test` runs the tests. Both set up everything
# they need on a fresh machine: the project venv (.venv), Label Studio's own venv (.venv-ls)
# Debian's Chromium for the browser tests and Debian's Noto fonts for our corpora's scripts.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
LSVENV := .venv-ls
PY := $(VENV)/bin/python
NERDATA_CORPORA ?= $(abspath ../shared/corpora)
export NERDATA_CORPORA
PYTEST_ARGS ?=

.PHONY: setup test demo clean-venv chromium fonts postgresql help

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

# Noto fonts for every script of our corpora, so no text shows as empty boxes ("tofu") in the
# browser: Debian's fonts-noto-core has Noto Sans (Latin with Yoruba's tone marks), Noto Sans
# Devanagari (Hindi, Marathi, Nepali), Noto Sans Oriya (Odia), Noto Sans Telugu, Noto Sans
# Bengali, Noto Nastaliq Urdu and Noto Naskh Arabic (Urdu) and Noto Sans Ethiopic (Amharic).
# A stock Debian has none of them (DejaVu/Liberation only). tests/test_fonts.py checks them.
FONT_PACKAGES := fonts-noto-core
fonts:
	@missing=""; for p in $(FONT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian's Noto fonts for the corpora's scripts:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	  else sudo apt-get update -q && sudo apt-get install -y -q --no-install-recommends $$missing; fi; \
	  fc-cache -f >/dev/null 2>&1 || true; \
	fi

# Debian's PostgreSQL server programs (initdb, pg_ctl): the tests start a throwaway cluster
# for Label Studio's PostgreSQL mode (python -m nerdata.label_studio.database); Label Studio's
# own venv already has its driver (psycopg 3). The Debian service itself is not started.
postgresql:
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing Debian's postgresql for Label Studio on PostgreSQL"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q --no-install-recommends postgresql; \
	  else sudo apt-get update -q && sudo apt-get install -y -q --no-install-recommends postgresql; fi; \
	fi

setup: $(VENV)/.installed $(LSVENV)/.installed chromium fonts postgresql

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(PY) -m nerdata.cli.main demo

clean-venv:
	rm -rf $(VENV) $(LSVENV)

# Plitka Pro: the two project commands are `make predict` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PARAMS ?= examples/params/two_colors_45deg.json
QUALITY ?=

.PHONY: predict test lint schema bench system-deps clean

$(VENV)/.runtime-stamp: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt cog==0.23.1
	$(PIP) install --quiet --no-deps controlnet-aux==0.0.10
	touch $@

$(VENV)/.dev-stamp: $(VENV)/.runtime-stamp requirements-dev.txt requirements-sidecar.txt
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

## System packages the test suite drives for real (Chromium for the sidecar page, Redis for Celery).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

## Run one prediction through the real Cog HTTP server; images + report land in outputs/.
predict: $(VENV)/.runtime-stamp
	$(PY) scripts/predict_local.py --params $(PARAMS) $(if $(QUALITY),--quality $(QUALITY)) --out outputs

## Run the whole test suite (and ruff).
test: $(VENV)/.dev-stamp system-deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(VENV)/.dev-stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## Regenerate .cog/openapi_schema.json from the runner (commit the result).
schema: $(VENV)/.runtime-stamp
	$(PY) scripts/openapi_schema.py --write

## Benchmarks print ratios measured side by side in one run (never asserted in tests).
## Without PLITKA_WEIGHTS_DIR the diffusion benchmarks run on demo weights in demo-weights/, on the CPU
## (PLITKA_DEVICE=cpu unless set: diffusion runs on the CPU only when asked for).
bench: $(VENV)/.dev-stamp
	@test -n "$$PLITKA_WEIGHTS_DIR" || $(PY) weights.py verify demo-weights >/dev/null 2>&1 || \
	  (rm -rf demo-weights && $(PY) weights.py demo demo-weights)
	export PLITKA_WEIGHTS_DIR="$${PLITKA_WEIGHTS_DIR:-$(CURDIR)/demo-weights}"; \
	if [ "$$PLITKA_WEIGHTS_DIR" = "$(CURDIR)/demo-weights" ]; then export PLITKA_DEVICE="$${PLITKA_DEVICE:-cpu}"; fi; \
	$(PY) bench/params_fuzz.py && \
	$(PY) bench/colormap.py && \
	$(PY) bench/draft_render.py && \
	$(PY) bench/setup_time.py && \
	$(PY) bench/controlnet_memory.py && \
	$(PY) bench/predictor_overhead.py && \
	$(PY) bench/color_fidelity.py && \
	$(PY) bench/sidecar_load.py && \
	$(PY) bench/sidecar_retries.py

clean:
	rm -rf outputs demo-weights test-artifacts .pytest_cache

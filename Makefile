# Edge-filter WPS. `make run` and `make test` install whatever is missing first.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
WPS_PORT ?= 5000
WMS_PORT ?= 8081
# empty: gunicorn.conf.py decides (twice the cores, at most 8)
WORKERS ?=
# make cluster: API instances behind HAProxy, and Dask workers for the async jobs
INSTANCES ?= 2
DASK_WORKERS ?= 2
SAMPLE := data/generated/sample_city.tif
# the benchmark's other kinds of data (photo-like, flat map); make_kinds.py writes the flat
# map last, so its presence means both are there
KINDS := data/generated/sample_flat.tif
# MapServer + lighttpd serve the sample WMS; nginx is the service's front; gdal-bin and QGIS
# check outputs in tests; PostgreSQL is the optional shared job store; libjs-leaflet is the
# map page's library (served from /usr/share/javascript/leaflet), chromium and its driver
# run the page's browser tests; HAProxy balances over the instances of `make cluster`.
DEBIAN_PACKAGES := python3-venv cgi-mapserver mapserver-bin lighttpd gdal-bin \
	python3-qgis qgis-providers postgresql curl nginx libjs-leaflet chromium chromium-driver \
	haproxy

.DEFAULT_GOAL := help
.PHONY: help system-deps venv sample run cluster test bench lint clean docker-build qgis-plugin

help:
	@echo "make run           install what is missing, start the sample WMS and the WPS"
	@echo "make cluster       HAProxy, INSTANCES instances, PostgreSQL, a Dask scheduler and"
	@echo "                   DASK_WORKERS workers on one host (WPS_WMS_URL: another WMS)"
	@echo "make test          install what is missing, run the whole test suite"
	@echo "make bench         run the benchmarks in bench/ (BENCH_ARGS='--only dask': one section)"
	@echo "make lint          ruff check"
	@echo "make qgis-plugin   build dist/wps_processing.zip (QGIS: Install from ZIP)"
	@echo "make docker-build  build the container image (needs a Docker engine)"
	@echo "make clean         remove generated data, outputs and the virtualenv"

system-deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

$(SAMPLE): data/make_sample.py | $(VENV)/.installed
	$(PY) data/make_sample.py

$(KINDS): data/make_kinds.py data/make_sample.py | $(VENV)/.installed
	$(PY) data/make_kinds.py

sample: $(SAMPLE) $(KINDS)

run: system-deps venv sample
	$(PY) -m devtools.run --port $(WPS_PORT) --wms-port $(WMS_PORT) $(if $(WORKERS),--workers $(WORKERS))

# the scaled-out topology on loopback (README "Deployment"); Ctrl-C stops all of it
cluster: system-deps venv sample
	$(PY) -m devtools.cluster --port $(WPS_PORT) --instances $(INSTANCES) \
		--workers $(DASK_WORKERS) $(if $(WORKERS),--gunicorn-workers $(WORKERS))

# The unit layer (in-process, no servers) must cover the raster core; then the servers.
test: system-deps venv sample
	$(PY) -m pytest tests/unit --cov=wps_app/core --cov-report=term-missing --cov-fail-under=90
	$(PY) -m pytest tests/integration

bench: system-deps venv sample
	$(PY) -m bench.run $(BENCH_ARGS)

lint: venv
	$(PY) -m pip install -q ruff && $(VENV)/bin/ruff check .

docker-build:
	docker build -t wps-edge .

# the QGIS plugin as Plugins → Install from ZIP takes it (see qgis_plugin/README.md)
qgis-plugin:
	$(PYTHON) qgis_plugin/build.py dist/wps_processing.zip

clean:
	rm -rf data/generated var $(VENV) .pytest_cache .hypothesis

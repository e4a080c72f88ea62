# Set-up and entry points; README.md names `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test tools bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# DICOM peers and validators used by tests (dciodvfy, plastimatch, dcmtk).
tools:
	bash scripts/install-tools.sh

demo: $(VENV)/.installed
	$(VENV)/bin/contourqa demo

test: $(VENV)/.installed tools
	$(PY) -m pytest -q

bench: $(VENV)/.installed tools
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) contourqa-demo-report .pytest_cache

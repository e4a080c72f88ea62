# Set-up and entry points; README.md names `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test tools bench clean screenshot

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m compileall -q contourqa >/dev/null  # bytecode, as a regular install has
	touch $@

# DICOM peers and validators used by tests (dciodvfy, plastimatch, dcmtk).
tools:
	bash scripts/install-tools.sh

demo: $(VENV)/.installed
	$(VENV)/bin/contourqa demo

test: $(VENV)/.installed tools
	$(PY) -m mypy contourqa
	$(PY) -m pytest -q

bench: $(VENV)/.installed tools
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

# Refresh the reference screenshot of the demo HTML report (needs chromium: make tools).
screenshot: $(VENV)/.installed
	$(VENV)/bin/contourqa demo --out contourqa-demo-report >/dev/null; \
	chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
	  --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
	  --user-data-dir=contourqa-demo-report/.chromium --window-size=1280,2300 \
	  --screenshot=docs/demo-report.png "file://$$(pwd)/contourqa-demo-report/report.html"
	$(PY) -c "from PIL import Image; im = Image.open('docs/demo-report.png'); \
	  im.convert('RGB').quantize(colors=64).save('docs/demo-report.png', optimize=True)"

clean:
	rm -rf $(VENV) contourqa-demo-report .pytest_cache

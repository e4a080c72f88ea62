# Set-up and entry points; README.md names `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# An editable install whose import path is the clone's folder (a .pth line), not an
# import hook: `contourqa` is then this package even from a folder holding a
# `contourqa/` directory (the parent of a clone), for the workers too.
EDITABLE := --config-settings editable_mode=compat -e

.PHONY: demo test tools bench clean screenshot

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

# the runtime only (what `contourqa check` and the demo need)
$(VENV)/.installed-runtime: pyproject.toml $(VENV)/.created
	$(PY) -m pip install --quiet $(EDITABLE) .
	$(PY) -m compileall -q contourqa >/dev/null  # bytecode, as a regular install has
	touch $@

# every extra and the test tools: [test] pulls [audit] and [node]
$(VENV)/.installed-test: pyproject.toml $(VENV)/.created
	$(PY) -m pip install --quiet $(EDITABLE) '.[test]'
	$(PY) -m compileall -q contourqa >/dev/null
	touch $@ $(VENV)/.installed-runtime

# DICOM peers and validators used by tests (dciodvfy, plastimatch, dcmtk).
tools:
	bash scripts/install-tools.sh

demo: $(VENV)/.installed-runtime
	$(VENV)/bin/contourqa demo
	@echo "Run it yourself: . $(VENV)/bin/activate && contourqa --help   (or $(VENV)/bin/contourqa --help)"

test: $(VENV)/.installed-test tools
	$(PY) -m mypy contourqa
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: $(VENV)/.installed-test tools
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

# Refresh the reference screenshot of the demo HTML report (needs chromium: make tools).
screenshot: $(VENV)/.installed-runtime
	$(VENV)/bin/contourqa demo --out contourqa-demo-report >/dev/null; \
	chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
	  --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
	  --user-data-dir=contourqa-demo-report/.chromium --window-size=1280,2300 \
	  --screenshot=docs/demo-report.png "file://$$(pwd)/contourqa-demo-report/report.html"
	$(PY) -c "from PIL import Image; im = Image.open('docs/demo-report.png'); \
	  im.convert('RGB').quantize(colors=64).save('docs/demo-report.png', optimize=True)"

clean:
	rm -rf $(VENV) contourqa-demo-report .pytest_cache

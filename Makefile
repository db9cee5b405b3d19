# The README's two commands: `make demo` (the main job, offline, on the built-in dataset) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The oldest Ultralytics we support, read from the one place the range is written (pyproject.toml).
ULTRALYTICS_LOW := $(shell sed -n 's/.*"ultralytics>=\([0-9.]*\),.*/\1/p' pyproject.toml)
LOW_SITE := $(VENV)/ultralytics-$(ULTRALYTICS_LOW)
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := False

.PHONY: demo test test-fast test-low test-wheel lint doc-images clean

# The editable install copies the import hook into site-packages: a changed hook reinstalls.
$(VENV)/.installed: pyproject.toml $(wildcard spikeyolo_ibra/hook/*)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[dev,export]'
	touch $@

demo: $(VENV)/.installed
	$(PY) tools/demo.py

test: $(VENV)/.installed
	$(PY) -m pytest -q

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow"

# The fast tests against the oldest supported Ultralytics, installed beside the venv's own and put first on the path.
$(LOW_SITE)/.installed: $(VENV)/.installed
	$(PY) -m pip install --quiet --no-deps --target $(LOW_SITE) 'ultralytics==$(ULTRALYTICS_LOW)'
	touch $@

test-low: $(LOW_SITE)/.installed
	PYTHONPATH=$(CURDIR)/$(LOW_SITE) $(PY) -c 'import ultralytics; print("ultralytics", ultralytics.__version__)'
	PYTHONPATH=$(CURDIR)/$(LOW_SITE) $(PY) -m pytest -q -m "not slow"

# The wheel as users get it: installed (not editable) into a fresh venv, used from outside the checkout by bare names.
test-wheel: $(VENV)/.installed
	tools/ci_wheel.sh $(PY)

# The pictures of README.md and docs/spike-inference.md, from the report of the last `make demo` (runs/demo/).
doc-images: $(VENV)/.installed
	$(PY) tools/doc_images.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache

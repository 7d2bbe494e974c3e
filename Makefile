PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install train train-digits test test-fast lint bench clean

install: $(BIN)/graphspec

# What the test suite needs: the lean package, TensorFlow and JAX (the cross-backend tests), the test tools.
# A user installs `pip install 'keras-graphspec[tensorflow]'` (or [jax], [torch], [all]); lint alone needs no extra.
$(BIN)/graphspec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[tensorflow,jax,dev]'
	@touch $@

# The main job, the mission's command: train specs/resnet.yaml on the shapes dataset (generated offline by
# tools/make_shapes.py when specs/data/shapes is missing), creating .venv if needed. README: "make train".
SHAPES := specs/data/shapes

train: install $(SHAPES)
	$(BIN)/graphspec train specs/resnet.yaml

$(SHAPES):
	$(BIN)/python tools/make_shapes.py --out $(SHAPES)

# The quick one: scikit-learn's bundled 8x8 digits, under a minute.
train-digits: install
	$(BIN)/graphspec train specs/digits.yaml

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not keras and not slow"

lint: install $(SHAPES)
	$(BIN)/graphspec lint specs/

# Each benchmark prints its figures: most compare graphspec with hand-written Keras in one process (ratios).
bench: install
	$(BIN)/python bench/bench_compile.py
	$(BIN)/python bench/bench_lint.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_sweep.py
	$(BIN)/python bench/bench_diff.py
	$(BIN)/python bench/bench_backends.py
	$(BIN)/python bench/bench_install.py
	$(BIN)/python bench/bench_data.py

clean:
	rm -rf $(VENV) build *.egg-info

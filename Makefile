PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install train train-digits test test-fast lint bench clean

install: $(BIN)/graphspec

# What the test suite needs: the lean package, TensorFlow, JAX and PyTorch (the cross-backend tests), the test tools.
# A user installs `pip install 'keras-graphspec[tensorflow]'` (or [jax], [torch], [all]); lint alone needs no extra.
# PyTorch, the third backend, is pinned to its CPU wheel (about 30 s to install, 0.9 GB): an open range would
# pick a CUDA build of several GB.
TORCH ?= torch==2.13.0

$(BIN)/graphspec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[tensorflow,jax,dev]'
	$(BIN)/pip install '$(TORCH)'
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

# -rs lists every skip with its reason (CI fails on one that tests/allowed_skips.txt does not list).
# Two worker processes (pytest-xdist), a test file each at a time: the suite is CPU-bound, and on 2 cores two
# workers keep both busy (1,919 tests, back to back: 724 s in one process, 556 s in two). TEST_WORKERS=1 runs
# it in one.
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -q -rs $(if $(filter 1,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test-fast: install
	$(BIN)/python -m pytest -q -m "not keras and not slow"

lint: install $(SHAPES)
	$(BIN)/graphspec lint specs/

# Each benchmark prints its figures: most compare graphspec with hand-written Keras in one process (ratios).
# At the end, one table of every headline figure against its target, also written to docs/performance.md.
BENCH_SUMMARY ?= $(CURDIR)/.bench-figures.jsonl
bench: install
	rm -f $(BENCH_SUMMARY)
	export GRAPHSPEC_BENCH_SUMMARY=$(BENCH_SUMMARY); \
	for b in compile lint train import sweep diff backends startup distributed data tracking lsp install; do \
	  $(BIN)/python bench/bench_$$b.py || echo "bench_$$b exited $$?"; \
	done
	$(BIN)/python bench/figures.py $(BENCH_SUMMARY) --markdown docs/performance.md

clean:
	rm -rf $(VENV) build *.egg-info

"""Shared test set-up: quiet TensorFlow, deterministic seeds, spec paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests run on the CPU everywhere

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
PLUGIN = SPECS / "plugins" / "custom_dense.py"


@pytest.fixture
def specs_dir() -> Path:
    return SPECS


@pytest.fixture
def keras_clean():
    """A fresh Keras state (names, seeds) for tests that build models."""
    from graphspec.build.backend import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield keras
    keras.backend.clear_session()


@pytest.fixture(scope="session")
def example_data() -> Path:
    """specs/data/shapes, the images specs/resnet.yaml reads (generated as `make train` does, when missing)."""
    import subprocess
    import sys

    folder = SPECS / "data" / "shapes"
    if not folder.is_dir():
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_shapes.py"), "--out", str(folder)], check=True,
                       capture_output=True)
    return folder

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

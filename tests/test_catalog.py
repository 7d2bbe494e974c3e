"""The committed catalog (the closed table of names a spec may use) matches the installed Keras."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from .conftest import ROOT


@pytest.mark.keras
def test_catalog_matches_installed_keras() -> None:
    spec = importlib.util.spec_from_file_location("gen_catalog", ROOT / "tools" / "gen_catalog.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    sys.modules["gen_catalog"] = gen
    spec.loader.exec_module(gen)
    committed = (ROOT / "graphspec" / "spec" / "catalog_data.py").read_text()
    assert gen.render(gen.build()) == committed, (
        "graphspec/spec/catalog_data.py is out of date for this Keras: run `.venv/bin/python tools/gen_catalog.py`")


def test_dangerous_names_are_not_in_the_catalog() -> None:
    from graphspec.spec import catalog

    for name in ("Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"):
        assert name not in catalog.LAYERS
    for op in ("vectorized_map", "cond", "while_loop", "custom_gradient", "vectorize"):
        assert op not in catalog.OPS

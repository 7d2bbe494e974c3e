"""The public Python API (README "Python API"): check, build, load, Diagnostic."""

from __future__ import annotations

from pathlib import Path

import pytest

import graphspec

from .conftest import SPECS


def test_check_reports_located_diagnostics_without_raising(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("graphspec: 1\nname: bad\ninputs: {x: {shape: [4]}}\nnodes:\n  d: {type: Dense, units: -3}\n"
                   "models: {m: {inputs: [x], outputs: [d]}}\n")
    checked = graphspec.check(bad)
    assert not checked.ok
    errors = [d for d in checked.diagnostics if d.is_error]
    assert errors and all(isinstance(d, graphspec.Diagnostic) for d in errors)
    assert errors[0].location.file == str(bad) and errors[0].location.line == 5
    assert errors[0].code.startswith("GS")


def test_check_applies_sets() -> None:
    checked = graphspec.check(SPECS / "mnist_mlp.yaml", sets=["nodes.dense_1.units=128",
                                                                     "models.mnist_model.expect.params=109386"])
    assert checked.ok, [str(d) for d in checked.diagnostics]
    assert graphspec.check(SPECS / "mnist_mlp.yaml", sets=["nodes.dense_1.units=128"]).diagnostics.has_errors


@pytest.mark.keras
def test_build_and_load_give_keras_models() -> None:
    checked = graphspec.check(SPECS / "mnist_mlp.yaml")
    built = graphspec.build(checked)
    loaded = graphspec.load(SPECS / "mnist_mlp.yaml")
    assert set(built) == set(loaded) == {"mnist_model"}
    assert built["mnist_model"].count_params() == loaded["mnist_model"].count_params() == 55050


def test_build_of_a_bad_spec_raises_spec_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("graphspec: 1\nnodes: {}\n")
    with pytest.raises(graphspec.SpecError) as info:
        graphspec.build(graphspec.check(bad))
    assert info.value.diagnostics

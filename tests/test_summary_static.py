"""`graphspec summary` from the static analysis: the same rows and totals as the built Keras model, no backend.

The table's rows are what `render.text.model_rows` reads off a built model: Keras's operation order (by
depth from the outputs), names (ops numbered as Keras numbers them), types, output shapes, parameters and
inbound layers. tests/test_import.py compares the same for the keras.applications models it round-trips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from graphspec import compiler
from graphspec.analysis.summary import Unsupported, static_summary
from graphspec.cli.app import app
from graphspec.spec import plugins as plugins_mod

from .conftest import SPECS
from .test_backends import graphspec

EXAMPLES = sorted(p.relative_to(SPECS).as_posix() for p in [*SPECS.glob("*.yaml"), *SPECS.glob("*/*.yaml")])
# Specs whose models are built from an application's inner layers: only Keras knows those rows.
BUILT_ONLY = {"vgg19_features.yaml"}


def _checked(name: str) -> compiler.Checked:
    checked = compiler.check(SPECS / name, plugins=plugins_mod.all_plugins(None))
    assert checked.ok, [str(d) for d in checked.diagnostics]
    return checked


@pytest.mark.keras
@pytest.mark.parametrize("name", [e for e in EXAMPLES if e not in BUILT_ONLY])
def test_every_example_has_keras_rows_and_totals(name: str, keras_unweighted: object) -> None:
    from graphspec.render.text import model_rows, model_totals

    checked = _checked(name)
    tables = static_summary(checked.graph, checked.analysis, None)
    built = compiler.build(checked, compile=False)
    assert [t.name for t in tables] == list(built)
    for table in tables:
        model = built[table.name]
        assert [r.as_dict() for r in table.rows] == model_rows(model)
        assert {"params": table.params, "trainable_params": table.trainable_params,
                "non_trainable_params": table.non_trainable_params} == model_totals(model)


@pytest.mark.keras
@pytest.mark.parametrize("name", [e for e in EXAMPLES if not e.startswith("resnet_family/resnet") or
                                  e == "resnet_family/resnet18.yaml"])  # one of the family; resnet50.yaml stays
def test_a_build_without_values_is_the_full_build(name: str, keras_clean: Any) -> None:
    """`graphspec build` and `summary --keras` build with `values=False`: the same models (configs, parameter
    counts, compile settings) as a full build, whose variables hold no values."""
    checked = _checked(name)
    full = {n: (m.to_json(), m.count_params(), m.get_compile_config() if m.compiled else None)
            for n, m in compiler.build(checked).items()}
    keras_clean.backend.clear_session(free_memory=False)  # the same automatic names as in the full build
    bare = compiler.build(checked, values=False)
    assert {n: (m.to_json(), m.count_params(), m.get_compile_config() if m.compiled else None) for n, m in bare.items()} == full
    assert all(v._value is None for m in bare.values() for v in m.weights)  # never a fallback to a full build


def test_a_model_over_an_application_is_left_to_keras() -> None:
    checked = _checked("vgg19_features.yaml")
    with pytest.raises(Unsupported, match="inner layers"):
        static_summary(checked.graph, checked.analysis, None)


def test_op_nodes_are_numbered_as_keras_numbers_them(tmp_path: Path) -> None:
    spec = tmp_path / "ops.yaml"
    spec.write_text(
        "graphspec: 1\nname: ops\ninputs:\n  x: [4]\nnodes:\n"
        "  a: {op: add, inputs: [x, x]}\n  b: {op: add, inputs: [a, x]}\n  c: {op: abs, inputs: b}\n"
        "  d: {type: Dense, units: 2, inputs: c}\n"
        "models:\n  m: {inputs: x, outputs: d}\n", encoding="utf-8")
    checked = compiler.check(spec)
    assert checked.ok, [str(d) for d in checked.diagnostics]
    (table,) = static_summary(checked.graph, checked.analysis, None)
    assert [(r.name, r.type, r.inputs) for r in table.rows] == [
        ("x", "InputLayer", []), ("add", "Add", ["x"]), ("add_1", "Add", ["add", "x"]),
        ("absolute", "Absolute", ["add_1"]), ("d", "Dense", ["absolute"])]
    assert table.rows[-1].params == 10


def test_summary_of_resnet50_needs_no_backend() -> None:
    """The table of a 25.6M-parameter model with TensorFlow, JAX, PyTorch and Keras unimportable."""
    proc = graphspec("summary", "specs/resnet50.yaml", blocked="tensorflow,jax,torch,keras")
    assert proc.returncode == 0, proc.stderr
    assert "Total params: 25,636,712  Trainable: 25,583,592  Non-trainable: 53,120" in proc.stdout
    assert "predictions" in proc.stdout and "(None, 1000)" in proc.stdout


def test_keras_flag_and_the_fallback_build_the_model() -> None:
    runner = CliRunner()
    static = runner.invoke(app, ["summary", str(SPECS / "mnist_mlp.yaml"), "--format", "json"])
    assert static.exit_code == 0, static.output
    proc = graphspec("summary", "specs/vgg19_features.yaml", blocked="tensorflow,jax,torch,keras")
    assert proc.returncode == 2 and "keras-graphspec[" in proc.stderr  # needs Keras: says which extra

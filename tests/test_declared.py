"""Plugin layers that declare their shapes for lint (`graphspec_shapes`): read with ast, evaluated by
graphspec's own small expression language, never run by lint; verified against Keras by build."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import graphspec
from graphspec.analysis.shapes import NoRule
from graphspec.analysis.shapes.declared import DeclarationError, evaluate
from graphspec.cli.app import app

DENSE = {"output": "[*input[:-1], units]", "params": "input[-1] * units + units", "macs": "prod(input) * units"}


def test_evaluate_a_dense_like_declaration() -> None:
    r = evaluate("D", DENSE, {"units": 3}, [(5, 4)])
    assert (r.outputs, r.params, r.trainable_params, r.macs) == (((5, 3),), 15, 15, 60)
    r = evaluate("D", DENSE, {"units": 3}, [(None, 4)])
    assert (r.outputs, r.params, r.macs) == (((None, 3),), 15, None)  # None: an unknown size
    assert evaluate("D", DENSE, {"units": 3, "trainable": False}, [(4,)]).trainable_params == 0


@pytest.mark.parametrize(("expr", "value"), [
    ("1 + 2 * 3 - 4 // 3 % 2", 6),
    ("[*input, 1][-1]", 1),
    ("input[1:]", [2, 3]),
    ("len(inputs)", 2),
    ("sum(input) if len(input) == 3 else 0", 6),
    ("max(input) + min(1, 2)", 4),
    ("int(units * 0.5)", 5),
    ("None if units > 5 and not flag else 1", None),
    ("inputs[1][0] * 2", 14),
    ("-units", -10),
])
def test_the_expression_language(expr: str, value: Any) -> None:
    decl = {"outputs": "[input]", "params": "0", "macs": f"0 if ({expr}) == ({expr}) else 1"}
    env = {"units": 10, "flag": False}
    assert evaluate("L", decl, env, [(1, 2, 3), (7,)]).macs in (0, None)
    from graphspec.analysis.shapes.declared import _Evaluator

    assert _Evaluator({**env, "input": [1, 2, 3], "inputs": [[1, 2, 3], [7]]}).run(expr) == value


@pytest.mark.parametrize(("expr", "message"), [
    ("input.__class__", "not allowed"),
    ("__import__('os')", "not allowed"),
    ("open", "unknown name"),
    ("[x for x in input]", "not allowed"),
    ("lambda: 1", "not allowed"),
    ("2 ** 10", "not allowed"),
    ("[1] * 100", "unsupported operands"),
    ("'text'", "not a number"),
    ("prod([10**0] * 1)", "not allowed"),
    ("99999999999 * 99999999999 * 99999999999", "a number over"),
    ("input[7]", "out of range"),
    ("units / 2", "not allowed"),
    ("1 +", "invalid expression"),
    ("x" * 1001, "more than 1000 characters"),
    ("unit", "did you mean `units`"),
])
def test_what_a_declaration_cannot_do(expr: str, message: str) -> None:
    with pytest.raises(DeclarationError) as exc:
        evaluate("L", {"output": "input", "params": expr}, {"units": 2}, [(3,)])
    assert message in exc.value.message + (exc.value.hint or "")
    assert exc.value.key == "params"


@pytest.mark.parametrize(("decl", "message"), [
    ({"output": "input", "params": "-1"}, "must be an integer >= 0"),
    ({"output": "units", "params": "1"}, "a shape must be a list"),
    ({"output": "[-1]", "params": "1"}, "a shape must be a list"),
    ({"outputs": "[]", "params": "1"}, "non-empty list of shapes"),
    ({"output": "input", "params": "1", "trainable_params": "2"}, "from 0 to params"),
])
def test_bad_results(decl: dict[str, str], message: str) -> None:
    with pytest.raises(DeclarationError, match=message):
        evaluate("L", decl, {"units": 2}, [(3,)])


def test_parameters_of_unknown_size_are_not_guessed() -> None:
    with pytest.raises(NoRule, match="unknown dimension"):
        evaluate("L", DENSE, {"units": 2}, [(None,)])


PLUGIN = '''
import keras
raise RuntimeError("lint must never run this file")


class Twice(keras.layers.Layer):
    graphspec_shapes = {
        "outputs": "[input, input]",
        "params": "2 * scale",
        "trainable_params": "scale",
        "macs": "0",
    }

    def __init__(self, scale=3, **kwargs):
        super().__init__(**kwargs)


class Broken(keras.layers.Layer):
    graphspec_shapes = {"output": "input", "parms": "1"}


class Computed(keras.layers.Layer):
    graphspec_shapes = make_them()


class Undeclared(keras.layers.Layer):
    pass
'''


def _lint(tmp_path: Path, nodes: str) -> Any:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    spec = tmp_path / "t.yaml"
    spec.write_text("graphspec: 1\nname: t\ninputs:\n  x: [4]\nnodes:\n" + textwrap.indent(nodes, "  "))
    return graphspec.check(spec, plugins=[str(plugin)]), str(plugin)


def test_lint_reads_declarations_without_running_the_plugin(tmp_path: Path) -> None:
    checked, _ = _lint(tmp_path, "t: {type: Twice}\ns: {type: Add, inputs: [t.0, t.1]}\n")
    assert checked.ok and not checked.diagnostics, [str(d) for d in checked.diagnostics]
    model = checked.analysis.models["t"]
    assert (model.params, model.trainable, model.macs, model.output_shapes) == (6, 3, 0, {"s": (4,)})
    checked, _ = _lint(tmp_path, "t: {type: Twice, scale: 5, trainable: false}\n")
    assert (checked.analysis.models["t"].params, checked.analysis.models["t"].trainable) == (10, 0)


def test_declaration_problems_point_into_the_plugin(tmp_path: Path) -> None:
    checked, plugin = _lint(tmp_path, "b: {type: Broken}\n")
    (d,) = checked.diagnostics.errors
    assert d.code == "GS303" and "unknown key 'parms'" in d.message
    assert (d.location.file, d.location.line, d.location.col) == (plugin, 19, 5)
    assert "node `b`" in d.notes[0]
    checked, plugin = _lint(tmp_path, "c: {type: Computed}\n")
    (d,) = checked.diagnostics.errors
    assert d.code == "GS303" and "dict literal" in d.message


def test_an_expression_error_is_located_at_its_string(tmp_path: Path) -> None:
    plugin = tmp_path / "p.py"
    plugin.write_text("import keras\n\nclass L(keras.layers.Layer):\n    graphspec_shapes = {\n"
                      "        'output': 'input',\n        'params': 'input[-1] * unit',\n    }\n")
    spec = tmp_path / "t.yaml"
    spec.write_text("graphspec: 1\nname: t\ninputs:\n  x: [4]\nnodes:\n  l: {type: L}\n")
    result = CliRunner().invoke(app, ["lint", str(spec), "--plugin", str(plugin)])
    assert result.exit_code == 1
    assert f"{plugin}:6:19: error[GS303]: L.graphspec_shapes: unknown name `unit`" in result.output


def test_undeclared_plugin_layers_warn_with_a_pointer(tmp_path: Path) -> None:
    checked, _ = _lint(tmp_path, "u: {type: Undeclared}\n")
    (d,) = checked.diagnostics
    assert d.code == "GS302" and "graphspec_shapes" in (d.hint or "")


@pytest.mark.keras
def test_build_checks_declarations_against_keras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not under the repository's pyproject.toml, which names its own CustomDense
    plugin = tmp_path / "dense.py"
    source = (Path(__file__).resolve().parents[1] / "specs" / "plugins" / "custom_dense.py").read_text()
    plugin.write_text(source.replace('"input[-1] * units + units"', '"input[-1] * units"'))
    spec = tmp_path / "t.yaml"
    spec.write_text("graphspec: 1\nname: t\ninputs:\n  x: [4]\nnodes:\n  c: {type: CustomDense, units: 10}\n")
    result = CliRunner().invoke(app, ["build", str(spec), "--plugin", str(plugin)])
    assert result.exit_code == 1
    assert "error[GS304]: CustomDense.graphspec_shapes gives node `c` 40 parameters, Keras built 50" in result.output
    plugin.write_text(source)
    result = CliRunner().invoke(app, ["build", str(spec), "--plugin", str(plugin)])
    assert result.exit_code == 0, result.output


@pytest.mark.keras
def test_build_checks_declarations_inside_fresh_only_submodels(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A submodel called only `fresh` is built by its instances alone (not once more as a template):
    # its plugin nodes are still checked against their declarations.
    monkeypatch.chdir(tmp_path)
    plugin = tmp_path / "dense.py"
    source = (Path(__file__).resolve().parents[1] / "specs" / "plugins" / "custom_dense.py").read_text()
    plugin.write_text(source.replace('"input[-1] * units + units"', '"input[-1] * units"'))
    spec = tmp_path / "t.yaml"
    spec.write_text("graphspec: 1\nname: t\ninputs:\n  m_in: [4]\n  x: [4]\nnodes:\n"
                    "  c: {type: CustomDense, units: 10, inputs: m_in}\n"
                    "  y1: {model: member, fresh: true, inputs: x}\n"
                    "  y2: {model: member, fresh: true, inputs: x}\n"
                    "  avg: {type: Average, inputs: [y1, y2]}\n"
                    "models:\n  member: {inputs: m_in, outputs: c, submodel: true}\n  m: {inputs: x, outputs: avg}\n")
    result = CliRunner().invoke(app, ["build", str(spec), "--plugin", str(plugin)])
    assert result.exit_code == 1
    assert "error[GS304]: CustomDense.graphspec_shapes gives node `c` 40 parameters, Keras built 50" in result.output

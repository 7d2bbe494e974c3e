"""Mistakes lint catches that only `build` used to: call arguments, lookup tokens, unknown layer types.

- a name in an `inputs:` mapping (or in `call:`) must be an argument of the layer's
  `call` (from the catalog, generated from Keras); with a mapping, every required
  one must be there; a did-you-mean when one is misspelt;
- `mask_token: null` is what StringLookup and IntegerLookup take by default;
- an unknown layer type near a Keras class gets a did-you-mean, and one far from
  every class the hint to name its plugin.

The `keras` test builds the same specs and checks Keras agrees with lint.
"""

from __future__ import annotations

import pytest

from graphspec.cli.lint import lint_file
from graphspec.spec import catalog

HEAD = """\
graphspec: 1
name: calls
inputs:
  q: {shape: [4, 8]}
  v: {shape: [6, 8]}
  h: {shape: [3]}
  ids: {shape: [5], dtype: string}
  num: {shape: [5], dtype: int64}
nodes:
"""

# (node, codes lint reports, a text its hint contains)
CASES = {
    "MultiHeadAttention by name": ("{type: MultiHeadAttention, num_heads: 2, key_dim: 4, inputs: {query: q, value: v}}",
                                   [], None),
    "MultiHeadAttention with key": ("{type: MultiHeadAttention, num_heads: 2, key_dim: 4, "
                                    "inputs: {query: q, value: v, key: v}}", [], None),
    "misspelt value": ("{type: MultiHeadAttention, num_heads: 2, key_dim: 4, inputs: {query: q, valu: v}}",
                       ["GS111"], "did you mean `value`?"),
    "value missing": ("{type: MultiHeadAttention, num_heads: 2, key_dim: 4, inputs: {query: q}}",
                      ["GS113"], "add `value: <node>`"),
    "LSTM sequences": ("{type: LSTM, units: 3, inputs: {sequences: q}}", [], None),
    "LSTM inputs": ("{type: LSTM, units: 3, inputs: {inputs: q}}", ["GS111"], "did you mean `sequences`?"),
    "LSTM initial state": ("{type: LSTM, units: 3, inputs: {sequences: q, initial_stat: [h, h]}}",
                           ["GS111"], "did you mean `initial_state`?"),
    "call: training": ("{type: Dense, units: 2, inputs: q, call: {training: false}}", [], None),
    "call: misspelt": ("{type: Dense, units: 2, inputs: q, call: {trainig: false}}", ["GS111"],
                       "did you mean `training`?"),
    "an op by name": ("{op: add, inputs: {x1: q, x2: q}}", [], None),
    "an op's unknown argument": ("{op: add, inputs: {x1: q, y: q}}", ["GS111"], "op add takes `x1`, `x2`"),
    "StringLookup mask_token null": ("{type: StringLookup, vocabulary: [a, b], mask_token: null, inputs: ids}", [],
                                     None),
    "StringLookup mask_token text": ("{type: StringLookup, vocabulary: [a, b], mask_token: '', inputs: ids}", [], None),
    "StringLookup mask_token number": ("{type: StringLookup, vocabulary: [a, b], mask_token: 0, inputs: ids}",
                                       ["GS112"], None),
    "IntegerLookup mask_token null": ("{type: IntegerLookup, vocabulary: [1, 2], mask_token: null, inputs: num}",
                                      [], None),
    "IntegerLookup mask_token text": ("{type: IntegerLookup, vocabulary: [1, 2], mask_token: a, inputs: num}",
                                      ["GS112"], None),
    "use_cudnn: auto": ("{type: LSTM, units: 3, use_cudnn: auto, inputs: q}", [], None),
    "a misspelt layer": ("{type: Desne, units: 2, inputs: h}", ["GS110"], "did you mean `Dense`?"),
    "a custom layer": ("{type: Sampling, inputs: h}", ["GS110"], "--plugin"),
    "a custom layer near a Keras one": ("{type: DownSampling3D, inputs: h}", ["GS110"], "--plugin"),
    "wrong case": ("{type: conv1d, filters: 2, kernel_size: 1, inputs: q}", ["GS110"], "did you mean `Conv1D`?"),
}


def _spec(node: str) -> str:
    return HEAD + f"  n: {node}\n"


@pytest.mark.parametrize("name", list(CASES))
def test_call_arguments_and_argument_values(name: str) -> None:
    node, codes, hint = CASES[name]
    report = lint_file("calls.yaml", text=_spec(node))
    errors = [d for d in report.diagnostics if d.is_error]
    assert [d.code for d in errors] == codes, [f"{d.code} {d.message}" for d in errors]
    if hint is not None:
        assert hint in (errors[0].hint or ""), errors[0].hint
    for d in errors:
        assert d.location.line == 10, d  # the node's line, at the name or value at fault


def test_every_layer_has_its_call_signature_in_the_catalog() -> None:
    for name, entry in catalog.LAYERS.items():
        assert isinstance(entry.get("call", {}).get("params"), dict), name
    assert catalog.LAYERS["MultiHeadAttention"]["call"]["params"]["value"] == {"required": True}


@pytest.mark.keras
def test_keras_agrees_with_lint_on_call_arguments() -> None:
    """What lint accepts builds; what it rejects for a call argument, Keras rejects too."""
    from graphspec import compiler
    from graphspec.errors import SpecError

    for name in ("MultiHeadAttention by name", "MultiHeadAttention with key", "LSTM sequences", "call: training",
                 "an op by name", "StringLookup mask_token null", "IntegerLookup mask_token null"):
        checked = compiler.check("calls.yaml", text=_spec(CASES[name][0]))
        assert checked.ok, name
        compiler.build(checked, compile=False)
    for name in ("misspelt value", "value missing", "LSTM inputs", "call: misspelt", "an op's unknown argument"):
        checked = compiler.check("calls.yaml", text=_spec(CASES[name][0]))
        assert not checked.ok, name
        checked.diagnostics = type(checked.diagnostics)()  # what building alone says of the same spec
        checked.graph = _graph_ignoring_lint(checked)
        with pytest.raises(SpecError) as exc:
            compiler.build(checked, compile=False)
        assert {d.code for d in exc.value.diagnostics} == {"GS301"}, name


def _graph_ignoring_lint(checked: object) -> object:
    """The graph of a spec whose only errors are the call-argument ones lint found."""
    from graphspec.analysis import graph as graph_mod
    from graphspec.spec import parse

    src = checked.source  # type: ignore[attr-defined]
    spec = parse.schema.Spec.model_validate(src.data)
    graph, diags = graph_mod.resolve(src, spec)
    assert graph is not None, list(diags)
    return graph


def test_a_repeated_layer_is_inferred_once_and_keys_tell_values_apart() -> None:
    """shapecheck memoises shapes.infer (a pure function) for stacks of identical layers."""
    from graphspec.analysis.shapecheck import _frozen

    assert len({_frozen(v) for v in (1, 1.0, True, "1", [1], {"a": 1})}) == 6
    assert _frozen({"units": 8, "activation": "relu"}) == _frozen({"activation": "relu", "units": 8})
    chain = "graphspec: 1\nname: c\ninputs: {x: [8]}\nnodes:\n" + "".join(
        f"  d{i}: {{type: Dense, units: {8 if i % 2 else 4}}}\n" for i in range(6))
    (model,) = lint_file("c.yaml", text=chain).models
    assert model.params == 3 * (8 * 4 + 4) + 3 * (4 * 8 + 8)  # 8 -> 4 and 4 -> 8, three times each
    assert model.output_shapes == {"d5": (8,)}

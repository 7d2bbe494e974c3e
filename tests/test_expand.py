"""Variables (`vars:`, `${...}`) and reusable blocks (`blocks:`, `block:` nodes)."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphspec import compiler
from graphspec.spec import expand
from graphspec.spec import expressions
from graphspec.spec import schema
from graphspec.spec import source
from graphspec.diagnostics import CODES

from .conftest import SPECS

HEAD = "graphspec: 1\nname: t\ninputs:\n  x: {shape: [16]}\n"

MLP = """
blocks:
  mlp:
    inputs: x
    params: {units: null, rate: 0.1}
    nodes:
      dense: {type: Dense, units: $units, activation: relu}
      drop: {type: Dropout, rate: "${rate}"}
"""


def check(*parts: str, head: str = HEAD, **kwargs: Any) -> Any:
    return compiler.check(text=head + "".join(textwrap.dedent(p) for p in parts), **kwargs)


def nodes(result: Any) -> dict[str, Any]:
    return result.source.data["nodes"]


def errors(result: Any) -> list[Any]:
    return result.diagnostics.errors


def only_error(result: Any, code: str) -> Any:
    errs = errors(result)
    assert [e.code for e in errs] == [code], [(e.code, e.message) for e in errs]
    return errs[0]


def line_of(result: Any, needle: str) -> int:
    for i, line in enumerate(result.source.text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


# -- variables ---------------------------------------------------------------------------


def test_variable_keeps_its_type() -> None:
    r = check("""
        vars: {width: 64, act: relu, shape: [8, 8], on: true}
        nodes:
          d: {type: Dense, units: "${width}", activation: $act, use_bias: $on}
          r: {type: Reshape, target_shape: $shape}
    """)
    assert r.ok, [d.message for d in r.diagnostics]
    d = nodes(r)["d"]
    assert d["units"] == 64 and type(d["units"]) is int
    assert d["activation"] == "relu" and d["use_bias"] is True
    assert nodes(r)["r"]["target_shape"] == [8, 8]
    assert "vars" not in r.source.data and "blocks" not in r.source.data


def test_interpolation_arithmetic_and_escapes() -> None:
    r = check("""
        vars: {width: 64, name: enc, double: "${width * 2}"}
        description: "a ${name}_${width} net costs $$5, half is ${width // 2}, ${width / 128} and $${x}"
        nodes:
          d: {type: Dense, units: "${(double + 2) * 3 - width % 7}"}
    """)
    assert r.ok, [d.message for d in r.diagnostics]
    assert r.source.data["description"] == "a enc_64 net costs $5, half is 32, 0.5 and ${x}"
    assert nodes(r)["d"]["units"] == (128 + 2) * 3 - 64 % 7


def test_variables_refer_to_variables_in_any_order() -> None:
    r = check("""
        vars: {a: "${b + 1}", b: "${c * 2}", c: 3}
        nodes:
          d: {type: Dense, units: $a}
    """)
    assert r.ok and nodes(r)["d"]["units"] == 7


def test_unknown_variable_did_you_mean() -> None:
    r = check("""
        vars: {width: 64}
        nodes:
          d: {type: Dense, units: "${widht}"}
    """)
    e = only_error(r, "GS120")
    assert "`widht`" in e.message and e.hint == "did you mean `width`?"
    assert e.location.line == line_of(r, "widht")


def test_unknown_variable_without_vars() -> None:
    e = only_error(check("nodes:\n  d: {type: Dense, units: $units}\n"), "GS120")
    assert "vars:" in (e.hint or "")


def test_variable_cycle() -> None:
    r = check("""
        vars: {a: "${b}", b: "${a + 1}"}
        nodes:
          d: {type: Dense, units: 3}
    """)
    e = only_error(r, "GS122")
    assert "a -> b -> a" in e.message


@pytest.mark.parametrize("expr", ["${width ** 2}", "${__import__('os').system('true')}", "${width(1)}",
                                  "${width / 0}", "${[1, 2]}", "${}", "${width +}", "${act * 2}",
                                  "${99999999 * 99999999}", "${" + "1+" * 200 + "1}", "x${shape}"])
def test_invalid_expressions(expr: str) -> None:
    r = check(f"""
        vars: {{width: 64, act: relu, shape: [1]}}
        nodes:
          d: {{type: Dense, units: 3, name: "{expr}"}}
    """)
    e = only_error(r, "GS121")
    assert e.location.line == line_of(r, "d: {type")


def test_interpolation_is_bounded() -> None:
    chain = "\n".join(f"  v{i}: \"${{v{i - 1}}}${{v{i - 1}}}\"" for i in range(1, 40))
    r = check(f"vars:\n  v0: xx\n{chain}\nnodes:\n  d: {{type: Dense, units: 3, name: $v39}}\n")
    assert [e.code for e in errors(r)] and all(e.code == "GS500" for e in errors(r))


def test_set_overrides_a_variable_before_expansion() -> None:
    body = """
        vars: {width: 64}
        nodes:
          d: {type: Dense, units: $width}
    """
    r = check(body, sets=["vars.width=128"])
    assert r.ok and nodes(r)["d"]["units"] == 128
    assert r.analysis.nodes["d"].outputs == ((128,),)
    bad = check(body, sets=["vars.width=-1"])
    e = only_error(bad, "GS112")
    assert e.location.line == line_of(bad, "units: $width")
    assert any("`$width` is -1" in n for n in e.notes)


def test_spec_without_vars_or_blocks_is_untouched() -> None:
    src = source.loads(HEAD + "nodes:\n  d: {type: Dense, units: 3}\n")
    out, diags = expand.expand(src)
    assert out is src and diags == []


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.integers(-50, 50).map(str),
                    lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "//", "%"]), inner).map(
                        lambda t: f"({t[0]} {t[1]} {t[2]})"), max_leaves=8))
def test_arithmetic_agrees_with_python(expr: str) -> None:
    try:
        want: Any = eval(expr, {"__builtins__": {}})  # noqa: S307 - integers and operators only
    except ZeroDivisionError:
        want = None
    if want is not None and abs(want) > expressions.MAX_NUMBER:
        return
    r = check(f"""
        vars: {{}}
        description: "v=${{{expr}}}"
        nodes:
          d: {{type: Dense, units: 3}}
    """)
    if want is None:
        assert only_error(r, "GS121")
    else:
        assert r.ok and r.source.data["description"] == f"v={want}"


# -- blocks ---------------------------------------------------------------------------------


def test_instance_names_and_chaining() -> None:
    r = check(MLP, """
        nodes:
          one: {block: mlp, units: 8}
          body: {block: mlp, repeat: 3, units: 32, first: {rate: 0.5}}
          head: {type: Dense, units: 10}
    """)
    assert r.ok, [d.message for d in r.diagnostics]
    n = nodes(r)
    assert list(n) == ["one_dense", "one", "body_1_dense", "body_1_drop", "body_2_dense", "body_2_drop",
                       "body_3_dense", "body", "head"]
    assert n["one_dense"]["inputs"] == "x"  # the spec's only input
    assert n["one"]["inputs"] == "one_dense"
    assert n["body_1_dense"]["inputs"] == "one"
    assert n["body_2_dense"]["inputs"] == "body_1_drop"
    assert n["body_3_dense"]["inputs"] == "body_2_drop"
    assert n["head"]["inputs"] == "body"  # the instance's output is named after it
    assert [n[k]["rate"] for k in ("one", "body_1_drop", "body_2_drop", "body")] == [0.1, 0.5, 0.1, 0.1]
    assert r.analysis.models["t"].output_shapes == {"head": (10,)}
    assert r.analysis.models["t"].params == (16 * 8 + 8) + (8 * 32 + 32) + 2 * (32 * 32 + 32) + (32 * 10 + 10)


def test_explicit_inputs_list_and_mapping() -> None:
    r = check("""
        blocks:
          res:
            inputs: [a, b]
            params: [units]
            nodes:
              proj: {type: Dense, units: $units, inputs: b}
              add: {type: Add, inputs: [a, proj]}
        nodes:
          d: {type: Dense, units: 4}
          r1: {block: res, inputs: [d, x], units: 4}
          r2: {block: res, inputs: {b: x, a: r1}, units: 4}
    """)
    assert r.ok, [d.message for d in r.diagnostics]
    n = nodes(r)
    assert n["r1_proj"]["inputs"] == "x" and n["r1"]["inputs"] == ["d", "r1_proj"]
    assert n["r2"]["inputs"] == ["r1", "r2_proj"]


def test_multi_output_block() -> None:
    r = check("""
        blocks:
          split:
            inputs: x
            outputs: [p, q]
            nodes:
              p: {type: Dense, units: 3}
              q: {type: Dense, units: 5, inputs: x}
        nodes:
          s: {block: split}
          c: {type: Concatenate, inputs: [s_p, s_q]}
    """)
    assert r.ok, [d.message for d in r.diagnostics]
    assert set(nodes(r)) == {"s_p", "s_q", "c"}
    assert r.analysis.nodes["c"].outputs == ((8,),)


def test_nested_blocks_and_defaults_from_params() -> None:
    r = check("""
        vars: {base: 4}
        blocks:
          unit:
            inputs: x
            params: {units: null, wide: "${units * base}"}
            nodes:
              a: {type: Dense, units: $wide}
              b: {type: Dense, units: $units}
          stage:
            inputs: x
            params: {units: null, n: 2}
            nodes:
              first: {block: unit, units: $units, wide: 1}
              rest: {block: unit, repeat: "${n - 1}", units: $units}
        nodes:
          s: {block: stage, units: 3, n: 3}
    """)
    assert r.ok, [d.message for d in r.diagnostics]
    n = nodes(r)
    assert list(n) == ["s_first_a", "s_first", "s_rest_1_a", "s_rest_1_b", "s_rest_2_a", "s"]
    assert n["s_first_a"]["units"] == 1 and n["s_rest_1_a"]["units"] == 12
    assert n["s_rest_1_a"]["inputs"] == "s_first" and n["s_rest_2_a"]["inputs"] == "s_rest_1_b"


def test_layer_type_as_a_parameter() -> None:
    """A parameter is substituted before the schema runs, so it may be a node's `type`: one block for
    stacks that differ only in the layer (what `graphspec import` writes for U-Net's two paths)."""
    head = "graphspec: 1\nname: t\ninputs:\n  x: {shape: [16, 3]}\n"
    blocks = """
        blocks:
          conv_bn:
            params: {conv: Conv1D, filters: 4}
            nodes:
              conv: {type: $conv, filters: $filters, kernel_size: 3, padding: same}
              bn: {type: BatchNormalization}
    """
    r = check(blocks, """
        nodes:
          down: {block: conv_bn, repeat: 2}
          up: {block: conv_bn, conv: SeparableConv1D, filters: 6}
    """, head=head)
    assert r.ok, [d.message for d in r.diagnostics]
    n = nodes(r)
    assert n["down_1_conv"]["type"] == n["down_2_conv"]["type"] == "Conv1D"
    assert n["up_conv"] == {"type": "SeparableConv1D", "filters": 6, "kernel_size": 3, "padding": "same",
                            "inputs": "down"}
    bad = check(blocks, """
        nodes:
          up: {block: conv_bn, conv: SeparableConv1d}
    """, head=head)
    e = only_error(bad, "GS110")  # an unknown type: located at `$conv`, with what it was
    assert e.location.line == line_of(bad, "type: $conv")
    assert any("`$conv` is \"SeparableConv1d\"" in note for note in e.notes)
    assert e.hint is not None and "SeparableConv1D" in e.hint


def test_share_inside_a_block() -> None:
    r = check("""
        blocks:
          twice:
            inputs: x
            nodes:
              d: {type: Dense, units: 16}
              again: {share: d}
              glob: {share: shared}
        nodes:
          shared: {type: Dense, units: 16}
          t: {block: twice, repeat: 2}
    """)
    assert r.ok, [d.message for d in r.diagnostics]
    n = nodes(r)
    assert n["t_1_again"]["share"] == "t_1_d" and n["t_2_again"]["share"] == "t_2_d"
    assert n["t"]["share"] == "shared"
    assert r.analysis.models["t"].params == 16 * 16 + 16 + 2 * (16 * 16 + 16)


def test_blocks_validate_against_the_schema() -> None:
    data = {"graphspec": 1, "name": "t", "vars": {"w": 3},
            "blocks": {"b": {"inputs": "x", "params": {"u": None}, "nodes": {"d": {"type": "Dense", "units": 3}}}},
            "inputs": {"x": [3]}, "nodes": {"d": {"type": "Dense", "units": 3}}}
    spec = schema.Spec.model_validate(data)
    assert spec.blocks is not None and spec.blocks["b"].inputs == "x" and spec.vars == {"w": 3}
    js = schema.json_schema()
    assert "BlockSpec" in js["$defs"] and {"vars", "blocks"} <= set(js["properties"])


# -- block errors ------------------------------------------------------------------------------


def test_error_inside_a_block_points_into_it_and_names_the_instance() -> None:
    r = check(MLP.replace("activation: relu", "activation: rellu"), """
        nodes:
          body: {block: mlp, repeat: 2, units: 8}
    """)
    e = only_error(r, "GS114")  # reported once, for the first instance that fails
    assert e.location.line == line_of(r, "rellu")
    assert any("`body`" in n and "repetition 1 of 2" in n and "block `mlp`" in n
               and f"line {line_of(r, 'body:')}" in n for n in e.notes)


def test_shape_error_in_a_later_repetition_names_it() -> None:
    r = check("""
        blocks:
          b:
            inputs: x
            nodes:
              c: {type: Conv1D, filters: 2, kernel_size: 3}
        nodes:
          s: {block: b, repeat: 3}
    """, head="graphspec: 1\nname: t\ninputs:\n  x: {shape: [5, 1]}\n")
    e = only_error(r, "GS300")
    assert e.location.line == line_of(r, "Conv1D")
    assert any("`s`, repetition 3 of 3" in n for n in e.notes)


def test_nested_error_names_every_instance() -> None:
    r = check("""
        blocks:
          inner:
            inputs: x
            nodes:
              d: {type: Dense, units: 0}
          outer:
            inputs: x
            nodes:
              i: {block: inner}
        nodes:
          o: {block: outer}
    """)
    e = errors(r)[0]
    assert e.location.line == line_of(r, "units: 0")
    assert any("`o_i`" in n and "block `inner`" in n for n in e.notes)
    assert any("`o`" in n and "block `outer`" in n for n in e.notes)


@pytest.mark.parametrize(("body", "code", "needle", "hint"), [
    ("nodes:\n  a: {block: mpl, units: 3}\n", "GS123", "mpl", "mlp"),
    ("nodes:\n  a: {block: mlp}\n", "GS124", "a: {block", "units"),
    ("nodes:\n  a: {block: mlp, units: 3, unit: 4}\n", "GS125", "unit: 4", "did you mean `units`?"),
    ("nodes:\n  a: {block: mlp, units: 3, first: {rat: 1}}\n", "GS125", "a: {block", "did you mean `rate`?"),
    ("nodes:\n  a: {block: mlp, units: 3, repeat: 0}\n", "GS128", "a: {block", None),
    ("nodes:\n  a: {block: mlp, units: 3, repeat: two}\n", "GS128", "a: {block", None),
    ("nodes:\n  a: {block: mlp, units: 3, first: 2}\n", "GS128", "a: {block", None),
    ("nodes:\n  a: {block: mlp, units: 3, repeat: 5000}\n", "GS500", "a: {block", None),
    ("nodes:\n  a: {block: mlp, units: 3, inputs: [x, x]}\n", "GS126", "a: {block", None),
    ("nodes:\n  a: {block: mlp, units: 3, inputs: {y: x}}\n", "GS126", "a: {block", None),
    ("nodes:\n  a_dense: {type: Dense, units: 3}\n  a: {block: mlp, units: 3}\n", "GS129", "dense:", None),
])
def test_instance_errors(body: str, code: str, needle: str, hint: str | None) -> None:
    r = check(MLP, body)
    errs = [e for e in errors(r) if e.code == code]
    assert errs, [(e.code, e.message) for e in errors(r)]
    e = errs[0]
    assert e.location.line == line_of(r, needle)
    if hint:
        assert hint in (e.hint or "")


@pytest.mark.parametrize(("blocks", "code", "needle"), [
    ("  b: {inputs: x, nodes: {d: {type: Dense, units: 3, inputs: y}}}\n", "GS126", "inputs: y"),
    ("  b: {inputs: x, outputs: dd, nodes: {d: {type: Dense, units: 3}}}\n", "GS126", "outputs: dd"),
    ("  b: {inputs: x, outputs: x, nodes: {d: {type: Dense, units: 3}}}\n", "GS126", "outputs: x"),
    ("  b: {inputs: x, nodes: {x: {type: Dense, units: 3}}}\n", "GS126", "nodes: {x"),
    ("  b: {inputs: x, params: [repeat], nodes: {d: {type: Dense, units: 3}}}\n", "GS126", "params"),
    ("  b: {inputs: x, nodes: {}}\n", "GS126", "nodes"),
    ("  b: {input: x, nodes: {d: {type: Dense, units: 3}}}\n", "GS101", "input: x"),
    ("  b: {inputs: x, nodes: {d: {type: Dense, units: \"${u}\"}}}\n", "GS120", "${u}"),
    ("  b: {inputs: x, nodes: {d: {block: b}}}\n", "GS127", "block: b}"),
    ("  b: {inputs: x, nodes: {d: {block: c}}}\n  c: {inputs: x, nodes: {d: {block: b}}}\n", "GS127", "block: b}"),
    ("  b: {inputs: [x, y], nodes: {d: {type: Dense, units: 3}}}\n", "GS205", "nodes: {d"),
])
def test_block_definition_errors(blocks: str, code: str, needle: str) -> None:
    r = check("blocks:\n" + blocks + "nodes:\n  s: {block: b, inputs: " +
              ("{x: x, y: x}" if "[x, y]" in blocks else "x") + "}\n")
    errs = [e for e in errors(r) if e.code == code]
    assert errs, [(e.code, e.message) for e in errors(r)]
    assert errs[0].location.line == line_of(r, needle)


def test_implicit_input_after_multi_output_instance() -> None:
    r = check("""
        blocks:
          split: {inputs: x, outputs: [p, q], nodes: {p: {type: Dense, units: 3}, q: {type: Dense, units: 5, inputs: x}}}
        nodes:
          s: {block: split}
          c: {type: Dense, units: 3}
    """)
    e = only_error(r, "GS205")
    assert "several outputs" in e.message


def test_repeat_needs_as_many_outputs_as_inputs() -> None:
    r = check("""
        blocks:
          split: {inputs: x, outputs: [p, q], nodes: {p: {type: Dense, units: 3}, q: {type: Dense, units: 5, inputs: x}}}
        nodes:
          s: {block: split, repeat: 2}
    """)
    only_error(r, "GS126")


def test_node_name_read_as_a_number_next_to_an_instance() -> None:
    # Regression: expansion built a node name from the key 1 and crashed with a TypeError.
    r = check(MLP, """
        nodes:
          1: {block: mlp, params: {units: 4}}
          2.5: {type: Dense, units: 3}
    """)
    errs = errors(r)
    assert [e.code for e in errs] == ["GS102", "GS102"], [(e.code, e.message) for e in errs]
    assert "must be strings; got 1" in errs[0].message
    assert errs[0].hint == 'quote it: `"1"`'
    assert [e.location.line for e in errs] == [line_of(r, "1: {block"), line_of(r, "2.5: {type")]


def test_expansion_budget() -> None:
    r = check("""
        blocks:
          ten:
            inputs: x
            nodes: {a: {type: Dense, units: 1}, b: {type: Dense, units: 1}, c: {type: Dense, units: 1},
                    d: {type: Dense, units: 1}, e: {type: Dense, units: 1}, f: {type: Dense, units: 1},
                    g: {type: Dense, units: 1}, h: {type: Dense, units: 1}, i: {type: Dense, units: 1},
                    j: {type: Dense, units: 1}}
          many:
            inputs: x
            nodes:
              t: {block: ten, repeat: 1000}
        nodes:
          m: {block: many, repeat: 1000}
    """)
    e = only_error(r, "GS500")
    assert f"{expand.MAX_NODES:,} nodes" in e.message


def test_blocks_error_codes_are_documented() -> None:
    for code in [f"GS12{i}" for i in range(10)]:
        title, example = CODES[code]
        assert title and example


# -- ResNet-50 ---------------------------------------------------------------------------------

RESNET50_PARAMS = 25_636_712


def test_resnet50_spec_checks_statically() -> None:
    text = (SPECS / "resnet50.yaml").read_text()
    assert len(text.splitlines()) < 100
    r = compiler.check(SPECS / "resnet50.yaml")
    assert r.ok, [(d.code, d.message) for d in r.diagnostics]
    assert not r.diagnostics  # no warnings either
    info = r.analysis.models["resnet50"]
    assert info.params == RESNET50_PARAMS
    assert info.trainable == 25_583_592
    assert info.output_shapes == {"predictions": (1000,)}
    assert len(r.graph.nodes) == 177
    assert r.analysis.nodes["conv5"].outputs == ((7, 7, 2048),)
    assert r.analysis.nodes["conv2_first_conv_0"].outputs == ((56, 56, 256),)


def test_resnet50_classes_variable() -> None:
    r = compiler.check(SPECS / "resnet50.yaml", sets=["vars.classes=10"])
    assert r.ok, [(d.code, d.message) for d in r.diagnostics]
    assert r.analysis.models["resnet50"].params == RESNET50_PARAMS - 990 * 2049


@pytest.mark.keras
@pytest.mark.slow
def test_resnet50_matches_keras_applications(keras_clean: Any) -> None:
    keras = keras_clean
    built = compiler.load(SPECS / "resnet50.yaml")["resnet50"]
    reference = keras.applications.ResNet50(weights=None)
    assert built.count_params() == reference.count_params() == RESNET50_PARAMS
    assert [type(layer).__name__ for layer in built.layers] == [type(layer).__name__ for layer in reference.layers]
    assert [w.shape for w in built.weights] == [w.shape for w in reference.weights]
    for ours, theirs in zip(built.layers, reference.layers):
        if type(ours).__name__ == "BatchNormalization":
            assert ours.epsilon == theirs.epsilon
        if type(ours).__name__ == "Conv2D":
            assert (ours.strides, ours.padding) == (theirs.strides, theirs.padding.lower())

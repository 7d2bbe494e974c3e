"""Pure stages (no TensorFlow): source positions, overrides, graph resolution, checks."""

from __future__ import annotations

import textwrap

import pytest

from graphspec import compiler
from graphspec.spec import overrides
from graphspec.spec import source
from graphspec.spec.source import SourceError


def check(text: str, **kwargs):  # type: ignore[no-untyped-def]
    return compiler.check(text=textwrap.dedent(text), **kwargs)


def codes(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.code for d in result.diagnostics.sorted()]


def test_positions_of_values_and_keys() -> None:
    src = source.loads("a: 1\nb:\n  c: [1, 2]\n")
    assert (src.values[("b", "c", 1)].line, src.values[("b", "c", 1)].col) == (3, 10)
    assert (src.keys[("b", "c")].line, src.keys[("b", "c")].col) == (3, 3)
    assert src.location(("b", "c", 7)).line == 3  # falls back to the nearest parent


def test_merge_keys_and_aliases_are_data() -> None:
    src = source.loads("base: &b {units: 4, activation: relu}\nd: {<<: *b, units: 8}\n")
    assert src.data["d"] == {"units": 8, "activation": "relu"}


@pytest.mark.parametrize("text, code", [
    ("a: 1\na: 2\n", "GS004"),
    ("a: !!python/name:os.system\n", "GS005"),
    ("a: " + "[" * 200 + "]" * 200 + "\n", "GS003"),
    ("a: 1" + "0" * 50 + "\n", "GS500"),
])
def test_source_rejects(text: str, code: str) -> None:
    with pytest.raises(SourceError) as exc:
        source.loads(text)
    assert exc.value.diagnostic.code == code


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    with pytest.raises(SourceError) as exc:
        source.loads("\n".join(lines))
    assert exc.value.diagnostic.code == "GS003"


@pytest.mark.parametrize("text, value", [("1e-4", 1e-4), ("-2E3", -2000.0), ("'1e-4'", "1e-4"), (".5e3", 500.0)])
def test_exponent_floats_are_numbers(text: str, value: object) -> None:
    """YAML 1.1 reads `1e-4` as a string; a learning rate written so must be a number (as in YAML 1.2).

    (`1_000`, a number in YAML 1.1 and text in YAML 1.2, is refused: tests/test_untrusted_spec.py.)
    """
    assert source.loads(f"lr: {text}\n").data == {"lr": value}


def test_yes_as_a_key_is_a_name() -> None:
    assert source.loads("yes: 1\n").data == {"yes": 1}


def test_override_sets_nested_values_and_keeps_positions() -> None:
    src = source.loads("compile:\n  optimizer: adam\nnodes: {}\n")
    new = overrides.apply(src, ["compile.optimizer.learning_rate=1e-4", "data.batch_size=128"])
    assert new.data["compile"]["optimizer"] == {"type": "adam", "learning_rate": 1e-4}
    assert new.data["data"] == {"batch_size": 128}
    at = new.location(("data", "batch_size"))
    assert str(at) == "--set #2" and at.notes == ("--set #2 is `data.batch_size=128`",)  # type: ignore[attr-defined]
    assert src.data["compile"]["optimizer"] == "adam"  # the original is untouched


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1", "x=[1,"])
def test_bad_overrides(bad: str) -> None:
    with pytest.raises(SourceError) as exc:
        overrides.apply(source.loads("a: 1\n"), [bad])
    assert exc.value.diagnostic.code == "GS600"


SPEC = textwrap.dedent("""\
    graphspec: 1
    name: t
    inputs:
      x: [8]
    nodes:
      a: {type: Dense, units: 4}
      b: {type: Dense, units: 2}
    """)


def test_chain_edges_and_default_model() -> None:
    result = check(SPEC)
    assert result.ok, codes(result)
    g = result.graph
    assert [str(r) for r in g.nodes["a"].inputs] == ["x"]
    assert [str(r) for r in g.nodes["b"].inputs] == ["a"]
    (model,) = g.models.values()
    assert model.name == "t" and [str(r) for r in model.outputs] == ["b"]
    assert result.analysis.models["t"].params == 8 * 4 + 4 + 4 * 2 + 2


def test_cycle_is_named() -> None:
    result = check(SPEC.replace("{type: Dense, units: 4}", "{type: Dense, units: 4, inputs: b}"))
    (diag,) = result.diagnostics.errors
    assert diag.code == "GS202"
    assert "a -> b -> a" in diag.message or "b -> a -> b" in diag.message


def test_unused_node_is_a_warning() -> None:
    result = check(SPEC + "  c: {type: Dense, units: 3, inputs: x}\nmodels:\n  m: {outputs: b}\n")
    assert result.ok
    assert [(d.code, d.severity.value) for d in result.diagnostics] == [("GS204", "warning")]


def test_model_calling_itself_is_a_cycle() -> None:
    text = SPEC + "  c: {model: m, inputs: b}\nmodels:\n  m: {outputs: c}\n"
    assert "GS202" in codes(check(text))


def test_undefined_reference_suggests_a_name() -> None:
    result = check(SPEC.replace("a:", "dense_a:").replace("units: 2}", "units: 2, inputs: dense_aa}"))
    (diag,) = result.diagnostics.errors
    assert diag.code == "GS200" and diag.hint == "did you mean `dense_a`?"


def test_loss_for_missing_output_and_missing_loss() -> None:
    text = SPEC + "  c: {type: Dense, units: 3, inputs: a}\ncompile:\n  loss: {b: mse}\n"
    result = check(text)
    assert result.ok
    assert [d.code for d in result.diagnostics] == ["GS401"]
    result = check(text.replace("{b: mse}", "{b: mse, cc: mae}"))
    assert "GS400" in codes(result)


def test_static_shapes_catch_what_keras_would() -> None:
    text = SPEC.replace("b: {type: Dense, units: 2}", "b: {type: Add, inputs: [a, x]}")
    result = check(text)
    (diag,) = result.diagnostics.errors
    assert diag.code == "GS300" and "(4,)" in " ".join(diag.notes) + diag.message


def test_check_never_imports_tensorflow() -> None:
    import subprocess
    import sys

    code = ("import sys; from graphspec import compiler; import glob\n"
            "for p in glob.glob('specs/*.yaml'): compiler.check(p)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
            "assert not bad, bad[:3]\n")
    from .conftest import ROOT

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_schema_errors_do_not_hide_graph_errors() -> None:
    """A misspelt field, a cycle and a bad argument: all three in one run."""
    text = textwrap.dedent("""\
        graphspec: 1
        name: multi
        inputs:
          x: {shape: [8], dtyp: float32}
        nodes:
          a: {type: Dense, units: 4, inputs: b}
          b: {type: Dense, units: 2, inputs: a}
          c: {type: Dense, units: "2", inputs: x}
          d: {type: Dense, units: 2, inputs: c, call: {training: [1]}}
          e: {type: Add, inputs: [d, zz]}
        models:
          m: {outputs: e}
        """)
    result = check(text)
    assert [(d.code, d.location.line) for d in result.diagnostics.sorted()] == [
        ("GS101", 4), ("GS202", 6), ("GS112", 8), ("GS102", 9), ("GS200", 10)]


def test_invalid_node_is_a_placeholder_not_an_undefined_name() -> None:
    """References to a node with schema errors are not reported again as undefined."""
    text = SPEC.replace("a: {type: Dense, units: 4}", "a: {type: Dense, units: 4, call: 7}")
    result = check(text)
    assert [d.code for d in result.diagnostics.sorted()] == ["GS102"]


def test_masks_passed_by_name_are_not_shape_operands() -> None:
    text = textwrap.dedent("""\
        graphspec: 1
        name: masked
        inputs:
          tokens: {shape: [null], dtype: int32}
        nodes:
          emb: {type: Embedding, input_dim: 50, output_dim: 8, mask_zero: true}
          keep: {op: not_equal, x2: 0, inputs: tokens}
          lstm: {type: LSTM, units: 4, inputs: {sequences: emb, mask: keep}}
        """)
    result = check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.analysis.nodes["lstm"].outputs == ((4,),)


SEQ2SEQ = textwrap.dedent("""\
    graphspec: 1
    name: seq2seq
    inputs:
      enc_in: {shape: [null, 16]}
      dec_in: {shape: [null, 16]}
    nodes:
      encoder: {type: LSTM, units: 32, return_state: true, inputs: enc_in}
      decoder: {type: LSTM, units: 32, return_sequences: true,
                inputs: {sequences: dec_in, initial_state: [encoder.1, encoder.2]}}
      out: {type: Dense, units: 16}
    models:
      seq2seq: {inputs: [enc_in, dec_in], outputs: [out, encoder.1]}
    """)


def test_numbered_outputs_of_a_layer() -> None:
    result = check(SEQ2SEQ)
    assert result.ok, [d.message for d in result.diagnostics]
    info = result.analysis.models["seq2seq"]
    assert info.params == 2 * 4 * (16 * 32 + 32 * 32 + 32) + 32 * 16 + 16
    assert info.output_shapes == {"out": (None, 16), "encoder.1": (32,)}
    bad = check(SEQ2SEQ.replace("encoder.2]", "encoder.3]"))
    (diag,) = bad.diagnostics.errors
    assert diag.code == "GS207" and "has 3 outputs" in diag.message


@pytest.mark.keras
def test_numbered_outputs_build_like_keras(keras_clean) -> None:  # type: ignore[no-untyped-def]
    keras = keras_clean
    models = compiler.build(check(SEQ2SEQ))
    ours = models["seq2seq"]
    enc_in, dec_in = keras.Input((None, 16)), keras.Input((None, 16))
    _, h, c = keras.layers.LSTM(32, return_state=True)(enc_in)
    seq = keras.layers.LSTM(32, return_sequences=True)(dec_in, initial_state=[h, c])
    theirs = keras.Model([enc_in, dec_in], [keras.layers.Dense(16)(seq), h])
    assert ours.count_params() == theirs.count_params()
    assert sorted(type(x).__name__ for x in ours.layers) == sorted(type(x).__name__ for x in theirs.layers)
    assert [tuple(t.shape) for t in ours.outputs] == [tuple(t.shape) for t in theirs.outputs]

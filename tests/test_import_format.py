"""Format features for imported models (issue 12): indexing keys, ops with no tensor input,
`keras.ops.image`, models that take or return dicts, and `each:` in blocks.

The checks run without Keras (lint); the static rules are compared with Keras where it is at hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graphspec import compiler
from graphspec.analysis import shapes
from graphspec.spec.indexing import parse_key, key_text


def lint(text: str, tmp_path: Path) -> Any:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return compiler.check(path)


def codes(checked: Any) -> list[tuple[str, int | None]]:
    return [(d.code, d.location.line) for d in checked.diagnostics]


# -- index keys ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "key"), [
    ("[:, 0]", (slice(None), 0)),
    ("[..., 1:]", (Ellipsis, slice(1, None))),
    ("[0]", 0),
    ("[0,]", (0,)),
    ("[:, None]", (slice(None), None)),
    ("[::2, -1]", (slice(None, None, 2), -1)),
    ("[1:3:-1]", slice(1, 3, -1)),
])
def test_index_keys_read_and_write_back(text: str, key: Any) -> None:
    assert parse_key(text) == key
    assert key_text(key) == text


@pytest.mark.parametrize(("text", "words"), [
    ("[]", "is empty"), ("[a]", "is not an integer"), ("[1:2:3:4]", "more than two"),
    ("[..., ...]", "more than one `...`"), ("[::0]", "step cannot be zero"), (":, 0", "in brackets"),
    ("[__import__('os')]", "is not an integer"),
])
def test_bad_index_keys_are_located_errors(tmp_path: Path, text: str, words: str) -> None:
    checked = lint(f"""graphspec: 1
name: s
inputs: {{x: [4, 3]}}
nodes:
  first: {{op: get_item, key: "{text}"}}
""", tmp_path)
    (d,) = checked.diagnostics
    assert (d.code, d.location.line, d.location.col) == ("GS112", 5, 30) and words in d.message
    assert "as in Python" in (d.hint or "")


# -- static rules ------------------------------------------------------------------------------------
RULES: list[tuple[str, dict[str, Any], list[tuple[int | None, ...]], Any]] = [
    ("get_item", {"key": "[:, 0]"}, [(8, 3)], (3,)),
    ("get_item", {"key": "[..., 1:]"}, [(8, 3)], (8, 2)),
    ("get_item", {"key": "[:, ::3, None]"}, [(8, 3)], (3, 1, 3)),
    ("get_item", {"key": "[:, -9]"}, [(8, 3)], "error"),
    ("get_item", {"key": "[:, 0, 0, 0]"}, [(8, 3)], "error"),
    ("get_item", {"key": "[:, None]"}, [()], (1,)),
    ("image.resize", {"size": [16, 12]}, [(32, 32, 3)], (16, 12, 3)),
    ("image.crop_images", {"top_cropping": 2, "left_cropping": 4, "target_height": 12, "target_width": 10},
     [(32, 32, 3)], (12, 10, 3)),
    ("image.crop_images", {"top_cropping": 2, "bottom_cropping": 3, "left_cropping": 1, "right_cropping": 1},
     [(32, 30, 3)], (27, 28, 3)),
    ("image.extract_patches", {"size": 4}, [(12, 12, 3)], (3, 3, 48)),
    ("image.extract_patches", {"size": [3, 3], "strides": 2, "padding": "same"}, [(9, 9, 2)], (5, 5, 18)),
]


def _static(op: str, args: dict[str, Any], ins: list[tuple[int | None, ...]]) -> Any:
    try:
        return shapes.infer(f"ops.{op}", args, ins).outputs[0]
    except shapes.ShapeError:
        return "error"


@pytest.mark.parametrize("case", RULES, ids=[f"{c[0]}-{i}" for i, c in enumerate(RULES)])
def test_static_rules(case: tuple[str, dict[str, Any], list[tuple[int | None, ...]], Any]) -> None:
    op, args, ins, want = case
    assert _static(op, args, ins) == want


@pytest.mark.keras
@pytest.mark.parametrize("case", RULES, ids=[f"{c[0]}-{i}" for i, c in enumerate(RULES)])
def test_static_rules_match_keras(case: tuple[str, dict[str, Any], list[tuple[int | None, ...]], Any]) -> None:
    from graphspec.build.backend import keras

    op, args, ins, _ = case
    fn: Any = keras.ops
    for part in op.split("."):
        fn = getattr(fn, part)
    kw = dict(args)
    if op == "get_item":
        kw["key"] = parse_key(kw["key"])
    try:
        out = fn(*[keras.Input(s) for s in ins], **kw)
        want: Any = tuple(out.shape[1:])
    except (ValueError, IndexError):
        want = "error"
    assert _static(op, args, ins) == want


def test_constants_have_no_batch_axis() -> None:
    got = shapes.infer("ops.arange", {"start": 0, "stop": 16, "step": 3}, [], batched=[])
    assert got.outputs == ((6,),)
    assert shapes.infer("ops.get_item", {"key": "[:, None]"}, [(6,)], batched=[False]).outputs == ((6, 1),)
    both = shapes.infer("ops.add", {}, [(16, 8), (16, 1)], batched=[True, False])
    assert both.outputs == ((16, 8),)


# -- ops with no tensor input --------------------------------------------------------------------------
def test_op_with_all_its_arguments_takes_no_implicit_input(tmp_path: Path) -> None:
    checked = lint("""graphspec: 1
name: s
inputs: {x: [16, 8]}
nodes:
  h: {type: Dense, units: 8}
  positions: {op: arange, start: 16}
  column: {op: get_item, key: "[:, None]"}
  added: {op: add, inputs: [h, column]}
""", tmp_path)
    assert codes(checked) == []
    assert checked.graph is not None and checked.graph.nodes["positions"].inputs == []
    assert checked.analysis is not None and checked.analysis.models["s"].output_shapes == {"added": (16, 8)}


def test_op_missing_its_inputs_says_which(tmp_path: Path) -> None:
    checked = lint("""graphspec: 1
name: s
inputs: {x: [4]}
nodes:
  h: {type: Dense, units: 4}
  nothing: {op: add, x2: 1.0, inputs: []}
""", tmp_path)
    (d,) = checked.diagnostics
    assert (d.code, d.location.line) == ("GS206", 6) and "`x1`" in (d.hint or "")


def test_no_input_op_inside_a_block(tmp_path: Path) -> None:
    checked = lint("""graphspec: 1
name: s
inputs: {x: [16, 8]}
blocks:
  with_positions:
    nodes:
      positions: {op: arange, start: 16, dtype: float32}
      column: {op: get_item, key: "[:, None]"}
      added: {op: add, inputs: [x, column]}
nodes:
  b: {block: with_positions, repeat: 2}
""", tmp_path)
    assert codes(checked) == []
    assert checked.graph is not None and checked.graph.nodes["b_1_positions"].inputs == []


# -- models that take or return dicts -------------------------------------------------------------------
def test_dict_models_order_their_inputs_and_outputs_by_name(tmp_path: Path) -> None:
    checked = lint("""graphspec: 1
name: s
inputs:
  rooms: [1]
  area: [1]
nodes:
  both: {type: Concatenate, inputs: [rooms, area]}
  zeta: {type: Dense, units: 2}
  alpha: {type: Dense, units: 1, inputs: both}
models:
  s: {inputs: [rooms, area], outputs: [zeta, alpha], inputs_as: dict, outputs_as: dict}
""", tmp_path)
    assert codes(checked) == []
    assert checked.graph is not None
    m = checked.graph.models["s"]
    assert [r.node for r in m.inputs] == ["area", "rooms"] and [r.node for r in m.outputs] == ["alpha", "zeta"]


def test_dict_inputs_must_be_spec_inputs(tmp_path: Path) -> None:
    checked = lint("""graphspec: 1
name: s
inputs: {x: [4]}
nodes:
  out: {type: Dense, units: 2}
models:
  s: {inputs: x, outputs: [out, out], outputs_as: dict}
""", tmp_path)
    (d,) = checked.diagnostics
    assert (d.code, d.location.line) == ("GS208", 7) and "listed once" in d.message


@pytest.mark.keras
def test_dict_models_build_with_dicts(keras_clean: Any, tmp_path: Path) -> None:
    import numpy as np

    checked = lint("""graphspec: 1
name: s
inputs:
  rooms: [1]
  area: [1]
nodes:
  both: {type: Concatenate, inputs: [rooms, area]}
  zeta: {type: Dense, units: 2}
  alpha: {type: Dense, units: 1, inputs: both}
models:
  s: {inputs: [rooms, area], outputs: [zeta, alpha], inputs_as: dict, outputs_as: dict}
""", tmp_path)
    model = compiler.build(checked, compile=False)["s"]
    assert list(model.input) == ["rooms", "area"] and list(model.output) == ["zeta", "alpha"]  # as written
    out = model({"area": np.ones((3, 1), "float32"), "rooms": np.zeros((3, 1), "float32")})
    assert sorted(out) == ["alpha", "zeta"] and tuple(out["zeta"].shape) == (3, 2)


# -- each: per-repetition parameters --------------------------------------------------------------------
EACH = """graphspec: 1
name: s
inputs: {image: [32, 32, 3]}
blocks:
  stage:
    params: [filters]
    nodes:
      conv: {type: Conv2D, filters: $filters, kernel_size: 3, padding: same}
      pool: {type: MaxPooling2D}
nodes:
  stages: {block: stage, repeat: 3, each: {filters: [8, 16, 32]}}
"""


def test_each_gives_every_repetition_its_value(tmp_path: Path) -> None:
    checked = lint(EACH, tmp_path)
    assert codes(checked) == []
    assert checked.spec is not None
    assert [checked.spec.nodes[f"stages_{i}_conv"].args["filters"] for i in (1, 2, 3)] == [8, 16, 32]
    assert checked.analysis is not None
    assert checked.analysis.models["s"].params == (3 * 9 * 8 + 8) + (8 * 9 * 16 + 16) + (16 * 9 * 32 + 32)


def test_each_needs_one_value_per_repetition(tmp_path: Path) -> None:
    checked = lint(EACH.replace("[8, 16, 32]", "[8, 16]"), tmp_path)
    (d,) = checked.diagnostics
    assert (d.code, d.location.line) == ("GS128", 11) and "one value per repetition (3); got 2 values" in d.message
    assert d.hint == "give `repeat: 2`"


def test_block_input_defaults_to_x_and_node_names_may_start_with_a_digit(tmp_path: Path) -> None:
    checked = lint("""graphspec: 1
name: s
inputs: {v: [4]}
blocks:
  residual:
    nodes:
      1_dense: {type: Dense, units: 4}
      add: {type: Add, inputs: [x, 1_dense]}
nodes:
  r1: {block: residual}
""", tmp_path)
    assert codes(checked) == []
    assert checked.spec is not None and list(checked.spec.nodes) == ["r1_1_dense", "r1"]

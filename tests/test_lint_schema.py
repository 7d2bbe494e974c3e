"""The committed JSON Schema accepts every spec lint accepts, and still rejects what lint rejects.

Editors (the YAML language server) and `check-jsonschema` read graphspec.schema.json;
a shipped example marked invalid there is a bug. Variables may stand for any value
outside `vars` and `blocks` (docs/blocks.md), so the schema accepts one wherever
it expects something else. Specs are read with graphspec's own loader (the data
lint sees), and validated with the `jsonschema` package.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from graphspec.cli.lint import lint_file
from graphspec.spec import source

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "graphspec.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
# The fields a spec needs (unless it `extends` a base that gives them).
REQUIRED = set(SCHEMA["then"]["required"])
# A documentation example of part of a spec validates against the schema without its
# required top-level fields.
FRAGMENT = jsonschema.Draft202012Validator({k: v for k, v in SCHEMA.items() if k not in {"if", "then"}})
NODE = jsonschema.Draft202012Validator({"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"],
                                        "$ref": "#/$defs/NodeSpec"})
NODE_KINDS = {"type", "share", "model", "application", "op", "block"}
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def _errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(data)]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").rglob("*.y*ml")), ids=lambda p: p.name)
def test_every_example_spec_validates(spec: Path) -> None:
    assert _errors(VALIDATOR, source.load(spec).data) == []


def _doc_examples() -> list[Any]:
    out = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(r"```ya?ml\n(.*?)```", text, re.S):
            line = text[:m.start()].count("\n") + 2
            out.append(pytest.param(m.group(1), id=f"{doc.name}:{line}"))
    return out


# Plugin layers the docs' examples name, given with --plugin there: the schema knows a plugin's layer types only
# when the config lists it (pyproject.toml [tool.graphspec]), so they stand in for the config's CustomDense.
DOC_PLUGIN_TYPES = {"Sampling"}


def _as_config_plugin(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "CustomDense" if k == "type" and v in DOC_PLUGIN_TYPES else _as_config_plugin(v)
                for k, v in value.items()}
    return [_as_config_plugin(v) for v in value] if isinstance(value, list) else value


def _is_node(value: Any) -> bool:
    return isinstance(value, dict) and bool(NODE_KINDS & set(value))


@pytest.mark.parametrize("block", _doc_examples())
def test_every_yaml_example_in_the_docs_validates(block: str) -> None:
    """Whole specs against the schema; parts of specs against the part of the schema they are."""
    try:
        data = source.loads(block).data
    except source.SourceError:
        assert re.search(r"(?m)^\s*\.\.\.\s*$", block), "a YAML example that does not parse and is not elided (...)"
        return
    data = _as_config_plugin(data)
    if isinstance(data, dict) and (REQUIRED <= set(data) or "extends" in data):
        assert _errors(VALIDATOR, data) == []
    elif isinstance(data, dict) and set(data) <= set(SCHEMA["properties"]):
        assert _errors(FRAGMENT, data) == []
    elif isinstance(data, dict) and all(_is_node(v) for v in data.values()):  # a part of `nodes:`
        for value in data.values():
            assert _errors(NODE, value) == []
    else:  # not graphspec's: a CI workflow, a pre-commit configuration, a Kubernetes job
        foreign = {"jobs", "repos", "apiVersion"}  # GitHub Actions, pre-commit, Kubernetes
        assert isinstance(data, list) or set(data) & foreign or not set(data) & set(SCHEMA["properties"]), block


BASE = """\
graphspec: 1
name: v
vars: {{n: 8, s: [8], dt: float32, bits: 32, bs: 32, k: 9, u: 4, act: relu, out: d, src: synthetic, yes_: true}}
inputs:
  x: {x}
nodes:
  d: {d}
{extra}"""
X, D = "{shape: [8]}", "{type: Dense, units: 8}"
COMPILE = "compile: {optimizer: adam, loss: mse}\n"

# Each: lint finds nothing wrong, and the schema accepts it (the cases first).
ACCEPTED = {
    "shape: [$n]": dict(x="{shape: [$n]}"),
    "shape: $s": dict(x="{shape: $s}"),
    "dtype: $dt": dict(x="{shape: [8], dtype: $dt}"),
    "data.batch_size: $bs": dict(extra=COMPILE + "data: {source: synthetic, batch_size: $bs}\n"),
    'expect: {params: "${5 * k}"} style': dict(extra='expect: {params: "${k * n}"}\n'),
    "an input that is only a shape": dict(x="$s"),
    "text with ${...} for an enum": dict(x='{shape: [8], dtype: "float${bits}"}'),
    "a data source": dict(extra=COMPILE + "data: {source: $src}\n"),
    "a boolean": dict(x="{shape: [8], sparse: false}", d="{type: Dense, units: 8, use_bias: $yes_}"),
    "layer arguments": dict(d='{type: Dense, units: "${u * 2}", activation: $act}'),
    "model outputs and expected shapes": dict(
        extra="models:\n  m: {outputs: $out, expect: {output_shapes: {d: [$n]}, max_params: \"${k * 100}\"}}\n"),
    "compile settings": dict(extra="compile: {optimizer: {type: Adam, learning_rate: $k}, loss: mse, "
                                   "steps_per_execution: $n}\n"),
}
# Each: lint reports an error, and so does the schema (variables did not open every door).
REJECTED = {
    "shape: 784": dict(x="{shape: 784}"),
    "dtype: float33": dict(x="{shape: [8], dtype: float33}"),
    "a number as text": dict(extra=COMPILE + 'data: {source: synthetic, batch_size: "32"}\n'),
    "a misspelt field": dict(x="{shape: [8], dtpye: float32}"),
    "a negative expectation": dict(extra="expect: {params: -1}\n"),
    "a dollar that is no variable": dict(x="{shape: [8], dtype: $}"),
}


def _spec(case: dict[str, str]) -> str:
    return BASE.format(x=case.get("x", X), d=case.get("d", D), extra=case.get("extra", ""))


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_variables_are_accepted_wherever_lint_accepts_them(name: str) -> None:
    text = _spec(ACCEPTED[name])
    report = lint_file("v.yaml", text=text)
    assert [d for d in report.diagnostics if d.is_error] == []
    assert _errors(VALIDATOR, source.loads(text).data) == []


@pytest.mark.parametrize("name", list(REJECTED))
def test_what_lint_rejects_the_schema_rejects(name: str) -> None:
    text = _spec(REJECTED[name])
    report = lint_file("v.yaml", text=text)
    assert [d for d in report.diagnostics if d.is_error], "lint accepted it"
    assert _errors(VALIDATOR, source.loads(text).data), "the schema accepted it"


def test_the_variable_pattern_matches_what_expansion_reads() -> None:
    pattern = re.compile(SCHEMA["$defs"]["Variable"]["pattern"])
    for text in ("$n", "$width_2", "${n}", "${(a + 1) // 2}", "head_${width}", "float${bits}"):
        assert pattern.search(text), text
    for text in ("$", "$1", "8", "float32", "$ n", "a$b"):
        assert not pattern.search(text), text


def test_merge_markers_of_a_variant_are_accepted(tmp_path: Path) -> None:
    """`_delete_` and `_replace_: true` (docs/variants.md) are what lint accepts; `_replace_: 1` is not."""
    (tmp_path / "base.yaml").write_text((ROOT / "specs" / "mnist_mlp.yaml").read_text(encoding="utf-8"))
    variant = ("extends: base.yaml\nname: smaller\nnodes:\n  dense_1: {_replace_: true, type: Dense, units: 32,"
               " activation: relu}\n  dense_2: _delete_\nmodels:\n  mnist_model:\n    outputs: predictions\n"
               "    expect: {_replace_: true, output_shapes: {predictions: [10]}}\n")
    for text, ok in ((variant, True), (variant.replace("expect: {_replace_: true", "expect: {_replace_: 1"), False)):
        (tmp_path / "v.yaml").write_text(text)
        report = lint_file(str(tmp_path / "v.yaml"))
        assert (not [d for d in report.diagnostics if d.is_error]) is ok, report.diagnostics
        assert (not _errors(VALIDATOR, source.loads(text).data)) is ok


def test_layer_arguments_carry_keras_meaning_for_editors() -> None:
    """yaml-language-server shows an argument's `description` on hover: Keras's first sentence of it."""
    dense = next(v["then"]["properties"] for v in SCHEMA["$defs"]["NodeSpec"]["allOf"]
                 if v["if"]["properties"]["type"]["const"] == "Dense")
    assert dense["units"]["description"] == "Positive integer, dimensionality of the output space."
    assert "bias vector" in dense["use_bias"]["description"] and dense["use_bias"]["default"] is True
    assert len(json.dumps(SCHEMA)) < 1_500_000

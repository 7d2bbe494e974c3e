"""`graphspec resolve`: the resolved spec is a valid spec that builds the same model; `--explain` provenance."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from graphspec import compiler
from graphspec.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
FAMILY = ROOT / "specs" / "resnet_family"

BASE = """\
graphspec: 1
name: base
vars:
  width: 16
inputs:
  x: {shape: [8]}
blocks:
  unit:
    inputs: x
    params: {units: null, rate: 0.1}
    nodes:
      dense: {type: Dense, units: $units, activation: relu}
      drop: {type: Dropout, rate: "${rate}"}
nodes:
  body: {block: unit, repeat: 2, units: "${2 * width}"}
  head: {type: Dense, units: 3}
compile:
  optimizer: {type: Adam, learning_rate: 0.001}
  loss: mse
"""
VARIANT = "extends: base.yaml\nname: variant\nvars: {width: 4}\nnodes:\n  head: {units: 5}\n"


@pytest.fixture
def variant(tmp_path: Path) -> Path:
    (tmp_path / "base.yaml").write_text(BASE)
    path = tmp_path / "variant.yaml"
    path.write_text(VARIANT)
    return path


def cli(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def params(checked: compiler.Checked) -> dict[str, int | None]:
    assert checked.ok, [str(d) for d in checked.diagnostics]
    return {n: m.params for n, m in checked.analysis.models.items()}


# -- the resolved spec ---------------------------------------------------------------------


def test_resolve_merges_the_bases_and_keeps_vars_and_blocks(variant: Path) -> None:
    code, out, _ = cli("resolve", variant)
    assert code == 0
    assert out.startswith(f"# {variant}, resolved by graphspec: bases merged\n")
    data = yaml.safe_load(out)
    assert "extends" not in data
    assert data["vars"] == {"width": 4} and "unit" in data["blocks"]
    assert data["nodes"]["head"] == {"type": "Dense", "units": 5}
    assert data["compile"]["optimizer"] == {"type": "Adam", "learning_rate": 0.001}


@pytest.mark.parametrize("expand", [False, True])
def test_resolved_spec_lints_clean_with_the_same_parameters(variant: Path, tmp_path: Path, expand: bool) -> None:
    code, out, _ = cli("resolve", variant, "--set", "vars.width=6", *(["--expand"] if expand else []))
    assert code == 0
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(out)
    again = compiler.check(resolved)
    assert not again.diagnostics
    assert params(again) == params(compiler.check(variant, sets=["vars.width=6"])) == {"variant": 8 * 12 + 12 + 12 * 12 + 12 + 12 * 5 + 5}
    if expand:
        data = yaml.safe_load(out)
        assert "vars" not in data and "blocks" not in data and "$" not in out.split("\n", 1)[1]
        assert list(data["nodes"]) == ["body_1_dense", "body_1_drop", "body_2_dense", "body", "head"]


def test_resolved_family_member_lints_clean() -> None:
    code, out, _ = cli("resolve", FAMILY / "resnet50.yaml", "--expand")
    assert code == 0
    checked = compiler.check(text=out)
    assert checked.ok and not checked.diagnostics
    assert checked.analysis.models["resnet50"].trainable == 25_557_032


@pytest.mark.keras
def test_resolved_spec_builds_the_same_model(variant: Path, tmp_path: Path, keras_clean: object) -> None:
    import numpy as np

    out = cli("resolve", variant, "--expand")[1]
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(out)
    (ours,) = compiler.build(compiler.check(variant)).values()
    (theirs,) = compiler.build(compiler.check(resolved)).values()
    assert [(la.name, type(la).__name__) for la in ours.layers] == [(la.name, type(la).__name__) for la in theirs.layers]
    assert ours.count_params() == theirs.count_params()
    theirs.set_weights(ours.get_weights())
    x = np.random.default_rng(0).standard_normal((2, 8)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-6)


def test_resolve_reports_errors_with_exit_1(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: base.yaml\nnodes:\n  head: {units: -1}\n")
    code, out, err = cli("resolve", bad)
    assert code == 1 and out == ""
    assert f"{bad}:3:17: error[GS112]" in err


# -- --explain ------------------------------------------------------------------------------


def test_explain_a_value_from_a_file_and_what_it_replaced(variant: Path) -> None:
    code, out, _ = cli("resolve", variant, "--explain", "nodes.head.units")
    assert code == 0
    base = variant.parent / "base.yaml"
    assert out.splitlines() == [
        "nodes.head.units = 5",
        f"  set at {variant}:5:17",
        f"  replacing 3 from {base}:16:30",
    ]


def test_explain_a_set_override(variant: Path) -> None:
    out = cli("resolve", variant, "--set", "nodes.head.units=9", "--explain", "nodes.head.units")[1]
    assert out.splitlines() == [
        "nodes.head.units = 9",
        "  set by --set nodes.head.units=9",
        f"  replacing 5 from {variant}:5:17",
        f"  replacing 3 from {variant.parent / 'base.yaml'}:16:30",
    ]


def test_explain_a_variable_in_a_block_instance(variant: Path) -> None:
    base = variant.parent / "base.yaml"
    out = cli("resolve", variant, "--set", "vars.width=6", "--explain", "nodes.body_2_dense.units")[1]
    assert [
        "nodes.body_2_dense.units = 12",
        f"  set at {base}:12:35 as '$units'",
        "  note: in `body`, repetition 2 of 2: an instance of block `unit` (" + str(base) + " line 15)",
        "  note: `$units` is 12",
        f"  note: {base}:12 is extended by {variant}",
    ][:5] == out.splitlines()[:5]
    # then back through the instance's parameter to the variable, and the values that replaced (issue 22)
    assert out.splitlines()[5] == f"  parameter units of `body` (block `unit`) = '${{2 * width}}', set at {base}:15:41"
    assert out.splitlines()[6] == "  variable width = 6, set by --set vars.width=6"
    out = cli("resolve", variant, "--set", "vars.width=6", "--explain", "nodes.body.rate")[1]
    assert "  note: `${rate}` is 0.1" in out.splitlines()


def test_explain_an_instance_parameter_from_variables(variant: Path) -> None:
    base = variant.parent / "base.yaml"
    out = cli("resolve", variant, "--set", "vars.width=6", "--explain", "vars.width")[1]
    assert out.splitlines() == [
        "vars.width = 6", "  set by --set vars.width=6",
        f"  replacing 4 from {variant}:3:15", f"  replacing 16 from {base}:4:10"]
    (base.parent / "flat.yaml").write_text("extends: base.yaml\nname: flat\nnodes:\n  head: {units: \"${width + 1}\"}\n")
    out = cli("resolve", base.parent / "flat.yaml", "--explain", "nodes.head.units")[1]
    assert out.splitlines()[:2] == ["nodes.head.units = 17", f"  set at {base.parent / 'flat.yaml'}:4:17 as "
                                    "'${width + 1}'"]
    assert f"  variable width = 16, set at {base}:4:10" in out.splitlines()


def test_explain_an_unknown_path_is_a_usage_error(variant: Path) -> None:
    code, _, err = cli("resolve", variant, "--explain", "nodes.haed.units")
    assert code == 2 and "did you mean `head`?" in err
    code, _, err = cli("resolve", variant, "--explain", "nodes..units")
    assert code == 2


@pytest.mark.keras
def test_a_run_folder_keeps_the_merged_spec(tmp_path: Path) -> None:
    from graphspec.run import folders

    (tmp_path / "base.yaml").write_text(BASE)
    variant = tmp_path / "variant.yaml"
    variant.write_text("extends: base.yaml\nvars: {width: 4}\n")  # the name comes from the base
    assert folders.spec_name(variant) == "base"
    text = folders.resolved_spec_text(variant, ["nodes.head.units=7"], {"train.epochs": 1})
    data = yaml.safe_load(text)
    assert "extends" not in data and data["vars"] == {"width": 4} and "unit" in data["blocks"]
    assert data["nodes"]["head"]["units"] == 7 and data["train"] == {"epochs": 1}
    resolved = tmp_path / "spec.yaml"
    resolved.write_text(text)
    assert compiler.check(resolved).ok

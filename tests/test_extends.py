"""`extends`: variants merged over their bases, located errors in every lint format, the ResNet family.

Pure: nothing here builds a model (tests/test_resolve.py builds a resolved spec).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import sarif_check
from typer.testing import CliRunner

from graphspec import compiler
from graphspec.cli.app import app
from graphspec.spec import extends, source

ROOT = Path(__file__).resolve().parents[1]
FAMILY = ROOT / "specs" / "resnet_family"

BASE = """\
graphspec: 1
name: base
vars:
  width: 64
inputs:
  img: {shape: [784]}
nodes:
  dense_1: {type: Dense, units: $width, activation: relu}
  dropout: {type: Dropout, rate: 0.5}
  dense_2: {type: Dense, units: 64, activation: relu}
  predictions: {type: Dense, units: 10}
compile:
  optimizer: {type: Adam, learning_rate: 0.001}
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  metrics: [accuracy]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def check(path: Path, sets: list[str] | None = None) -> compiler.Checked:
    return compiler.check(path, sets=sets)


def codes(checked: compiler.Checked) -> list[str]:
    return [d.code for d in checked.diagnostics.sorted()]


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write(tmp_path, "base.yaml", BASE)


def params(checked: compiler.Checked, model: str) -> int:
    assert checked.ok, [str(d) for d in checked.diagnostics]
    return int(checked.analysis.models[model].params)


# -- merging ---------------------------------------------------------------------------


def test_mappings_merge_key_by_key_lists_and_scalars_replace(tmp_path: Path, base: Path) -> None:
    child = write(tmp_path, "wide.yaml", "extends: base.yaml\nname: wide\nnodes:\n  dense_2: {units: 128}\n"
                  "compile:\n  metrics: [accuracy, top_k_categorical_accuracy]\n")
    merged, diags = extends.apply(source.load(child))
    assert diags == []
    data = merged.data
    assert "extends" not in data
    assert data["name"] == "wide"
    assert data["nodes"]["dense_2"] == {"type": "Dense", "units": 128, "activation": "relu"}
    assert list(data["nodes"]) == ["dense_1", "dropout", "dense_2", "predictions"]  # the base's order
    assert data["compile"]["metrics"] == ["accuracy", "top_k_categorical_accuracy"]  # a list replaces
    assert data["compile"]["optimizer"] == {"type": "Adam", "learning_rate": 0.001}  # kept from the base
    # every value knows the file that holds it
    assert merged.values[("nodes", "dense_2", "units")].file == str(child)
    assert merged.values[("nodes", "dense_2", "activation")].file == str(base)
    # and what it replaced
    (loc, old), = merged.history[("nodes", "dense_2", "units")]
    assert old == 64 and (loc.file, loc.line) == (str(base), 10)


def test_new_keys_go_after_the_bases(tmp_path: Path, base: Path) -> None:
    child = write(tmp_path, "c.yaml", "extends: base.yaml\nnodes:\n  extra: {type: Dropout, rate: 0.1}\n")
    merged, _ = extends.apply(source.load(child))
    assert list(merged.data["nodes"])[-1] == "extra"


def test_replace_marker_replaces_a_mapping_instead_of_merging(tmp_path: Path, base: Path) -> None:
    child = write(tmp_path, "c.yaml", "extends: base.yaml\ncompile:\n  _replace_: true\n  optimizer: sgd\n"
                  "  loss: mse\n")
    merged, diags = extends.apply(source.load(child))
    assert diags == []
    assert merged.data["compile"] == {"optimizer": "sgd", "loss": "mse"}
    assert ("compile", "_replace_") not in merged.keys
    assert ("compile", "metrics") not in merged.values  # the base's positions went with its values


def test_delete_marker_removes_a_node_and_the_rest_still_checks(tmp_path: Path, base: Path) -> None:
    child = write(tmp_path, "c.yaml", "extends: base.yaml\nname: c\nnodes:\n  dropout: _delete_\n")
    checked = check(child)
    assert "dropout" not in checked.source.data["nodes"]
    assert checked.graph.nodes["dense_2"].inputs[0].node == "dense_1"  # the next node takes its place
    assert params(checked, "c") == 55050


def test_delete_of_a_key_the_base_lacks_is_located_with_a_hint(tmp_path: Path, base: Path) -> None:
    child = write(tmp_path, "c.yaml", "extends: base.yaml\nnodes:\n  dropot: _delete_\n")
    checked = check(child)
    (d,) = checked.diagnostics.sorted()
    assert (d.code, d.location.file, d.location.line, d.location.col) == ("GS132", str(child), 3, 11)
    assert d.hint == "did you mean `dropout`?"


def test_replace_must_be_true_and_markers_need_extends(tmp_path: Path, base: Path) -> None:
    child = write(tmp_path, "c.yaml", "extends: base.yaml\ncompile:\n  _replace_: yes please\n  loss: mse\n")
    assert codes(check(child)) == ["GS132"]
    alone = write(tmp_path, "alone.yaml", BASE.replace("  dropout: {type: Dropout, rate: 0.5}\n",
                                                       "  dropout: _delete_\n"))
    (d,) = check(alone).diagnostics.sorted()
    assert d.code == "GS132" and "only means something in a file that `extends`" in d.message
    assert (d.location.file, d.location.line) == (str(alone), 9)


def test_a_list_of_bases_is_merged_in_order(tmp_path: Path, base: Path) -> None:
    write(tmp_path, "narrow.yaml", "vars: {width: 16}\nnodes:\n  dense_2: {units: 16}\n")
    write(tmp_path, "tiny.yaml", "vars: {width: 8}\n")
    child = write(tmp_path, "c.yaml", "extends: [base.yaml, narrow.yaml, tiny.yaml]\nname: c\n")
    checked = check(child)
    assert checked.source.data["nodes"]["dense_1"]["units"] == 8  # tiny.yaml came last
    assert checked.source.data["nodes"]["dense_2"]["units"] == 16
    assert params(checked, "c") == 784 * 8 + 8 + 8 * 16 + 16 + 16 * 10 + 10


def test_paths_are_relative_to_the_file_that_names_them(tmp_path: Path, base: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "variants/mid.yaml", "extends: ../base.yaml\nvars: {width: 32}\n")
    leaf = write(tmp_path, "variants/deeper/leaf.yaml", "extends: ../mid.yaml\nname: leaf\n")
    (tmp_path / ".git").mkdir()  # the bases are outside the leaf's folder, inside its repository
    checked = check(leaf)
    assert params(checked, "leaf") == 784 * 32 + 32 + 32 * 64 + 64 + 650
    monkeypatch.chdir(tmp_path)
    checked = check(Path("variants/deeper/leaf.yaml"))
    assert checked.ok
    assert checked.source.values[("nodes", "dense_2", "units")].file == "base.yaml"


def test_bases_stay_inside_the_specs_repository_or_folder(tmp_path: Path, base: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19 item 15: the current folder grants nothing; the spec's repository (else its folder) bounds it."""
    work = tmp_path / "work"
    leaf = write(work, "leaf.yaml", "extends: [../base.yaml]\nname: leaf\n")
    absolute = write(work, "abs.yaml", f"extends: {base}\nname: abs\n")
    for cwd in (work, tmp_path):  # running from the folder holding the base grants nothing
        monkeypatch.chdir(cwd)
        for spec in (leaf, absolute):
            (d,) = check(spec).diagnostics.sorted()
            assert d.code == "GS130" and "outside the folders a spec may extend from: the spec's own folder" in d.message
            assert (d.location.file, d.location.line) == (str(spec), 1)
    (tmp_path / ".git").mkdir()
    assert check(leaf).ok and check(absolute).ok
    (work / ".git").mkdir()  # a repository of its own: the base is outside it
    (d,) = check(leaf).diagnostics.sorted()
    assert f"the spec's repository ({work})" in d.message


# -- variables ------------------------------------------------------------------------


def test_child_and_set_override_the_bases_vars(tmp_path: Path, base: Path) -> None:
    child = write(tmp_path, "c.yaml", "extends: base.yaml\nname: c\nvars: {width: 128}\n")
    assert params(check(child), "c") == 784 * 128 + 128 + 128 * 64 + 64 + 650
    assert params(check(child, ["vars.width=32"]), "c") == 784 * 32 + 32 + 32 * 64 + 64 + 650


def test_set_cannot_change_extends(tmp_path: Path, base: Path) -> None:
    child = write(tmp_path, "c.yaml", "extends: base.yaml\nname: c\n")
    (d,) = check(child, ["extends=other.yaml"]).diagnostics.sorted()
    assert d.code == "GS600" and d.location.file == "--set #1" and "--set #1 is `extends=other.yaml`" in d.notes


# -- chains, cycles, bad names ------------------------------------------------------------


def test_chains_locate_values_in_the_file_that_holds_them(tmp_path: Path, base: Path) -> None:
    write(tmp_path, "mid.yaml", "extends: base.yaml\nname: mid\n")
    leaf = write(tmp_path, "leaf.yaml", "extends: mid.yaml\nname: leaf\nnodes:\n  dense_2: {units: 0}\n")
    broken = write(tmp_path, "leaf2.yaml", "extends: mid.yaml\nname: leaf2\nvars: {width: -4}\n")
    (d,) = [d for d in check(leaf).diagnostics.sorted() if d.code == "GS112"]
    assert (d.location.file, d.location.line) == (str(leaf), 4)  # the leaf holds the bad value
    assert not any("extended by" in n for n in d.notes)
    (d,) = [d for d in check(broken).diagnostics.sorted() if d.code == "GS112"]
    assert (d.location.file, d.location.line, d.location.col) == (str(base), 8, 33)  # `units: $width`
    assert f"{base}:8 is extended by {tmp_path / 'mid.yaml'}, which is extended by {broken}" in d.notes
    assert "`$width` is -4" in d.notes


def test_a_cycle_is_a_located_error(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "extends: b.yaml\nname: a\n")
    write(tmp_path, "b.yaml", "graphspec: 1\nextends: c.yaml\n")
    write(tmp_path, "c.yaml", "extends: [a.yaml]\n")
    (d,) = check(a).diagnostics.sorted()
    assert d.code == "GS131"
    assert (Path(d.location.file).name, d.location.line, d.location.col) == ("c.yaml", 1, 11)
    assert d.message == f"`extends` cycle: {a} -> {tmp_path / 'b.yaml'} -> {tmp_path / 'c.yaml'} -> {a}"
    assert any("is extended by" in n for n in d.notes)


def test_self_extension_is_a_cycle(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "extends: a.yaml\n")
    assert codes(check(a)) == ["GS131"]


@pytest.mark.parametrize(("value", "message"), [
    ("missing.yaml", "cannot read `missing.yaml`"),
    ("notes.txt", "must end in .yaml or .yml"),
    ("5", "must be a file name or a list"),
    ("[]", "must be a file name or a list"),
    ("[base.yaml, 3]", "`extends` names files"),
])
def test_bad_extends_values_are_located(tmp_path: Path, base: Path, value: str, message: str) -> None:
    child = write(tmp_path, "c.yaml", f"name: c\nextends: {value}\n")
    (d,) = check(child).diagnostics.sorted()
    assert d.code == "GS130" and message in d.message
    assert (d.location.file, d.location.line) == (str(child), 2)


def test_a_base_that_is_not_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, "list.yaml", "- 1\n- 2\n")
    child = write(tmp_path, "c.yaml", "extends: list.yaml\n")
    (d,) = check(child).diagnostics.sorted()
    assert d.code == "GS006" and d.location.file == str(tmp_path / "list.yaml")


# -- located errors in a base, in every lint format ---------------------------------------------


@pytest.fixture
def broken_base(tmp_path: Path) -> tuple[Path, Path]:
    base = write(tmp_path, "base.yaml", BASE.replace("units: 64, activation", "unitz: 64, activation"))
    child = write(tmp_path, "wide.yaml", "extends: base.yaml\nname: wide\nvars: {width: 128}\n")
    return base, child


def lint(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["lint", *args])
    return result.exit_code, result.stdout


def test_text_format_shows_the_bases_line_and_the_chain(broken_base: tuple[Path, Path]) -> None:
    base, child = broken_base
    code, out = lint(str(child))
    assert code == 1
    assert f"{base}:10:26: error[GS111]: Dense has no argument 'unitz'" in out
    assert "  10 |   dense_2: {type: Dense, unitz: 64, activation: relu}" in out  # base.yaml's line 10
    assert f"note: {base}:10 is extended by {child}" in out


def test_json_github_and_sarif_formats_locate_in_the_base(broken_base: tuple[Path, Path]) -> None:
    base, child = broken_base
    note = f"{base}:10 is extended by {child}"
    doc = json.loads(lint("--format", "json", str(child))[1])
    (d,) = doc["diagnostics"]
    assert (d["file"], d["line"], d["col"], d["code"]) == (str(base), 10, 26, "GS111")
    assert note in d["notes"]
    gh = lint("--format", "github", str(child))[1]
    assert f"::error file={base},line=10,col=26," in gh
    assert "%0Anote: " + note in gh
    sarif = json.loads(lint("--format", "sarif", str(child))[1])
    sarif_check.validate(sarif)
    (r,) = sarif["runs"][0]["results"]
    loc = r["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("base.yaml") and loc["region"]["startLine"] == 10
    assert "note: " + note in r["message"]["text"]


def test_a_yaml_error_in_a_base_shows_the_bases_line(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "graphspec: 1\nnodes: [\n")
    child = write(tmp_path, "c.yaml", "extends: base.yaml\n")
    code, out = lint(str(child))
    assert code == 1
    assert f"{tmp_path / 'base.yaml'}:3:1: error[GS002]" in out
    assert f"is extended by {child}" in out


def test_a_block_instance_in_a_base_names_the_bases_file(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", """\
graphspec: 1
name: base
vars: {width: 8}
inputs: {x: [4]}
blocks:
  mlp:
    inputs: x
    nodes:
      dense: {type: Dense, units: $width}
nodes:
  body: {block: mlp, repeat: 2}
""")
    child = write(tmp_path, "c.yaml", "extends: base.yaml\nname: c\nvars: {width: -1}\n")
    diags = [d for d in check(child).diagnostics.sorted() if d.code == "GS112"]
    assert diags and all((d.location.file, d.location.line) == (str(base), 9) for d in diags)
    assert any(n.startswith("in `body`, repetition 1 of 2: an instance of block `mlp` "
                            f"({base} line 11)") for d in diags for n in d.notes)
    assert all(f"{base}:9 is extended by {child}" in d.notes for d in diags)


# -- the schema and the family -------------------------------------------------------------------


def test_json_schema_accepts_a_variant_and_still_requires_fields_otherwise() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "graphspec.schema.json").read_text())
    import yaml

    # One validator, and no check of the schema itself: jsonschema.validate checks the 440 kB schema against its
    # meta-schema on every call (~2.5 s each); test_lint_schema.py checks it once, as a valid draft 2020-12 schema.
    validator = jsonschema.validators.validator_for(schema)(schema)
    variant = yaml.safe_load((FAMILY / "resnet34.yaml").read_text())
    validator.validate(variant)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"graphspec": 1, "name": "x"})  # no nodes, no extends
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"extends": 3})


@pytest.mark.parametrize(("spec", "model", "trainable"), [
    ("resnet18.yaml", "resnet18", 11_689_512),  # torchvision's published counts
    ("resnet34.yaml", "resnet34", 21_797_672),
    ("resnet50.yaml", "resnet50", 25_557_032),
    ("resnet18_cifar.yaml", "resnet18_cifar", 11_173_962),
])
def test_resnet_family_from_one_base(spec: str, model: str, trainable: int) -> None:
    checked = check(FAMILY / spec)
    assert checked.ok and not checked.diagnostics, [str(d) for d in checked.diagnostics]
    assert checked.analysis.models[model].trainable == trainable


def test_resnet_family_variants_are_a_few_lines() -> None:
    for spec in ("resnet34.yaml", "resnet50.yaml"):
        body = [ln for ln in (FAMILY / spec).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        assert len(body) <= 5, spec
    assert extends.load(str(FAMILY / "resnet50.yaml")).extended_by == {
        str(FAMILY / "resnet34.yaml"): str(FAMILY / "resnet50.yaml"),
        str(FAMILY / "resnet18.yaml"): str(FAMILY / "resnet34.yaml"),
    }

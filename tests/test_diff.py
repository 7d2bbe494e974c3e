"""`graphspec diff A B`: a semantic diff of two specs, its formats and exit codes, and `plot --diff`.

Pure: both sides go through the stages up to static shapes; one test runs the commands
with keras, tensorflow and numpy blocked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app
from graphspec.experiments.diff import diff_paths
from graphspec.render import diff as render_diff

ROOT = Path(__file__).resolve().parents[1]
FAMILY = ROOT / "specs" / "resnet_family"

MNIST = """\
graphspec: 1
name: mnist_mlp
inputs:
  img: {shape: [784]}
nodes:
  dense_1: {type: Dense, units: 64, activation: relu}
  dense_2: {type: Dense, units: 64, activation: relu}
  predictions: {type: Dense, units: 10}
models:
  mnist_model:
    outputs: predictions
compile:
  optimizer: rmsprop
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  metrics: [accuracy]
"""

# The same spec reformatted: block style, comments, other key order, defaults and edges written out.
MNIST_REFORMATTED = """\
# an MNIST classifier
name: mnist_mlp
graphspec: 1
compile:
  metrics: [accuracy]
  loss:
    from_logits: true
    type: SparseCategoricalCrossentropy
  optimizer: rmsprop
  jit_compile: auto        # the default, written out
inputs:
  img: [784]               # a bare shape
nodes:
  dense_1:
    inputs: img            # the implicit edge, written out
    units: 64
    activation: relu
    type: Dense
  dense_2: {activation: relu, type: Dense, units: 64}
  predictions:
    type: Dense
    units: 10
    inputs: dense_2
models:
  mnist_model: {outputs: [predictions], inputs: img}
"""

BLOCKS = """\
graphspec: 1
name: mlp
vars: {width: 32}
inputs:
  x: {shape: [16]}
blocks:
  unit:
    inputs: x
    params: {units: null, rate: 0.1}
    nodes:
      dense: {type: Dense, units: $units, activation: relu}
      drop: {type: Dropout, rate: "${rate}"}
nodes:
  body: {block: unit, repeat: 2, units: $width, first: {rate: 0.5}}
  head: {type: Dense, units: 10}
"""

WRITTEN_OUT = """\
graphspec: 1
name: mlp
inputs:
  x: [16]
nodes:
  body_1_dense: {type: Dense, units: 32, activation: relu}
  body_1_drop: {type: Dropout, rate: 0.5}
  body_2_dense: {type: Dense, units: 32, activation: relu}
  body: {type: Dropout, rate: 0.1}
  head: {type: Dense, units: 10}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def at(path: Path, text: str, needle: str, after: str = "") -> str:
    """`file:line:col` of `needle` (on the first line containing `after` and `needle`)."""
    for i, line in enumerate(text.splitlines(), 1):
        if after in line and needle in line:
            return f"{path}:{i}:{line.index(needle, line.index(after) if after else 0) + 1}"
    raise AssertionError(f"{needle!r} not in the text")


def pair(tmp_path: Path, a: str, b: str) -> tuple[Path, Path]:
    return write(tmp_path, "a.yaml", a), write(tmp_path, "b.yaml", b)


def changes(tmp_path: Path, a: str, b: str) -> list[dict[str, object]]:
    pa, pb = pair(tmp_path, a, b)
    report, _, _ = diff_paths(pa, pb)
    return [c.as_dict() for c in report.changes]


runner = CliRunner()


def cli(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


# -- what differs ------------------------------------------------------------------------


def test_one_argument(tmp_path: Path) -> None:
    b = MNIST.replace("dense_1: {type: Dense, units: 64", "dense_1: {type: Dense, units: 128")
    pa, pb = pair(tmp_path, MNIST, b)
    report, _, _ = diff_paths(pa, pb)
    assert [c.as_dict() for c in report.changes] == [{
        "kind": "changed", "path": "nodes.dense_1.units", "from": 64, "to": 128,
        "a": at(pa, MNIST, "64", "dense_1"), "b": at(pb, b, "128", "dense_1"),
    }]
    doc = render_diff.json_doc(report)
    assert doc["equal"] is False
    assert doc["models"] == {"mnist_model": {"params": [55050, 109386], "trainable_params": [55050, 109386],
                                             "macs": [54912, 109184],
                                             "output_shapes": {"predictions": [[10], [10]]}}}


def test_one_added_node(tmp_path: Path) -> None:
    b = MNIST.replace("  dense_2:", "  dropout: {type: Dropout, rate: 0.2}\n  dense_2:")
    assert [(c["kind"], c["path"], c["from"], c["to"]) for c in changes(tmp_path, MNIST, b)] == [
        ("added", "nodes.dropout", None, {"type": "Dropout", "rate": 0.2, "inputs": "dense_1"}),
        ("changed", "nodes.dense_2.inputs", "dense_1", "dropout"),  # the edge the new node took over
    ]


def test_one_removed_node(tmp_path: Path) -> None:
    b = MNIST.replace("  dense_2: {type: Dense, units: 64, activation: relu}\n", "")
    found = changes(tmp_path, MNIST, b)
    assert [(c["kind"], c["path"]) for c in found] == [("changed", "nodes.predictions.inputs"),
                                                       ("removed", "nodes.dense_2")]
    assert found[1]["b"] is None and found[1]["a"] == f"{tmp_path / 'a.yaml'}:7:3"


def test_one_renamed_node(tmp_path: Path) -> None:
    b = MNIST.replace("dense_2:", "hidden:")
    (c,) = changes(tmp_path, MNIST, b)
    assert (c["kind"], c["path"], c["from"], c["to"]) == ("renamed", "nodes.hidden", "dense_2", "hidden")


def test_a_renamed_block_instance_is_renames_only(tmp_path: Path) -> None:
    b = BLOCKS.replace("  body: {block", "  trunk: {block")
    found = changes(tmp_path, BLOCKS, b)
    assert {(c["kind"], c["from"], c["to"]) for c in found} == {
        ("renamed", "body_1_dense", "trunk_1_dense"), ("renamed", "body_1_drop", "trunk_1_drop"),
        ("renamed", "body_2_dense", "trunk_2_dense"), ("renamed", "body", "trunk"),
    }


def test_one_edge(tmp_path: Path) -> None:
    b = MNIST.replace("predictions: {type: Dense, units: 10}", "predictions: {type: Dense, units: 10, inputs: dense_1}")
    pa, pb = pair(tmp_path, MNIST, b)
    report, _, _ = diff_paths(pa, pb)
    assert [(c.kind, c.path, c.before, c.after) for c in report.changes] == [
        ("changed", "nodes.predictions.inputs", "dense_2", "dense_1")]
    (m,) = report.models
    assert m.params == (55050, 784 * 64 + 64 + 650)  # dense_2 is no longer in the model


def test_one_compile_setting(tmp_path: Path) -> None:
    b = MNIST.replace("optimizer: rmsprop", "optimizer: {type: Adam, learning_rate: 0.0003}")
    (c,) = changes(tmp_path, MNIST, b)
    assert (c["kind"], c["path"], c["from"], c["to"]) == (
        "changed", "compile.optimizer", "rmsprop", {"type": "Adam", "learning_rate": 0.0003})


def test_data_and_train_changes_by_path(tmp_path: Path) -> None:
    data = "data:\n  source: {kind: keras, name: mnist}\n  batch_size: 64\ntrain:\n  epochs: 2\n"
    a = MNIST + data
    b = MNIST + data.replace("batch_size: 64", "batch_size: 128").replace("epochs: 2", "epochs: 5")
    assert [(c["path"], c["from"], c["to"]) for c in changes(tmp_path, a, b)] == [
        ("data.batch_size", 64, 128), ("train.epochs", 2, 5)]


def test_an_input_shape(tmp_path: Path) -> None:
    b = MNIST.replace("shape: [784]", "shape: [784], dtype: float16")
    (c,) = changes(tmp_path, MNIST, b)
    assert (c["kind"], c["path"], c["from"], c["to"]) == ("changed", "inputs.img.dtype", "float32", "float16")


# -- what does not ------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [(MNIST, MNIST), (MNIST, MNIST_REFORMATTED), (BLOCKS, WRITTEN_OUT),
                                      (WRITTEN_OUT, BLOCKS)], ids=["same", "reformatted", "block", "written"])
def test_equivalent_specs_are_equal(tmp_path: Path, a: str, b: str) -> None:
    pa, pb = pair(tmp_path, a, b)
    code, out, _ = cli("diff", pa, pb, "--format", "json")
    doc = json.loads(out)
    assert (code, doc["equal"], doc["changes"]) == (0, True, [])
    for m in doc["models"].values():
        assert m["params"][0] == m["params"][1] is not None


def test_a_variant_and_its_resolved_spec_are_equal(tmp_path: Path) -> None:
    code, out, _ = cli("resolve", FAMILY / "resnet50.yaml", "--expand")
    resolved = write(tmp_path, "resolved.yaml", out)
    assert cli("diff", FAMILY / "resnet50.yaml", resolved)[0] == 0


# -- the ResNet family, run folders, --model ----------------------------------------------------


def test_family_members_differ_in_parameters() -> None:
    report, _, _ = diff_paths(FAMILY / "resnet18.yaml", FAMILY / "resnet50.yaml")
    (m,) = report.models
    assert m.trainable_params == (11_689_512, 25_557_032)
    assert m.output_shapes == {"logits": ([1000], [1000])}
    assert ("changed", "name", "resnet18", "resnet50") in [(c.kind, c.path, c.before, c.after) for c in report.changes]


def test_run_folders_are_compared_by_their_spec_yaml(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "mnist_mlp" / "20250101-000000"
    write(run, "spec.yaml", "# The spec as trained by graphspec\n" + MNIST)
    spec = write(tmp_path, "a.yaml", MNIST)
    assert cli("diff", run, spec)[0] == 0
    assert cli("diff", spec, tmp_path / "runs")[0] == 2  # a folder without spec.yaml


def test_model_option(tmp_path: Path) -> None:
    text = "\n".join(ln for ln in (ROOT / "specs" / "autoencoder.yaml").read_text().splitlines()
                     if "expect:" not in ln) + "\n"
    a = write(tmp_path, "a.yaml", text)
    b = write(tmp_path, "b.yaml", text.replace("decoder_output: {type: Conv2DTranspose, filters: 1",
                                              "decoder_output: {type: Conv2DTranspose, filters: 2"))
    report, _, _ = diff_paths(a, b, model="encoder")
    assert report.changes == [] and [m.name for m in report.models] == ["encoder"]
    report, _, _ = diff_paths(a, b, model="autoencoder")
    assert [c.path for c in report.changes] == ["nodes.decoder_output.filters"]
    code, _, err = cli("diff", a, b, "--model", "encodr")
    assert code == 2 and "did you mean `encoder`?" in err


# -- formats and exit codes --------------------------------------------------------------------


@pytest.fixture
def wider(tmp_path: Path) -> tuple[Path, Path]:
    return pair(tmp_path, MNIST, MNIST.replace("dense_1: {type: Dense, units: 64", "dense_1: {type: Dense, units: 128"))


def test_text_format(wider: tuple[Path, Path]) -> None:
    a, b = wider
    code, out, _ = cli("diff", a, b)
    assert code == 1
    assert out.splitlines() == [
        f"{a} -> {b}: 1 change",
        "model mnist_model",
        "  params            55,050 -> 109,386 (+54,336)",
        "  trainable params  55,050 -> 109,386 (+54,336)",
        "  MACs              54,912 -> 109,184 (+54,272)",
        "  output            predictions (10)",
        f"changed  nodes.dense_1.units: 64 -> 128  ({a}:6:33 -> {b}:6:33)",
    ]


def test_json_format_is_the_documented_document(wider: tuple[Path, Path]) -> None:
    a, b = wider
    doc = json.loads(cli("diff", a, b, "-f", "json")[1])
    assert set(doc) == {"equal", "a", "b", "changes", "models", "errors"}
    (c,) = doc["changes"]
    assert c == {"kind": "changed", "path": "nodes.dense_1.units", "from": 64, "to": 128,
                 "a": f"{a}:6:33", "b": f"{b}:6:33"}


def test_markdown_format_is_a_pull_request_comment(wider: tuple[Path, Path]) -> None:
    a, b = wider
    out = cli("diff", a, b, "--format", "markdown")[1]
    assert out.startswith(f"### graphspec diff: `{a}` → `{b}`\n")
    assert ("| `mnist_model` | 55,050 -> 109,386 (+54,336) | 55,050 -> 109,386 (+54,336) | 54,912 -> 109,184 "
            "(+54,272) | predictions (10) |") in out
    assert f"| changed | `nodes.dense_1.units` | `64` | `128` | `{b}:6:33` |" in out


def test_github_format_annotates_bs_lines(wider: tuple[Path, Path]) -> None:
    a, b = wider
    lines = cli("diff", a, b, "--format", "github")[1].splitlines()
    assert lines[0] == (f"::notice file={b},line=6,col=33,title=graphspec diff%3A changed::"
                        f"changed nodes.dense_1.units: 64 -> 128%0Awas at {a}:6:33")
    assert lines[-1] == "1 change"


def test_exit_codes(tmp_path: Path, wider: tuple[Path, Path]) -> None:
    a, b = wider
    assert cli("diff", a, a)[0] == 0
    assert cli("diff", a, b)[0] == 1
    assert cli("diff", a, b, "--format", "yaml")[0] == 2
    assert cli("diff", a, tmp_path / "missing.yaml")[0] == 2
    broken = write(tmp_path, "broken.yaml", MNIST.replace("units: 10", "units: ten"))
    code, out, err = cli("diff", a, broken)
    assert code == 2 and out == ""
    assert f"{broken}:8:" in err and "error[GS112]" in err


def test_a_spec_with_errors_after_its_graph_resolved_is_still_compared(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", MNIST.replace("outputs: predictions", "outputs: predictions\n    expect: {params: 55050}"))
    b = write(tmp_path, "b.yaml", a.read_text().replace("units: 10}", "units: 12}"))
    code, out, err = cli("diff", a, b, "--format", "json")
    assert code == 2
    doc = json.loads(out)
    assert [c["path"] for c in doc["changes"]] == ["nodes.predictions.units"]
    assert [(d["code"], d["file"]) for d in doc["errors"]] == [("GS501", str(b))]
    assert f"{b}:12:14: error[GS501]" in err
    md = cli("diff", a, b, "--format", "markdown")[1]
    assert f"- `{b}:12:14`: GS501 model \\`mnist\\_model\\` has 55,180 parameters, the spec expects 55,050" in md


def test_render_helpers() -> None:
    assert render_diff.flow({"type": "Dense", "units": 64, "x": [1, None, True], "s": "a b"}) == (
        "{type: Dense, units: 64, x: [1, null, true], s: 'a b'}")
    assert render_diff.count_text((55050, 109386)) == "55,050 -> 109,386 (+54,336)"
    assert render_diff.count_text((10, 10)) == "10"
    assert render_diff.count_text((None, 10)) == "? -> 10"


# -- plot --diff ----------------------------------------------------------------------------------


def test_plot_diff_colours_added_removed_changed_and_renamed(tmp_path: Path) -> None:
    b = (MNIST.replace("dense_1: {type: Dense, units: 64", "dense_1: {type: Dense, units: 128")
              .replace("  dense_2: {type: Dense, units: 64, activation: relu}\n",
                       "  hidden: {type: Dense, units: 64, activation: relu}\n  drop: {type: Dropout, rate: 0.1}\n"))
    pa, pb = pair(tmp_path, MNIST, b)
    pa2 = write(tmp_path, "a2.yaml", MNIST.replace("  predictions:", "  extra: {type: Dense, units: 8}\n  predictions:"))
    out = tmp_path / "diff.dot"
    code, stdout, _ = cli("plot", "--diff", pa, pb, "-o", out, "--show-names")
    assert code == 0, stdout
    dot = out.read_text()
    assert 'bgcolor="#ef6c00"><font point-size="16" color="white"><b>dense_1</b> (Dense)<br/>' \
           '<font point-size="12">units: 64 → 128</font>' in dot
    assert '<b>hidden</b> (Dense)<br/><font point-size="12">renamed from dense_2</font>' in dot
    assert 'bgcolor="#2e7d32"><font point-size="16" color="white"><b>drop</b>' in dot
    assert '"hidden" -> "drop" [color="#2e7d32"];' in dot
    code, _, _ = cli("plot", "--diff", pa2, pb, "-o", out, "--show-names")
    dot = out.read_text()
    assert 'bgcolor="#c62828"><font point-size="16" color="white"><b>extra</b> (Dense)' in dot
    assert '"hidden" -> "removed/extra" [color="#c62828", style="dashed"];' in dot
    assert '"removed/extra" -> "predictions" [color="#c62828", style="dashed"];' in dot
    assert cli("plot", pa, "--diff", pa, pb, "-o", out)[0] == 2
    broken = write(tmp_path, "broken.yaml", MNIST.replace("outputs: predictions",
                                                          "outputs: predictions\n    expect: {params: 1}"))
    code, _, err = cli("plot", "--diff", pa, broken, "-o", out)
    assert code == 1 and "error[GS501]" in err
    assert cli("plot", "-o", out)[0] == 2


def test_plot_without_diff_is_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "x.dot"
    assert cli("plot", ROOT / "specs" / "mnist_mlp.yaml", "-o", out)[0] == 0
    dot = out.read_text()
    assert "#ef6c00" not in dot and "] [color=" not in dot and "[color=" not in dot


# -- no backend -------------------------------------------------------------------------------------


def test_diff_resolve_and_plot_diff_run_without_a_backend(tmp_path: Path) -> None:
    a, b = pair(tmp_path, MNIST, MNIST.replace("units: 10", "units: 12"))
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {{'keras', 'tensorflow', 'jax', 'torch', 'numpy'}}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from typer.testing import CliRunner
from graphspec.cli.app import app
r = CliRunner()
codes = [r.invoke(app, args).exit_code for args in (
    ["diff", {str(a)!r}, {str(b)!r}, "--format", "json"],
    ["diff", {str(a)!r}, {str(a)!r}],
    ["resolve", {str(FAMILY / 'resnet50.yaml')!r}, "--expand"],
    ["resolve", {str(FAMILY / 'resnet50.yaml')!r}, "--explain", "nodes.logits.units"],
    ["plot", "--diff", {str(a)!r}, {str(b)!r}, "-o", {str(tmp_path / 'd.dot')!r}],
)]
loaded = sorted(m for m in sys.modules if m.split('.')[0] in {{'keras', 'tensorflow', 'numpy', 'jax', 'torch'}})
print(codes, loaded)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[1, 0, 0, 0, 0] []", result.stdout + result.stderr


def test_models_report_macs_before_and_after(tmp_path: Path) -> None:
    """Compute is part of the per-model summary: a wider Dense changes the MACs as it changes the parameters."""
    a = ROOT / "specs" / "mnist_mlp.yaml"
    b = write(tmp_path, "b.yaml", a.read_text().replace("dense_1: {type: Dense, units: 64",
                                                        "dense_1: {type: Dense, units: 128")
              .replace("expect: {params: 55050}", "expect: {params: 109386}"))
    code, out, _ = cli("diff", a, b, "--format", "json")
    assert code == 1
    model = json.loads(out)["models"]["mnist_model"]
    assert model["macs"] == [54912, 784 * 128 + 128 * 64 + 64 * 10]

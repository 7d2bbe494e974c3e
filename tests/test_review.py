"""Review and compare without noise (issue 22): `runs` readable and consistent, `diff` without
defaults or paths as changes, `resolve --explain` tracing, and the small things a user hit."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app
from graphspec.errors import UsageError


def _run(path: Path, *, monitor: str, mode: str, value: float, test: dict[str, float],
         metrics: dict[str, float] | None = None, sets: list[str] | None = None,
         trial: dict[str, Any] | None = None) -> None:
    path.mkdir(parents=True)
    (path / "spec.yaml").write_text("graphspec: 1\n")
    row = {"epoch": 1, monitor: value, "time": 0.5, **(metrics or {})}
    (path / "history.json").write_text(json.dumps([row]))
    (path / "state.json").write_text(json.dumps({
        "status": "completed", "epochs_completed": 1, "monitor": monitor, "mode": mode,
        "best": {"monitor": monitor, "mode": mode, "value": value, "epoch": 1}}))
    (path / "results.json").write_text(json.dumps({"test": test}))
    argv = ["graphspec", "train", "x.yaml"] + [a for s in (sets or []) for a in ("--set", s)]
    (path / "environment.json").write_text(json.dumps({"argv": argv}))
    if trial is not None:
        (path / "trial.json").write_text(json.dumps(trial))


def _mixed(tmp_path: Path) -> Path:
    """Two sweep trials (val_accuracy, max) and two plain runs (val_loss, min), long parameter paths."""
    root = tmp_path / "all"
    for n, (acc, lr) in enumerate([(0.91, 0.0019583717), (0.95, 0.00012345678)]):
        trial = {"number": n, "state": "completed", "metric": "val_accuracy", "mode": "max", "value": acc,
                 "params": {"nodes.drop.rate": 0.123456789, "compile.optimizer.learning_rate": lr}}
        _run(root / "s" / f"trial-000{n}", monitor="val_accuracy", mode="max", value=acc,
             test={"accuracy": acc - 0.01, "loss": 0.3}, metrics={"accuracy": 0.5 + n / 10}, trial=trial)
    for n, loss in enumerate([0.40, 0.20]):
        _run(root / "m" / f"2024010{n}-000000", monitor="val_loss", mode="min", value=loss,
             test={"accuracy": 0.8 + n / 100, "loss": loss}, metrics={"accuracy": 0.99 - n / 10},
             sets=[f"compile.optimizer.learning_rate=0.00{n + 1}"])
    return root


def test_runs_ranks_only_runs_that_share_an_objective(tmp_path: Path) -> None:
    from graphspec.experiments import runs

    rows = runs.collect([_mixed(tmp_path)])
    assert [(r["name"], r["monitor"]) for r in rows] == [
        ("s/trial-0001", "val_accuracy"), ("s/trial-0000", "val_accuracy"),  # groups of two: by metric name
        ("m/20240101-000000", "val_loss"), ("m/20240100-000000", "val_loss")]
    result = CliRunner().invoke(app, ["runs", str(tmp_path / "all")], env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "val_loss (lower is better)" in result.output
    assert "val_accuracy (higher is better)" in result.output


def test_runs_sorts_by_any_column_shown(tmp_path: Path) -> None:
    from graphspec.experiments import runs

    root = _mixed(tmp_path)
    for name in ("test_accuracy", "test.accuracy"):
        best = runs.collect([root], sort=name)
        assert [r["name"] for r in best][0] == "s/trial-0001", name  # test accuracy 0.94
    by_train = runs.collect([root], sort="accuracy")  # the training accuracy, as Keras names it
    assert by_train[0]["name"] == "m/20240100-000000"
    by_lr = runs.collect([root], sort="learning_rate")  # a parameter, by its short name
    assert [r["name"] for r in by_lr][0] == "s/trial-0001"
    assert runs.collect([root], sort="epochs")
    with pytest.raises(UsageError, match="the columns are objective, epochs, seconds, accuracy"):
        runs.collect([root], sort="val_auc")
    result = CliRunner().invoke(app, ["runs", str(root), "--sort", "test_accuracy"],
                                env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert result.exit_code == 0 and "test_accuracy" in result.output, result.output


def test_runs_table_fits_80_columns_without_cutting_numbers(tmp_path: Path) -> None:
    from rich.console import Console

    from graphspec.experiments import runs
    from graphspec.render import runs as render

    rows = runs.collect([_mixed(tmp_path)])
    console = Console(width=80, color_system=None, record=True)
    console.print(render.table(rows, width=80))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text, text
    for number in ("0.9500", "0.9100", "0.2000", "0.4000", "0.9400"):  # objectives, the test twin of one
        assert number in text, (number, text)
    # one rule for every parameter path (its shortest distinguishing tail), each value whole
    assert "learning_rate=0.0001235" in text and "learning_rate=0.002" in text
    assert "compile.optimizer" not in text and "rate=0.1235" in text
    assert "not shown at 80 columns: seconds, epochs" in text


def test_runs_csv_name_and_full_precision_match_json(tmp_path: Path) -> None:
    root = _mixed(tmp_path)
    runner = CliRunner()
    as_csv = runner.invoke(app, ["runs", str(root / "s"), "--format", "csv"])
    as_json = runner.invoke(app, ["runs", str(root / "s"), "--format", "json"])
    assert as_csv.exit_code == 0 and as_json.exit_code == 0, as_csv.output
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    data = json.loads(as_json.stdout)["runs"]
    assert [r["name"] for r in table] == [r["name"] for r in data] == ["trial-0001", "trial-0000"]
    assert [r["path"] for r in table] == [r["path"] for r in data]
    by_name = {r["name"]: r for r in table}
    assert float(by_name["trial-0000"]["params.compile.optimizer.learning_rate"]) == 0.0019583717
    assert float(by_name["trial-0000"]["params.nodes.drop.rate"]) == 0.123456789
    assert by_name["trial-0000"]["monitor"] == "val_accuracy" and by_name["trial-0000"]["mode"] == "max"


# -- launch: back-end start-up lines hidden, as `train` hides them (item 12) ----------------------------------
NOISY_WORKER = '''#!/bin/sh
echo "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR" >&2
echo "I0000 00:00:1796486772.216179   21821 port.cc:153] oneDNN custom operations are on." >&2
echo "W0000 00:00:1796486772.217135   21821 cudart_stub.cc:31] Could not find cuda drivers" >&2
echo "[Gloo] Rank 0 is connected to 1 peer ranks. Expected number of connected peer ranks is : 1"
echo "E0000 00:00:1796486772.217135   21821 real.cc:1] a real error stays"
echo "epoch 1/1: loss 1.0"
'''


def test_launch_hides_backend_start_up_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphspec.run import launch

    worker = tmp_path / "python"
    worker.write_text(NOISY_WORKER)
    worker.chmod(0o755)
    spec = tmp_path / "tiny.yaml"
    spec.write_text("graphspec: 1\nname: t\ninputs:\n  x: {shape: [4]}\nnodes:\n  y: {type: Dense, units: 1}\n")
    monkeypatch.delenv("GRAPHSPEC_TF_LOGS", raising=False)
    out = io.StringIO()
    assert launch.launch(["train", str(spec)], workers=2, out=out, python=str(worker)) == 0
    lines = out.getvalue().splitlines()
    assert sorted(lines) == ["[0] E0000 00:00:1796486772.217135   21821 real.cc:1] a real error stays",
                             "[0] epoch 1/1: loss 1.0",
                             "[1] E0000 00:00:1796486772.217135   21821 real.cc:1] a real error stays",
                             "[1] epoch 1/1: loss 1.0"], lines
    monkeypatch.setenv("GRAPHSPEC_TF_LOGS", "1")
    out = io.StringIO()
    assert launch.launch(["train", str(spec)], workers=1, out=out, python=str(worker)) == 0
    assert "oneDNN" in out.getvalue()


# -- diff ----------------------------------------------------------------------------------------------------
BASE = """\
graphspec: 1
name: net
inputs:
  x: {shape: [8, 8, 3]}
nodes:
  c: {type: Conv2D, filters: 4, kernel_size: 3, padding: same}
  p: {type: MaxPooling2D%s}
  f: {type: Flatten}
  d: {type: Dense, units: 2%s}
"""


def _diff(tmp_path: Path, a: str, b: str, *args: str) -> Any:
    (tmp_path / "a.yaml").write_text(a)
    (tmp_path / "b.yaml").write_text(b)
    return CliRunner().invoke(app, ["diff", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), *args])


def test_diff_defaults_written_out_are_no_change(tmp_path: Path) -> None:
    result = _diff(tmp_path, BASE % (", pool_size: 2", ", use_bias: true"), BASE % ("", ""))
    assert result.exit_code == 0, result.output
    written = BASE % (", pool_size: [2, 2], strides: [2, 2]", ", use_bias: true, kernel_initializer: glorot_uniform")
    result = _diff(tmp_path, BASE % ("", ""), written.replace("kernel_size: 3", "kernel_size: [3, 3]"))
    assert result.exit_code == 0, result.output
    result = _diff(tmp_path, BASE % ("", ""), BASE % (", pool_size: 3", ", use_bias: false"))
    assert result.exit_code == 1
    assert "nodes.p.pool_size" in result.output and "nodes.d.use_bias" in result.output


@pytest.mark.keras
def test_diff_a_spec_equals_its_own_import(keras_clean: Any, tmp_path: Path) -> None:
    from graphspec import compiler, importer

    spec = tmp_path / "a.yaml"
    spec.write_text(BASE % (", pool_size: 2, strides: 2", ", use_bias: true, activation: softmax"))
    model = compiler.build(compiler.check(spec))["net"]
    (tmp_path / "b.yaml").write_text(importer.import_model(model, verify=False).text)
    result = CliRunner().invoke(app, ["diff", str(spec), str(tmp_path / "b.yaml")])
    assert result.exit_code == 0, result.output


CSV_SPEC = """\
graphspec: 1
name: tab
inputs:
  x: {shape: [2]}
nodes:
  y: {type: Dense, units: 1}
compile: {optimizer: adam, loss: mse}
data:
  source: {kind: csv, train: data/train.csv, test: ./data/../data/test.csv}
  inputs: {x: [a, b]}
  outputs: {y: [c]}
  batch_size: 2
"""


def test_diff_a_spec_against_its_own_run_folder_is_equal(tmp_path: Path) -> None:
    from graphspec.run import folders

    (tmp_path / "data").mkdir()
    for split in ("train", "test"):
        (tmp_path / "data" / f"{split}.csv").write_text("a,b,c\n1,2,3\n4,5,6\n")
    spec = tmp_path / "tab.yaml"
    spec.write_text(CSV_SPEC)
    run = tmp_path / "runs" / "tab" / "20250101-000000"
    run.mkdir(parents=True)
    (run / "spec.yaml").write_text(folders.resolved_spec_text(spec, [], {"train.seed": 1}))
    assert str(tmp_path / "data" / "train.csv") in (run / "spec.yaml").read_text()  # absolute there
    result = CliRunner().invoke(app, ["diff", str(spec), str(run)])
    assert "data.source" not in result.output, result.output
    (tmp_path / "other.csv").write_text("a,b,c\n1,2,3\n")
    spec.write_text(CSV_SPEC.replace("data/train.csv", "other.csv"))
    result = CliRunner().invoke(app, ["diff", str(spec), str(run)])
    assert result.exit_code == 1 and "data.source.train" in result.output, result.output


# -- save takes a run folder (item 11) ------------------------------------------------------------------------
@pytest.mark.keras
def test_save_takes_a_run_folder_and_its_best_weights(keras_clean: Any, tmp_path: Path) -> None:
    import numpy as np

    from graphspec import compiler

    spec = tmp_path / "a.yaml"
    spec.write_text(BASE % ("", ""))
    run = tmp_path / "runs" / "net" / "20250101-000000"
    run.mkdir(parents=True)
    (run / "spec.yaml").write_text(spec.read_text())
    (run / "state.json").write_text(json.dumps({"status": "completed", "model": "net"}))
    trained = compiler.build(compiler.check(spec))["net"]
    for w in trained.weights:
        w.assign(np.full(w.shape, 0.25, dtype="float32"))
    trained.save(run / "best.keras")
    out = tmp_path / "m.keras"
    result = CliRunner().invoke(app, ["save", str(run), "-o", str(out)])
    assert result.exit_code == 0, result.output
    saved = keras_clean.saving.load_model(out, compile=False)
    assert all(np.allclose(np.asarray(w), 0.25) for w in saved.weights)


# -- a suggestion is never built from another misspelt name (item 6) ------------------------------------------
TYPO = """\
graphspec: 1
name: t
train:
  epochs: 1
  checkpoint: {monitor: val_acc}
inputs:
  x: {shape: [4]}
nodes:
  y: {type: Dense, units: 3, activation: softmax}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
  metrics: [acuracy]
data:
  source: {kind: synthetic, samples: 64}
  validation_split: 0.2
  batch_size: 8
"""


def test_monitor_hint_is_not_built_from_a_misspelt_metric(tmp_path: Path) -> None:
    from graphspec import compiler

    spec = tmp_path / "t.yaml"
    spec.write_text(TYPO)
    diags = compiler.check(spec).diagnostics.sorted()
    codes = [d.code for d in diags if d.is_error]
    assert sorted(codes) == ["GS117", "GS412"], [str(d) for d in diags]
    gs412 = diags[codes.index("GS412")]
    assert "acuracy" not in (gs412.hint or "").replace("`acuracy`", "") and "val_acuracy" not in str(gs412.hint)
    assert "compile.metrics" in (gs412.hint or "") and "`accuracy`" in (gs412.hint or "")
    assert "val_acuracy" not in gs412.message


# -- plot --diff boxes: the node's name and its values (item 4) -----------------------------------------------
def test_plot_diff_boxes_show_the_name_and_values(tmp_path: Path) -> None:
    a = BASE % ("", "")
    b = a.replace("filters: 4", "filters: 8")
    (tmp_path / "a.yaml").write_text(a)
    (tmp_path / "b.yaml").write_text(b)
    out = tmp_path / "d.dot"
    result = CliRunner().invoke(app, ["plot", "--diff", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"),
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    dot = out.read_text()
    assert "<b>c</b> (Conv2D)" in dot and "filters: 4 → 8" in dot, dot


# -- import keeps a .keras file's compile settings (item 13) --------------------------------------------------
@pytest.mark.keras
def test_import_of_a_keras_file_writes_its_compile_settings(keras_clean: Any, tmp_path: Path) -> None:
    from graphspec import compiler, importer

    keras = keras_clean
    x = keras.Input((4,), name="x")
    model = keras.Model(x, keras.layers.Dense(3, name="d")(x), name="clf")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=2)])
    model.save(tmp_path / "clf.keras")
    text = importer.import_source(str(tmp_path / "clf.keras")).text
    assert "compile:\n  optimizer: {type: Adam, learning_rate: 0.01}\n" in text, text
    assert "  loss: {type: SparseCategoricalCrossentropy, from_logits: true}\n" in text
    assert "  metrics: [accuracy, {type: SparseTopKCategoricalAccuracy, k: 2}]\n" in text
    (tmp_path / "clf.yaml").write_text(text)
    built = compiler.build(compiler.check(tmp_path / "clf.yaml"))["clf"]
    assert built.get_compile_config()["optimizer"]["class_name"] == "Adam"
    assert built.get_compile_config()["loss"]["config"]["from_logits"] is True

    def gap(a: Any, b: Any) -> Any:
        return a - b

    model.compile(optimizer="adam", loss=gap)  # a custom loss: no compile section, a note why
    model.save(tmp_path / "custom.keras")
    text = importer.import_source(str(tmp_path / "custom.keras")).text
    assert "compile:" not in text and "# compile settings not written: loss" in text, text


# -- variables and block parameters: resolve --explain traces them, diff reports them as the cause (2, 5) ------
VBASE = """\
graphspec: 1
name: net
vars:
  width: 16
  depth: 2
inputs:
  x: {shape: [8]}
blocks:
  unit:
    inputs: h
    params: {filters: null}
    nodes:
      d: {type: Dense, units: $filters}
nodes:
  stem: {type: Dense, units: $width}
  body: {block: unit, filters: "${width + 8}", repeat: $depth}
  head: {type: Dense, units: 2}
"""


def _variants(tmp_path: Path) -> tuple[Path, Path, Path]:
    base, wide, deep = tmp_path / "base.yaml", tmp_path / "wide.yaml", tmp_path / "deep.yaml"
    base.write_text(VBASE)
    wide.write_text("graphspec: 1\nextends: base.yaml\nname: net\nvars:\n  width: 32\n")
    deep.write_text("graphspec: 1\nextends: base.yaml\nname: net\nvars:\n  depth: 4\n")
    return base, wide, deep


def test_explain_traces_a_block_parameter_back_to_the_variable(tmp_path: Path) -> None:
    _, wide, _ = _variants(tmp_path)
    result = CliRunner().invoke(app, ["resolve", str(wide), "--explain", "nodes.body_1_d.units"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "nodes.body_1_d.units = 40"
    assert f"  parameter filters of `body` (block `unit`) = '${{width + 8}}', set at {tmp_path}/base.yaml:16:32" in lines
    assert f"  variable width = 32, set at {wide}:5:10" in lines
    assert f"    replacing 16 from {tmp_path}/base.yaml:4:10" in lines


def test_diff_reports_the_variable_first_with_its_effects_under_it(tmp_path: Path) -> None:
    base, wide, deep = _variants(tmp_path)
    result = CliRunner().invoke(app, ["diff", str(base), str(wide)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith(("changed", "added", "removed")))
    assert lines[first] == f"changed  vars.width: 16 -> 32  ({base}:4:10 -> {wide}:5:10)"
    assert f"  changed  nodes.stem.units: 16 -> 32  ({base}:4:10 -> {wide}:5:10)" in lines
    assert f"  changed  nodes.body_1_d.units: 24 -> 40  ({base}:4:10 -> {wide}:5:10)" in lines
    data = json.loads(CliRunner().invoke(app, ["diff", str(base), str(wide), "-f", "json"]).stdout)
    assert data["changes"][0]["path"] == "vars.width"
    assert {c["path"] for c in data["changes"] if c.get("cause") == "vars.width"} == {
        "nodes.stem.units", "nodes.body_1_d.units", "nodes.body.units"}

    lines = CliRunner().invoke(app, ["diff", str(base), str(deep)]).stdout.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith(("changed", "added", "removed")))
    assert lines[first] == f"changed  vars.depth: 2 -> 4  ({base}:5:10 -> {deep}:5:10)"
    assert all(ln.startswith("  ") for ln in lines[first + 1:]), lines  # every node change under it
    assert len(lines[first + 1:]) == 3


# -- import: a list inside a slicing key (item 14) -------------------------------------------------------------
def test_a_list_in_a_key_is_refused_saying_keras_refuses_it_too() -> None:
    from graphspec.spec.indexing import BadKey, key_text

    assert key_text((slice(None), 0)) == "[:, 0]"
    with pytest.raises(BadKey, match=r"Keras cannot slice a symbolic tensor with a list.*op: take"):
        key_text((slice(None), [0, 2]))


@pytest.mark.keras
def test_keras_itself_cannot_slice_a_symbolic_tensor_with_a_list(keras_clean: Any) -> None:
    x = keras_clean.Input((4,))
    with pytest.raises(ValueError, match="Unsupported key type for array slice"):
        x[:, [0, 2]]  # noqa: B018  (the statement is the test)
    assert tuple(keras_clean.ops.take(x, [0, 2], axis=1).shape) == (None, 2)  # what the message suggests

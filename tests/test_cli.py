"""The core CLI: build, summary, save, schema, --version, python -m graphspec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphspec import __version__
from graphspec.cli.app import app

from .conftest import PLUGIN, SPECS

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"graphspec {__version__}"


def test_python_dash_m() -> None:
    proc = subprocess.run([sys.executable, "-m", "graphspec", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"graphspec {__version__}"


def test_help_does_not_import_tensorflow() -> None:
    code = ("import sys; from graphspec.cli.app import app\n"
            "try:\n    app(['--help'], prog_name='graphspec')\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
            "assert not bad, bad[:5]\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "build" in proc.stdout and "summary" in proc.stdout


def test_a_crash_of_graphspec_is_gs900_with_its_own_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in graphspec exits 3: CI and scripts tell it from a usage error (2) and from a spec's problems (1)."""
    from graphspec.spec import schema

    def broken() -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(schema, "json_schema", broken)
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 3, result.output
    assert "internal error [GS900]: graphspec crashed; this is a bug" in result.stderr
    assert "ZeroDivisionError: boom" in result.stderr
    assert runner.invoke(app, ["schema", "--no-such-option"]).exit_code == 2


def test_a_reader_that_leaves_ends_the_command_quietly(tmp_path: Path) -> None:
    """`graphspec predict RUN -i folder | head`: output written into a pipe whose reader left is not a crash
    (it was GS900 for predict's CSV). The command stops with 1, as Click stops one whose last output meets the
    closed pipe, and says nothing: no GS900, no traceback, no "Exception ignored" at exit."""
    code = ("import sys\nfrom graphspec.spec import schema\n"
            "schema.json_schema = lambda: {'x': 'y' * 10**6}  # more than a pipe holds: written while running\n"
            "from graphspec.cli.app import main\nmain()\n")
    with open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", code, "schema"], stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        proc.stdout.close()  # the reader leaves before a byte is read
        assert proc.wait(timeout=60) == 1
    assert (tmp_path / "stderr").read_text() == ""


def test_missing_file_is_a_located_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "error[GS001]" in result.output
    assert "Traceback" not in result.output


@pytest.mark.keras
def test_build_prints_one_line_per_model() -> None:
    result = runner.invoke(app, ["build", str(SPECS / "autoencoder.yaml")])
    assert result.exit_code == 0, result.output
    assert "encoder: 18,672 parameters" in result.stdout
    assert "autoencoder: 28,241 parameters" in result.stdout


@pytest.mark.keras
def test_build_with_plugin() -> None:
    result = runner.invoke(app, ["build", str(SPECS / "custom_layer.yaml"), "--plugin", str(PLUGIN)])
    assert result.exit_code == 0, result.output
    assert "custom_dense: 50 parameters" in result.stdout


def test_custom_layer_without_plugin_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # away from this repository's [tool.graphspec] plugins
    result = runner.invoke(app, ["build", str(SPECS / "custom_layer.yaml")])
    assert result.exit_code == 1
    assert "error[GS110]" in result.output
    assert "unknown layer type 'CustomDense'" in result.output


def test_project_plugins_make_the_custom_layer_spec_build() -> None:
    """This repository's pyproject.toml names the example plugin under [tool.graphspec]."""
    from graphspec.spec import plugins

    assert str(PLUGIN) in plugins.all_plugins(None)


def test_missing_plugin_is_reported(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", str(SPECS / "custom_layer.yaml"), "--plugin", str(tmp_path / "x.py")])
    assert result.exit_code == 1
    assert "GS601" in result.output


def test_plugin_from_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(f'[tool.graphspec]\nplugins = ["{PLUGIN}"]\n')
    monkeypatch.chdir(tmp_path)
    from graphspec.spec import plugins

    assert plugins.all_plugins(None) == [str(PLUGIN)]


def test_spec_alone_never_imports(tmp_path: Path) -> None:
    """A spec naming a module as a layer type imports nothing."""
    spec = tmp_path / "evil.yaml"
    spec.write_text("graphspec: 1\nname: e\ninputs: {x: [4]}\nnodes:\n  d: {type: antigravity.Fly}\n")
    code = ("import sys; from graphspec import compiler\n"
            f"r = compiler.check({str(spec)!r})\n"
            "assert not r.ok and r.diagnostics.errors[0].code == 'GS115'\n"
            "assert 'antigravity' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.keras
def test_summary_json_is_one_document() -> None:
    result = runner.invoke(app, ["summary", str(SPECS / "ticket_router.yaml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (model,) = doc["models"]
    assert model["name"] == "ticket_router"
    assert model["params"] == 1_392_097 and model["trainable_params"] == 1_392_097
    layers = {row["name"]: row for row in model["layers"]}
    assert layers["title_embedding"] == {"name": "title_embedding", "type": "Embedding",
                                         "output_shape": [None, None, 64], "params": 640_000, "macs": 0,
                                         "inputs": ["title"]}
    assert layers["features"]["inputs"] == ["title_features", "body_features", "tags"]
    # LSTMs over sequences of unknown length: their MACs, and so the model's, are unknown
    assert model["macs"] is None and layers["title_features"]["macs"] is None and layers["priority"]["macs"] == 172


@pytest.mark.keras
def test_summary_text_table() -> None:
    result = runner.invoke(app, ["summary", str(SPECS / "resnet.yaml")])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Model: toy_resnet" in text
    assert "block_2_output" in text and "Add" in text
    assert "Total params: 223,242" in text


@pytest.mark.keras
def test_summary_model_filter() -> None:
    result = runner.invoke(app, ["summary", str(SPECS / "autoencoder.yaml"), "-m", "encoder", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert [m["name"] for m in json.loads(result.stdout)["models"]] == ["encoder"]


def test_summary_bad_format() -> None:
    result = runner.invoke(app, ["summary", str(SPECS / "resnet.yaml"), "--format", "xml"])
    assert result.exit_code == 2


@pytest.mark.keras
def test_save_single_model_and_load(tmp_path: Path) -> None:
    from graphspec.build.backend import keras

    out = tmp_path / "m.keras"
    result = runner.invoke(app, ["save", str(SPECS / "mnist_mlp.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    model = keras.models.load_model(out)
    assert model.count_params() == 55_050
    assert type(model.optimizer).__name__ == "RMSprop"
    assert model(np.zeros((1, 784), "float32")).shape == (1, 10)


def test_save_several_models_needs_a_name(tmp_path: Path) -> None:
    result = runner.invoke(app, ["save", str(SPECS / "autoencoder.yaml"), "-o", str(tmp_path / "m.keras")])
    assert result.exit_code == 2
    assert "encoder" in result.output and "autoencoder" in result.output and "--model" in result.output
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.keras
def test_save_named_model_with_plugin(tmp_path: Path) -> None:
    out = tmp_path / "c.keras"
    result = runner.invoke(app, ["save", str(SPECS / "custom_layer.yaml"), "-o", str(out), "--plugin", str(PLUGIN)])
    assert result.exit_code == 0, result.output
    code = ("import importlib.util, sys, keras\n"
            f"spec = importlib.util.spec_from_file_location('custom_dense', {str(PLUGIN)!r})\n"
            "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
            f"m = keras.models.load_model({str(out)!r})\n"
            "assert type(m.layers[1]).__name__ == 'CustomDense', m.layers\n"
            "assert m.count_params() == 50\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_set_override_is_validated(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", str(SPECS / "mnist_mlp.yaml"), "--set", "nodes.dense_1.units=true"])
    assert result.exit_code == 1
    assert "--set #1 is `nodes.dense_1.units=true`" in result.output
    assert "GS112" in result.output
    # `yes` is a boolean in YAML 1.1 and text in YAML 1.2: refused as in a spec file.
    result = runner.invoke(app, ["build", str(SPECS / "mnist_mlp.yaml"), "--set", "nodes.dense_1.units=yes"])
    assert result.exit_code == 1
    assert "--set #1: error[GS600]" in result.output and "YAML 1.1" in result.output  # no boolean in YAML 1.2
    result = runner.invoke(app, ["build", str(SPECS / "mnist_mlp.yaml"), "--set", "nodes.dense_1.units=many"])
    assert result.exit_code == 1
    assert "--set #1: error[GS112]" in result.output and "--set #1 is `nodes.dense_1.units=many`" in result.output
    assert "GS112" in result.output


def test_schema_command_prints_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["title"] == "Spec"
    assert "nodes" in doc["properties"]


def test_build_without_keras_says_how_to_install_it() -> None:
    """On a lint-only install, commands that build models name the extra to install (exit 2).

    tests/test_lean_install.py checks every command in a real lean venv."""
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('tensorflow', 'keras', 'jax', 'torch'):\n"
            "            raise ImportError(f'No module named {name!r}')\n"
            "sys.meta_path.insert(0, Block())\n"
            "from graphspec.cli.app import app\n"
            f"app(['build', {str(SPECS / 'mnist_mlp.yaml')!r}], prog_name='graphspec')\n")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("error: `graphspec build` needs Keras and a backend (TensorFlow, JAX or PyTorch), "
                                   "which are not installed: pip install 'keras-graphspec[tensorflow]' (or [jax], "
                                   "[torch])")
    assert "Traceback" not in proc.stderr


@pytest.mark.keras
def test_fresh_instances_rebuild_the_layers_their_nodes_share(tmp_path: Path) -> None:
    spec = tmp_path / "fresh.yaml"
    spec.write_text(
        "graphspec: 1\nname: fr\ninputs:\n  a: [4]\n  member_in: [4]\n  x: [4]\nnodes:\n"
        "  emb: {type: Dense, units: 3, inputs: a}\n"
        "  used: {share: emb, inputs: member_in}\n"
        "  y1: {model: member, fresh: true, inputs: x}\n"
        "  y2: {model: member, fresh: true, inputs: x}\n"
        "  avg: {type: Average, inputs: [y1, y2]}\n"
        "models:\n  member: {inputs: member_in, outputs: used, submodel: true}\n"
        "  m: {inputs: x, outputs: avg}\n")
    result = runner.invoke(app, ["build", str(spec)])
    assert result.exit_code == 0, result.output
    assert "m: 30 parameters" in result.stdout  # two instances, each with its own Dense(4 -> 3)


@pytest.mark.keras
def test_a_submodel_called_only_fresh_is_not_built_once_more(tmp_path: Path) -> None:
    from graphspec import compiler
    from graphspec.build.backend import keras

    spec = tmp_path / "ens.yaml"
    spec.write_text(
        "graphspec: 1\nname: ens\ninputs:\n  member_in: [4]\n  x: [4]\nnodes:\n"
        "  dense: {type: Dense, units: 1, inputs: member_in}\n"
        "  y1: {model: member, fresh: true, inputs: x}\n"
        "  y2: {model: member, fresh: true, inputs: x}\n"
        "  avg: {type: Average, inputs: [y1, y2]}\n"
        "models:\n  member: {inputs: member_in, outputs: dense, submodel: true}\n  m: {inputs: x, outputs: avg}\n")
    created: list[str] = []
    real_init = keras.layers.Dense.__init__

    def counting_init(self: object, *args: object, **kwargs: object) -> None:
        created.append(str(kwargs.get("name")))
        real_init(self, *args, **kwargs)

    keras.layers.Dense.__init__ = counting_init  # type: ignore[method-assign]
    try:
        built = compiler.build(compiler.check(spec), compile=False)
    finally:
        keras.layers.Dense.__init__ = real_init  # type: ignore[method-assign]
    assert built["m"].count_params() == 10
    assert created == ["dense", "dense"]  # one Dense per instance, no template left unused

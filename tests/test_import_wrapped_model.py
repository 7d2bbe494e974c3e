"""TimeDistributed around a functional sub-model (issue 22, item 14): `layer: {model: NAME}` in a spec.

The hand-written Keras model and the spec build the same model (parameters, outputs for the same weights);
importing the Keras model writes that spec; `lint`, `summary` (static) and `diff` read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from graphspec import compiler
from graphspec.importer.assemble import import_model
from graphspec.cli.app import app

SPEC = """graphspec: 1
name: clips
inputs:
  clip: [5, 8, 8, 1]
  frame: [8, 8, 1]
nodes:
  flatten: {type: Flatten, inputs: frame}
  dense: {type: Dense, units: 4}
  per_frame: {type: TimeDistributed, layer: {model: frame_encoder}, inputs: clip}
models:
  frame_encoder: {inputs: frame, outputs: dense, submodel: true}
  clips: {inputs: clip, outputs: per_frame}
"""


def _hand_written(keras: Any) -> Any:
    layers = keras.layers
    frame = keras.Input((8, 8, 1), name="frame")
    encoder = keras.Model(frame, layers.Dense(4, name="dense")(layers.Flatten(name="flatten")(frame)),
                          name="frame_encoder")
    clip = keras.Input((5, 8, 8, 1), name="clip")
    return keras.Model(clip, layers.TimeDistributed(encoder, name="per_frame")(clip), name="clips")


def test_static_paths_read_it(tmp_path: Path) -> None:
    """lint (shapes, params), the language server's hover (MACs), summary and diff."""
    spec = tmp_path / "clips.yaml"
    spec.write_text(SPEC)
    checked = compiler.check(spec)
    assert checked.ok, [str(d) for d in checked.diagnostics]
    lint = CliRunner().invoke(app, ["lint", str(spec)])
    assert lint.exit_code == 0 and "model clips: 260 params" in lint.output, lint.output
    summary = CliRunner().invoke(app, ["summary", str(spec), "--model", "clips"])
    assert summary.exit_code == 0 and "(None, 5, 4)" in summary.output and "260" in summary.output, summary.output
    from graphspec.lsp import hover, snapshot

    snap = snapshot.analyse(spec.as_uri(), str(spec), 1, SPEC, snapshot.Settings())
    assert hover.node_lines(snap, "per_frame")[:4] == [
        "**per_frame** · `TimeDistributed`", "output: `(None, 5, 4)`", "params: 260 (260 trainable, 0 non-trainable)",
        "MACs: 1,280"]  # the encoder's Dense (64 x 4) once per step
    other = tmp_path / "other.yaml"
    other.write_text(SPEC.replace("units: 4", "units: 6"))
    diff = CliRunner().invoke(app, ["diff", str(spec), str(other)])
    assert diff.exit_code == 1 and "units" in diff.output and "Traceback" not in diff.output, diff.output


@pytest.mark.parametrize(("layer", "words"), [
    ("{model: frame_encoderr}", ["GS200", "names no model", "frame_encoder"]),
    ("{model: frame_encoder, units: 3}", ["GS1", "{model: NAME}"])])
def test_bad_wrapped_model_is_located(tmp_path: Path, layer: str, words: list[str]) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("{model: frame_encoder}", layer, 1))
    result = CliRunner().invoke(app, ["lint", str(spec)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "bad.yaml:9:" in result.output and all(w in result.output for w in words), result.output


def test_a_bidirectional_model_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("type: TimeDistributed", "type: Bidirectional"))
    result = CliRunner().invoke(app, ["lint", str(spec)])
    assert result.exit_code == 1 and "only TimeDistributed wraps a model" in result.output, result.output


@pytest.mark.keras
def test_spec_and_keras_model_round_trip(keras_clean: Any, tmp_path: Path) -> None:
    keras = keras_clean
    spec = tmp_path / "clips.yaml"
    spec.write_text(SPEC)
    hand = _hand_written(keras)
    built = compiler.build(compiler.check(spec), models=["clips"], compile=False)["clips"]
    assert built.count_params() == hand.count_params() == 260
    built.set_weights(hand.get_weights())
    x = np.random.default_rng(0).standard_normal((2, 5, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(built(x)), np.asarray(hand(x)), atol=1e-6)
    # import of the hand-written model (saved, as a user has it) writes the spec above, which builds it again
    hand.save(tmp_path / "clips.keras")
    result = CliRunner().invoke(app, ["import", str(tmp_path / "clips.keras"), "-o", str(tmp_path / "out.yaml")])
    assert result.exit_code == 0 and "round trip verified" in result.output, result.output
    text = (tmp_path / "out.yaml").read_text()
    assert "per_frame: {type: TimeDistributed, layer: {model: frame_encoder}, inputs: clip}" in text, text
    assert "frame_encoder: {inputs: frame, outputs: dense, submodel: true}" in text, text
    in_memory = import_model(hand)  # and straight from the object: the same nodes and models
    assert in_memory.data["nodes"]["per_frame"]["layer"] == {"model": "frame_encoder"}
    assert in_memory.verified

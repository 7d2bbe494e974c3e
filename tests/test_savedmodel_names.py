"""A SavedModel's serving signature names its outputs as the spec does (not output_0, ...), read back the way a
serving client does: tf.saved_model.load and the `serve` signature's structured outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app

pytestmark = pytest.mark.keras

TWO_HEADS = """\
graphspec: 1
name: two_heads
inputs:
  x: {shape: [6]}
nodes:
  hidden: {type: Dense, units: 8, activation: relu}
  logits: {type: Dense, units: 3}
  score: {type: Dense, units: 1, inputs: hidden}
"""


def test_serving_signature_outputs_are_the_spec_names(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    spec = tmp_path / "two_heads.yaml"
    spec.write_text(TWO_HEADS)
    runner = CliRunner()
    result = runner.invoke(app, ["save", str(spec), "-o", str(tmp_path / "w.keras")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["save", str(spec), "--weights", str(tmp_path / "w.keras"), "-o",
                                 str(tmp_path / "served")])
    assert result.exit_code == 0, result.output
    loaded = tf.saved_model.load(str(tmp_path / "served"))
    signature = loaded.signatures["serving_default"]
    assert sorted(signature.structured_outputs) == ["logits", "score"]
    x = np.random.default_rng(0).standard_normal((4, 6)).astype("float32")
    (name,) = signature.structured_input_signature[1]
    served = signature(**{name: tf.constant(x)})
    np.savez(tmp_path / "in.npz", x=x)
    result = runner.invoke(app, ["predict", str(spec), "--weights", str(tmp_path / "w.keras"), "-i",
                                 str(tmp_path / "in.npz"), "-o", str(tmp_path / "out.npz")])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "out.npz") as want:
        for key in ("logits", "score"):
            np.testing.assert_allclose(served[key].numpy(), want[key], atol=1e-5)

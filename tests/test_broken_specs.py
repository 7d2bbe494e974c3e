"""A table of broken specs, each beside the error code it must produce.

Each one goes through `graphspec build`; none may end in a traceback, and the
located diagnostic must carry the expected code.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app

from .conftest import PLUGIN

HEAD = "graphspec: 1\nname: t\n"
MLP = HEAD + "inputs:\n  x: [8]\n"

# (id, spec text, expected code, where the caret must point: (line, col) or None)
TABLE: list[tuple[str, str, str, tuple[int, int] | None]] = [
    ("yaml-syntax", "graphspec: 1\nname: [t\n", "GS002", None),
    ("yaml-tab", "graphspec: 1\n\tname: t\n", "GS002", None),
    ("duplicate-key", MLP + "nodes:\n  d: {type: Dense, units: 1}\n  d: {type: Dense, units: 2}\n", "GS004", (7, 3)),
    ("python-tag", HEAD + "nodes: !!python/object/apply:os.system [echo hi]\n", "GS005", (3, 8)),
    ("not-a-mapping", "- graphspec\n- 1\n", "GS006", (1, 1)),
    ("empty-file", "", "GS006", None),
    ("missing-field", "graphspec: 1\nnodes: {}\n", "GS100", None),
    ("unknown-field", MLP + "nodes:\n  d: {type: Dense, units: 1}\nmodles: {}\n", "GS101", (7, 1)),
    ("wrong-type", HEAD + "inputs:\n  x: {shape: 784}\nnodes:\n  d: {type: Dense, units: 1}\n", "GS102", (4, 14)),
    ("bad-dtype", HEAD + "inputs:\n  x: {shape: [3], dtype: float33}\nnodes:\n  d: {type: Dense, units: 1}\n",
     "GS103", None),
    ("version", "graphspec: 7\nname: t\nnodes: {}\n", "GS104", (1, 12)),
    ("two-kinds", MLP + "nodes:\n  d: {type: Dense, model: m, units: 1}\n", "GS105", (6, 3)),
    ("unknown-layer", MLP + "nodes:\n  d: {type: Dence, units: 1}\n", "GS110", (6, 13)),
    ("unknown-arg", MLP + "nodes:\n  d: {type: Dense, unit: 1}\n", "GS111", (6, 20)),
    ("units-yes", MLP + "nodes:\n  d: {type: Dense, units: yes}\n", "GS007", (6, 27)),
    ("units-true", MLP + "nodes:\n  d: {type: Dense, units: true}\n", "GS112", (6, 27)),
    ("base-60", MLP + "nodes:\n  d: {type: Dense, units: 1:3}\n", "GS007", (6, 27)),
    ("version-true", "graphspec: true\nname: t\nnodes: {}\n", "GS104", (1, 12)),
    ("units-string", MLP + "nodes:\n  d: {type: Dense, units: \"64\"}\n", "GS112", (6, 27)),
    ("rate-nan", MLP + "nodes:\n  d: {type: Dropout, rate: .nan}\n", "GS112", (6, 28)),
    ("missing-arg", MLP + "nodes:\n  d: {type: Dense}\n", "GS113", (6, 3)),
    ("unknown-activation", MLP + "nodes:\n  d: {type: Dense, units: 2, activation: rellu}\n", "GS114", None),
    ("lambda", MLP + "nodes:\n  d: {type: Lambda}\n", "GS115", (6, 13)),
    ("os-system-activation", MLP + "nodes:\n  d: {type: Dense, units: 2, activation: os.system}\n", "GS115", None),
    ("eval-initializer", MLP + "nodes:\n  d: {type: Dense, units: 2, kernel_initializer: builtins.eval}\n",
     "GS115", None),
    ("unknown-application", HEAD + "nodes:\n  v: {application: VGG91, weights: null}\n", "GS116", (4, 20)),
    ("unknown-optimizer", MLP + "nodes:\n  d: {type: Dense, units: 2}\ncompile: {optimizer: adamm, loss: mse}\n",
     "GS117", (7, 22)),
    ("get-file-loss", MLP + "nodes:\n  d: {type: Dense, units: 2}\ncompile: {loss: keras.utils.get_file}\n",
     "GS115", None),
    ("undefined-ref", MLP + "nodes:\n  d: {type: Dense, units: 2, inputs: y}\n", "GS200", (6, 38)),
    ("input-and-node", MLP + "nodes:\n  x: {type: Dense, units: 2}\n", "GS201", (6, 3)),
    ("cycle", MLP + "nodes:\n  a: {type: Dense, units: 2, inputs: b}\n  b: {type: Dense, units: 2, inputs: a}\n",
     "GS202", None),
    ("disconnected-output", HEAD + "inputs:\n  x: [4]\n  y: [4]\nnodes:\n  d: {type: Dense, units: 2, inputs: y}\n"
     "models:\n  m: {inputs: x, outputs: d}\n", "GS203", None),
    ("first-node-ambiguous", HEAD + "inputs:\n  x: [4]\n  y: [4]\nnodes:\n  d: {type: Dense, units: 2}\n",
     "GS205", (7, 3)),
    ("merge-one-input", MLP + "nodes:\n  a: {type: Add, inputs: [x]}\n", "GS206", None),
    ("intermediate-of-layer", MLP + "nodes:\n  d: {type: Dense, units: 2}\nmodels:\n  m: {outputs: d.kernel}\n",
     "GS207", None),
    ("shape-mismatch", HEAD + "inputs:\n  a: [32, 32, 64]\n  b: [10, 10, 64]\nnodes:\n"
     "  s: {type: Add, inputs: [a, b]}\n", "GS300", (7, 3)),
    # keras.ops.matmul has no static rule: only Keras finds the mismatch.
    ("keras-build-error", HEAD + "inputs:\n  a: [3, 4]\n  b: [5, 6]\nnodes:\n  m: {op: matmul, inputs: [a, b]}\n",
     "GS301", (7, 3)),
    ("application-input-too-small", HEAD + "nodes:\n  v: {application: VGG19, weights: null, "
     "input_shape: [10, 10, 3]}\n", "GS300", (4, 3)),
    # The plugin declares its shapes (graphspec_shapes), so lint sees the mismatch after it.
    ("shape-error-after-plugin", HEAD + "inputs:\n  x: [4]\nnodes:\n  c: {type: CustomDense, units: 10}\n"
     "  s: {type: Add, inputs: [c, x]}\n", "GS300", (7, 3)),
    ("loss-unknown-output", MLP + "nodes:\n  d: {type: Dense, units: 2}\ncompile: {loss: {dd: mse}}\n",
     "GS400", (7, 18)),
    ("loss-count", MLP + "nodes:\n  d: {type: Dense, units: 2}\ncompile: {loss: [mse, mae]}\n", "GS402", None),
    ("huge-units", MLP + "nodes:\n  d: {type: Dense, units: 1000000000000}\n", "GS500", None),
    ("huge-input", HEAD + "inputs:\n  x: [1000000000, 1000000000]\nnodes:\n  d: {type: Dense, units: 2}\n",
     "GS500", None),
    ("expectation", MLP + "nodes:\n  d: {type: Dense, units: 2}\nexpect: {params: 3}\n", "GS501", (7, 10)),
]


@pytest.mark.parametrize("case", TABLE, ids=[c[0] for c in TABLE])
def test_broken_spec(case: tuple[str, str, str, tuple[int, int] | None], tmp_path: Path) -> None:
    name, text, code, where = case
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text)
    result = CliRunner().invoke(app, ["build", str(spec), "--plugin", str(PLUGIN)])
    output = result.output
    assert "Traceback" not in output, output
    assert result.exit_code == 1, output
    assert f"error[{code}]" in output, output
    if where is not None:
        line, col = where
        assert f"{spec}:{line}:{col}: error[{code}]" in output, output


def test_all_errors_in_one_run(tmp_path: Path) -> None:
    spec = tmp_path / "many.yaml"
    spec.write_text(textwrap.dedent("""\
        graphspec: 1
        name: many
        inputs:
          x: [8]
        nodes:
          a: {type: Dence, units: 4}
          b: {type: Dense, units: "4"}
          c: {type: Dropout, rate: 2}
        """))
    result = CliRunner().invoke(app, ["build", str(spec)])
    out = result.stderr
    positions = [out.index(f"{spec}:{n}:") for n in (6, 7, 8)]
    assert positions == sorted(positions)
    assert "3 errors" in out
    assert "did you mean `Dense`?" in out

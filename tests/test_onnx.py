"""ONNX export, checked by the client a user runs it with: onnxruntime's outputs equal `graphspec predict`'s
(within 1e-4) for every example spec, on TensorFlow (this process) and JAX (one subprocess for all specs).

Per spec and model: `save -o w.keras` (its fresh weights), `save --weights w.keras -o m.onnx`, `predict
--weights w.keras --no-transforms`, then onnxruntime on the same inputs. The ImageNet-sized specs (ResNet-18,
-34 and -50, and VGG19's every-layer features: 143M parameters, a many-GiB ONNX conversion) run at a small
input size (`--set`), which exports the same layers; the full-size ResNet-50 costs ~15 s of conversion alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import ROOT, SPECS, Started, started_early

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytestmark = pytest.mark.keras

# spec -> --set values that shrink its input (same layers, smaller activations)
SMALL_INPUT = ["inputs.image.shape=[32, 32, 3]"]
EXAMPLES: dict[str, list[str]] = {
    "autoencoder.yaml": [], "autoencoder_nested.yaml": [], "custom_layer.yaml": [], "digits.yaml": [],
    "ensemble.yaml": [], "mnist_mlp.yaml": [], "resnet.yaml": [], "shared_embedding.yaml": [],
    "ticket_router.yaml": [],
}
# The ResNets and VGG19: the layer types of resnet.yaml (Conv2D, BatchNormalization, add, pooling) and of the
# Keras application, in graphs large enough that tf2onnx takes 30 s to 3 min each on a shared 2-core CI
# machine, even at 32x32: GRAPHSPEC_ONNX_ALL=1 runs them (all six passed on TensorFlow when this was written).
LARGE: dict[str, list[str]] = {
    "resnet_family/resnet18_cifar.yaml": [],
    "resnet_family/resnet18.yaml": SMALL_INPUT, "resnet_family/resnet34.yaml": SMALL_INPUT,
    "resnet_family/resnet50.yaml": SMALL_INPUT,
    "resnet50.yaml": [*SMALL_INPUT, "models.resnet50.expect.macs=null"],
    "vgg19_features.yaml": ["nodes.vgg19.input_shape=[32, 32, 3]"],
}
PLUGIN = str(SPECS / "plugins" / "custom_dense.py")


def _inputs(session: Any, seed: int) -> dict[str, Any]:
    """Random inputs for an onnxruntime session: batch 3, variable axes 5, integers in [0, 5)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for port in session.get_inputs():
        shape = [(3 if j == 0 else 5) if not isinstance(d, int) else d for j, d in enumerate(port.shape)]
        if "int" in port.type:
            feeds[port.name] = rng.integers(0, 5, size=shape).astype(np.int64 if "64" in port.type else np.int32)
        else:
            feeds[port.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def check_spec(spec: str, sets: list[str], folder: Path, invoke: Any) -> list[str]:
    """Export each model of `spec` to ONNX and compare onnxruntime with `graphspec predict`; what was compared."""
    import onnxruntime as ort

    from graphspec import compiler

    checked = compiler.check(SPECS / spec, sets=sets, plugins=[PLUGIN])
    assert checked.ok, [str(d) for d in checked.diagnostics.errors]
    names = [n for n, m in checked.spec.models.items() if not m.submodel] if checked.spec.models else [
        checked.spec.name]
    done = []
    common = [str(SPECS / spec), "--plugin", PLUGIN, *(a for s in sets for a in ("--set", s))]
    for k, name in enumerate(names):
        base = folder / f"{Path(spec).stem}-{name}"
        invoke(["save", *common, "--model", name, "-o", f"{base}.keras"])
        invoke(["save", *common, "--model", name, "--weights", f"{base}.keras", "-o", f"{base}.onnx"])
        session = ort.InferenceSession(f"{base}.onnx", providers=["CPUExecutionProvider"])
        feeds = _inputs(session, k)
        np.savez(f"{base}-in.npz", **feeds)
        invoke(["predict", *common, "--model", name, "--weights", f"{base}.keras", "--no-transforms",
                "-i", f"{base}-in.npz", "-o", f"{base}-out.npz"])
        got = list(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
        with np.load(f"{base}-out.npz") as want:
            assert len(got) == len(want.files), (spec, name)
            for (key, value), wanted in zip(got, want.files):  # both in the model's output order
                # the spec's output names (Keras numbers an application's input layer per process)
                assert key == wanted or key.startswith("input_layer"), (spec, key, wanted)
                np.testing.assert_allclose(value, want[wanted], atol=1e-4, rtol=1e-4, err_msg=f"{spec} {key}")
        done.append(f"{spec}:{name}")
    return done


def _cli_invoke(args: list[str]) -> None:
    from typer.testing import CliRunner

    from graphspec.cli.app import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output)


@pytest.mark.parametrize("spec", sorted(EXAMPLES))
def test_onnxruntime_equals_predict_on_tensorflow(spec: str, tmp_path: Path) -> None:
    pytest.importorskip("tf2onnx")
    assert check_spec(spec, EXAMPLES[spec], tmp_path, _cli_invoke)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("GRAPHSPEC_ONNX_ALL"), reason="large graphs: GRAPHSPEC_ONNX_ALL=1")
@pytest.mark.parametrize("spec", sorted(LARGE))
def test_onnxruntime_equals_predict_on_tensorflow_large(spec: str, tmp_path: Path) -> None:
    pytest.importorskip("tf2onnx")
    assert check_spec(spec, LARGE[spec], tmp_path, _cli_invoke)


def start_jax_side(folder: Path) -> subprocess.Popen[str] | None:
    """The JAX side: every example exported and compared in one process (tests.conftest.EARLY starts it with
    the session); None without jax2onnx (the test skips)."""
    import importlib.util

    if importlib.util.find_spec("jax2onnx") is None:
        return None
    # XLA's optimising passes are most of the cost here: ~270 tiny programs (weight initialisers, one predict
    # each) compiled once; unoptimised they compute the same values (66 s -> ~30 s on 2 shared cores).
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0 " \
            "--xla_llvm_disable_expensive_passes=true"
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "XLA_FLAGS": flags.strip()}
    with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
        return subprocess.Popen([sys.executable, "-m", "tests.test_onnx", str(folder)], cwd=ROOT, env=env,
                                stdout=out, stderr=err, text=True)


def test_onnxruntime_equals_predict_on_jax(early_processes: dict[str, Started], tmp_path: Path) -> None:
    pytest.importorskip("jax2onnx")
    proc = started_early(early_processes, "test_onnx.py::test_onnxruntime_equals_predict_on_jax", tmp_path,
                         start_jax_side).result()
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # The MaxPooling2D specs (autoencoder, autoencoder_nested, digits, resnet) pass through
    # graphspec.run.onnx_fixups: jax2onnx writes a MaxPool onnxruntime cannot run.
    assert report["refused"] == {}, report["refused"]
    assert {c.split(":")[0] for c in report["equal"]} == set(EXAMPLES), report


def _jax2onnx_chain(shape: tuple[int, ...], kernel: list[int], strides: list[int], pads: list[int]) -> Any:
    """The graph jax2onnx 0.17 writes for `lax.reduce_window_max` over an input of `shape` (batch axis free)."""
    from onnx import TensorProto, helper, numpy_helper

    def axes(name: str, values: list[int]) -> Any:
        return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)

    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": strides}
    if any(pads):
        attrs["pads"] = pads
    nodes = [helper.make_node("Unsqueeze", ["x", "a0"], ["u0"]), helper.make_node("Unsqueeze", ["u0", "a1"], ["u1"]),
             helper.make_node("MaxPool", ["u1"], ["p"], name="pool", **attrs),
             helper.make_node("Squeeze", ["p", "a01"], ["y"])]
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *shape[1:]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * len(shape))],
        [axes("a0", [0]), axes("a1", [1]), axes("a01", [0, 1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("case", ["2d", "2d-same", "3d"])
def test_the_jax2onnx_maxpool_fixup_runs_in_onnxruntime_with_the_same_values(case: str) -> None:
    """No backend: the chain as jax2onnx writes it fails in onnxruntime; rewritten, it runs and equals numpy."""
    import onnx
    import onnxruntime as ort

    from graphspec.run.onnx_fixups import fix_maxpool_rank

    shape, kernel, strides, pads = {
        "2d": ((2, 6, 6, 3), [1, 2, 2, 1], [1, 2, 2, 1], [0] * 8),
        "2d-same": ((2, 5, 5, 3), [1, 3, 3, 1], [1, 1, 1, 1], [0, 1, 1, 0, 0, 1, 1, 0]),
        "3d": ((1, 4, 4, 4, 2), [1, 2, 2, 2, 1], [1, 2, 2, 2, 1], [0] * 10)}[case]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    proto = _jax2onnx_chain(shape, kernel, strides, pads)
    with pytest.raises(Exception, match="Unsupported pooling size"):  # what jax2onnx's file does in onnxruntime
        ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert fix_maxpool_rank(proto) == 1
    onnx.checker.check_model(proto, full_check=True)
    assert [n.op_type for n in proto.graph.node] == ["Transpose", "MaxPool", "Transpose"]
    assert [i.name for i in proto.graph.initializer] == []  # the Unsqueeze/Squeeze axes went with their nodes
    got = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    rank = len(shape)  # numpy's max pool: pad with -inf, then take each window's maximum
    padded = np.pad(x, [(pads[a], pads[a + rank]) for a in range(rank)], constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel)[tuple(slice(None, None, s) for s in strides)]
    np.testing.assert_array_equal(got, windows.max(axis=tuple(range(rank, 2 * rank))))


@pytest.mark.parametrize("case", ["every-axis", "1d"])
def test_the_maxpool_fixup_leaves_what_it_need_not_or_cannot_rewrite(case: str) -> None:
    """A window over every axis (no batch and channel axes to keep), and a MaxPooling1D's chain (3 axes, which
    onnxruntime runs), stay as the converter wrote them."""
    from graphspec.run.onnx_fixups import fix_maxpool_rank

    proto = {"every-axis": lambda: _jax2onnx_chain((2, 4, 4, 4), [2, 2, 2, 2], [2, 2, 2, 2], [0] * 8),
             "1d": lambda: _jax2onnx_chain((2, 7, 4), [1, 3, 1], [1, 2, 1], [0] * 6)}[case]()
    before = proto.SerializeToString()
    assert fix_maxpool_rank(proto) == 0 and proto.SerializeToString() == before


def test_a_model_keras_cannot_export_is_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphspec.cli.app import app

    pytest.importorskip("tf2onnx")
    spec = tmp_path / "strings.yaml"
    spec.write_text("graphspec: 1\nname: strings\ninputs:\n  text: {shape: [1], dtype: string}\nnodes:\n"
                    "  lookup: {type: StringLookup, vocabulary: [a, b]}\n")
    result = CliRunner().invoke(app, ["save", str(spec), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip() and "importing plugins" not in line]
    assert "error[GS604]: Keras cannot export this model to ONNX on the tensorflow backend" in lines[0], lines
    assert "Traceback" not in result.output and not (tmp_path / "m.onnx").exists()


if __name__ == "__main__":  # the JAX side: every example in this one process
    def _jax_invoke(args: list[str]) -> None:
        from typer.testing import CliRunner

        from graphspec.cli.app import app

        result = CliRunner().invoke(app, [*args, "--backend", "jax"])
        assert result.exit_code == 0, (args, result.output)

    out = Path(sys.argv[1])
    report: dict[str, Any] = {"equal": [], "refused": {}}
    for spec, sets in sorted(EXAMPLES.items()):
        try:
            report["equal"] += check_spec(spec, sets, out, _jax_invoke)
        except Exception as exc:  # onnxruntime refusing what jax2onnx wrote: reported, judged by the test
            report["refused"][spec] = f"{type(exc).__name__}: {exc}"[-700:]  # the end holds graphspec's error
    print(json.dumps(report))

"""`graphspec plot`: DOT text for every example spec, rendering with Graphviz, and no TensorFlow."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from graphspec import compiler
from graphspec.cli import plot as cli_plot
from graphspec.analysis import drawing
from graphspec.render import dot
from graphspec.cli.app import app

from .conftest import PLUGIN, ROOT, SPECS

HAVE_DOT = shutil.which("dot") is not None
needs_graphviz = pytest.mark.skipif(
    not HAVE_DOT, reason="Graphviz's `dot` is not installed (apt-get install graphviz); .ci/run installs it")

NODE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" \[label=<(.*)>\];$', re.M)
EDGE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)";$', re.M)
CLUSTER = re.compile(r'^\s*subgraph "cluster_((?:[^"\\]|\\.)*)" \{\n\s*label="((?:[^"\\]|\\.)*)"', re.M)


def model_dot(graph: Any, analysis: Any, model: str, options: dot.Options) -> str:
    """What `graphspec plot` writes for one model."""
    return dot.drawing_dot(drawing.model_drawing(graph, analysis, model, expand_nested=options.expand_nested), options)


def checked(name: str) -> Any:
    result = compiler.check(SPECS / name, plugins=[str(PLUGIN)])
    assert result.ok, [str(d.message) for d in result.diagnostics.errors]
    return result


def spec_models() -> list[tuple[str, str]]:
    out = []
    for path in sorted(SPECS.glob("*.yaml")):
        result = checked(path.name)
        out.extend((path.name, m.name) for m in result.graph.public_models())
    return out


def parse_dot(text: str) -> tuple[dict[str, str], set[tuple[str, str]], dict[str, str]]:
    nodes = {m.group(1): m.group(2) for m in NODE.finditer(text)}
    edges = {(m.group(1), m.group(2)) for m in EDGE.finditer(text)}
    clusters = {m.group(1): m.group(2) for m in CLUSTER.finditer(text)}
    return nodes, edges, clusters


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["plot", *args])


# -- DOT text -------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "model"), spec_models())
def test_dot_has_every_node_and_edge(spec: str, model: str) -> None:
    result = checked(spec)
    text = model_dot(result.graph, result.analysis, model, dot.Options(show_names=True))
    nodes, edges, clusters = parse_dot(text)
    m = result.graph.models[model]
    assert set(nodes) == set(m.nodes)
    assert not clusters
    for name in m.nodes:
        node = result.graph.nodes[name]
        assert f"<b>{name}</b> ({drawing.node_type(result.graph, node)})" in nodes[name]
        for ref in node.inputs:
            assert (ref.node, name) in edges
    assert len(edges) == len({(r.node, n) for n in m.nodes for r in result.graph.nodes[n].inputs})
    assert text.startswith(f'digraph "{model}" {{') and text.rstrip().endswith("}")


@pytest.mark.parametrize(("spec", "model"), spec_models())
def test_dot_shapes_match_static_inference(spec: str, model: str) -> None:
    result = checked(spec)
    text = model_dot(result.graph, result.analysis, model, dot.Options(show_shapes=True))
    nodes, _, _ = parse_dot(text)
    for name, label in nodes.items():
        info = result.analysis.nodes[name]
        node = result.graph.nodes[name]
        outs = list(info.outputs) if info.outputs is not None else [None]
        assert f"Output shape: <b>{dot.shapes_text(outs)}</b>" in label
        assert ("Input shape:" in label) == (node.kind != "input")
        assert f"<b>{name}</b>" not in label or node.layer_type == name  # names only with --show-names


def test_dot_shapes_examples() -> None:
    result = checked("mnist_mlp.yaml")
    text = model_dot(result.graph, result.analysis, "mnist_model", dot.Options(show_shapes=True))
    nodes, _, _ = parse_dot(text)
    assert "Output shape: <b>(None, 784)</b>" in nodes["img"]
    assert "Input shape: <b>(None, 784)</b>" in nodes["dense_1"]
    assert "Output shape: <b>(None, 64)</b>" in nodes["dense_1"]
    assert "Output shape: <b>(None, 10)</b>" in nodes["predictions"]
    router = checked("ticket_router.yaml")
    text = model_dot(router.graph, router.analysis, "ticket_router", dot.Options(show_shapes=True))
    nodes, _, _ = parse_dot(text)
    assert "Input shape: <b>[(None, 128), (None, 32), (None, 12)]</b>" in nodes["features"]
    assert "Output shape: <b>(None, None)</b>" in nodes["title"]


def test_expand_nested_draws_clusters() -> None:
    result = checked("autoencoder_nested.yaml")
    graph = result.graph
    plain = model_dot(graph, result.analysis, "autoencoder", dot.Options(show_names=True))
    nodes, edges, clusters = parse_dot(plain)
    assert set(nodes) == {"img", "encoded", "decoded"} and not clusters
    assert "<b>encoded</b> (encoder)" in nodes["encoded"]
    assert edges == {("img", "encoded"), ("encoded", "decoded")}

    text = model_dot(graph, result.analysis, "autoencoder", dot.Options(expand_nested=True, show_names=True))
    nodes, edges, clusters = parse_dot(text)
    assert clusters == {"encoded": "encoded (encoder)", "decoded": "decoded (decoder)"}
    assert set(nodes) == {"img"} | {f"encoded/{n}" for n in graph.models["encoder"].nodes} | {
        f"decoded/{n}" for n in graph.models["decoder"].nodes}
    assert ("img", "encoded/original_img") in edges
    assert ("encoded/encoder_output", "decoded/encoded_img") in edges
    assert ("decoded/deconv_3", "decoded/decoder_output") in edges
    # every box inside a cluster is declared inside its subgraph block
    block = text[text.index('subgraph "cluster_encoded"'):text.index('subgraph "cluster_decoded"')]
    assert all(f'"encoded/{n}"' in block for n in graph.models["encoder"].nodes)


def test_expand_nested_fresh_copies_are_separate_clusters() -> None:
    result = checked("ensemble.yaml")
    text = model_dot(result.graph, result.analysis, "ensemble", dot.Options(expand_nested=True))
    nodes, edges, clusters = parse_dot(text)
    assert set(clusters) == {"y1", "y2", "y3"}
    for y in ("y1", "y2", "y3"):
        assert {f"{y}/member_input", f"{y}/dense"} <= set(nodes)
        assert ("x", f"{y}/member_input") in edges
        assert (f"{y}/dense", "outputs") in edges


def test_blocks_spec_plots_every_expanded_node() -> None:
    result = checked("resnet50.yaml")
    text = model_dot(result.graph, result.analysis, "resnet50", dot.Options(show_shapes=True))
    nodes, edges, _ = parse_dot(text)
    assert len(nodes) == 177
    assert ("conv2_first_bn_0", "conv2_first_add") in edges and ("conv2_first_bn_3", "conv2_first_add") in edges
    assert "Output shape: <b>(None, 7, 7, 2048)</b>" in nodes["conv5"]
    assert "Output shape: <b>(None, 1000)</b>" in nodes["predictions"]


def test_rankdir_and_dpi_in_dot() -> None:
    result = checked("mnist_mlp.yaml")
    text = model_dot(result.graph, result.analysis, "mnist_model", dot.Options(rankdir="LR", dpi=72))
    assert 'rankdir="LR"' in text and "dpi=72" in text


def test_escaping() -> None:
    assert dot.quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert dot.html('<b> & "x"') == "&lt;b&gt; &amp; &quot;x&quot;"
    assert dot.shape_text((None, 3)) == "(None, None, 3)" and dot.shape_text(None) == "?"


@needs_graphviz
@pytest.mark.parametrize(("spec", "model"), spec_models())
def test_dot_text_is_valid_graphviz(spec: str, model: str) -> None:
    result = checked(spec)
    for options in (dot.Options(), dot.Options(show_shapes=True, show_names=True, expand_nested=True)):
        text = model_dot(result.graph, result.analysis, model, options)
        proc = subprocess.run(["dot", "-Tcanon"], input=text, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr


# -- the command ------------------------------------------------------------------------


def test_cli_writes_dot(tmp_path: Path) -> None:
    target = tmp_path / "out" / "mlp.dot"
    r = run(str(SPECS / "mnist_mlp.yaml"), "-o", str(target), "--show-shapes", "--show-names", "--rankdir", "lr")
    assert r.exit_code == 0, r.output
    assert f"plotted mnist_model to {target}" in r.output
    nodes, edges, _ = parse_dot(target.read_text())
    assert set(nodes) == {"img", "dense_1", "dense_2", "predictions"}
    assert ("dense_2", "predictions") in edges
    assert 'rankdir="LR"' in target.read_text()
    assert not list(target.parent.glob(".*tmp"))  # written atomically, nothing left behind


def test_cli_default_output_is_model_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_plot.shutil, "which", lambda name: None)
    r = run(str(SPECS / "mnist_mlp.yaml"))
    assert r.exit_code == 1
    assert (tmp_path / "mnist_model.dot").is_file() and not (tmp_path / "mnist_model.png").exists()


@needs_graphviz
@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_cli_renders_with_graphviz(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"ae{suffix}"
    r = run(str(SPECS / "autoencoder_nested.yaml"), "-m", "autoencoder", "-o", str(target), "--expand-nested",
            "--show-shapes", "--dpi", "50")
    assert r.exit_code == 0, r.output
    data = target.read_bytes()
    magic = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF"}
    if suffix == ".svg":
        assert b"<svg" in data[:2000] and b"cluster_encoded" in data
    else:
        assert data.startswith(magic[suffix])
    assert not (tmp_path / "ae.dot").exists()


@needs_graphviz
def test_cli_png_dpi_changes_size(tmp_path: Path) -> None:
    sizes = []
    for dpi in (30, 90):
        target = tmp_path / f"m{dpi}.png"
        assert run(str(SPECS / "mnist_mlp.yaml"), "-o", str(target), "--dpi", str(dpi)).exit_code == 0
        header = target.read_bytes()[16:24]
        sizes.append(int.from_bytes(header[:4], "big"))
    assert sizes[1] > 2 * sizes[0]


def test_cli_without_graphviz_writes_dot_and_says_how_to_install(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_plot.shutil, "which", lambda name: None)
    target = tmp_path / "model.png"
    r = run(str(SPECS / "resnet.yaml"), "-o", str(target))
    assert r.exit_code == 1
    assert not target.exists()
    fallback = tmp_path / "model.dot"
    assert fallback.is_file() and "conv_1" in fallback.read_text()
    for text in ("Graphviz", "apt-get install graphviz", "brew install graphviz", "conda install graphviz",
                 str(fallback)):
        assert text in r.stderr


def test_cli_without_graphviz_on_path(tmp_path: Path) -> None:
    """The real lookup: a PATH without Graphviz (a subprocess, so nothing is patched)."""
    target = tmp_path / "m.svg"
    exe = Path(sys.executable).parent / "graphspec"
    if not exe.exists():
        pytest.skip("the graphspec script is not installed next to this Python")
    proc = subprocess.run([str(exe), "plot", str(SPECS / "mnist_mlp.yaml"), "-o", str(target)],
                          capture_output=True, text=True, env={"PATH": str(tmp_path), "NO_COLOR": "1"}, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "apt-get install graphviz" in proc.stderr
    assert (tmp_path / "m.dot").is_file() and not target.exists()


def test_cli_graphviz_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(cli_plot.shutil, "which", lambda name: str(fake))
    target = tmp_path / "m.png"
    r = run(str(SPECS / "mnist_mlp.yaml"), "-o", str(target))
    assert r.exit_code == 1
    assert "exit code 3" in r.stderr and "syntax error" in r.stderr
    assert not target.exists() and not list(tmp_path.glob(".m.png*"))


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "x.jpg"], "extension"),
    (["-o", "x"], "extension"),
    (["-o", "x.dot", "--dpi", "0"], "--dpi"),
    (["-o", "x.dot", "--dpi", "100000"], "--dpi"),
    (["-o", "x.dot", "--rankdir", "XY"], "--rankdir"),
    (["-o", "x.dot", "--model", "nope"], "no model named"),
])
def test_cli_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    args = [str(tmp_path / a) if a.startswith("x") else a for a in args]
    r = run(str(SPECS / "mnist_mlp.yaml"), *args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr


def test_cli_several_models_need_model(tmp_path: Path) -> None:
    r = run(str(SPECS / "autoencoder.yaml"), "-o", str(tmp_path / "a.dot"))
    assert r.exit_code == 2 and "--model" in r.stderr
    r = run(str(SPECS / "autoencoder.yaml"), "-o", str(tmp_path / "a.dot"), "--model", "encoder")
    assert r.exit_code == 0, r.output
    nodes, _, _ = parse_dot((tmp_path / "a.dot").read_text())
    assert "decoder_output" not in nodes and "encoder_output" in nodes


def test_cli_spec_errors_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("graphspec: 1\nname: bad\ninputs: {x: [4]}\nnodes:\n  d: {type: Dense, unit: 3}\n")
    r = run(str(bad), "-o", str(tmp_path / "bad.dot"))
    assert r.exit_code == 1
    assert "GS111" in r.stderr or "GS113" in r.stderr
    assert not (tmp_path / "bad.dot").exists()


def test_cli_set_and_plugin(tmp_path: Path) -> None:
    target = tmp_path / "c.dot"
    r = run(str(SPECS / "custom_layer.yaml"), "-o", str(target), "--plugin", str(PLUGIN), "--show-names")
    assert r.exit_code == 0, r.output
    assert "<b>custom</b> (CustomDense)" in target.read_text()
    r = run(str(SPECS / "mnist_mlp.yaml"), "-o", str(target), "--show-shapes", "--set", "nodes.dense_1.units=7",
            "--set", "models.mnist_model.expect=")
    assert r.exit_code == 0, r.output
    assert "Output shape: <b>(None, 7)</b>" in target.read_text()


def test_plot_never_imports_tensorflow(tmp_path: Path) -> None:
    outputs = [tmp_path / "a.dot"] + ([tmp_path / "a.png"] if HAVE_DOT else [])
    code = f"""
import sys
from typer.testing import CliRunner
from graphspec.cli.app import app
for out in {[str(o) for o in outputs]!r}:
    r = CliRunner().invoke(app, ["plot", {str(SPECS / "autoencoder_nested.yaml")!r}, "-m", "autoencoder",
                                 "-o", out, "--show-shapes", "--expand-nested"])
    assert r.exit_code == 0, r.output
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jax", "torch"))
assert not heavy, heavy[:10]
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(o.is_file() for o in outputs)


def test_cli_plot_module_imports_nothing_heavy() -> None:
    code = ("import sys, graphspec.cli.plot, graphspec.render.dot; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
            "assert not bad, bad[:5]")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr

"""`graphspec lsp` end to end: the real server over stdio, driven by pytest-lsp's client.

One server for the module (tests/lsp_client.py). Answers are compared with what the
pure stages say in-process (:func:`graphspec.compiler.check`, `lint`'s own
:func:`graphspec.cli.lint.lint_file`), which the rest of the suite checks against Keras.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pygls")

from lsprotocol import types as lsp  # noqa: E402

from graphspec import compiler  # noqa: E402
from graphspec.analysis import lint_policy  # noqa: E402
from graphspec.cli.lint import lint_file  # noqa: E402
from graphspec.lsp.hover import outputs_text  # noqa: E402
from graphspec.spec import plugins as plugins_mod  # noqa: E402
from graphspec.spec.source import loads  # noqa: E402
from tests.lsp_client import ROOT, Session, apply_edits  # noqa: E402
from tests.test_applications import DEFAULTS  # noqa: E402

SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs" / "resnet_family").glob("*.yaml"))
BAD = """graphspec: 1
name: bad
vars: {width: 8}
inputs:
  x: {shape: [4]}
nodes:
  d: {type: Dense2, units: $width}
  e: {type: Dense, unit: 3, inputs: d}
  f: {type: Dense, units: 2, inputs: e}
"""


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    s = Session()
    yield s
    errors = s.errors()
    s.close()
    assert errors == []


def lint_messages(path: Path, text: str) -> list[tuple[str, str]]:
    """`lint`'s diagnostics of a text, as (code, message with its hint) pairs."""
    config = lint_policy.load_config(path.parent)
    report = lint_file(str(path), plugins_mod.all_plugins(None), text=text, config=config)
    return [(d.code, d.message + (f"\nhint: {d.hint}" if d.hint else "")) for d in report.diagnostics]


def served(diags: list[lsp.Diagnostic]) -> list[tuple[str, str]]:
    return [(str(d.code), d.message) for d in diags]


def changes(action: lsp.CodeAction) -> dict[str, list[lsp.TextEdit]]:
    assert action.edit is not None and action.edit.changes is not None
    return {uri: list(edits) for uri, edits in action.edit.changes.items()}


def node_line(text: str, name: str) -> tuple[int, int]:
    """The 0-based line and column of a node's key."""
    src = loads(text)
    span = src.keys[("nodes", name)]
    return span.line - 1, span.col - 1


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_specs(session: Session, path: Path) -> None:
    """Diagnostics equal lint's; every node's hover and inlay hint give the static analysis' shapes and params."""
    text = path.read_text(encoding="utf-8")
    uri, diags = session.open(path)
    assert served(diags) == lint_messages(path, text)
    checked = compiler.check(path, plugins=plugins_mod.all_plugins(None))
    assert checked.analysis is not None
    hints = {h.position.line: h.label for h in session.inlay(uri, len(text.splitlines()))}
    nodes = loads(text).data.get("nodes") or {}
    hovered = 0
    for name, value in nodes.items():
        info = checked.analysis.nodes.get(name)
        if info is None or not isinstance(value, dict) or "block" in value:
            continue
        line, col = node_line(text, name)
        shown = session.hover(uri, line, col)
        assert shown is not None and f"output: `{outputs_text(info)}`" in shown
        if info.owner == name and info.params is not None:
            assert f"params: {info.params:,} ({info.trainable:,} trainable" in shown
        assert hints.get(line) == f"→ {outputs_text(info)}"
        hovered += 1
    assert hovered or not nodes
    for name, model in checked.analysis.models.items():
        if model.params is not None:
            assert f"{model.params:,} params" in hints.values(), name
    session.close_doc(uri)


@pytest.mark.parametrize("app", sorted(DEFAULTS))
def test_applications_hover_gives_keras_figures(session: Session, app: str) -> None:
    """An `application:` node's hover: Keras's parameter count (tests/test_applications.py) and the static shape."""
    from graphspec.analysis.shapes.applications import infer_application

    layers = infer_application(app, {}).layers or {}
    size = [d or 224 for d in layers["input_layer"][0]]
    text = (f"graphspec: 1\nname: {app.lower()}\ninputs:\n  image: {{shape: {list(size)}}}\nnodes:\n"
            f"  net: {{application: {app}}}\n")
    path = ROOT / "specs" / f"_lsp_{app}.yaml"  # never written: the document lives in the editor only
    uri, diags = session.open(path, text)
    assert served(diags) == lint_messages(path, text)
    info = compiler.check(path, text=text).analysis.nodes["net"]
    shown = session.hover(uri, 5, 3)
    assert shown is not None and f"params: {DEFAULTS[app]:,} (" in shown
    assert f"output: `{outputs_text(info)}`" in shown and "(None, 1000)" in shown
    session.close_doc(uri)


def test_file_with_errors_diagnostics_and_fixes(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    uri, diags = session.open(path, BAD)
    assert served(diags) == lint_messages(path, BAD)
    by_code = {d.code: d for d in diags}
    assert by_code["GS110"].code_description is not None
    assert by_code["GS110"].code_description.href.endswith("docs/codes.md#gs110")
    assert by_code["GS110"].range == lsp.Range(lsp.Position(6, 12), lsp.Position(6, 18))
    actions = session.code_actions(uri, by_code["GS110"].range, [by_code["GS110"], by_code["GS111"]])
    fixed = apply_edits(BAD, [e for a in actions for e in changes(a)[uri]])
    assert "type: Dense, units: $width" in fixed and "type: Dense, units: 3" in fixed
    # half-typed YAML: a syntax diagnostic, then the picture comes back
    broken = session.change(uri, [(lsp.Range(lsp.Position(8, 0), lsp.Position(8, 0)), "  g: {type: [\n")])
    assert [d.code for d in broken or []] == ["GS002"]
    again = session.change(uri, [(None, fixed)])
    assert again == [] and lint_messages(path, fixed) == []
    # variables: hover, completion after `$`
    assert "**$width** = `8`" in (session.hover(uri, 6, 30) or "")
    assert "width" in session.completion(uri, 6, 30)
    session.close_doc(uri)


def test_hover_argument_variable_model_and_instance(session: Session) -> None:
    path = ROOT / "specs" / "resnet_family" / "resnet18.yaml"
    text = path.read_text(encoding="utf-8")
    uri, _ = session.open(path)
    lines = text.splitlines()
    logits = next(i for i, line in enumerate(lines) if line.startswith("  logits:"))
    shown = session.hover(uri, logits, lines[logits].index("units"))
    assert shown is not None and "argument of `Dense`" in shown and "required" in shown
    # its meaning and type, from Keras's docstring and graphspec's check of it
    assert "dimensionality of the output space" in shown and "type: positive int · required" in shown
    assert "nodes.logits.units = 1000" in shown and "variable classes = 1000" in shown
    conv2 = next(i for i, line in enumerate(lines) if line.startswith("  conv2:"))
    shown = session.hover(uri, conv2, 3) or ""
    checked = compiler.check(path)
    expanded = [n for n in checked.graph.nodes if n.startswith("conv2_") or n == "conv2"]  # type: ignore[union-attr]
    assert "instance of block `stage`" in shown and f"expands to {len(expanded)} node(s)" in shown
    # a node of a block's definition: what it became in each instance
    proj = next(i for i, line in enumerate(lines) if line.startswith("      proj:"))
    shown = session.hover(uri, proj, 7) or ""
    info = checked.analysis.nodes["conv3_first_proj"]
    assert "in block `basic_down`" in shown and f"`conv3_first_proj` → `{outputs_text(info)}`" in shown
    img = next(i for i, line in enumerate(lines) if line.startswith("  image:"))
    assert any(h.position.line == img and h.label == "→ (None, 224, 224, 3)" for h in session.inlay(uri, 200))
    name_line = next(i for i, line in enumerate(lines) if line.startswith("name:"))
    shown = session.hover(uri, name_line, 7) or ""
    model = checked.analysis.models["resnet18"]
    assert f"params: {model.params:,}" in shown and f"MACs: {model.macs:,}" in shown
    session.close_doc(uri)


def test_a_wrapped_sub_model_hovers_as_the_model_and_jumps_to_it(session: Session, tmp_path: Path) -> None:
    """`{type: TimeDistributed, layer: {model: NAME}}`: hovering `model` or NAME shows that model (not
    "not an argument of TimeDistributed"), and go-to-definition lands on its entry under `models:`."""
    from tests.test_import_wrapped_model import SPEC

    uri, diags = session.open(tmp_path / "clips.yaml", SPEC)
    assert served(diags) == []
    lines = SPEC.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("  per_frame:"))
    for word in ("model", "frame_encoder"):
        shown = session.hover(uri, row, lines[row].index(word) + 1) or ""
        assert "`per_frame` applies model `frame_encoder` to every time step" in shown, shown
        assert "params: 260" in shown and "not an argument" not in shown
    target = session.definition(uri, row, lines[row].index("frame_encoder") + 1)
    entry = next(i for i, line in enumerate(lines) if line.startswith("  frame_encoder:"))
    assert target.uri == uri and target.range.start.line == entry
    session.close_doc(uri)


def test_variant_definition_references_rename(session: Session) -> None:
    family = ROOT / "specs" / "resnet_family"
    variant = (family / "resnet18_cifar.yaml").read_text(encoding="utf-8")
    uri, diags = session.open(family / "resnet18_cifar.yaml")
    assert served(diags) == lint_messages(family / "resnet18_cifar.yaml", variant)
    lines = variant.splitlines()
    ext = next(i for i, line in enumerate(lines) if line.startswith("extends:"))
    target = session.definition(uri, ext, 10)
    assert target.uri == (family / "resnet18.yaml").resolve().as_uri()
    conv = next(i for i, line in enumerate(lines) if line.startswith("  conv1_conv:"))
    base = session.definition(uri, conv, 3)
    base_lines = (family / "resnet18.yaml").read_text(encoding="utf-8").splitlines()
    # hover on a variant's argument: its value here, the base's value it replaced
    shown = session.hover(uri, conv, lines[conv].index("kernel_size") + 1) or ""
    assert "argument of `Conv2D`" in shown and "nodes.conv1_conv.kernel_size = 3" in shown
    assert "replacing 7 from" in shown and "resnet18.yaml" in shown
    assert base.uri == target.uri and base_lines[base.range.start.line].startswith("  conv1_conv:")
    # a value of the variant that is wrong where the base uses it: on the `extends:` line, the base's line related
    bad = variant.replace("vars: {classes: 10}", "vars: {classes: -3}")
    diags = session.change(uri, [(None, bad)]) or []
    assert served(diags) == lint_messages(family / "resnet18_cifar.yaml", bad)
    assert [d.code for d in diags] == ["GS112"] and diags[0].range.start.line == ext
    related = {(Path(r.location.uri).name, r.location.range.start.line) for r in diags[0].related_information or []}
    units = next(i for i, line in enumerate(base_lines) if "units: $classes" in line)
    assert ("resnet18.yaml", units) in related
    session.change(uri, [(None, variant)])
    # `$classes` in the base: every file of the family that sets or uses it
    base_uri, _ = session.open(family / "resnet18.yaml")
    logits = next(i for i, line in enumerate(base_lines) if line.startswith("  logits:"))
    col = base_lines[logits].index("$classes") + 2
    refs = session.references(base_uri, logits, col)
    files = {Path(r.uri).name for r in refs}
    assert {"resnet18.yaml", "resnet18_cifar.yaml"} <= files
    edit = session.rename(base_uri, logits, col, "n_classes")
    assert edit is not None and edit.changes is not None
    renamed = apply_edits("\n".join(base_lines) + "\n", edit.changes[base_uri])
    assert "units: $n_classes" in renamed and "  n_classes: 1000" in renamed and "$classes" not in renamed
    cifar = apply_edits(variant, edit.changes[uri])
    assert "vars: {n_classes: 10}" in cifar
    # a node: rename its key and every reference, then the check still passes
    add = next(i for i, line in enumerate(base_lines) if line.startswith("  avg_pool:"))
    edit = session.rename(base_uri, add, 3, "gap")
    assert edit is not None and edit.changes is not None
    assert [e.new_text for e in edit.changes[base_uri]] == ["gap"]
    # a name that is taken, or not a name: no edit
    assert session.rename(base_uri, add, 3, "logits") is None
    assert session.rename(base_uri, add, 3, "9 lives") is None
    session.close_doc(uri)
    session.close_doc(base_uri)


def test_mnist_definition_completion_symbols_and_expect(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "mlp.yaml"
    text = (ROOT / "specs" / "mnist_mlp.yaml").read_text(encoding="utf-8").replace("    expect: {params: 55050}\n", "")
    uri, diags = session.open(path, text)
    assert diags == []
    lines = text.splitlines()
    out = next(i for i, line in enumerate(lines) if "outputs: predictions" in line)
    target = session.definition(uri, out, lines[out].index("predictions") + 1)
    assert target.range.start.line == next(i for i, line in enumerate(lines) if line.startswith("  predictions:"))
    refs = session.references(uri, target.range.start.line, 3)
    assert sorted(r.range.start.line for r in refs) == [target.range.start.line, out]
    symbols = session.symbols(uri)
    outline = {s.name: [c.name for c in s.children or []] for s in symbols}
    assert outline == {"inputs": ["img"], "nodes": ["dense_1", "dense_2", "predictions"], "models": ["mnist_model"]}
    # completion: layer types, arguments of the node's type, references
    edit = lsp.Range(lsp.Position(len(lines), 0), lsp.Position(len(lines), 0))
    session.change(uri, [(edit, "")], wait=True)
    d1 = next(i for i, line in enumerate(lines) if line.startswith("  dense_1:"))
    items = {i.label: i for i in session.completion_items(uri, d1, lines[d1].index("units"))}
    doc = items["use_bias"].documentation
    assert isinstance(doc, lsp.MarkupContent) and "whether the layer uses a bias vector" in doc.value
    assert "type: boolean · default: `true`" in doc.value
    # hover on an argument with a default: its meaning, type and default
    shown = session.hover(uri, d1, lines[d1].index("activation") + 1) or ""
    assert "Activation function to use." in shown and "type: activation · default: `null`" in shown
    assert {"img", "dense_1", "dense_2"} <= set(session.completion(uri, out, lines[out].index("predictions")))
    # the expect action writes the parameter count the analysis gives, and lint then agrees
    model = next(i for i, line in enumerate(lines) if line.startswith("  mnist_model:"))
    actions = session.code_actions(uri, lsp.Range(lsp.Position(model, 0), lsp.Position(model, 0)), [])
    titles = [a.title for a in actions]
    assert titles == ["Add `expect: {params: 55050}` of model `mnist_model`"]
    fixed = apply_edits(text, changes(actions[0])[uri])
    assert "expect: {params: 55050}" in fixed and lint_messages(path, fixed) == []
    wrong = fixed.replace("55050", "55051")
    diags = session.change(uri, [(None, wrong)]) or []
    assert [d.code for d in diags] == ["GS501"]
    actions = session.code_actions(uri, diags[0].range, diags)
    assert apply_edits(wrong, changes(actions[0])[uri]) == fixed
    # completion on a line being typed
    session.change(uri, [(None, fixed + "# x\n")])
    typed = fixed.replace("  predictions: {type: Dense, units: 10}", "  predictions: {type: Den")
    session.change(uri, [(None, typed)])
    p = next(i for i, line in enumerate(typed.splitlines()) if line.endswith("type: Den"))
    assert "Dense" in session.completion(uri, p, len(typed.splitlines()[p]))
    assert re.search(r"outputs: predictions", typed)
    session.close_doc(uri)


def test_yaml_that_is_not_a_spec_is_left_alone(session: Session, tmp_path: Path) -> None:
    """A workflow file opened beside the specs gets no diagnostics and no hovers."""
    uri = (tmp_path / "ci.yaml").as_uri()
    text = "on: [push]\njobs:\n  test: {runs-on: ubuntu-latest}\n"
    session.client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "yaml", 1, text)))
    assert session.hover(uri, 2, 3) is None and session.symbols(uri) == []
    assert uri not in session.client.diagnostics
    session.client.text_document_did_close(lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(uri)))


def test_server_imports_no_backend_and_no_plugin() -> None:
    """The lean path: analysing a spec with a plugin layer imports neither Keras, numpy, nor the plugin."""
    code = (
        "import sys\n"
        "from graphspec.lsp import server, hover, complete, navigate\n"
        "from graphspec.lsp.snapshot import Settings, analyse\n"
        "from graphspec.spec import plugins\n"
        "text = open('specs/custom_layer.yaml').read()\n"
        "snap = analyse('u', 'specs/custom_layer.yaml', 1, text, Settings(plugins.all_plugins(None)))\n"
        "assert snap.analysis is not None\n"
        "hover.inlay_hints(snap, 1, 999); navigate.symbols(snap)\n"
        "bad = [m for m in ('keras', 'tensorflow', 'jax', 'torch', 'numpy', 'custom_dense') if m in sys.modules]\n"
        "bad += [m for m in sys.modules if m.startswith(('graphspec.build', 'graphspec.run', 'graphspec.importer'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

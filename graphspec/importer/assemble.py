"""One import, from the model to the checked spec text (:func:`import_model`).

The walk (:mod:`graphspec.importer.walk`) writes one node per call; this module puts the spec
together and makes it short:

* repeated structure becomes `blocks:` (:mod:`graphspec.importer.repeats`; `blocks=False`, the
  CLI's `--flat`, keeps one node per call and every Keras name);
* a model with an automatic Keras name (`functional_3`, `sequential`) is named after its source
  (the function, or the file);
* a spec with one model whose inputs and outputs are the ones a spec model gets by default is
  written without `models:`, with a top-level `expect:`.

The text is then built back and compared with the model (:mod:`graphspec.importer.verify`); if the
version with blocks does not build back, the flat one is checked and used instead.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from graphspec.errors import SpecError, UsageError
from graphspec.importer import repeats
from graphspec.importer.layer_args import load_plugin_classes
from graphspec.importer.refs import base, map_refs, ref_list
from graphspec.importer.repeats import Flat
from graphspec.importer.values import Unexpressible, diag
from graphspec.importer.verify import verify_text
from graphspec.importer.walk import Importer
from graphspec.importer.write import to_yaml

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_AUTO_MODEL = re.compile(r"^(functional|sequential|model)(_[0-9]+)?$")
_GENERIC_FUNCTIONS = {"build", "make", "create", "get", "model", "get_model", "build_model", "make_model",
                      "create_model", "main"}


@dataclasses.dataclass
class Imported:
    """The result of an import: the spec as data and as YAML text."""

    name: str
    data: dict[str, Any]
    text: str
    plugins: list[str]
    renames: dict[str, str]
    params: int
    nodes: int
    verified: bool
    rebuilt: Any = None  # the model built back from the spec (when verified)
    blocks: int = 0  # blocks the spec defines


def source_name(source: str) -> str | None:
    """A name for a model from where it came from: `models.py:build_unet` -> `unet`,
    `unet.py:build` -> `unet`, `convmixer.keras` -> `convmixer`."""
    if source.startswith(("keras.applications.", "applications.")) or source.startswith("<"):
        return None
    if source.endswith((".keras", ".h5")):
        stem = Path(source).stem
    elif ":" in source:
        module, _, fn = source.rpartition(":")
        stem = re.sub(r"^(build|make|create|get)_|_(model|fn)$", "", fn)
        if fn in _GENERIC_FUNCTIONS or not stem:
            stem = Path(module).stem if module.endswith(".py") else module.rsplit(".", 1)[-1]
    else:
        return None
    name = re.sub(r"[^A-Za-z0-9_\-]", "_", stem)
    return name if _NAME.match(name) else None


def _sinks(flat: Flat) -> list[str]:
    used = {base(r) for n in flat.order for r in ref_list(flat.inputs[n][1])}
    used |= {e["share"] for e in flat.entries.values() if isinstance(e.get("share"), str)}
    return [n for n in flat.order if n not in used]


def spec_data(imp: Importer, name: str, *, blocks: bool) -> tuple[dict[str, Any], dict[str, str], int]:
    """The spec as data: (data, Keras node name -> expanded name for nodes inside blocks, blocks)."""
    flat = Flat(list(imp.nodes), imp.nodes, imp.node_inputs, list(imp.inputs), imp.models)
    found = repeats.find(flat) if blocks else None
    if found is not None:
        items = found.top
        renames = found.renames
    else:
        items = [(n, e, imp.node_inputs[n][1]) for n, e in imp.nodes.items()]
        renames = {}
    nodes: dict[str, dict[str, Any]] = {}
    previous: str | None = None
    only_input = next(iter(imp.inputs)) if len(imp.inputs) == 1 else None
    for node_name, entry, refs in items:
        style = "single" if "block" in entry else imp.node_inputs[node_name][0]
        out = dict(entry)
        call = out.pop("call", None)
        implicit = previous if previous is not None else only_input
        if not (style == "single" or (style == "positional" and isinstance(refs, str))) or refs != implicit:
            out["inputs"] = refs
        if call:
            out["call"] = call
        nodes[node_name] = out
        previous = node_name

    def rename(r: str) -> str:
        return renames.get(r, r)

    models = {k: {f: (map_refs(v, rename) if f in ("inputs", "outputs") else v) for f, v in m.items()}
              for k, m in imp.models.items()}
    data: dict[str, Any] = {"graphspec": 1, "name": name, "inputs": dict(imp.inputs)}
    if found is not None:
        data["blocks"] = found.blocks
    data["nodes"] = nodes
    only = models.get(name) if len(models) == 1 else None
    sinks = [rename(s) for s in _sinks(flat)]
    if (only is not None and set(only) <= {"inputs", "outputs", "expect"}
            and ref_list(only.get("inputs")) == list(imp.inputs) and ref_list(only["outputs"]) == sinks):
        if "expect" in only:  # the default model: no `models:` needed
            data["expect"] = only["expect"]
    else:
        data["models"] = models
    return data, renames, len(found.blocks) if found is not None else 0


def import_model(model: Any, *, source: str = "<model>", plugins: list[str] | None = None,
                 name: str | None = None, verify: bool = True, blocks: bool = True, expect: bool = False,
                 compile_config: dict[str, Any] | None = None) -> Imported:
    """A spec for a functional Keras model. Raises SpecError naming what the format cannot express.

    The parameter count is in the spec's first line; `expect` also writes it as `expect: {params: N}`, which
    `lint` checks: a guard for a spec meant to stay equal to its source, and in the way of variants and
    sweeps that change a width (every one would fail GS501). `compile_config` (a saved model's, see
    :mod:`graphspec.importer.compiled`) is written as `compile:` when every part of it is expressible.
    """
    from graphspec.build.backend import keras

    plugin_list = list(plugins or [])
    imp = Importer(keras, source, load_plugin_classes(plugin_list))
    try:
        if not isinstance(model, keras.Model):
            raise Unexpressible("GS700", f"{source} is a {type(model).__name__}, not a keras.Model")
        mname = imp.model(model, top=True, where=f"model `{model.name}`")
        if name is None and _AUTO_MODEL.match(model.name):
            name = source_name(source)
            if name in imp.models or name in imp.taken:
                name = None
        if name is not None and name != mname:
            if not _NAME.match(name):
                raise UsageError(f"--name {name!r}: a name is letters, digits, `_` and `-`, not starting with a digit")
            if name in imp.models:
                raise UsageError(f"--name {name!r}: a sub-model of the model already has that name")
            imp.models = {(name if k == mname else k): v for k, v in imp.models.items()}
            mname = name
        if expect:
            imp.models[mname]["expect"] = {"params": int(model.count_params())}
        # The top model last: sub-models before the model that calls them.
        imp.models = {k: v for k, v in imp.models.items() if k != mname} | {mname: imp.models[mname]}
    except Unexpressible as exc:
        raise SpecError([diag(exc.code, exc.message, source, exc.hint)]) from None
    from graphspec.importer.compiled import compile_section

    imp.compile_data, imp.compile_note = compile_section(compile_config)
    imported = _write(imp, model, keras.__version__, source, mname, blocks)
    if verify:
        try:
            imported.rebuilt = verify_text(model, imported.text, imp.match.plugins_needed, source, mname)
        except SpecError:
            if not imported.blocks:
                raise
            imported = _write(imp, model, keras.__version__, source, mname, False)
            imported.rebuilt = verify_text(model, imported.text, imp.match.plugins_needed, source, mname)
        imported.verified = True
    return imported


def _write(imp: Importer, model: Any, version: str, source: str, mname: str, blocks: bool) -> Imported:
    data, block_renames, n_blocks = spec_data(imp, mname, blocks=blocks)
    if imp.compile_data:
        data["compile"] = imp.compile_data
    blocks_note = f", {n_blocks} block{'s' if n_blocks != 1 else ''}" if n_blocks else ""
    note = (f"Imported from {source} by `graphspec import` (Keras {version}): "
            f"{model.count_params():,} parameters, {len(imp.nodes)} layer calls{blocks_note}.")
    header: list[str] = []
    from graphspec.spec.plugins import BUILTIN

    user_plugins = [p for p in imp.match.plugins_needed if p not in BUILTIN]
    if user_plugins:
        header.append("Build it with: " + " ".join(f"--plugin {p}" for p in user_plugins))
    if imp.compile_note:
        header.append(imp.compile_note)
    if imp.renames:
        header.append("Renamed (Keras name -> spec name):")
        header.extend(f"  {k} -> {v}" for k, v in sorted(imp.renames.items()))
    text = to_yaml(data, header, note)
    renames = dict(imp.renames)
    renames.update({k: v for k, v in block_renames.items() if k != v})
    return Imported(mname, data, text, list(imp.match.plugins_needed), renames, int(model.count_params()),
                    len(imp.nodes), False, blocks=n_blocks)

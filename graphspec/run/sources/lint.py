"""What lint checks of a streamed source, without decoding a file and without a backend (or NumPy).

The split folders exist inside the data roots, their class folders are found and none is empty
(:func:`graphspec.run.sources.describe`); the number of classes fits the trained model's output;
`image_size` and `color_mode` fit its input's shape, and its dtype takes images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphspec.diagnostics import Diagnostic, Severity
from graphspec.run.sources import DataError, Problem, data_roots, describe, is_streamed
from graphspec.run.sources import images
from graphspec.run.sources.columns import Table
from graphspec.spec.schema_run import ImagesSource, OneHot, Reshape


def check(checked: Any, given_roots: list[str] | None = None, *, base: Path | None = None,
          roots: list[Path] | None = None, packages: bool = False) -> list[Diagnostic]:
    """Diagnostics about a checked spec's streamed data source (none for other sources, or a spec with errors).

    `base` and `roots`: where the data paths resolve (default: the spec's folder and `given_roots`);
    `packages`: report a missing optional package too (GS443), as a command that reads the data must."""
    spec = checked.spec
    if spec is None or spec.data is None or not is_streamed(spec.data) or checked.diagnostics.has_errors:
        return []
    if checked.source is None or checked.graph is None:
        return []
    if base is None:
        base = Path(checked.file).resolve().parent if not checked.file.startswith("<") else Path.cwd()

    def locate(path: tuple[Any, ...]) -> Any:
        return checked.source.location(path, key=True)

    ignored = [Diagnostic(
        "GS442", Severity.WARNING, f"`cache: true` has no effect with `kind: {spec.data.source.kind}` (a streamed source): its "
        "validation and test batches are read from disk each time, so that memory does not grow with the data",
        locate(("data", "cache")), "remove `cache`; an in-memory source (npz, csv) caches its batches")
        ] if spec.data.cache else []
    try:
        listings = describe(spec.data, base, roots if roots is not None else data_roots(given_roots, base), locate)
    except DataError as exc:  # not a missing optional package: lint runs on the lean install, train says it
        return ignored + [d for d in exc.diagnostics if packages or d.code != "GS443"]
    model = _model(checked)
    if model is None or "train" not in listings:
        return ignored
    out: list[Diagnostic] = list(ignored)
    train = listings["train"]
    names_found = tuple(train.classes or ())
    classes = len(names_found)

    def diag(message: str, path: tuple[Any, ...], hint: str | None = None) -> None:
        out.append(Diagnostic("GS411", Severity.ERROR, message, locate(path), hint))

    data = spec.data
    if isinstance(train, Table) and train.fields:
        out.extend(_columns(train, data, locate))
    for name, shape, loss in _outputs(checked, model) if classes else []:
        units = shape[-1] if shape else None
        steps = data.transforms.get(name, [])
        one_hot = next((t.one_hot for t in steps if isinstance(t, OneHot)), None)
        kind = _loss_kind(loss)
        if one_hot is not None and one_hot < classes:
            diag(f"`one_hot: {one_hot}` for output `{name}`, but the data has {classes} classes",
                 ("data", "transforms", name), f"`one_hot: {classes}`")
        elif kind == "sparse" and isinstance(units, int) and units not in (1, classes):
            diag(f"the data has {classes} classes ({_names(names_found)}), but the model's output "
                 f"`{name}` has {units} units (its loss takes class ids 0..{units - 1})", ("data", "source"),
                 f"make the output Dense({classes}), or list the classes to use in `classes:`")
        elif kind == "categorical" and one_hot is None and isinstance(units, int):
            diag(f"the loss of output `{name}` takes one-hot targets, but the data gives class ids",
                 ("data", "transforms"), f"add `{{one_hot: {classes}}}` to `data.transforms.{name}`")
    src = data.source
    if isinstance(src, ImagesSource):
        out.extend(_image_input(checked, model, src, locate))
    return out


def _columns(table: Table, data: Any, locate: Any) -> list[Diagnostic]:
    """GS411 for a `data.inputs` / `data.outputs` entry that names no column of the table."""
    out = []
    for section in ("inputs", "outputs"):
        for port, column in (getattr(data, section) or {}).items():
            if isinstance(column, str) and column not in table.fields:
                why = " (its type is not one a model input takes)" if column in table.skipped_columns else ""
                have = ", ".join(f"`{c}`" for c in list(table.fields)[:10])
                out.append(Diagnostic("GS411", Severity.ERROR, f"`data.{section}.{port}` names `{column}`, which "
                                      f"{table.origin} does not have{why}: it has {have}",
                                      locate(("data", section, port)), None))
    return out


def _names(classes: tuple[str, ...]) -> str:
    shown = ", ".join(repr(c) for c in classes[:5])
    return shown + (", ..." if len(classes) > 5 else "")


def _loss_kind(loss: Any) -> str:
    name = loss if isinstance(loss, str) else (loss.get("type") if isinstance(loss, dict) else
                                               getattr(loss, "type", None))
    n = str(name or "").lower().replace("_", "")
    return "sparse" if "sparse" in n else "categorical" if "categorical" in n else "other"


def _model(checked: Any) -> Any:
    from graphspec.analysis.run_checks import trained_model_name

    name = trained_model_name(checked.graph)
    return checked.graph.models.get(name) if name else None


def _outputs(checked: Any, model: Any) -> list[tuple[str, tuple[Any, ...] | None, Any]]:
    from graphspec.analysis.graph import effective_compile, output_names

    names = output_names(model) or []
    compile_spec, _ = effective_compile(checked.graph, model)
    loss = compile_spec.loss if compile_spec is not None else None
    info = checked.analysis.models.get(model.name) if checked.analysis is not None else None
    out = []
    for i, name in enumerate(names):
        each: Any = loss.get(name) if isinstance(loss, dict) and "type" not in loss else \
            loss[i] if isinstance(loss, list) and i < len(loss) else loss
        if hasattr(each, "model_dump"):
            each = each.model_dump()
        shape = info.output_shapes.get(name) if info is not None else None
        out.append((name, tuple(shape) if shape is not None else None, each))
    return out


def _image_input(checked: Any, model: Any, src: ImagesSource, locate: Any) -> list[Diagnostic]:
    from graphspec.analysis.run_checks import input_names

    data = checked.spec.data
    names = input_names(model)
    mapped = [n for n in names if (data.inputs or {}).get(n) == "image"]
    name = mapped[0] if mapped else names[0] if len(names) == 1 else None
    node = checked.spec.input_spec(name) if name and name in checked.spec.inputs else None  # `x: [H, W, C]` too
    if node is None or any(isinstance(t, Reshape) for t in data.transforms.get(name, [])):
        return []
    shape = tuple(node.shape)
    out: list[Diagnostic] = []
    try:
        h, w, mode = images.settings(src, shape)
    except Problem as p:
        return list(p.located(locate).diagnostics)
    want = (h, w, images.CHANNELS[mode])
    augmented = bool(data.augment.get(name))  # then graphspec.analysis.preprocessing_checks compares the shapes
    if not augmented and (len(shape) != 3 or any(d is not None and d != e for d, e in zip(shape, want))):
        out.append(Diagnostic("GS411", Severity.ERROR,
                              f"the images are {list(want)} (image_size [{h}, {w}], color_mode {mode}), but the "
                              f"model's input `{name}` takes {list(shape)}", locate(("data", "source")),
                              "set `image_size` / `color_mode` to fit the input, or change its shape"))
    casts = [t for t in data.transforms.get(name, []) if hasattr(t, "cast")]
    dtype = casts[-1].cast if casts else node.dtype
    if not str(dtype).startswith(("float", "bfloat")):
        out.append(Diagnostic("GS411", Severity.ERROR, f"the images are float32, but the model's input `{name}` "
                              f"takes {node.dtype}", locate(("inputs", name)),
                              "make the input float32 (or cast: `data.transforms`)"))
    return out

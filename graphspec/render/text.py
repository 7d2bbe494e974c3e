"""Everything a person sees: diagnostics, tables, JSON documents.

Computing and rendering are separate: functions here take results and a
:class:`rich.console.Console` (or return plain strings/dicts), so tests can
render with a fixed-width, colourless console.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graphspec.diagnostics import Diagnostic, Severity


def diagnostic_text(diag: Diagnostic, source_text: str | None = None, *, color: bool = False) -> str:
    """`file:line:col: error[GS112]: message`, the source line, a caret, notes and hint."""
    loc = diag.location
    sev = diag.severity.value
    head = f"{loc}: {sev}[{diag.code}]: {diag.message}"
    if color:
        c = "red" if diag.severity is Severity.ERROR else "yellow"
        head = f"\x1b[1m{loc}:\x1b[0m \x1b[1;{31 if c == 'red' else 33}m{sev}[{diag.code}]\x1b[0m: {diag.message}"
    lines = [head]
    if source_text is not None and loc.line:
        src_lines = source_text.splitlines()
        if 0 < loc.line <= len(src_lines):
            text = src_lines[loc.line - 1].replace("\t", " ")
            gutter = f"{loc.line:>4} | "
            lines.append(gutter + text)
            width = 1
            if loc.end_line == loc.line and loc.end_col > loc.col:
                width = loc.end_col - loc.col
            width = max(1, min(width, len(text) - loc.col + 1 if len(text) >= loc.col else 1))
            lines.append(" " * (len(gutter) - 2) + "| " + " " * (loc.col - 1) + "^" + "~" * (width - 1))
    for note in diag.notes:
        lines.append(f"  note: {note}")
    if diag.hint:
        lines.append(f"  hint: {diag.hint}")
    return "\n".join(lines)


def diagnostics_text(diags: Iterable[Diagnostic], sources: dict[str, str], *, color: bool = False) -> str:
    return "\n".join(diagnostic_text(d, sources.get(d.location.file), color=color) for d in diags)


def count_line(n_errors: int, n_warnings: int, n_files: int | None = None) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    text = f"{plural(n_errors, 'error')}, {plural(n_warnings, 'warning')}"
    if n_files is not None:
        text += f" in {plural(n_files, 'file')}"
    return text


def shape_str(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list) and shape and isinstance(shape[0], (list, tuple)):
        return ", ".join(shape_str(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def model_rows(model: Any) -> list[dict[str, Any]]:
    """One row per layer of a built keras.Model: name, type, output shape, params, inbound."""
    rows = []
    for layer in getattr(model, "operations", model.layers):
        try:
            out = layer.output
            shape: Any = [list(t.shape) for t in out] if isinstance(out, (list, tuple)) else list(out.shape)
        except (AttributeError, ValueError):
            shape = None
        inbound: list[str] = []
        for node in getattr(layer, "_inbound_nodes", []):
            for t in node.input_tensors:
                hist = getattr(t, "_keras_history", None)
                if hist is not None and hist.operation.name not in inbound:
                    inbound.append(hist.operation.name)
        rows.append({
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": shape,
            "params": int(layer.count_params()) if hasattr(layer, "count_params") and layer.built else 0,
            "inputs": inbound,
        })
    return rows


def model_totals(model: Any) -> dict[str, int]:
    trainable = int(sum(int(w.numpy().size) for w in model.trainable_weights))
    total = int(model.count_params())
    return {"params": total, "trainable_params": trainable, "non_trainable_params": total - trainable}


def summary_json(models: Sequence[Any], macs: Mapping[str, tuple[int | None, Mapping[str, int | None]]] | None = None
                 ) -> str:
    """The summary of built models as JSON. ``macs``: per model name, the static multiply-accumulates
    of the model and of each layer by name (a layer it does not list is `null`)."""
    doc: dict[str, list[dict[str, Any]]] = {"models": []}
    for m in models:
        totals = model_totals(m)
        model_macs, layer_macs = (macs or {}).get(m.name, (None, {}))
        doc["models"].append({
            "name": m.name,
            "params": totals["params"],
            "trainable_params": totals["trainable_params"],
            "non_trainable_params": totals["non_trainable_params"],
            "macs": model_macs,
            "layers": [{**{k: r[k] for k in ("name", "type", "output_shape", "params")},
                        "macs": layer_macs.get(r["name"]), "inputs": r["inputs"]}
                       for r in model_rows(m)],
        })
    return json.dumps(doc, indent=2)


def summary_table(model: Any) -> Any:
    from rich.markup import escape
    from rich.table import Table

    totals = model_totals(model)
    table = Table(title=f"Model: {escape(model.name)}", title_justify="left", show_lines=False)
    table.add_column("Layer", no_wrap=True)
    table.add_column("Type")
    table.add_column("Output shape")
    table.add_column("Params", justify="right")
    table.add_column("Connected to")
    for row in model_rows(model):
        table.add_row(escape(row["name"]), escape(row["type"]), escape(shape_str(row["output_shape"])),
                      f"{row['params']:,}", escape(", ".join(row["inputs"])))
    table.caption = (f"Total params: {totals['params']:,}  Trainable: {totals['trainable_params']:,}  "
                     f"Non-trainable: {totals['non_trainable_params']:,}")
    table.caption_justify = "left"
    return table

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
from graphspec.render.escape import printable


_CONTROL = {c: "\ufffd" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL[ord("\t")] = " "


def _printable(line: str) -> str:
    """A source line safe to print: control characters (escape sequences of a hostile file) shown as
    U+FFFD, one character each so that the caret below stays in place; tabs as spaces."""
    return line.translate(_CONTROL)


MAX_LINE = 160  # characters of a source line shown under a diagnostic


def _window(text: str, col: int, width: int) -> tuple[str, int, int]:
    """A long line cut down to MAX_LINE characters around `col`: (text, new col, new width)."""
    if len(text) <= MAX_LINE:
        return text, col, width
    start = max(0, min(col - 1 - MAX_LINE // 4, len(text) - MAX_LINE))
    cut = text[start:start + MAX_LINE]
    prefix = "..." if start else ""
    suffix = "..." if start + MAX_LINE < len(text) else ""
    new_col = col - start + len(prefix)
    return prefix + cut + suffix, new_col, max(1, min(width, MAX_LINE - (col - 1 - start)))


def diagnostic_text(diag: Diagnostic, source_text: str | None = None, *, color: bool = False,
                    lines_of: list[str] | None = None) -> str:
    """`file:line:col: error[GS112]: message`, the source line, a caret, notes and hint.

    `lines_of` is the source already split into lines (many diagnostics of one file).
    """
    loc = diag.location
    sev = diag.severity.value
    # File names and messages quote names from files: their control characters are shown, never sent.
    where, message = printable(str(loc)), printable(diag.message)
    head = f"{where}: {sev}[{diag.code}]: {message}"
    if color:
        c = "red" if diag.severity is Severity.ERROR else "yellow"
        head = f"\x1b[1m{where}:\x1b[0m \x1b[1;{31 if c == 'red' else 33}m{sev}[{diag.code}]\x1b[0m: {message}"
    lines = [head]
    if (source_text is not None or lines_of is not None) and loc.line:
        src_lines = lines_of if lines_of is not None else (source_text or "").splitlines()
        if 0 < loc.line <= len(src_lines):
            text = _printable(src_lines[loc.line - 1])
            gutter = f"{loc.line:>4} | "
            width = 1
            if loc.end_line == loc.line and loc.end_col > loc.col:
                width = loc.end_col - loc.col
            width = max(1, min(width, len(text) - loc.col + 1 if len(text) >= loc.col else 1))
            text, col, width = _window(text, loc.col, width)
            lines.append(gutter + text)
            lines.append(" " * (len(gutter) - 2) + "| " + " " * (col - 1) + "^" + "~" * (width - 1))
    for note in diag.notes:
        lines.append(f"  note: {printable(note)}")
    if diag.hint:
        lines.append(f"  hint: {printable(diag.hint)}")
    return "\n".join(lines)


MAX_SHOWN = 200  # diagnostics printed by one command; the rest are counted in one line


def diagnostics_text(diags: Iterable[Diagnostic], sources: dict[str, str], *, color: bool = False) -> str:
    split: dict[str, list[str]] = {}
    out = []
    listed = list(diags)
    for d in listed[:MAX_SHOWN]:
        name = d.location.file
        if name in sources and name not in split:
            split[name] = sources[name].splitlines()
        out.append(diagnostic_text(d, None, color=color, lines_of=split.get(name)))
    if len(listed) > MAX_SHOWN:
        out.append(f"and {len(listed) - MAX_SHOWN:,} more not shown: the first {MAX_SHOWN} are")
    return "\n".join(out)


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
    return summary_json_rows([(m.name, model_rows(m), model_totals(m)) for m in models], macs)


def summary_json_rows(models: Sequence[tuple[str, list[dict[str, Any]], Mapping[str, int]]],
                      macs: Mapping[str, tuple[int | None, Mapping[str, int | None]]] | None = None) -> str:
    """The summary JSON from rows (:func:`model_rows`'s form) and totals, however they were obtained."""
    doc: dict[str, list[dict[str, Any]]] = {"models": []}
    for name, rows, totals in models:
        model_macs, layer_macs = (macs or {}).get(name, (None, {}))
        doc["models"].append({
            "name": name,
            "params": totals["params"],
            "trainable_params": totals["trainable_params"],
            "non_trainable_params": totals["non_trainable_params"],
            "macs": model_macs,
            "layers": [{**{k: r[k] for k in ("name", "type", "output_shape", "params")},
                        "macs": layer_macs.get(r["name"]), "inputs": r["inputs"]}
                       for r in rows],
        })
    return json.dumps(doc, indent=2)


def summary_table(model: Any) -> Any:
    """The summary table of a built Keras model."""
    return summary_table_rows(model.name, model_rows(model), model_totals(model))


def summary_table_rows(name: str, rows: Sequence[Mapping[str, Any]], totals: Mapping[str, int]) -> Any:
    """A rich table: layer, type, output shape, parameters, inbound layers; the totals below."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Model: {escape(name)}", title_justify="left", show_lines=False)
    table.add_column("Layer", no_wrap=True)
    table.add_column("Type")
    table.add_column("Output shape")
    table.add_column("Params", justify="right")
    table.add_column("Connected to")
    for row in rows:
        table.add_row(escape(row["name"]), escape(row["type"]), escape(shape_str(row["output_shape"])),
                      f"{row['params']:,}", escape(", ".join(row["inputs"])))
    table.caption = (f"Total params: {totals['params']:,}  Trainable: {totals['trainable_params']:,}  "
                     f"Non-trainable: {totals['non_trainable_params']:,}")
    table.caption_justify = "left"
    return table


def results_table(result: Any) -> Any:
    """A rich table of a finished training (a :class:`graphspec.run.trainer.RunResult`): each metric's last
    training and validation value, and the test value."""
    from rich.table import Table

    last = result.history[-1] if result.history else {}
    names: list[str] = []
    for k in last:
        base = k[4:] if k.startswith("val_") else k
        if k not in {"epoch", "time", "learning_rate"} and base not in names:
            names.append(base)
    for k in result.test_metrics or {}:
        if k not in names:
            names.append(k)
    title = f"{result.status}: {result.epochs_done}/{result.epochs} epochs"
    table = Table(title=title, caption=str(result.run_dir))
    table.add_column("metric")
    table.add_column("train", justify="right")
    table.add_column("validation", justify="right")
    table.add_column("test", justify="right")

    def fmt(v: Any) -> str:
        return "" if v is None else f"{float(v):.4f}"

    for n in names:
        table.add_row(n, fmt(last.get(n)), fmt(last.get(f"val_{n}")), fmt((result.test_metrics or {}).get(n)))
    if result.best:
        table.caption = (f"best {result.best.get('monitor')} {float(result.best['value']):.4f} at epoch "
                         f"{result.best.get('epoch')}; run folder: {result.run_dir}")
    return table

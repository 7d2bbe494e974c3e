"""The rows of `graphspec runs` (plain dicts from :mod:`graphspec.experiments.runs`) as a table, JSON or CSV,
and the summary line of a sweep."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from graphspec.render.escape import csv_cell, printable

_STYLE = {"completed": "green", "pruned": "yellow", "failed": "red", "running": "cyan", "interrupted": "magenta"}


def _num(value: Any) -> str:
    """A number for the table: four decimals (fewer digits never cut it: the column widens)."""
    if value is None:
        return ""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{f:.4f}" if abs(f) < 1e4 else f"{f:.6g}"


def _value_text(value: Any, *, full: bool = False) -> str:
    """A swept value: 4 significant digits for the table, every digit (`full`) for CSV."""
    if isinstance(value, float):
        return repr(value) if full else f"{value:.4g}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def short_names(keys: list[str]) -> dict[str, str]:
    """Each parameter path by its shortest trailing part that no other path ends with.

    One rule for every path: `nodes.drop.rate` -> `rate` and `compile.optimizer.learning_rate` ->
    `learning_rate`, unless another path also ends in `.rate` (then `drop.rate`).
    """
    out: dict[str, str] = {}
    split = {k: k.split(".") for k in keys}
    for k, parts in split.items():
        for n in range(1, len(parts) + 1):
            tail = parts[-n:]
            if not any(o != k and op[-n:] == tail for o, op in split.items()):
                out[k] = ".".join(tail)
                break
        else:
            out[k] = k
    return out


def params_text(params: dict[str, Any], *, names: dict[str, str] | None = None) -> str:
    """`key=value ...`, each key through `names` (see :func:`short_names`) when given."""
    names = names or {}
    return " ".join(f"{names.get(k, k)}={_value_text(v)}" for k, v in params.items())


def objective_header(metric: str, mode: str) -> str:
    """The objective column's header: the metric and which way is better."""
    return f"{metric} ({'higher' if mode == 'max' else 'lower'} is better)"


def _groups(rows: list[dict[str, Any]], sort: str | None) -> list[list[dict[str, Any]]]:
    """Rows in runs of one objective (the order :func:`graphspec.experiments.runs.collect` gives)."""
    if sort is not None:
        return [rows]
    out: list[list[dict[str, Any]]] = []
    for r in rows:
        if out and _objective(out[-1][0]) == _objective(r):
            out[-1].append(r)
        else:
            out.append([r])
    return out


def _objective(r: dict[str, Any]) -> tuple[str, str]:
    monitor = str(r.get("monitor") or "objective")
    return monitor, "max" if r.get("mode") == "max" else "min"


# Dropped first when the table is wider than the terminal (numbers are never cut); then test metrics.
_DROP_ORDER = ("seconds", "epochs", "status")


def table(rows: list[dict[str, Any]], *, title: str | None = None, width: int = 80, sort: str | None = None) -> Any:
    """The rows as rich tables fitted to `width` columns: one table per objective (best first in each).

    A table that would be wider than `width` loses its seconds, then epochs, then status columns (a
    caption says which), and its params column wraps; a number is never cut.
    """
    from rich.console import Group

    keys = list(dict.fromkeys(k for r in rows for k in (r.get("params") or {})))
    names = short_names(keys)
    parts = [_table(g, names, width, title if i == 0 else None, sort) for i, g in enumerate(_groups(rows, sort))]
    return parts[0] if len(parts) == 1 else Group(*parts)


def _table(rows: list[dict[str, Any]], names: dict[str, str], width: int, title: str | None,
           sort: str | None) -> Any:
    from rich.markup import escape
    from rich.table import Table

    tests = sorted({k for r in rows for k in (r.get("test") or {})})
    metric, mode = _objective(rows[0])
    shared = len({_objective(r) for r in rows}) == 1
    head = metric if shared else "objective"
    ranked = f"ranked by {objective_header(metric, mode)}" if sort is None else f"ranked by {sort}"
    title = f"{title}: {ranked}" if title else ranked
    cols: dict[str, tuple[str, list[str]]] = {
        "run": ("run", [str(r["name"]) for r in rows]),
        "status": ("status", [str(r["status"]) for r in rows]),
        "params": ("params", [printable(params_text(r.get("params") or {}, names=names)).replace(" ", "\n")
                              for r in rows]),
        "epochs": ("epochs", [str(r.get("epochs", "")) for r in rows]),
        "objective": (head, [_num(r.get("objective")) for r in rows]),
        **_sorted_column(rows, sort, tests),
        **{f"test_{t}": (f"test_{t}", [_num((r.get("test") or {}).get(t)) for r in rows]) for t in tests},
        "seconds": ("seconds", [f"{float(r.get('seconds') or 0):.1f}" for r in rows]),
    }
    if not any(cols["params"][1]):
        del cols["params"]
    if not shared:  # objectives of different metrics are not one column (the sorted column is shown)
        del cols["objective"]

    def need() -> int:  # each column's widest cell (headers may wrap at spaces), 3 per column for borders
        total = 1
        for header, cells in cols.values():
            widest = max((len(line) for c in cells for line in c.splitlines()), default=0)
            head_w = max(len(w) for w in header.split())
            total += 3 + max(widest, head_w)
        return total

    dropped = []
    twin = (sort or metric).removeprefix("val_").removeprefix("test_").removeprefix("test.")
    kept = f"test_{twin}"  # the test twin of the objective stays longest
    order = [*_DROP_ORDER, *[k for k in reversed(cols) if k.startswith("test_") and k != kept]]
    for key in order:
        if need() <= width:
            break
        dropped.append(key)
        del cols[key]
    caption = f"not shown at {width} columns: {', '.join(dropped)} (see --format csv)" if dropped else None
    out = Table(title=title, caption=caption)
    for key, (header, _) in cols.items():
        if key == "params":
            out.add_column(escape(printable(header)), overflow="fold", ratio=1)
        elif key in ("run", "status"):
            out.add_column(escape(printable(header)), no_wrap=key == "status", overflow="fold")
        else:
            out.add_column(escape(printable(header)), justify="right", no_wrap=False, min_width=max(len(c) for c in cols[key][1]))
    for i in range(len(rows)):
        cells = []
        for key, (_, values) in cols.items():
            text = escape(printable(values[i], keep_newlines=key == "params"))  # params: laid out above
            if key == "status":
                text = f"[{_STYLE.get(values[i], 'white')}]{text}[/]"
            cells.append(text)
        out.add_row(*cells)
    return out


def _sorted_column(rows: list[dict[str, Any]], sort: str | None, tests: list[str]) -> dict[str, tuple[str, list[str]]]:
    """The column `--sort` named (each row's value under the key `sorted_by`), when not shown otherwise."""
    if sort is None or sort in ("objective", "epochs", "seconds") or sort.replace(".", "_", 1) in {
            f"test_{t}" for t in tests}:
        return {}
    return {sort: (sort, [_num(r.get("sorted_by")) for r in rows])}


def as_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps({"runs": rows}, indent=2, sort_keys=False, default=str)


def as_csv(rows: list[dict[str, Any]]) -> str:
    """One line per run: name (as in JSON), path, status, objective (with its monitor and mode), epochs,
    seconds, then params.*, metrics.*, test.*; every value with all its digits."""
    params = sorted({k for r in rows for k in (r.get("params") or {})})
    metrics = sorted({k for r in rows for k in (r.get("metrics") or {})})
    tests = sorted({k for r in rows for k in (r.get("test") or {})})
    header = ["name", "path", "status", "objective", "monitor", "mode", "epochs", "seconds",
              *[f"params.{k}" for k in params], *[f"metrics.{k}" for k in metrics], *[f"test.{k}" for k in tests]]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in header])

    def cell(value: Any) -> Any:
        """Every digit of a number, kept a number (a negative one is no formula); text made safe."""
        if value is None:
            return ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value  # csv writes repr(): all digits
        return csv_cell(_value_text(value, full=True))

    for r in rows:  # names and values from run folders: no formulas, no controls
        p, m, t = r.get("params") or {}, r.get("metrics") or {}, r.get("test") or {}
        writer.writerow([csv_cell(r["name"]), csv_cell(r["path"]), csv_cell(r["status"]), cell(r.get("objective")),
                         csv_cell(r.get("monitor") or ""), csv_cell(r.get("mode") or ""), r.get("epochs", ""),
                         r.get("seconds", ""), *[cell(p.get(k)) for k in params],
                         *[cell(m.get(k)) for k in metrics], *[cell(t.get(k)) for k in tests]])
    return buf.getvalue()


def sweep_summary(s: dict[str, Any]) -> list[str]:
    """Lines that sum up a sweep (a dict of :class:`graphspec.experiments.sweep.Summary`'s fields)."""
    c = s["counts"]
    lines = [f"sweep `{s['study']}`: {c['completed']} completed, "
             f"{c['pruned_static'] + c['pruned']} pruned ({c['pruned_static']} before training by the static check, "
             f"{c['pruned']} by the pruner), {c['failed']} failed"
             + (f", {c['interrupted']} interrupted" if c["interrupted"] else "")
             + (f", {c['running']} running elsewhere" if c["running"] else "")
             + (f", {c['waiting']} waiting" if c["waiting"] else "")
             + f" (budget {s['budget']})"]
    if s["static_codes"]:
        codes = ", ".join(f"{code} x{n}" for code, n in sorted(s["static_codes"].items()))
        lines.append(f"  pruned statically: {codes}")
    best = s.get("best")
    if best:
        lines.append(f"best: trial {best['number']}, {s['metric']} {best['value']:.4f} ({s['mode']}) "
                     f"[{params_text(best['params'])}] -> {best['run_dir']}")
    if c["waiting"] or c["interrupted"] and s["exit_code"] in (130, 143):
        lines.append("continue with the same command (or --resume)")
    lines.append(f"folder {s['folder']}; storage {s['storage']}")
    return lines

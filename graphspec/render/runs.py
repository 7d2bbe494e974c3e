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
    if value is None:
        return ""
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return str(value)


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def params_text(params: dict[str, Any], *, short: bool = False) -> str:
    """`key=value ...`; `short` drops the `nodes.` every node path starts with."""
    return " ".join(f"{k.removeprefix('nodes.') if short else k}={_value_text(v)}" for k, v in params.items())


def table(rows: list[dict[str, Any]], *, title: str | None = None) -> Any:
    """A rich table, one row per run, in the order given (best first)."""
    from rich.markup import escape
    from rich.table import Table

    tests = sorted({k for r in rows for k in (r.get("test") or {})})
    monitors = sorted({str(r["monitor"]) for r in rows if r.get("monitor")})
    out = Table(title=title)
    out.add_column("run", no_wrap=True)
    out.add_column("status", no_wrap=True)
    out.add_column("params")
    out.add_column("epochs", justify="right")
    out.add_column(escape(printable(monitors[0])) if len(monitors) == 1 else "objective", justify="right")
    for t in tests:
        out.add_column(escape(printable(f"test {t}")), justify="right")
    out.add_column("seconds", justify="right")
    for r in rows:
        status = str(r["status"])
        out.add_row(escape(printable(str(r["name"]))), f"[{_STYLE.get(status, 'white')}]{escape(printable(status))}[/]",
                    escape(printable(params_text(r.get("params") or {}, short=True))), str(r.get("epochs", "")), _num(r.get("objective")),
                    *[_num((r.get("test") or {}).get(t)) for t in tests], f"{float(r.get('seconds') or 0):.1f}")
    return out


def as_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps({"runs": rows}, indent=2, sort_keys=False, default=str)


def as_csv(rows: list[dict[str, Any]]) -> str:
    """One line per run: name, path, status, objective, epochs, seconds, then params.*, metrics.*, test.*."""
    params = sorted({k for r in rows for k in (r.get("params") or {})})
    metrics = sorted({k for r in rows for k in (r.get("metrics") or {})})
    tests = sorted({k for r in rows for k in (r.get("test") or {})})
    header = ["name", "path", "status", "objective", "epochs", "seconds",
              *[f"params.{k}" for k in params], *[f"metrics.{k}" for k in metrics], *[f"test.{k}" for k in tests]]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in header])
    for r in rows:
        p, m, t = r.get("params") or {}, r.get("metrics") or {}, r.get("test") or {}
        cells = [r["name"], r["path"], r["status"], "" if r.get("objective") is None else r["objective"],
                 r.get("epochs", ""), r.get("seconds", ""),
                 *[_csv_value(p[k]) if k in p else "" for k in params],
                 *[m.get(k, "") for k in metrics], *[t.get(k, "") for k in tests]]
        writer.writerow([csv_cell(c) for c in cells])  # names and values from run folders: no formulas, no controls
    return buf.getvalue()


def _csv_value(value: Any) -> Any:
    """A parameter's value in a CSV cell: a number stays a number (a negative one too), the rest as text."""
    if isinstance(value, float):
        return float(_value_text(value))  # the shown digits, as a number (csv_cell leaves numbers alone)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _value_text(value)


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

"""Hostile names in every output format (issue 19, items 4, 5, 11-14, 16; issue 21, item 2).

File, node, run and parameter names can hold control characters, newlines, GitHub workflow commands,
Markdown, HTML and spreadsheet formulas. Each output format passes them through its one escaping
function (graphspec/render/escape.py); these tests feed them in and read the output as its consumer
would: a terminal, the Actions runner (a line is a command when it starts with `::`), a Markdown
renderer, a spreadsheet. No test here imports a backend.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import graphspec
from graphspec.cli.app import app
from graphspec.cli.lint_paths import Skipped, expand_paths
from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.render import diff as render_diff
from graphspec.render import lint as render_lint
from graphspec.render import runs as render_runs
from graphspec.render.escape import md_code, printable

runner = CliRunner()
GOOD = "graphspec: 1\nname: m\ninputs: {x: [4]}\nnodes: {d: {type: Dense, units: 3}}\n"
BAD = "graphspec: 1\nname: m\ninputs: {x: [4]}\nnodes: {d: {type: Dense, units: 0}}\n"
# Names an attacker would give a file in a pull request.
HOSTILE_NAMES = ["::error::pwned.yaml", "x%0A::add-mask::y.yaml", "a\n::stop-commands::tok\nb.yaml",
                 "esc\x1b[31mred.yaml", "##[error]old.yaml", "  ::warning::lead.yaml"]


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout


def commands(output: str) -> list[str]:
    """The lines the Actions runner would read as workflow commands."""
    return [line for line in output.splitlines() if line.strip().startswith(("::", "##["))]


# -- item 4 and issue 21 item 2: --format github -------------------------------------------------------------
@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".git").mkdir()
    specs = tmp_path / "specs"
    (specs / "broken").mkdir(parents=True)
    (specs / "broken" / "x.yaml").write_text(BAD)
    (specs / "a.yaml").write_text(GOOD)
    (specs / "b.yaml").write_text(GOOD.replace("units: 3", "units: 5"))
    for name in HOSTILE_NAMES:
        (specs / name).write_text(GOOD)
    monkeypatch.chdir(specs)
    return tmp_path


def test_lint_github_lines_hold_no_command_but_its_own(repo: Path) -> None:
    code, out = invoke("lint", "-f", "github", "broken/x.yaml", *HOSTILE_NAMES)
    assert code == 1
    found = commands(out)
    assert len(found) == 1 and found[0].startswith("::error file=specs/broken/x.yaml,line=4,"), out
    # one line per model and one summary line: a newline in a file name does not start a line
    assert len(out.splitlines()) == 1 + len(HOSTILE_NAMES) + 1, out
    assert "\x1b" not in out


def test_lint_github_annotation_of_a_hostile_file_is_one_command(repo: Path) -> None:
    (repo / "specs" / HOSTILE_NAMES[2]).write_text(BAD)
    _, out = invoke("lint", "-f", "github", HOSTILE_NAMES[2])
    (line,) = commands(out)
    assert line.startswith("::error file=specs/a%0A%3A%3Astop-commands%3A%3Atok%0Ab.yaml,line=4,"), line


def test_lint_github_paths_are_relative_to_the_repository_root(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "specs" / "broken")
    _, out = invoke("lint", "-f", "github", "x.yaml")
    assert commands(out)[0].startswith("::error file=specs/broken/x.yaml,"), out


def test_diff_github_paths_and_names(repo: Path) -> None:
    code, out = invoke("diff", "-f", "github", "a.yaml", "b.yaml")
    assert code == 1
    (line,) = commands(out)
    assert line.startswith("::notice file=specs/b.yaml,line=4,") and "was at specs/a.yaml:4:" in line, out
    code, out = invoke("diff", "-f", "github", "a.yaml", HOSTILE_NAMES[0])
    assert code == 0 and commands(out) == [], out
    assert "are equivalent" in out
    code, out = invoke("diff", "-f", "github", HOSTILE_NAMES[2], HOSTILE_NAMES[5])
    assert code == 0 and commands(out) == [] and len(out.splitlines()) == 2, out


# -- item 5: diff --format markdown -------------------------------------------------------------------------
def _code_spans(markdown: str) -> list[str]:
    """The code spans of a line, read as CommonMark does: a run of N backticks closes at the next run of N."""
    spans, i = [], 0
    while (m := re.compile(r"`+").search(markdown, i)) is not None:
        fence = m.group(0)
        end = re.compile(rf"(?<!`){fence}(?!`)").search(markdown, m.end())
        if end is None:
            break
        spans.append(markdown[m.end():end.start()])
        i = end.end()
    return spans


@pytest.mark.parametrize("value", ["a```</table><img src=x onerror=alert(1)>", "``", "`x`", "e\\nf", "a|b<br>c",
                                   "x\ny\r<script>"])
def test_markdown_value_stays_in_its_code_span(value: str) -> None:
    where = Location("pr/``</td><img src=y>.yaml", 3, 4)
    report = render_diff.DiffReport("a.yaml", "b\n<b>.yaml", [
        render_diff.Change("changed", "nodes.d.name", "ok", value, None, where)], [])
    md = render_diff.markdown(report)
    row = next(line for line in md.splitlines() if line.startswith("| changed"))
    outside = re.sub(r"(`+).*?(?<!`)\1(?!`)", "", row)
    assert "<" not in outside, row  # no raw HTML outside a code span
    cells = re.split(r"(?<!\\)\|", row)[1:-1]
    assert len(cells) == 5, row  # a pipe in a value does not add a cell
    spans = [s.replace("\\|", "|").strip() for s in _code_spans(row)]
    assert printable(render_diff.short(value)) in spans, (row, spans)
    assert "pr/``</td><img src=y>.yaml:3:4" in spans  # the `where` column is a code span
    assert "\n" not in md.split("\n\n")[0].removeprefix("### ")  # the title is one line


def test_backslashes_are_literal_in_markdown() -> None:
    report = render_diff.DiffReport("a.yaml", "b.yaml", [render_diff.Change("changed", "data.x", "ok", "e\\nf")], [])
    assert "| `'e\\nf'` |" in render_diff.markdown(report)
    assert "e\\\\nf" not in render_diff.markdown(report)
    assert md_code("e\\nf") == "`e\\nf`"


def test_md_code_fences() -> None:
    assert md_code("a`b") == "``a`b``"
    assert md_code("`") == "`` ` ``"


# -- item 11: control characters in text ----------------------------------------------------------------------
def test_lint_and_diff_text_show_controls_escaped(repo: Path) -> None:
    (repo / "specs" / HOSTILE_NAMES[3]).write_text(BAD)
    _, out = invoke("lint", HOSTILE_NAMES[3])
    assert "\x1b" not in out and "esc\\x1b[31mred.yaml:4:" in out, out
    _, out = invoke("diff", HOSTILE_NAMES[2], "b.yaml")
    assert out.startswith("a\\n::stop-commands::tok\\nb.yaml -> b.yaml: 1 change"), out


def test_runs_table_and_csv_escape_names() -> None:
    from rich.console import Console

    rows = [{"name": "r\x1b]0;title\x07\n::error::x", "path": "runs/a\n::error::p", "status": "completed",
             "objective": -0.5, "epochs": 1, "seconds": 1.0, "params": {"act": "=HYPERLINK(\"http://e\")",
                                                                        "lr": -0.001, "n": -3, "s": "+1", "t": "@x",
                                                                        "u": "-cmd", "v": "\tx"},
             "metrics": {"loss": -1.5}, "test": {}}]
    console = Console(file=io.StringIO(), width=300, color_system=None, force_terminal=False)
    console.print(render_runs.table(rows))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b" not in shown and "\x07" not in shown and "::error::x" in shown
    assert not any(line.strip().startswith("::") for line in shown.splitlines())
    text = render_runs.as_csv(rows)
    assert len(text.splitlines()) == 2 and not commands(text), text
    header, row = list(csv.reader(io.StringIO(text)))
    cell = dict(zip(header, row))
    # item 12: formulas neutralised, numbers (negative ones too) kept as numbers
    assert cell["params.act"] == "'=HYPERLINK(\"http://e\")"
    assert (cell["params.s"], cell["params.t"], cell["params.u"]) == ("'+1", "'@x", "'-cmd")
    assert cell["params.v"].startswith("'")
    assert (cell["params.lr"], cell["params.n"], cell["objective"], cell["metrics.loss"]) == ("-0.001", "-3", "-0.5",
                                                                                            "-1.5")
    assert cell["name"].startswith("r\\x1b]0;title\\x07\\n")


def test_predict_csv_on_files_neutralises_file_and_class_names() -> None:
    """`predict RUN -i folder`: file names are anyone's, class names are the training data's folder names."""
    import numpy as np

    from graphspec.run.predict_files import rows_csv

    files = ["=HYPERLINK(\"http://e\").png", "uploads/ok.png", "a\n::error::b.png", os.fsdecode(b"\xffx.png")]
    logits = np.array([[-2.0, 3.0], [1.5, -1.0], [0.0, 2.0], [1.0, 0.0]], dtype="float32")
    text = rows_csv(files, {"out": logits}, ["@neg", "+pos"])
    assert not commands(text)
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header == ["file", "class", "probability", "out_0", "out_1"] and len(rows) == 4
    # a name that is not UTF-8 (its bytes kept by os.fsdecode) shows the byte: no output can encode it raw
    assert [r[0] for r in rows] == ["'=HYPERLINK(\"http://e\").png", "uploads/ok.png", "a\\n::error::b.png",
                                    "\\xffx.png"]
    assert [r[1] for r in rows] == ["'+pos", "'@neg", "'+pos", "'@neg"]
    assert [r[3:] for r in rows] == [["-2.0", "3.0"], ["1.5", "-1.0"], ["0.0", "2.0"], ["1.0", "0.0"]]  # numbers


def test_metrics_csv_header_neutralises_a_metric_name(tmp_path: Path) -> None:
    """A metric's `name:` in the spec is any string; metrics.csv's header is opened in spreadsheets."""
    from types import SimpleNamespace

    from graphspec.run.trainer import Trainer

    run = SimpleNamespace(run_dir=tmp_path, history=[{"epoch": 1, "loss": -0.5, "=cmd|' /C calc'!A0": 0.25,
                                                      "learning_rate": 0.001, "time": 1.0}])
    Trainer.write_history(run)  # type: ignore[arg-type]
    header, row = list(csv.reader(io.StringIO((tmp_path / "metrics.csv").read_text())))
    assert header == ["epoch", "loss", "'=cmd|' /C calc'!A0", "learning_rate", "time"]
    assert row == ["1", "-0.5", "0.25", "0.001", "1.0"]


# -- item 13: the node limit for plain nodes ----------------------------------------------------------------------
def test_plain_nodes_over_the_limit_are_gs500() -> None:
    lines = ["graphspec: 1", "name: big", "inputs:", "  x: [4]", "nodes:"]
    lines += [f"  n{i}: {{type: Dense, units: 4}}" for i in range(10_001)]
    from graphspec import compiler

    checked = compiler.check(text="\n".join(lines) + "\n")
    (d,) = [d for d in checked.diagnostics if d.is_error]
    assert d.code == "GS500" and "10,001 nodes; the limit is 10,000" in d.message and d.location.line == 5


# -- item 14: output amplification --------------------------------------------------------------------------------
def test_a_long_extends_list_is_one_diagnostic(tmp_path: Path) -> None:
    names = ", ".join(f"b{i % 100}.yaml" for i in range(90_000))
    spec = tmp_path / "s.yaml"
    spec.write_text(f"graphspec: 1\nname: x\nextends: [{names}]\n" "inputs: {x: [4]}\nnodes: {d: {type: Dense, units: 2}}\n")
    checked = graphspec.check(spec)
    (d,) = checked.diagnostics
    assert d.code == "GS130" and "lists 90,000 files" in d.message


def test_diagnostics_are_capped_per_file() -> None:
    diags = [Diagnostic("GS112", Severity.ERROR if i % 2 else Severity.WARNING, f"m{i}", Location("s.yaml", i + 1, 1))
             for i in range(500)]
    shown, errors, warnings = render_lint.capped(diags)
    report = render_lint.FileReport("s.yaml", shown, omitted_errors=errors, omitted_warnings=warnings)
    text = render_lint.text([report])
    assert text.count("error[GS112]") + text.count("warning[GS112]") == render_lint.MAX_PER_FILE
    assert "s.yaml: and 300 more diagnostics (150 errors, 150 warnings) not shown" in text
    assert text.splitlines()[-1] == "250 errors, 250 warnings in 1 file"
    assert render_lint.exit_code([report]) == 1
    github = render_lint.github([report])
    assert len(commands(github)) == render_lint.MAX_PER_FILE


# -- item 16: variants are specs; the pre-commit hook skips other YAML ----------------------------------------------
def test_discovery_finds_variants_and_the_hook_skips_other_yaml(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text(GOOD)
    (tmp_path / "wide.yaml").write_text("extends: base.yaml\nnodes: {d: {units: 0}}\n")
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: []\n")
    (tmp_path / "ci.yml").write_text("jobs: {lint: {runs-on: ubuntu-latest}}\n")
    assert expand_paths(["."]) == ["base.yaml", "wide.yaml"]
    code, out = invoke("lint", "-q", ".")
    assert code == 1 and "wide.yaml:2:20: error[GS112]" in out, out  # the broken variant is linted
    skipped: list[Skipped] = []
    assert expand_paths([".pre-commit-config.yaml", "ci.yml", "base.yaml"], skipped=skipped, hook=True) == [
        "base.yaml"]
    assert [s.path for s in skipped] == [".pre-commit-config.yaml", "ci.yml"]
    code, out = invoke("lint", "--hook", "-q", ".pre-commit-config.yaml", "ci.yml")
    assert code == 0 and "no specs to check (skipped 2 YAML files without a `graphspec:` or `extends:` key)" in out
    code, _ = invoke("lint", "-q", "ci.yml")  # named without --hook: linted, as always
    assert code == 1


def test_the_project_lints_its_variants() -> None:
    from .conftest import SPECS

    found = expand_paths([str(SPECS)])
    for name in ("resnet18_cifar.yaml", "resnet34.yaml", "resnet50.yaml"):
        path = str(SPECS / "resnet_family" / name)
        assert path in found
        assert graphspec.check(path).ok, path


# -- item 6: a sweep's values follow the spec's data rules ---------------------------------------------------------
def test_a_swept_variable_that_names_data_outside_is_gs415(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("graphspec: 1\nname: s\nvars: {train: train.csv}\ninputs: {x: [2]}\nnodes: {out: {type: Dense, "
                    "units: 2}}\ncompile: {optimizer: adam, loss: mse}\ndata:\n  source: {kind: csv, train: "
                    "\"${train}\"}\n  inputs: {x: [a, b]}\n  outputs: {out: [c, d]}\ntrain: {epochs: 1}\nsweep:\n"
                    "  objective: {metric: loss}\n  params:\n    vars.train: {choice: [train.csv, /etc/passwd]}\n")
    checked = graphspec.check(spec)
    found = [d for d in checked.diagnostics if d.code == "GS415"]
    assert len(found) == 1 and "'/etc/passwd' of `vars.train`" in found[0].message, checked.diagnostics.sorted()


# -- item 7: a storage URL's secrets ------------------------------------------------------------------------------
CANARY = "hunter2-Sw0rdfish"


@pytest.mark.parametrize("url,shown", [
    (f"postgresql://u:{CANARY}@db.example:5432/s", "postgresql://u:***@db.example:5432/s"),
    (f"postgresql+psycopg://u:{CANARY.replace('-', '%2D')}@h/s", "postgresql+psycopg://u:***@h/s"),
    (f"postgresql://u@h/s?sslmode=require&password={CANARY}", "postgresql://u@h/s?sslmode=require&password=***"),
    (f"postgresql://u:{CANARY[:7]}@{CANARY[8:]}@h/s", "postgresql://u:***@h/s"),
    (f"postgresql:/u:{CANARY}@h/s", "postgresql:***"),
    (f"not a url {CANARY}", "***"),
    ("sqlite:////tmp/study.db", "sqlite:////tmp/study.db"),
])
def test_storage_urls_are_redacted(url: str, shown: str) -> None:
    from graphspec.experiments.storage_url import redact, scrub

    assert redact(url) == shown
    message = scrub(f"could not connect to {url}: host {url.rsplit('@', 1)[0]} said no", url)
    assert CANARY[:7] not in message and CANARY[8:] not in message, message


def test_worker_processes_get_the_storage_in_their_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphspec.experiments import sweep

    settings = sweep.Settings("/s.yaml", [], "/d", f"postgresql://u:{CANARY}@h/s", "s", worker=2)
    argv = sweep.default_worker_command(settings)
    assert not any(CANARY in a for a in argv)  # any user can read a process's arguments
    config = argv[argv.index("--worker-config") + 1]
    monkeypatch.setenv(sweep.STORAGE_ENV, settings.storage)
    assert sweep.worker_settings(config) == settings
